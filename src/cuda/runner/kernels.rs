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

    /// Feeds the compiled code into `hash`: the machine code of the kernel and of its
    /// reference, without their line tables and notes (which name the folders the source was
    /// compiled in, so the same code built in two checkouts would look different).
    pub fn fingerprint(&self, hash: &mut impl sha2::Digest) {
        hash.update(b"\0candidate\0");
        hash_code(&self.candidate.cubin, hash);
        hash.update(b"\0reference\0");
        hash_code(&self.reference.cubin, hash);
    }
}

/// Feeds a CUBIN's code sections into `hash`, each with its name: everything but debug
/// information. A CUBIN that does not parse as a 64-bit ELF is hashed whole.
fn hash_code(cubin: &[u8], hash: &mut impl sha2::Digest) {
    match code_sections(cubin) {
        Some(sections) => {
            for (name, bytes) in sections {
                hash.update(name);
                hash.update(b"\0");
                hash.update(bytes);
            }
        }
        None => hash.update(cubin),
    }
}

/// The (name, contents) of every section of a little-endian ELF64 image except debug
/// information and notes.
fn code_sections(elf: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let u16_at = |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(elf.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?));
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let table = usize::try_from(u64_at(0x28)?).ok()?;
    let entry = usize::from(u16_at(0x3A)?);
    let count = usize::from(u16_at(0x3C)?);
    let names_at = usize::from(u16_at(0x3E)?);
    let header = |index: usize| -> Option<(usize, &[u8])> {
        let at = table.checked_add(index.checked_mul(entry)?)?;
        let name = usize::try_from(u32_at(at)?).ok()?;
        let offset = usize::try_from(u64_at(at + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(at + 0x20)?).ok()?;
        let kind = u32_at(at + 4)?;
        // SHT_NOBITS has no bytes in the file.
        let bytes = if kind == 8 {
            &[][..]
        } else {
            elf.get(offset..offset.checked_add(size)?)?
        };
        Some((name, bytes))
    };
    let (_, names) = header(names_at)?;
    let mut sections = Vec::new();
    for index in 1..count {
        let (name, bytes) = header(index)?;
        let rest = names.get(name..)?;
        let name = &rest[..rest.iter().position(|&b| b == 0)?];
        // Debug information and notes (the tool's command line, with include folders).
        if [&b".debug"[..], b".nv_debug", b".note"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            continue;
        }
        sections.push((name, bytes));
    }
    Some(sections)
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

    /// A little ELF64: a section-name table, a code section, a line table.
    fn elf(code: &[u8], lines: &[u8]) -> Vec<u8> {
        let names = b"\0.shstrtab\0.text.k\0.debug_line\0";
        let mut image = vec![0u8; 64];
        image[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let place = |bytes: &[u8], image: &mut Vec<u8>| {
            let at = image.len();
            image.extend_from_slice(bytes);
            (at as u64, bytes.len() as u64)
        };
        let (names_at, names_len) = place(names, &mut image);
        let (code_at, code_len) = place(code, &mut image);
        let (lines_at, lines_len) = place(lines, &mut image);
        let table = image.len() as u64;
        let mut header = |name: u32, at: u64, len: u64| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&1u32.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&at.to_le_bytes());
            h[0x20..0x28].copy_from_slice(&len.to_le_bytes());
            image.extend_from_slice(&h);
        };
        header(0, 0, 0);
        header(1, names_at, names_len);
        header(11, code_at, code_len);
        header(19, lines_at, lines_len);
        image[0x28..0x30].copy_from_slice(&table.to_le_bytes());
        image[0x3A..0x3C].copy_from_slice(&64u16.to_le_bytes());
        image[0x3C..0x3E].copy_from_slice(&4u16.to_le_bytes());
        image[0x3E..0x40].copy_from_slice(&1u16.to_le_bytes());
        image
    }

    #[test]
    fn the_fingerprint_is_the_code_not_the_line_table() {
        use sha2::{Digest, Sha256};
        let key = |image: &[u8]| {
            let mut hash = Sha256::new();
            hash_code(image, &mut hash);
            hash.finalize()
        };
        let built_here = elf(b"FFMA R0, R1", b"/home/a/checkout/kernels");
        let built_there = elf(b"FFMA R0, R1", b"/tmp/b/kernels");
        let other_code = elf(b"FADD R0, R1", b"/home/a/checkout/kernels");
        assert_eq!(key(&built_here), key(&built_there));
        assert_ne!(key(&built_here), key(&other_code));
        let names: Vec<&[u8]> = code_sections(&built_here)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, [&b".shstrtab"[..], b".text.k"]);
        // Not an ELF: hashed whole, still a key.
        assert_ne!(key(b"not an elf"), key(b"not an elf either"));
    }

    #[test]
    fn hopper_and_later_compile_for_their_arch_specific_target() {
        assert_eq!(native_arch(8, 6), "sm_86");
        assert_eq!(native_arch(8, 9), "sm_89");
        assert_eq!(native_arch(9, 0), "sm_90a");
        assert_eq!(native_arch(10, 0), "sm_100a");
    }
}
