//! Same-runner A/B through the real binary: the cases a review found broken.

mod common;

use common::*;
use serde_json::Value;

const CHECK: [&str; 5] = ["check", "--against", "main", "--json", "out.json"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    CHECK.iter().copied().chain(extra.iter().copied()).collect()
}

/// Baselines measured and committed on main at ~100 µs, then a `feature` branch checked out.
fn forked(gates: &str) -> Project {
    let project = Project::with_committed_baseline(gates);
    project.branch("feature");
    project
}

#[test]
fn a_symlinked_gates_yaml_reads_its_target_in_the_base() {
    let project = Project::new(GATES);
    // gates.yaml names the configuration kept beside it under another name.
    std::fs::rename(
        project.path().join("gates.yaml"),
        project.path().join("gates-ci.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("gates-ci.yaml", project.path().join("gates.yaml")).unwrap();
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    project.commit("baselines");
    project.branch("feature");
    project
        .gatekeeper(&args(&["--ab", "--shapes", "small"]))
        .code(0);
    let run = project.json("out.json");
    let small = &run["results"][0];
    assert_eq!(small["ab"]["verdict"], "unchanged", "{small}");
}

#[test]
fn an_invalid_base_config_is_named_without_the_removed_export_folder() {
    let project = Project::with_committed_baseline(GATES);
    project.write("gates.yaml", &format!("{GATES}bogus_key: 1\n"));
    project.commit("main breaks gates.yaml");
    project.branch("feature");
    project.write("gates.yaml", GATES);
    project.commit("the branch fixes it");
    project.gatekeeper(&args(&["--ab"])).code(0);
    let run = project.json("out.json");
    for r in run["results"].as_array().unwrap() {
        assert_eq!(r["ab"], Value::Null);
        let message = r["message"].as_str().unwrap();
        assert!(
            message.contains("the base's gates.yaml (") && message.contains("bogus_key"),
            "{message}"
        );
        // The exported folder is gone by the time anyone reads this, and a shape's message is
        // one line in the tables.
        assert!(!message.contains("gatekeeper-base-"), "{message}");
        assert!(!message.contains('\n'), "{message:?}");
    }
}

#[test]
fn compare_of_ab_records_does_not_claim_an_ab_verdict() {
    let project = forked(GATES);
    project
        .gatekeeper(&args(&["--ab", "--shapes", "small"]))
        .code(0);
    std::fs::rename(
        project.path().join("out.json"),
        project.path().join("a.json"),
    )
    .unwrap();
    assert!(project.json("a.json")["ab_base"].is_string());
    project
        .gatekeeper(&["compare", "a.json", "a.json", "--json", "c.json"])
        .code(0);
    let compared = project.json("c.json");
    // Every verdict is the comparison of the two records: none comes from A/B rounds.
    assert_eq!(compared["results"][0]["ab"], Value::Null);
    assert_eq!(compared.get("ab_base"), None, "{}", compared["ab_base"]);
    assert_eq!(compared["gate"]["confirm"], "none");
}

#[test]
fn an_interrupted_ab_check_removes_the_exported_base() {
    let project = Project::new(GATES);
    // The base's harness announces itself, then hangs until the check is interrupted.
    let harness = HARNESS.replace(
        "if spec.get(\"crash\"):",
        "if os.environ.get(\"GATEKEEPER_SIDE\") == \"base\":\n    open(os.environ[\"FIXTURE_MARK\"], \"w\").close()\n    time.sleep(60)\nif spec.get(\"crash\"):",
    );
    project.write("harness.py", &harness);
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    project.commit("baselines, and a harness that hangs as the base");
    project.branch("feature");
    let temp = tempfile::tempdir().unwrap();
    let mark = temp.path().join("base-started");
    let exports = temp.path().join("tmp");
    std::fs::create_dir(&exports).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(project.path())
        .env("TMPDIR", &exports)
        .env("FIXTURE_MARK", &mark)
        .args(args(&["--ab", "--shapes", "small"]))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !mark.exists() {
        assert!(started.elapsed().as_secs() < 30, "the base never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let exported: Vec<_> = std::fs::read_dir(&exports).unwrap().collect();
    assert_eq!(exported.len(), 1, "the base is exported under TMPDIR");
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let left: Vec<_> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn report_rejudging_an_ab_shape_without_a_baseline_keeps_one_copy_of_its_note() {
    // No stored baseline on main; a budget too small for a round ends the A/B with a note.
    let gates = GATES.replace("alpha: 0.05}", "alpha: 0.05, ab: {max_seconds: 0.001}}");
    let project = Project::new(&gates);
    project.commit("no baselines");
    project.branch("feature");
    project
        .gatekeeper(&args(&["--ab", "--shapes", "small"]))
        .code(0);
    let run = project.json("out.json");
    let small = &run["results"][0];
    assert_eq!(small["ab"]["verdict"], "inconclusive", "{small}");
    let message = small["message"].as_str().unwrap().to_string();
    assert_eq!(message.matches("max_seconds").count(), 1, "{message}");
    project
        .gatekeeper(&[
            "report",
            "out.json",
            "--regression-threshold",
            "0.2",
            "--json",
            "again.json",
        ])
        .code(0);
    let again = project.json("again.json");
    assert_eq!(again["results"][0]["message"].as_str().unwrap(), message);
}

#[test]
fn a_timing_only_variable_in_the_environment_does_not_turn_off_the_checks() {
    let project = forked(GATES);
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("runs.log");
    // Left set in the job's environment (or by a harness that runs gatekeeper itself).
    project
        .gatekeeper_with(
            &[
                ("FIXTURE_LOG", log.to_str().unwrap()),
                ("GATEKEEPER_TIMING_ONLY", "1"),
            ],
            &args(&["--ab", "--shapes", "small"]),
        )
        .code(0);
    let lines = std::fs::read_to_string(&log).unwrap();
    let timing_only: Vec<&str> = lines
        .lines()
        .map(|line| line.split(' ').nth(1).unwrap())
        .collect();
    // Gate 2 runs in the check's own run whatever the environment says; only rounds skip it.
    assert_eq!(timing_only, ["0", "1", "1", "1", "1", "1", "1"], "{lines}");
}
