//! `gatekeeper baseline refresh`: measure and write `baselines/<device>/<kernel>.json`.
//!
//! A kernel with any incorrect or errored shape gets no new baseline at all: wrong or broken
//! code is never timed into the reference. Shapes not measured this time keep their old
//! samples, so `--shapes` refreshes part of a file without losing the rest.

use std::path::PathBuf;

use indexmap::IndexMap;

use super::{harness_for, measure_all, run_settings};
use crate::baseline::{self, BaselineSet, Provenance, ShapeBaseline, Source, Update};
use crate::config::{Config, KernelSpec};
use crate::error::Result;
use crate::exit;
use crate::git::{HeadState, Repo};
use crate::measure::{Harness, Measurement, Outcome};
use crate::outln;
use crate::plan::{self, Job, Selection};
use crate::report::{format_us, neutralise};
use crate::stats::Summary;

#[derive(Debug, Clone, Default)]
pub struct RefreshOptions {
    pub config: PathBuf,
    pub selection: Selection,
}

pub fn run(options: &RefreshOptions) -> Result<u8> {
    let config = Config::load(&options.config)?;
    let jobs = plan::plan(&config, &options.selection)?;
    let source = Source::WorkTree {
        dir: config.baselines_dir(),
    };
    let mut kernel_names: Vec<&str> = jobs.iter().map(|job| job.kernel.name.as_str()).collect();
    kernel_names.dedup();
    // Read (and so validate) the existing files first: a refresh never overwrites a file it
    // could not read, and never spends GPU time before finding out.
    BaselineSet::load(&source, kernel_names.iter().copied())?;
    // Provenance is taken before anything is written, so our own writes do not count as dirt.
    let head = Repo::discover(&config.root)?
        .map(|repo| repo.head_state())
        .transpose()?;
    baseline::check_writable(&config.baselines_dir())?;

    let harness = harness_for(&config, &jobs)?;
    // Before measuring: a file edited during the run must not be stored as what was measured.
    let file_keys: Vec<Option<Result<String, String>>> = config
        .kernels
        .iter()
        .map(|kernel| crate::inputs::key(&config, kernel))
        .collect();
    let outcomes = measure_all(&jobs, &harness as &dyn Harness, &run_settings(&config)).outcomes;
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let mut all_written = true;
    let mut updates = Vec::new();
    for (kernel, files) in config.kernels.iter().zip(file_keys) {
        let measured: Vec<(&Job, &Outcome)> = jobs
            .iter()
            .zip(&outcomes)
            .filter(|(job, _)| job.kernel.name == kernel.name)
            .collect();
        if measured.is_empty() {
            continue;
        }
        if let Some(problems) = wrong_shapes(&measured) {
            all_written = false;
            outln!(
                "{}: baseline NOT written ({})",
                kernel.name,
                neutralise(&problems)
            );
            continue;
        }
        let stamp = Stamp {
            head: head.as_ref(),
            date: &date,
            config: &config,
            kernel,
            inputs_key: crate::inputs::combine(files, harness.served_key(&kernel.name)),
        };
        updates.extend(kernel_updates(&measured, &stamp));
    }
    // All files or none: a problem writing one kernel's file leaves every other file as it was.
    announce(&baseline::write_all(&config.baselines_dir(), &updates)?);
    Ok(if all_written {
        exit::PASS
    } else {
        exit::GATE_FAILED
    })
}

/// Why a kernel gets no new baseline: its incorrect and errored shapes, or `None`.
fn wrong_shapes(measured: &[(&Job, &Outcome)]) -> Option<String> {
    let problems: Vec<String> = measured
        .iter()
        .filter_map(|(job, outcome)| match outcome {
            Err(failure) => Some(format!("{}: error: {}", job.shape, failure.message)),
            Ok(m) if m.correct == Some(false) => Some(format!("{}: incorrect", job.shape)),
            Ok(_) => None,
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// One kernel's new baselines, a file per device the harness named, each shape's summary
/// printed on the way.
fn kernel_updates(measured: &[(&Job, &Outcome)], stamp: &Stamp<'_>) -> Vec<Update> {
    let kernel = stamp.kernel;
    let mut by_device: IndexMap<Option<&str>, Vec<(&str, &Measurement)>> = IndexMap::new();
    for (job, outcome) in measured {
        if let Ok(measurement) = outcome {
            by_device
                .entry(measurement.device.as_deref())
                .or_default()
                .push((job.shape, measurement));
        }
    }
    let mut updates = Vec::new();
    for (device, shapes) in by_device {
        let slug = baseline::device_slug(device);
        for (shape, measurement) in &shapes {
            let summary = Summary::of(&measurement.samples_us);
            outln!(
                "{}/{shape} on {slug}: median {} µs, mean {} ± {} µs, {} samples",
                kernel.name,
                format_us(summary.median),
                format_us(summary.mean),
                format_us(summary.stddev),
                summary.n
            );
        }
        updates.push(Update {
            device: device.map(str::to_string),
            kernel: kernel.name.clone(),
            shapes: shapes
                .iter()
                .map(|(shape, m)| (shape.to_string(), stamp.shape(shape, m)))
                .collect(),
            order: kernel.shapes.clone(),
        });
    }
    updates
}

fn announce(written: &[baseline::Written]) {
    for written in written {
        if let Some(previous) = &written.replaced_device {
            outln!(
                "{}: {} held baselines of {previous:?}, another device whose name shares the folder; they were replaced",
                written.kernel,
                written.path.display()
            );
        }
        outln!(
            "{}: wrote {} ({} of {} shapes refreshed)",
            written.kernel,
            written.path.display(),
            written.refreshed,
            written.total
        );
    }
}

/// The provenance shared by every shape written in one refresh.
struct Stamp<'a> {
    head: Option<&'a HeadState>,
    date: &'a str,
    config: &'a Config,
    kernel: &'a KernelSpec,
    inputs_key: Option<String>,
}

impl Stamp<'_> {
    fn shape(&self, shape: &str, measurement: &Measurement) -> ShapeBaseline {
        ShapeBaseline {
            params: self.config.shapes[shape].clone(),
            samples_us: measurement.samples_us.clone(),
            provenance: Provenance {
                commit: self.head.and_then(|h| h.commit.clone()),
                dirty: self.head.map(|h| h.dirty),
                date: self.date.to_string(),
                gatekeeper_version: env!("CARGO_PKG_VERSION").to_string(),
                warmup: self.config.timing.warmup,
                samples: self.config.timing.samples,
                seed: self.config.timing.seed,
                kernel: serde_json::to_value(self.kernel).unwrap_or_default(),
                measurement: measurement.details.clone(),
                inputs_key: self.inputs_key.clone(),
            },
        }
    }
}
