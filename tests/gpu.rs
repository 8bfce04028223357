//! GPU tests: the CUDA runner on real kernels, correct and deliberately broken ones.
//!
//! They need an NVIDIA GPU, so they are `#[ignore]`d and show as ignored in `cargo test`.
//! `scripts/gpu-tests.sh` builds them here and runs them on a GPU machine with `--ignored`.
//! There, `GATEKEEPER_BIN` and `GATEKEEPER_REPO` point at the carried binary and checkout.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn gatekeeper(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let bin = std::env::var("GATEKEEPER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_gatekeeper").to_string());
    let output = Command::new(bin)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run gatekeeper");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    eprintln!("$ gatekeeper {}\n{stdout}{stderr}", args.join(" "));
    (output.status.code().unwrap_or(-1), stdout, stderr)
}

/// A scratch copy of tests/gpu, so runs/ and baselines/ land in a temp folder.
fn fixtures() -> tempfile::TempDir {
    let repo =
        std::env::var("GATEKEEPER_REPO").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let source = PathBuf::from(repo).join("tests/gpu");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(source.join("gates.yaml"), dir.path().join("gates.yaml")).unwrap();
    std::fs::create_dir(dir.path().join("kernels")).unwrap();
    for entry in std::fs::read_dir(source.join("kernels")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("kernels").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

fn result<'a>(run: &'a Value, kernel: &str, shape: &str) -> &'a Value {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kernel"] == kernel && r["shape"] == shape)
        .unwrap_or_else(|| panic!("no result for {kernel}/{shape}"))
}

fn message(run: &Value, kernel: &str, shape: &str) -> String {
    result(run, kernel, shape)["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn every_broken_kernel_is_caught_with_the_right_verdict() {
    let dir = fixtures();
    let kernels = "saxpy,saxpy_hidden_stream,widen_dtypes,spin_50us,nan_output,unwritten_one,oob_write,endless_loop,first_call_only,inputs_overwritten,one_shape_only,illegal_address,faults_when_small,compile_error,too_big";
    let (code, _, _) = gatekeeper(
        dir.path(),
        &["check", "--kernels", kernels, "--json", "out.json"],
    );
    assert_eq!(code, 1, "broken kernels must fail the gate");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    let verdict = |k: &str, s: &str| result(&run, k, s)["verdict"].as_str().unwrap().to_string();

    // Correct kernels: measured, nothing to compare with yet.
    for (kernel, shape) in [
        ("saxpy", "small"),
        ("saxpy", "large"),
        ("widen_dtypes", "small"),
        ("spin_50us", "spin50"),
        ("saxpy_hidden_stream", "large"),
        ("one_shape_only", "small"),
        ("faults_when_small", "large"),
    ] {
        assert_eq!(
            verdict(kernel, shape),
            "no_baseline",
            "{kernel}/{shape}: {}",
            message(&run, kernel, shape)
        );
        assert_eq!(result(&run, kernel, shape)["correct"], true);
    }
    let details = |k: &str, s: &str| result(&run, k, s)["details"].clone();
    assert!(
        details("saxpy", "small")["batch"].as_u64().unwrap() > 1,
        "a ~2 µs kernel is timed in graph batches"
    );
    assert_eq!(details("saxpy", "large")["batch"], 1);
    assert!(details("saxpy", "large")["driver_version"].is_string());

    // The timing yardstick: a kernel that spins 50 µs of GPU wall time.
    let spin = result(&run, "spin_50us", "spin50")["candidate_median_us"]
        .as_f64()
        .unwrap();
    assert!(
        (49.0..56.0).contains(&spin),
        "spin kernel median {spin} µs, expected ~50"
    );

    // Work moved to another stream is still timed.
    let direct = result(&run, "saxpy", "large")["candidate_median_us"]
        .as_f64()
        .unwrap();
    let hidden = result(&run, "saxpy_hidden_stream", "large")["candidate_median_us"]
        .as_f64()
        .unwrap();
    assert!(
        hidden > 0.8 * direct,
        "hidden-stream work timed at {hidden} µs vs {direct} µs direct"
    );

    let expect = [
        (
            "nan_output",
            "small",
            "incorrect",
            "1 / 4,096 elements incorrect",
        ),
        ("unwritten_one", "small", "incorrect", "(1 never written)"),
        (
            "oob_write",
            "small",
            "incorrect",
            "wrote outside tensor `out`: 0 byte(s) before its start, 4 after its end",
        ),
        ("endless_loop", "small", "error", "timed out after 15 s"),
        ("first_call_only", "small", "incorrect", "trial 2"),
        (
            "inputs_overwritten",
            "small",
            "incorrect",
            "input `x` was modified by the kernel",
        ),
        ("one_shape_only", "large", "incorrect", "elements incorrect"),
        ("illegal_address", "small", "error", "ILLEGAL_ADDRESS"),
        (
            "compile_error",
            "small",
            "error",
            "compile error in kernels/compile_error.cu",
        ),
    ];
    for (kernel, shape, want, needle) in expect {
        let got = verdict(kernel, shape);
        let text = message(&run, kernel, shape);
        assert_eq!(got, want, "{kernel}/{shape}: {text}");
        assert!(
            text.contains(needle),
            "{kernel}/{shape}: {text:?} lacks {needle:?}"
        );
    }
    assert!(
        message(&run, "compile_error", "small").contains("compile_error.cu(3)"),
        "the compiler log names file and line"
    );

    // One runner process serves every shape of a kernel; a fault costs its shape, and a fresh
    // process measures the next.
    assert_eq!(run["time"]["saxpy"]["processes"], 1, "{}", run["time"]);
    assert_eq!(verdict("faults_when_small", "small"), "error");
    assert!(message(&run, "faults_when_small", "small").contains("ILLEGAL_ADDRESS"));
    assert_eq!(run["time"]["faults_when_small"]["processes"], 2);
    let saxpy = &run["time"]["saxpy"];
    for part in ["startup_s", "compile_s", "correctness_s", "timing_s"] {
        assert!(saxpy[part].as_f64().unwrap() > 0.0, "{part}: {saxpy}");
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn an_unchanged_cuda_kernel_is_reused_and_a_changed_one_measured() {
    let dir = fixtures();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    let (code, _, err) = gatekeeper(dir.path(), &["baseline", "refresh", "--kernels", "saxpy"]);
    assert_eq!(code, 0, "{err}");
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-qm", "baseline"]);
    git(dir.path(), &["checkout", "-qb", "feature"]);
    let (code, _, err) = gatekeeper(
        dir.path(),
        &[
            "check",
            "--kernels",
            "saxpy",
            "--against",
            "main",
            "--json",
            "out.json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let run = read_run(dir.path(), "out.json");
    for shape in ["small", "large"] {
        let found = result(&run, "saxpy", shape);
        assert_eq!(found["reused"], true, "{found}");
        assert_eq!(found["verdict"], "unchanged");
    }
    // A change to the source that changes the machine code: measured.
    let source = dir.path().join("kernels/good.cu");
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        text.replace("a * x[i] + y[i]", "y[i] + a * x[i] + 0.0f * x[i]"),
    )
    .unwrap();
    let (_, _, err) = gatekeeper(
        dir.path(),
        &[
            "check",
            "--kernels",
            "saxpy",
            "--against",
            "main",
            "--json",
            "out.json",
        ],
    );
    let run = read_run(dir.path(), "out.json");
    for shape in ["small", "large"] {
        assert_eq!(result(&run, "saxpy", shape)["reused"], false, "{err}");
    }
    // A comment changes no machine code: reused again.
    std::fs::write(&source, format!("{text}\n// a comment\n")).unwrap();
    let (_, _, err) = gatekeeper(
        dir.path(),
        &[
            "check",
            "--kernels",
            "saxpy",
            "--against",
            "main",
            "--json",
            "out.json",
        ],
    );
    let run = read_run(dir.path(), "out.json");
    assert_eq!(result(&run, "saxpy", "small")["reused"], true, "{err}");
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn cheats_within_atol_reads_past_the_end_and_big_integers_are_caught() {
    let dir = fixtures();
    let kernels = "softmax,softmax_zeros,softmax_constant,softmax_scaled,read_past_end,big_ints,big_ints_off_by_one,widen_dtypes";
    let (code, _, _) = gatekeeper(
        dir.path(),
        &["check", "--kernels", kernels, "--json", "out.json"],
    );
    assert_eq!(code, 1, "the cheats must fail the gate");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    let verdict = |k: &str, s: &str| result(&run, k, s)["verdict"].as_str().unwrap().to_string();
    for (kernel, shape) in [
        ("softmax", "row64k"),
        ("big_ints", "small"),
        ("widen_dtypes", "small"),
    ] {
        assert_eq!(
            verdict(kernel, shape),
            "no_baseline",
            "{kernel}/{shape}: {}",
            message(&run, kernel, shape)
        );
    }
    let honest = result(&run, "softmax", "row64k")["rel_l2_err"]
        .as_f64()
        .unwrap();
    assert!(honest < 1e-5, "the honest softmax is off by {honest} in L2");
    // Zeros, a constant and a 0.9x copy: every element within atol = 1e-2, yet wrong.
    for (kernel, at_least) in [
        ("softmax_zeros", 0.99),
        ("softmax_constant", 0.1),
        ("softmax_scaled", 0.099),
    ] {
        assert_eq!(verdict(kernel, "row64k"), "incorrect", "{kernel}");
        let text = message(&run, kernel, "row64k");
        assert!(text.contains("relative L2 error"), "{kernel}: {text}");
        let rel_l2 = result(&run, kernel, "row64k")["rel_l2_err"]
            .as_f64()
            .unwrap();
        assert!(rel_l2 >= at_least, "{kernel}: relative L2 error {rel_l2}");
        assert_eq!(
            result(&run, kernel, "row64k")["max_abs_err"]
                .as_f64()
                .map(|e| e < 1e-2),
            Some(true)
        );
    }
    // x[N] lies in the guard band, which reads as NaN.
    assert_eq!(verdict("read_past_end", "small"), "incorrect");
    let text = message(&run, "read_past_end", "small");
    assert!(
        text.contains("1 / 4,096 elements incorrect") && text.contains("out[4095] = NaN"),
        "{text}"
    );
    // 2^24 + 1 read through f32 is 2^24: only an exact comparison sees the off-by-one.
    assert_eq!(verdict("big_ints_off_by_one", "small"), "incorrect");
    let text = message(&run, "big_ints_off_by_one", "small");
    assert!(
        text.contains("out[0] = 16777216, expected 16777217"),
        "{text}"
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn an_unchanged_kernel_passes_and_a_slower_build_fails() {
    let dir = fixtures();
    let (code, _, _) = gatekeeper(dir.path(), &["baseline", "refresh", "--kernels", "work"]);
    assert_eq!(code, 0);
    let (code, _, _) = gatekeeper(
        dir.path(),
        &["check", "--kernels", "work", "--json", "same.json"],
    );
    assert_eq!(
        code, 0,
        "an unchanged kernel must pass against its own fresh baseline"
    );
    let same: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("same.json")).unwrap())
            .unwrap();
    assert_eq!(
        result(&same, "work", "b1")["details"]["compiled"],
        "cache",
        "the second run reuses the compiled CUBIN"
    );

    let gates = std::fs::read_to_string(dir.path().join("gates.yaml")).unwrap();
    let slower = gates.replace("options: []", "options: [\"-DWORK_SCALE_PERCENT=115\"]");
    assert_ne!(gates, slower);
    std::fs::write(dir.path().join("gates.yaml"), slower).unwrap();
    let (code, _, _) = gatekeeper(
        dir.path(),
        &["check", "--kernels", "work", "--json", "slow.json"],
    );
    assert_eq!(code, 1, "15 % more work must fail the gate");
    let slow: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("slow.json")).unwrap())
            .unwrap();
    for shape in ["b1", "b2", "b3"] {
        let r = result(&slow, "work", shape);
        assert_eq!(r["verdict"], "regressed", "{shape}: {r}");
        let ratio = r["ratio"].as_f64().unwrap();
        assert!((1.10..1.25).contains(&ratio), "{shape}: ratio {ratio}");
    }
}

fn check_named<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["profile"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no gate-4 checks in {result}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {result}"))
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn gate_4_catches_idle_tensor_cores_and_spills() {
    let dir = fixtures();
    let (code, stdout, _) = gatekeeper(
        dir.path(),
        &[
            "check",
            "--kernels",
            "gemm_mma,gemm_fma,spilly",
            "--json",
            "p.json",
            "--junit",
            "p.xml",
        ],
    );
    assert_eq!(code, 1, "{stdout}");
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("p.json")).unwrap()).unwrap();

    // The tensor-core GEMM: correct, HMMA in its SASS, no spills.
    let mma = result(&run, "gemm_mma", "tiles");
    assert_eq!(mma["verdict"], "no_baseline");
    assert_eq!(check_named(mma, "tensor_cores")["passed"], true);
    assert_eq!(check_named(mma, "spills")["passed"], true);
    let hmma = &mma["profile"]["resources"][0]["tensor_instructions"]["HMMA"];
    assert!(hmma.as_u64().unwrap_or(0) > 0, "{mma}");
    // With ncu on the machine the targets are checked against profiled metrics.
    let pipe = check_named(mma, "tensor_pipe_pct");
    if pipe["passed"].is_null() {
        eprintln!("ncu targets not checked: {}", pipe["note"]);
    } else {
        assert_eq!(pipe["passed"], true);
        assert!(
            mma["profile"]["metrics"]["tensor_pipe_pct"]["value"]
                .as_f64()
                .unwrap()
                > 0.0
        );
    }

    // The same product on the FMA pipe: correct, so only gate 4 can catch it.
    let fma = result(&run, "gemm_fma", "tiles");
    assert_eq!(fma["correct"], true);
    let tensor = check_named(fma, "tensor_cores");
    assert_eq!(tensor["passed"], false);
    assert!(
        tensor["note"].as_str().unwrap().contains("gemm_fma"),
        "{tensor}"
    );
    let kernel = run["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "gemm_fma")
        .unwrap();
    assert_eq!(kernel["verdict"], "fail");
    assert!(
        kernel["reason"]
            .as_str()
            .unwrap()
            .contains("profiling limits"),
        "{kernel}"
    );

    // Squeezed into 32 registers, the kernel spills; ptxas's bytes are the evidence.
    let spilly = result(&run, "spilly", "small");
    let spills = check_named(spilly, "spills");
    assert_eq!(spills["passed"], false);
    assert!(spills["actual"].as_f64().unwrap() > 0.0, "{spills}");
    assert!(
        stdout.contains("profiling limit missed: tensor_cores"),
        "{stdout}"
    );

    let junit = std::fs::read_to_string(dir.path().join("p.xml")).unwrap();
    assert!(junit.contains("type=\"profile\""), "{junit}");

    // `gatekeeper profile` on its own: classes and metrics where ncu exists.
    let (code, stdout, _) = gatekeeper(
        dir.path(),
        &[
            "profile",
            "--kernels",
            "gemm_mma,gemm_fma",
            "--json",
            "prof.json",
        ],
    );
    assert_eq!(code, 1, "gemm_fma misses tensor_cores: {stdout}");
    let rows: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("prof.json")).unwrap())
            .unwrap();
    let mma = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kernel"] == "gemm_mma")
        .unwrap();
    assert!(mma["error"].is_null(), "{mma}");
    if mma["profile"]["note"].is_null() {
        let class = mma["profile"]["class"].as_str().unwrap();
        assert!(["compute-bound", "memory-bound", "latency-bound"].contains(&class));
        assert!(
            mma["profile"]["times_floor"].as_f64().is_none(),
            "no peaks for this device in the test config"
        );
    }

    // A target on a metric the device lacks is a configuration error, named.
    let yaml = std::fs::read_to_string(dir.path().join("gates.yaml")).unwrap();
    let yaml = yaml.replacen(
        "occupancy_pct: {max: 100}",
        "occupancy_pct: {max: 100}\n        bogus: {min: 1}",
        1,
    ) + "\nprofile:\n  metrics: {bogus: no__such_metric.sum}\n";
    std::fs::write(dir.path().join("bogus.yaml"), yaml).unwrap();
    let (code, stdout, stderr) = gatekeeper(
        dir.path(),
        &["--config", "bogus.yaml", "profile", "--kernels", "gemm_mma"],
    );
    if stdout.contains("metrics not profiled") {
        eprintln!("no ncu here: the unknown-metric check needs it");
    } else {
        assert_eq!(code, 2, "{stdout}{stderr}");
        assert!(
            stderr.contains("profile.targets.bogus") && stderr.contains("no__such_metric.sum"),
            "{stderr}"
        );
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=gpu", "-c", "user.email=gpu@localhost"])
        .args(args)
        .status()
        .expect("run git");
    assert!(status.success(), "git {}", args.join(" "));
}

fn read_run(dir: &Path, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn ab_beside_the_base_built_from_git_passes_the_same_kernel_and_fails_a_slower_one() {
    let dir = fixtures();
    let path = dir.path();
    git(path, &["init", "-q", "-b", "main"]);
    git(path, &["add", "-A"]);
    git(path, &["commit", "-qm", "base"]);
    git(path, &["checkout", "-qb", "candidate"]);
    let ab = ["check", "--against", "main", "--ab", "--kernels", "work"];
    let (code, _, _) = gatekeeper(path, &[&ab[..], &["--json", "same.json"]].concat());
    assert_eq!(code, 0, "the same kernel beside itself must pass");
    let same = read_run(path, "same.json");
    for shape in ["b1", "b2", "b3"] {
        let ab = &result(&same, "work", shape)["ab"];
        assert_eq!(ab["verdict"], "unchanged", "{shape}: {ab}");
        assert!(ab["rounds"].as_u64().unwrap() >= 3, "{shape}: {ab}");
        let ratio = ab["ratio"].as_f64().unwrap();
        assert!((0.97..1.03).contains(&ratio), "{shape}: {ab}");
    }

    let gates = std::fs::read_to_string(path.join("gates.yaml")).unwrap();
    let slower = gates.replace("options: []", "options: [\"-DWORK_SCALE_PERCENT=115\"]");
    std::fs::write(path.join("gates.yaml"), slower).unwrap();
    git(path, &["commit", "-qam", "15 % more work"]);
    let (code, _, _) = gatekeeper(path, &[&ab[..], &["--json", "slow.json"]].concat());
    assert_eq!(code, 1, "15 % more work must fail beside the base");
    let slow = read_run(path, "slow.json");
    for shape in ["b1", "b2", "b3"] {
        let r = result(&slow, "work", shape);
        assert_eq!(r["verdict"], "regressed", "{shape}: {r}");
        let ratio = r["ab"]["ratio"].as_f64().unwrap();
        assert!((1.10..1.25).contains(&ratio), "{shape}: {r}");
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn timing_only_processes_time_without_checking() {
    let dir = fixtures();
    let bin = std::env::var("GATEKEEPER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_gatekeeper").to_string());
    let run = |timing_only: &str| -> Value {
        let output = Command::new(&bin)
            .current_dir(dir.path())
            .args(["--config", "gates.yaml", "__cuda-runner"])
            .env("GATEKEEPER_KERNEL", "softmax_zeros")
            .env("GATEKEEPER_SHAPE", "row64k")
            .env("GATEKEEPER_WARMUP", "2")
            .env("GATEKEEPER_SAMPLES", "10")
            .env("GATEKEEPER_SEED", "1")
            .env("GATEKEEPER_TIMING_ONLY", timing_only)
            .output()
            .expect("run the runner");
        let stdout = String::from_utf8_lossy(&output.stdout);
        serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap()
    };
    // A kernel that writes zeros: wrong when checked, only timed when told so.
    assert_eq!(run("0")["correct"], false);
    let timed = run("1");
    assert_eq!(timed["correct"], Value::Null, "{timed}");
    assert_eq!(timed["samples_us"].as_array().unwrap().len(), 10);
}

#[test]
#[ignore = "needs an NVIDIA GPU: scripts/gpu-tests.sh runs it on one"]
fn rank_takes_cuda_source_files_and_excludes_a_wrong_one() {
    let dir = fixtures();
    std::fs::create_dir(dir.path().join("gen")).unwrap();
    let good = std::fs::read_to_string(dir.path().join("kernels/good.cu")).unwrap();
    std::fs::write(dir.path().join("gen/same.cu"), &good).unwrap();
    let wrong = good.replace("a * x[i] + y[i]", "a * x[i] - y[i]");
    assert_ne!(wrong, good);
    std::fs::write(dir.path().join("gen/wrong.cu"), wrong).unwrap();
    let (code, _, err) = gatekeeper(
        dir.path(),
        &[
            "rank",
            "--kernels",
            "saxpy",
            "--candidates",
            "gen/*.cu",
            "--max-rounds",
            "4",
            "--json",
            "rank.json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let report = read_run(dir.path(), "rank.json");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0]["name"], "gen/wrong.cu");
    assert!(failed[0]["reason"].as_str().unwrap().contains("incorrect"));
    let same = report["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "gen/same.cu")
        .expect("the copy is ranked");
    let speedup = same["geomean_speedup"].as_f64().unwrap();
    assert!(
        (0.8..1.25).contains(&speedup),
        "a copy runs at parity: {speedup}"
    );
    assert_eq!(same["source"], "gen/same.cu");
}
