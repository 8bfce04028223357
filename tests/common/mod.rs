//! Helpers shared by the CLI test files: temporary git repositories holding a gates.yaml and
//! the fixture harness, and the real binary run inside them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Value};

pub const HARNESS: &str = include_str!("../fixtures/harness.py");

pub const GATES: &str = r#"version: 1
gate: {regression_threshold: 0.10, min_regressed_shapes: 2, alpha: 0.05}
timing: {warmup: 1, samples: 40}
shapes:
  small: {B: 1, H: 8, S: 256, D: 64}
  mission: {B: 2, H: 16, S: 1024, D: 64}
  long: {B: 1, H: 16, S: 8192, D: 64}
kernels:
  - name: attn
    command: ["python3", "harness.py"]
    shapes: [small, mission, long]
    timeout_s: 20
"#;

/// A temporary repository holding gates.yaml, the fixture harness and its behaviour file.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub repo: git2::Repository,
}

impl Project {
    pub fn new(gates: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let project = Project { dir, repo };
        project.write("gates.yaml", gates);
        project.write("harness.py", HARNESS);
        project.write(".gitignore", "*.xml\n*.md\nout.json\n");
        project.behave(json!({}));
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, name: &str, text: &str) {
        let path = self.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Sets per-shape behaviour; every shape defaults to ~100 µs with 2 % noise on "Test GPU".
    pub fn behave(&self, shapes: Value) {
        self.behave_with(shapes, 0, "Test GPU");
    }

    pub fn behave_with(&self, shapes: Value, salt: u64, device: &str) {
        let behavior = json!({"device": device, "salt": salt, "shapes": shapes});
        self.write("behavior.json", &behavior.to_string());
    }

    pub fn commit(&self, message: &str) -> git2::Oid {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("test", "test@example.com").unwrap();
        let parent = self
            .repo
            .head()
            .ok()
            .and_then(|head| head.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .unwrap()
    }

    /// Creates branch `name` at HEAD and checks it out (the files do not change).
    pub fn branch(&self, name: &str) {
        let head = self.repo.head().unwrap().peel_to_commit().unwrap();
        self.repo.branch(name, &head, false).unwrap();
        self.repo.set_head(&format!("refs/heads/{name}")).unwrap();
    }

    /// Runs gatekeeper with extra environment variables.
    pub fn gatekeeper_with(
        &self,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> assert_cmd::assert::Assert {
        Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
            .current_dir(self.path())
            .envs(env.iter().copied())
            .args(args)
            .assert()
    }

    pub fn gatekeeper(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        Command::new(env!("CARGO_BIN_EXE_gatekeeper"))
            .current_dir(self.path())
            .args(args)
            .assert()
    }

    pub fn json(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.path().join(name)).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    pub fn baseline_path(&self) -> PathBuf {
        self.path().join("baselines/test-gpu/attn.json")
    }

    /// Refreshes baselines at ~100 µs on every shape and commits them on main.
    pub fn with_committed_baseline(gates: &str) -> Project {
        let project = Project::new(gates);
        project
            .gatekeeper(&["baseline", "refresh"])
            .code(0)
            .stdout(predicate::str::contains("wrote"));
        project.commit("baseline");
        project
    }
}

pub fn verdicts(run: &Value) -> Vec<String> {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["shape"].as_str().unwrap(),
                r["verdict"].as_str().unwrap()
            )
        })
        .collect()
}

/// A `cuda:` kernel beside a command harness.
pub const CUDA_GATES: &str = r#"version: 1
shapes:
  small: {N: 4096}
kernels:
  - name: harnessed
    command: ["python3", "harness.py"]
    shapes: [small]
  - name: saxpy
    shapes: [small]
    cuda:
      source: kernels/saxpy.cu
      tensors:
        x: {dtype: f32, shape: [N]}
        out: {dtype: f32, shape: [N], output: true}
      launches:
        - {entry: saxpy, grid: ["ceil(N / 256)"], block: [256], args: [x, out, {i32: N}]}
      reference:
        launches:
          - {entry: saxpy_ref, grid: ["ceil(N / 256)"], block: [256], args: [x, out, {i32: N}]}
      tolerance: {atol: 1.0e-6, rtol: 1.0e-6}
"#;
