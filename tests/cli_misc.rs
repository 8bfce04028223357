//! Usage and configuration errors, help, and the commands that need no harness: `schema`,
//! `completions` and `doctor`.

mod common;

use std::path::Path;

use common::*;
use predicates::prelude::*;
use serde_json::Value;

#[test]
fn usage_errors_exit_2() {
    let project = Project::new(GATES);
    project
        .gatekeeper(&["check", "--kernels", "nope"])
        .code(2)
        .stderr(predicate::str::contains(
            "--kernels: no kernel named \"nope\"",
        ));
    project.gatekeeper(&["frobnicate"]).code(2);
    project
        .gatekeeper(&["check", "--config", "missing.yaml"])
        .code(2)
        .stderr(predicate::str::contains("missing.yaml: no such file"));
    project
        .gatekeeper(&["--help"])
        .code(0)
        .stdout(predicate::str::contains("Exit codes"));
    project
        .gatekeeper(&["check", "--help"])
        .code(0)
        .stdout(predicate::str::contains("gatekeeper check --against main"));
}

#[test]
fn bad_config_exits_2_naming_file_and_key_and_writes_nothing() {
    let project = Project::new(&GATES.replace("timeout_s: 20", "timeout_s: 20\n    colour: red"));
    project
        .gatekeeper(&["check", "--json", "out.json"])
        .code(2)
        .stderr(
            predicate::str::contains("gates.yaml: invalid configuration")
                .and(predicate::str::contains("line 13"))
                .and(predicate::str::contains("unknown field `colour`")),
        );
    assert!(!project.path().join("out.json").exists());
    assert!(!project.path().join("runs").exists());

    let project = Project::new(&GATES.replace("[small, mission, long]", "[small, huge]"));
    project
        .gatekeeper(&["baseline", "refresh"])
        .code(2)
        .stderr(predicate::str::contains(
            "`kernels[0].shapes[1]`: unknown shape \"huge\"",
        ));
    assert!(!project.path().join("baselines").exists());
}

#[test]
fn peers_must_name_other_kernels() {
    let project = Project::new(&GATES.replace(
        "    timeout_s: 20\n",
        "    timeout_s: 20\n    peers: [attn, nobody]\n",
    ));
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("`kernels[0].peers[0]`: a kernel is not its own peer").and(
            predicate::str::contains("`kernels[0].peers[1]`: unknown kernel \"nobody\""),
        ),
    );
}

#[test]
fn cuda_blocks_are_validated_before_anything_runs() {
    let broken = CUDA_GATES
        .replace("source: kernels/saxpy.cu", "source: ../outside.cu")
        .replace(
            "args: [x, out, {i32: N}]}\n      reference",
            "args: [x, outt, {i32: N}]}\n      reference",
        )
        .replace(
            "grid: [\"ceil(N / 256)\"], block: [256], args: [x, out, {i32: N}]}\n      tolerance",
            "grid: [\"ceil(M / 256)\"], block: [2048], args: [x, out, {i32: N}]}\n      tolerance",
        )
        .replace("{dtype: f32, shape: [N]}", "{dtype: f64, shape: [N]}");
    let project = Project::new(&broken);
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("`kernels[1].cuda.tensors.x.dtype`")
            .and(predicate::str::contains("unknown variant `f64`")),
    );

    let project = Project::new(&broken.replace("dtype: f64", "dtype: f32"));
    let assert = project.gatekeeper(&["check"]).code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    for needle in [
        "`kernels[1].cuda.source`: \"../outside.cu\" leaves the repository",
        "`kernels[1].cuda.launches[0].args[1]`: unknown tensor \"outt\"",
    ] {
        assert!(
            stderr.contains(needle),
            "{needle:?} missing from:\n{stderr}"
        );
    }

    // Shape-dependent problems surface once the static ones are fixed.
    let project = Project::new(
        &broken
            .replace("dtype: f64", "dtype: f32")
            .replace("../outside.cu", "kernels/saxpy.cu")
            .replace("outt", "out"),
    );
    let assert = project.gatekeeper(&["check"]).code(2);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    let needle = "`kernels[1].cuda.reference.launches[0].grid[0]`: \"ceil(M / 256)\": unknown parameter M (the shape has N) (shape small)";
    assert!(
        stderr.contains(needle),
        "{needle:?} missing from:\n{stderr}"
    );
}

#[test]
fn the_repositorys_own_gates_yaml_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gates.yaml");
    let config = gatekeeper::config::Config::load(&path).unwrap();
    assert!(!config.kernels.is_empty());
}

#[test]
fn schema_completions_and_doctor_run_without_a_gpu() {
    let project = Project::new(GATES);
    let assert = project.gatekeeper(&["schema"]).code(0);
    let schema: Value = serde_json::from_slice(&assert.get_output().stdout).unwrap();
    assert_eq!(schema["title"], "gatekeeper gates.yaml, schema version 1");
    project
        .gatekeeper(&["completions", "bash"])
        .code(0)
        .stdout(predicate::str::contains("_gatekeeper()"));
    if gatekeeper::cuda::driver::driver_present() {
        eprintln!("skipped the no-driver doctor check: this machine has a CUDA driver");
        return;
    }
    project
        .gatekeeper(&["doctor"])
        .code(2)
        .stdout(predicate::str::contains(
            "FAIL CUDA driver: libcuda.so not found",
        ));
}

#[test]
fn every_command_has_help_with_examples() {
    let project = Project::new(GATES);
    for command in [
        vec!["check"],
        vec!["baseline", "refresh"],
        vec!["report"],
        vec!["compare"],
        vec!["merge"],
        vec!["doctor"],
        vec!["schema"],
        vec!["completions"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        project
            .gatekeeper(&args)
            .code(0)
            .stdout(predicate::str::contains("Examples:"));
    }
}
