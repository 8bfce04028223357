//! The GitHub workflows keep their safety properties: no `pull_request_target`, read-only
//! tokens by default, write access only where no pull-request code runs, and every action
//! pinned by commit.

use std::path::Path;

fn workflows() -> Vec<(String, serde_yaml::Value, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        found.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            doc,
            text,
        ));
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn no_pull_request_target_and_read_only_by_default() {
    for (name, doc, text) in workflows() {
        assert!(!text.contains("pull_request_target"), "{name}");
        assert_eq!(
            doc["permissions"]["contents"].as_str(),
            Some("read"),
            "{name}: top-level permissions must be read-only"
        );
    }
}

#[test]
fn write_tokens_never_meet_pull_request_code() {
    for (name, doc, _) in workflows() {
        let on_pull_request = doc["on"].get("pull_request").is_some();
        for (job, spec) in doc["jobs"].as_mapping().unwrap() {
            let writes = spec["permissions"]
                .as_mapping()
                .is_some_and(|p| p.values().any(|v| v.as_str() == Some("write")));
            assert!(
                !(writes && on_pull_request),
                "{name}: job {job:?} has a write permission in a pull_request workflow"
            );
        }
    }
}

#[test]
fn write_tokens_never_reach_a_self_hosted_runner() {
    // Self-hosted runners execute pull-request code; a token with write access must not be
    // handed to them, where a previous job could have left something behind.
    for (name, doc, _) in workflows() {
        for (job, spec) in doc["jobs"].as_mapping().unwrap() {
            let writes = spec["permissions"]
                .as_mapping()
                .is_some_and(|p| p.values().any(|v| v.as_str() == Some("write")));
            let self_hosted = serde_yaml::to_string(&spec["runs-on"])
                .unwrap()
                .contains("self-hosted");
            assert!(
                !(writes && self_hosted),
                "{name}: job {job:?} writes on a self-hosted runner"
            );
        }
    }
}

#[test]
fn every_action_is_pinned_by_commit() {
    for (name, _, text) in workflows() {
        for line in text.lines().filter(|l| {
            l.trim_start().starts_with("- uses:") || l.trim_start().starts_with("uses:")
        }) {
            let target = line.split("uses:").nth(1).unwrap().trim();
            // This repository's own action, from the checked-out tree.
            if target == "./" {
                continue;
            }
            let reference = target
                .split('@')
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .next()
                .unwrap_or("");
            assert!(
                reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
                "{name}: {target} is not pinned by commit"
            );
        }
    }
}

#[test]
fn the_pull_request_workflow_cancels_stale_runs_and_uses_the_gpu_runner() {
    let (_, doc, _) = workflows()
        .into_iter()
        .find(|(name, _, _)| name == "gatekeeper.yml")
        .unwrap();
    assert_eq!(
        doc["concurrency"]["cancel-in-progress"].as_bool(),
        Some(true)
    );
    let labels: Vec<&str> = doc["jobs"]["measure"]["runs-on"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(labels, ["self-hosted", "gpu"]);
}

/// The composite action: its own actions pinned by commit, and no input interpolated into a
/// script (inputs reach `run:` through `env`, so a value cannot become shell code).
#[test]
fn the_action_pins_its_actions_and_passes_inputs_through_env() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("action.yml")).unwrap();
    let action: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(action["runs"]["using"].as_str(), Some("composite"));
    for output in ["verdict", "exit-code"] {
        assert!(action["outputs"][output]["value"].is_string(), "{output}");
    }
    for step in action["runs"]["steps"].as_sequence().unwrap() {
        if let Some(uses) = step["uses"].as_str() {
            let reference = uses.split('@').nth(1).unwrap_or("");
            assert!(
                reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
                "action.yml: {uses} is not pinned by commit"
            );
        }
        if let Some(script) = step["run"].as_str() {
            assert!(
                !script.contains("${{"),
                "action.yml: a script interpolates an expression: {script}"
            );
            assert_eq!(step["shell"].as_str(), Some("bash"));
        }
    }
}

/// The README's snippet is the linted example file, word for word, and it uses the action.
#[test]
fn the_readme_snippet_is_the_linted_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let snippet =
        std::fs::read_to_string(root.join("docs/examples/gatekeeper-workflow.yml")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{snippet}```")),
        "README.md must show docs/examples/gatekeeper-workflow.yml as it is"
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&snippet).unwrap();
    let steps = doc["jobs"]["gate"]["steps"].as_sequence().unwrap();
    assert!(steps.iter().any(|s| s["uses"]
        .as_str()
        .is_some_and(|u| u.contains("/gatekeeper@"))));
    assert!(snippet.lines().count() <= 25, "the snippet stays short");
    assert_eq!(doc["permissions"]["contents"].as_str(), Some("read"));
}

/// This repository's own pull-request workflow runs the action, for the check and the merge.
#[test]
fn this_repository_uses_its_own_action() {
    let (_, doc, _) = workflows()
        .into_iter()
        .find(|(name, _, _)| name == "gatekeeper.yml")
        .unwrap();
    for job in ["measure", "decide"] {
        let steps = doc["jobs"][job]["steps"].as_sequence().unwrap();
        assert!(
            steps.iter().any(|s| s["uses"].as_str() == Some("./")),
            "{job} does not use the action"
        );
    }
}
