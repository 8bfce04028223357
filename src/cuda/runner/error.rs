//! Why the runner could not check or time a kernel: each becomes the `error` of its report, in
//! the words the reports print.

use std::path::PathBuf;

use super::super::compile::CompileError;
use super::super::driver::DriverError;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// gates.yaml did not load.
    #[error(transparent)]
    Config(#[from] crate::error::Error),
    #[error("{0} is not set: the CUDA runner is started by gatekeeper")]
    MissingVariable(&'static str),
    #[error("{0} is not a whole number")]
    NotANumber(&'static str),
    #[error("no kernel {kernel:?} in {}", config.display())]
    NoKernel { kernel: String, config: PathBuf },
    #[error("kernel {0:?} has no `cuda` block")]
    NotCuda(String),
    #[error("no shape {0:?}")]
    NoShape(String),
    /// The `cuda` block does not resolve for this shape: `cuda.<key>: <why>`, all of them.
    #[error("{}", .0.iter().map(|(key, why)| format!("cuda.{key}: {why}")).collect::<Vec<_>>().join("; "))]
    Spec(Vec<(String, String)>),
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error("{}: {source}", root.display())]
    Root {
        root: PathBuf,
        source: std::io::Error,
    },
    #[error("{relative}: cannot open the kernel source: {source}")]
    OpenSource {
        relative: String,
        source: std::io::Error,
    },
    #[error("{relative}: resolves outside {} (a symlink?)", root.display())]
    SourceOutside { relative: String, root: PathBuf },
    #[error("{name}: cannot read the kernel source: {source}")]
    ReadSource {
        name: String,
        source: std::io::Error,
    },
    #[error("{entry}: {needed} bytes of dynamic shared memory exceed the device's {limit}")]
    SharedMemory {
        entry: String,
        needed: u32,
        limit: i32,
    },
    #[error("the tensors need {need_gib:.1} GiB of GPU memory, {free_gib:.1} GiB is free")]
    DeviceMemory { need_gib: f64, free_gib: f64 },
    #[error("checking this shape needs {need_gib:.1} GiB of host memory, {available_gib:.1} GiB is available")]
    HostMemory { need_gib: f64, available_gib: f64 },
    /// A tensor's buffer (`tensor`) or its reference twin (`reference`) could not be made.
    #[error("{what} {tensor}: {source}")]
    Allocate {
        what: &'static str,
        tensor: String,
        source: DriverError,
    },
    #[error("normal init: {0}")]
    NormalInit(rand_distr::NormalError),
    #[error("{entry} takes {takes} parameters, but `args` lists {given}")]
    ArgumentCount {
        entry: String,
        takes: usize,
        given: usize,
    },
    #[error("{entry}: parameter {index} is {size} bytes wide, but args[{index}] is a {given}-byte {kind}")]
    ArgumentWidth {
        entry: String,
        index: usize,
        size: usize,
        given: usize,
        /// `pointer` or `scalar`.
        kind: &'static str,
    },
    #[error("the kernel failed: {0}")]
    KernelFailed(DriverError),
    #[error("the reference kernel failed: {0}")]
    ReferenceFailed(DriverError),
    #[error("the kernel failed while being timed: {0}")]
    FailedWhileTimed(DriverError),
    #[error("the reference wrote {value} to {output}[{element}]: it must produce finite values for every element")]
    ReferenceNotFinite {
        value: f64,
        output: String,
        element: usize,
    },
    #[error("the reference never wrote {output}[{element}]: it must write every element of every output")]
    ReferenceUnwritten { output: String, element: usize },
}

pub type Result<T, E = RunnerError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_the_reports_print_them() {
        let spec = RunnerError::Spec(vec![
            ("grid".into(), "must be positive".into()),
            ("args[1]".into(), "unknown tensor".into()),
        ]);
        assert_eq!(
            spec.to_string(),
            "cuda.grid: must be positive; cuda.args[1]: unknown tensor"
        );
        let width = RunnerError::ArgumentWidth {
            entry: "saxpy".into(),
            index: 2,
            size: 8,
            given: 4,
            kind: "scalar",
        };
        assert_eq!(
            width.to_string(),
            "saxpy: parameter 2 is 8 bytes wide, but args[2] is a 4-byte scalar"
        );
        let memory = RunnerError::DeviceMemory {
            need_gib: 90.04,
            free_gib: 79.5,
        };
        assert_eq!(
            memory.to_string(),
            "the tensors need 90.0 GiB of GPU memory, 79.5 GiB is free"
        );
        let crashed = RunnerError::FailedWhileTimed(DriverError::Call {
            call: "cuCtxSynchronize".into(),
            name: "CUDA_ERROR_ILLEGAL_ADDRESS".into(),
            text: "an illegal memory access was encountered".into(),
        });
        assert_eq!(
            crashed.to_string(),
            "the kernel failed while being timed: cuCtxSynchronize: CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)"
        );
        assert_eq!(
            RunnerError::MissingVariable("GATEKEEPER_SEED").to_string(),
            "GATEKEEPER_SEED is not set: the CUDA runner is started by gatekeeper"
        );
    }
}
