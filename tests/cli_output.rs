//! Output that consumers read: stdout closed early by a pipe, run records with odd text,
//! harness output meant to break a terminal or an XML parser, and the pull-request comment's
//! size limit. Each test runs the real binary.

mod common;

use std::path::Path;
use std::process::{Command as Process, Stdio};

use common::*;
use gatekeeper::compare::Verdict;
use gatekeeper::record::{decide_kernels, PassFail, RunRecord};
use serde_json::json;

/// Runs the binary in `dir` with its stdout a pipe whose reader has already gone, as in
/// `gatekeeper report run.json | head -1` once `head` has exited. With `close_stderr`, stderr
/// too (`2>&1 | head -1`). Returns the exit code and stderr.
fn with_closed_stdout(dir: &Path, args: &[&str], close_stderr: bool) -> (i32, String) {
    let mut child = Process::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closing the read ends before the program runs makes every write to them fail.
    drop(child.stdout.take());
    if close_stderr {
        drop(child.stderr.take());
    }
    let output = child.wait_with_output().unwrap();
    let code = output.status.code().unwrap_or(-1);
    (code, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn assert_quiet(what: &str, (code, stderr): (i32, String), expected: &[i32]) {
    assert!(
        expected.contains(&code),
        "{what}: exit {code}, expected {expected:?}; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(!stderr.contains("Broken pipe"), "{what}: {stderr}");
}

#[test]
fn a_closed_stdout_ends_report_quietly_after_its_files_are_written() {
    let project = Project::new(GATES);
    project.gatekeeper(&["check", "--json", "out.json"]).code(0);
    let result = with_closed_stdout(
        project.path(),
        &[
            "report",
            "out.json",
            "--junit",
            "x.xml",
            "--markdown",
            "x.md",
            "--json",
            "again.json",
        ],
        false,
    );
    assert_quiet("report", result, &[0]);
    for file in ["x.xml", "x.md", "again.json"] {
        let text = std::fs::read_to_string(project.path().join(file)).unwrap();
        assert!(!text.is_empty(), "{file} is empty");
    }
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_stdout() {
    let project = Project::new(GATES);
    let dir = project.path();
    // No baselines yet: the check passes.
    assert_quiet(
        "check",
        with_closed_stdout(
            dir,
            &["check", "--junit", "c.xml", "--json", "c.json"],
            false,
        ),
        &[0],
    );
    assert!(dir.join("c.xml").exists() && dir.join("c.json").exists());
    assert_quiet(
        "compare",
        with_closed_stdout(
            dir,
            &["compare", "c.json", "c.json", "--markdown", "cmp.md"],
            false,
        ),
        &[0],
    );
    assert!(dir.join("cmp.md").exists());
    for shard in ["1/2", "2/2"] {
        let name = format!("shard{}.json", &shard[..1]);
        assert_quiet(
            "check --shard",
            with_closed_stdout(dir, &["check", "--shard", shard, "--json", &name], false),
            &[0],
        );
    }
    assert_quiet(
        "merge",
        with_closed_stdout(
            dir,
            &["merge", "shard1.json", "shard2.json", "--junit", "m.xml"],
            false,
        ),
        &[0],
    );
    assert!(dir.join("m.xml").exists());
    assert_quiet(
        "baseline refresh",
        with_closed_stdout(dir, &["baseline", "refresh"], false),
        &[0],
    );
    assert!(project.baseline_path().exists());
    assert_quiet("schema", with_closed_stdout(dir, &["schema"], false), &[0]);
    assert_quiet(
        "completions",
        with_closed_stdout(dir, &["completions", "bash"], false),
        &[0],
    );
    // 0 on a machine that can run CUDA kernels, 2 on one that cannot: never a panic.
    assert_quiet(
        "doctor",
        with_closed_stdout(dir, &["doctor"], false),
        &[0, 2],
    );
}

#[test]
fn a_check_whose_stdout_and_stderr_are_closed_still_finishes() {
    let project = Project::new(GATES);
    let (code, _) = with_closed_stdout(
        project.path(),
        &["check", "--json", "out.json", "--markdown", "out.md"],
        true,
    );
    assert_eq!(code, 0);
    assert_eq!(project.json("out.json")["verdict"], "pass");
    assert!(project.path().join("out.md").exists());
}

#[test]
fn schema_into_a_full_disk_is_an_environment_error() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let output = Process::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .arg("schema")
        .stdout(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A run record from a real check, for tests that edit it.
fn stored_run(project: &Project) -> RunRecord {
    project.gatekeeper(&["check", "--json", "out.json"]).code(0);
    serde_json::from_value(project.json("out.json")).unwrap()
}

fn save(project: &Project, name: &str, run: &RunRecord) {
    project.write(name, &serde_json::to_string_pretty(run).unwrap());
}

#[test]
fn a_multi_byte_commit_in_a_record_is_shortened_at_a_character() {
    let project = Project::new(GATES);
    let mut run = stored_run(&project);
    // Byte 12 falls inside the seventh 'é'.
    run.commit = Some(format!("a{}", "é".repeat(20)));
    for result in &mut run.results {
        result.baseline_commit = run.commit.clone();
    }
    save(&project, "odd.json", &run);
    project
        .gatekeeper(&[
            "report",
            "odd.json",
            "--markdown",
            "odd.md",
            "--junit",
            "odd.xml",
        ])
        .code(0);
    let markdown = std::fs::read_to_string(project.path().join("odd.md")).unwrap();
    assert!(
        markdown.contains(&format!("commit `a{}`", "é".repeat(11))),
        "{markdown}"
    );
}

/// What a hostile harness writes: terminal escapes (clear screen, window title, a hyperlink),
/// NUL, a bidi override, the characters XML forbids, and a one-byte CSI.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{1b}]8;;https://evil.example\u{7}click\u{1b}]8;;\u{7} NUL\u{0} RLO\u{202e}gnp.exe FFFE\u{fffe} FFFF\u{ffff} CSI\u{9b}31m VT\u{b} FF\u{c} LRI\u{2066}x\u{2069}";

const HOSTILE_HARNESS: &str = r#"import json, os, sys
text = json.load(open("hostile.json"))
shape = os.environ["GATEKEEPER_SHAPE"]
if shape == "small":
    sys.stderr.buffer.write((text + "\n").encode("utf-8"))
    sys.exit(3)
if shape == "long":
    print(json.dumps({"error": "cannot measure: " + text}))
    sys.exit(0)
print(json.dumps({"samples_us": [1.0, 2.0], "correct": False, "message": "wrong: " + text, "device": "Test GPU"}))
"#;

fn hostile_project() -> Project {
    let project = Project::new(
        r#"version: 1
timing: {warmup: 1, samples: 5}
shapes:
  small: {N: 1}
  mission: {N: 2}
  long: {N: 3}
kernels:
  - name: evil
    command: ["python3", "hostile.py"]
    shapes: [small, mission, long]
"#,
    );
    project.write("hostile.py", HOSTILE_HARNESS);
    project.write(
        "hostile.json",
        &serde_json::to_string(&json!(HOSTILE)).unwrap(),
    );
    project
}

/// Characters XML 1.0 forbids (surrogates cannot occur in a Rust string).
fn forbidden_in_xml(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

#[test]
fn junit_stays_well_formed_whatever_a_harness_writes() {
    let project = hostile_project();
    project
        .gatekeeper(&["check", "--junit", "junit.xml", "--json", "out.json"])
        .code(1);
    let run = project.json("out.json");
    assert!(
        run["results"][0]["stderr_tail"]
            .as_str()
            .unwrap()
            .contains('\u{fffe}'),
        "the record keeps what the harness wrote: {run}"
    );
    let xml = std::fs::read_to_string(project.path().join("junit.xml")).unwrap();
    assert!(!xml.chars().any(forbidden_in_xml), "{xml:?}");
    assert!(xml.contains(r"FFFE\u{fffe}"), "{xml}");
    // A strict parser agrees.
    let parsed = Process::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1]); print('ok')",
            "junit.xml",
        ])
        .current_dir(project.path())
        .output()
        .unwrap();
    assert!(
        parsed.status.success(),
        "{}",
        String::from_utf8_lossy(&parsed.stderr)
    );
}

/// Whether `text` holds a character that could drive a terminal: a control other than a
/// newline or tab, or a bidi control.
fn drives_a_terminal(text: &str) -> bool {
    text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
    })
}

#[test]
fn harness_text_reaches_the_terminal_neutralised() {
    let project = hostile_project();
    let check = project.gatekeeper(&["check", "--json", "out.json"]).code(1);
    let output = check.get_output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!drives_a_terminal(&stdout), "stdout: {stdout:?}");
    assert!(!drives_a_terminal(&stderr), "stderr: {stderr:?}");
    for escaped in [
        r"\x1b[2J",
        r"\x1b]0;pwned\x07",
        r"NUL\x00",
        r"RLO\u{202e}gnp.exe",
    ] {
        assert!(stdout.contains(escaped), "{escaped} in {stdout}");
    }
    // The progress line of a shape the harness could not measure carries its message too.
    assert!(stderr.contains(r"\x1b[2J"), "{stderr}");
    // `report` prints the stored record the same way.
    let report = project.gatekeeper(&["report", "out.json"]).code(1);
    let stdout = String::from_utf8_lossy(&report.get_output().stdout).into_owned();
    assert!(!drives_a_terminal(&stdout), "{stdout:?}");
    assert!(stdout.contains(r"CSI\x9b31m"), "{stdout}");
}

/// A record of 1,100 results over 367 kernels from a real one: every 40th kernel fails (an
/// error with a long multi-byte log), the rest pass.
fn large_record(project: &Project) -> RunRecord {
    let template = stored_run(project);
    let mut run = template.clone();
    run.results.clear();
    for k in 0..367 {
        for (index, result) in template.results.iter().enumerate() {
            let mut result = result.clone();
            result.kernel = format!("attn_{k:03}");
            result.verdict = Verdict::Unchanged;
            result.message = None;
            if k % 40 == 0 && index == 0 {
                result.verdict = Verdict::Error;
                result.message = Some(format!("harness failed: {}", "µs ✅ → 😀 ".repeat(30)));
                result.stderr_tail = Some("Traceback ✅ → 😀 <b>@here</b>\n".repeat(40));
            }
            run.results.push(result);
        }
    }
    run.kernels = decide_kernels(&run.results, &run.gate);
    run.verdict = PassFail::from_passed(run.kernels.iter().all(|k| k.verdict.passed()));
    run
}

#[test]
fn the_markdown_comment_keeps_to_its_budget() {
    let project = Project::new(GATES);
    let run = large_record(&project);
    assert!(run.results.len() > 1_000);
    save(&project, "large.json", &run);
    project
        .gatekeeper(&["report", "large.json", "--markdown", "comment.md"])
        .code(1);
    let bytes = std::fs::read(project.path().join("comment.md")).unwrap();
    assert!(bytes.len() <= 60_000, "{} bytes", bytes.len());
    let text = String::from_utf8(bytes).expect("valid UTF-8");
    assert_eq!(
        text.matches("<details>").count(),
        text.matches("</details>").count()
    );
    assert!(text.starts_with("## ❌ gatekeeper: 10 of 367 kernels failed"));
    for kernel in run.kernels.iter().filter(|k| !k.verdict.passed()) {
        assert!(
            text.contains(&format!("### ❌ `{}`", kernel.name)),
            "{} is not named",
            kernel.name
        );
    }
    assert!(text.contains("357 passing kernels are left out"), "{text}");
    assert!(text.ends_with("</sub>\n"), "{text}");
}

#[test]
fn the_comment_workflow_posts_the_comment_whole() {
    let workflow = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/workflows/comment.yml"),
    )
    .unwrap();
    assert!(!workflow.contains("head -c"), "{workflow}");
    assert!(
        workflow.contains(&format!(r#"-le {} ]"#, gatekeeper::report::MARKDOWN_BUDGET)),
        "the workflow's limit is the renderer's budget"
    );
}

/// `println!` and `eprintln!` panic on a closed or full stream; everything gatekeeper prints goes
/// through `outln!`/`errln!` (src/output.rs) instead.
#[test]
fn nothing_in_src_prints_with_the_panicking_macros() {
    let mut offenders = Vec::new();
    let mut folders = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                // Unit tests may print: only the code before the first test module counts.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for (number, line) in code.lines().enumerate() {
                    let line = line.trim_start();
                    if !line.starts_with("//")
                        && (line.contains("println!(") || line.contains("print!("))
                    {
                        offenders.push(format!("{}:{}: {line}", path.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
