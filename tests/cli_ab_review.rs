//! Same-runner A/B through the real binary: the cases a review found broken.

mod common;

use common::*;

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
