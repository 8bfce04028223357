//! Same-runner A/B through the real binary: the base built from git beside the candidate, for
//! every decision path. The fixture harness is deterministic (a base and a candidate process of
//! the same behaviour print the same samples), so each test stops at the third round.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::{json, Value};

const CHECK: [&str; 5] = ["check", "--against", "main", "--json", "out.json"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    CHECK.iter().copied().chain(extra.iter().copied()).collect()
}

fn result<'r>(run: &'r Value, kernel: &str, shape: &str) -> &'r Value {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kernel"] == kernel && r["shape"] == shape)
        .unwrap_or_else(|| panic!("no result for {kernel}/{shape}"))
}

/// Baselines measured and committed on main at ~100 µs, then a `feature` branch checked out.
fn forked(gates: &str) -> Project {
    let project = Project::with_committed_baseline(gates);
    project.branch("feature");
    project
}

#[test]
fn drift_alone_is_named_as_drift_and_passes_once_confirmed_beside_the_base() {
    let project = forked(GATES);
    // Unchanged code on a runner 20 % slower than the one the baselines came from.
    let slower = [("FIXTURE_MACHINE", "1.2")];
    project.gatekeeper_with(&slower, &args(&[])).code(0);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/unchanged", "long/unchanged"]
    );
    assert_eq!(run["gate"]["confirm"], "ab");
    assert!(
        run["ab_base"].as_str().unwrap().starts_with("main ("),
        "{}",
        run["ab_base"]
    );
    for r in run["results"].as_array().unwrap() {
        // The stored comparison is kept beside the A/B one that replaced its verdict.
        assert!(r["ratio"].as_f64().unwrap() > 1.15, "{r}");
        let ab = &r["ab"];
        assert_eq!(ab["verdict"], "unchanged");
        assert_eq!(ab["rounds"], 3);
        assert!((ab["ratio"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{ab}");
        let ci = ab["ratio_ci"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() <= 1.0 && ci[1].as_f64().unwrap() >= 1.0);
        assert_eq!(ab["medians_us"].as_array().unwrap().len(), 3);
        let message = r["message"].as_str().unwrap();
        assert!(
            message.contains("stored baseline said regressed") && message.contains("drifted"),
            "{message}"
        );
    }

    // `confirm: none` keeps the stored verdicts, which fail on this runner.
    project.write(
        "gates.yaml",
        &GATES.replace("alpha: 0.05}", "alpha: 0.05, confirm: none}"),
    );
    project.gatekeeper_with(&slower, &args(&[])).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/regressed", "mission/regressed", "long/regressed"]
    );
    assert_eq!(run["results"][0]["ab"], Value::Null);
    assert_eq!(run["gate"]["confirm"], "none");
}

#[test]
fn a_real_regression_is_confirmed_beside_the_base() {
    let project = forked(GATES);
    project.behave(json!({"mission": {"slowdown": 1.15}, "long": {"slowdown": 1.15}}));
    project.commit("slower mission and long");
    project
        .gatekeeper(&args(&[]))
        .code(1)
        .stdout(predicate::str::contains("A/B"));
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    // Only the doubtful shapes were measured again.
    assert_eq!(result(&run, "attn", "small")["ab"], Value::Null);
    let ab = &result(&run, "attn", "mission")["ab"];
    assert_eq!(ab["verdict"], "regressed");
    assert!((ab["ratio"].as_f64().unwrap() - 1.15).abs() < 1e-6, "{ab}");
    assert_eq!(ab["base_commit"].as_str().unwrap().len(), 40);
}

#[test]
fn a_regression_hidden_by_a_faster_runner_is_caught_by_ab() {
    let project = forked(GATES);
    project.behave(json!({"mission": {"slowdown": 1.15}, "long": {"slowdown": 1.15}}));
    project.commit("slower mission and long");
    // A runner 15 % faster than the baselines' hides the slowdown from the stored comparison...
    let faster = [("FIXTURE_MACHINE", "0.85")];
    project.gatekeeper_with(&faster, &args(&[])).code(0);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/improved", "mission/unchanged", "long/unchanged"]
    );
    // ...but not from the base measured on the same runner.
    project.gatekeeper_with(&faster, &args(&["--ab"])).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    for r in run["results"].as_array().unwrap() {
        assert!(r["ab"].is_object(), "{r}");
    }
    let markdown = {
        project
            .gatekeeper_with(&faster, &args(&["--ab", "--markdown", "out.md"]))
            .code(1);
        std::fs::read_to_string(project.path().join("out.md")).unwrap()
    };
    assert!(markdown.contains("1.150×"), "{markdown}");
    assert!(markdown.contains("3 rounds"), "{markdown}");
}

#[test]
fn a_kernel_or_shape_new_in_head_is_reported_as_missing_from_the_base() {
    let project = forked(GATES);
    let with_new = GATES.replace(
        "  long: {B: 1, H: 16, S: 8192, D: 64}\n",
        "  long: {B: 1, H: 16, S: 8192, D: 64}\n  tiny: {B: 1, H: 1, S: 64, D: 64}\n",
    ) + r#"  - name: attn2
    command: ["python3", "harness.py"]
    shapes: [small]
"#;
    let with_new = with_new.replace(
        "shapes: [small, mission, long]",
        "shapes: [small, mission, long, tiny]",
    );
    project.write("gates.yaml", &with_new);
    project.commit("a new kernel and a new shape");
    project.gatekeeper(&args(&["--ab"])).code(0);
    let run = project.json("out.json");
    let new_kernel = result(&run, "attn2", "small");
    assert_eq!(new_kernel["verdict"], "no_baseline");
    assert_eq!(new_kernel["ab"], Value::Null);
    let message = new_kernel["message"].as_str().unwrap();
    assert!(message.contains("kernel attn2 is new"), "{message}");
    let new_shape = result(&run, "attn", "tiny");
    assert_eq!(new_shape["verdict"], "no_baseline");
    let message = new_shape["message"].as_str().unwrap();
    assert!(
        message.contains("shape tiny of kernel attn is new"),
        "{message}"
    );
    assert_eq!(result(&run, "attn", "small")["ab"]["verdict"], "unchanged");
}

#[test]
fn a_shape_whose_parameters_changed_is_not_compared_with_the_base() {
    let project = forked(GATES);
    project.write(
        "gates.yaml",
        &GATES.replace("small: {B: 1, H: 8,", "small: {B: 2, H: 8,"),
    );
    project.commit("small is bigger now");
    project.gatekeeper(&args(&["--ab"])).code(0);
    let run = project.json("out.json");
    let small = result(&run, "attn", "small");
    assert_eq!(small["ab"], Value::Null);
    let message = small["message"].as_str().unwrap();
    assert!(
        message.contains("other parameters in the base"),
        "{message}"
    );
    assert_eq!(
        result(&run, "attn", "mission")["ab"]["verdict"],
        "unchanged"
    );
}

#[test]
fn a_base_whose_harness_fails_leaves_the_stored_verdict_and_says_why() {
    let project = Project::with_committed_baseline(GATES);
    // main breaks `mission` after its baselines were stored; the branch fixes it.
    project.behave(json!({"mission": {"crash": true}}));
    project.commit("mission crashes");
    project.branch("feature");
    project.behave(json!({"mission": {"slowdown": 1.15}}));
    project.commit("mission fixed, but slower");
    project.gatekeeper(&args(&["--ab"])).code(0);
    let run = project.json("out.json");
    let mission = result(&run, "attn", "mission");
    // The stored comparison's verdict stands: one regressed shape does not fail the kernel.
    assert_eq!(mission["verdict"], "regressed");
    assert_eq!(mission["ab"], Value::Null);
    let message = mission["message"].as_str().unwrap();
    assert!(
        message.contains("not measured by A/B: the base failed in round 1")
            && message.contains("exit status: 3"),
        "{message}"
    );
    assert_eq!(result(&run, "attn", "small")["ab"]["verdict"], "unchanged");
}

#[test]
fn a_candidate_that_fails_in_a_round_is_an_error() {
    let project = forked(GATES);
    // Fails on its second run: the check's own measurement passes, the first A/B round does not.
    let harness = HARNESS.replace(
        "if spec.get(\"crash\"):",
        "if os.environ.get(\"GATEKEEPER_SIDE\") == \"candidate\" and os.path.exists(\"ran-once\"):\n    sys.exit(9)\nopen(\"ran-once\", \"w\").close()\nif spec.get(\"crash\"):",
    );
    project.write("harness.py", &harness);
    project.write(".gitignore", "*.xml\n*.md\nout.json\nran-once\n");
    project.commit("flaky harness");
    project
        .gatekeeper(&args(&["--ab", "--shapes", "small"]))
        .code(1);
    let run = project.json("out.json");
    let small = result(&run, "attn", "small");
    assert_eq!(small["verdict"], "error");
    assert!(
        small["message"]
            .as_str()
            .unwrap()
            .starts_with("A/B round 1:"),
        "{small}"
    );
}

#[test]
fn sides_alternate_and_the_base_runs_in_its_own_exported_tree() {
    let project = forked(GATES);
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("runs.log");
    project
        .gatekeeper_with(
            &[("FIXTURE_LOG", log.to_str().unwrap())],
            &args(&["--ab", "--shapes", "small"]),
        )
        .code(0);
    let lines = std::fs::read_to_string(&log).unwrap();
    let runs: Vec<(&str, &str, &str)> = lines
        .lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let side = parts.next().unwrap();
            let timing_only = parts.next().unwrap();
            let _job = parts.next().unwrap();
            (side, timing_only, parts.next().unwrap())
        })
        .collect();
    let sides: Vec<&str> = runs.iter().map(|(side, _, _)| *side).collect();
    // The check's own run, then rounds in ABBA order: AB, BA, AB.
    assert_eq!(
        sides,
        [
            "candidate",
            "base",
            "candidate",
            "candidate",
            "base",
            "base",
            "candidate"
        ]
    );
    // Gate 2 ran in the check's own run; the rounds are told they only time.
    let timing_only: Vec<&str> = runs.iter().map(|(_, t, _)| *t).collect();
    assert_eq!(timing_only, ["0", "1", "1", "1", "1", "1", "1"]);
    // Seven v1 processes, both trees counted.
    let time = &project.json("out.json")["time"]["attn"];
    assert_eq!(time["processes"], 7);
    // The rounds took time, and the check counted it.
    assert!(time["ab_s"].as_f64().unwrap() > 0.0, "{time}");
    assert!(time["measuring_s"].as_f64().unwrap() > 0.0, "{time}");
    let project_dir = project.path().canonicalize().unwrap();
    for (side, _, cwd) in runs {
        let cwd = std::path::Path::new(cwd);
        if side == "candidate" {
            assert_eq!(cwd.canonicalize().unwrap(), project_dir);
        } else {
            assert!(!cwd.starts_with(&project_dir), "{}", cwd.display());
            // The exported base is removed when the check ends.
            assert!(!cwd.exists(), "{}", cwd.display());
        }
    }
}

#[test]
fn setup_runs_in_each_tree_before_its_first_measurement() {
    let setup = r#"    setup: ["python3", "-c", "open('built.txt', 'w').write('ok')"]
    timeout_s: 20"#;
    let gates = GATES.replace("    timeout_s: 20", setup);
    let project = Project::new(&gates);
    project.write(".gitignore", "*.xml\n*.md\nout.json\nbuilt.txt\n");
    project.write(
        "behavior.json",
        &json!({"device": "Test GPU", "setup_file": "built.txt", "shapes": {}}).to_string(),
    );
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    project.commit("baseline");
    project.branch("feature");
    project.gatekeeper(&args(&["--ab"])).code(0);
    let run = project.json("out.json");
    // The base, exported without the ignored built.txt, could only run after its own setup.
    for r in run["results"].as_array().unwrap() {
        assert_eq!(r["ab"]["verdict"], "unchanged", "{r}");
    }

    let failing = GATES.replace(
        "    timeout_s: 20",
        "    setup: [\"python3\", \"-c\", \"import sys; sys.exit(5)\"]\n    timeout_s: 20",
    );
    project.write("gates.yaml", &failing);
    project.gatekeeper(&args(&[])).code(1);
    let run = project.json("out.json");
    for r in run["results"].as_array().unwrap() {
        assert_eq!(r["verdict"], "error");
        let message = r["message"].as_str().unwrap();
        assert!(
            message.contains("setup `python3 -c") && message.contains("failed: exit status: 5"),
            "{message}"
        );
    }
}

#[test]
fn ab_without_a_base_is_a_usage_error() {
    let project = Project::with_committed_baseline(GATES);
    project
        .gatekeeper(&["check", "--ab"])
        .code(2)
        .stderr(predicate::str::contains("--ab").and(predicate::str::contains("--against REF")));
    project.write(
        "gates.yaml",
        &GATES.replace("alpha: 0.05}", "alpha: 0.05, confirm: ab}"),
    );
    project
        .gatekeeper(&["check"])
        .code(2)
        .stderr(predicate::str::contains("gate.confirm: ab"));
    // Unset, confirmation needs --against to run; without it the stored verdict is final.
    project.write("gates.yaml", GATES);
    project.gatekeeper(&["check", "--json", "out.json"]).code(0);
    assert_eq!(project.json("out.json")["gate"]["confirm"], "none");
}

#[test]
fn the_ab_settings_are_checked() {
    let project = Project::new(&GATES.replace(
        "alpha: 0.05}",
        "alpha: 0.05, confirm: maybe, ab: {min_rounds: 2, max_rounds: 1, alpha: 0, max_seconds: -1}}",
    ));
    project
        .gatekeeper(&["check"])
        .code(2)
        .stderr(predicate::str::contains("gate.confirm"));
    project.write(
        "gates.yaml",
        &GATES.replace(
            "alpha: 0.05}",
            "alpha: 0.05, ab: {min_rounds: 2, max_rounds: 1, alpha: 0, max_seconds: -1}}",
        ),
    );
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("gate.ab.min_rounds")
            .and(predicate::str::contains("gate.ab.max_rounds"))
            .and(predicate::str::contains("gate.ab.alpha"))
            .and(predicate::str::contains("gate.ab.max_seconds")),
    );
}

#[test]
fn merged_shards_keep_the_ab_verdicts_and_the_base() {
    let project = forked(GATES);
    project.behave(json!({"mission": {"slowdown": 1.15}, "long": {"slowdown": 1.2}}));
    project.commit("slower mission and long");
    // Shard 1 holds small and long, shard 2 mission: each confirms its own regression.
    for k in 1..=2 {
        let (shard, out) = (format!("{k}/2"), format!("shard-{k}.json"));
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
            .code(0);
    }
    // A shard with nothing in doubt builds no base.
    project.behave(json!({"mission": {"slowdown": 1.15}}));
    project
        .gatekeeper(&[
            "check",
            "--against",
            "main",
            "--shard",
            "1/2",
            "--json",
            "quiet-1.json",
        ])
        .code(0);
    assert_eq!(project.json("quiet-1.json").get("ab_base"), None);
    project
        .gatekeeper(&[
            "merge",
            "quiet-1.json",
            "shard-2.json",
            "--json",
            "merged.json",
        ])
        .code(0);
    let merged = project.json("merged.json");
    assert!(merged["ab_base"].as_str().unwrap().starts_with("main ("));
    assert_eq!(
        result(&merged, "attn", "mission")["ab"]["verdict"],
        "regressed"
    );
    assert_eq!(result(&merged, "attn", "small")["ab"], Value::Null);

    project
        .gatekeeper(&[
            "merge",
            "shard-1.json",
            "shard-2.json",
            "--json",
            "merged.json",
        ])
        .code(1);
    let merged = project.json("merged.json");
    assert_eq!(
        verdicts(&merged),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    // Re-judged at another threshold, the A/B verdicts stand: their rounds were stopped under
    // the run's own threshold.
    project
        .gatekeeper(&[
            "report",
            "merged.json",
            "--regression-threshold",
            "0.5",
            "--json",
            "again.json",
        ])
        .code(1);
    assert_eq!(
        verdicts(&project.json("again.json")),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
}

#[test]
fn rounds_that_never_form_an_interval_leave_the_stored_regression() {
    let project = forked(&GATES.replace("alpha: 0.05}", "alpha: 0.05, ab: {max_seconds: 0.001}}"));
    project.behave(json!({"mission": {"slowdown": 1.15}, "long": {"slowdown": 1.15}}));
    project.commit("slower mission and long");
    // The budget is spent in the first round: no interval, no evidence against the stored test.
    project.gatekeeper(&args(&[])).code(1);
    let run = project.json("out.json");
    assert_eq!(
        verdicts(&run),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
    let mission = result(&run, "attn", "mission");
    assert_eq!(mission["ab"]["verdict"], "inconclusive");
    assert_eq!(mission["ab"]["rounds"], 1);
    let message = mission["message"].as_str().unwrap();
    assert!(
        message.contains("without an interval") && message.contains("the stored verdict stands"),
        "{message}"
    );
    // Re-judged, it stays so.
    project
        .gatekeeper(&[
            "report",
            "out.json",
            "--alpha",
            "0.01",
            "--json",
            "again.json",
        ])
        .code(1);
    assert_eq!(
        verdicts(&project.json("again.json")),
        ["small/unchanged", "mission/regressed", "long/regressed"]
    );
}

#[test]
fn a_base_that_cannot_be_exported_keeps_every_result() {
    let project = forked(GATES);
    // No folder for the base's files: A/B cannot run, yet the measured results are reported.
    project
        .gatekeeper_with(
            &[("TMPDIR", "/nonexistent/gatekeeper-test")],
            &args(&["--ab"]),
        )
        .code(0);
    let run = project.json("out.json");
    for r in run["results"].as_array().unwrap() {
        assert_eq!(r["ab"], Value::Null);
        let message = r["message"].as_str().unwrap();
        assert!(message.contains("the base could not be built"), "{message}");
    }
}
