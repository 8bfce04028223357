//! `gatekeeper check`: measure every kernel × shape and judge it against the baselines.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{harness_for, measure_all, run_settings};
use crate::atomic;
use crate::baseline::{self, BaselineSet, Source};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::exit;
use crate::git::Repo;
use crate::measure::Harness;
use crate::plan::{self, Selection};
use crate::record::{self, BaselineLookup, PassFail, RunRecord, ShapeResult};
use crate::report::{Exporter, JUnit, Json, Markdown, Terminal};

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub config: PathBuf,
    /// Read baselines from this ref's tree instead of the working tree.
    pub against: Option<String>,
    pub selection: Selection,
    pub json: Option<PathBuf>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
}

pub fn run(options: &CheckOptions) -> Result<u8> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let config = Config::load(&options.config)?;
    let jobs = plan::plan(&config, &options.selection)?;
    let reports = [
        (&options.json, &Json as &dyn Exporter),
        (&options.junit, &JUnit),
        (&options.markdown, &Markdown),
    ];
    // Find an unwritable report path now, not after the GPU time is spent.
    for path in reports.iter().filter_map(|(path, _)| path.as_deref()) {
        prepare_report_path(path)?;
    }
    let repo = Repo::discover(&config.root)?;
    let head = repo.as_ref().map(Repo::head_state).transpose()?;
    let source = baseline_source(&config, repo, options.against.as_deref())?;
    let mut kernels: Vec<&str> = jobs.iter().map(|job| job.kernel.name.as_str()).collect();
    kernels.dedup();
    let baselines = BaselineSet::load(&source, kernels)?;

    let harness = harness_for(&config, &jobs)?;
    let outcomes = measure_all(&jobs, &harness as &dyn Harness, &run_settings(&config));

    let results: Vec<ShapeResult> = jobs
        .iter()
        .zip(&outcomes)
        .map(|(job, outcome)| {
            ShapeResult::judge(
                &job.kernel.name,
                job.shape,
                outcome,
                |device| {
                    let slug = baseline::device_slug(device);
                    let found = match baselines.shape(&slug, &job.kernel.name, job.shape) {
                        Ok(found) => found,
                        Err(why) => return BaselineLookup::Missing(why),
                    };
                    if found.params != *job.params {
                        return BaselineLookup::Missing(format!(
                            "the baseline for {}/{} was measured with other parameters ({}); refresh it",
                            job.kernel.name,
                            job.shape,
                            describe_params(&found.params)
                        ));
                    }
                    if let Some(why) = method_changed(found, outcome) {
                        return BaselineLookup::Missing(why);
                    }
                    BaselineLookup::Found {
                        samples_us: &found.samples_us,
                        commit: found.provenance.commit.as_deref(),
                    }
                },
                &config.gate,
            )
        })
        .collect();
    let mut results = results;
    record::attach_peers(&mut results, |kernel| {
        config
            .kernel(kernel)
            .map(|k| k.peers.clone())
            .unwrap_or_default()
    });
    let kernel_results = record::decide_kernels(&results, &config.gate);
    let passed = kernel_results.iter().all(|k| k.verdict.passed());
    let run = RunRecord {
        format: record::FORMAT,
        gatekeeper_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_s: started.elapsed().as_secs_f64(),
        config: config.path.display().to_string(),
        commit: head.as_ref().and_then(|h| h.commit.clone()),
        dirty: head.as_ref().map(|h| h.dirty),
        baselines_from: source.describe(),
        gate: config.gate.clone(),
        timing: config.timing.clone(),
        verdict: PassFail::from_passed(passed),
        kernels: kernel_results,
        results,
    };

    // The verdict is shown first, so a failing write below cannot hide it.
    print!("{}", Terminal.render(&run));
    let record_path = save_run_record(&config, &run, &started_at)?;
    println!("run record: {}", record_path.display());
    for (path, exporter) in reports {
        if let Some(path) = path {
            atomic::write(path, exporter.render(&run).as_bytes())?;
        }
    }
    Ok(if passed {
        exit::PASS
    } else {
        exit::GATE_FAILED
    })
}

fn baseline_source(config: &Config, repo: Option<Repo>, against: Option<&str>) -> Result<Source> {
    let Some(reference) = against else {
        return Ok(Source::WorkTree {
            dir: config.baselines_dir(),
        });
    };
    let Some(repo) = repo else {
        return Err(Error::Git(format!(
            "--against {reference}: {} is not inside a git repository",
            config.root.display()
        )));
    };
    let resolved = repo.resolve(reference)?;
    let dir = repo.relative(&config.root)?.join("baselines");
    Ok(Source::Git {
        repo,
        resolved,
        dir,
    })
}

fn save_run_record(
    config: &Config,
    run: &RunRecord,
    started_at: &chrono::DateTime<chrono::Utc>,
) -> Result<PathBuf> {
    let dir = config.runs_dir();
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(|err| Error::io(&dir, err))?;
        // Run records are local history, not source: keep them out of `git status` so they do
        // not mark the next baseline as measured on a dirty tree.
        atomic::write(&dir.join(".gitignore"), b"*\n")?;
    }
    let commit = run
        .commit
        .as_deref()
        .map(|c| &c[..c.len().min(12)])
        .unwrap_or("no-commit");
    let name = format!("{}-{commit}.json", started_at.format("%Y%m%dT%H%M%S%.3fZ"));
    let path = dir.join(name);
    atomic::write(&path, Json.render(run).as_bytes())?;
    Ok(path)
}

/// Creates the report's folder and refuses a path that is a folder itself.
fn prepare_report_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{}: is a folder; name a file for the report",
            path.display()
        )));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| Error::io(parent, err))?;
    }
    Ok(())
}

/// Why a baseline timed one way cannot judge a run timed another, if it was.
fn method_changed(
    found: &crate::baseline::ShapeBaseline,
    outcome: &crate::measure::Outcome,
) -> Option<String> {
    let method = |details: Option<&serde_json::Map<String, serde_json::Value>>| {
        details
            .and_then(|d| d.get("method"))
            .and_then(|m| m.as_str())
            .map(str::to_string)
    };
    let before = method(found.provenance.measurement.as_ref())?;
    let now = method(outcome.as_ref().ok()?.details.as_ref())?;
    (before != now).then(|| {
        format!("the baseline was timed as {before}, this run as {now} (the kernel is near the batching threshold); refresh the baseline")
    })
}

fn describe_params(params: &crate::config::Params) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}
