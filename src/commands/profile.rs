//! Gate 4 — profiling. `gatekeeper profile` runs every selected `cuda:` kernel × shape once
//! under Nsight Compute and prints why each is as fast as it is; `gatekeeper check` runs the
//! same gate for kernels whose gates.yaml entry has a `profile` block, after timing.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use super::{harness_for, run_settings};
use crate::atomic;
use crate::baseline::device_slug;
use crate::config::{Config, KernelProfile};
use crate::error::{Error, Result};
use crate::exit;
use crate::measure::{CommandHarness, Outcome, RunSettings};
use crate::plan::{self, Job, Selection};
use crate::profile::ncu::{Profiled, Profiler};
use crate::profile::{self, BoundClass, MetricValue, Resources, ShapeProfile};
use crate::record::ShapeResult;
use crate::report::{neutralise, profile_table, ProfileRow};
use crate::{errln, output};

#[derive(Debug, Clone, Default)]
pub struct ProfileOptions {
    pub config: PathBuf,
    pub selection: Selection,
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
}

/// One row of `gatekeeper profile --json`.
#[derive(Debug, Serialize)]
pub struct ProfiledShape<'a> {
    pub kernel: &'a str,
    pub shape: &'a str,
    pub device: Option<String>,
    /// Why the shape could not be profiled at all (compile error, crash).
    pub error: Option<String>,
    pub profile: Option<ShapeProfile>,
}

impl ProfiledShape<'_> {
    /// Its row in gate 4's table.
    fn row(&self) -> ProfileRow<'_> {
        ProfileRow {
            kernel: self.kernel,
            shape: self.shape,
            profile: self.profile.as_ref(),
            error: self.error.as_deref(),
        }
    }
}

/// The metrics to ask for: every built-in and configured name, plus each target's. Names
/// the device lacks are dropped, unless a target needs them: that is a configuration error.
fn metrics_for(
    config: &Config,
    profiler: &Profiler,
    jobs: &[Job],
) -> Result<Vec<(String, String)>> {
    let names = profile::metric_names(&config.profile);
    let metrics: Vec<(String, String)> = names
        .iter()
        .filter_map(|name| {
            profile::metric_name(name, &config.profile).map(|m| (name.clone(), m.to_string()))
        })
        .collect();
    let unknown: Vec<(String, String)> = profiler.unknown(&metrics).into_iter().cloned().collect();
    let mut problems = Vec::new();
    for job in jobs {
        let Some(spec) = &job.kernel.profile else {
            continue;
        };
        for (name, metric) in &unknown {
            if spec.targets.contains_key(name) {
                let problem = format!(
                    "kernel {}: profile.targets.{name}: this device's Nsight Compute ({}) has no metric {metric:?} (see `ncu --query-metrics`)",
                    job.kernel.name,
                    profiler.path().display()
                );
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Config {
            path: config.path.clone(),
            problems,
        });
    }
    Ok(metrics
        .into_iter()
        .filter(|m| !unknown.contains(m))
        .collect())
}

/// The runner's static resources from a report's details.
fn resources_of(outcome: &Outcome) -> Vec<Resources> {
    outcome
        .as_ref()
        .ok()
        .and_then(|m| m.details.as_ref()?.resources.clone())
        .unwrap_or_default()
}

/// Gate 4 inside `check`: for kernels with a `profile` block, the static limits from the
/// runner's report, and, when they have targets and `ncu` is here, one profiled launch.
/// Returns the seconds spent under the profiler, by kernel.
pub fn attach(
    config: &Config,
    jobs: &[Job],
    outcomes: &[Outcome],
    results: &mut [ShapeResult],
) -> Result<IndexMap<String, f64>> {
    let mut spent: IndexMap<String, f64> = IndexMap::new();
    let wanted: Vec<usize> = (0..jobs.len())
        .filter(|&i| jobs[i].kernel.cuda.is_some() && jobs[i].kernel.profile.is_some())
        .collect();
    if wanted.is_empty() {
        return Ok(spent);
    }
    let needs_ncu = wanted.iter().any(|&i| {
        jobs[i]
            .kernel
            .profile
            .as_ref()
            .is_some_and(|p| !p.targets.is_empty())
    });
    let profiler = if needs_ncu {
        match Profiler::find() {
            Ok(profiler) => Some(Ok(profiler)),
            Err(why) => {
                errln!(
                    "gate 4: {why}; profiling targets are not checked, the other gates still run"
                );
                Some(Err(why))
            }
        }
    } else {
        None
    };
    let metrics = match &profiler {
        Some(Ok(profiler)) => metrics_for(config, profiler, jobs)?,
        _ => Vec::new(),
    };
    let harness = harness_for(config, jobs)?;
    let settings = run_settings(config);
    // One ncu session per kernel for the shapes that passed the earlier gates.
    let mut sessions = match &profiler {
        Some(Ok(profiler)) => {
            let ready: Vec<usize> = wanted
                .iter()
                .copied()
                .filter(|&i| {
                    !results[i].verdict.is_fatal()
                        && jobs[i]
                            .kernel
                            .profile
                            .as_ref()
                            .is_some_and(|p| !p.targets.is_empty())
                })
                .collect();
            let label = "[gate 4] ";
            sessions(
                profiler, &harness, jobs, &ready, &metrics, &settings, label, &mut spent,
            )
        }
        _ => HashMap::new(),
    };
    for i in wanted {
        let (job, outcome) = (&jobs[i], &outcomes[i]);
        let Some(spec) = &job.kernel.profile else {
            continue;
        };
        let device = outcome.as_ref().ok().and_then(|m| m.device.clone());
        let measured: std::result::Result<IndexMap<String, MetricValue>, String> =
            match (&profiler, spec.targets.is_empty()) {
                (_, true) => Err("no targets to check".to_string()),
                (Some(Err(why)), _) => Err(why.clone()),
                (None, _) => Err("not profiled".to_string()),
                (Some(Ok(profiler)), _) => {
                    if results[i].verdict.is_fatal() {
                        Err("not profiled: the shape did not pass the earlier gates".to_string())
                    } else if let Some((_, values)) = sessions.remove(&i) {
                        Ok(values)
                    } else {
                        errln!("[gate 4] {}/{}: ncu", job.kernel.name, job.shape);
                        let begun = std::time::Instant::now();
                        let profiled = profiler
                            .profile(
                                &harness.workdir,
                                &harness.cuda_runner,
                                job,
                                &metrics,
                                &settings,
                            )
                            .1;
                        *spent.entry(job.kernel.name.clone()).or_default() +=
                            begun.elapsed().as_secs_f64();
                        profiled
                    }
                }
            };
        results[i].profile = Some(build(
            config,
            spec,
            job,
            device.as_deref(),
            resources_of(outcome),
            measured,
        ));
    }
    Ok(spent)
}

fn build(
    config: &Config,
    spec: &KernelProfile,
    job: &Job,
    device: Option<&str>,
    resources: Vec<Resources>,
    measured: std::result::Result<IndexMap<String, MetricValue>, String>,
) -> ShapeProfile {
    let peaks = config.profile.peaks.get(&device_slug(device));
    profile::assemble(spec, job.params, peaks, resources, measured)
}

/// Gate 4's evidence for one kernel's `jobs` (one kernel, all its shapes) in one ncu
/// session: class, floor, metrics and static resources per shape. `None` when there is no ncu
/// or the session fails (the reason is printed): the caller goes on without it.
pub fn evidence(
    config: &Config,
    harness: &CommandHarness,
    jobs: &[Job],
) -> Option<Vec<ShapeProfile>> {
    let first = jobs.first()?;
    first.kernel.cuda.as_ref()?;
    let profiler = match Profiler::find() {
        Ok(profiler) => profiler,
        Err(why) => {
            errln!("{}: no gate-4 evidence: {why}", first.kernel.name);
            return None;
        }
    };
    let metrics = metrics_for(config, &profiler, jobs).ok()?;
    let session: Vec<&Job> = jobs.iter().collect();
    let settings = run_settings(config);
    match profiler.profile_session(
        &harness.workdir,
        &harness.cuda_runner,
        &session,
        &metrics,
        &settings,
    ) {
        Ok(profiled) => {
            let empty = KernelProfile::default();
            let spec = first.kernel.profile.as_ref().unwrap_or(&empty);
            Some(
                jobs.iter()
                    .zip(profiled)
                    .map(|(job, (measured, values))| {
                        let resources = measured
                            .details
                            .as_ref()
                            .and_then(|d| d.resources.clone())
                            .unwrap_or_default();
                        build(
                            config,
                            spec,
                            job,
                            measured.device.as_deref(),
                            resources,
                            Ok(values),
                        )
                    })
                    .collect(),
            )
        }
        Err(why) => {
            errln!(
                "{}: no gate-4 evidence: {}",
                first.kernel.name,
                neutralise(&why)
            );
            None
        }
    }
}

/// `indices` into `jobs` profiled in one ncu session per kernel: each shape's runner report
/// and metrics, by index. A kernel whose session did not work is said so on stderr (after
/// `label`) and left out, for the caller to profile shape by shape. The seconds each kernel's
/// session took are added to `spent`.
#[allow(clippy::too_many_arguments)]
fn sessions(
    profiler: &Profiler,
    harness: &CommandHarness,
    jobs: &[Job],
    indices: &[usize],
    metrics: &[(String, String)],
    settings: &RunSettings,
    label: &str,
    spent: &mut IndexMap<String, f64>,
) -> HashMap<usize, Profiled> {
    let mut profiled_by_job = HashMap::new();
    for (kernel, indices) in by_kernel(jobs, indices) {
        let begun = std::time::Instant::now();
        let session: Vec<&Job> = indices.iter().map(|&i| &jobs[i]).collect();
        errln!(
            "{label}{kernel}: {} shape(s) in one ncu session",
            session.len()
        );
        match profiler.profile_session(
            &harness.workdir,
            &harness.cuda_runner,
            &session,
            metrics,
            settings,
        ) {
            Ok(profiled) => profiled_by_job.extend(indices.into_iter().zip(profiled)),
            Err(why) => errln!(
                "{label}{kernel}: one session did not work ({}); a session per shape",
                neutralise(&why)
            ),
        }
        *spent.entry(kernel.to_string()).or_default() += begun.elapsed().as_secs_f64();
    }
    profiled_by_job
}

/// `indices` into `jobs`, grouped by kernel in order of first appearance.
fn by_kernel<'j>(jobs: &'j [Job], indices: &[usize]) -> Vec<(&'j str, Vec<usize>)> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for &i in indices {
        let name = jobs[i].kernel.name.as_str();
        match groups.iter_mut().find(|(kernel, _)| *kernel == name) {
            Some((_, group)) => group.push(i),
            None => groups.push((name, vec![i])),
        }
    }
    groups
}

/// `gatekeeper profile`.
pub fn run(options: &ProfileOptions) -> Result<u8> {
    let config = Config::load(&options.config)?;
    let jobs: Vec<Job> = plan::plan(&config, &options.selection)?
        .into_iter()
        .filter(|job| job.kernel.cuda.is_some())
        .collect();
    if jobs.is_empty() {
        return Err(Error::Usage(
            "nothing to profile: `gatekeeper profile` runs `cuda:` kernels, and the selection has none".to_string(),
        ));
    }
    super::prepare_reports([options.json.as_deref(), options.markdown.as_deref()])?;
    let harness = harness_for(&config, &jobs)?;
    let profiler = Profiler::find();
    let metrics = match &profiler {
        Ok(profiler) => metrics_for(&config, profiler, &jobs)?,
        Err(why) => {
            errln!("{why}; showing the static resources only");
            Vec::new()
        }
    };
    let rows = profile_all(&config, &jobs, &harness, profiler.as_ref(), &metrics);

    // Files first: a reader who stops reading stdout (`| head`) must not cost them. One that
    // cannot be written fails the command after the findings show.
    let written = write_reports(options, &rows);
    let (text, failed) = findings(&rows, profiler.as_ref().err());
    // Error messages come from the runner and the compiler: neutralised for the terminal.
    output::print(&neutralise(&text));
    written?;
    let errors = rows.iter().filter(|r| r.error.is_some()).count();
    Ok(if failed > 0 || errors > 0 {
        exit::GATE_FAILED
    } else {
        exit::PASS
    })
}

/// Runs every job once: under `ncu` where there is one, else bare for the static resources.
fn profile_all<'j>(
    config: &Config,
    jobs: &'j [Job],
    harness: &CommandHarness,
    profiler: std::result::Result<&Profiler, &String>,
    metrics: &[(String, String)],
) -> Vec<ProfiledShape<'j>> {
    let settings: RunSettings = run_settings(config);
    let empty = KernelProfile::default();
    let mut rows = Vec::new();
    // One ncu session per kernel; shape by shape where a session does not work.
    let mut sessions = match profiler {
        Ok(profiler) => {
            let all: Vec<usize> = (0..jobs.len()).collect();
            let mut spent = IndexMap::new();
            sessions(
                profiler, harness, jobs, &all, metrics, &settings, "", &mut spent,
            )
        }
        Err(_) => HashMap::new(),
    };
    for (index, job) in jobs.iter().enumerate() {
        if let Some((measured, values)) = sessions.remove(&index) {
            rows.push(profiled_shape(
                config,
                job,
                &empty,
                (Ok(measured), Ok(values)),
            ));
            continue;
        }
        errln!(
            "[{}/{}] {}/{}",
            index + 1,
            jobs.len(),
            job.kernel.name,
            job.shape
        );
        let (outcome, measured) = match profiler {
            Ok(profiler) => profiler.profile(
                &harness.workdir,
                &harness.cuda_runner,
                job,
                metrics,
                &settings,
            ),
            Err(why) => {
                // Without ncu the runner still reports the static resources of one launch.
                let runner = crate::profile::ncu::bare_runner(
                    &harness.workdir,
                    &harness.cuda_runner,
                    job,
                    &settings,
                );
                (runner, Err(why.clone()))
            }
        };
        rows.push(profiled_shape(config, job, &empty, (outcome, measured)));
    }
    rows
}

/// One shape's row of `gatekeeper profile`, from the profiled run and its metrics.
fn profiled_shape<'j>(
    config: &Config,
    job: &'j Job,
    empty: &KernelProfile,
    (outcome, measured): (
        Outcome,
        std::result::Result<IndexMap<String, MetricValue>, String>,
    ),
) -> ProfiledShape<'j> {
    let spec = job.kernel.profile.as_ref().unwrap_or(empty);
    let device = outcome.as_ref().ok().and_then(|m| m.device.clone());
    let error = outcome.as_ref().err().map(|f| f.message.clone());
    let profile = error.is_none().then(|| {
        build(
            config,
            spec,
            job,
            device.as_deref(),
            resources_of(&outcome),
            measured,
        )
    });
    ProfiledShape {
        kernel: &job.kernel.name,
        shape: job.shape,
        device,
        error,
        profile,
    }
}

/// The terminal's text: the table, each shape's class, errors and missed limits, and a summary
/// line; with the number of limits missed.
fn findings(rows: &[ProfiledShape], not_profiled: Option<&String>) -> (String, usize) {
    let table = profile_table(rows.iter().map(ProfiledShape::row));
    let mut text = format!("{table}\n");
    let mut failed = 0;
    for row in rows {
        if let Some(error) = &row.error {
            let _ = writeln!(text, "{}/{}: error: {error}", row.kernel, row.shape);
        }
        let Some(profile) = &row.profile else {
            continue;
        };
        if let Some(evidence) = &profile.evidence {
            let _ = writeln!(
                text,
                "{}/{}: {}: {evidence}",
                row.kernel,
                row.shape,
                profile.class.map_or("?", BoundClass::as_str)
            );
        }
        for check in profile.failed_checks() {
            failed += 1;
            let _ = writeln!(
                text,
                "{}/{}: FAIL {}",
                row.kernel,
                row.shape,
                check.describe()
            );
        }
    }
    if let Some(why) = not_profiled {
        let _ = writeln!(text, "metrics not profiled: {why}");
    }
    let errors = rows.iter().filter(|r| r.error.is_some()).count();
    let _ = writeln!(
        text,
        "gatekeeper profile: {} shapes, {failed} limits missed, {errors} errors",
        rows.len()
    );
    (text, failed)
}

/// `--json` and `--markdown`, where asked for.
fn write_reports(options: &ProfileOptions, rows: &[ProfiledShape]) -> Result<()> {
    if let Some(path) = &options.json {
        let text =
            serde_json::to_string_pretty(rows).map_err(|err| Error::Usage(err.to_string()))?;
        write(path, &(text + "\n"))?;
    }
    if let Some(path) = &options.markdown {
        write(
            path,
            &crate::report::profile_markdown(rows.iter().map(ProfiledShape::row)),
        )?;
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|err| Error::io(parent, err))?;
    }
    atomic::write(path, text.as_bytes())
}
