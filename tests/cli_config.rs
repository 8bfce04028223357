//! gates.yaml as a user gets it wrong: every problem listed at once, a byte-order mark, and the
//! JSON Schema rejecting what the loader rejects. Also the edges of a run: an interrupted check,
//! and a harness that returns fewer samples than it was asked for.

mod common;

use common::*;
use predicates::prelude::*;
use serde_json::json;

/// Ten values of the wrong type, and four problems the semantic pass finds around them.
const TEN_WRONG_TYPES: &str = r#"version: one
gate: {regression_threshold: high, min_regressed_shapes: two, alpha: 0.9}
timing: {warmup: few, samples: 0, seed: -1}
shapes:
  small: {B: [1], H: 8, S: 256, D: 64}
  mission: {B: 2, H: 16, S: 1024, D: 64}
kernels:
  - name: attn
    command: python3 harness.py
    shapes: [small, mission, huge]
    timeout_s: forever
    env: {DEBUG: [1]}
  - name: twin
    command: ["python3", "harness.py"]
    shapes: mission
    peers: [attn, nobody]
"#;

#[test]
fn every_problem_in_gates_yaml_is_listed_at_once() {
    let project = Project::new(TEN_WRONG_TYPES);
    let assert = project.gatekeeper(&["check", "--json", "out.json"]).code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let expected = [
        "  - line 1: `version`: invalid type: string \"one\"",
        "  - line 2: `gate.regression_threshold`: invalid type: string \"high\"",
        "  - line 2: `gate.min_regressed_shapes`: invalid type: string \"two\"",
        "  - line 3: `timing.warmup`: invalid type: string \"few\"",
        "  - line 3: `timing.seed`: invalid type: integer `-1`",
        "  - line 5: `shapes.small.B`: expected a number, boolean or string",
        "  - line 9: `kernels[0].command`: invalid type: string \"python3 harness.py\", expected a list",
        "  - line 11: `kernels[0].timeout_s`: invalid type: string \"forever\"",
        "  - line 12: `kernels[0].env.DEBUG`: invalid type: sequence, expected a string",
        "  - line 15: `kernels[1].shapes`: invalid type: string \"mission\", expected a list",
        "  - `gate.alpha`: must be in (0, 0.5], got 0.9",
        "  - `timing.samples`: must be in [5, 100000], got 0",
        "  - `kernels[0].shapes[2]`: unknown shape \"huge\"",
        "  - `kernels[1].peers[1]`: unknown kernel \"nobody\"",
    ];
    let listed: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(listed.len(), expected.len(), "{stderr}");
    for (line, needle) in listed.iter().zip(expected) {
        assert!(
            line.starts_with(needle),
            "{needle:?} expected, got {line:?}"
        );
    }
    assert!(stderr.starts_with("error: gates.yaml: invalid configuration:"));
    assert!(!project.path().join("out.json").exists());
    assert!(!project.path().join("runs").exists());
}

#[test]
fn a_yaml_syntax_error_is_reported_alone_with_its_line() {
    let project = Project::new(&GATES.replace("[small, mission, long]", "[small, mission"));
    let assert = project.gatekeeper(&["check"]).code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let listed: Vec<&str> = stderr.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(listed.len(), 1, "{stderr}");
    assert!(listed[0].starts_with("  - line 1"), "{stderr}");
}

#[test]
fn a_byte_order_mark_before_gates_yaml_is_ignored() {
    let project = Project::new(&format!("\u{feff}{GATES}"));
    project
        .gatekeeper(&["baseline", "refresh"])
        .code(0)
        .stderr(predicate::str::contains("missing field").not());
    project.gatekeeper(&["check"]).code(0);

    // A problem in the first key is still named by that key.
    let project = Project::new(&format!(
        "\u{feff}{}",
        GATES.replace("version: 1", "version: x")
    ));
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("line 1: `version`: invalid type: string \"x\"")
            .and(predicate::str::contains("missing field").not()),
    );
}

/// A gates.yaml gatekeeper refuses, and why its JSON Schema cannot, if it cannot.
struct Malformed {
    what: &'static str,
    yaml: String,
    /// Only the semantic pass can find these: the schema accepts the file, and says why not.
    schema_cannot: Option<&'static str>,
}

fn bad(what: &'static str, yaml: String) -> Malformed {
    Malformed {
        what,
        yaml,
        schema_cannot: None,
    }
}

fn semantic(what: &'static str, yaml: String, why: &'static str) -> Malformed {
    Malformed {
        what,
        yaml,
        schema_cannot: Some(why),
    }
}

/// `text` with `from` replaced, which must be there.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in the fixture");
    text.replacen(from, to, 1)
}

/// Every malformed gates.yaml of the CLI tests, and more.
fn malformed() -> Vec<Malformed> {
    let gates = |from: &str, to: &str| edit(GATES, from, to);
    let cuda = |from: &str, to: &str| edit(CUDA_GATES, from, to);
    let kernel = "    timeout_s: 20\n";
    let twin = "  - name: twin\n    command: [\"python3\", \"harness.py\"]\n    shapes: [small]\n";
    vec![
        // From tests/cli_misc.rs.
        bad("unknown key", gates(kernel, "    timeout_s: 20\n    colour: red\n")),
        semantic(
            "unknown shape",
            gates("[small, mission, long]", "[small, huge]"),
            "a shape list names keys of `shapes`: a schema cannot check a value against another object's keys",
        ),
        semantic(
            "a kernel as its own peer, an unknown peer",
            gates(kernel, "    timeout_s: 20\n    peers: [attn, nobody]\n"),
            "peers name other kernels of the file: a schema cannot check a value against other values",
        ),
        bad("unknown dtype", cuda("{dtype: f32, shape: [N]}", "{dtype: f64, shape: [N]}")),
        bad("a source outside the repository", cuda("source: kernels/saxpy.cu", "source: ../outside.cu")),
        semantic(
            "an argument naming no tensor",
            cuda("args: [x, out, {i32: N}]}\n      reference", "args: [x, outt, {i32: N}]}\n      reference"),
            "arguments name keys of `tensors`: a schema cannot check a value against another object's keys",
        ),
        semantic(
            "an expression over an unknown parameter",
            cuda("grid: [\"ceil(N / 256)\"], block: [256], args: [x, out, {i32: N}]}\n      tolerance",
                 "grid: [\"ceil(M / 256)\"], block: [256], args: [x, out, {i32: N}]}\n      tolerance"),
            "expressions are evaluated against each shape's parameters, which a schema cannot do",
        ),
        semantic(
            "a profile target on an unknown metric",
            cuda("    cuda:", "    profile:\n      targets: {no_such_metric: {min: 1}}\n    cuda:"),
            "metric names are the built-in ones plus the file's own `profile.metrics`: a cross-reference",
        ),
        bad("a profile target without bounds", cuda("    cuda:", "    profile:\n      targets: {tensor_pipe_pct: {}}\n    cuda:")),
        // The schema used to accept these.
        bad("too few samples", gates("samples: 40", "samples: 0")),
        bad("another schema version", gates("version: 1", "version: 2")),
        bad("a kernel name that is a path", gates("name: attn", "name: ../x")),
        bad("a zero timeout", gates("timeout_s: 20", "timeout_s: 0")),
        // Listing every problem at once.
        bad("ten values of the wrong type", TEN_WRONG_TYPES.to_string()),
        semantic(
            "a repeated key",
            gates("  long: {B: 1, H: 16, S: 8192, D: 64}\n", "  long: {B: 1, H: 16, S: 8192, D: 64}\n  long: {B: 1}\n"),
            "YAML read as JSON keeps one of repeated keys (YAML editors flag them themselves)",
        ),
        semantic(
            "a YAML syntax error",
            gates("[small, mission, long]", "[small, mission"),
            "not YAML: there is no document to check against a schema",
        ),
        // The other ranges and rules.
        bad("no regressed shape is enough", gates("min_regressed_shapes: 2", "min_regressed_shapes: 0")),
        bad("alpha above 0.5", gates("alpha: 0.05", "alpha: 0.9")),
        bad("a zero regression threshold", gates("regression_threshold: 0.10", "regression_threshold: 0")),
        bad("an outlier fence below 1", gates("alpha: 0.05}", "alpha: 0.05, outlier_fence: 0.5}")),
        bad("a million and one warm-up runs", gates("warmup: 1", "warmup: 1000001")),
        bad("no shapes", edit(&gates("  small: {B: 1, H: 8, S: 256, D: 64}\n  mission: {B: 2, H: 16, S: 1024, D: 64}\n  long: {B: 1, H: 16, S: 8192, D: 64}\n", ""), "shapes:\n", "shapes: {}\n")),
        bad("no kernels", format!("{}kernels: []\n", &GATES[..GATES.find("kernels:").unwrap()])),
        bad("an empty command", gates("command: [\"python3\", \"harness.py\"]", "command: []")),
        bad("a blank program", gates("command: [\"python3\", \"harness.py\"]", "command: [\" \", \"harness.py\"]")),
        bad("neither command nor cuda", gates("    command: [\"python3\", \"harness.py\"]\n", "")),
        bad("both command and cuda", cuda("  - name: saxpy\n", "  - name: saxpy\n    command: [x]\n")),
        bad("no shapes for a kernel", gates("[small, mission, long]", "[]")),
        bad("a shape listed twice", gates("[small, mission, long]", "[small, small]")),
        bad("a shape name starting with a dot", gates("  small:", "  .small:")),
        bad("a parameter name that is not an identifier", gates("{B: 1, H: 8", "{1B: 1, H: 8")),
        bad("an environment variable name with a dash", gates(kernel, "    timeout_s: 20\n    env: {MY-FLAG: \"1\"}\n")),
        semantic(
            "two kernels of one name",
            format!("{GATES}{}", twin.replace("twin", "attn")),
            "names must differ across list items, which a schema cannot say of one property",
        ),
        bad("a timeout over a day", gates("timeout_s: 20", "timeout_s: 86401")),
        bad("a negative atol", cuda("atol: 1.0e-6", "atol: -1.0e-6")),
        bad("a norm-wise tolerance of zero", cuda("rtol: 1.0e-6}", "rtol: 1.0e-6, rel_l2: 0}")),
        bad("a norm-wise tolerance above 1", cuda("rtol: 1.0e-6}", "rtol: 1.0e-6, rel_l2: 2}")),
        bad("zero correctness trials", cuda("      tolerance:", "      trials: 0\n      tolerance:")),
        bad("a ninth auxiliary stream", cuda("args: [x, out, {i32: N}]}\n      reference", "args: [x, out, {i32: N}], stream: 9}\n      reference")),
        bad("a four-dimensional grid", cuda("grid: [\"ceil(N / 256)\"], block: [256], args: [x, out, {i32: N}]}\n      reference", "grid: [1, 1, 1, 1], block: [256], args: [x, out, {i32: N}]}\n      reference")),
        bad("an entry point that is not an identifier", cuda("entry: saxpy,", "entry: sax-py,")),
        bad("a tensor without dimensions", cuda("x: {dtype: f32, shape: [N]}", "x: {dtype: f32, shape: []}")),
        bad("two distributions for one input", cuda("x: {dtype: f32, shape: [N]}", "x: {dtype: f32, shape: [N], init: {constant: 1, normal: [0, 1]}}")),
        bad("a scalar without a type", cuda("args: [x, out, {i32: N}]}\n      reference", "args: [x, out, {}]}\n      reference")),
        semantic(
            "no output tensor",
            cuda("out: {dtype: f32, shape: [N], output: true}", "out: {dtype: f32, shape: [N]}"),
            "`output: true` on at least one of `tensors`' values: a schema cannot require that of an object's values",
        ),
        bad("an occupancy over 100 %", cuda("    cuda:", "    profile: {min_occupancy_pct: 101}\n    cuda:")),
        bad("a zero peak", format!("{CUDA_GATES}profile:\n  peaks:\n    test-gpu: {{tflops: 0, bandwidth_gbs: 3000}}\n")),
        bad("two metrics in one name", format!("{CUDA_GATES}profile:\n  metrics:\n    both: \"sm__a, sm__b\"\n")),
    ]
}

#[test]
fn every_malformed_gates_yaml_exits_2_and_fails_the_schema() {
    let schema = gatekeeper::config::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    let mut wrong = Vec::new();
    for case in malformed() {
        let project = Project::new(&case.yaml);
        let output = project.gatekeeper(&["check"]).get_output().clone();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if output.status.code() != Some(2) || !stderr.contains("invalid configuration") {
            wrong.push(format!(
                "{}: gatekeeper gave {:?}: {stderr}",
                case.what,
                output.status.code()
            ));
        }
        let doc: Option<serde_json::Value> = serde_yaml::from_str(&case.yaml).ok();
        let schema_accepts = doc.is_some_and(|doc| validator.is_valid(&doc));
        match (case.schema_cannot, schema_accepts) {
            (None, true) => wrong.push(format!("{}: the schema accepts it", case.what)),
            // A known exception the schema has learnt to catch is one to strike off the list.
            (Some(_), false) if serde_yaml::from_str::<serde_json::Value>(&case.yaml).is_ok() => {
                wrong.push(format!(
                    "{}: the schema rejects it now; drop the exception",
                    case.what
                ))
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_schema_still_accepts_the_fixtures() {
    let schema = gatekeeper::config::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    // Numbers and booleans in `env` are read as written; the schema takes them too.
    let env_scalars = GATES.replace(
        "    timeout_s: 20\n",
        "    timeout_s: 20\n    env: {A: \"x\", B: 1, C: true}\n",
    );
    assert_ne!(env_scalars, GATES);
    Project::new(&env_scalars)
        .gatekeeper(&["check", "--kernels", "attn", "--shapes", "small"])
        .code(0);
    for yaml in [GATES, CUDA_GATES, &env_scalars] {
        let doc: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{yaml}\n{errors:#?}");
    }
}

#[test]
fn sigint_ends_a_check_with_exit_code_130() {
    let project = Project::new(GATES);
    project.behave(json!({"small": {"hang": true}}));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
        .current_dir(project.path())
        .args(["check", "--json", "out.json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = project.path().join("hang-small.pid");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !pid_file.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(pid_file.exists(), "the harness never started");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // Nothing was judged, so nothing was reported.
    assert!(!project.path().join("out.json").exists());
    assert!(!project.path().join("runs").exists());
    project
        .gatekeeper(&["--help"])
        .code(0)
        .stdout(predicate::str::contains("130  interrupted"));
}

/// A harness that times at most 12 samples on `small`, whatever it is asked for.
const SHORT_HARNESS: &str = r#"import json, os
wanted = int(os.environ["GATEKEEPER_SAMPLES"])
n = min(wanted, 12) if os.environ["GATEKEEPER_SHAPE"] == "small" else wanted
print(json.dumps({"samples_us": [100.0 + i % 3 for i in range(n)], "device": "Test GPU"}))
"#;

#[test]
fn a_harness_returning_fewer_samples_is_warned_about_and_recorded() {
    let project = Project::new(&GATES.replace("harness.py", "short.py"));
    project.write("short.py", SHORT_HARNESS);
    let warning = "warning: attn/small: the harness returned 12 of the 40 samples requested";
    project
        .gatekeeper(&["baseline", "refresh"])
        .code(0)
        .stderr(predicate::str::contains(warning));
    let assert = project
        .gatekeeper(&["check", "--json", "out.json"])
        .code(0)
        .stderr(predicate::str::contains(warning));
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.matches("warning:").count(), 1, "{stderr}");

    let run = project.json("out.json");
    let small = &run["results"][0];
    assert_eq!(small["shape"], "small");
    assert_eq!(small["samples_requested"], 40);
    assert_eq!(small["samples_returned"], 12);
    let mission = &run["results"][1];
    assert_eq!(mission["samples_requested"], 40);
    assert_eq!(mission["samples_returned"], 40);

    // The counts survive a report judged again from the record.
    project
        .gatekeeper(&[
            "report",
            "out.json",
            "--alpha",
            "0.01",
            "--json",
            "again.json",
        ])
        .code(0);
    assert_eq!(
        project.json("again.json")["results"][0]["samples_returned"],
        12
    );
}
