//! End-to-end tests: the real `gatekeeper` binary on fixture harnesses, in temporary git
//! repositories built with git2.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::*;
use predicates::prelude::*;
use serde_json::{json, Value};

#[test]
fn first_check_without_baselines_passes_and_leaves_a_run_record() {
    let project = Project::new(GATES);
    project
        .gatekeeper(&["check", "--json", "out.json"])
        .code(0)
        .stdout(predicate::str::contains("no_baseline"));
    let run = project.json("out.json");
    assert_eq!(run["verdict"], "pass");
    assert_eq!(
        verdicts(&run),
        [
            "small/no_baseline",
            "mission/no_baseline",
            "long/no_baseline"
        ]
    );
    assert_eq!(run["results"][0]["candidate_n"], 40);
    let records: Vec<_> = std::fs::read_dir(project.path().join("runs"))
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".json"))
        .collect();
    assert_eq!(records.len(), 1);
    // The run records folder ignores itself, so it never makes the tree dirty.
    project.commit("after a check");
    let mut options = git2::StatusOptions::new();
    options.include_untracked(true).include_ignored(false);
    let statuses = project.repo.statuses(Some(&mut options)).unwrap();
    let dirty: Vec<String> = statuses
        .iter()
        .filter_map(|s| s.path().ok().map(str::to_string))
        .collect();
    assert!(dirty.is_empty(), "{dirty:?}");
}

#[test]
fn refresh_writes_samples_with_provenance() {
    let project = Project::new(GATES);
    let head = project.commit("kernels");
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(project.baseline_path()).unwrap()).unwrap();
    assert_eq!(baseline["kernel"], "attn");
    assert_eq!(baseline["device"], "Test GPU");
    let mission = &baseline["shapes"]["mission"];
    assert_eq!(mission["samples_us"].as_array().unwrap().len(), 40);
    assert_eq!(
        mission["params"],
        json!({"B": 2, "H": 16, "S": 1024, "D": 64})
    );
    let provenance = &mission["provenance"];
    assert_eq!(provenance["commit"], head.to_string());
    assert_eq!(provenance["dirty"], false);
    assert_eq!(provenance["gatekeeper_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        provenance["kernel"]["command"],
        json!(["python3", "harness.py"])
    );
    assert!(provenance["date"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn unchanged_kernel_passes_against_main() {
    let project = Project::with_committed_baseline(GATES);
    project.behave_with(json!({}), 7, "Test GPU");
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    let run = project.json("out.json");
    assert_eq!(run["verdict"], "pass");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/unchanged", "long/unchanged"]
    );
    assert!(run["baselines_from"]
        .as_str()
        .unwrap()
        .starts_with("main ("));
    for result in run["results"].as_array().unwrap() {
        assert_eq!(
            result["baseline_n"].as_u64().unwrap() + result["baseline_dropped"].as_u64().unwrap(),
            40
        );
        assert!(result["p_value"].as_f64().is_some());
        assert!(result["baseline_stddev_us"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn two_regressed_shapes_fail_the_gate_in_every_report() {
    let project = Project::with_committed_baseline(GATES);
    project.behave_with(
        json!({"mission": {"slowdown": 1.15}, "long": {"slowdown": 1.2}}),
        1,
        "Test GPU",
    );
    project
        .gatekeeper(&[
            "check",
            "--against",
            "main",
            "--json",
            "out.json",
            "--junit",
            "junit.xml",
            "--markdown",
            "comment.md",
        ])
        .code(1)
        .stdout(predicate::str::contains("FAIL  attn: 2 shapes regressed"));
    let run = project.json("out.json");
    assert_eq!(run["verdict"], "fail");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    let ratio = run["results"][1]["ratio"].as_f64().unwrap();
    assert!((1.12..1.18).contains(&ratio), "{ratio}");
    let junit = std::fs::read_to_string(project.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"tests="3" errors="0" failures="2""#),
        "{junit}"
    );
    let markdown = std::fs::read_to_string(project.path().join("comment.md")).unwrap();
    assert!(
        markdown.starts_with("## ❌ gatekeeper: 1 of 1 kernels failed"),
        "{markdown}"
    );
    assert!(markdown.contains("🔴 regressed"));
}

#[test]
fn one_regressed_shape_is_reported_but_passes() {
    let project = Project::with_committed_baseline(GATES);
    project.behave_with(json!({"long": {"slowdown": 1.3}}), 1, "Test GPU");
    project
        .gatekeeper(&[
            "check",
            "--against",
            "main",
            "--json",
            "out.json",
            "--junit",
            "junit.xml",
        ])
        .code(0);
    let run = project.json("out.json");
    assert_eq!(run["verdict"], "pass");
    assert_eq!(run["results"][2]["verdict"], "regressed");
    let junit = std::fs::read_to_string(project.path().join("junit.xml")).unwrap();
    assert!(junit.contains(r#"failures="0""#), "{junit}");
}

#[test]
fn broken_harnesses_become_errors_with_their_stderr() {
    let gates = GATES.replace("timeout_s: 20", "timeout_s: 2");
    let project = Project::with_committed_baseline(&gates);
    project.behave(json!({
        "small": {"crash": true},
        "mission": {"hang": true},
        "long": {"garbage": true},
    }));
    let started = std::time::Instant::now();
    project
        .gatekeeper(&[
            "check",
            "--against",
            "main",
            "--json",
            "out.json",
            "--markdown",
            "comment.md",
        ])
        .code(1);
    assert!(
        started.elapsed().as_secs() < 15,
        "the hung harness was not killed"
    );
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/error", "mission/error", "long/error"]
    );
    let crash = &run["results"][0];
    assert!(crash["message"]
        .as_str()
        .unwrap()
        .contains("exit status: 3"));
    assert!(crash["stderr_tail"]
        .as_str()
        .unwrap()
        .contains("illegal memory access"));
    assert!(run["results"][1]["message"]
        .as_str()
        .unwrap()
        .contains("timed out after 2 s"));
    assert!(run["results"][2]["message"]
        .as_str()
        .unwrap()
        .contains("cannot parse"));
    let markdown = std::fs::read_to_string(project.path().join("comment.md")).unwrap();
    // Harness stderr is quoted only inside a code fence, where GitHub renders no HTML or mention.
    assert!(
        markdown.contains("```text\nharness: attn/small"),
        "{markdown}"
    );
    assert!(markdown.contains("illegal memory access was encountered <@oncall>\n```"));
}

#[test]
fn a_child_left_running_by_the_harness_does_not_hold_up_the_check() {
    let project = Project::with_committed_baseline(GATES);
    project.behave_with(json!({"small": {"background": true}}), 2, "Test GPU");
    let started = std::time::Instant::now();
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    assert!(
        started.elapsed().as_secs() < 20,
        "waited for the harness's child"
    );
    assert_eq!(
        project.json("out.json")["results"][0]["verdict"],
        "unchanged"
    );
}

#[test]
fn sigterm_kills_the_running_harness_too() {
    let project = Project::new(GATES);
    project.behave(json!({"small": {"hang": true}}));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(project.path())
        .arg("check")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = project.path().join("hang-small.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pid_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let harness: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(std::time::Duration::from_millis(200));
    // Killed but not yet reaped by init counts as gone: a zombie holds no GPU.
    let state = std::fs::read_to_string(format!("/proc/{harness}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit(')').next().map(|rest| rest.trim().to_string()))
        .unwrap_or_default();
    assert!(
        state.is_empty() || state.starts_with('Z'),
        "the harness outlived gatekeeper: {state}"
    );
}

#[test]
fn a_baseline_measured_with_other_parameters_is_not_compared() {
    let project = Project::with_committed_baseline(GATES);
    project.write("gates.yaml", &GATES.replace("S: 1024", "S: 4096"));
    project.commit("bigger mission");
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    let run = project.json("out.json");
    assert_eq!(run["results"][1]["verdict"], "no_baseline");
    let message = run["results"][1]["message"].as_str().unwrap();
    assert!(
        message.contains("other parameters (B=2, H=16, S=1024, D=64)"),
        "{message}"
    );
    assert_eq!(run["results"][0]["verdict"], "unchanged");
}

#[test]
fn an_unwritable_report_path_stops_before_measuring() {
    let project = Project::new(GATES);
    std::fs::create_dir(project.path().join("reports")).unwrap();
    project
        .gatekeeper(&["check", "--junit", "reports"])
        .code(2)
        .stderr(
            predicate::str::contains("reports: is a folder")
                .and(predicate::str::contains("[1/").not()),
        );
}

#[test]
fn incorrect_output_fails_even_when_fast() {
    let project = Project::with_committed_baseline(GATES);
    project.behave(json!({"small": {"correct": false, "slowdown": 0.5}}));
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(1);
    let run = project.json("out.json");
    assert_eq!(run["results"][0]["verdict"], "incorrect");
    assert_eq!(run["kernels"][0]["verdict"], "fail");
}

#[test]
fn baselines_come_from_the_ref_not_the_working_tree() {
    let project = Project::with_committed_baseline(GATES);
    std::fs::remove_dir_all(project.path().join("baselines")).unwrap();
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    assert_eq!(
        project.json("out.json")["results"][0]["verdict"],
        "unchanged"
    );
    // Without --against the (now empty) working tree is used.
    project.gatekeeper(&["check", "--json", "out.json"]).code(0);
    assert_eq!(
        project.json("out.json")["results"][0]["verdict"],
        "no_baseline"
    );
}

#[test]
fn missing_ref_falls_back_to_origin_then_fails_with_a_hint() {
    let project = Project::with_committed_baseline(GATES);
    let main = project.repo.refname_to_id("refs/heads/main").unwrap();
    project
        .repo
        .reference("refs/remotes/origin/trunk", main, false, "test")
        .unwrap();
    project
        .gatekeeper(&["check", "--against", "trunk", "--json", "out.json"])
        .code(0);
    let run = project.json("out.json");
    assert!(run["baselines_from"]
        .as_str()
        .unwrap()
        .starts_with("origin/trunk ("));

    project
        .gatekeeper(&["check", "--against", "release"])
        .code(2)
        .stderr(
            predicate::str::contains("--against release: no such ref")
                .and(predicate::str::contains("origin/release"))
                .and(predicate::str::contains("fetch-depth: 0"))
                .and(predicate::str::contains("[1/").not()),
        );
}

#[test]
fn baselines_from_another_device_are_never_compared() {
    let project = Project::with_committed_baseline(GATES);
    project.behave_with(json!({}), 3, "Other GPU");
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    let run = project.json("out.json");
    assert_eq!(run["results"][0]["verdict"], "no_baseline");
    let message = run["results"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("on other-gpu") && message.contains("test-gpu"),
        "{message}"
    );
}

#[test]
fn partial_refresh_keeps_the_other_shapes() {
    let project = Project::with_committed_baseline(GATES);
    let before: Value =
        serde_json::from_str(&std::fs::read_to_string(project.baseline_path()).unwrap()).unwrap();
    project.behave_with(json!({"mission": {"slowdown": 2.0}}), 5, "Test GPU");
    project
        .gatekeeper(&["baseline", "refresh", "--shapes", "mission"])
        .code(0)
        .stdout(predicate::str::contains("1 of 3 shapes refreshed"));
    let after: Value =
        serde_json::from_str(&std::fs::read_to_string(project.baseline_path()).unwrap()).unwrap();
    assert_eq!(before["shapes"]["small"], after["shapes"]["small"]);
    assert_eq!(before["shapes"]["long"], after["shapes"]["long"]);
    assert_ne!(before["shapes"]["mission"], after["shapes"]["mission"]);
    let keys: Vec<&String> = after["shapes"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["small", "mission", "long"]);
}

#[test]
fn a_wrong_kernel_is_never_written_into_a_baseline() {
    let project = Project::with_committed_baseline(GATES);
    let before = std::fs::read(project.baseline_path()).unwrap();
    project.behave_with(json!({"long": {"correct": false}}), 9, "Test GPU");
    project
        .gatekeeper(&["baseline", "refresh"])
        .code(1)
        .stdout(predicate::str::contains(
            "attn: baseline NOT written (long: incorrect)",
        ));
    assert_eq!(std::fs::read(project.baseline_path()).unwrap(), before);
}

#[test]
fn corrupt_baseline_stops_before_measuring() {
    let project = Project::with_committed_baseline(GATES);
    std::fs::write(project.baseline_path(), "{\"format\": 1, \"kern").unwrap();
    let before = std::fs::read(project.baseline_path()).unwrap();
    project.gatekeeper(&["baseline", "refresh"]).code(2).stderr(
        predicate::str::contains("baselines/test-gpu/attn.json: not a gatekeeper baseline")
            .and(predicate::str::contains("[1/").not()),
    );
    assert_eq!(std::fs::read(project.baseline_path()).unwrap(), before);
    project.gatekeeper(&["check"]).code(2);
}

#[test]
fn bad_config_exits_2_naming_file_and_key_and_writes_nothing() {
    let project = Project::new(&GATES.replace("timeout_s: 20", "timeout_s: 20\n    colour: red"));
    project
        .gatekeeper(&["check", "--json", "out.json"])
        .code(2)
        .stderr(
            predicate::str::contains("gates.yaml: invalid configuration")
                .and(predicate::str::contains("line 13"))
                .and(predicate::str::contains("unknown field `colour`")),
        );
    assert!(!project.path().join("out.json").exists());
    assert!(!project.path().join("runs").exists());

    let project = Project::new(&GATES.replace("[small, mission, long]", "[small, huge]"));
    project
        .gatekeeper(&["baseline", "refresh"])
        .code(2)
        .stderr(predicate::str::contains(
            "`kernels[0].shapes[1]`: unknown shape \"huge\"",
        ));
    assert!(!project.path().join("baselines").exists());
}

#[test]
fn speedups_over_peers_appear_in_every_report() {
    let gates = format!(
        "{GATES}    peers: [twin]\n  - name: twin\n    command: [\"python3\", \"harness.py\"]\n    shapes: [small, mission, long]\n"
    );
    let project = Project::new(&gates);
    project
        .gatekeeper(&["check", "--json", "out.json", "--markdown", "comment.md"])
        .code(0)
        .stdout(predicate::str::contains("peer µs"));
    let run = project.json("out.json");
    let peer = &run["results"][0]["peers"][0];
    assert_eq!(peer["kernel"], "twin");
    // The same harness with its own random draw: within a few % of 1×.
    let speedup = peer["speedup"].as_f64().unwrap();
    assert!((0.95..1.05).contains(&speedup), "{speedup}");
    assert_eq!(peer["rating"], "Parity");
    let markdown = std::fs::read_to_string(project.path().join("comment.md")).unwrap();
    assert!(
        markdown.contains("Speedup over peers") && markdown.contains("× Parity |"),
        "{markdown}"
    );
}

#[test]
fn peers_must_name_other_kernels() {
    let project = Project::new(&GATES.replace(
        "    timeout_s: 20\n",
        "    timeout_s: 20\n    peers: [attn, nobody]\n",
    ));
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("`kernels[0].peers[0]`: a kernel is not its own peer").and(
            predicate::str::contains("`kernels[0].peers[1]`: unknown kernel \"nobody\""),
        ),
    );
}

#[test]
fn usage_errors_exit_2() {
    let project = Project::new(GATES);
    project
        .gatekeeper(&["check", "--kernels", "nope"])
        .code(2)
        .stderr(predicate::str::contains(
            "--kernels: no kernel named \"nope\"",
        ));
    project.gatekeeper(&["frobnicate"]).code(2);
    project
        .gatekeeper(&["check", "--config", "missing.yaml"])
        .code(2)
        .stderr(predicate::str::contains("missing.yaml: no such file"));
    project
        .gatekeeper(&["--help"])
        .code(0)
        .stdout(predicate::str::contains("Exit codes"));
    project
        .gatekeeper(&["check", "--help"])
        .code(0)
        .stdout(predicate::str::contains("gatekeeper check --against main"));
}

#[test]
fn against_outside_a_repository_is_an_environment_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gates.yaml"), GATES).unwrap();
    Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(dir.path())
        .args(["check", "--against", "main"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not inside a git repository"));
}

#[test]
fn config_in_a_subfolder_runs_there() {
    let project = Project::new(GATES);
    for name in ["gates.yaml", "harness.py", "behavior.json"] {
        std::fs::create_dir_all(project.path().join("perf")).unwrap();
        std::fs::rename(
            project.path().join(name),
            project.path().join("perf").join(name),
        )
        .unwrap();
    }
    project
        .gatekeeper(&["--config", "perf/gates.yaml", "baseline", "refresh"])
        .code(0);
    assert!(project
        .path()
        .join("perf/baselines/test-gpu/attn.json")
        .exists());
    project.commit("baseline in a subfolder");
    project
        .gatekeeper(&[
            "check",
            "--config",
            "perf/gates.yaml",
            "--against",
            "main",
            "--json",
            "out.json",
        ])
        .code(0);
    assert_eq!(
        project.json("out.json")["results"][0]["verdict"],
        "unchanged"
    );
}

#[test]
fn the_repositorys_own_gates_yaml_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gates.yaml");
    let config = gatekeeper::config::Config::load(&path).unwrap();
    assert!(!config.kernels.is_empty());
}

#[test]
fn cuda_kernels_without_a_driver_exit_2_with_one_clear_line() {
    if gatekeeper::cuda::driver::driver_present() {
        eprintln!("skipped: this machine has a CUDA driver (the GPU tests cover it)");
        return;
    }
    let project = Project::new(CUDA_GATES);
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("no CUDA driver (libcuda.so) was found")
            .and(predicate::str::contains(
                "the cuda kernels saxpy need an NVIDIA GPU",
            ))
            .and(predicate::str::contains("panicked").not()),
    );
    // Kernels that need no GPU still run when selected alone.
    project
        .gatekeeper(&["check", "--kernels", "harnessed"])
        .code(0);
}

#[test]
fn profile_needs_cuda_kernels_and_a_driver() {
    let project = Project::new(CUDA_GATES);
    // A selection without `cuda:` kernels has nothing to profile: a usage error.
    project
        .gatekeeper(&["profile", "--kernels", "harnessed"])
        .code(2)
        .stderr(predicate::str::contains("nothing to profile"));
    if gatekeeper::cuda::driver::driver_present() {
        eprintln!(
            "skipped the driver check: this machine has a CUDA driver (the GPU tests cover it)"
        );
        return;
    }
    project.gatekeeper(&["profile"]).code(2).stderr(
        predicate::str::contains("no CUDA driver (libcuda.so) was found")
            .and(predicate::str::contains("panicked").not()),
    );
}

#[test]
fn profile_targets_on_unknown_metrics_are_config_errors() {
    let gates = CUDA_GATES.replacen(
        "    cuda:",
        "    profile:\n      targets: {no_such_metric: {min: 1}, tensor_pipe_pct: {}}\n    cuda:",
        1,
    );
    let project = Project::new(&gates);
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("profile.targets.no_such_metric")
            .and(predicate::str::contains("unknown metric"))
            .and(predicate::str::contains("profile.targets.tensor_pipe_pct"))
            .and(predicate::str::contains("give `min`, `max` or both")),
    );
}

#[test]
fn cuda_blocks_are_validated_before_anything_runs() {
    let broken = CUDA_GATES
        .replace("source: kernels/saxpy.cu", "source: ../outside.cu")
        .replace(
            "args: [x, out, {i32: N}]}\n      reference",
            "args: [x, outt, {i32: N}]}\n      reference",
        )
        .replace(
            "grid: [\"ceil(N / 256)\"], block: [256], args: [x, out, {i32: N}]}\n      tolerance",
            "grid: [\"ceil(M / 256)\"], block: [2048], args: [x, out, {i32: N}]}\n      tolerance",
        )
        .replace("{dtype: f32, shape: [N]}", "{dtype: f64, shape: [N]}");
    let project = Project::new(&broken);
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("`kernels[1].cuda.tensors.x.dtype`")
            .and(predicate::str::contains("unknown variant `f64`")),
    );

    let project = Project::new(&broken.replace("dtype: f64", "dtype: f32"));
    let assert = project.gatekeeper(&["check"]).code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for needle in [
        "`kernels[1].cuda.source`: \"../outside.cu\" leaves the repository",
        "`kernels[1].cuda.launches[0].args[1]`: unknown tensor \"outt\"",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }

    // Shape-dependent problems surface once the static ones are fixed.
    let project = Project::new(
        &broken
            .replace("dtype: f64", "dtype: f32")
            .replace("../outside.cu", "kernels/saxpy.cu")
            .replace("outt", "out"),
    );
    let assert = project.gatekeeper(&["check"]).code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let needle = "`kernels[1].cuda.reference.launches[0].grid[0]`: \"ceil(M / 256)\": unknown parameter M (the shape has N) (shape small)";
    assert!(
        stderr.contains(needle),
        "{needle:?} missing from:\n{stderr}"
    );
}

#[test]
fn shards_merge_into_the_same_decision_as_one_run() {
    let project = Project::with_committed_baseline(GATES);
    project.behave_with(
        json!({"mission": {"slowdown": 1.15}, "long": {"slowdown": 1.2}}),
        1,
        "Test GPU",
    );
    // Each shard alone sees at most part of the kernel: it exits 0 and leaves the decision to
    // the merge.
    for k in 1..=2 {
        let shard = format!("{k}/2");
        let out = format!("shard-{k}.json");
        project
            .gatekeeper(&[
                "check",
                "--against",
                "main",
                "--shard",
                &shard,
                "--json",
                &out,
            ])
            .code(0)
            .stdout(predicate::str::contains("decided by `gatekeeper merge`"));
    }
    let one = project.json("shard-1.json");
    let two = project.json("shard-2.json");
    assert_eq!(one["shard"], "1/2");
    assert_eq!(verdicts(&one), ["small/unchanged", "long/regressed"]);
    assert_eq!(verdicts(&two), ["mission/regressed"]);
    project
        .gatekeeper(&[
            "merge",
            "shard-2.json",
            "shard-1.json",
            "--json",
            "merged.json",
            "--junit",
            "junit.xml",
        ])
        .code(1);
    let merged = project.json("merged.json");
    assert_eq!(merged["verdict"], "fail");
    assert_eq!(merged["shard"], Value::Null);
    assert_eq!(
        verdicts(&merged),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    let junit = std::fs::read_to_string(project.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains(r#"tests="3" errors="0" failures="2""#),
        "{junit}"
    );

    project
        .gatekeeper(&["merge", "shard-1.json"])
        .code(2)
        .stderr(predicate::str::contains("missing shard(s) 2/2"));
    project
        .gatekeeper(&["merge", "shard-1.json", "shard-1.json", "shard-2.json"])
        .code(2)
        .stderr(predicate::str::contains("given twice"));
    project
        .gatekeeper(&["check", "--shard", "3/2"])
        .code(2)
        .stderr(predicate::str::contains("not K/N"));
    // A slice of another plan does not fit, even with the right K/N label.
    project
        .gatekeeper(&[
            "check",
            "--against",
            "main",
            "--shard",
            "2/2",
            "--shapes",
            "small,long",
            "--json",
            "other-2.json",
        ])
        .code(0);
    project
        .gatekeeper(&["merge", "shard-1.json", "other-2.json"])
        .code(2)
        .stderr(predicate::str::contains("a shard of another plan"));
    // A shard alone is part of a decision: it is merged, never judged.
    project
        .gatekeeper(&["report", "shard-1.json"])
        .code(2)
        .stderr(predicate::str::contains(
            "combine the shards with `gatekeeper merge` first",
        ));
}

#[test]
fn report_renders_again_and_judges_again_with_other_thresholds() {
    let project = Project::with_committed_baseline(GATES);
    project.behave_with(
        json!({"mission": {"slowdown": 1.07}, "long": {"slowdown": 1.08}}),
        1,
        "Test GPU",
    );
    project
        .gatekeeper(&["check", "--against", "main", "--json", "run.json"])
        .code(0);
    project
        .gatekeeper(&[
            "report",
            "run.json",
            "--markdown",
            "comment.md",
            "--junit",
            "junit.xml",
        ])
        .code(0);
    let markdown = std::fs::read_to_string(project.path().join("comment.md")).unwrap();
    assert!(markdown.starts_with("## ✅ gatekeeper"), "{markdown}");
    // At a 5 % threshold the same samples are two regressions.
    project
        .gatekeeper(&[
            "report",
            "run.json",
            "--regression-threshold",
            "0.05",
            "--json",
            "strict.json",
        ])
        .code(1);
    let strict = project.json("strict.json");
    assert_eq!(
        verdicts(&strict),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    assert_eq!(strict["gate"]["regression_threshold"], 0.05);
    project
        .gatekeeper(&["report", "run.json", "--alpha", "0.9"])
        .code(2)
        .stderr(predicate::str::contains("--alpha"));
    std::fs::write(project.path().join("junk.json"), "{}").unwrap();
    project
        .gatekeeper(&["report", "junk.json"])
        .code(2)
        .stderr(predicate::str::contains(
            "junk.json: not a gatekeeper run record",
        ));
}

#[test]
fn compare_judges_one_run_against_another() {
    let project = Project::new(GATES);
    project
        .gatekeeper(&["check", "--json", "before.json"])
        .code(0);
    project.behave_with(
        json!({"small": {"slowdown": 1.3}, "long": {"slowdown": 1.3}}),
        4,
        "Test GPU",
    );
    project
        .gatekeeper(&["check", "--json", "after.json"])
        .code(0);
    project
        .gatekeeper(&["compare", "before.json", "after.json", "--json", "cmp.json"])
        .code(1);
    let cmp = project.json("cmp.json");
    assert_eq!(
        verdicts(&cmp),
        ["small/regressed", "mission/unchanged", "long/regressed"]
    );
    assert_eq!(cmp["baselines_from"], "run record before.json");
    project.behave_with(json!({}), 5, "Other GPU");
    project
        .gatekeeper(&["check", "--json", "other.json"])
        .code(0);
    project
        .gatekeeper(&["compare", "before.json", "other.json", "--json", "cmp.json"])
        .code(0);
    let message = project.json("cmp.json")["results"][0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("never compared"), "{message}");
}

#[test]
fn schema_completions_and_doctor_run_without_a_gpu() {
    let project = Project::new(GATES);
    let assert = project.gatekeeper(&["schema"]).code(0);
    let schema: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(schema["title"], "gatekeeper gates.yaml, schema version 1");
    project
        .gatekeeper(&["completions", "bash"])
        .code(0)
        .stdout(predicate::str::contains("_gatekeeper()"));
    if gatekeeper::cuda::driver::driver_present() {
        eprintln!("skipped the no-driver doctor check: this machine has a CUDA driver");
        return;
    }
    project
        .gatekeeper(&["doctor"])
        .code(2)
        .stdout(predicate::str::contains(
            "FAIL CUDA driver: libcuda.so not found",
        ));
}

#[test]
fn every_command_has_help_with_examples() {
    let project = Project::new(GATES);
    for command in [
        vec!["check"],
        vec!["baseline", "refresh"],
        vec!["report"],
        vec!["compare"],
        vec!["merge"],
        vec!["doctor"],
        vec!["schema"],
        vec!["completions"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        project
            .gatekeeper(&args)
            .code(0)
            .stdout(predicate::str::contains("Examples:"));
    }
}

/// A harness that prints exactly the samples in `samples.json`, whatever it was asked for.
const FIXED_SAMPLES_HARNESS: &str = r#"import json
print(json.dumps({"samples_us": json.load(open("samples.json")), "device": "cpu"}))
"#;

#[test]
fn a_regression_with_fewer_samples_than_the_baseline_fails_the_gate() {
    let gates = r#"version: 1
timing: {samples: 5}
shapes:
  a: {N: 1}
  b: {N: 2}
kernels:
  - name: k
    command: ["python3", "fixed.py"]
    shapes: [a, b]
"#;
    let ramp = |base: f64, n: usize| -> Vec<f64> {
        (0..n).map(|i| base + (i % 10) as f64 * 0.1).collect()
    };
    for (n_base, n_cand) in [(200, 50), (50, 200)] {
        let project = Project::new(gates);
        project.write("fixed.py", FIXED_SAMPLES_HARNESS);
        project.write("samples.json", &json!(ramp(100.0, n_base)).to_string());
        project.gatekeeper(&["baseline", "refresh"]).code(0);
        project.commit("baseline");
        project.write("samples.json", &json!(ramp(200.0, n_cand)).to_string());
        project
            .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
            .code(1);
        assert_eq!(
            verdicts(&project.json("out.json")),
            ["a/regressed", "b/regressed"],
            "{n_base} baseline vs {n_cand} candidate samples"
        );
    }
}

#[test]
fn a_norm_wise_error_reaches_every_report() {
    let gates = r#"version: 1
shapes:
  a: {N: 1}
kernels:
  - name: k
    command: ["python3", "wrong.py"]
    shapes: [a]
"#;
    let project = Project::new(gates);
    project.write(
        "wrong.py",
        r#"import json
print(json.dumps({"correct": False, "max_abs_err": 0.004, "rel_l2_err": 1.0,
                  "message": "all zeros", "device": "cpu"}))
"#,
    );
    project
        .gatekeeper(&[
            "check",
            "--json",
            "out.json",
            "--junit",
            "out.xml",
            "--markdown",
            "out.md",
        ])
        .code(1)
        .stdout(predicate::str::contains(
            "max abs err 0.0040, rel L2 err 1.0000",
        ));
    assert_eq!(project.json("out.json")["results"][0]["rel_l2_err"], 1.0);
    for file in ["out.xml", "out.md"] {
        let text = std::fs::read_to_string(project.path().join(file)).unwrap();
        assert!(text.contains("rel L2 err 1.0000"), "{file}: {text}");
    }
}

#[test]
fn a_report_to_dev_stdout_redirected_to_a_file_keeps_the_report_and_the_table() {
    let project = Project::new(GATES);
    let captured = project.path().join("captured.txt");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(project.path())
        .args(["check", "--json", "/dev/stdout"])
        .stdout(std::fs::File::create(&captured).unwrap())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&captured).unwrap();
    // The record first, whole, then the table after it, not over it.
    let record_end = text.find("\n}\n").expect("the JSON record is in the file") + 3;
    let record: Value = serde_json::from_str(&text[..record_end]).unwrap();
    assert_eq!(record["results"].as_array().unwrap().len(), 3);
    assert!(text[record_end..].contains("no_baseline"), "{text}");
}

#[test]
fn warnings_on_a_closed_stderr_and_odd_harness_replies_do_not_crash() {
    let gates = r#"version: 1
timing: {samples: 5}
shapes:
  a: {N: 1}
  b: {N: 2}
kernels:
  - name: k
    command: ["python3", "reply.py"]
    shapes: [a, b]
"#;
    let project = Project::new(gates);
    // Shape a: two samples of five (a warning); shape b: a wrong output with two samples and
    // no warning, since a wrong result is not a short count.
    project.write(
        "reply.py",
        r#"import json, os
if os.environ["GATEKEEPER_SHAPE"] == "a":
    print(json.dumps({"samples_us": [200, 201], "device": "cpu"}))
else:
    print(json.dumps({"samples_us": [1, 2], "correct": False, "device": "cpu"}))
"#,
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(project.path())
        .args(["check"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(1),
        "a closed stderr is not a crash"
    );

    let output = project.gatekeeper(&["check"]).code(1).get_output().clone();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("k/a: the harness returned 2 of the 5"),
        "{stderr}"
    );
    assert!(!stderr.contains("k/b: the harness returned"), "{stderr}");

    project.write("reply.py", "print('{\"error\": \"\"}')\n");
    project
        .gatekeeper(&["check"])
        .code(1)
        .stdout(predicate::str::contains(
            "the harness reported an error without a message",
        ));
}
