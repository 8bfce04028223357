//! `gatekeeper baseline refresh` end to end: what a baseline records, partial refreshes, and
//! baselines that must not be written or cannot be read.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::{json, Value};

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
