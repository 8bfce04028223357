//! The commands that work from run records without measuring: `merge` of shards, `report`
//! rendering and judging again, and `compare` of one run against another.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::{json, Value};

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
            "--html",
            "merged.html",
        ])
        .code(1);
    let merged = project.json("merged.json");
    let page = std::fs::read_to_string(project.path().join("merged.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("gatekeeper: FAIL"));
    assert_eq!(page.matches("class=\"plot samples\"").count(), 3);
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
            "--html",
            "report.html",
        ])
        .code(0);
    let markdown = std::fs::read_to_string(project.path().join("comment.md")).unwrap();
    let page = std::fs::read_to_string(project.path().join("report.html")).unwrap();
    assert!(page.contains("gatekeeper: PASS"), "{page}");
    assert_eq!(page.matches("<article class=\"shape\"").count(), 3);
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
        .gatekeeper(&[
            "compare",
            "before.json",
            "after.json",
            "--json",
            "cmp.json",
            "--html",
            "cmp.html",
        ])
        .code(1);
    let cmp = project.json("cmp.json");
    let page = std::fs::read_to_string(project.path().join("cmp.html")).unwrap();
    assert_eq!(page.matches("data-verdict=\"regressed\"").count(), 2);
    assert!(page.contains("run record before.json"));
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
