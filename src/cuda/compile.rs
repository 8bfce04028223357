//! Gate 1 — compile: CUDA C++ to a CUBIN through NVRTC, cached on disk.
//!
//! The cache key is a hash of the source, every header beside it, the options, the target
//! architecture and the NVRTC version, so a repeated check loads the CUBIN instead of
//! recompiling, and any change that could alter the code misses the cache.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use cudarc::nvrtc::{result as rtc, sys as rtc_sys};
use sha2::{Digest, Sha256};

use crate::atomic;

/// A compiled kernel image.
pub struct Compiled {
    pub cubin: Vec<u8>,
    /// True when it came from the cache.
    pub cached: bool,
    /// Where the CUBIN is kept, for disassembly.
    pub path: Option<PathBuf>,
    /// The compiler's log, with ptxas's per-function report (registers, stack, spills); kept
    /// beside the cached CUBIN.
    pub log: String,
}

/// Why a unit did not compile: the compiler's log (with `file(line): error: ...` lines), or
/// what kept NVRTC from producing a CUBIN.
#[derive(Debug, thiserror::Error)]
#[error("compile error in {file} (NVRTC {nvrtc}, {arch}):\n{log}{hint}")]
pub struct CompileError {
    pub file: String,
    pub nvrtc: String,
    pub arch: String,
    /// The log, or the reason, without trailing whitespace.
    pub log: String,
    /// A hint at the cause, on a line of its own, or nothing.
    pub hint: &'static str,
}

/// What went wrong inside one NVRTC compilation.
#[derive(Debug, thiserror::Error)]
enum NvrtcError {
    /// The compiler's log, or the call's error where the log is empty.
    #[error("{0}")]
    Rejected(String),
    #[error("{0}: the source contains a NUL byte")]
    NulInSource(String),
    #[error("bad source name")]
    SourceName,
    #[error("option {0:?} contains a NUL byte")]
    NulInOption(String),
    #[error("nvrtcCreateProgram: {0}")]
    Create(String),
    #[error("nvrtcGetCUBINSize: {0} (compile for a real sm_XX architecture, not compute_XX)")]
    CubinSize(String),
    #[error("NVRTC produced no CUBIN (the architecture must be sm_XX, not compute_XX)")]
    NoCubin,
    #[error("nvrtcGetCUBIN: {0}")]
    GetCubin(String),
}

/// What to compile.
pub struct Unit<'a> {
    pub text: &'a [u8],
    /// How the source is named in compiler messages: its path relative to gates.yaml.
    pub display_name: &'a str,
    /// The source's folder, searched for includes (and hashed for the cache), if it has one.
    pub folder: Option<&'a Path>,
    pub options: &'a [String],
    /// `sm_90` and the like.
    pub arch: &'a str,
}

/// The CUDA toolkit's include folder, for `cuda_fp16.h`, `cuda_fp8.h`, `mma.h`.
pub fn cuda_include_dir() -> Option<PathBuf> {
    let roots = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(|var| std::env::var_os(var).map(PathBuf::from))
        .chain([PathBuf::from("/usr/local/cuda")]);
    for root in roots {
        for include in [
            root.join("include"),
            root.join("targets/x86_64-linux/include"),
        ] {
            if include.join("cuda_fp16.h").is_file() {
                return Some(include);
            }
        }
    }
    None
}

pub fn nvrtc_version() -> String {
    let (mut major, mut minor) = (0, 0);
    match unsafe { rtc_sys::nvrtcVersion(&mut major, &mut minor) }.result() {
        Ok(()) => format!("{major}.{minor}"),
        Err(_) => "unknown".to_string(),
    }
}

/// The folder compiled images are cached in.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GATEKEEPER_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("gatekeeper"))
}

/// Full options: the caller's, plus the architecture unless they chose one, line info for
/// profilers, and include paths for the source's folder and the toolkit.
fn full_options(unit: &Unit, include: Option<&Path>) -> Vec<String> {
    let mut options = unit.options.to_vec();
    let chose_arch = options
        .iter()
        .any(|o| o.starts_with("--gpu-architecture") || o.starts_with("-arch"));
    if !chose_arch {
        options.push(format!("--gpu-architecture={}", unit.arch));
    }
    options.push("-lineinfo".to_string());
    // ptxas's resource report (registers, stack frame, spill bytes) for gate 4.
    options.push("--ptxas-options=-v".to_string());
    if let Some(folder) = unit.folder {
        options.push(format!("-I{}", folder.display()));
    }
    if let Some(include) = include {
        options.push(format!("-I{}", include.display()));
    }
    options
}

/// The cache key: everything that can change the compiled code.
fn cache_key(unit: &Unit, source: &[u8], options: &[String], nvrtc: &str) -> String {
    let mut hash = Sha256::new();
    for part in [
        env!("CARGO_PKG_VERSION"),
        nvrtc,
        unit.arch,
        unit.display_name,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    // The same tree in another folder (the exported base of an A/B comparison, a second
    // checkout) compiles to the same code: the source folder's own path is not part of the key.
    let own_folder = unit
        .folder
        .map(|folder| folder.display().to_string())
        .filter(|folder| !folder.is_empty());
    for option in options {
        let option = match &own_folder {
            Some(folder) => option.replace(folder.as_str(), "<source folder>"),
            None => option.clone(),
        };
        hash.update(option.as_bytes());
        hash.update([0]);
    }
    hash.update(source);
    // NVRTC finds headers at compile time; hashing every source-like file under the source's
    // folder and under `-I` folders catches edits to anything it could have included.
    let mut folders: Vec<PathBuf> = unit.folder.map(Path::to_path_buf).into_iter().collect();
    for option in unit.options {
        if let Some(dir) = option
            .strip_prefix("-I")
            .or_else(|| option.strip_prefix("--include-path="))
        {
            folders.push(PathBuf::from(dir.trim()));
        }
    }
    let mut files = Vec::new();
    for folder in &folders {
        collect_sources(folder, 0, &mut files);
    }
    files.sort();
    files.dedup();
    for file in files {
        // Named by the folder it was found under and its path there.
        let (index, relative) = folders
            .iter()
            .enumerate()
            .find_map(|(index, folder)| Some((index, file.strip_prefix(folder).ok()?)))
            .unwrap_or((usize::MAX, file.as_path()));
        hash.update(index.to_le_bytes());
        hash.update(relative.to_string_lossy().as_bytes());
        hash.update(std::fs::read(&file).unwrap_or_default());
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Source-like files under `folder`, a few levels deep and a few thousand at most: enough for
/// a kernel tree, bounded for a folder that turns out to be a whole repository.
fn collect_sources(folder: &Path, depth: usize, files: &mut Vec<PathBuf>) {
    const MAX_DEPTH: usize = 4;
    const MAX_FILES: usize = 4096;
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        if files.len() >= MAX_FILES {
            return;
        }
        let path = entry.path();
        if path.is_dir() {
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if depth < MAX_DEPTH && !hidden {
                collect_sources(&path, depth + 1, files);
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("cu" | "cuh" | "h" | "hpp" | "inl")
        ) {
            files.push(path);
        }
    }
}

/// Compiles `unit`, or loads it from the cache. The error is the compiler log (with
/// `file(line): error: ...` lines) or a message naming what is missing.
pub fn compile(unit: &Unit) -> Result<Compiled, CompileError> {
    let source = unit.text;
    let include = cuda_include_dir();
    let options = full_options(unit, include.as_deref());
    let nvrtc = nvrtc_version();
    let cached_path = cache_dir().map(|dir| {
        dir.join("cubin").join(format!(
            "{}.cubin",
            cache_key(unit, source, &options, &nvrtc)
        ))
    });
    if let Some(path) = &cached_path {
        // A truncated or foreign file is not trusted: a CUBIN is an ELF image.
        if let Ok(cubin) = std::fs::read(path).and_then(|b| {
            if b.len() > 64 && b.starts_with(b"\x7fELF") {
                Ok(b)
            } else {
                Err(std::io::Error::other("not a CUBIN"))
            }
        }) {
            return Ok(Compiled {
                cubin,
                cached: true,
                log: std::fs::read_to_string(path.with_extension("log")).unwrap_or_default(),
                path: Some(path.clone()),
            });
        }
    }
    let (cubin, log) = nvrtc_compile(unit, source, &options).map_err(|err| {
        let log = err.to_string();
        let hint = if include.is_none() && log.contains("cannot open source file") {
            "\n(no CUDA include folder was found: set CUDA_HOME to the toolkit's folder)"
        } else {
            ""
        };
        CompileError {
            file: unit.display_name.to_string(),
            nvrtc: nvrtc.clone(),
            arch: unit.arch.to_string(),
            log: log.trim_end().to_string(),
            hint,
        }
    })?;
    // A cache that cannot be written only costs time.
    let path = cached_path.filter(|path| {
        path.parent()
            .is_some_and(|dir| std::fs::create_dir_all(dir).is_ok())
            && atomic::write(&path.with_extension("log"), log.as_bytes()).is_ok()
            && atomic::write(path, &cubin).is_ok()
    });
    Ok(Compiled {
        cubin,
        cached: false,
        path,
        log,
    })
}

/// The CUBIN and the compiler's log, or the log as the error.
fn nvrtc_compile(
    unit: &Unit,
    source: &[u8],
    options: &[String],
) -> Result<(Vec<u8>, String), NvrtcError> {
    let source = CString::new(source.to_vec())
        .map_err(|_| NvrtcError::NulInSource(unit.display_name.to_string()))?;
    let name = CString::new(unit.display_name).map_err(|_| NvrtcError::SourceName)?;
    if let Some(option) = options.iter().find(|option| option.contains('\0')) {
        return Err(NvrtcError::NulInOption(option.clone()));
    }
    let program = rtc::create_program(&source, Some(&name))
        .map_err(|err| NvrtcError::Create(format!("{err:?}")))?;
    let compiled = unsafe { rtc::compile_program(program, options) };
    let log = unsafe { rtc::get_program_log(program) }
        .map(|log| {
            let bytes: Vec<u8> = log
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .unwrap_or_default();
    let result = match compiled {
        Err(err) => Err(NvrtcError::Rejected(if log.trim().is_empty() {
            format!("{err:?}")
        } else {
            log
        })),
        Ok(()) => cubin(program).map(|image| (image, log)),
    };
    unsafe {
        let _ = rtc::destroy_program(program);
    }
    result
}

fn cubin(program: rtc_sys::nvrtcProgram) -> Result<Vec<u8>, NvrtcError> {
    let mut size = 0usize;
    unsafe { rtc_sys::nvrtcGetCUBINSize(program, &mut size) }
        .result()
        .map_err(|err| NvrtcError::CubinSize(format!("{err:?}")))?;
    if size == 0 {
        return Err(NvrtcError::NoCubin);
    }
    let mut image = vec![0u8; size];
    unsafe { rtc_sys::nvrtcGetCUBIN(program, image.as_mut_ptr() as *mut std::ffi::c_char) }
        .result()
        .map_err(|err| NvrtcError::GetCubin(format!("{err:?}")))?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_follows_the_tree_not_where_it_lies() {
        let key_of = |root: &Path| {
            let folder = root.join("kernels");
            let options = vec![format!("-I{}", folder.display())];
            let unit = Unit {
                text: b"#include \"common.cuh\"\n",
                display_name: "kernels/k.cu",
                folder: Some(&folder),
                options: &[],
                arch: "sm_90a",
            };
            cache_key(&unit, unit.text, &options, "12.9")
        };
        let tree = |header: &str| {
            let root = tempfile::tempdir().unwrap();
            std::fs::create_dir(root.path().join("kernels")).unwrap();
            std::fs::write(
                root.path().join("kernels/k.cu"),
                "#include \"common.cuh\"\n",
            )
            .unwrap();
            std::fs::write(root.path().join("kernels/common.cuh"), header).unwrap();
            root
        };
        let (one, two, edited) = (tree("// a\n"), tree("// a\n"), tree("// b\n"));
        assert_eq!(key_of(one.path()), key_of(two.path()));
        assert_ne!(key_of(one.path()), key_of(edited.path()));
    }

    #[test]
    fn a_compile_error_names_the_file_the_compiler_and_the_log() {
        let error = CompileError {
            file: "kernels/softmax.cu".into(),
            nvrtc: "13.0".into(),
            arch: "sm_90a".into(),
            log: "kernels/softmax.cu(12): error: identifier \"acc\" is undefined".into(),
            hint: "",
        };
        assert_eq!(
            error.to_string(),
            "compile error in kernels/softmax.cu (NVRTC 13.0, sm_90a):\nkernels/softmax.cu(12): error: identifier \"acc\" is undefined"
        );
        assert_eq!(
            NvrtcError::NulInOption("-I\0".into()).to_string(),
            "option \"-I\\0\" contains a NUL byte"
        );
    }
}
