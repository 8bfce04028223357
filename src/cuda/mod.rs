//! CUDA C++ kernels declared in gates.yaml (`cuda:`), compiled with NVRTC and measured by
//! gatekeeper itself through the CUDA driver API.
//!
//! The parent process never touches the GPU: it checks that a driver and NVRTC exist
//! ([`preflight`]), then runs each kernel × shape in a child (`gatekeeper __cuda-runner`,
//! [`runner`]) through the ordinary command-harness machinery, which brings the timeout, the
//! process-group kill and the stderr tail with it.

pub mod compile;
pub mod driver;
pub mod resources;
pub mod runner;
pub mod tools;

// The `cuda:` block and its element types are gates.yaml schema, which the loader reads
// without the runner; they live in [`crate::spec`] and keep their names here.
pub use crate::spec::{cuda as spec, dtype};

use crate::error::{Error, Result};

/// The hidden subcommand that runs one `cuda:` kernel × shape.
pub const RUNNER_SUBCOMMAND: &str = "__cuda-runner";

/// Fails with one clear line when the machine cannot run CUDA kernels, naming the kernels that
/// need it; checked before anything is measured.
pub fn preflight(kernels: &[&str]) -> Result<()> {
    if kernels.is_empty() {
        return Ok(());
    }
    let missing = if !driver::driver_present() {
        "no CUDA driver (libcuda.so) was found"
    } else if !driver::nvrtc_present() {
        "NVRTC (libnvrtc.so) was not found: install the CUDA toolkit or put its lib64 folder on LD_LIBRARY_PATH"
    } else {
        return Ok(());
    };
    Err(Error::Environment(format!(
        "{missing}; the cuda kernels {} need an NVIDIA GPU (run on a GPU machine, or select other kernels with --kernels)",
        kernels.join(", ")
    )))
}
