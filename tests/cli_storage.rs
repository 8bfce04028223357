//! End-to-end tests of what gatekeeper stores: reports written through links and devices,
//! concurrent refreshes, file modes, run record names, device folders, files of earlier
//! versions, and baselines read from odd git trees.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use predicates::prelude::*;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_gatekeeper");

/// One shape, few samples: for tests that run gatekeeper many times.
const QUICK: &str = r#"version: 1
timing: {warmup: 1, samples: 5}
shapes:
  small: {B: 1, H: 8, S: 256, D: 64}
kernels:
  - name: attn
    command: ["python3", "harness.py"]
    shapes: [small]
    timeout_s: 60
"#;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/compat")
        .join(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs gatekeeper in the project under a shell that sets `umask` first.
fn with_umask(project: &Project, umask: &str, args: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" {args}"))
        .arg(BIN)
        .current_dir(project.path())
        .output()
        .unwrap()
}

fn spawn(project: &Project, args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .current_dir(project.path())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// Reports (--json, --junit, --markdown) through links and devices.

#[test]
fn a_symlinked_report_is_written_through_and_the_link_kept() {
    let project = Project::new(GATES);
    project.write("artifacts/report.json", "old");
    symlink("artifacts/report.json", project.path().join("report.json")).unwrap();
    project
        .gatekeeper(&["check", "--json", "report.json"])
        .code(0);
    let link = project.path().join("report.json");
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let run = read_json(&project.path().join("artifacts/report.json"));
    assert_eq!(run["verdict"], "pass");
}

#[test]
fn a_report_to_dev_stdout_lands_on_stdout() {
    let project = Project::new(QUICK);
    // Through a link in the project, so a regression replaces the link, never /dev/stdout.
    symlink("/dev/stdout", project.path().join("to-stdout")).unwrap();
    project
        .gatekeeper(&["check", "--json", "to-stdout"])
        .code(0)
        .stdout(predicate::str::contains("\"plan_id\""));
    assert!(std::fs::symlink_metadata(project.path().join("to-stdout"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_device_that_refuses_the_report_is_an_error_naming_it() {
    let project = Project::new(QUICK);
    symlink("/dev/full", project.path().join("full")).unwrap();
    project
        .gatekeeper(&["check", "--markdown", "full"])
        .code(2)
        .stderr(predicate::str::contains(
            "error: full: No space left on device",
        ));
    assert!(std::fs::symlink_metadata(project.path().join("full"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_report_link_into_a_missing_folder_stops_before_measuring() {
    let project = Project::new(QUICK);
    symlink("missing/report.json", project.path().join("report.json")).unwrap();
    project
        .gatekeeper(&["check", "--json", "report.json"])
        .code(2)
        .stderr(predicate::str::contains("report.json").and(predicate::str::contains("[1/").not()));
}

// Baselines: concurrent refreshes, modes, leftovers.

#[test]
fn concurrent_partial_refreshes_of_one_file_both_land() {
    let project = Project::with_committed_baseline(GATES);
    for trial in 0..4u64 {
        let before = read_json(&project.baseline_path());
        project.behave_with(json!({}), 100 + trial, "Test GPU");
        let small = spawn(&project, &["baseline", "refresh", "--shapes", "small"]);
        let long = spawn(&project, &["baseline", "refresh", "--shapes", "long"]);
        for child in [small, long] {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{output:?}");
        }
        let after = read_json(&project.baseline_path());
        assert_ne!(
            before["shapes"]["small"], after["shapes"]["small"],
            "trial {trial}"
        );
        assert_ne!(
            before["shapes"]["long"], after["shapes"]["long"],
            "trial {trial}"
        );
        assert_eq!(before["shapes"]["mission"], after["shapes"]["mission"]);
    }
    // The lock is on the folder itself: nothing is left beside the baseline.
    assert_eq!(
        names_in(&project.path().join("baselines/test-gpu")),
        ["attn.json"]
    );
}

#[test]
fn written_files_follow_the_umask_and_an_existing_file_keeps_its_mode() {
    let project = Project::new(QUICK);
    let output = with_umask(&project, "022", "baseline refresh");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        mode(&project.path().join("baselines/test-gpu/attn.json")),
        0o644
    );
    let output = with_umask(&project, "022", "check --json out.json");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(mode(&project.path().join("out.json")), 0o644);
    let records: Vec<PathBuf> = std::fs::read_dir(project.path().join("runs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(mode(record), 0o644, "{}", record.display());
    }

    // An existing file keeps its mode whatever the umask.
    let baseline = project.path().join("baselines/test-gpu/attn.json");
    std::fs::set_permissions(&baseline, std::fs::Permissions::from_mode(0o664)).unwrap();
    let output = with_umask(&project, "077", "baseline refresh");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(mode(&baseline), 0o664);
    // A new one follows the stricter umask.
    let output = with_umask(&project, "077", "check --json private.json");
    assert!(output.status.success(), "{output:?}");
    assert_eq!(mode(&project.path().join("private.json")), 0o600);
}

#[test]
fn a_temp_file_left_by_a_killed_write_is_never_committed_and_is_swept_later() {
    let project = Project::with_committed_baseline(GATES);
    let leftover = project
        .path()
        .join("baselines/test-gpu/.gatekeeper-Kx3b9Q.tmp");
    std::fs::write(&leftover, "{\"format\": 1, \"kern").unwrap();
    project.commit("after a killed refresh");
    let tree = project.repo.head().unwrap().peel_to_tree().unwrap();
    let mut paths = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        paths.push(format!("{root}{}", entry.name().unwrap_or("")));
        git2::TreeWalkResult::Ok
    })
    .unwrap();
    assert!(
        paths.iter().any(|p| p == "baselines/.gitignore"),
        "{paths:?}"
    );
    assert!(!paths.iter().any(|p| p.ends_with(".tmp")), "{paths:?}");

    // It does not make the tree dirty either, and the next write sweeps it once it is stale.
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    assert!(!leftover.exists());
    let baseline = read_json(&project.baseline_path());
    assert_eq!(baseline["shapes"]["small"]["provenance"]["dirty"], false);
}

// Run records.

#[test]
fn parallel_checks_in_one_checkout_each_keep_their_own_run_record() {
    let project = Project::new(QUICK);
    project.commit("kernels");
    // One check first, so the runs folder and its .gitignore exist.
    project.gatekeeper(&["check"]).code(0);
    let before = names_in(&project.path().join("runs")).len();
    let children: Vec<_> = (0..40).map(|_| spawn(&project, &["check"])).collect();
    let mut printed = Vec::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let line = stdout
            .lines()
            .find_map(|line| line.strip_prefix("run record: "))
            .unwrap()
            .to_string();
        printed.push(line);
    }
    let mut unique = printed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 40, "{printed:?}");
    let records = names_in(&project.path().join("runs"));
    assert_eq!(records.len(), before + 40, "{records:?}");
    for path in &printed {
        let run = read_json(&project.path().join(path));
        assert_eq!(run["verdict"], "pass");
    }
}

// Device folders.

#[test]
fn a_very_long_device_name_gets_a_bounded_folder_and_is_compared() {
    let project = Project::new(QUICK);
    let name = "Very Long GPU ".repeat(800);
    project.behave_with(json!({}), 0, name.trim());
    project.commit("kernels");
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    let folders = names_in(&project.path().join("baselines"));
    let folders: Vec<&String> = folders.iter().filter(|f| !f.starts_with('.')).collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].len() <= 64, "{}", folders[0]);
    assert!(folders[0].starts_with("very-long-gpu-"), "{}", folders[0]);
    project.gatekeeper(&["check", "--json", "out.json"]).code(0);
    assert_eq!(verdicts(&project.json("out.json")), ["small/unchanged"]);
}

#[test]
fn a_refresh_writes_every_kernels_baseline_or_none() {
    let gates = r#"version: 1
timing: {warmup: 1, samples: 5}
shapes:
  small: {N: 1}
kernels:
  - name: here
    command: ["python3", "device.py"]
    shapes: [small]
    env: {DEVICE: "Test GPU"}
  - name: there
    command: ["python3", "device.py"]
    shapes: [small]
    env: {DEVICE: "Other GPU"}
"#;
    let project = Project::new(gates);
    project.write(
        "device.py",
        r#"import json, os
n = int(os.environ["GATEKEEPER_SAMPLES"])
print(json.dumps({"samples_us": [100.0 + i % 3 for i in range(n)], "device": os.environ["DEVICE"]}))
"#,
    );
    // A file where the second kernel's device folder would go.
    project.write("baselines/other-gpu", "not a folder");
    project
        .gatekeeper(&["baseline", "refresh"])
        .code(2)
        .stderr(predicate::str::contains("baselines/other-gpu"));
    assert!(!project.path().join("baselines/test-gpu/here.json").exists());
}

#[test]
fn names_that_used_to_share_a_folder_are_never_compared() {
    // Every non-ASCII name, "", "." and ".." used to be `unknown-device`.
    for (measured, checked) in [("显卡 一", "显卡 二"), ("", ".."), (".", "…")] {
        let project = Project::new(QUICK);
        project.behave_with(json!({}), 0, measured);
        project.gatekeeper(&["baseline", "refresh"]).code(0);
        project.behave_with(json!({}), 0, checked);
        project.gatekeeper(&["check", "--json", "out.json"]).code(0);
        assert_eq!(
            verdicts(&project.json("out.json")),
            ["small/no_baseline"],
            "{measured:?} vs {checked:?}"
        );
        // The same name finds its own baselines.
        project.behave_with(json!({}), 0, measured);
        project.gatekeeper(&["check", "--json", "out.json"]).code(0);
        assert_eq!(verdicts(&project.json("out.json")), ["small/unchanged"]);
    }
}

#[test]
fn names_that_share_a_folder_by_case_are_never_compared() {
    let project = Project::new(QUICK);
    project.gatekeeper(&["baseline", "refresh"]).code(0);
    project.behave_with(json!({}), 0, "TEST GPU");
    project.gatekeeper(&["check", "--json", "out.json"]).code(0);
    let run = project.json("out.json");
    assert_eq!(verdicts(&run), ["small/no_baseline"]);
    let message = run["results"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("\"TEST GPU\"") && message.contains("measured on \"Test GPU\""),
        "{message}"
    );
    // A refresh on that device replaces the other device's baselines, saying so.
    project
        .gatekeeper(&["baseline", "refresh"])
        .code(0)
        .stdout(predicate::str::contains(
            "held baselines of \"Test GPU\", another device whose name shares the folder",
        ));
    assert_eq!(read_json(&project.baseline_path())["device"], "TEST GPU");
    project.gatekeeper(&["check", "--json", "out.json"]).code(0);
    assert_eq!(verdicts(&project.json("out.json")), ["small/unchanged"]);
}

// Files written by earlier versions.

#[test]
fn a_baseline_and_a_run_record_of_v0_1_0_still_load() {
    let project = Project::new(GATES);
    std::fs::create_dir_all(project.path().join("baselines/test-gpu")).unwrap();
    std::fs::copy(fixture("baseline-v0.1.0.json"), project.baseline_path()).unwrap();
    project.commit("baselines of 0.1.0");
    // The fixture was measured with the harness's defaults, so the samples match exactly.
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    assert_eq!(
        verdicts(&project.json("out.json")),
        ["small/unchanged", "mission/unchanged", "long/unchanged"]
    );
    // A refresh of one shape keeps the others as they were stored.
    project
        .gatekeeper(&["baseline", "refresh", "--shapes", "small"])
        .code(0);
    let old = read_json(&fixture("baseline-v0.1.0.json"));
    let new = read_json(&project.baseline_path());
    assert_eq!(old["shapes"]["long"], new["shapes"]["long"]);

    let record = fixture("run-v0.1.0.json");
    project
        .gatekeeper(&["report", record.to_str().unwrap(), "--json", "again.json"])
        .code(1);
    assert_eq!(
        verdicts(&project.json("again.json")),
        ["small/unchanged", "mission/regressed", "long/error"]
    );
}

/// Format 2 keeps format 1's fields: a format-1 record is reported again as format 2 with the
/// same statistics, samples and verdicts.
#[test]
fn a_format_1_run_record_is_reported_as_format_2_with_the_same_fields() {
    let project = Project::new(GATES);
    let record = fixture("run-v0.1.0.json");
    project
        .gatekeeper(&["report", record.to_str().unwrap(), "--json", "again.json"])
        .code(1);
    let (old, mut new) = (read_json(&record), project.json("again.json"));
    assert_eq!(
        (old["format"].clone(), new["format"].clone()),
        (json!(1), json!(2))
    );
    // `ab` (null: no A/B comparison ran) and `reused` (false: measured) are the fields added
    // since.
    for result in new["results"].as_array_mut().unwrap() {
        let added = result.as_object_mut().unwrap();
        assert_eq!(added.remove("ab"), Some(json!(null)));
        assert_eq!(added.remove("reused"), Some(json!(false)));
    }
    assert_eq!(old["results"], new["results"]);
    assert_eq!(old["kernels"], new["kernels"]);
    assert_eq!(old["verdict"], new["verdict"]);
}

#[test]
fn a_stored_gates_entry_with_keys_this_version_does_not_know_still_loads() {
    let project = Project::with_committed_baseline(GATES);
    let mut baseline = read_json(&project.baseline_path());
    for (_, shape) in baseline["shapes"].as_object_mut().unwrap() {
        let provenance = &mut shape["provenance"];
        provenance["kernel"]["future_key"] = json!({"nested": [1, 2]});
        provenance["kernel"]
            .as_object_mut()
            .unwrap()
            .remove("command");
        provenance["kernel"]["harness"] = json!(["python3", "harness.py"]);
        provenance["future_provenance"] = json!("from a later version");
    }
    std::fs::write(project.baseline_path(), baseline.to_string()).unwrap();
    project.commit("baselines with a later gates.yaml entry");
    project
        .gatekeeper(&["check", "--against", "main", "--json", "out.json"])
        .code(0);
    assert_eq!(
        verdicts(&project.json("out.json")),
        ["small/unchanged", "mission/unchanged", "long/unchanged"]
    );
}

#[test]
fn a_run_record_with_settings_this_version_does_not_know_still_loads() {
    let project = Project::new(GATES);
    let mut run = read_json(&fixture("run-v0.1.0.json"));
    run["gate"]["noise_floor"] = json!(0.02);
    run["timing"]["renamed_samples"] = json!(50);
    run["future_field"] = json!(true);
    std::fs::write(project.path().join("later.json"), run.to_string()).unwrap();
    project
        .gatekeeper(&["report", "later.json", "--json", "again.json"])
        .code(1);
    assert_eq!(
        verdicts(&project.json("again.json")),
        ["small/unchanged", "mission/regressed", "long/error"]
    );
}

// Baselines read from a ref's tree.

/// Commits HEAD's tree with `path` replaced by an entry of `mode` pointing at `oid`.
fn commit_with_entry(project: &Project, path: &[&str], oid: git2::Oid, mode: i32) {
    fn replace(
        repo: &git2::Repository,
        tree: Option<&git2::Tree>,
        path: &[&str],
        oid: git2::Oid,
        mode: i32,
    ) -> git2::Oid {
        let mut builder = repo.treebuilder(tree).unwrap();
        if path.len() == 1 {
            builder.insert(path[0], oid, mode).unwrap();
        } else {
            let sub = tree
                .and_then(|t| t.get_name(path[0]))
                .and_then(|e| e.to_object(repo).ok())
                .and_then(|o| o.into_tree().ok());
            let sub = replace(repo, sub.as_ref(), &path[1..], oid, mode);
            builder.insert(path[0], sub, 0o040000).unwrap();
        }
        builder.write().unwrap()
    }
    let repo = &project.repo;
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    let tree_id = replace(repo, Some(&head.tree().unwrap()), path, oid, mode);
    let tree = repo.find_tree(tree_id).unwrap();
    let signature = git2::Signature::now("test", "test@example.com").unwrap();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        "odd tree",
        &tree,
        &[&head],
    )
    .unwrap();
}

fn against_main_exits_2_naming(project: &Project, path: &str, kind: &str) {
    project
        .gatekeeper(&["check", "--against", "main"])
        .code(2)
        .stderr(
            predicate::str::contains(format!("main:{path}: is {kind}"))
                .and(predicate::str::contains("[1/").not()),
        );
}

#[test]
fn against_a_ref_whose_baselines_are_not_plain_folders_and_files_exits_2() {
    // `baselines` as a file: the working tree says so too.
    let project = Project::new(GATES);
    project.write("baselines", "not a folder");
    project.commit("baselines as a file");
    against_main_exits_2_naming(&project, "baselines", "a file");
    project
        .gatekeeper(&["check"])
        .code(2)
        .stderr(predicate::str::contains("baselines"));

    // `baselines` as a symlink (to a folder that holds the baselines).
    let project = Project::with_committed_baseline(GATES);
    let head_tree = project.repo.head().unwrap().peel_to_tree().unwrap();
    let stored = head_tree.get_name("baselines").unwrap().id();
    commit_with_entry(&project, &["stored"], stored, 0o040000);
    let link = project.repo.blob(b"stored").unwrap();
    commit_with_entry(&project, &["baselines"], link, 0o120000);
    against_main_exits_2_naming(&project, "baselines", "a symbolic link");

    // A device folder and `baselines` as submodules.
    let project = Project::with_committed_baseline(GATES);
    let elsewhere = project.repo.head().unwrap().peel_to_commit().unwrap().id();
    commit_with_entry(&project, &["baselines", "test-gpu"], elsewhere, 0o160000);
    against_main_exits_2_naming(&project, "baselines/test-gpu", "a submodule");
    commit_with_entry(&project, &["baselines"], elsewhere, 0o160000);
    against_main_exits_2_naming(&project, "baselines", "a submodule");

    // A device folder as a symlink.
    let project = Project::with_committed_baseline(GATES);
    let link = project.repo.blob(b"../stored").unwrap();
    commit_with_entry(&project, &["baselines", "test-gpu"], link, 0o120000);
    against_main_exits_2_naming(&project, "baselines/test-gpu", "a symbolic link");

    // A baseline file as a folder (the working tree says so too), and as a symlink.
    let project = Project::with_committed_baseline(GATES);
    let inside = project.repo.blob(b"{}").unwrap();
    commit_with_entry(
        &project,
        &["baselines", "test-gpu", "attn.json", "inside.json"],
        inside,
        0o100644,
    );
    against_main_exits_2_naming(&project, "baselines/test-gpu/attn.json", "a folder");
    std::fs::remove_file(project.baseline_path()).unwrap();
    project.write("baselines/test-gpu/attn.json/inside.json", "{}");
    project
        .gatekeeper(&["check"])
        .code(2)
        .stderr(predicate::str::contains("baselines/test-gpu/attn.json"));

    // A device folder as a file, in the tree and in the working tree; a dotfile or a file with
    // an extension beside the device folders is left alone.
    let project = Project::with_committed_baseline(GATES);
    let file = project.repo.blob(b"not a folder").unwrap();
    commit_with_entry(&project, &["baselines", "test-gpu"], file, 0o100644);
    against_main_exits_2_naming(&project, "baselines/test-gpu", "a file");
    std::fs::remove_dir_all(project.path().join("baselines/test-gpu")).unwrap();
    project.write("baselines/test-gpu", "not a folder");
    project
        .gatekeeper(&["check"])
        .code(2)
        .stderr(predicate::str::contains("baselines/test-gpu: is a file"));
    let project = Project::with_committed_baseline(GATES);
    project.write("baselines/README.md", "Baselines of this repository.");
    project.commit("a readme beside the device folders");
    project.gatekeeper(&["check", "--against", "main"]).code(0);

    let project = Project::with_committed_baseline(GATES);
    let link = project.repo.blob(b"../attn.json").unwrap();
    commit_with_entry(
        &project,
        &["baselines", "test-gpu", "attn.json"],
        link,
        0o120000,
    );
    against_main_exits_2_naming(&project, "baselines/test-gpu/attn.json", "a symbolic link");
}
