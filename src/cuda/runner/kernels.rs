//! Gate 1, compile: the kernel, its reference and the spin kernel compiled for this device and
//! loaded, with what the compiled kernel needs read without running it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::error::{Result, RunnerError};
use super::timing::{SPIN_ENTRY, SPIN_SOURCE};
use crate::cuda::compile::{self, Compiled, Unit};
use crate::cuda::driver::{Function, Gpu, Module};
use crate::cuda::resources;
use crate::cuda::spec::{CudaSpec, Resolved, ResolvedLaunch};
use crate::measure::Resources;

/// Above this much dynamic shared memory a kernel must opt in.
const DEFAULT_SHARED_LIMIT: u32 = 48 * 1024;

/// The kernel, its reference and the spin kernel, compiled for this device and loaded: what
/// every shape of the kernel shares, built once per runner process.
pub struct Program {
    /// The architecture compiled for.
    pub arch: String,
    /// Whether the kernel's CUBIN came from the cache, and where it lies.
    pub cached: bool,
    pub cubin: Option<PathBuf>,
    candidate: Compiled,
    reference: Compiled,
    /// The kernel's SASS instruction counts per entry point, read once (a tool run).
    sass: Option<HashMap<String, IndexMap<String, u64>>>,
    /// The modules, loaded for as long as their functions are used.
    modules: [Module; 3],
}

/// The functions one shape launches, from a [`Program`] that outlives them.
pub struct Kernels<'p> {
    pub program: &'p Program,
    /// Gate 4's static half: what each entry point of the kernel needs.
    pub resources: Vec<Resources>,
    /// One function per launch of the kernel, and of the reference.
    pub candidate: Vec<Function>,
    pub reference: Vec<Function>,
    pub spin: Function,
}

impl Program {
    /// Compiles and loads the kernel and its reference from `spec`'s sources under `root`.
    pub fn build(root: &Path, spec: &CudaSpec, gpu: &Gpu) -> Result<Program> {
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
        let modules = [
            Module::load(&candidate.cubin)?,
            Module::load(&reference.cubin)?,
            Module::load(&spin.cubin)?,
        ];
        let sass = match &candidate.path {
            Some(path) => resources::disassemble(path),
            None => tempfile::NamedTempFile::new()
                .ok()
                .filter(|file| std::fs::write(file.path(), &candidate.cubin).is_ok())
                .and_then(|file| resources::disassemble(file.path())),
        };
        Ok(Program {
            arch,
            cached: candidate.cached,
            cubin: candidate.path.clone(),
            candidate,
            reference,
            sass,
            modules,
        })
    }

    /// The functions `resolved` launches, opted into the shared memory they need.
    pub fn kernels(&self, resolved: &Resolved, gpu: &Gpu) -> Result<Kernels<'_>> {
        let [candidate_module, reference_module, spin_module] = &self.modules;
        let candidate = functions(candidate_module, &resolved.launches, gpu)?;
        let resources = resources::collect(
            &resolved.launches,
            &candidate,
            &gpu.info,
            &self.candidate.log,
            self.sass.as_ref(),
        )?;
        let reference = functions(reference_module, &resolved.reference, gpu)?;
        let spin = spin_module.function(SPIN_ENTRY)?;
        Ok(Kernels {
            program: self,
            resources,
            candidate,
            reference,
            spin,
        })
    }

    /// Feeds the compiled code, byte for byte, into `hash`: the machine code of the kernel
    /// and of its reference.
    pub fn fingerprint(&self, hash: &mut impl sha2::Digest) {
        hash.update(b"\0candidate\0");
        hash.update(&self.candidate.cubin);
        hash.update(b"\0reference\0");
        hash.update(&self.reference.cubin);
    }
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
