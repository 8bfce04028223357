//! What a kernel's result depends on, as one hash: the key that lets a check reuse a baseline
//! instead of measuring a kernel that did not change.

use sha2::{Digest, Sha256};

use crate::config::{Config, KernelSpec};

/// The key of `kernel`: its gates.yaml entry, the parameters of its shapes, and the path and
/// bytes of every file its `inputs:` globs match (relative to the folder of gates.yaml).
/// `None` for a kernel without `inputs:`, which is always measured; an error when a glob
/// matches nothing or a file cannot be read, so a typo cannot make a kernel look unchanged.
pub fn key(config: &Config, kernel: &KernelSpec) -> Option<Result<String, String>> {
    if kernel.inputs.is_empty() {
        return None;
    }
    Some(hash(config, kernel))
}

/// The key stored with a kernel's baselines: the key of its `inputs:` files (from [`key`]),
/// combined with the one its protocol v2 harness named in its ready line (the CUDA runner
/// names its compiled code). `None` when there is neither, or the files cannot be read.
pub fn combine(files: Option<Result<String, String>>, announced: Option<String>) -> Option<String> {
    let files = match files {
        Some(Err(_)) => return None,
        Some(Ok(key)) => Some(key),
        None => None,
    };
    match (files, announced) {
        (None, None) => None,
        (Some(key), None) | (None, Some(key)) => Some(key),
        (Some(files), Some(announced)) => {
            let both = Sha256::digest(format!("{files}\0{announced}").as_bytes());
            Some(both.iter().map(|b| format!("{b:02x}")).collect())
        }
    }
}

fn hash(config: &Config, kernel: &KernelSpec) -> Result<String, String> {
    let mut hash = Sha256::new();
    let entry = serde_json::to_string(kernel).map_err(|err| err.to_string())?;
    hash.update(entry.as_bytes());
    for shape in &kernel.shapes {
        let params = serde_json::to_string(&config.shapes.get(shape)).unwrap_or_default();
        hash.update(format!("\0{shape}={params}").as_bytes());
    }
    let mut files = Vec::new();
    for pattern in &kernel.inputs {
        let full = config.root.join(pattern);
        let matched: Vec<std::path::PathBuf> = glob::glob(&full.to_string_lossy())
            .map_err(|err| format!("inputs: {pattern:?} is not a glob: {err}"))?
            .filter_map(Result::ok)
            .filter(|path| path.is_file())
            .collect();
        if matched.is_empty() {
            return Err(format!("inputs: {pattern:?} matches no file"));
        }
        files.extend(matched);
    }
    files.sort();
    files.dedup();
    for file in files {
        let relative = file.strip_prefix(&config.root).unwrap_or(&file);
        let bytes = std::fs::read(&file).map_err(|err| format!("{}: {err}", file.display()))?;
        hash.update(format!("\0{}\0", relative.display()).as_bytes());
        hash.update(&bytes);
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::combine;

    #[test]
    fn keys_combine_from_files_and_the_harness() {
        let files = || Some(Ok("f".repeat(64)));
        assert_eq!(combine(None, None), None);
        assert_eq!(combine(files(), None), Some("f".repeat(64)));
        assert_eq!(combine(None, Some("k".into())), Some("k".into()));
        let both = combine(files(), Some("k".into())).unwrap();
        assert_eq!(both.len(), 64);
        assert_ne!(both, combine(files(), Some("j".into())).unwrap());
        // Files that cannot be read leave no key, whatever the harness says.
        assert_eq!(combine(Some(Err("gone".into())), Some("k".into())), None);
    }
}
