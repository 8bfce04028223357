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
            // This repository's own action and reusable workflows, from the same commit.
            if target == "./" || target.starts_with("./.github/workflows/") {
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

fn read_yaml(relative: &str) -> (serde_yaml::Value, String) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap();
    (serde_yaml::from_str(&text).unwrap(), text)
}

/// none < read < write, for comparing what a caller grants with what a callee asks for.
fn level(access: &serde_yaml::Value) -> u8 {
    match access.as_str() {
        Some("write") => 2,
        Some("read") => 1,
        _ => 0,
    }
}

/// The reusable comment workflow can only be called (no trigger of its own), and its one job
/// refuses to run unless the caller was started by `workflow_run` after a pull request's run.
#[test]
fn the_comment_workflow_is_reusable_and_runs_only_under_workflow_run() {
    let (doc, _) = read_yaml(".github/workflows/comment.yml");
    let triggers: Vec<&str> = doc["on"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(|k| k.as_str())
        .collect();
    assert_eq!(triggers, ["workflow_call"]);
    let inputs = &doc["on"]["workflow_call"]["inputs"];
    for required in ["run-id", "head-sha"] {
        assert_eq!(
            inputs[required]["required"].as_bool(),
            Some(true),
            "{required}"
        );
    }
    assert_eq!(
        inputs["artifact"]["default"].as_str(),
        Some("gatekeeper-report")
    );
    let jobs = doc["jobs"].as_mapping().unwrap();
    assert_eq!(jobs.len(), 1, "one job");
    let condition = doc["jobs"]["comment"]["if"].as_str().unwrap();
    for clause in [
        "github.event_name == 'workflow_run'",
        "github.event.workflow_run.event == 'pull_request'",
    ] {
        assert!(condition.contains(clause), "the job's if: lacks {clause}");
    }
}

/// What the artifact holds was written by pull-request code: the job runs none of it, keeps only
/// digits of `pr-number`, and comments only while the pull request's head is the checked commit.
#[test]
fn the_comment_workflow_trusts_only_digits_and_the_checked_head() {
    let (doc, _) = read_yaml(".github/workflows/comment.yml");
    let job = &doc["jobs"]["comment"];
    assert!(
        !serde_yaml::to_string(&job["runs-on"])
            .unwrap()
            .contains("self-hosted"),
        "the comment runs on a GitHub-hosted runner"
    );
    let steps = job["steps"].as_sequence().unwrap();
    for step in steps {
        let uses = step["uses"].as_str().unwrap_or("");
        assert!(
            !uses.starts_with("actions/checkout"),
            "no checkout: nothing of the pull request's is run"
        );
        if let Some(script) = step["run"].as_str() {
            assert!(
                !script.contains("${{"),
                "comment.yml: a script interpolates an expression: {script}"
            );
        }
    }
    let post = steps
        .iter()
        .find(|s| s["run"].as_str().is_some_and(|r| r.contains("gh api")))
        .expect("a step posts the comment");
    assert_eq!(
        post["env"]["HEAD_SHA"].as_str(),
        Some("${{ inputs.head-sha }}")
    );
    let script = post["run"].as_str().unwrap();
    let digits = script
        .find("pr=$(tr -cd '0-9' < pr-number)")
        .expect("the digit filter");
    let head_check = script
        .find(r#"if [ "$head" != "$HEAD_SHA" ]; then"#)
        .expect("the head SHA check");
    let first_write = script.find("gh api -X").expect("a write");
    assert!(digits < head_check && head_check < first_write, "{script}");
    assert!(!script.contains("head -c"), "the report is never cut");
}

/// `pull-requests: write` is granted in the comment job only: nothing else in comment.yml, and
/// its default for the workflow is read-only.
#[test]
fn the_comment_workflow_writes_to_pull_requests_only_in_its_job() {
    let (doc, _) = read_yaml(".github/workflows/comment.yml");
    let top = doc["permissions"].as_mapping().unwrap();
    assert!(top.values().all(|v| v.as_str() == Some("read")), "{top:?}");
    let mut writers = Vec::new();
    for (job, spec) in doc["jobs"].as_mapping().unwrap() {
        for (scope, access) in spec["permissions"].as_mapping().unwrap() {
            if access.as_str() == Some("write") {
                writers.push(format!(
                    "{}: {}",
                    job.as_str().unwrap(),
                    scope.as_str().unwrap()
                ));
            }
        }
    }
    assert_eq!(writers, ["comment: pull-requests"]);
    assert_eq!(
        doc["jobs"]["comment"]["permissions"]["actions"].as_str(),
        Some("read"),
        "reading another run's artifact"
    );
}

/// A caller of comment.yml: started by `workflow_run` after the gatekeeper workflow, passing that
/// run's id and head, and granting (a called workflow gets no more) everything comment.yml asks
/// for, or the run would not start.
fn assert_calls_the_comment_workflow(name: &str, doc: &serde_yaml::Value, uses: &str) {
    let run = &doc["on"]["workflow_run"];
    assert!(
        run["workflows"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|w| w.as_str() == Some("gatekeeper")),
        "{name}"
    );
    assert_eq!(run["types"][0].as_str(), Some("completed"), "{name}");
    assert_eq!(
        doc["on"].as_mapping().unwrap().len(),
        1,
        "{name}: one trigger"
    );
    let jobs = doc["jobs"].as_mapping().unwrap();
    assert_eq!(jobs.len(), 1, "{name}: one job");
    let job = jobs.values().next().unwrap();
    assert_eq!(job["uses"].as_str(), Some(uses), "{name}");
    assert!(
        job.get("steps").is_none(),
        "{name}: the caller runs no steps"
    );
    assert_eq!(
        job["with"]["run-id"].as_str(),
        Some("${{ github.event.workflow_run.id }}"),
        "{name}"
    );
    assert_eq!(
        job["with"]["head-sha"].as_str(),
        Some("${{ github.event.workflow_run.head_sha }}"),
        "{name}"
    );
    let (callee, _) = read_yaml(".github/workflows/comment.yml");
    let mut asked = vec![callee["permissions"].clone()];
    for (_, spec) in callee["jobs"].as_mapping().unwrap() {
        asked.push(spec["permissions"].clone());
    }
    let granted = &job["permissions"];
    for permissions in &asked {
        for (scope, access) in permissions.as_mapping().unwrap() {
            assert!(
                level(&granted[scope.as_str().unwrap()]) >= level(access),
                "{name}: comment.yml asks for {scope:?}: {access:?}, the caller grants less"
            );
        }
    }
    assert_eq!(job["cache-mode"].as_str(), Some("none"), "{name}");
}

/// This repository exercises the reusable workflow: its gatekeeper-comment.yml only calls it.
#[test]
fn this_repository_calls_the_reusable_comment_workflow() {
    let (doc, _) = read_yaml(".github/workflows/gatekeeper-comment.yml");
    assert_calls_the_comment_workflow(
        "gatekeeper-comment.yml",
        &doc,
        "./.github/workflows/comment.yml",
    );
}

/// The README's second snippet is the linted example file, word for word, and it calls the
/// reusable workflow at a commit.
#[test]
fn the_readme_comment_snippet_is_the_linted_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let snippet =
        std::fs::read_to_string(root.join("docs/examples/gatekeeper-comment-workflow.yml"))
            .unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```yaml\n{snippet}```")),
        "README.md must show docs/examples/gatekeeper-comment-workflow.yml as it is"
    );
    assert!(snippet.lines().count() <= 20, "the snippet stays short");
    let doc: serde_yaml::Value = serde_yaml::from_str(&snippet).unwrap();
    assert_eq!(doc["permissions"]["contents"].as_str(), Some("read"));
    let uses = doc["jobs"]["comment"]["uses"].as_str().unwrap();
    let (path, reference) = uses.split_once('@').unwrap();
    assert_eq!(path, "your-org/gatekeeper/.github/workflows/comment.yml");
    assert!(
        reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
        "{uses} is not pinned by commit"
    );
    assert_calls_the_comment_workflow("gatekeeper-comment-workflow.yml", &doc, uses);
    // It runs after the first snippet's workflow.
    let (gate, _) = read_yaml("docs/examples/gatekeeper-workflow.yml");
    assert_eq!(
        doc["on"]["workflow_run"]["workflows"][0].as_str(),
        gate["name"].as_str()
    );
}

/// The artifact comment.yml reads by default is what the action uploads: its name, the markdown
/// report and the pull request's number. This repository's decide job uploads its own, and its
/// caller names that report.
#[test]
fn the_comment_workflow_reads_what_the_check_uploads() {
    let (comment, _) = read_yaml(".github/workflows/comment.yml");
    let inputs = &comment["on"]["workflow_call"]["inputs"];
    let (action, _) = read_yaml("action.yml");
    assert_eq!(
        inputs["artifact"]["default"],
        action["inputs"]["artifact"]["default"]
    );
    assert_eq!(
        inputs["comment"]["default"],
        action["inputs"]["markdown"]["default"]
    );
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/upload-artifact@"))
        })
        .unwrap();
    assert!(upload["with"]["path"]
        .as_str()
        .unwrap()
        .lines()
        .any(|l| l.trim() == "pr-number"));
    assert!(steps.iter().any(|s| {
        s["env"]["PR_NUMBER"].as_str() == Some("${{ github.event.pull_request.number }}")
            && s["run"].as_str() == Some(r#"echo "$PR_NUMBER" > pr-number"#)
    }));

    let (gate, _) = read_yaml(".github/workflows/gatekeeper.yml");
    let upload = gate["jobs"]["decide"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["with"]["name"].as_str() == Some("gatekeeper-report"))
        .unwrap();
    let (caller, _) = read_yaml(".github/workflows/gatekeeper-comment.yml");
    let report = caller["jobs"]["comment"]["with"]["comment"]
        .as_str()
        .unwrap();
    let paths: Vec<&str> = upload["with"]["path"].as_str().unwrap().lines().collect();
    assert!(
        paths.contains(&report) && paths.contains(&"pr-number"),
        "{paths:?}"
    );
}
