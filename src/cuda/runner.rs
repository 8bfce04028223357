//! The CUDA runner: gates 1–3 (compile → correctness → timing) for one `cuda:` kernel on one
//! shape. gatekeeper runs it as a child of itself, so an illegal address, a hang or a crash costs
//! one shape, not the run; it reads the job from the protocol v1 environment and prints a
//! protocol v1 report, like any command harness.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{json, Map, Value};

use super::compile::{self, Compiled, Unit};
use super::driver::{self, ArgValue, Buffer, Event, Function, Gpu, Module, Scratch, Stream};
use super::dtype::DType;
use super::resources;
use super::spec::{self, Arg, Init, L2Mode, Resolved, ResolvedLaunch, Tolerance};
use crate::config::Config;

/// Kernels faster than this are timed in batches replayed from a CUDA graph, so the launch
/// overhead of a few microseconds does not drown them.
const BATCH_BELOW_US: f64 = 20.0;
/// A batch is sized to last about this long.
const BATCH_TARGET_US: f64 = 200.0;
const MAX_BATCH: usize = 1000;
/// In hot mode a spin kernel this long keeps the GPU busy ahead of the start event.
const SPIN_NS: u64 = 20_000;
/// Above this much dynamic shared memory a kernel must opt in.
const DEFAULT_SHARED_LIMIT: u32 = 48 * 1024;

const SPIN_SOURCE: &str = r#"
extern "C" __global__ void gatekeeper_spin(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
"#;

/// Entry point of `gatekeeper __cuda-runner`: always prints one protocol line.
pub fn main(config_path: &Path) -> u8 {
    let report = match run(config_path) {
        Ok(report) => report,
        Err(message) => json!({ "error": message }),
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
}

/// Set by `gatekeeper profile` on the runner it starts under Nsight Compute.
pub const PROFILE_ENV: &str = "GATEKEEPER_PROFILE";

fn job_from_env() -> Result<Job, String> {
    let var = |name: &str| {
        std::env::var(name)
            .map_err(|_| format!("{name} is not set: the CUDA runner is started by gatekeeper"))
    };
    let number = |name: &str| -> Result<u64, String> {
        var(name)?
            .parse()
            .map_err(|_| format!("{name} is not a whole number"))
    };
    Ok(Job {
        kernel: var("GATEKEEPER_KERNEL")?,
        shape: var("GATEKEEPER_SHAPE")?,
        warmup: number("GATEKEEPER_WARMUP")?,
        samples: number("GATEKEEPER_SAMPLES")?,
        seed: number("GATEKEEPER_SEED")?,
        profile: std::env::var(PROFILE_ENV).is_ok_and(|v| v == "1"),
    })
}

fn run(config_path: &Path) -> Result<Value, String> {
    let config = Config::load(config_path).map_err(|err| err.to_string())?;
    let job = job_from_env()?;
    let kernel = config
        .kernel(&job.kernel)
        .ok_or_else(|| format!("no kernel {:?} in {}", job.kernel, config_path.display()))?;
    let spec = kernel
        .cuda
        .as_ref()
        .ok_or_else(|| format!("kernel {:?} has no `cuda` block", job.kernel))?;
    let params = config
        .shapes
        .get(&job.shape)
        .ok_or_else(|| format!("no shape {:?}", job.shape))?;
    let resolved = spec::resolve(spec, params).map_err(|problems| {
        problems
            .into_iter()
            .map(|(key, why)| format!("cuda.{key}: {why}"))
            .collect::<Vec<_>>()
            .join("; ")
    })?;

    let gpu = Gpu::open()?;
    let (major, minor) = gpu.info.compute_capability;
    let arch = native_arch(major, minor);
    let clock_before = sm_clock_mhz(&gpu.info.pci_bus_id);

    // Gate 1: compile.
    let candidate_source = source_file(&config.root, &spec.source)?;
    let reference_source = match &spec.reference.source {
        Some(source) => source_file(&config.root, source)?,
        None => candidate_source.clone(),
    };
    let candidate = compile_file(&candidate_source, &spec.source, &spec.options, &arch)?;
    let reference_name = spec.reference.source.as_deref().unwrap_or(&spec.source);
    let reference = compile_file(
        &reference_source,
        reference_name,
        &spec.reference.options,
        &arch,
    )?;
    let spin = compile::compile(&Unit {
        text: SPIN_SOURCE.as_bytes(),
        display_name: "gatekeeper_spin.cu",
        folder: None,
        options: &[],
        arch: &arch,
    })?;
    let candidate_module = Module::load(&candidate.cubin)?;
    let reference_module = Module::load(&reference.cubin)?;
    let spin_module = Module::load(&spin.cubin)?;
    let candidate_fns = functions(&candidate_module, &resolved.launches, &gpu)?;
    // Gate 4's static half: what the compiled kernel needs, read without running it.
    let sass = match &candidate.path {
        Some(path) => resources::disassemble(path),
        None => tempfile::NamedTempFile::new()
            .ok()
            .filter(|file| std::fs::write(file.path(), &candidate.cubin).is_ok())
            .and_then(|file| resources::disassemble(file.path())),
    };
    let static_resources = resources::collect(
        &resolved.launches,
        &candidate_fns,
        &gpu.info,
        &candidate.log,
        sass.as_ref(),
    )?;
    let reference_fns = functions(&reference_module, &resolved.reference, &gpu)?;
    let spin_fn = spin_module.function("gatekeeper_spin")?;

    let streams = (0..spec::stream_count(&resolved.launches))
        .map(|_| Stream::new())
        .collect::<Result<Vec<_>, _>>()?;
    check_memory(&resolved, gpu.info.l2_bytes)?;
    let buffers = Buffers::new(&resolved)?;
    let candidate_op = Op::new(&resolved.launches, &candidate_fns, &buffers, false)?;
    let reference_op = Op::new(&resolved.reference, &reference_fns, &buffers, true)?;

    let mut details = Map::new();
    details.insert("runner".into(), json!("cuda"));
    details.insert("arch".into(), json!(arch));
    details.insert(
        "driver_version".into(),
        json!(driver_version(gpu.info.driver_version)),
    );
    details.insert("multiprocessors".into(), json!(gpu.info.multiprocessors));
    details.insert("seed".into(), json!(job.seed));
    details.insert("trials".into(), json!(spec.trials));
    details.insert(
        "compiled".into(),
        json!(if candidate.cached { "cache" } else { "nvrtc" }),
    );
    if let Some(path) = &candidate.path {
        details.insert("cubin".into(), json!(path.display().to_string()));
    }
    details.insert(
        "resources".into(),
        serde_json::to_value(&static_resources).map_err(|err| err.to_string())?,
    );

    if job.profile {
        // Under a profiler: one launch of the kernel under test on seeded inputs, which the
        // profiler replays as often as its metrics need. No reference, flush or spin kernels.
        buffers.fill_inputs(&resolved, job.seed)?;
        let fork = Event::new()?;
        let joins = (0..streams.len())
            .map(|_| Event::new())
            .collect::<Result<Vec<_>, _>>()?;
        candidate_op.enqueue(&streams, &fork, &joins)?;
        gpu.synchronize()
            .map_err(|e| format!("the kernel failed: {e}"))?;
        return Ok(json!({ "device": gpu.info.name, "details": details }));
    }

    // Gate 2: correctness, with fresh inputs each trial.
    let mut worst = Check::default();
    // One correctness check: fresh inputs from `seed`, poisoned outputs, kernel, reference.
    let check_with = |seed: u64| -> Result<Check, String> {
        buffers.fill_inputs(&resolved, seed)?;
        verify(
            &gpu,
            &streams,
            &candidate_op,
            &reference_op,
            &buffers,
            &resolved,
            spec.tolerance,
        )
    };
    for trial in 0..u64::from(spec.trials) {
        let seed = job.seed.wrapping_add(trial);
        let check = check_with(seed)?;
        worst.absorb(&check);
        if !check.passed() {
            let when = format!("trial {} (seed {seed})", trial + 1);
            return Ok(incorrect(&gpu, details, &check, &when));
        }
    }

    // Gate 3: timing.
    let outputs: Vec<&Buffer> = resolved
        .tensors
        .iter()
        .zip(&buffers.tensors)
        .filter(|(tensor, _)| tensor.output)
        .map(|(_, buffer)| buffer)
        .collect();
    let timing = time(
        &gpu,
        &streams,
        &candidate_op,
        &spin_fn,
        spec.l2,
        &job,
        &outputs,
    )?;

    // Correctness again, on fresh inputs: a kernel that is only right on its first calls, or
    // that remembers its last answer, must not pass.
    let after = check_with(job.seed.wrapping_add(u64::from(spec.trials)))?;
    worst.absorb(&after);
    if !after.passed() {
        let when = "the check after the timing loop";
        return Ok(incorrect(&gpu, details, &after, when));
    }

    details.insert("elements_checked".into(), json!(worst.total));
    details.insert("batch".into(), json!(timing.batch));
    // How samples were taken: a baseline taken one way is not compared with a run taken the
    // other (a kernel near the batching threshold can flip between them).
    details.insert(
        "method".into(),
        json!(if timing.batch > 1 {
            "graph-batch"
        } else {
            "single"
        }),
    );
    details.insert("pilot_us".into(), json!(timing.pilot_us));
    details.insert(
        "l2".into(),
        json!(match spec.l2 {
            L2Mode::Cold => "cold",
            L2Mode::Hot => "hot",
        }),
    );
    details.insert("sm_clock_mhz_before".into(), json!(clock_before));
    details.insert(
        "sm_clock_mhz_after".into(),
        json!(sm_clock_mhz(&gpu.info.pci_bus_id)),
    );
    Ok(json!({
        "samples_us": timing.samples_us,
        "correct": true,
        "max_abs_err": finite_or_null(worst.max_abs),
        "max_rel_err": finite_or_null(worst.max_rel),
        "rel_l2_err": finite_or_null(worst.rel_l2),
        "device": gpu.info.name,
        "details": details,
    }))
}

fn incorrect(gpu: &Gpu, mut details: Map<String, Value>, check: &Check, when: &str) -> Value {
    details.insert("elements_checked".into(), json!(check.total));
    details.insert("elements_incorrect".into(), json!(check.mismatches));
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

fn driver_version(version: i32) -> String {
    format!("{}.{}", version / 1000, (version % 1000) / 10)
}

/// The source file, which must lie inside the folder of gates.yaml even after symlinks.
fn source_file(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let root = root
        .canonicalize()
        .map_err(|err| format!("{}: {err}", root.display()))?;
    let path = root
        .join(relative)
        .canonicalize()
        .map_err(|err| format!("{relative}: cannot open the kernel source: {err}"))?;
    if !path.starts_with(&root) {
        return Err(format!(
            "{relative}: resolves outside {} (a symlink?)",
            root.display()
        ));
    }
    Ok(path)
}

fn compile_file(
    path: &Path,
    name: &str,
    options: &[String],
    arch: &str,
) -> Result<Compiled, String> {
    let text = std::fs::read(path)
        .map_err(|err| format!("{name}: cannot read the kernel source: {err}"))?;
    compile::compile(&Unit {
        text: &text,
        display_name: name,
        folder: path.parent(),
        options,
        arch,
    })
}

fn functions(
    module: &Module,
    launches: &[ResolvedLaunch],
    gpu: &Gpu,
) -> Result<Vec<Function>, String> {
    launches
        .iter()
        .map(|launch| {
            let function = module.function(&launch.entry)?;
            // The opt-in is a property of the function, shared by every launch of it: ask for
            // the largest any of them needs.
            let needed = launches
                .iter()
                .filter(|other| other.entry == launch.entry)
                .map(|other| other.shared_bytes)
                .max()
                .unwrap_or(launch.shared_bytes);
            if needed > DEFAULT_SHARED_LIMIT {
                if needed as i32 > gpu.info.max_shared_optin {
                    return Err(format!(
                        "{}: {needed} bytes of dynamic shared memory exceed the device's {}",
                        launch.entry, gpu.info.max_shared_optin
                    ));
                }
                function.allow_shared(needed)?;
            }
            Ok(function)
        })
        .collect()
}

/// The SM clock now, from nvidia-smi, if it is there.
fn sm_clock_mhz(pci_bus_id: &str) -> Option<u64> {
    let output = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=clocks.sm",
            "--format=csv,noheader,nounits",
            "-i",
            pci_bus_id,
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Refuses a shape whose tensors cannot fit, with a message, before anything is allocated: on
/// the device (tensors, f32 reference twins, the L2 flush buffer) and on the host (inputs as
/// drawn and encoded, outputs downloaded and decoded for the comparison).
fn check_memory(resolved: &Resolved, l2_bytes: usize) -> Result<(), String> {
    let gib = |bytes: u128| bytes as f64 / (1u64 << 30) as f64;
    let mut device: u128 = 2 * l2_bytes.max(4 << 20) as u128;
    let mut host: u128 = 0;
    for tensor in &resolved.tensors {
        let n = tensor.numel as u128;
        device += tensor.bytes() as u128 + 2 * driver::GUARD_BYTES as u128;
        if tensor.output {
            device += n * 4;
            // Downloaded bytes + f32 twin + two f64 decodes.
            host += tensor.bytes() as u128 + n * 4 + n * 16;
        } else if !tensor.scratch {
            // f32 draw + encoded copy kept for the unchanged-input check + one download.
            host += n * 4 + 2 * tensor.bytes() as u128;
        }
    }
    if let Ok((free, _total)) = cudarc::driver::result::mem_get_info() {
        if device > free as u128 {
            return Err(format!(
                "the tensors need {:.1} GiB of GPU memory, {:.1} GiB is free",
                gib(device),
                gib(free as u128)
            ));
        }
    }
    if let Some(available) = host_memory_available() {
        if host > available {
            return Err(format!(
                "checking this shape needs {:.1} GiB of host memory, {:.1} GiB is available",
                gib(host),
                gib(available)
            ));
        }
    }
    Ok(())
}

/// MemAvailable from /proc/meminfo, in bytes.
fn host_memory_available() -> Option<u128> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Device buffers: the kernel's tensors, and an f32 twin of each output for the reference.
struct Buffers {
    tensors: Vec<Buffer>,
    reference_outputs: Vec<Option<Buffer>>,
    /// What was uploaded to each input, to prove the kernel left it alone.
    inputs: std::cell::RefCell<Vec<Option<Vec<u8>>>>,
}

impl Buffers {
    fn new(resolved: &Resolved) -> Result<Buffers, String> {
        let mut tensors = Vec::new();
        let mut reference_outputs = Vec::new();
        for tensor in &resolved.tensors {
            tensors.push(
                Buffer::new(tensor.bytes(), &tensor.dtype.guard())
                    .map_err(|e| format!("tensor {}: {e}", tensor.name))?,
            );
            reference_outputs.push(if tensor.output {
                let twin = tensor.dtype.reference_type();
                Some(
                    Buffer::new(tensor.numel * twin.size(), &twin.guard())
                        .map_err(|e| format!("reference {}: {e}", tensor.name))?,
                )
            } else {
                None
            });
        }
        Ok(Buffers {
            inputs: std::cell::RefCell::new(vec![None; tensors.len()]),
            tensors,
            reference_outputs,
        })
    }

    /// Seeded random inputs, a fresh draw per seed and tensor.
    fn fill_inputs(&self, resolved: &Resolved, seed: u64) -> Result<(), String> {
        let mut inputs = self.inputs.borrow_mut();
        for (index, tensor) in resolved.tensors.iter().enumerate() {
            if tensor.output || tensor.scratch {
                continue;
            }
            let mut rng =
                StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let values = generate(&mut rng, tensor.init, tensor.numel)?;
            let bytes = tensor.dtype.encode(&values);
            self.tensors[index].upload(&bytes)?;
            inputs[index] = Some(bytes);
        }
        Ok(())
    }
}

fn generate(rng: &mut StdRng, init: Init, n: usize) -> Result<Vec<f32>, String> {
    Ok(match init {
        Init::Uniform([lo, hi]) => (0..n).map(|_| rng.random_range(lo..hi) as f32).collect(),
        Init::Normal([mean, std]) => {
            let normal = Normal::new(mean, std).map_err(|e| format!("normal init: {e}"))?;
            (0..n).map(|_| normal.sample(rng) as f32).collect()
        }
        Init::Constant(value) => vec![value as f32; n],
    })
}

/// One run of a kernel: its launches with their arguments bound to buffers.
struct Op<'a> {
    steps: Vec<(&'a ResolvedLaunch, &'a Function, Vec<ArgValue>)>,
}

impl<'a> Op<'a> {
    fn new(
        launches: &'a [ResolvedLaunch],
        functions: &'a [Function],
        buffers: &Buffers,
        reference: bool,
    ) -> Result<Op<'a>, String> {
        let steps = launches
            .iter()
            .zip(functions)
            .map(|(launch, function)| -> Result<_, String> {
                let args = launch
                    .args
                    .iter()
                    .map(|arg| match *arg {
                        Arg::Tensor(i) => {
                            let buffer = match (&buffers.reference_outputs[i], reference) {
                                (Some(twin), true) => twin,
                                _ => &buffers.tensors[i],
                            };
                            ArgValue::Ptr(buffer.ptr())
                        }
                        Arg::I32(v) => ArgValue::I32(v),
                        Arg::I64(v) => ArgValue::I64(v),
                        Arg::U32(v) => ArgValue::U32(v),
                        Arg::U64(v) => ArgValue::U64(v),
                        Arg::F32(v) => ArgValue::F32(v),
                        Arg::F64(v) => ArgValue::F64(v),
                    })
                    .collect::<Vec<ArgValue>>();
                check_arguments(function, &args)?;
                Ok((launch, function, args))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Op { steps })
    }

    fn single_stream(&self) -> bool {
        self.steps.iter().all(|(launch, _, _)| launch.stream == 0)
    }

    /// Enqueues the launches. Auxiliary streams fork from stream 0 and are joined back into it,
    /// so whatever runs on them finishes before anything later on stream 0.
    fn enqueue(&self, streams: &[Stream], fork: &Event, joins: &[Event]) -> Result<(), String> {
        let main = &streams[0];
        let side: Vec<usize> = (1..streams.len())
            .filter(|s| self.steps.iter().any(|(l, _, _)| l.stream == *s))
            .collect();
        if !side.is_empty() {
            fork.record(main)?;
            for s in &side {
                streams[*s].wait(fork)?;
            }
        }
        for (launch, function, args) in &self.steps {
            function.launch(
                launch.grid,
                launch.block,
                launch.shared_bytes,
                &streams[launch.stream],
                args,
            )?;
        }
        for s in &side {
            joins[*s].record(&streams[*s])?;
            main.wait(&joins[*s])?;
        }
        Ok(())
    }
}

/// Refuses a launch whose arguments do not match the kernel's parameters in number and width.
fn check_arguments(function: &Function, args: &[ArgValue]) -> Result<(), String> {
    let sizes = function.param_sizes()?;
    if sizes.len() != args.len() {
        return Err(format!(
            "{} takes {} parameters, but `args` lists {}",
            function.name,
            sizes.len(),
            args.len()
        ));
    }
    for (index, (size, arg)) in sizes.iter().zip(args).enumerate() {
        if *size != arg.size() {
            return Err(format!(
                "{}: parameter {index} is {size} bytes wide, but args[{index}] is a {}-byte {}",
                function.name,
                arg.size(),
                match arg {
                    ArgValue::Ptr(_) => "pointer",
                    _ => "scalar",
                }
            ));
        }
    }
    Ok(())
}

/// The result of comparing one run against the reference.
#[derive(Debug, Default)]
struct Check {
    total: usize,
    mismatches: usize,
    unwritten: usize,
    max_abs: f64,
    max_rel: f64,
    /// The largest ‖got − want‖₂ / ‖want‖₂ over the outputs (0 where not computed).
    rel_l2: f64,
    first: Option<String>,
    /// Failures that are not element mismatches: a modified input, a write out of bounds.
    problems: Vec<String>,
}

impl Check {
    fn passed(&self) -> bool {
        self.mismatches == 0 && self.problems.is_empty()
    }

    fn absorb(&mut self, other: &Check) {
        self.total = self.total.max(other.total);
        self.max_abs = self.max_abs.max(other.max_abs);
        self.max_rel = self.max_rel.max(other.max_rel);
        self.rel_l2 = self.rel_l2.max(other.rel_l2);
    }

    fn describe(&self) -> String {
        let mut parts = self.problems.clone();
        if self.mismatches > 0 {
            let mut text = format!(
                "{} / {} elements incorrect",
                thousands(self.mismatches),
                thousands(self.total)
            );
            if self.unwritten > 0 {
                text.push_str(&format!(" ({} never written)", thousands(self.unwritten)));
            }
            if let Some(first) = &self.first {
                text.push_str(&format!("; first: {first}"));
            }
            parts.push(text);
        }
        parts.join("; ")
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Poisons the outputs, runs the kernel and the reference on the current inputs, and compares.
fn verify(
    gpu: &Gpu,
    streams: &[Stream],
    candidate: &Op,
    reference: &Op,
    buffers: &Buffers,
    resolved: &Resolved,
    tolerance: Tolerance,
) -> Result<Check, String> {
    let mut check = Check::default();
    for (index, tensor) in resolved.tensors.iter().enumerate() {
        if tensor.output {
            buffers.tensors[index].fill(&tensor.dtype.sentinel())?;
            if let Some(twin) = &buffers.reference_outputs[index] {
                twin.fill(&tensor.dtype.reference_type().sentinel())?;
            }
        }
    }
    let fork = Event::new()?;
    let joins = (0..streams.len())
        .map(|_| Event::new())
        .collect::<Result<Vec<_>, _>>()?;
    candidate.enqueue(streams, &fork, &joins)?;
    gpu.synchronize()
        .map_err(|e| format!("the kernel failed: {e}"))?;

    let inputs = buffers.inputs.borrow();
    for (index, tensor) in resolved.tensors.iter().enumerate() {
        let buffer = &buffers.tensors[index];
        let (before, after) = buffer.guard_damage()?;
        if before + after > 0 {
            check.problems.push(format!(
                "wrote outside tensor `{}`: {before} byte(s) before its start, {after} after its end",
                tensor.name
            ));
            buffer.reset_guards()?;
        }
        if let Some(uploaded) = &inputs[index] {
            let now = buffer.download()?;
            let changed = now.iter().zip(uploaded).filter(|(a, b)| a != b).count();
            if changed > 0 {
                check.problems.push(format!(
                    "input `{}` was modified by the kernel ({} bytes changed)",
                    tensor.name,
                    thousands(changed)
                ));
                // Restore it so the reference sees the real inputs.
                buffer.upload(uploaded)?;
            }
        }
    }

    reference.enqueue(&streams[..1], &fork, &joins)?;
    gpu.synchronize()
        .map_err(|e| format!("the reference kernel failed: {e}"))?;

    for (index, tensor) in resolved.tensors.iter().enumerate() {
        let Some(twin) = &buffers.reference_outputs[index] else {
            continue;
        };
        let got = buffers.tensors[index].download()?;
        let want = twin.download()?;
        check.compare_output(&tensor.name, tensor.dtype, &got, &want, tolerance)?;
    }
    Ok(check)
}

impl Check {
    /// Compares one output's device bytes (`got`, of `dtype`) with the reference's (`want`, of
    /// `dtype.reference_type()`): element-wise, then norm-wise.
    ///
    /// The element-wise test `|got − want| ≤ atol + rtol·|want|` accepts anything where every
    /// |want| is below atol (a softmax over 65,536 columns, with atol = 1e-2, accepts zeros). The
    /// norm-wise test ‖got − want‖₂ / ‖want‖₂ ≤ `rel_l2` cannot be passed that way: an all-zero,
    /// constant or rescaled output is off by a large fraction of the answer's norm. i32 outputs
    /// are compared exactly and have no norm test.
    fn compare_output(
        &mut self,
        name: &str,
        dtype: DType,
        got_raw: &[u8],
        want_raw: &[u8],
        tolerance: Tolerance,
    ) -> Result<(), String> {
        let got = dtype.decode(got_raw);
        let want = dtype.reference_type().decode(want_raw);
        let sentinel = dtype.sentinel();
        let untouched = got_raw
            .chunks_exact(sentinel.len())
            .map(|chunk| chunk == sentinel.as_slice());
        let exact = dtype == DType::I32;
        let (mut error_sq, mut want_sq) = (0.0f64, 0.0f64);
        for (element, ((g, w), unwritten)) in got.iter().zip(&want).zip(untouched).enumerate() {
            if !w.is_finite() {
                return Err(format!(
                    "the reference wrote {w} to {name}[{element}]: it must produce finite values for every element"
                ));
            }
            self.total += 1;
            let abs = (g - w).abs();
            let rel = if *w == 0.0 {
                if abs == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                abs / w.abs()
            };
            let allowed = if exact {
                0.0
            } else {
                tolerance.atol + tolerance.rtol * w.abs()
            };
            let bad = unwritten || !g.is_finite() || abs > allowed;
            if g.is_finite() && !unwritten {
                self.max_abs = self.max_abs.max(abs);
                self.max_rel = self.max_rel.max(rel);
                error_sq += abs * abs;
            } else {
                self.max_abs = f64::INFINITY;
                self.max_rel = f64::INFINITY;
                error_sq = f64::INFINITY;
            }
            want_sq += w * w;
            if bad {
                self.mismatches += 1;
                self.unwritten += usize::from(unwritten);
                if self.first.is_none() {
                    self.first = Some(format!("{name}[{element}] = {g}, expected {w}"));
                }
            }
        }
        if exact || want_sq == 0.0 {
            // Nothing to scale by: an all-zero answer is judged element by element.
            return Ok(());
        }
        let rel_l2 = (error_sq / want_sq).sqrt();
        self.rel_l2 = self.rel_l2.max(rel_l2);
        let limit = tolerance.rel_l2_limit();
        if rel_l2 > limit && rel_l2.is_finite() {
            self.problems.push(format!(
                "`{name}` is off by {} of the reference's norm (relative L2 error {rel_l2:.3e} > {limit:.0e}): \
                 it fails the norm-wise check even where elements are within atol",
                percent(rel_l2)
            ));
        }
        Ok(())
    }
}

/// `0.42` as "42 %", with enough digits for small shares.
fn percent(share: f64) -> String {
    let pct = share * 100.0;
    if pct >= 10.0 {
        format!("{pct:.0} %")
    } else {
        format!("{pct:.2} %")
    }
}

struct Timing {
    samples_us: Vec<f64>,
    batch: usize,
    pilot_us: f64,
}

/// Gate 3: CUDA events around each run, after warm-up; L2 flushed (cold) or a spin kernel
/// (hot) ahead of the start event so it is queued behind work and times only the kernel; the
/// whole device synchronised before a sample ends.
fn time(
    gpu: &Gpu,
    streams: &[Stream],
    op: &Op,
    spin: &Function,
    l2: L2Mode,
    job: &Job,
    outputs: &[&Buffer],
) -> Result<Timing, String> {
    let main = &streams[0];
    let fork = Event::new()?;
    let joins = (0..streams.len())
        .map(|_| Event::new())
        .collect::<Result<Vec<_>, _>>()?;
    let (start, end) = (Event::new()?, Event::new()?);
    let flush = Scratch::new((2 * gpu.info.l2_bytes).max(8 << 20))?;
    let crashed = |e: String| format!("the kernel failed while being timed: {e}");

    let prelude = || -> Result<(), String> {
        // Outputs are spoiled before every sample (0xFF is NaN in every float type), so a
        // kernel cannot be timed skipping work because its output already looks done.
        for output in outputs {
            output.memset_async(0xFF, main)?;
        }
        match l2 {
            L2Mode::Cold => flush.overwrite(main, 0),
            L2Mode::Hot => spin.launch([1, 1, 1], [1, 1, 1], 0, main, &[ArgValue::U64(SPIN_NS)]),
        }
    };
    let sample = |body: &dyn Fn() -> Result<(), String>| -> Result<f64, String> {
        prelude()?;
        start.record(main)?;
        body()?;
        end.record(main)?;
        gpu.synchronize().map_err(crashed)?;
        Ok(f64::from(start.elapsed_ms(&end)?) * 1000.0)
    };
    let run_once = || op.enqueue(streams, &fork, &joins);

    for _ in 0..job.warmup {
        run_once()?;
    }
    gpu.synchronize().map_err(crashed)?;

    let mut pilot: Vec<f64> = (0..5)
        .map(|_| sample(&run_once))
        .collect::<Result<_, _>>()?;
    pilot.sort_by(f64::total_cmp);
    let pilot_us = pilot[pilot.len() / 2];

    let batch = if pilot_us < BATCH_BELOW_US && op.single_stream() {
        ((BATCH_TARGET_US / pilot_us.max(0.5)).ceil() as usize).clamp(2, MAX_BATCH)
    } else {
        1
    };
    let graph = if batch > 1 {
        main.begin_capture()?;
        let captured = (0..batch).try_for_each(|_| run_once());
        let graph = main.end_capture()?;
        captured?;
        graph.launch(main)?;
        gpu.synchronize().map_err(crashed)?;
        Some(graph)
    } else {
        None
    };

    let mut samples_us = Vec::with_capacity(job.samples as usize);
    for _ in 0..job.samples {
        let elapsed = match &graph {
            Some(graph) => sample(&|| graph.launch(main))?,
            None => sample(&run_once)?,
        };
        samples_us.push(elapsed / batch as f64);
    }
    Ok(Timing {
        samples_us,
        batch,
        pilot_us,
    })
}

/// The architecture kernels are compiled for: this device's own, with the arch-specific
/// feature set (`sm_90a`: wgmma, setmaxnreg) from compute capability 9.0 on. An `a` image runs
/// only on that exact compute capability, which is all a run needs: it compiles for the
/// device it measures. A kernel tests `__CUDA_ARCH_FEAT_SM90_ALL` (and the like) to use them.
fn native_arch(major: i32, minor: i32) -> String {
    if major >= 9 {
        format!("sm_{major}{minor}a")
    } else {
        format!("sm_{major}{minor}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hopper_and_later_compile_for_their_arch_specific_target() {
        assert_eq!(native_arch(8, 6), "sm_86");
        assert_eq!(native_arch(8, 9), "sm_89");
        assert_eq!(native_arch(9, 0), "sm_90a");
        assert_eq!(native_arch(10, 0), "sm_100a");
    }

    /// A softmax row over 65,536 columns: every probability is far below atol = 1e-2.
    fn softmax_row() -> Vec<f32> {
        let logits: Vec<f32> = (0..65_536)
            .map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
            .collect();
        let total: f32 = logits.iter().map(|x| x.exp()).sum();
        logits.iter().map(|x| x.exp() / total).collect()
    }

    fn judge(got: &[f32], want: &[f32], tolerance: Tolerance) -> Check {
        let mut check = Check::default();
        check
            .compare_output(
                "out",
                DType::F32,
                &DType::F32.encode(got),
                &DType::F32.encode(want),
                tolerance,
            )
            .unwrap();
        check
    }

    const LOOSE: Tolerance = Tolerance {
        atol: 1e-2,
        rtol: 1e-2,
        rel_l2: None,
    };

    #[test]
    fn zero_constant_or_rescaled_outputs_fail_the_norm_check() {
        let want = softmax_row();
        let mean = 1.0 / want.len() as f32;
        let cheats: [(&str, Vec<f32>); 3] = [
            ("zeros", vec![0.0; want.len()]),
            ("constant", vec![mean; want.len()]),
            ("scaled", want.iter().map(|x| x * 0.9).collect()),
        ];
        for (name, got) in cheats {
            let check = judge(&got, &want, LOOSE);
            // Every element is within atol: only the norm-wise check can see it.
            assert_eq!(check.mismatches, 0, "{name}");
            assert!(!check.passed(), "{name} passed: {check:?}");
            assert!(
                check.describe().contains("relative L2 error"),
                "{}",
                check.describe()
            );
            assert!(check.rel_l2 > 0.05, "{name}: {}", check.rel_l2);
        }
        let zeros = judge(&vec![0.0; want.len()], &want, LOOSE);
        assert!((zeros.rel_l2 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_right_answer_with_rounding_error_passes_the_norm_check() {
        let want = softmax_row();
        // f16 rounding of every element (subnormal in f16 here): ~1e-3 relative.
        let got: Vec<f32> = want
            .iter()
            .map(|x| half::f16::from_f32(*x).to_f32())
            .collect();
        let check = judge(&got, &want, LOOSE);
        assert!(check.passed(), "{}", check.describe());
        assert!(
            check.rel_l2 > 0.0 && check.rel_l2 < 5e-3,
            "{}",
            check.rel_l2
        );
        // The limit is a key of its own.
        let strict = Tolerance {
            rel_l2: Some(1e-5),
            ..LOOSE
        };
        assert!(!judge(&got, &want, strict).passed());
        // An all-zero answer has no norm to scale by: element-wise only.
        assert!(judge(&[0.0, 0.0], &[0.0, 0.0], LOOSE).passed());
    }

    #[test]
    fn the_default_norm_limit_follows_a_looser_rtol() {
        assert_eq!(LOOSE.rel_l2_limit(), 1e-2);
        let loose = Tolerance { rtol: 0.1, ..LOOSE };
        assert_eq!(loose.rel_l2_limit(), 0.1);
    }

    #[test]
    fn i32_outputs_are_compared_exactly_beyond_f32_precision() {
        // 2^24 + 1 has no f32: through f32 it reads as 2^24, so an off-by-one passed.
        let want = [16_777_217i32, 5];
        let got = [16_777_216i32, 5];
        let bytes = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut check = Check::default();
        check
            .compare_output("idx", DType::I32, &bytes(&got), &bytes(&want), LOOSE)
            .unwrap();
        assert_eq!(check.mismatches, 1, "{check:?}");
        assert!(check
            .describe()
            .contains("idx[0] = 16777216, expected 16777217"));
        let mut same = Check::default();
        same.compare_output("idx", DType::I32, &bytes(&want), &bytes(&want), LOOSE)
            .unwrap();
        assert!(same.passed());
    }

    #[test]
    fn counts_read_like_the_seed_report() {
        let check = Check {
            total: 32_768,
            mismatches: 32_616,
            unwritten: 0,
            first: Some("out[0] = NaN, expected 0.5".into()),
            ..Check::default()
        };
        assert_eq!(
            check.describe(),
            "32,616 / 32,768 elements incorrect; first: out[0] = NaN, expected 0.5"
        );
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn inputs_are_seeded_and_fresh_per_seed() {
        let draw = |seed| generate(&mut StdRng::seed_from_u64(seed), Init::default(), 8).unwrap();
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(3).iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(
            generate(&mut StdRng::seed_from_u64(0), Init::Constant(0.0), 3).unwrap(),
            [0.0; 3]
        );
    }
}
