//! The decision: a verdict per kernel × shape, then per kernel, then for the run.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::GateSettings;
use crate::stats::{self, Summary};

/// What happened to one kernel × shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Neither a significant threshold-sized slowdown nor speed-up. The default, which a
    /// result keeps until something about it says otherwise.
    #[default]
    Unchanged,
    /// Significantly faster by more than the threshold.
    Improved,
    /// Significantly slower by more than the threshold.
    Regressed,
    /// Too noisy to tell a threshold-sized regression from none.
    Inconclusive,
    /// Nothing to compare against for this device.
    NoBaseline,
    /// The harness said the output is wrong.
    Incorrect,
    /// The harness crashed, timed out or broke the protocol.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unchanged => "unchanged",
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NoBaseline => "no_baseline",
            Verdict::Incorrect => "incorrect",
            Verdict::Error => "error",
        }
    }

    /// Fails its kernel on its own, whatever the other shapes say.
    pub fn is_fatal(self) -> bool {
        matches!(self, Verdict::Incorrect | Verdict::Error)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side of a comparison (the baseline's samples or the candidate's): every sample as it was
/// measured or stored, and what the test made of them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Side {
    /// Every sample, in the order measured.
    pub samples_us: Vec<f64>,
    /// The samples kept by the outlier filter, summarised. `None` where this side was not
    /// summarised: an incorrect result, or a baseline the test could not use.
    pub kept: Option<Kept>,
}

/// What one side kept after outlier filtering.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Kept {
    pub mean_us: f64,
    /// Sample standard deviation (n - 1 denominator).
    pub stddev_us: f64,
    pub median_us: f64,
    /// Samples kept, which the test used.
    pub n: usize,
    /// Samples dropped as outliers.
    pub dropped: usize,
}

impl Side {
    /// Samples that were not summarised; `None` when there are none, so an empty side and a
    /// missing one are the same value.
    pub fn unsummarised(samples_us: &[f64]) -> Option<Side> {
        (!samples_us.is_empty()).then(|| Side {
            samples_us: samples_us.to_vec(),
            kept: None,
        })
    }

    /// The one place a side is summarised: the samples inside `fences`, dropping at most
    /// [`MAX_DROPPED_SHARE`] of them, farthest first. Also returns how many lay outside the
    /// fences, which is more than were dropped when the cap was reached.
    pub fn filtered(samples_us: &[f64], fences: Option<(f64, f64)>) -> (Side, usize) {
        let (filtered, outside) = stats::filter_capped(samples_us, fences, MAX_DROPPED_SHARE);
        let summary = Summary::of(&filtered.kept);
        let side = Side {
            samples_us: samples_us.to_vec(),
            kept: Some(Kept {
                mean_us: summary.mean,
                stddev_us: summary.stddev,
                median_us: summary.median,
                n: summary.n,
                dropped: filtered.dropped,
            }),
        };
        (side, outside)
    }

    /// A side with nothing to be compared against, filtered with fences of its own samples.
    pub fn alone(samples_us: &[f64], gate: &GateSettings) -> Side {
        Side::filtered(
            samples_us,
            stats::tukey_fences(samples_us, gate.outlier_fence),
        )
        .0
    }

    /// The median of every sample, outliers included: what peers are compared by, so a
    /// kernel's speedup over a peer does not depend on either one's baseline.
    pub fn median_of_all(&self) -> Option<f64> {
        (!self.samples_us.is_empty()).then(|| Summary::of(&self.samples_us).median)
    }

    fn summary(&self) -> Option<Summary> {
        self.kept.map(|kept| Summary {
            n: kept.n,
            mean: kept.mean_us,
            stddev: kept.stddev_us,
            median: kept.median_us,
        })
    }

    fn dropped(&self) -> usize {
        self.kept.map_or(0, |kept| kept.dropped)
    }
}

/// Welch's test of the candidate against the baseline, as the reports show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    /// candidate mean / baseline mean, after outlier filtering.
    pub ratio: f64,
    /// The (1 - 2α) confidence interval for the ratio.
    pub ci: [f64; 2],
    /// One-sided p-value in the direction of the observed change: P(slower) when the ratio is
    /// above 1, P(faster) otherwise.
    pub p_value: f64,
}

/// The timing comparison of one shape against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub verdict: Verdict,
    pub test: Test,
    pub baseline: Side,
    pub candidate: Side,
    /// Set when a side lost more than [`NOTED_SHARE`] of its samples to the outlier fences, or
    /// would have lost more than [`MAX_DROPPED_SHARE`] (and lost only that): how many, for the
    /// reports.
    pub outlier_note: Option<String>,
}

/// The largest share of one side's samples the outlier filter may drop. GPU timings put up to
/// ~14 % of samples in a heavy tail; fences that would drop more than this of a side are not
/// trimming a tail but cutting into the distribution itself, so only the farthest outliers, up
/// to this share, are dropped (and the reports say so).
pub const MAX_DROPPED_SHARE: f64 = 0.25;

/// A side that loses more than this share of its samples to the fences is named in the
/// shape's message: a slow mode in, say, a fifth of a kernel's runs is dropped as a tail, and
/// the reader should see that it was.
pub const NOTED_SHARE: f64 = 0.1;

/// Compares candidate samples with baseline samples under the gate's settings.
///
/// Returns `None` when either side has fewer than two samples, which the caller reports as
/// inconclusive.
pub fn compare(baseline: &[f64], candidate: &[f64], gate: &GateSettings) -> Option<Comparison> {
    let fences = stats::balanced_fences(&[baseline, candidate], gate.outlier_fence);
    let (baseline, baseline_outside) = Side::filtered(baseline, fences);
    let (candidate, candidate_outside) = Side::filtered(candidate, fences);
    let note = |name: &str, side: &Side, outside: usize| {
        let total = side.samples_us.len();
        let share = |n: usize| n as f64 / total as f64 * 100.0;
        if outside > side.dropped() {
            Some(format!(
                "{outside} of the {name}'s {total} samples ({:.0} %) lie outside the outlier fences: \
                 more than a heavy tail explains, so only the {} farthest were dropped",
                share(outside),
                side.dropped()
            ))
        } else if side.dropped() as f64 > NOTED_SHARE * total as f64 {
            Some(format!(
                "{} of the {name}'s {total} samples ({:.0} %) were dropped as outliers",
                side.dropped(),
                share(side.dropped())
            ))
        } else {
            None
        }
    };
    let notes: Vec<String> = [
        note("baseline", &baseline, baseline_outside),
        note("candidate", &candidate, candidate_outside),
    ]
    .into_iter()
    .flatten()
    .collect();
    let outlier_note = (!notes.is_empty()).then(|| notes.join("; "));
    let (baseline_summary, candidate_summary) = (baseline.summary()?, candidate.summary()?);
    if baseline_summary.n < 2 || candidate_summary.n < 2 {
        return None;
    }
    let test = stats::welch(&baseline_summary, &candidate_summary, gate.alpha);
    let threshold = gate.regression_threshold;
    let verdict = if test.ratio > 1.0 + threshold && test.p_slower < gate.alpha {
        Verdict::Regressed
    } else if test.ratio < 1.0 - threshold && test.p_faster < gate.alpha {
        Verdict::Improved
    } else if test.ci_high > 1.0 + threshold {
        // A threshold-sized regression cannot be ruled out, yet none was shown.
        Verdict::Inconclusive
    } else {
        Verdict::Unchanged
    };
    Some(Comparison {
        verdict,
        test: Test {
            ratio: test.ratio,
            ci: [test.ci_low, test.ci_high],
            p_value: if test.ratio > 1.0 {
                test.p_slower
            } else {
                test.p_faster
            },
        },
        baseline,
        candidate,
        outlier_note,
    })
}

/// Whether a stored-baseline verdict is in doubt, so `gate.confirm: ab` measures the shape again
/// beside the base: a regression, an inconclusive test, or an interval that reaches a
/// threshold-sized slowdown.
pub fn in_doubt(verdict: Verdict, test: Option<&Test>, gate: &GateSettings) -> bool {
    matches!(verdict, Verdict::Regressed | Verdict::Inconclusive)
        || (verdict == Verdict::Unchanged
            && test.is_some_and(|test| test.ci[1] > 1.0 + gate.regression_threshold))
}

/// A kernel's verdict from its shapes' verdicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelDecision {
    pub passed: bool,
    pub regressed: usize,
    pub incorrect: usize,
    pub errors: usize,
    /// One line saying why, for the reports.
    pub reason: String,
}

/// A kernel fails when any shape is incorrect or errored, or when at least
/// `min_regressed_shapes` shapes regressed.
pub fn decide_kernel(verdicts: &[Verdict], gate: &GateSettings) -> KernelDecision {
    let count = |wanted: Verdict| verdicts.iter().filter(|v| **v == wanted).count();
    let (regressed, incorrect, errors) = (
        count(Verdict::Regressed),
        count(Verdict::Incorrect),
        count(Verdict::Error),
    );
    let too_many_regressions = regressed >= gate.min_regressed_shapes;
    let passed = incorrect == 0 && errors == 0 && !too_many_regressions;
    let mut why = Vec::new();
    if incorrect > 0 {
        why.push(format!("{} incorrect", shapes(incorrect)));
    }
    if errors > 0 {
        why.push(format!("{} errored", shapes(errors)));
    }
    if regressed > 0 {
        let rule = if too_many_regressions {
            format!("gate fails at {}", gate.min_regressed_shapes)
        } else {
            format!("below the gate's {}", gate.min_regressed_shapes)
        };
        why.push(format!("{} regressed ({rule})", shapes(regressed)));
    }
    let reason = if why.is_empty() {
        let judged = verdicts
            .iter()
            .filter(|v| **v != Verdict::NoBaseline)
            .count();
        if judged == 0 {
            "no baseline to compare against".to_string()
        } else {
            format!("{} judged, none regressed", shapes(judged))
        }
    } else {
        why.join("; ")
    };
    KernelDecision {
        passed,
        regressed,
        incorrect,
        errors,
        reason,
    }
}

fn shapes(n: usize) -> String {
    if n == 1 {
        "1 shape".to_string()
    } else {
        format!("{n} shapes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(mean: f64, n: usize, phase: usize) -> Vec<f64> {
        // Deterministic ±1 % wiggle: enough spread for a t-test, no randomness in unit tests.
        (0..n)
            .map(|i| mean * (1.0 + 0.01 * (((i * 7 + phase) % 11) as f64 - 5.0) / 5.0))
            .collect()
    }

    #[test]
    fn verdicts_follow_threshold_and_significance() {
        let gate = GateSettings::default();
        let base = noisy(100.0, 50, 0);
        let verdict = |candidate: Vec<f64>| compare(&base, &candidate, &gate).unwrap().verdict;
        assert_eq!(verdict(noisy(100.0, 50, 3)), Verdict::Unchanged);
        assert_eq!(verdict(noisy(115.0, 50, 3)), Verdict::Regressed);
        assert_eq!(verdict(noisy(85.0, 50, 3)), Verdict::Improved);
        // Significant but smaller than the threshold: not a regression.
        assert_eq!(verdict(noisy(105.0, 50, 3)), Verdict::Unchanged);
    }

    #[test]
    fn noise_too_large_is_inconclusive() {
        let gate = GateSettings {
            outlier_fence: None,
            ..GateSettings::default()
        };
        let base: Vec<f64> = (0..5).map(|i| [60.0, 140.0][i % 2]).collect();
        let cand: Vec<f64> = (0..5).map(|i| [70.0, 150.0][i % 2]).collect();
        let comparison = compare(&base, &cand, &gate).unwrap();
        assert_eq!(comparison.verdict, Verdict::Inconclusive);
        assert!(comparison.test.ci[0] < 1.0 && comparison.test.ci[1] > 1.1);
    }

    #[test]
    fn a_significant_slowdown_that_may_exceed_the_threshold_is_inconclusive() {
        let gate = GateSettings::default();
        let base: Vec<f64> = (0..8).map(|i| 100.0 + [-6.0, 6.0][i % 2]).collect();
        let cand: Vec<f64> = (0..8).map(|i| 108.0 + [-6.0, 6.0][i % 2]).collect();
        let comparison = compare(&base, &cand, &gate).unwrap();
        assert!(
            comparison.test.ci[0] > 1.0 && comparison.test.ci[1] > 1.1,
            "{comparison:?}"
        );
        assert_eq!(comparison.verdict, Verdict::Inconclusive);
    }

    #[test]
    fn a_bimodal_minority_shifting_slightly_is_not_a_regression() {
        // Two clock states: 10 µs and 15 µs. 24 % slow in the baseline, 26 % in the candidate:
        // the means differ by under 1 %. Fences drawn per side would drop the slow mode from
        // the baseline only and report +13 %.
        let gate = GateSettings::default();
        let mode = |slow: usize| -> Vec<f64> {
            (0..50)
                .map(|i| if i < slow { 15.0 } else { 10.0 } + (i % 5) as f64 * 0.01)
                .collect()
        };
        let comparison = compare(&mode(12), &mode(13), &gate).unwrap();
        assert_eq!(
            comparison.baseline.dropped(),
            comparison.candidate.dropped()
        );
        assert!((comparison.test.ratio - 1.0).abs() < 0.05, "{comparison:?}");
        assert_ne!(comparison.verdict, Verdict::Regressed);
    }

    #[test]
    fn outliers_are_dropped_and_counted() {
        let gate = GateSettings::default();
        let base = noisy(100.0, 50, 0);
        let mut cand = noisy(100.0, 48, 1);
        cand.extend([300.0, 250.0]);
        let comparison = compare(&base, &cand, &gate).unwrap();
        assert_eq!(comparison.candidate.dropped(), 2);
        assert_eq!(comparison.candidate.kept.map(|k| k.n), Some(48));
        assert_eq!(comparison.verdict, Verdict::Unchanged);
    }

    /// The deterministic reproduction: 200 baseline samples at ~100 µs, 50 candidate samples at
    /// ~200 µs. Fences from the raw pooled samples sat inside the baseline's cluster and dropped
    /// every candidate sample.
    fn ramp(base: f64, n: usize) -> Vec<f64> {
        (0..n).map(|i| base + (i % 10) as f64 * 0.1).collect()
    }

    #[test]
    fn unequal_sample_counts_do_not_hide_a_regression() {
        let gate = GateSettings::default();
        for (n_base, n_cand) in [(200, 50), (50, 200), (100, 20), (20, 100), (200, 5)] {
            let comparison = compare(&ramp(100.0, n_base), &ramp(200.0, n_cand), &gate).unwrap();
            assert_eq!(
                comparison.verdict,
                Verdict::Regressed,
                "{n_base}/{n_cand}: {comparison:?}"
            );
            assert_eq!(
                (
                    comparison.baseline.dropped(),
                    comparison.candidate.dropped()
                ),
                (0, 0)
            );
            let faster = compare(&ramp(200.0, n_base), &ramp(100.0, n_cand), &gate).unwrap();
            assert_eq!(faster.verdict, Verdict::Improved, "{n_base}/{n_cand}");
        }
        // Noisy sides, 1.5x slower with five times fewer samples.
        let comparison = compare(&noisy(100.0, 100, 0), &noisy(150.0, 20, 3), &gate).unwrap();
        assert_eq!(comparison.verdict, Verdict::Regressed, "{comparison:?}");
    }

    #[test]
    fn outlier_fences_do_not_depend_on_how_many_samples_a_side_has() {
        let base = noisy(100.0, 50, 0);
        let mut cand = noisy(103.0, 50, 1);
        cand.extend([300.0, 900.0]);
        let fences = stats::balanced_fences(&[&base, &cand], Some(1.5));
        let repeat = |side: &[f64], times: usize| -> Vec<f64> {
            (0..times).flat_map(|_| side.iter().copied()).collect()
        };
        for (bt, ct) in [(4, 1), (1, 4), (3, 7)] {
            let scaled =
                stats::balanced_fences(&[&repeat(&base, bt), &repeat(&cand, ct)], Some(1.5));
            let (a, b) = (fences.unwrap(), scaled.unwrap());
            assert!(
                (a.0 - b.0).abs() < 0.1 && (a.1 - b.1).abs() < 0.1,
                "{a:?} vs {b:?}"
            );
        }
    }

    #[test]
    fn the_filter_never_drops_more_than_a_quarter_of_a_side_and_says_so() {
        // 30 % of the candidate's samples are 10x slower: not a tail to trim but the kernel's
        // behaviour. Trimming them would call it unchanged.
        let gate = GateSettings::default();
        let base = ramp(100.0, 50);
        let mut cand = ramp(100.0, 35);
        cand.extend([1000.0; 15]);
        let comparison = compare(&base, &cand, &gate).unwrap();
        assert_eq!(comparison.verdict, Verdict::Regressed, "{comparison:?}");
        assert_eq!(comparison.candidate.dropped(), 12);
        assert_eq!(comparison.baseline.dropped(), 0);
        let why = comparison.outlier_note.unwrap();
        assert!(
            why.contains("15 of the candidate's 50 samples (30 %)")
                && why.contains("only the 12 farthest were dropped"),
            "{why}"
        );
        // A tail within the allowance is still trimmed, with no note.
        let mut tail = ramp(100.0, 45);
        tail.extend([1000.0; 5]);
        let trimmed = compare(&base, &tail, &gate).unwrap();
        assert_eq!(trimmed.candidate.dropped(), 5);
        assert_eq!(
            trimmed.outlier_note.as_deref(),
            None,
            "5 of 50 is no more than a tenth"
        );
        assert_eq!(trimmed.verdict, Verdict::Unchanged);
        // A slow mode in a fifth of the runs is trimmed as a tail, and said to be.
        let mut fifth = ramp(100.0, 40);
        fifth.extend([150.0; 10]);
        let noted = compare(&base, &fifth, &gate).unwrap();
        assert_eq!(noted.candidate.dropped(), 10);
        assert_eq!(
            noted.outlier_note.as_deref(),
            Some("10 of the candidate's 50 samples (20 %) were dropped as outliers")
        );
    }

    #[test]
    fn kernel_fails_on_two_regressions_or_any_wrong_shape() {
        use Verdict::*;
        let gate = GateSettings::default();
        assert!(decide_kernel(&[Regressed, Unchanged, Improved], &gate).passed);
        let two = decide_kernel(&[Regressed, Regressed, Unchanged], &gate);
        assert!(!two.passed);
        assert_eq!(two.reason, "2 shapes regressed (gate fails at 2)");
        assert!(!decide_kernel(&[Incorrect, Unchanged], &gate).passed);
        assert!(!decide_kernel(&[Error], &gate).passed);
        assert!(decide_kernel(&[NoBaseline, Inconclusive], &gate).passed);
        assert_eq!(
            decide_kernel(&[NoBaseline], &gate).reason,
            "no baseline to compare against"
        );
    }
}
