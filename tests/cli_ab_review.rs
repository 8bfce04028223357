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
