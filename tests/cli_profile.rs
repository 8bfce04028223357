//! `gatekeeper profile` on a machine without a GPU: what it refuses, and profile settings that
//! gates.yaml gets wrong. The GPU tests cover profiling itself.

mod common;

use common::*;
use predicates::prelude::*;

#[test]
fn profile_needs_cuda_kernels_and_a_driver() {
    let project = Project::new(CUDA_GATES);
    // A selection without `cuda:` kernels has nothing to profile: a usage error.
    project
        .gatekeeper(&["profile", "--kernels", "harnessed"])
        .code(2)
        .stderr(predicate::str::contains("nothing to profile"));
    if gatekeeper::cuda::driver::driver_present() {
        eprintln!(
            "skipped the driver check: this machine has a CUDA driver (the GPU tests cover it)"
        );
        return;
    }
    project.gatekeeper(&["profile"]).code(2).stderr(
        predicate::str::contains("no CUDA driver (libcuda.so) was found")
            .and(predicate::str::contains("panicked").not()),
    );
}

#[test]
fn profile_targets_on_unknown_metrics_are_config_errors() {
    let gates = CUDA_GATES.replacen(
        "    cuda:",
        "    profile:\n      targets: {no_such_metric: {min: 1}, tensor_pipe_pct: {}}\n    cuda:",
        1,
    );
    let project = Project::new(&gates);
    project.gatekeeper(&["check"]).code(2).stderr(
        predicate::str::contains("profile.targets.no_such_metric")
            .and(predicate::str::contains("unknown metric"))
            .and(predicate::str::contains("profile.targets.tensor_pipe_pct"))
            .and(predicate::str::contains("give `min`, `max` or both")),
    );
}
