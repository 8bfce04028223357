//! `gatekeeper history` through the real binary: a repository whose baselines were refreshed
//! commit after commit, with one planted slowdown.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::json;

#[test]
fn a_planted_slowdown_is_found_at_its_commit() {
    let project = Project::new(GATES);
    let folder = project.path().join("baselines/test-gpu");
    std::fs::create_dir_all(&folder).unwrap();
    let mut planted = None;
    for commit in 0..40 {
        // 1 % wobble, then 12 % slower from commit 25 on.
        let wobble = 1.0 + 0.01 * ((commit * 7919 % 13) as f64 / 6.0 - 1.0);
        let level = if commit >= 25 { 112.0 } else { 100.0 } * wobble;
        let file = json!({
            "format": 1, "kernel": "attn", "device": "Test GPU",
            "shapes": {"mission": {
                "params": {"B": 2, "H": 16, "S": 1024, "D": 64},
                "samples_us": [level * 0.99, level, level * 1.01],
                "provenance": {"commit": null, "dirty": false, "date": "2026-11-25T00:00:00Z",
                    "gatekeeper_version": "0.1.0", "warmup": 1, "samples": 3, "seed": 1},
            }},
        });
        std::fs::write(folder.join("attn.json"), file.to_string()).unwrap();
        let id = project.commit(&format!("refresh {commit}"));
        if commit == 25 {
            planted = Some(id.to_string());
        }
        // Commits that do not touch the baselines are walked past.
        project.write("notes.txt", &format!("{commit}"));
        project.commit(&format!("notes {commit}"));
    }
    project
        .gatekeeper(&[
            "history",
            "--json",
            "history.json",
            "--html",
            "history.html",
        ])
        .code(0)
        .stdout(predicate::str::contains(
            "attn/mission (test-gpu): 40 refreshes",
        ))
        .stdout(predicate::str::contains("\"refresh 25\""));
    let report = project.json("history.json");
    assert_eq!(report["commits"], 80);
    let changes = report["change_points"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{report}");
    assert_eq!(changes[0]["commit"].as_str(), planted.as_deref());
    assert_eq!(changes[0]["kernel"], "attn");
    assert_eq!(changes[0]["shape"], "mission");
    let ratio = changes[0]["ratio"].as_f64().unwrap();
    assert!((ratio - 1.12).abs() < 0.02, "{ratio}");
    // The page draws each series' refreshes and marks the step.
    let page = std::fs::read_to_string(project.path().join("history.html")).unwrap();
    assert_eq!(page.matches("class=\"plot trend\"").count(), 1);
    assert_eq!(page.matches("class=\"point\"").count(), 40);
    assert_eq!(page.matches("class=\"change\"").count(), 1);
    assert!(page.contains(&planted.as_deref().unwrap()[..12]));

    // --since leaves the step out of the window (its first point is the tree as the step
    // left it): no change.
    let since = planted.unwrap();
    project
        .gatekeeper(&["history", "--since", &since, "--json", "late.json"])
        .code(0);
    assert_eq!(
        project.json("late.json")["series"][0]["points"]
            .as_array()
            .unwrap()
            .len(),
        15
    );
    assert!(project.json("late.json")["change_points"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn history_needs_git_and_a_revision_that_exists() {
    let project = Project::new(GATES);
    project.commit("first");
    project
        .gatekeeper(&["history", "--since", "no-such-rev"])
        .code(2)
        .stderr(predicate::str::contains("--since no-such-rev"));
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("gates.yaml"), GATES).unwrap();
    assert_cmd::Command::cargo_bin("gatekeeper")
        .unwrap()
        .current_dir(outside.path())
        .arg("history")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not in a git repository"));
}
