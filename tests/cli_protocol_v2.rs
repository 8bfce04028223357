//! Command-harness protocol v2 through the real binary: one process serves every shape of a
//! kernel; a crash, a hang or a bad line fails one shape and the next gets a fresh process.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::{json, Value};

const HARNESS_V2: &str = include_str!("fixtures/harness_v2.py");

fn gates_v2(timeout_s: u32) -> String {
    GATES
        .replace(
            "[\"python3\", \"harness.py\"]",
            "[\"python3\", \"harness_v2.py\"]",
        )
        .replace(
            "    timeout_s: 20",
            &format!("    protocol: 2\n    timeout_s: {timeout_s}"),
        )
}

fn project(timeout_s: u32) -> (Project, tempfile::TempDir) {
    let project = Project::new(&gates_v2(timeout_s));
    project.write("harness_v2.py", HARNESS_V2);
    (project, tempfile::tempdir().unwrap())
}

/// The fixture's log: `start PID` and `request PID SHAPE TIMING_ONLY` lines.
fn log(dir: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_to_string(dir.path().join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn starts(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("start ")).count()
}

fn check(project: &Project, logs: &tempfile::TempDir, args: &[&str]) -> assert_cmd::assert::Assert {
    let log = logs.path().join("log");
    project.gatekeeper_with(&[("FIXTURE_LOG", log.to_str().unwrap())], args)
}

fn message(run: &Value, shape: &str) -> String {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["shape"] == shape)
        .unwrap()["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn one_process_serves_every_shape() {
    let (project, logs) = project(20);
    check(&project, &logs, &["baseline", "refresh"]).code(0);
    let lines = log(&logs);
    assert_eq!(starts(&lines), 1, "{lines:?}");
    assert_eq!(requests(&lines), 3, "{lines:?}");
    project.commit("baseline");
    check(&project, &logs, &["check", "--json", "out.json"]).code(0);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/unchanged", "long/unchanged"]
    );
    assert_eq!(starts(&log(&logs)), 2);
    // The run record counts the processes, and times each shape.
    let time = &run["time"]["attn"];
    assert_eq!(time["processes"], 1);
    assert!(time["startup_s"].as_f64().unwrap() > 0.0, "{time}");
    assert!(time["measuring_s"].as_f64().unwrap() > 0.0, "{time}");
    for result in run["results"].as_array().unwrap() {
        assert!(result["wall_s"].as_f64().unwrap() > 0.0, "{result}");
    }
}

#[test]
fn a_crash_fails_its_shape_and_the_next_shape_gets_a_fresh_process() {
    let (project, logs) = project(20);
    project.behave(json!({"mission": {"crash": true}}));
    check(&project, &logs, &["check", "--json", "out.json"]).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/no_baseline", "mission/error", "long/no_baseline"]
    );
    assert!(message(&run, "mission").contains("exit status: 3"), "{run}");
    let mission = &run["results"][1];
    let tail = mission["stderr_tail"].as_str().unwrap();
    // This request's stderr (best effort: a late line of the previous one may precede it).
    assert!(
        tail.contains("serving attn/mission") && tail.contains("illegal memory access"),
        "{tail}"
    );
    assert_eq!(starts(&log(&logs)), 2);
}

#[test]
fn a_harness_that_says_it_exits_is_replaced_before_the_next_shape() {
    let (project, logs) = project(20);
    project.behave(json!({"mission": {"fail_and_exit": true}}));
    check(&project, &logs, &["check", "--json", "out.json"]).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/no_baseline", "mission/error", "long/no_baseline"]
    );
    assert_eq!(message(&run, "mission"), "the context is gone");
    assert_eq!(starts(&log(&logs)), 2);
}

#[test]
fn a_hung_request_times_out_alone() {
    // Long enough for a Python start on a loaded 2-core machine.
    let (project, logs) = project(5);
    project.behave(json!({"mission": {"hang": true}}));
    check(&project, &logs, &["check", "--json", "out.json"]).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/no_baseline", "mission/error", "long/no_baseline"]
    );
    assert!(
        message(&run, "mission").contains("timed out after 5 s"),
        "{run}"
    );
    assert_eq!(starts(&log(&logs)), 2);
}

#[test]
fn a_line_that_is_not_a_response_fails_its_shape() {
    let (project, logs) = project(20);
    project.behave(json!({"small": {"garbage": true}}));
    check(&project, &logs, &["check", "--json", "out.json"]).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/error", "mission/no_baseline", "long/no_baseline"]
    );
    assert!(message(&run, "small").contains("cannot parse"), "{run}");
    assert_eq!(starts(&log(&logs)), 2);
}

#[test]
fn a_harness_that_never_says_ready_is_an_error() {
    let (project, logs) = project(1);
    project.write(
        "behavior.json",
        &json!({"device": "Test GPU", "never_ready": true, "shapes": {}}).to_string(),
    );
    check(&project, &logs, &["check", "--json", "out.json"]).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/error", "mission/error", "long/error"]
    );
    assert!(
        message(&run, "small").contains("was not ready after 1 s"),
        "{run}"
    );
    assert!(run["results"][0]["stderr_tail"]
        .as_str()
        .unwrap()
        .contains("loading forever"));
}

#[test]
fn ab_rounds_start_a_process_per_side_and_round_and_ask_for_timing_only() {
    let (project, logs) = project(20);
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    project.commit("baseline");
    project.branch("feature");
    check(
        &project,
        &logs,
        &[
            "check",
            "--against",
            "main",
            "--ab",
            "--shapes",
            "small",
            "--json",
            "out.json",
        ],
    )
    .code(0);
    let lines = log(&logs);
    // One process served the check's own run; each round samples a fresh one per side, so a
    // process's own offset cannot pass for a difference between the builds (3 rounds here).
    assert_eq!(starts(&lines), 7, "{lines:?}");
    let timing_only: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("request "))
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        timing_only,
        ["False", "True", "True", "True", "True", "True", "True"]
    );
    assert_eq!(
        project.json("out.json")["results"][0]["ab"]["verdict"],
        "unchanged"
    );
}

#[test]
fn protocol_is_checked() {
    let project =
        Project::new(&GATES.replace("    timeout_s: 20", "    protocol: 3\n    timeout_s: 20"));
    project
        .gatekeeper(&["check"])
        .code(2)
        .stderr(predicates::str::contains("kernels[0].protocol"));
}

#[test]
fn the_shipped_python_examples_speak_both_protocols() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("kernels")).unwrap();
    for file in [
        "example_sum.py",
        "example_sum_v1.py",
        "gatekeeper_harness.py",
    ] {
        std::fs::copy(
            repo.join("kernels").join(file),
            dir.path().join("kernels").join(file),
        )
        .unwrap();
    }
    let gates = r#"version: 1
timing: {warmup: 1, samples: 5}
shapes:
  a: {N: 1000}
  b: {N: 3000}
kernels:
  - name: served
    command: ["python3", "kernels/example_sum.py"]
    protocol: 2
    shapes: [a, b]
  - name: plain
    command: ["python3", "kernels/example_sum_v1.py"]
    shapes: [a, b]
  - name: served_as_v1
    command: ["python3", "kernels/example_sum.py"]
    shapes: [a]
"#;
    std::fs::write(dir.path().join("gates.yaml"), gates).unwrap();
    assert_cmd::Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(dir.path())
        .args(["check", "--json", "out.json"])
        .assert()
        .code(0);
    let run: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap())
            .unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    for result in results {
        assert_eq!(result["verdict"], "no_baseline", "{result}");
        assert_eq!(result["correct"], true, "{result}");
        assert_eq!(result["candidate_samples_us"].as_array().unwrap().len(), 5);
    }
}

fn requests(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.starts_with("request ")).count()
}

/// A v2 kernel with `inputs:`, its baselines committed on main, on a `feature` branch.
fn keyed() -> (Project, tempfile::TempDir) {
    let gates = gates_v2(20).replace(
        "    protocol: 2\n",
        "    protocol: 2\n    inputs: [\"harness_v2.py\", \"behavior.json\"]\n",
    );
    let project = Project::new(&gates);
    project.write("harness_v2.py", HARNESS_V2);
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(project.baseline_path()).unwrap()).unwrap();
    assert_eq!(
        baseline["shapes"]["small"]["provenance"]["inputs_key"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    project.commit("baseline");
    project.branch("feature");
    (project, tempfile::tempdir().unwrap())
}

#[test]
fn a_kernel_whose_inputs_did_not_change_is_not_measured() {
    let (project, logs) = keyed();
    check(
        &project,
        &logs,
        &["check", "--against", "main", "--json", "out.json"],
    )
    .code(0);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/unchanged", "long/unchanged"]
    );
    for result in run["results"].as_array().unwrap() {
        assert_eq!(result["reused"], true, "{result}");
        assert!(result["message"].as_str().unwrap().contains("not measured"));
        assert_eq!(
            result["candidate_samples_us"],
            result["baseline_samples_us"]
        );
    }
    // Started to learn its device; asked for nothing.
    let lines = log(&logs);
    assert_eq!((starts(&lines), requests(&lines)), (1, 0), "{lines:?}");

    // --all measures it anyway.
    check(
        &project,
        &logs,
        &["check", "--against", "main", "--all", "--json", "out.json"],
    )
    .code(0);
    let run = project.json("out.json");
    assert!(run["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reused"] == false));
    assert_eq!(requests(&log(&logs)), 3);
}

#[test]
fn a_changed_input_file_or_entry_is_measured() {
    let (project, logs) = keyed();
    project.behave(json!({"mission": {"slowdown": 1.15}, "long": {"slowdown": 1.15}}));
    check(
        &project,
        &logs,
        &["check", "--against", "main", "--json", "out.json"],
    )
    .code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    assert!(run["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reused"] == false));

    project.behave(json!({}));
    let gates = std::fs::read_to_string(project.path().join("gates.yaml")).unwrap();
    project.write(
        "gates.yaml",
        &gates.replace("timeout_s: 20", "timeout_s: 21"),
    );
    check(
        &project,
        &logs,
        &["check", "--against", "main", "--json", "out.json"],
    )
    .code(0);
    let run = project.json("out.json");
    assert!(run["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reused"] == false));
}

#[test]
fn inputs_are_checked() {
    let project = Project::new(&GATES.replace(
        "    timeout_s: 20",
        "    inputs: [\"/etc/passwd\", \"../x\", \"[\"]\n    timeout_s: 20",
    ));
    project.gatekeeper(&["check"]).code(2).stderr(
        predicates::str::contains("kernels[0].inputs[0]")
            .and(predicates::str::contains("kernels[0].inputs[1]"))
            .and(predicates::str::contains("kernels[0].inputs[2]")),
    );
}

#[test]
fn the_shipped_v2_example_is_reused_when_unchanged() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let gates = r#"version: 1
timing: {warmup: 1, samples: 5}
shapes:
  a: {N: 1000}
kernels:
  - name: served
    command: ["python3", "kernels/example_sum.py"]
    protocol: 2
    inputs: [kernels/example_sum.py, kernels/gatekeeper_harness.py]
    shapes: [a]
"#;
    let project = Project::new(gates);
    for file in ["example_sum.py", "gatekeeper_harness.py"] {
        let text = std::fs::read_to_string(repo.join("kernels").join(file)).unwrap();
        project.write(&format!("kernels/{file}"), &text);
    }
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    project.commit("baseline");
    project.branch("feature");
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    assert_eq!(project.json("out.json")["results"][0]["reused"], true);
    // An edit to the harness is measured.
    let path = "kernels/example_sum.py";
    let text = std::fs::read_to_string(project.path().join(path)).unwrap();
    project.write(path, &format!("{text}\n# edited\n"));
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    assert_eq!(project.json("out.json")["results"][0]["reused"], false);
}

/// A v2 kernel with no `inputs:` whose harness names a key when ready, baselines committed on
/// main, on a `feature` branch.
fn announced_key() -> (Project, tempfile::TempDir) {
    let (project, logs) = project(20);
    project.write(
        "behavior.json",
        // Short, and not ASCII: a harness names its key as it likes.
        &json!({"device": "Test GPU", "key": "ключ", "compile_s": 0.25, "shapes": {}}).to_string(),
    );
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    let baseline: Value =
        serde_json::from_str(&std::fs::read_to_string(project.baseline_path()).unwrap()).unwrap();
    assert_eq!(
        baseline["shapes"]["long"]["provenance"]["inputs_key"],
        "ключ"
    );
    project.commit("baseline");
    project.branch("feature");
    (project, logs)
}

#[test]
fn a_key_named_in_the_ready_line_lets_an_unchanged_kernel_be_reused() {
    let (project, logs) = announced_key();
    check(
        &project,
        &logs,
        &["check", "--against", "main", "--json", "out.json"],
    )
    .code(0);
    let run = project.json("out.json");
    assert!(run["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reused"] == true));
    let lines = log(&logs);
    assert_eq!((starts(&lines), requests(&lines)), (1, 0), "{lines:?}");
    // The idle server was stopped as soon as its kernel was reused.
    assert!(lines.iter().any(|l| l.starts_with("exit ")), "{lines:?}");
    // Start-up and the compile the ready line reported are counted.
    let time = &run["time"]["attn"];
    let compile_s = time["compile_s"].as_f64().unwrap();
    assert!(compile_s > 0.0 && compile_s <= 0.25, "{time}");
    // Part of the start-up, whatever the harness claims.
    assert!(time["startup_s"].as_f64().unwrap() >= compile_s, "{time}");

    // The harness names another key (its code changed): measured.
    project.write(
        "behavior.json",
        &json!({"device": "Test GPU", "key": "k2", "shapes": {}}).to_string(),
    );
    check(
        &project,
        &logs,
        &["check", "--against", "main", "--json", "out.json"],
    )
    .code(0);
    let run = project.json("out.json");
    assert!(run["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reused"] == false));
}

#[test]
fn each_kernels_server_stops_when_its_last_shape_is_measured() {
    let (project, logs) = project(20);
    let gates = std::fs::read_to_string(project.path().join("gates.yaml")).unwrap();
    let second = "  - name: attn2\n    command: [\"python3\", \"harness_v2.py\"]\n    shapes: [small]\n    protocol: 2\n    timeout_s: 20\n";
    project.write("gates.yaml", &format!("{gates}{second}"));
    check(&project, &logs, &["check", "--json", "out.json"]).code(0);
    let lines = log(&logs);
    let events: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    // Both start before anything is measured; the first exits before the second is asked.
    assert_eq!(
        events,
        ["start", "start", "request", "request", "request", "exit", "request", "exit"],
        "{lines:?}"
    );
}
