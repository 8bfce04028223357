//! Measuring: a harness turns one kernel × shape into timing samples, or into a failure that
//! the reports explain.

mod command;
mod details;
mod serve;

pub use command::{
    install_interrupt_handler, keep_on_interrupt, remove_on_interrupt, CommandHarness, TimingOnly,
};
pub use details::{Details, Resources, TimingMethod};

use serde::{Deserialize, Serialize};

use crate::plan::Job;

/// Set to `1` for processes whose correctness was already checked by the run before them (the
/// A/B rounds): a harness may skip its checks and only time, reporting `correct` as null.
pub const TIMING_ONLY_ENV: &str = "GATEKEEPER_TIMING_ONLY";

/// What every harness is told besides the job itself.
#[derive(Debug, Clone, Copy)]
pub struct RunSettings {
    pub warmup: u64,
    pub samples: u64,
    pub seed: u64,
}

/// One kernel × shape, measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Per-launch times in microseconds, as the harness reported them.
    pub samples_us: Vec<f64>,
    /// `None` when the harness does not check correctness.
    pub correct: Option<bool>,
    pub max_abs_err: Option<f64>,
    pub max_rel_err: Option<f64>,
    /// Relative L2 error of the output, ‖got − want‖₂ / ‖want‖₂.
    #[serde(default)]
    pub rel_l2_err: Option<f64>,
    /// The device the samples came from; selects the baseline folder.
    pub device: Option<String>,
    /// The harness's explanation of a wrong result.
    pub message: Option<String>,
    /// Extra facts the harness reported (driver, clocks, batch size, mismatches, ...).
    pub details: Option<Details>,
    /// Tail of the harness's stderr, kept for the reports when something looks wrong.
    pub stderr_tail: String,
}

/// Why a kernel × shape produced no usable samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub message: String,
    pub stderr_tail: String,
}

pub type Outcome = Result<Measurement, Failure>;

/// Anything that can time a kernel on a shape. Implementations never panic on a misbehaving
/// kernel: every problem becomes a [`Failure`].
pub trait Harness {
    fn measure(&self, job: &Job, settings: &RunSettings) -> Outcome;

    /// Gets ready to measure `jobs`: starts persistent (protocol v2) harnesses together, so
    /// their start-up overlaps instead of adding up. Problems surface when a job is measured.
    fn prepare(&self, _jobs: &[Job], _settings: &RunSettings) {}

    /// Every shape of `kernel` is measured: a persistent harness may stop, giving back the GPU
    /// memory it holds. Measuring the kernel again starts it anew.
    fn done_with(&self, _kernel: &str) {}
}

/// Where one kernel's wall time went in a run, in seconds. The parts overlap where work
/// overlaps: persistent harnesses start together, so their start-ups add up to more than the
/// wall time they cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelTime {
    /// Harness processes started: setup steps, v1 runs, v2 servers, the base build's too.
    pub processes: usize,
    /// Persistent (v2) harnesses from start to ready: imports, the CUDA context, and for the
    /// CUDA runner the compile, which `compile_s` counts on its own.
    pub startup_s: f64,
    pub compile_s: f64,
    /// Measuring the shapes: every request or v1 process, start to answer.
    pub measuring_s: f64,
    /// Within it, as the harness reported: checking outputs (gate 2) and taking samples (gate 3).
    pub correctness_s: f64,
    pub timing_s: f64,
    /// Gate 4, under the profiler.
    pub profiling_s: f64,
    /// The rounds beside the base build.
    pub ab_s: f64,
}

impl KernelTime {
    /// Wall seconds the kernel cost: start-up, measuring, profiling and A/B.
    pub fn total_s(&self) -> f64 {
        self.startup_s + self.measuring_s + self.profiling_s + self.ab_s
    }

    /// Adds `other`'s seconds and processes to these.
    pub fn add(&mut self, other: &KernelTime) {
        self.processes += other.processes;
        self.startup_s += other.startup_s;
        self.compile_s += other.compile_s;
        self.measuring_s += other.measuring_s;
        self.correctness_s += other.correctness_s;
        self.timing_s += other.timing_s;
        self.profiling_s += other.profiling_s;
        self.ab_s += other.ab_s;
    }
}
