//! `gatekeeper check` end to end: verdicts against committed baselines, harnesses that crash,
//! hang and lie, refs and devices that baselines come from, and the reports a check writes.

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

/// One shape of each outcome a JUnit reporter shows differently, at the default seed.
const FOUR_OUTCOMES: &str = r#"version: 1
gate: {regression_threshold: 0.10, min_regressed_shapes: 1, alpha: 0.05}
timing: {warmup: 1, samples: 40}
shapes:
  passing: {N: 1}
  regressed: {N: 2}
  incorrect: {N: 3}
  errored: {N: 4}
kernels:
  - name: attn
    command: ["python3", "harness.py"]
    shapes: [passing, regressed, incorrect, errored]
    timeout_s: 20
"#;

/// The committed JUnit report of `FOUR_OUTCOMES`, normalised by `normalise_junit`.
const JUNIT_GOLDEN: &str = "tests/fixtures/golden/junit.xml";

/// Replaces every value of `attribute="..."` with `with`.
fn mask_attribute(xml: &str, attribute: &str, with: &str) -> String {
    let start = format!(" {attribute}=\"");
    let mut out = String::new();
    let mut rest = xml;
    while let Some(at) = rest.find(&start) {
        let (head, tail) = rest.split_at(at + start.len());
        out.push_str(head);
        out.push_str(with);
        rest = tail.find('"').map_or("", |end| &tail[end..]);
    }
    out.push_str(rest);
    out
}

/// Writes each number in `text` as `N`.
fn mask_numbers(text: &str) -> String {
    let mut out = String::new();
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() || (in_number && c == '.') {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// Masks the measured numbers of each `<verdict>: baseline 37.65 ± 0.38 µs, candidate ...,
/// p 0.210` summary, in an attribute or a CDATA line: they follow the statistics, and the golden
/// pins the report's shape, not the harness's random draw.
fn mask_summaries(xml: &str) -> String {
    const START: &str = ": baseline ";
    let mut out = String::new();
    let mut rest = xml;
    while let Some(at) = rest.find(START) {
        let (head, tail) = rest.split_at(at + START.len());
        out.push_str(head);
        let end = tail.find(['"', ']', '\n']).unwrap_or(tail.len());
        out.push_str(&mask_numbers(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The parts of a JUnit report that change from run to run: when it ran, how long it took,
/// where the project was, and the measured times.
fn normalise_junit(xml: &str, project: &Path) -> String {
    let xml = xml.replace(&project.display().to_string(), "PROJECT");
    let xml = mask_attribute(&xml, "timestamp", "TIMESTAMP");
    let xml = mask_attribute(&xml, "time", "TIME");
    mask_summaries(&xml)
}

/// `name:outcome` per testcase, read by Python's own XML parser: the report is well-formed XML
/// that a reporter other than ours can read.
fn testcase_outcomes(xml_file: &Path) -> Vec<String> {
    let script = r#"import sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    outcomes = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
    print(case.get("name") + ":" + (outcomes[0] if outcomes else "ok"))
"#;
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(xml_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The JUnit report of a real check, compared with a committed golden file. After a deliberate
/// change to the report, regenerate the golden with
/// `GATEKEEPER_BLESS=1 cargo test --test cli_check junit_of_a_real_check_matches_the_golden_file`
/// and review its diff.
#[test]
fn junit_of_a_real_check_matches_the_golden_file() {
    let project = Project::with_committed_baseline(FOUR_OUTCOMES);
    project.behave_with(
        json!({
            "regressed": {"slowdown": 1.3},
            "incorrect": {"correct": false},
            "errored": {"crash": true},
        }),
        1,
        "Test GPU",
    );
    project
        .gatekeeper(&["check", "--against", "main", "--junit", "out.xml"])
        .code(1);
    let xml_file = project.path().join("out.xml");
    assert_eq!(
        testcase_outcomes(&xml_file),
        [
            "passing:ok",
            "regressed:failure",
            "incorrect:failure",
            "errored:error"
        ]
    );
    let xml = std::fs::read_to_string(&xml_file).unwrap();
    // The regression was confirmed beside the base, whose commit id changes with every run.
    let base = project.repo.head().unwrap().peel_to_commit().unwrap().id();
    let xml = xml.replace(&base.to_string()[..12], "BASE");
    let actual = normalise_junit(&xml, project.path());
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(JUNIT_GOLDEN);
    if std::env::var_os("GATEKEEPER_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_else(|err| {
        panic!("{JUNIT_GOLDEN}: {err}; write it with GATEKEEPER_BLESS=1 (see this test's comment)")
    });
    assert_eq!(
        actual, expected,
        "the JUnit report differs from {JUNIT_GOLDEN}; if the change is meant, regenerate it with \
         GATEKEEPER_BLESS=1 (see this test's comment)"
    );
}

#[test]
fn against_a_ref_reads_the_merge_base_unless_the_tip_is_asked_for() {
    // main: baselines at ~100 µs, then `feature` forks, then main's baselines move to ~50 µs
    // (a faster machine, or a faster kernel merged after the fork).
    let project = Project::with_committed_baseline(GATES);
    let fork = project.repo.head().unwrap().peel_to_commit().unwrap();
    project.repo.branch("feature", &fork, false).unwrap();
    project.behave(json!({
        "small": {"slowdown": 0.5}, "mission": {"slowdown": 0.5}, "long": {"slowdown": 0.5}
    }));
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    project.commit("faster baselines on main");
    project.repo.set_head("refs/heads/feature").unwrap();
    project.behave(json!({}));

    // The feature branch is judged against what it forked from: unchanged.
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0)
        .stdout(predicate::str::contains("main's merge-base with HEAD"));
    let run = project.json("out.json");
    assert!(
        run["baselines_from"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "main's merge-base with HEAD ({}",
                &fork.id().to_string()[..12]
            )),
        "{}",
        run["baselines_from"]
    );
    assert!(
        verdicts(&run).iter().all(|v| v.ends_with("/unchanged")),
        "{:?}",
        verdicts(&run)
    );

    // Against main's tip, the later, faster baselines make it look twice as slow.
    project
        .gatekeeper(&[
            "check",
            "--against",
            "main",
            "--against-tip",
            "--json",
            "tip.json",
        ])
        .code(1);
    let tip = project.json("tip.json");
    assert!(
        verdicts(&tip).iter().all(|v| v.ends_with("/regressed")),
        "{:?}",
        verdicts(&tip)
    );
    assert!(tip["baselines_from"]
        .as_str()
        .unwrap()
        .starts_with("main ("));

    // --against-tip means nothing without --against.
    project.gatekeeper(&["check", "--against-tip"]).code(2);
}
