//! The CUDA runner: gates 1–3 (compile → correctness → timing) for one `cuda:` kernel.
//! gatekeeper runs it as a child of itself, so an illegal address, a hang or a crash costs one
//! shape, not the run. It speaks the command-harness protocol: v2 (one process per kernel: one
//! context, one compile and module load, then a request per shape; after a fault it answers
//! and exits, and the next shape gets a fresh process), or v1 (one shape, from the
//! environment, one report line). Under a profiler (`GATEKEEPER_PROFILE=1`) each shape is
//! launched once instead of checked and timed.
//!
//! [`kernels`] compiles and loads (gate 1), [`inputs`] owns the buffers and draws the inputs,
//! [`verify`] judges the output (gate 2), [`timing`] takes the samples (gate 3) and [`host`]
//! reads facts about the machine; this module runs them in order and writes the report.

mod error;
mod host;
mod inputs;
mod kernels;
mod launch;
mod serve;
mod timing;
mod verify;

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};

use self::error::{Result, RunnerError};
use self::inputs::Buffers;
use self::kernels::{Kernels, Program};
use self::launch::{fork_and_joins, Op};
use self::verify::Check;
use crate::config::{Config, KernelSpec};
use crate::cuda::driver::{Buffer, Gpu, Stream};
use crate::cuda::spec::{self, CudaSpec, L2Mode, Resolved, Tolerance};
use crate::measure::Details;

/// Entry point of `gatekeeper __cuda-runner`: serves protocol v2 when asked to, and otherwise
/// prints one protocol v1 line.
pub fn main(config_path: &Path) -> u8 {
    if std::env::var("GATEKEEPER_PROTOCOL").is_ok_and(|v| v == "2") {
        return serve::main(config_path);
    }
    let report = match run(config_path) {
        Ok(report) => report,
        Err(err) => json!({ "error": err.to_string() }),
    };
    crate::outln!("{report}");
    0
}

/// The job, from the protocol's environment variables.
struct Job {
    kernel: String,
    shape: String,
    warmup: u64,
    samples: u64,
    seed: u64,
    /// Launch once for a profiler instead of checking and timing (`GATEKEEPER_PROFILE=1`).
    profile: bool,
    /// Time without checking (`GATEKEEPER_TIMING_ONLY=1`): the A/B rounds after a check whose
    /// own run already passed gate 2.
    timing_only: bool,
}

/// Set by `gatekeeper profile` on the runner it starts under Nsight Compute.
pub const PROFILE_ENV: &str = "GATEKEEPER_PROFILE";

fn job_from_env() -> Result<Job> {
    let var =
        |name: &'static str| std::env::var(name).map_err(|_| RunnerError::MissingVariable(name));
    let number = |name: &'static str| -> Result<u64> {
        var(name)?
            .parse()
            .map_err(|_| RunnerError::NotANumber(name))
    };
    Ok(Job {
        kernel: var("GATEKEEPER_KERNEL")?,
        shape: var("GATEKEEPER_SHAPE")?,
        warmup: number("GATEKEEPER_WARMUP")?,
        samples: number("GATEKEEPER_SAMPLES")?,
        seed: number("GATEKEEPER_SEED")?,
        profile: std::env::var(PROFILE_ENV).is_ok_and(|v| v == "1"),
        timing_only: std::env::var(crate::measure::TIMING_ONLY_ENV).is_ok_and(|v| v == "1"),
    })
}

/// The shape set up on the GPU: what gates 2 and 3 run.
struct Bench<'a> {
    gpu: &'a Gpu,
    streams: &'a [Stream],
    candidate: &'a Op<'a>,
    reference: &'a Op<'a>,
    buffers: &'a Buffers,
    resolved: &'a Resolved,
    tolerance: Tolerance,
}

fn run(config_path: &Path) -> Result<Value> {
    let config = Config::load(config_path)?;
    let job = job_from_env()?;
    let kernel = kernel_spec(&config, config_path, &job.kernel)?;
    let spec = kernel
        .cuda
        .as_ref()
        .ok_or_else(|| RunnerError::NotCuda(job.kernel.clone()))?;
    let gpu = Gpu::open()?;
    // Gate 1: compile.
    let program = Program::build(&config.root, spec, &gpu)?;
    run_shape(&config, spec, &gpu, &program, &job)
}

/// Gates 2 and 3 (or one launch for a profiler) of one shape, with the kernel compiled.
fn run_shape(
    config: &Config,
    spec: &CudaSpec,
    gpu: &Gpu,
    program: &Program,
    job: &Job,
) -> Result<Value> {
    let resolved = resolve(config, spec, &job.shape)?;
    let clock_before = host::sm_clock_mhz(&gpu.info.pci_bus_id);
    let kernels = program.kernels(&resolved, gpu)?;
    let streams = (0..spec::stream_count(&resolved.launches))
        .map(|_| Stream::new())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    host::check_memory(&resolved, gpu.info.l2_bytes)?;
    let buffers = Buffers::new(&resolved)?;
    let candidate = Op::new(&resolved.launches, &kernels.candidate, &buffers, false)?;
    let reference = Op::new(&resolved.reference, &kernels.reference, &buffers, true)?;
    let bench = Bench {
        gpu,
        streams: &streams,
        candidate: &candidate,
        reference: &reference,
        buffers: &buffers,
        resolved: &resolved,
        tolerance: spec.tolerance,
    };
    let details = describe(gpu, job, spec, &kernels);
    if job.profile {
        bench.launch_once(job.seed)?;
        let mut details = details;
        // What the profiler saw, in order: lets one profiler session cover several shapes.
        let launched: Vec<&str> = resolved.launches.iter().map(|l| l.entry.as_str()).collect();
        details
            .extra
            .insert("launched".to_string(), json!(launched));
        return Ok(json!({ "device": gpu.info.name, "details": details }));
    }
    check_and_time(&bench, spec, job, &kernels, details, clock_before)
}

/// The definition of `kernel`: from `GATEKEEPER_KERNEL_SPEC` when gatekeeper passes one (a
/// candidate of `gatekeeper rank` that gates.yaml does not name), else from gates.yaml, where
/// `kernel@variant` names one of a kernel's variants.
fn kernel_spec(config: &Config, config_path: &Path, kernel: &str) -> Result<KernelSpec> {
    let spec = match std::env::var(KERNEL_SPEC_ENV) {
        Ok(json) => serde_json::from_str::<KernelSpec>(&json)
            .ok()
            .filter(|spec| spec.name == kernel),
        Err(_) => config.kernel_or_variant(kernel),
    };
    let spec = spec.ok_or_else(|| RunnerError::NoKernel {
        kernel: kernel.to_string(),
        config: config_path.to_path_buf(),
    })?;
    if spec.cuda.is_none() {
        return Err(RunnerError::NotCuda(kernel.to_string()));
    }
    Ok(spec)
}

/// Set by `gatekeeper rank` for a candidate: its whole definition, as JSON.
pub const KERNEL_SPEC_ENV: &str = "GATEKEEPER_KERNEL_SPEC";

/// The `cuda` block resolved for `shape`.
fn resolve(config: &Config, spec: &CudaSpec, shape: &str) -> Result<Resolved> {
    let params = config
        .shapes
        .get(shape)
        .ok_or_else(|| RunnerError::NoShape(shape.to_string()))?;
    spec::resolve(spec, params).map_err(RunnerError::Spec)
}

/// The facts every report carries, before anything runs.
fn describe(gpu: &Gpu, job: &Job, spec: &CudaSpec, kernels: &Kernels) -> Details {
    Details {
        runner: Some("cuda".to_string()),
        arch: Some(kernels.program.arch.clone()),
        driver_version: Some(gpu.info.driver_release()),
        multiprocessors: Some(i64::from(gpu.info.multiprocessors)),
        seed: Some(job.seed),
        trials: Some(u64::from(spec.trials)),
        compiled: Some(
            if kernels.program.cached {
                "cache"
            } else {
                "nvrtc"
            }
            .to_string(),
        ),
        cubin: kernels
            .program
            .cubin
            .as_ref()
            .map(|path| path.display().to_string()),
        resources: Some(kernels.resources.clone()),
        ..Details::default()
    }
}

impl Bench<'_> {
    /// Under a profiler: one launch of the kernel under test on seeded inputs, which the
    /// profiler replays as often as its metrics need. No reference, flush or spin kernels.
    fn launch_once(&self, seed: u64) -> Result<()> {
        self.buffers.fill_inputs(self.resolved, seed)?;
        let (fork, joins) = fork_and_joins(self.streams)?;
        self.candidate.enqueue(self.streams, &fork, &joins)?;
        self.gpu.synchronize().map_err(RunnerError::KernelFailed)
    }

    /// Gate 3: the kernel timed on whatever inputs the buffers hold.
    fn time(&self, spec: &CudaSpec, job: &Job, kernels: &Kernels) -> Result<timing::Timing> {
        timing::time(
            self.gpu,
            self.streams,
            self.candidate,
            &kernels.spin,
            spec.l2,
            job,
            &self.outputs(),
        )
    }

    /// The kernel's outputs, which the timing loop spoils before every sample.
    fn outputs(&self) -> Vec<&Buffer> {
        self.resolved
            .tensors
            .iter()
            .zip(&self.buffers.tensors)
            .filter(|(tensor, _)| tensor.output)
            .map(|(_, buffer)| buffer)
            .collect()
    }
}

/// Gates 2 and 3: correctness over the trials, timing, and correctness once more.
fn check_and_time(
    bench: &Bench,
    spec: &CudaSpec,
    job: &Job,
    kernels: &Kernels,
    mut details: Details,
    clock_before: Option<u64>,
) -> Result<Value> {
    if job.timing_only {
        return time_only(bench, spec, job, kernels, details, clock_before);
    }
    // Gate 2: correctness, with fresh inputs each trial.
    let begun = Instant::now();
    let mut worst = Check::default();
    for trial in 0..u64::from(spec.trials) {
        let seed = job.seed.wrapping_add(trial);
        let check = bench.check(seed)?;
        worst.absorb(&check);
        if !check.passed() {
            let when = format!("trial {} (seed {seed})", trial + 1);
            return Ok(incorrect(bench.gpu, details, &check, &when));
        }
    }

    let mut checking_s = begun.elapsed().as_secs_f64();

    // Gate 3: timing.
    let begun = Instant::now();
    let timing = bench.time(spec, job, kernels)?;
    details.timing_s = Some(begun.elapsed().as_secs_f64());

    // Correctness again, on fresh inputs: a kernel that is only right on its first calls, or
    // that remembers its last answer, must not pass.
    let begun = Instant::now();
    let after = bench.check(job.seed.wrapping_add(u64::from(spec.trials)))?;
    checking_s += begun.elapsed().as_secs_f64();
    details.correctness_s = Some(checking_s);
    worst.absorb(&after);
    if !after.passed() {
        let when = "the check after the timing loop";
        return Ok(incorrect(bench.gpu, details, &after, when));
    }

    details.elements_checked = Some(worst.total as u64);
    describe_timing(&mut details, &timing, spec, bench, clock_before);
    Ok(json!({
        "samples_us": timing.samples_us,
        "correct": true,
        "max_abs_err": finite_or_null(worst.max_abs),
        "max_rel_err": finite_or_null(worst.max_rel),
        "rel_l2_err": finite_or_null(worst.rel_l2),
        "device": bench.gpu.info.name,
        "details": details,
    }))
}

/// Gate 3 alone, on inputs from the job's seed: `correct` is null, as for a harness that does
/// not check.
fn time_only(
    bench: &Bench,
    spec: &CudaSpec,
    job: &Job,
    kernels: &Kernels,
    mut details: Details,
    clock_before: Option<u64>,
) -> Result<Value> {
    bench.buffers.fill_inputs(bench.resolved, job.seed)?;
    let begun = Instant::now();
    let timing = bench.time(spec, job, kernels)?;
    details.timing_s = Some(begun.elapsed().as_secs_f64());
    describe_timing(&mut details, &timing, spec, bench, clock_before);
    Ok(json!({
        "samples_us": timing.samples_us,
        "device": bench.gpu.info.name,
        "details": details,
    }))
}

/// How the samples were taken, into the details.
fn describe_timing(
    details: &mut Details,
    timing: &timing::Timing,
    spec: &CudaSpec,
    bench: &Bench,
    clock_before: Option<u64>,
) {
    details.batch = Some(timing.batch as u64);
    // How samples were taken: a baseline taken one way is not compared with a run taken the
    // other (see `Details::timing_changed`).
    details.method = Some(timing.method());
    details.pilot_us = Some(timing.pilot_us);
    details.l2 = Some(
        match spec.l2 {
            L2Mode::Cold => "cold",
            L2Mode::Hot => "hot",
        }
        .to_string(),
    );
    details.sm_clock_mhz_before = Some(clock_before);
    details.sm_clock_mhz_after = Some(host::sm_clock_mhz(&bench.gpu.info.pci_bus_id));
}

fn incorrect(gpu: &Gpu, mut details: Details, check: &Check, when: &str) -> Value {
    details.elements_checked = Some(check.total as u64);
    details.elements_incorrect = Some(check.mismatches as u64);
    json!({
        "correct": false,
        "message": format!("{} (in {when})", check.describe()),
        "max_abs_err": finite_or_null(check.max_abs),
        "max_rel_err": finite_or_null(check.max_rel),
        "rel_l2_err": finite_or_null(check.rel_l2),
        "device": gpu.info.name,
        "details": details,
    })
}

fn finite_or_null(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else {
        Value::Null
    }
}
