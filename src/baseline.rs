//! The baseline store: `baselines/<device>/<kernel>.json`, raw samples plus provenance, kept in
//! git beside the kernels they describe.
//!
//! Baselines are keyed by device model so a run on one GPU is never compared, silently, with
//! samples from another. They are read from the working tree or from any ref's tree, and
//! written atomically: an interrupted refresh leaves the old file or the new one, never half.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{Error, Result};
use crate::git::{EntryKind, Repo, ResolvedRef};
use crate::shape::Params;

/// Version of the baseline file layout.
pub const FORMAT: u32 = 1;
/// Device folder used when a harness does not report its device.
pub const UNKNOWN_DEVICE: &str = "unknown-device";

/// One kernel's baselines on one device.
///
/// Stored files are read leniently: a key this version does not know is ignored, so a file
/// written by a later version (or one that added provenance) still loads. An incompatible
/// change bumps [`FORMAT`] instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineFile {
    pub format: u32,
    pub kernel: String,
    /// The device name as the harness reported it.
    pub device: String,
    pub shapes: IndexMap<String, ShapeBaseline>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShapeBaseline {
    pub params: Params,
    pub samples_us: Vec<f64>,
    pub provenance: Provenance,
}

/// Where a baseline came from, so a reviewer can tell whether to trust it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// HEAD when it was measured; `None` outside a repository or before the first commit.
    pub commit: Option<String>,
    /// Whether the working tree had uncommitted changes.
    pub dirty: Option<bool>,
    /// RFC 3339, UTC.
    pub date: String,
    pub gatekeeper_version: String,
    pub warmup: u64,
    /// Samples asked of the harness.
    pub samples: u64,
    pub seed: u64,
    /// The kernel's entry in gates.yaml at the time, kept as plain JSON: it is a record for a
    /// reviewer, and gates.yaml's keys may change (be added, renamed, removed) without making
    /// committed baselines unreadable.
    #[serde(default)]
    pub kernel: serde_json::Value,
    /// What the harness reported about the measurement (device clocks, driver, batch size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<crate::measure::Details>,
    /// The hash of the kernel's `inputs:` files and gates.yaml entry when it was measured; a
    /// check against this baseline reuses it while the hash is the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_key: Option<String>,
}

/// Longest device name used as a folder name without a hash.
const PLAIN_MAX: usize = 64;
/// Longest readable part of a hashed folder name.
const PREFIX_MAX: usize = 40;

/// Turns a device name into a folder name. A plain name (ASCII letters and digits in words
/// joined by single spaces or hyphens, at most 64 bytes) is lowercased with spaces as hyphens:
/// `NVIDIA H100 80GB HBM3` → `nvidia-h100-80gb-hbm3`. Any other name (non-ASCII, punctuation,
/// empty, `..`, too long) gets a bounded readable prefix, `_` and a hash of the exact name:
/// `Radeon™ RX 7900` → `radeon-rx-7900_<12 hex digits>`. So the name is always a short, safe
/// folder, and two devices share one only when their names differ in case or in space versus
/// hyphen; the exact name stored in each file tells those apart.
pub fn device_slug(device: Option<&str>) -> String {
    let Some(device) = device else {
        return UNKNOWN_DEVICE.to_string();
    };
    if is_plain(device) {
        return device.to_ascii_lowercase().replace(' ', "-");
    }
    let mut prefix = String::new();
    for c in device.chars() {
        if prefix.len() >= PREFIX_MAX {
            break;
        }
        if c.is_ascii_alphanumeric() {
            prefix.push(c.to_ascii_lowercase());
        } else if !prefix.is_empty() && !prefix.ends_with('-') {
            prefix.push('-');
        }
    }
    let prefix = match prefix.trim_end_matches('-') {
        "" => "device",
        prefix => prefix,
    };
    // `_` never appears in a plain name's folder, so hashed and plain folders cannot meet.
    format!("{prefix}_{}", short_hash(device))
}

fn is_plain(name: &str) -> bool {
    name.len() <= PLAIN_MAX
        && name
            .split([' ', '-'])
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The device name a baseline file stores for a harness that named none.
fn stored_name(device: Option<&str>) -> &str {
    device.unwrap_or(UNKNOWN_DEVICE)
}

/// Where baselines are read from.
pub enum Source {
    WorkTree {
        dir: PathBuf,
    },
    Git {
        repo: Repo,
        resolved: ResolvedRef,
        /// The baselines folder, relative to the repository root.
        dir: PathBuf,
    },
}

impl Source {
    /// What a report says the baselines came from.
    pub fn describe(&self) -> String {
        match self {
            Source::WorkTree { .. } => "the working tree".to_string(),
            Source::Git { resolved, .. } => resolved.describe(),
        }
    }

    fn devices(&self) -> Result<Vec<String>> {
        match self {
            Source::WorkTree { dir } => {
                let entries = match std::fs::read_dir(dir) {
                    Ok(entries) => entries,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(err) => return Err(Error::io(dir, err)),
                };
                let mut devices = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(|err| Error::io(dir, err))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if entry.path().is_dir() {
                        devices.push(name);
                    } else if could_be_device_folder(&name) {
                        return Err(Error::Usage(format!(
                            "{}: is a file where a device's baseline folder goes; remove it or make it a folder",
                            entry.path().display()
                        )));
                    }
                }
                devices.sort();
                Ok(devices)
            }
            Source::Git {
                repo,
                resolved,
                dir,
            } => {
                // As in a working tree, where `baselines` as a file cannot be read, anything
                // but a folder stops the command; so does a device folder git cannot follow.
                // A plain file beside the device folders (a .gitignore) is skipped.
                match repo.kind(resolved.commit, dir)? {
                    None => return Ok(Vec::new()),
                    Some(EntryKind::Folder) => {}
                    Some(other) => return Err(not_expected(resolved, dir, other, "a folder")),
                }
                let mut devices = Vec::new();
                for (name, kind) in repo.list(resolved.commit, dir)? {
                    match kind {
                        EntryKind::Folder => devices.push(name),
                        EntryKind::File if could_be_device_folder(&name) => {
                            return Err(not_expected(resolved, &dir.join(name), kind, "a folder"))
                        }
                        EntryKind::File => {}
                        EntryKind::Symlink | EntryKind::Submodule => {
                            return Err(not_expected(resolved, &dir.join(name), kind, "a folder"))
                        }
                    }
                }
                devices.sort();
                Ok(devices)
            }
        }
    }

    fn read(&self, device: &str, kernel: &str) -> Result<Option<(PathBuf, Vec<u8>)>> {
        let relative = Path::new(device).join(format!("{kernel}.json"));
        match self {
            Source::WorkTree { dir } => {
                let path = dir.join(relative);
                match std::fs::read(&path) {
                    Ok(bytes) => Ok(Some((path, bytes))),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(err) => Err(Error::io(&path, err)),
                }
            }
            Source::Git {
                repo,
                resolved,
                dir,
            } => {
                let path = dir.join(relative);
                match repo.kind(resolved.commit, &path)? {
                    None => Ok(None),
                    Some(EntryKind::File) => {
                        let bytes = repo.read_file(resolved.commit, &path)?;
                        Ok(Some((shown(resolved, &path), bytes)))
                    }
                    Some(other) => Err(not_expected(resolved, &path, other, "a file")),
                }
            }
        }
    }
}

/// A path in a ref's tree as the user would name it: `main:baselines/gpu/k.json`.
fn shown(resolved: &ResolvedRef, path: &Path) -> PathBuf {
    if resolved.is_merge_base() {
        let id = resolved.commit.to_string();
        PathBuf::from(format!(
            "{}:{}",
            crate::git::short_commit(&id),
            path.display()
        ))
    } else {
        PathBuf::from(format!("{}:{}", resolved.matched, path.display()))
    }
}

/// Whether a file of this name beside the device folders sits where a device's folder would
/// go. Device folders never hold a dot, so `.gitignore` or `README.md` there are left alone,
/// while a file named like a device would silently hide that device's baselines.
fn could_be_device_folder(name: &str) -> bool {
    !name.contains('.')
}

fn not_expected(resolved: &ResolvedRef, path: &Path, kind: EntryKind, wanted: &str) -> Error {
    Error::Git(format!(
        "{}: is {} in the tree of {}, not {wanted}; baselines are read from git trees as plain folders and files",
        shown(resolved, path).display(),
        kind.describe(),
        resolved.describe()
    ))
}

/// Every baseline of the planned kernels, on every device, loaded and checked up front so a
/// broken file stops the command before any GPU time is spent.
#[derive(Debug, Default)]
pub struct BaselineSet {
    files: HashMap<(String, String), BaselineFile>,
    devices: Vec<String>,
}

impl BaselineSet {
    pub fn load<'k>(source: &Source, kernels: impl IntoIterator<Item = &'k str>) -> Result<Self> {
        let devices = source.devices()?;
        let mut files = HashMap::new();
        for kernel in kernels {
            for device in &devices {
                if let Some((path, bytes)) = source.read(device, kernel)? {
                    let file = parse(&path, &bytes, kernel)?;
                    files.insert((device.clone(), kernel.to_string()), file);
                }
            }
        }
        Ok(BaselineSet { files, devices })
    }

    pub fn get(&self, device_slug: &str, kernel: &str) -> Option<&BaselineFile> {
        self.files
            .get(&(device_slug.to_string(), kernel.to_string()))
    }

    /// The samples for one kernel × shape on the device named `device` (as the harness
    /// reported it), or why there are none.
    pub fn shape(
        &self,
        device: Option<&str>,
        kernel: &str,
        shape: &str,
    ) -> std::result::Result<&ShapeBaseline, String> {
        let slug = device_slug(device);
        let name = stored_name(device);
        if let Some(file) = self.get(&slug, kernel) {
            if file.device != name {
                return Err(format!(
                    "no baseline for {kernel}/{shape} on {name:?}: the baselines in {slug}/ were measured on {:?}, another device whose name shares the folder; baselines from other devices are never compared",
                    file.device
                ));
            }
            if let Some(found) = file.shapes.get(shape) {
                return Ok(found);
            }
        }
        let others: Vec<&str> = self
            .devices
            .iter()
            .filter(|device| **device != slug && self.get(device, kernel).is_some())
            .map(String::as_str)
            .collect();
        Err(if others.is_empty() {
            format!("no baseline for {kernel}/{shape} on {slug}")
        } else {
            format!(
                "no baseline for {kernel}/{shape} on {slug}; baselines from other devices are never compared ({})",
                others.join(", ")
            )
        })
    }
}

fn parse(path: &Path, bytes: &[u8], kernel: &str) -> Result<BaselineFile> {
    let corrupt = |message: String| Error::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let file: BaselineFile = serde_json::from_slice(bytes)
        .map_err(|err| corrupt(format!("not a gatekeeper baseline: {err}")))?;
    if file.format != FORMAT {
        return Err(corrupt(format!(
            "baseline format {} is not supported (this gatekeeper reads format {FORMAT})",
            file.format
        )));
    }
    if file.kernel != kernel {
        return Err(corrupt(format!(
            "holds kernel {:?}, expected {kernel:?}",
            file.kernel
        )));
    }
    for (shape, baseline) in &file.shapes {
        if baseline.samples_us.len() < 2
            || baseline
                .samples_us
                .iter()
                .any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(corrupt(format!(
                "shape {shape:?}: samples_us must hold at least 2 finite, positive samples"
            )));
        }
    }
    Ok(file)
}

/// New samples for some shapes of one kernel on one device, to merge into its file.
#[derive(Debug, Clone)]
pub struct Update {
    /// The device name as the harness reported it.
    pub device: Option<String>,
    pub kernel: String,
    pub shapes: Vec<(String, ShapeBaseline)>,
    /// The kernel's shapes in gates.yaml order, which the file follows.
    pub order: Vec<String>,
}

/// What [`write_all`] wrote for one update.
#[derive(Debug, Clone)]
pub struct Written {
    pub kernel: String,
    pub path: PathBuf,
    pub refreshed: usize,
    pub total: usize,
    /// The device whose baselines the file held before, when another device's name shares
    /// the folder: its shapes were dropped, not relabelled.
    pub replaced_device: Option<String>,
}

/// What `baselines/.gitignore` holds, so a temporary file left by a killed write is never
/// committed with `git add baselines`.
const GITIGNORE: &str =
    "# Temporary files of an interrupted gatekeeper write; never baselines.\n.gatekeeper-*.tmp\n";

/// Checks, before anything is measured, that baselines can be written under `dir`.
pub fn check_writable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    atomic::check_writable(&dir.join(".gitignore"))
}

/// Merges each update into `<dir>/<device slug>/<kernel>.json` and writes them all, or none.
///
/// Each device folder is locked (an flock on the folder itself, so no lock file is left for
/// git to pick up) and each file re-read under the lock, so concurrent refreshes of different
/// shapes both land. Every new file is staged as a synced temporary file before the first is
/// renamed into place: a path problem with one kernel leaves every file as it was.
pub fn write_all(dir: &Path, updates: &[Update]) -> Result<Vec<Written>> {
    if updates.is_empty() {
        return Ok(Vec::new());
    }
    std::fs::create_dir_all(dir).map_err(|err| Error::io(dir, err))?;
    let ignore = dir.join(".gitignore");
    if std::fs::symlink_metadata(&ignore).is_err() {
        atomic::write(&ignore, GITIGNORE.as_bytes())?;
    }
    // Folders are locked in one order, so two refreshes never wait on each other in a cycle.
    let mut slugs: Vec<String> = updates
        .iter()
        .map(|u| device_slug(u.device.as_deref()))
        .collect();
    slugs.sort();
    slugs.dedup();
    let mut locks = Vec::with_capacity(slugs.len());
    for slug in &slugs {
        locks.push(lock_folder(&dir.join(slug))?);
    }

    let mut files: IndexMap<PathBuf, (BaselineFile, Option<std::fs::Permissions>)> =
        IndexMap::new();
    let mut written = Vec::with_capacity(updates.len());
    for update in updates {
        let path = dir
            .join(device_slug(update.device.as_deref()))
            .join(format!("{}.json", update.kernel));
        if !files.contains_key(&path) {
            files.insert(path.clone(), current(&path, &update.kernel)?);
        }
        let Some((file, _)) = files.get_mut(&path) else {
            continue;
        };
        let name = stored_name(update.device.as_deref());
        let mut replaced_device = None;
        if file.device != name {
            if !file.shapes.is_empty() {
                replaced_device = Some(file.device.clone());
            }
            file.shapes.clear();
            file.device = name.to_string();
        }
        for (shape, baseline) in &update.shapes {
            file.shapes.insert(shape.clone(), baseline.clone());
        }
        let order = |name: &str| {
            update
                .order
                .iter()
                .position(|s| s == name)
                .unwrap_or(usize::MAX)
        };
        file.shapes.sort_by(|a, _, b, _| order(a).cmp(&order(b)));
        written.push(Written {
            kernel: update.kernel.clone(),
            path,
            refreshed: update.shapes.len(),
            total: file.shapes.len(),
            replaced_device,
        });
    }

    let mut staged = Vec::with_capacity(files.len());
    for (path, (file, mode)) in &files {
        let mut text = serde_json::to_string_pretty(file).map_err(|err| Error::Corrupt {
            path: path.clone(),
            message: format!("cannot encode baseline: {err}"),
        })?;
        text.push('\n');
        staged.push((path, atomic::staged(path, text.as_bytes(), mode.clone())?));
    }
    for (path, temp) in staged {
        temp.persist(path)
            .map_err(|err| Error::io(path, err.error))?;
    }
    drop(locks);
    for entry in &mut written {
        entry.total = files
            .get(&entry.path)
            .map_or(entry.total, |(file, _)| file.shapes.len());
    }
    Ok(written)
}

/// Creates and locks a device folder; the lock lasts as long as the returned handle.
fn lock_folder(folder: &Path) -> Result<Flock<std::fs::File>> {
    if folder.exists() && !folder.is_dir() {
        return Err(Error::Usage(format!(
            "{}: is a file, not a folder; this device's baselines go there",
            folder.display()
        )));
    }
    std::fs::create_dir_all(folder).map_err(|err| Error::io(folder, err))?;
    let handle = std::fs::File::open(folder).map_err(|err| Error::io(folder, err))?;
    Flock::lock(handle, FlockArg::LockExclusive)
        .map_err(|(_, errno)| Error::io(folder, errno.into()))
}

/// The file at `path` as it is now (read under the folder's lock), with its mode, or an empty
/// one. Only a regular file is replaced: renaming onto a link would replace the link.
fn current(path: &Path, kernel: &str) -> Result<(BaselineFile, Option<std::fs::Permissions>)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_file() => {
            let bytes = std::fs::read(path).map_err(|err| Error::io(path, err))?;
            Ok((parse(path, &bytes, kernel)?, Some(meta.permissions())))
        }
        Ok(_) => Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: "not a regular file; a baseline is replaced as a whole, so it cannot be a link or a folder".to_string(),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok((
            BaselineFile {
                format: FORMAT,
                kernel: kernel.to_string(),
                device: String::new(),
                shapes: IndexMap::new(),
            },
            None,
        )),
        Err(err) => Err(Error::io(path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_keep_their_readable_folders() {
        assert_eq!(
            device_slug(Some("NVIDIA H100 80GB HBM3")),
            "nvidia-h100-80gb-hbm3"
        );
        assert_eq!(
            device_slug(Some("NVIDIA A100-SXM4-80GB")),
            "nvidia-a100-sxm4-80gb"
        );
        assert_eq!(device_slug(Some("Test GPU")), "test-gpu");
        assert_eq!(device_slug(None), UNKNOWN_DEVICE);
    }

    #[test]
    fn other_names_get_a_bounded_prefix_and_a_hash_of_the_exact_name() {
        let names = [
            "",
            ".",
            "..",
            "///",
            "  ../weird//name ",
            "显卡 一",
            "显卡 二",
            "Radeon™ RX 7900",
            "Radeon® RX 7900",
            "NVIDIA  H100",
            "NVIDIA H100 ",
            "unknown_device",
        ];
        let long = "x".repeat(10_000);
        let mut slugs = std::collections::HashSet::new();
        for name in names.iter().copied().chain([long.as_str()]) {
            let slug = device_slug(Some(name));
            assert!(slug.len() <= 64, "{slug}");
            assert!(
                slug.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'_'),
                "{slug}"
            );
            assert!(!slug.starts_with(['-', '.']), "{slug}");
            assert!(slugs.insert(slug.clone()), "{name:?} -> {slug} is taken");
            // Plain folders have no `_`, so a hashed one can never meet them.
            assert!(slug.contains('_'), "{name:?} -> {slug}");
        }
        assert!(device_slug(Some("Radeon™ RX 7900")).starts_with("radeon-rx-7900_"));
        assert!(device_slug(Some("")).starts_with("device_"));
        assert!(device_slug(Some(&long)).starts_with(&"x".repeat(40)));
        // 65 bytes of a plain name is too long to keep as is.
        assert!(device_slug(Some(&"a".repeat(65))).contains('_'));
        assert_eq!(device_slug(Some(&"a".repeat(64))), "a".repeat(64));
    }

    #[test]
    fn corrupt_files_are_named() {
        let path = Path::new("baselines/gpu/k.json");
        let err = parse(path, b"{not json", "k").unwrap_err().to_string();
        assert!(
            err.starts_with("baselines/gpu/k.json: not a gatekeeper baseline"),
            "{err}"
        );
        let wrong_kernel = br#"{"format":1,"kernel":"other","device":"d","shapes":{}}"#;
        let err = parse(path, wrong_kernel, "k").unwrap_err().to_string();
        assert!(err.contains("expected \"k\""), "{err}");
    }
}
