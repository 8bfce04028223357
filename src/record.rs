//! The run record: everything a check decided and why. It is the `--json` report, the file left
//! under `runs/`, and the one input every other report format renders.

use serde::{Deserialize, Serialize};

use crate::ab::AbResult;
use crate::compare::{self, KernelDecision, Verdict};
pub use crate::compare::{Kept, Side, Test};
use crate::config::{GateSettings, TimingSettings};
use crate::measure::Outcome;

mod flat;

/// Version of the run record layout. Format 2 has the fields of format 1; only the peers'
/// `median_us` changed meaning, to the median of every sample (format 1 took it after outlier
/// filtering, which depended on whether the shape had a baseline). Both are read.
pub const FORMAT: u32 = 2;

/// The earlier format this version still reads (see [`RunRecord::upgrade`]).
pub const PREVIOUS_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassFail {
    Pass,
    Fail,
}

impl PassFail {
    pub fn from_passed(passed: bool) -> Self {
        if passed {
            PassFail::Pass
        } else {
            PassFail::Fail
        }
    }

    pub fn passed(self) -> bool {
        self == PassFail::Pass
    }
}

pub use crate::measure::KernelTime;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    pub gatekeeper_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_s: f64,
    /// The gates.yaml that was read.
    pub config: String,
    /// The commit under test and whether the working tree had changes on top of it.
    pub commit: Option<String>,
    pub dirty: Option<bool>,
    /// Where the baselines came from: a ref and its commit, or the working tree.
    pub baselines_from: String,
    /// The build A/B comparisons measured beside the candidate, e.g. `main's merge-base with
    /// HEAD (…)`; absent when no A/B comparison could run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ab_base: Option<String>,
    /// Where each kernel's time went, and how many processes it started.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub time: indexmap::IndexMap<String, KernelTime>,
    /// `K/N` when this run measured one slice of the plan; `gatekeeper merge` joins them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Identifies the plan: a hash of the config file, the selection and the baseline ref.
    /// Shards merge only with shards of the same plan.
    #[serde(default)]
    pub plan_id: String,
    /// Jobs in the whole plan, before sharding.
    #[serde(default)]
    pub plan_jobs: usize,
    /// The settings as gates.yaml gave them. Read leniently (see [`lenient`]): gates.yaml is
    /// strict about its keys, a stored record must not be.
    #[serde(deserialize_with = "lenient")]
    pub gate: GateSettings,
    #[serde(deserialize_with = "lenient")]
    pub timing: TimingSettings,
    /// Each kernel's peers (gates.yaml `peers`), kept so merged shards can compare again.
    #[serde(default, skip_serializing_if = "indexmap::IndexMap::is_empty")]
    pub peers: indexmap::IndexMap<String, Vec<String>>,
    pub verdict: PassFail,
    pub kernels: Vec<KernelResult>,
    pub results: Vec<ShapeResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelResult {
    pub name: String,
    pub verdict: PassFail,
    pub reason: String,
    pub regressed: usize,
    pub incorrect: usize,
    pub errors: usize,
    /// Shapes that missed a gate-4 limit (resources or profiled metrics).
    #[serde(default)]
    pub profile_failed: usize,
}

/// One kernel × shape. Statistics are `null` where they do not apply (an error has no samples;
/// a shape without a baseline has no ratio).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShapeResult {
    pub kernel: String,
    pub shape: String,
    /// Position in the full plan (config order), so shards merge back in order.
    #[serde(default)]
    pub job: usize,
    pub verdict: Verdict,
    pub device: Option<String>,
    /// The test of the candidate against the baseline, where there was one. Stored as the flat
    /// fields `ratio`, `ratio_ci` and `p_value`.
    #[serde(flatten, with = "flat::test")]
    pub test: Option<Test>,
    /// The baseline's and the candidate's samples and summaries.
    #[serde(flatten)]
    pub sides: Sides,
    /// Samples asked of the harness (`timing.samples`) and samples it returned, which a harness
    /// may make fewer; absent where nothing was timed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_requested: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_returned: Option<usize>,
    pub correct: Option<bool>,
    pub max_abs_err: Option<f64>,
    pub max_rel_err: Option<f64>,
    /// Relative L2 error of the output, ‖got − want‖₂ / ‖want‖₂, where the harness reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rel_l2_err: Option<f64>,
    /// Why the verdict is what it is, when that is not obvious (errors, missing baselines).
    pub message: Option<String>,
    /// The end of the harness's stderr, for errors and incorrect results.
    pub stderr_tail: Option<String>,
    pub baseline_commit: Option<String>,
    /// Extra facts the harness reported: for CUDA kernels the driver, clocks, batch size, seed.
    pub details: Option<crate::measure::Details>,
    /// Speedup over each of the kernel's peers on this shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerSpeedup>,
    /// Gate 4: static resources, profiled metrics, class and limits checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::profile::ShapeProfile>,
    /// True when the shape was not measured because its kernel's inputs are those of its
    /// baseline (`inputs:`); its samples then are the baseline's.
    #[serde(default)]
    pub reused: bool,
    /// Seconds the check's own measurement of this shape took, its process included (A/B
    /// rounds are in `ab.wall_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// The same-runner A/B comparison against the base build, `null` where none ran. When it
    /// ran, its verdict is this result's `verdict`.
    #[serde(default)]
    pub ab: Option<AbResult>,
}

/// Both sides of a shape's timing comparison: the baseline (absent when there is none, or for
/// an error) and the candidate (absent for an error). Stored as the flat fields `baseline_*`
/// and `candidate_*`: `*_mean_us`, `*_stddev_us`, `*_median_us`, `*_n`, `*_dropped` and
/// `*_samples_us`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sides {
    pub baseline: Option<Side>,
    pub candidate: Option<Side>,
}

/// Reads a settings object stored in a record, dropping the keys this version does not know:
/// the settings' types reject unknown keys (a typo in gates.yaml must not pass), but a key that
/// a later gates.yaml renames or removes must not make today's records unreadable.
fn lenient<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned + schemars::JsonSchema,
{
    let mut value = serde_json::Value::deserialize(deserializer)?;
    let schema = schemars::schema_for!(T);
    if let (Some(known), Some(stored)) = (
        schema.get("properties").and_then(|p| p.as_object()),
        value.as_object_mut(),
    ) {
        stored.retain(|key, _| known.contains_key(key));
    }
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

/// What a shape's baseline lookup found.
pub enum BaselineLookup<'a> {
    Found {
        samples_us: &'a [f64],
        commit: Option<&'a str>,
    },
    Missing(String),
}

impl ShapeResult {
    /// Judges one measured kernel × shape: correctness first, then timing against the baseline.
    pub fn judge<'b>(
        kernel: &str,
        shape: &str,
        outcome: &Outcome,
        baseline: impl FnOnce(Option<&str>) -> BaselineLookup<'b>,
        gate: &GateSettings,
    ) -> ShapeResult {
        let mut result = ShapeResult {
            kernel: kernel.to_string(),
            shape: shape.to_string(),
            ..ShapeResult::default()
        };
        let measurement = match outcome {
            Err(failure) => {
                result.verdict = Verdict::Error;
                result.message = Some(failure.message.clone());
                result.stderr_tail = non_empty(&failure.stderr_tail);
                return result;
            }
            Ok(measurement) => measurement,
        };
        result.device = measurement.device.clone();
        result.correct = measurement.correct;
        result.max_abs_err = measurement.max_abs_err;
        result.max_rel_err = measurement.max_rel_err;
        result.rel_l2_err = measurement.rel_l2_err;
        result.details = measurement.details.clone();
        let samples = &measurement.samples_us;
        if measurement.correct == Some(false) {
            result.verdict = Verdict::Incorrect;
            result.sides.candidate = Side::unsummarised(samples);
            result.message = Some(
                measurement
                    .message
                    .clone()
                    .unwrap_or_else(|| "the harness reported incorrect output".to_string()),
            );
            result.stderr_tail = non_empty(&measurement.stderr_tail);
            return result;
        }
        let (baseline_samples, commit) = match baseline(measurement.device.as_deref()) {
            BaselineLookup::Missing(why) => {
                result.verdict = Verdict::NoBaseline;
                result.message = Some(why);
                result.sides.candidate = Some(Side::alone(samples, gate));
                return result;
            }
            BaselineLookup::Found { samples_us, commit } => (samples_us, commit),
        };
        result.baseline_commit = commit.map(str::to_string);
        match compare::compare(baseline_samples, samples, gate) {
            Some(comparison) => {
                result.verdict = comparison.verdict;
                result.test = Some(comparison.test);
                result.sides.baseline = Some(comparison.baseline);
                result.sides.candidate = Some(comparison.candidate);
                result.message = comparison.outlier_note;
            }
            None => {
                result.verdict = Verdict::Inconclusive;
                result.message = Some("fewer than 2 samples on a side".to_string());
                result.sides.baseline = Side::unsummarised(baseline_samples);
                result.sides.candidate = Some(Side::alone(samples, gate));
            }
        }
        result
    }

    /// The baseline's samples, none where there is no baseline.
    pub fn baseline_samples(&self) -> &[f64] {
        self.sides
            .baseline
            .as_ref()
            .map_or(&[], |side| side.samples_us.as_slice())
    }

    /// The candidate's samples, none for an error.
    pub fn candidate_samples(&self) -> &[f64] {
        self.sides
            .candidate
            .as_ref()
            .map_or(&[], |side| side.samples_us.as_slice())
    }

    /// Makes an A/B comparison this shape's final verdict, keeping the stored comparison beside
    /// it. A stored regression that A/B does not confirm is named as drift of the baseline.
    pub fn settle_by_ab(&mut self, ab: AbResult) {
        let stored = self.verdict;
        let mut notes = Vec::new();
        let stored_ratio = self
            .test
            .map(|test| format!(" ({:.3}×)", test.ratio))
            .unwrap_or_default();
        match (stored, ab.verdict) {
            (Verdict::Regressed, Verdict::Regressed) => {}
            (Verdict::Regressed, Verdict::Inconclusive) => notes.push(format!(
                "the stored baseline said regressed{stored_ratio}; measured beside the base, \
                 A/B could not decide"
            )),
            (Verdict::Regressed, settled) => notes.push(format!(
                "the stored baseline said regressed{stored_ratio}; measured beside the base it \
                 is {settled}: the baseline has drifted, refresh it with `gatekeeper baseline refresh`"
            )),
            _ => {}
        }
        notes.extend(ab.note.clone());
        notes.extend(self.message.take());
        self.message = (!notes.is_empty()).then(|| notes.join("; "));
        self.verdict = ab.verdict;
        self.ab = Some(ab);
    }

    /// Adds `note` to the message: why an A/B comparison could not settle this shape.
    pub fn add_note(&mut self, note: String) {
        self.message = Some(match self.message.take() {
            Some(message) => format!("{note}; {message}"),
            None => note,
        });
    }

    /// The candidate's median over every sample, which peers are compared by.
    pub fn candidate_median_of_all(&self) -> Option<f64> {
        self.sides.candidate.as_ref()?.median_of_all()
    }
}

/// `text`, or `None` when it is blank: how a result keeps a harness's stderr.
pub(crate) fn non_empty(text: &str) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.to_string())
}

/// How much faster a kernel is than a peer on one shape (peer median / kernel median).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerSpeedup {
    pub kernel: String,
    pub median_us: f64,
    pub speedup: f64,
    pub rating: Rating,
}

/// The seed report's words for a speedup: Excellent ≥ 2×, Good ≥ 1.5×, Modest ≥ 1.1×,
/// Parity ≥ 0.9×, Regression below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rating {
    Excellent,
    Good,
    Modest,
    Parity,
    Regression,
}

impl Rating {
    pub fn as_str(self) -> &'static str {
        match self {
            Rating::Excellent => "Excellent",
            Rating::Good => "Good",
            Rating::Modest => "Modest",
            Rating::Parity => "Parity",
            Rating::Regression => "Regression",
        }
    }
}

impl std::fmt::Display for Rating {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rating of a speedup.
pub fn rate_speedup(speedup: f64) -> Rating {
    if speedup >= 2.0 {
        Rating::Excellent
    } else if speedup >= 1.5 {
        Rating::Good
    } else if speedup >= 1.1 {
        Rating::Modest
    } else if speedup >= 0.9 {
        Rating::Parity
    } else {
        Rating::Regression
    }
}

/// Fills in each result's speedups over its kernel's peers, comparing the medians of every
/// sample measured in this run (outliers included, so a speedup does not depend on whether
/// either shape had a baseline). Shapes a peer did not time correctly (or at all) are left out.
pub fn attach_peers(results: &mut [ShapeResult], peers_of: impl Fn(&str) -> Vec<String>) {
    let medians: Vec<((String, String), f64)> = results
        .iter()
        .filter(|r| !r.verdict.is_fatal())
        .filter_map(|r| {
            Some((
                (r.kernel.clone(), r.shape.clone()),
                r.candidate_median_of_all()?,
            ))
        })
        .collect();
    let median_of = |kernel: &str, shape: &str| {
        medians
            .iter()
            .find(|((k, s), _)| k == kernel && s == shape)
            .map(|(_, m)| *m)
    };
    for result in results.iter_mut() {
        let Some(own) = result
            .candidate_median_of_all()
            .filter(|_| !result.verdict.is_fatal())
        else {
            continue;
        };
        result.peers = peers_of(&result.kernel)
            .into_iter()
            .filter_map(|peer| {
                let median_us = median_of(&peer, &result.shape)?;
                let speedup = median_us / own;
                Some(PeerSpeedup {
                    rating: rate_speedup(speedup),
                    kernel: peer,
                    median_us,
                    speedup,
                })
            })
            .collect();
    }
}

/// Per-kernel decisions in the order kernels first appear in `results`.
pub fn decide_kernels(results: &[ShapeResult], gate: &GateSettings) -> Vec<KernelResult> {
    let mut names: Vec<&str> = Vec::new();
    for result in results {
        if !names.contains(&result.kernel.as_str()) {
            names.push(&result.kernel);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let verdicts: Vec<Verdict> = results
                .iter()
                .filter(|r| r.kernel == name)
                .map(|r| r.verdict)
                .collect();
            let KernelDecision {
                passed,
                regressed,
                incorrect,
                errors,
                mut reason,
            } = compare::decide_kernel(&verdicts, gate);
            let profile_failed = results
                .iter()
                .filter(|r| r.kernel == name && r.missed_profile_limits())
                .count();
            if profile_failed > 0 {
                let missed = format!(
                    "{profile_failed} shape{} missed profiling limits",
                    if profile_failed == 1 { "" } else { "s" }
                );
                reason = if passed {
                    missed
                } else {
                    format!("{reason}; {missed}")
                };
            }
            KernelResult {
                name: name.to_string(),
                verdict: PassFail::from_passed(passed && profile_failed == 0),
                reason,
                regressed,
                incorrect,
                errors,
                profile_failed,
            }
        })
        .collect()
}

impl ShapeResult {
    /// Whether gate 4 checked a limit here and it was missed.
    pub fn missed_profile_limits(&self) -> bool {
        self.profile
            .as_ref()
            .is_some_and(|p| p.failed_checks().next().is_some())
    }

    /// What the harness reported for this shape, rebuilt from the record, so a stored run can be
    /// judged again (other thresholds, another baseline).
    pub fn outcome(&self) -> Outcome {
        if self.verdict == Verdict::Error {
            return Err(crate::measure::Failure {
                message: self.message.clone().unwrap_or_default(),
                stderr_tail: self.stderr_tail.clone().unwrap_or_default(),
            });
        }
        let incorrect = self.verdict == Verdict::Incorrect;
        Ok(crate::measure::Measurement {
            samples_us: self.candidate_samples().to_vec(),
            correct: if incorrect { Some(false) } else { self.correct },
            max_abs_err: self.max_abs_err,
            max_rel_err: self.max_rel_err,
            rel_l2_err: self.rel_l2_err,
            device: self.device.clone(),
            message: if incorrect {
                self.message.clone()
            } else {
                None
            },
            details: self.details.clone(),
            stderr_tail: self.stderr_tail.clone().unwrap_or_default(),
        })
    }

    /// Judges this shape again under `gate`, against `baseline` samples (or `missing`).
    pub fn rejudge(
        &self,
        baseline: Result<(&[f64], Option<&str>), String>,
        gate: &GateSettings,
    ) -> ShapeResult {
        let mut judged = ShapeResult::judge(
            &self.kernel,
            &self.shape,
            &self.outcome(),
            |_| match baseline {
                Ok((samples_us, commit)) => BaselineLookup::Found { samples_us, commit },
                Err(why) => BaselineLookup::Missing(why),
            },
            gate,
        );
        judged.job = self.job;
        judged.samples_requested = self.samples_requested;
        judged.samples_returned = self.samples_returned;
        judged.profile = self.profile.clone();
        judged
    }
}

impl RunRecord {
    /// Brings a record read in [`PREVIOUS_FORMAT`] to [`FORMAT`]. The fields are the same; the
    /// speedups over peers are computed again from every sample where the record names the
    /// peers (records made before it did keep theirs as stored). Verdicts do not change.
    pub fn upgrade(&mut self) {
        if self.format != PREVIOUS_FORMAT {
            return;
        }
        if !self.peers.is_empty() {
            self.attach_peers();
        }
        self.format = FORMAT;
    }

    /// Recomputes the speedups over peers from the results' medians.
    pub fn attach_peers(&mut self) {
        let peers = self.peers.clone();
        attach_peers(&mut self.results, |kernel| {
            peers.get(kernel).cloned().unwrap_or_default()
        });
    }

    /// Recomputes the kernel and run verdicts from the results (after they changed).
    pub fn decide(&mut self) {
        self.kernels = decide_kernels(&self.results, &self.gate);
        self.verdict = PassFail::from_passed(self.kernels.iter().all(|k| k.verdict.passed()));
    }

    pub fn kernel(&self, name: &str) -> Option<&KernelResult> {
        self.kernels.iter().find(|k| k.name == name)
    }

    pub fn results_of<'a>(&'a self, kernel: &'a str) -> impl Iterator<Item = &'a ShapeResult> {
        self.results.iter().filter(move |r| r.kernel == kernel)
    }

    /// Whether this shape is one of the reasons its kernel failed (and so is a JUnit failure):
    /// incorrect or errored, or regressed in a kernel whose regressions reached the gate.
    pub fn fails_its_kernel(&self, result: &ShapeResult) -> bool {
        let Some(kernel) = self.kernel(&result.kernel) else {
            return false;
        };
        result.verdict.is_fatal()
            || result.missed_profile_limits()
            || (result.verdict == Verdict::Regressed
                && kernel.regressed >= self.gate.min_regressed_shapes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Failure, Measurement};
    use crate::stats::Summary;

    fn measured(samples: Vec<f64>, correct: Option<bool>) -> Outcome {
        Ok(Measurement {
            samples_us: samples,
            correct,
            max_abs_err: None,
            max_rel_err: None,
            rel_l2_err: None,
            device: Some("GPU".into()),
            message: None,
            details: None,
            stderr_tail: "warn".into(),
        })
    }

    #[test]
    fn speedups_use_medians_and_the_seed_words() {
        let gate = GateSettings::default();
        let missing = |_: Option<&str>| BaselineLookup::Missing(String::new());
        let ours = ShapeResult::judge("ours", "s", &measured(vec![10.0; 5], None), missing, &gate);
        let peer = ShapeResult::judge("peer", "s", &measured(vec![16.0; 5], None), missing, &gate);
        let slow = ShapeResult::judge("slow", "s", &measured(vec![8.0; 5], None), missing, &gate);
        let mut results = vec![ours, peer, slow];
        attach_peers(&mut results, |kernel| {
            if kernel == "ours" {
                vec!["peer".into(), "slow".into(), "absent".into()]
            } else {
                vec![]
            }
        });
        let speedups: Vec<(String, f64, String)> = results[0]
            .peers
            .iter()
            .map(|p| (p.kernel.clone(), p.speedup, p.rating.to_string()))
            .collect();
        assert_eq!(
            speedups,
            [
                ("peer".to_string(), 1.6, "Good".to_string()),
                ("slow".to_string(), 0.8, "Regression".to_string())
            ]
        );
        assert_eq!(
            [2.0, 1.5, 1.1, 0.9, 0.89].map(|s| rate_speedup(s).as_str()),
            ["Excellent", "Good", "Modest", "Parity", "Regression"]
        );
    }

    #[test]
    fn judging_order_is_error_incorrect_baseline_timing() {
        let gate = GateSettings::default();
        let base: Vec<f64> = (0..20).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
        let found = |_: Option<&str>| BaselineLookup::Found {
            samples_us: &base,
            commit: Some("abc"),
        };
        let failure: Outcome = Err(Failure {
            message: "boom".into(),
            stderr_tail: "trace".into(),
        });
        let error = ShapeResult::judge("k", "s", &failure, found, &gate);
        assert_eq!(error.verdict, Verdict::Error);
        assert_eq!(error.stderr_tail.as_deref(), Some("trace"));

        let wrong =
            ShapeResult::judge("k", "s", &measured(base.clone(), Some(false)), found, &gate);
        assert_eq!(wrong.verdict, Verdict::Incorrect);

        let missing = |device: Option<&str>| BaselineLookup::Missing(format!("none on {device:?}"));
        let none = ShapeResult::judge("k", "s", &measured(base.clone(), None), missing, &gate);
        assert_eq!(none.verdict, Verdict::NoBaseline);
        assert_eq!(none.message.as_deref(), Some("none on Some(\"GPU\")"));
        assert!(none.sides.candidate.is_some_and(|c| c.kept.is_some()) && none.test.is_none());

        let slower: Vec<f64> = base.iter().map(|s| s * 1.2).collect();
        let judged = ShapeResult::judge("k", "s", &measured(slower, Some(true)), found, &gate);
        assert_eq!(judged.verdict, Verdict::Regressed);
        assert_eq!(judged.baseline_commit.as_deref(), Some("abc"));
        assert!((judged.test.unwrap().ratio - 1.2).abs() < 1e-9);
    }

    /// A record of format 1, written by gatekeeper 0.1.0.
    const FORMAT_1: &str = include_str!("../tests/fixtures/compat/run-v0.1.0.json");

    #[test]
    fn a_format_1_record_reads_into_sides_with_the_same_values() {
        let stored: serde_json::Value = serde_json::from_str(FORMAT_1).unwrap();
        let run: RunRecord = serde_json::from_str(FORMAT_1).unwrap();
        assert_eq!(run.format, PREVIOUS_FORMAT);
        let field = |i: usize, key: &str| stored["results"][i][key].clone();
        let small = &run.results[0];
        let (baseline, candidate) = (
            small.sides.baseline.as_ref().unwrap(),
            small.sides.candidate.as_ref().unwrap(),
        );
        let (b, c) = (baseline.kept.unwrap(), candidate.kept.unwrap());
        let test = small.test.unwrap();
        for (value, key) in [
            (test.ratio, "ratio"),
            (test.ci[0], "ratio_ci"),
            (test.p_value, "p_value"),
            (b.mean_us, "baseline_mean_us"),
            (c.mean_us, "candidate_mean_us"),
            (b.stddev_us, "baseline_stddev_us"),
            (c.stddev_us, "candidate_stddev_us"),
            (b.median_us, "baseline_median_us"),
            (c.median_us, "candidate_median_us"),
            (b.n as f64, "baseline_n"),
            (c.n as f64, "candidate_n"),
            (b.dropped as f64, "baseline_dropped"),
            (c.dropped as f64, "candidate_dropped"),
        ] {
            let stored = field(0, key);
            let stored = stored.get(0).unwrap_or(&stored).as_f64().unwrap();
            assert_eq!(value, stored, "{key}");
        }
        assert_eq!(test.ci[1], field(0, "ratio_ci")[1].as_f64().unwrap());
        let samples = |key: &str| -> Vec<f64> { serde_json::from_value(field(0, key)).unwrap() };
        assert_eq!(baseline.samples_us, samples("baseline_samples_us"));
        assert_eq!(candidate.samples_us, samples("candidate_samples_us"));
        // An error has neither side nor a test.
        let error = &run.results[2];
        assert_eq!(error.verdict, Verdict::Error);
        assert_eq!((&error.sides, error.test), (&Sides::default(), None));
        // Written again, every result has the very fields it was read from.
        for (i, result) in run.results.iter().enumerate() {
            let mut written = serde_json::to_value(result).unwrap();
            // `ab` (null where no A/B comparison ran) and `reused` (false: measured) are the
            // fields added since.
            let added = written.as_object_mut().unwrap();
            assert_eq!(added.remove("ab"), Some(serde_json::Value::Null));
            assert_eq!(added.remove("reused"), Some(serde_json::Value::Bool(false)));
            assert_eq!(written, stored["results"][i], "{}", result.shape);
        }
    }

    #[test]
    fn upgrading_a_format_1_record_compares_peers_by_every_sample_and_keeps_verdicts() {
        let mut run: RunRecord = serde_json::from_str(FORMAT_1).unwrap();
        let verdicts =
            |run: &RunRecord| -> Vec<Verdict> { run.results.iter().map(|r| r.verdict).collect() };
        let before = verdicts(&run);
        // A peer timed on the same shapes, 1.5x slower on every sample.
        let peers: Vec<ShapeResult> = run
            .results
            .iter()
            .map(|r| {
                let mut peer = r.clone();
                peer.kernel = "peer".into();
                if let Some(side) = &mut peer.sides.candidate {
                    side.samples_us.iter_mut().for_each(|s| *s *= 1.5);
                }
                peer
            })
            .collect();
        run.results.extend(peers);
        run.peers.insert("attn".into(), vec!["peer".into()]);
        run.upgrade();
        assert_eq!(run.format, FORMAT);
        assert_eq!(verdicts(&run)[..3], before[..]);
        let small = &run.results[0];
        let median = small.candidate_median_of_all().unwrap();
        assert_eq!(small.peers.len(), 1);
        assert!((small.peers[0].median_us - 1.5 * median).abs() < 1e-9);
        assert!((small.peers[0].speedup - 1.5).abs() < 1e-12);
        // Shapes with no samples (the error) have no speedup.
        assert!(run.results[2].peers.is_empty());
    }

    #[test]
    fn a_peers_median_does_not_depend_on_its_baseline() {
        let gate = GateSettings::default();
        // A tail the fences trim: the summaries differ with and without a baseline.
        let mut samples: Vec<f64> = (0..20).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
        samples.extend([30.0, 31.0, 32.0]);
        let base: Vec<f64> = (0..20).map(|i| 30.0 + (i % 5) as f64 * 0.1).collect();
        let found = |_: Option<&str>| BaselineLookup::Found {
            samples_us: &base,
            commit: None,
        };
        let missing = |_: Option<&str>| BaselineLookup::Missing(String::new());
        let outcome = measured(samples.clone(), None);
        let with = ShapeResult::judge("k", "s", &outcome, found, &gate);
        let without = ShapeResult::judge("k", "s", &outcome, missing, &gate);
        let kept = |r: &ShapeResult| r.sides.candidate.as_ref().unwrap().kept.unwrap();
        assert_ne!(kept(&with).n, kept(&without).n);
        assert_eq!(
            with.candidate_median_of_all(),
            without.candidate_median_of_all()
        );
        assert_eq!(
            with.candidate_median_of_all(),
            Some(Summary::of(&samples).median)
        );
    }
}
