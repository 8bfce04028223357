//! `gatekeeper check`: measure every kernel × shape and judge it against the baselines.

use std::path::PathBuf;
use std::time::Instant;

use super::ab::{self, AbScope};
use super::{harness_for, measure_all, run_settings, show, ReportPaths};
use crate::atomic;
use crate::baseline::{BaselineSet, Source};
use crate::config::{Config, Confirm};
use crate::error::{Error, Result};
use crate::exit;
use crate::git::Repo;
use crate::measure::{CommandHarness, Details, Harness, Outcome};
use crate::outln;
use crate::plan::{self, Job, Selection};
use crate::record::{self, BaselineLookup, KernelTime, PassFail, RunRecord, ShapeResult};
use crate::report::{Exporter, Json};
use indexmap::IndexMap;

#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub config: PathBuf,
    /// Read baselines from this ref's tree instead of the working tree.
    pub against: Option<String>,
    /// Read the ref's tip rather than its merge-base with HEAD.
    pub against_tip: bool,
    /// Measure every shape by A/B against the base build (`--ab`).
    pub ab: bool,
    /// Measure kernels whose inputs are unchanged too (`--all`).
    pub all: bool,
    pub selection: Selection,
    pub reports: ReportPaths,
}

pub fn run(options: &CheckOptions) -> Result<u8> {
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let config = Config::load(&options.config)?;
    let jobs = plan::plan(&config, &options.selection)?;
    let whole_plan = plan::plan(
        &config,
        &Selection {
            shard: None,
            ..options.selection.clone()
        },
    )?
    .len();
    // Find an unwritable report path now, not after the GPU time is spent.
    options.reports.prepare()?;
    let repo = Repo::discover(&config.root)?;
    let head = repo.as_ref().map(Repo::head_state).transpose()?;
    let scope = ab_scope(&config, options)?;
    let source = baseline_source(&config, repo, options)?;
    let mut kernels: Vec<&str> = jobs.iter().map(|job| job.kernel.name.as_str()).collect();
    kernels.dedup();
    let baselines = BaselineSet::load(&source, kernels)?;

    let harness = harness_for(&config, &jobs)?;
    // Kernels whose inputs are those of their --against baseline are not measured again.
    let reused = if options.against.is_some() && !options.all {
        reusable(&config, &jobs, &baselines, &source, &harness)
    } else {
        Vec::new()
    };
    let jobs: Vec<Job> = jobs
        .into_iter()
        .filter(|job| !reused.iter().any(|r| r.job == job.index))
        .collect();
    let measured = measure_all(&jobs, &harness as &dyn Harness, &run_settings(&config));
    let outcomes = measured.outcomes;

    let mut results = judge_all(&config, &jobs, &outcomes, &baselines);
    for (result, seconds) in results.iter_mut().zip(&measured.seconds) {
        result.wall_s = Some(*seconds);
    }
    // Doubtful (or, with --ab, all) shapes measured again beside the base build.
    let (ab_base, base_spent) =
        measure_beside_base(&config, &source, scope, &jobs, &harness, &mut results)?;
    // Gate 4, after every timing so the profiler's replays disturb none of them.
    let profiling = super::profile::attach(&config, &jobs, &outcomes, &mut results)?;
    let time = time_spent(
        harness.spent(),
        base_spent,
        &jobs,
        &outcomes,
        &results,
        &profiling,
    );
    results.extend(reused);
    results.sort_by_key(|result| result.job);
    let mut run = RunRecord {
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_s: started.elapsed().as_secs_f64(),
        commit: head.as_ref().and_then(|h| h.commit.clone()),
        dirty: head.as_ref().map(|h| h.dirty),
        baselines_from: source.describe(),
        ab_base,
        time,
        shard: options.selection.shard.map(|shard| shard.to_string()),
        plan_id: plan_id(&config, options),
        plan_jobs: whole_plan,
        results,
        ..empty_record(&config)
    };
    run.gate.confirm = Some(if scope == AbScope::Off {
        Confirm::None
    } else {
        Confirm::Ab
    });
    run.attach_peers();
    run.decide();

    let record_path = save_run_record(&config, &run, &started_at)?;
    let written = options.reports.write(&run);
    if std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") {
        for annotation in crate::report::github_annotations(&run, &config.root) {
            outln!("{annotation}");
        }
    }
    let code = show(&run, written)?;
    outln!("run record: {}", record_path.display());
    if run.shard.is_some() {
        // A slice cannot apply the ≥ N-shapes rule to kernels split across slices.
        outln!(
            "shard {}: the gate is decided by `gatekeeper merge`",
            options
                .selection
                .shard
                .map(|s| s.to_string())
                .unwrap_or_default()
        );
        return Ok(exit::PASS);
    }
    Ok(code)
}

/// Judges every measured job against its baseline: correctness first, then timing.
fn judge_all(
    config: &Config,
    jobs: &[Job],
    outcomes: &[Outcome],
    baselines: &BaselineSet,
) -> Vec<ShapeResult> {
    jobs.iter()
        .zip(outcomes)
        .map(|(job, outcome)| {
            let mut result = ShapeResult::judge(
                &job.kernel.name,
                job.shape,
                outcome,
                |device| baseline_for(baselines, job, outcome, device),
                &config.gate,
            );
            result.job = job.index;
            if let Some(measured) = outcome.as_ref().ok().filter(|m| !m.samples_us.is_empty()) {
                result.samples_requested = Some(config.timing.samples);
                result.samples_returned = Some(measured.samples_us.len());
            }
            result
        })
        .collect()
}

/// The baseline one job is compared with, or why there is none to compare: none on this
/// device, one measured with other parameters, or one timed another way.
fn baseline_for<'b>(
    baselines: &'b BaselineSet,
    job: &Job,
    outcome: &Outcome,
    device: Option<&str>,
) -> BaselineLookup<'b> {
    let found = match baselines.shape(device, &job.kernel.name, job.shape) {
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
}

/// A run record of this configuration with no results yet, and the run's facts left empty.
fn empty_record(config: &Config) -> RunRecord {
    RunRecord {
        format: record::FORMAT,
        gatekeeper_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: String::new(),
        duration_s: 0.0,
        config: config.path.display().to_string(),
        commit: None,
        dirty: None,
        baselines_from: String::new(),
        ab_base: None,
        time: indexmap::IndexMap::new(),
        shard: None,
        plan_id: String::new(),
        plan_jobs: 0,
        gate: config.gate.clone(),
        timing: config.timing.clone(),
        peers: config
            .kernels
            .iter()
            .filter(|k| !k.peers.is_empty())
            .map(|k| (k.name.clone(), k.peers.clone()))
            .collect(),
        verdict: PassFail::Pass,
        kernels: Vec::new(),
        results: Vec::new(),
    }
}

/// Measures the shapes `scope` chooses beside the base build, and settles each by it. Returns
/// the base as reports name it (none when no shape needed it) and the base harness's process
/// counts. A base that cannot be exported leaves every result as measured, with the reason.
fn measure_beside_base(
    config: &Config,
    source: &Source,
    scope: AbScope,
    jobs: &[Job],
    harness: &CommandHarness,
    results: &mut [ShapeResult],
) -> Result<(Option<String>, IndexMap<String, KernelTime>)> {
    let chosen = ab::chosen(results, scope, &config.gate);
    let Source::Git { resolved, .. } = source else {
        return Ok((None, indexmap::IndexMap::new()));
    };
    if chosen.is_empty() {
        return Ok((None, indexmap::IndexMap::new()));
    }
    let mut kernels: Vec<&str> = chosen
        .iter()
        .map(|&at| jobs[at].kernel.name.as_str())
        .collect();
    kernels.dedup();
    let repo = Repo::discover(&config.root)?.ok_or_else(|| {
        Error::Git(format!(
            "{} is no longer in a git repository",
            config.root.display()
        ))
    })?;
    match ab::Base::build(&repo, resolved.clone(), config, &kernels) {
        Ok(base) => {
            let settings = run_settings(config);
            ab::settle(
                results,
                jobs,
                &chosen,
                harness,
                &base,
                &settings,
                &config.gate,
            );
            let spent = base
                .harness()
                .map(CommandHarness::spent)
                .unwrap_or_default();
            Ok((Some(resolved.describe()), spent))
        }
        // Everything is measured by now: say why A/B could not run, and keep the results.
        Err(err) => {
            for &at in &chosen {
                let why = format!("the base could not be built: {err}");
                ab::apply(&mut results[at], ab::AbRun::BaseFailed(why));
            }
            Ok((None, indexmap::IndexMap::new()))
        }
    }
}

/// The results of the kernels that need no measuring: every selected shape has a baseline, on
/// the device the kernel's harness names before it measures anything (a protocol v2 ready
/// line), measured with the same `inputs:` key and parameters.
fn reusable(
    config: &Config,
    jobs: &[Job],
    baselines: &BaselineSet,
    source: &Source,
    harness: &CommandHarness,
) -> Vec<ShapeResult> {
    // Kernels that can have a key: files named in `inputs:`, or a v2 harness that may name
    // one when ready (the CUDA runner always does).
    let keyed: Vec<&Job> = jobs
        .iter()
        .filter(|job| {
            !job.kernel.inputs.is_empty()
                || job.kernel.cuda.is_some()
                || job.kernel.protocol == Some(2)
        })
        .collect();
    if keyed.is_empty() {
        return Vec::new();
    }
    let mut kernels: Vec<&crate::config::KernelSpec> = keyed.iter().map(|job| job.kernel).collect();
    kernels.dedup_by_key(|kernel| &kernel.name);
    // The files first: one edited while the harnesses start must not look unchanged.
    let file_keys: Vec<_> = kernels
        .iter()
        .map(|kernel| crate::inputs::key(config, kernel))
        .collect();
    harness.prepare(
        &keyed.iter().map(|job| (*job).clone()).collect::<Vec<_>>(),
        &run_settings(config),
    );
    let mut reused = Vec::new();
    for (kernel, files) in kernels.into_iter().zip(file_keys) {
        let Some(key) = crate::inputs::combine(files, harness.served_key(&kernel.name)) else {
            continue;
        };
        let Some(device) = harness.served_device(&kernel.name) else {
            continue;
        };
        let shapes: Option<Vec<ShapeResult>> = keyed
            .iter()
            .filter(|job| job.kernel.name == kernel.name)
            .map(|job| {
                let found = baselines.shape(Some(&device), &kernel.name, job.shape).ok()?;
                let same = found.params == *job.params
                    && found.provenance.inputs_key.as_deref() == Some(key.as_str());
                same.then(|| ShapeResult {
                    kernel: kernel.name.clone(),
                    shape: job.shape.to_string(),
                    job: job.index,
                    device: Some(device.clone()),
                    reused: true,
                    message: Some(format!(
                        "not measured: its inputs (key {}) are those of its baseline in {}; `check --all` measures it",
                        // A harness names its own key: any length, any characters.
                        key.chars().take(12).collect::<String>(),
                        source.describe()
                    )),
                    baseline_commit: found.provenance.commit.clone(),
                    // The baseline's samples stand in for the candidate's, for peer speedups.
                    sides: crate::record::Sides {
                        baseline: Some(crate::compare::Side::alone(&found.samples_us, &config.gate)),
                        candidate: Some(crate::compare::Side::alone(&found.samples_us, &config.gate)),
                    },
                    ..ShapeResult::default()
                })
            })
            .collect();
        if let Some(shapes) = shapes {
            // Nothing of it runs: its harness need not hold the GPU.
            harness.retire(&kernel.name);
            reused.extend(shapes);
        }
    }
    reused
}

/// Where each kernel's time went: its processes and start-ups in both trees (`candidate`,
/// `base`), its shapes measured (with the split the harness reported), profiled and compared
/// by A/B. Measured results come first in `results`, in the order of `jobs`.
fn time_spent(
    candidate: IndexMap<String, KernelTime>,
    base: IndexMap<String, KernelTime>,
    jobs: &[Job],
    outcomes: &[Outcome],
    results: &[ShapeResult],
    profiling: &IndexMap<String, f64>,
) -> IndexMap<String, KernelTime> {
    let mut time = candidate;
    for (kernel, spent) in &base {
        time.entry(kernel.clone()).or_default().add(spent);
    }
    for ((job, outcome), result) in jobs.iter().zip(outcomes).zip(results) {
        let spent = time.entry(job.kernel.name.clone()).or_default();
        spent.measuring_s += result.wall_s.unwrap_or(0.0);
        let details = outcome.as_ref().ok().and_then(|m| m.details.as_ref());
        spent.correctness_s += details.and_then(|d| d.correctness_s).unwrap_or(0.0);
        spent.timing_s += details.and_then(|d| d.timing_s).unwrap_or(0.0);
        spent.ab_s += result.ab.as_ref().map_or(0.0, |ab| ab.wall_s);
    }
    for (kernel, seconds) in profiling {
        time.entry(kernel.clone()).or_default().profiling_s += seconds;
    }
    time
}

/// Which shapes are measured by A/B: every one with `--ab`; with `gate.confirm: ab` (or unset
/// under `--against`), those whose stored verdict is in doubt. Both need a base to build, which
/// only `--against REF` names: asking for A/B without one is a usage error, found before any
/// measuring.
fn ab_scope(config: &Config, options: &CheckOptions) -> Result<AbScope> {
    let has_base = options.against.is_some();
    let needs_base = |what: &str| {
        Error::Usage(format!(
            "{what} measures the base build beside the candidate, and needs a base: pass --against REF (its merge-base with HEAD is built from git)"
        ))
    };
    if options.ab {
        return if has_base {
            Ok(AbScope::Every)
        } else {
            Err(needs_base("--ab"))
        };
    }
    match config.gate.confirm {
        Some(Confirm::None) => Ok(AbScope::Off),
        Some(Confirm::Ab) if !has_base => Err(needs_base(&format!(
            "`gate.confirm: ab` in {}",
            config.path.display()
        ))),
        Some(Confirm::Ab) => Ok(AbScope::Confirm),
        None if has_base => Ok(AbScope::Confirm),
        None => Ok(AbScope::Off),
    }
}

/// Where the baselines come from: the working tree, or (with `--against REF`) the tree of REF's
/// merge-base with HEAD, or of REF's tip with `--against-tip`.
fn baseline_source(config: &Config, repo: Option<Repo>, options: &CheckOptions) -> Result<Source> {
    let Some(reference) = options.against.as_deref() else {
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
    let mut resolved = repo.resolve(reference)?;
    if !options.against_tip {
        resolved = repo.at_merge_base(resolved)?;
    }
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
        .map(crate::git::short_commit)
        .unwrap_or("no-commit");
    let name = format!("{}-{commit}.json", started_at.format("%Y%m%dT%H%M%S%.3fZ"));
    // Checks started in the same millisecond on one commit (parallel CI jobs in one checkout)
    // get `-2`, `-3`… rather than overwriting each other.
    atomic::write_new(&dir.join(name), Json.render(run).as_bytes())
}

/// A hash of what decides the plan and its baselines, so shards of one check can be told from
/// shards of another.
fn plan_id(config: &Config, options: &CheckOptions) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(std::fs::read(&config.path).unwrap_or_default());
    let selection = &options.selection;
    hash.update(format!(
        "{:?}|{:?}|{:?}|{}|{}|{}",
        selection.kernels,
        selection.shapes,
        options.against,
        options.against_tip,
        options.ab,
        options.all
    ));
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a baseline timed one way cannot judge a run timed another, if it was.
fn method_changed(
    found: &crate::baseline::ShapeBaseline,
    outcome: &crate::measure::Outcome,
) -> Option<String> {
    let (before, now) = Details::timing_changed(
        found.provenance.measurement.as_ref(),
        outcome.as_ref().ok()?.details.as_ref(),
    )?;
    Some(format!("the baseline was timed as {before}, this run as {now} (the kernel is near the batching threshold); refresh the baseline"))
}

fn describe_params(params: &crate::config::Params) -> String {
    params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}
