//! Gate 1, compile: the kernel, its reference and the spin kernel compiled for this device and
//! loaded, with what the compiled kernel needs read without running it.

use std::path::{Path, PathBuf};

use super::error::{Result, RunnerError};
use super::timing::{SPIN_ENTRY, SPIN_SOURCE};
use crate::cuda::compile::{self, Compiled, Unit};
use crate::cuda::driver::{Function, Gpu, Module};
use crate::cuda::resources;
use crate::cuda::spec::{CudaSpec, Resolved, ResolvedLaunch};
use crate::measure::Resources;

/// Above this much dynamic shared memory a kernel must opt in.
const DEFAULT_SHARED_LIMIT: u32 = 48 * 1024;

/// The compiled, loaded kernels of one shape.
pub struct Kernels {
    /// The architecture compiled for.
    pub arch: String,
    /// Whether the kernel's CUBIN came from the cache, and where it lies.
    pub cached: bool,
    pub cubin: Option<PathBuf>,
    /// Gate 4's static half: what each entry point of the kernel needs.
    pub resources: Vec<Resources>,
    /// One function per launch of the kernel, and of the reference.
    pub candidate: Vec<Function>,
    pub reference: Vec<Function>,
    pub spin: Function,
    /// The modules the functions belong to, loaded for as long as they are used.
    _modules: [Module; 3],
}

impl Kernels {
    /// Compiles and loads the kernel and its reference from `spec`'s sources under `root`.
    pub fn build(root: &Path, spec: &CudaSpec, resolved: &Resolved, gpu: &Gpu) -> Result<Kernels> {
        let (major, minor) = gpu.info.compute_capability;
        let arch = native_arch(major, minor);
        let candidate_source = source_file(root, &spec.source)?;
        let reference_source = match &spec.reference.source {
            Some(source) => source_file(root, source)?,
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
        let candidate_fns = functions(&candidate_module, &resolved.launches, gpu)?;
        let resources = static_resources(&candidate, &resolved.launches, &candidate_fns, gpu)?;
        let reference_fns = functions(&reference_module, &resolved.reference, gpu)?;
        let spin_fn = spin_module.function(SPIN_ENTRY)?;
        Ok(Kernels {
            arch,
            cached: candidate.cached,
            cubin: candidate.path,
            resources,
            candidate: candidate_fns,
            reference: reference_fns,
            spin: spin_fn,
            _modules: [candidate_module, reference_module, spin_module],
        })
    }
}

/// Gate 4's static half: what the compiled kernel needs, read without running it.
fn static_resources(
    compiled: &Compiled,
    launches: &[ResolvedLaunch],
    functions: &[Function],
    gpu: &Gpu,
) -> Result<Vec<Resources>> {
    let sass = match &compiled.path {
        Some(path) => resources::disassemble(path),
        None => tempfile::NamedTempFile::new()
            .ok()
            .filter(|file| std::fs::write(file.path(), &compiled.cubin).is_ok())
            .and_then(|file| resources::disassemble(file.path())),
    };
    Ok(resources::collect(
        launches,
        functions,
        &gpu.info,
        &compiled.log,
        sass.as_ref(),
    )?)
}

/// The source file, which must lie inside the folder of gates.yaml even after symlinks.
fn source_file(root: &Path, relative: &str) -> Result<PathBuf> {
    let root = root.canonicalize().map_err(|source| RunnerError::Root {
        root: root.to_path_buf(),
        source,
    })?;
    let path = root
        .join(relative)
        .canonicalize()
        .map_err(|source| RunnerError::OpenSource {
            relative: relative.to_string(),
            source,
        })?;
    if !path.starts_with(&root) {
        return Err(RunnerError::SourceOutside {
            relative: relative.to_string(),
            root,
        });
    }
    Ok(path)
}

fn compile_file(path: &Path, name: &str, options: &[String], arch: &str) -> Result<Compiled> {
    let text = std::fs::read(path).map_err(|source| RunnerError::ReadSource {
        name: name.to_string(),
        source,
    })?;
    Ok(compile::compile(&Unit {
        text: &text,
        display_name: name,
        folder: path.parent(),
        options,
        arch,
    })?)
}

/// The entry point of each launch, opted into the dynamic shared memory it needs.
fn functions(module: &Module, launches: &[ResolvedLaunch], gpu: &Gpu) -> Result<Vec<Function>> {
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
                    return Err(RunnerError::SharedMemory {
                        entry: launch.entry.clone(),
                        needed,
                        limit: gpu.info.max_shared_optin,
                    });
                }
                function.allow_shared(needed)?;
            }
            Ok(function)
        })
        .collect()
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
}
