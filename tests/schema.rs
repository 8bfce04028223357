//! The JSON Schema `gatekeeper schema` prints accepts the gates files this repository ships
//! and rejects what the loader rejects structurally.

use std::path::Path;

fn validator() -> jsonschema::Validator {
    let schema = gatekeeper::config::json_schema();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn yaml_file(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

#[test]
fn shipped_gates_files_validate() {
    let validator = validator();
    for path in ["gates.yaml", "tests/gpu/gates.yaml"] {
        let doc = yaml_file(path);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{path}: {errors:#?}");
    }
}

#[test]
fn structural_mistakes_are_rejected() {
    let validator = validator();
    let bad: serde_json::Value = serde_yaml::from_str(
        "version: 1\nshapes: {s: {N: 1}}\nkernels: [{name: k, command: [x], shapes: [s], colour: red}]\n",
    )
    .unwrap();
    assert!(
        !validator.is_valid(&bad),
        "an unknown key must not validate"
    );
    let wrong_type: serde_json::Value = serde_yaml::from_str(
        "version: 1\nshapes: {s: {N: 1}}\nkernels: [{name: k, command: x, shapes: [s]}]\n",
    )
    .unwrap();
    assert!(!validator.is_valid(&wrong_type), "command must be a list");
}
