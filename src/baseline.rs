//! The baseline store: `baselines/<device>/<kernel>.json`, raw samples plus provenance, kept in
//! git beside the kernels they describe.
//!
//! Baselines are keyed by device model so a run on one GPU is never compared, silently, with
//! samples from another. They are read from the working tree or from any ref's tree, and
//! written atomically: an interrupted refresh leaves the old file or the new one, never half.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::config::{KernelSpec, Params};
use crate::error::{Error, Result};
use crate::git::{Repo, ResolvedRef};

/// Version of the baseline file layout.
pub const FORMAT: u32 = 1;
/// Device folder used when a harness does not report its device.
pub const UNKNOWN_DEVICE: &str = "unknown-device";

/// One kernel's baselines on one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    pub format: u32,
    pub kernel: String,
    /// The device name as the harness reported it.
    pub device: String,
    pub shapes: IndexMap<String, ShapeBaseline>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeBaseline {
    pub params: Params,
    pub samples_us: Vec<f64>,
    pub provenance: Provenance,
}

/// Where a baseline came from, so a reviewer can tell whether to trust it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// The kernel's entry in gates.yaml at the time.
    pub kernel: KernelSpec,
    /// What the harness reported about the measurement (device clocks, driver, batch size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurement: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Turns a device name into a folder name: `NVIDIA H100 80GB HBM3` → `nvidia-h100-80gb-hbm3`.
pub fn device_slug(device: Option<&str>) -> String {
    let Some(device) = device else {
        return UNKNOWN_DEVICE.to_string();
    };
    let mut slug = String::new();
    for c in device.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    if slug.is_empty() {
        UNKNOWN_DEVICE.to_string()
    } else {
        slug.to_string()
    }
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
            Source::Git { resolved, .. } => {
                let id = resolved.commit.to_string();
                format!("{} ({})", resolved.matched, &id[..id.len().min(12)])
            }
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
                    if entry.path().is_dir() {
                        devices.push(entry.file_name().to_string_lossy().into_owned());
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
                let mut devices = repo.list_dirs(resolved.commit, dir)?;
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
                let bytes = repo.read_file(resolved.commit, &path)?;
                let shown = PathBuf::from(format!("{}:{}", resolved.matched, path.display()));
                Ok(bytes.map(|bytes| (shown, bytes)))
            }
        }
    }
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

    /// The samples for one kernel × shape on one device, or why there are none.
    pub fn shape(
        &self,
        device_slug: &str,
        kernel: &str,
        shape: &str,
    ) -> std::result::Result<&ShapeBaseline, String> {
        if let Some(found) = self
            .get(device_slug, kernel)
            .and_then(|file| file.shapes.get(shape))
        {
            return Ok(found);
        }
        let others: Vec<&str> = self
            .devices
            .iter()
            .filter(|device| *device != device_slug && self.get(device, kernel).is_some())
            .map(String::as_str)
            .collect();
        Err(if others.is_empty() {
            format!("no baseline for {kernel}/{shape} on {device_slug}")
        } else {
            format!(
                "no baseline for {kernel}/{shape} on {device_slug}; baselines from other devices are never compared ({})",
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

/// Writes `file` to `<dir>/<device slug>/<kernel>.json` through a temporary file in the same
/// folder and an atomic rename.
pub fn write(dir: &Path, device_slug: &str, file: &BaselineFile) -> Result<PathBuf> {
    let folder = dir.join(device_slug);
    std::fs::create_dir_all(&folder).map_err(|err| Error::io(&folder, err))?;
    let path = folder.join(format!("{}.json", file.kernel));
    let mut text = serde_json::to_string_pretty(file).map_err(|err| Error::Corrupt {
        path: path.clone(),
        message: format!("cannot encode baseline: {err}"),
    })?;
    text.push('\n');
    atomic::write(&path, text.as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_plain_folder_names() {
        assert_eq!(
            device_slug(Some("NVIDIA H100 80GB HBM3")),
            "nvidia-h100-80gb-hbm3"
        );
        assert_eq!(device_slug(Some("  ../weird//name ")), "weird-name");
        assert_eq!(device_slug(Some("///")), UNKNOWN_DEVICE);
        assert_eq!(device_slug(None), UNKNOWN_DEVICE);
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
