//! The CUDA runner under protocol v2: one process per kernel. It opens the context and compiles
//! and loads the kernel once, says it is ready (naming the device and the kernel's key), then
//! runs one shape per request line.
//!
//! A fault can leave the context unusable (an illegal address poisons it for good), so after
//! any failure that touched the GPU the runner answers with `"exiting": true` and exits:
//! gatekeeper starts a fresh one for the next shape, and one bad shape costs one shape.

use std::io::{BufRead, Write};
use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::{Result, RunnerError};
use super::kernels::Program;
use super::{kernel_spec, resolve, run_shape, Job};
use crate::config::{Config, KernelSpec};
use crate::cuda::driver::Gpu;
use crate::cuda::spec::CudaSpec;

/// One request line (the fields the runner needs; `params` come from gates.yaml by name).
#[derive(Deserialize)]
struct Request {
    kernel: String,
    shape: String,
    warmup: u64,
    samples: u64,
    seed: u64,
    #[serde(default)]
    timing_only: bool,
}

/// Everything shared by the shapes of the kernel this process serves.
struct Served {
    config: Config,
    kernel: KernelSpec,
    gpu: Gpu,
    program: Program,
    /// Seconds spent compiling and loading the kernel.
    compile_s: f64,
}

pub fn main(config_path: &Path) -> u8 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let served = set_up(config_path);
    let ready = match &served {
        Ok(served) => json!({
            "ready": true,
            "device": served.gpu.info.name,
            "inputs_key": key(served),
            "compile_s": served.compile_s,
        }),
        // Ready all the same: each request is answered with why nothing can run, which is
        // clearer in the reports than a process that never became ready.
        Err(_) => json!({ "ready": true }),
    };
    if say(&mut out, &ready).is_err() {
        return 0;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        let (response, go_on) = answer(&served, &line);
        if say(&mut out, &response).is_err() || !go_on {
            break;
        }
    }
    0
}

fn say(out: &mut impl Write, value: &Value) -> std::io::Result<()> {
    writeln!(out, "{value}")?;
    out.flush()
}

fn set_up(config_path: &Path) -> Result<Served> {
    let config = Config::load(config_path)?;
    let name = std::env::var("GATEKEEPER_KERNEL")
        .map_err(|_| RunnerError::MissingVariable("GATEKEEPER_KERNEL"))?;
    let kernel = kernel_spec(&config, config_path, &name)?;
    let spec = kernel
        .cuda
        .as_ref()
        .ok_or_else(|| RunnerError::NotCuda(name.clone()))?;
    let gpu = Gpu::open()?;
    let begun = std::time::Instant::now();
    let program = Program::build(&config.root, spec, &gpu)?;
    Ok(Served {
        config,
        kernel,
        gpu,
        program,
        compile_s: begun.elapsed().as_secs_f64(),
    })
}

/// The response to one request line, and whether the process may serve another.
fn answer(served: &Result<Served>, line: &str) -> (Value, bool) {
    let served = match served {
        Ok(served) => served,
        Err(err) => return (json!({ "error": err.to_string() }), true),
    };
    let request: Request = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(err) => return (json!({ "error": format!("bad request line: {err}") }), true),
    };
    if request.kernel != served.kernel.name {
        let error = format!(
            "this runner serves kernel {:?}, not {:?}",
            served.kernel.name, request.kernel
        );
        return (json!({ "error": error }), true);
    }
    let job = Job {
        kernel: request.kernel,
        shape: request.shape,
        warmup: request.warmup,
        samples: request.samples,
        seed: request.seed,
        profile: std::env::var(super::PROFILE_ENV).is_ok_and(|v| v == "1"),
        timing_only: request.timing_only,
    };
    let Some(spec) = served.spec() else {
        return (json!({ "error": "the kernel lost its cuda block" }), false);
    };
    match run_shape(&served.config, spec, &served.gpu, &served.program, &job) {
        Ok(report) => (report, true),
        // Said in the response, so gatekeeper starts a fresh process for the next shape
        // rather than write to one that is going away.
        Err(err) if touched_the_gpu(&err) => {
            (json!({ "error": err.to_string(), "exiting": true }), false)
        }
        Err(err) => (json!({ "error": err.to_string() }), true),
    }
}

impl Served {
    fn spec(&self) -> Option<&CudaSpec> {
        self.kernel.cuda.as_ref()
    }
}

/// Whether a failure may have left the context unusable: anything from the driver or a kernel.
/// Errors found before the GPU is asked for anything (a shape that does not resolve, a size
/// check) leave it as it was.
fn touched_the_gpu(err: &RunnerError) -> bool {
    !matches!(
        err,
        RunnerError::Config(_)
            | RunnerError::NoKernel { .. }
            | RunnerError::NotCuda(_)
            | RunnerError::NoShape(_)
            | RunnerError::Spec(_)
            | RunnerError::DeviceMemory { .. }
            | RunnerError::HostMemory { .. }
            | RunnerError::ArgumentCount { .. }
            | RunnerError::ArgumentWidth { .. }
    )
}

/// What the kernel's results depend on, as one hash: the machine code of the kernel and its
/// reference, every shape's resolved launches, tensors and parameters, the kernel's gates.yaml
/// entry (tolerance, trials, L2 mode), the device, the driver and NVRTC. A check that finds
/// the same key in the baseline reuses it instead of measuring. `None` when a shape does not
/// resolve: such a kernel is measured, and fails there with the reason.
fn key(served: &Served) -> Option<String> {
    let kernel = &served.kernel;
    let spec = kernel.cuda.as_ref()?;
    let mut hash = Sha256::new();
    let info = &served.gpu.info;
    hash.update(
        format!(
            "cuda runner\0{}\0{}\0{:?}\0{}\0{}\0",
            env!("CARGO_PKG_VERSION"),
            info.name,
            info.compute_capability,
            info.driver_release(),
            crate::cuda::compile::nvrtc_version()
        )
        .as_bytes(),
    );
    hash.update(serde_json::to_string(kernel).ok()?.as_bytes());
    served.program.fingerprint(&mut hash);
    for shape in &kernel.shapes {
        let resolved = resolve(&served.config, spec, shape).ok()?;
        let params = serde_json::to_string(served.config.shapes.get(shape)?).ok()?;
        hash.update(format!("\0{shape}={params}\0{resolved:?}").as_bytes());
    }
    Some(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}
