//! Same-runner A/B through the real binary: the cases a review found broken.

mod common;

use common::*;
use serde_json::Value;

const CHECK: [&str; 5] = ["check", "--against", "main", "--json", "out.json"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    CHECK.iter().copied().chain(extra.iter().copied()).collect()
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
