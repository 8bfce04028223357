//! Commands that work on run records alone, with no GPU: `report` (re-render, re-decide with
//! other thresholds), `compare` (one run against another) and `merge` (shards into one run).

use std::path::{Path, PathBuf};

use super::{finish, ReportPaths};
use crate::config::GateSettings;
use crate::error::{Error, Result};
use crate::measure::Details;
use crate::record::{self, RunRecord, ShapeResult};

/// Thresholds given on the command line, over those stored in the record.
#[derive(Debug, Clone, Default)]
pub struct GateOverrides {
    pub regression_threshold: Option<f64>,
    pub alpha: Option<f64>,
    pub min_regressed_shapes: Option<usize>,
}

impl GateOverrides {
    fn apply(&self, gate: &GateSettings) -> Result<GateSettings> {
        let gate = GateSettings {
            regression_threshold: self
                .regression_threshold
                .unwrap_or(gate.regression_threshold),
            alpha: self.alpha.unwrap_or(gate.alpha),
            min_regressed_shapes: self
                .min_regressed_shapes
                .unwrap_or(gate.min_regressed_shapes),
            ..gate.clone()
        };
        if let Some((key, message)) = gate.problems().into_iter().next() {
            return Err(Error::Usage(format!(
                "--{}: {message}",
                key.replace('_', "-")
            )));
        }
        Ok(gate)
    }

    fn is_empty(&self) -> bool {
        self.regression_threshold.is_none()
            && self.alpha.is_none()
            && self.min_regressed_shapes.is_none()
    }
}

/// A shard's record holds part of a decision: it must be merged before it is judged.
fn whole(run: RunRecord, path: &Path) -> Result<RunRecord> {
    match &run.shard {
        Some(shard) => Err(Error::Usage(format!(
            "{}: the record of shard {shard}; combine the shards with `gatekeeper merge` first",
            path.display()
        ))),
        None => Ok(run),
    }
}

/// Reads a run record written by `check`, `compare` or `merge`, of this format or the one
/// before it.
pub fn load(path: &Path) -> Result<RunRecord> {
    let text = std::fs::read_to_string(path).map_err(|err| Error::io(path, err))?;
    let mut run: RunRecord = serde_json::from_str(&text).map_err(|err| Error::Corrupt {
        path: path.to_path_buf(),
        message: format!("not a gatekeeper run record: {err}"),
    })?;
    if run.format != record::FORMAT && run.format != record::PREVIOUS_FORMAT {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "run record format {} is not supported (this gatekeeper reads {} and {})",
                run.format,
                record::PREVIOUS_FORMAT,
                record::FORMAT
            ),
        });
    }
    run.upgrade();
    Ok(run)
}

/// `gatekeeper report RUN.json`: renders a stored run again, judged again when thresholds are
/// given.
pub fn report(path: &Path, overrides: &GateOverrides, reports: &ReportPaths) -> Result<u8> {
    reports.prepare()?;
    let mut run = whole(load(path)?, path)?;
    if !overrides.is_empty() {
        let gate = overrides.apply(&run.gate)?;
        run.results = run
            .results
            .iter()
            .map(|result| {
                // Without a stored baseline there is nothing to re-judge, and an A/B verdict
                // stands with the message it already has (settling again would repeat its note).
                if result.ab.is_some() && result.baseline_samples().is_empty() {
                    return result.clone();
                }
                let baseline = if result.baseline_samples().is_empty() {
                    Err(result.message.clone().unwrap_or_default())
                } else {
                    Ok((result.baseline_samples(), result.baseline_commit.as_deref()))
                };
                let mut judged = result.rejudge(baseline, &gate);
                judged.peers = result.peers.clone();
                // An A/B verdict was reached by rounds stopped under the run's own threshold:
                // it stands (a new threshold needs a new check), beside the re-judged stored test.
                if let Some(ab) = &result.ab {
                    super::ab::apply(&mut judged, super::ab::AbRun::Done(ab.clone()));
                }
                judged
            })
            .collect();
        run.gate = gate;
        run.decide();
    }
    finish(&run, reports)
}

/// `gatekeeper compare A.json B.json`: judges B's samples against A's, shape by shape, on the
/// same device model.
pub fn compare(
    baseline: &Path,
    candidate: &Path,
    overrides: &GateOverrides,
    reports: &ReportPaths,
) -> Result<u8> {
    reports.prepare()?;
    let before = whole(load(baseline)?, baseline)?;
    let mut run = whole(load(candidate)?, candidate)?;
    let gate = overrides.apply(&run.gate)?;
    let device_name = |device: &Option<String>| match device {
        Some(name) => format!("{name:?}"),
        None => crate::baseline::UNKNOWN_DEVICE.to_string(),
    };
    run.results = run
        .results
        .iter()
        .map(|result| {
            let matched = before
                .results
                .iter()
                .find(|b| b.kernel == result.kernel && b.shape == result.shape);
            let found = match matched {
                None => Err(format!(
                    "{} has no {}/{}",
                    baseline.display(),
                    result.kernel,
                    result.shape
                )),
                Some(b) if b.verdict.is_fatal() || b.candidate_samples().len() < 2 => Err(format!(
                    "{} has no samples for {}/{} ({})",
                    baseline.display(),
                    result.kernel,
                    result.shape,
                    b.verdict
                )),
                // The exact names, not their folders: two names can share a folder.
                Some(b) if b.device != result.device => Err(format!(
                    "measured on {} in {}, on {} here: never compared",
                    device_name(&b.device),
                    baseline.display(),
                    device_name(&result.device)
                )),
                Some(b) if timed_differently(b, result) => Err(format!(
                    "timed as {} in {}, as {} here: never compared",
                    method(b).unwrap_or("unknown"),
                    baseline.display(),
                    method(result).unwrap_or("unknown")
                )),
                Some(b) => Ok((b.candidate_samples(), b_commit(&before))),
            };
            let mut judged = result.rejudge(found, &gate);
            judged.peers = result.peers.clone();
            judged
        })
        .collect();
    run.gate = gate;
    run.baselines_from = format!("run record {}", baseline.display());
    // Every verdict is now the comparison of the two records: none is an A/B one.
    run.ab_base = None;
    run.gate.confirm = Some(crate::config::Confirm::None);
    run.decide();
    finish(&run, reports)
}

/// How a result's samples were taken (`details.method`), when the harness said.
fn method(result: &ShapeResult) -> Option<&'static str> {
    Some(result.details.as_ref()?.method?.as_str())
}

/// Whether `baseline` was timed another way than `result`, so it cannot judge it.
fn timed_differently(baseline: &ShapeResult, result: &ShapeResult) -> bool {
    Details::timing_changed(baseline.details.as_ref(), result.details.as_ref()).is_some()
}

fn b_commit(run: &RunRecord) -> Option<&str> {
    run.commit.as_deref()
}

/// `gatekeeper merge SHARD.json...`: one run from the shards of one check, decided as a whole
/// (so the ≥ N-shapes rule sees every shape of a kernel).
pub fn merge(paths: &[PathBuf], reports: &ReportPaths) -> Result<u8> {
    reports.prepare()?;
    let runs = paths
        .iter()
        .map(|path| load(path).map(|run| (path, run)))
        .collect::<Result<Vec<_>>>()?;
    let merged = merge_runs(&runs)?;
    finish(&merged, reports)
}

fn merge_runs(runs: &[(&PathBuf, RunRecord)]) -> Result<RunRecord> {
    let Some((first_path, first)) = runs.first() else {
        return Err(Error::Usage("merge: name at least one run record".into()));
    };
    let mut seen: Vec<usize> = Vec::new();
    let mut count = None;
    for (path, run) in runs {
        let (shard, parsed) = shard_of(path, run)?;
        if *count.get_or_insert(parsed.count) != parsed.count {
            return Err(Error::Usage(format!(
                "{}: shard {shard} does not belong with shards of {}",
                path.display(),
                count.unwrap_or_default()
            )));
        }
        if seen.contains(&parsed.index) {
            return Err(Error::Usage(format!(
                "{}: shard {shard} given twice",
                path.display()
            )));
        }
        seen.push(parsed.index);
        same_check(path, run, first_path, first)?;
    }
    // N is at most plan::MAX_SHARDS, so listing what is missing stays cheap.
    let count = count.unwrap_or(1);
    let missing: Vec<String> = (1..=count)
        .filter(|k| !seen.contains(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "merge: missing shard(s) {}",
            missing.join(", ")
        )));
    }
    joined(runs, first)
}

/// Which slice of the plan a record holds (`check --shard K/N`), as stored and as parsed.
fn shard_of<'r>(path: &Path, run: &'r RunRecord) -> Result<(&'r str, crate::plan::Shard)> {
    let shard = run.shard.as_deref().ok_or_else(|| {
        Error::Usage(format!(
            "{}: not a shard (it was not made with `check --shard K/N`)",
            path.display()
        ))
    })?;
    let parsed = shard.parse().map_err(|why| Error::Corrupt {
        path: path.to_path_buf(),
        message: format!("shard {why}"),
    })?;
    Ok((shard, parsed))
}

/// Refuses a shard of another check than the first one's: other config, baselines, plan,
/// commit or gate settings.
fn same_check(path: &Path, run: &RunRecord, first_path: &Path, first: &RunRecord) -> Result<()> {
    for (what, mine, theirs) in [
        ("config", &run.config, &first.config),
        ("baselines", &run.baselines_from, &first.baselines_from),
    ] {
        if mine != theirs {
            return Err(Error::Usage(format!(
                "{}: its {what} ({mine}) differs from {}'s ({theirs}): not shards of one check",
                path.display(),
                first_path.display()
            )));
        }
    }
    if run.plan_id != first.plan_id || run.plan_jobs != first.plan_jobs {
        return Err(Error::Usage(format!(
            "{}: a shard of another plan than {} (other gates.yaml, --kernels, --shapes or --against)",
            path.display(),
            first_path.display()
        )));
    }
    if run.commit != first.commit || run.gate != first.gate {
        return Err(Error::Usage(format!(
            "{}: measured at another commit or with other gate settings than {}",
            path.display(),
            first_path.display()
        )));
    }
    Ok(())
}

/// The shards' results in plan order as one run, decided as a whole.
fn joined(runs: &[(&PathBuf, RunRecord)], first: &RunRecord) -> Result<RunRecord> {
    let mut merged = first.clone();
    merged.shard = None;
    // A shard with no doubtful shape built no base; another shard may have.
    merged.ab_base = runs.iter().find_map(|(_, run)| run.ab_base.clone());
    merged.time = indexmap::IndexMap::new();
    for (_, run) in runs {
        for (kernel, time) in &run.time {
            merged.time.entry(kernel.clone()).or_default().add(time);
        }
    }
    let mut results: Vec<ShapeResult> = runs
        .iter()
        .flat_map(|(_, run)| run.results.iter().cloned())
        .collect();
    results.sort_by_key(|r| r.job);
    // Every job of the plan exactly once: anything else means the shards do not fit together.
    let jobs: Vec<usize> = results.iter().map(|r| r.job).collect();
    if jobs != (0..first.plan_jobs).collect::<Vec<_>>() {
        return Err(Error::Usage(format!(
            "merge: the shards hold jobs {jobs:?} of a plan of {} jobs: not the slices of one check",
            first.plan_jobs
        )));
    }
    merged.results = results;
    merged.started_at = runs
        .iter()
        .map(|(_, run)| run.started_at.clone())
        .min()
        .unwrap_or_default();
    merged.duration_s = runs
        .iter()
        .map(|(_, run)| run.duration_s)
        .fold(0.0, f64::max);
    merged.dirty = runs
        .iter()
        .filter_map(|(_, run)| run.dirty)
        .reduce(|a, b| a || b);
    // A kernel and its peer may have run in different shards.
    merged.attach_peers();
    merged.decide();
    Ok(merged)
}
