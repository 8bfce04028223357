//! The statistics behind the performance gate: Tukey-fence outlier filtering, sample summaries,
//! and Welch's unequal-variance t-test with a confidence interval for the ratio of means.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::statistics::{Data, OrderStatistics, Statistics};

/// Samples that survived the outlier filter, and how many did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Filtered {
    pub kept: Vec<f64>,
    pub dropped: usize,
}

/// Tukey's fences `[Q1 - k·IQR, Q3 + k·IQR]` of one set of `samples`, or `None` to keep
/// everything. See [`balanced_fences`] for the two-sided case the gate uses.
pub fn tukey_fences(samples: &[f64], fence: Option<f64>) -> Option<(f64, f64)> {
    balanced_fences(&[samples], fence)
}

/// Tukey's fences of the *equal-weight mixture* of `sides`: each side carries the same total
/// weight, whatever its sample count.
///
/// GPU timings have heavy right tails (preemption, clock changes, a stray context switch): a
/// handful of 2–20× samples moves the mean and inflates the variance enough to hide a real
/// regression or invent one. The fences are drawn from both sides together: fences drawn per
/// side would treat the two sides differently (a minority mode of 24 % of one side dropped, 26 %
/// of the other kept) and invent a shift, while shared fences drop the same values on both
/// sides, and a genuine shift of the candidate widens them rather than being cut off by them.
/// Pooling the raw samples would let the side with more samples own the quartiles: 200 baseline
/// samples at 100 µs and 50 candidate samples at 200 µs pool to Q1 = Q3 ≈ 100, and the whole
/// candidate falls outside. Weighting each side equally keeps both sides inside the middle half
/// of the mixture's mass, so the fences are the same whichever side has more samples.
///
/// When the IQR is zero (quantised timers on very short kernels) the fence width is floored at
/// 0.1 % of the median so identical-looking samples are not all thrown away.
pub fn balanced_fences(sides: &[&[f64]], fence: Option<f64>) -> Option<(f64, f64)> {
    let k = fence?;
    let sides: Vec<&[f64]> = sides.iter().copied().filter(|s| !s.is_empty()).collect();
    if sides.iter().map(|s| s.len()).sum::<usize>() < 4 {
        return None;
    }
    let mut weighted: Vec<(f64, f64)> = sides
        .iter()
        .flat_map(|side| {
            let weight = 1.0 / (side.len() as f64 * sides.len() as f64);
            side.iter().map(move |value| (*value, weight))
        })
        .collect();
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let q1 = weighted_quantile(&weighted, 0.25);
    let q3 = weighted_quantile(&weighted, 0.75);
    let median = weighted_quantile(&weighted, 0.5);
    let spread = (q3 - q1).max(median.abs() * 1e-3);
    Some((q1 - k * spread, q3 + k * spread))
}

/// The `q` quantile of sorted `(value, weight)` pairs whose weights sum to 1: each value owns
/// the middle of its weight's span, and the quantile is interpolated linearly between those
/// midpoints (Hazen's rule; with equal weights it is the usual `(i - 0.5) / n` plotting
/// position).
fn weighted_quantile(sorted: &[(f64, f64)], q: f64) -> f64 {
    let mut below = 0.0;
    let mut previous: Option<(f64, f64)> = None;
    for &(value, weight) in sorted {
        let position = below + weight / 2.0;
        if position >= q {
            return match previous {
                Some((prev_value, prev_position)) if position > prev_position => {
                    let t = (q - prev_position) / (position - prev_position);
                    prev_value + t * (value - prev_value)
                }
                _ => value,
            };
        }
        previous = Some((value, position));
        below += weight;
    }
    previous.map_or(f64::NAN, |(value, _)| value)
}

/// Keeps the samples inside `fences` (all of them for `None`), but drops at most `max_share` of
/// `samples` (1.0: no cap): when more lie outside the fences, only the farthest are dropped. Returns how many the fences alone would have
/// dropped, so the caller can say the cap was reached.
///
/// A heavy tail is a minority of samples; when the fences would remove more than that, they are
/// cutting into what the kernel actually does (a slow mode in a third of its runs), and hiding
/// it would hide a regression.
pub fn filter_capped(
    samples: &[f64],
    fences: Option<(f64, f64)>,
    max_share: f64,
) -> (Filtered, usize) {
    let Some((low, high)) = fences else {
        return (
            Filtered {
                kept: samples.to_vec(),
                dropped: 0,
            },
            0,
        );
    };
    let distance_outside = |sample: f64| (low - sample).max(sample - high);
    let mut outside: Vec<(usize, f64)> = samples
        .iter()
        .enumerate()
        .map(|(index, sample)| (index, distance_outside(*sample)))
        .filter(|(_, distance)| *distance > 0.0 || distance.is_nan())
        .collect();
    let would_drop = outside.len();
    let cap = (samples.len() as f64 * max_share).floor() as usize;
    // Farthest first; the stable sort keeps sample order among equals, so the result is
    // deterministic.
    outside.sort_by(|a, b| b.1.total_cmp(&a.1));
    outside.truncate(cap);
    let mut dropped = vec![false; samples.len()];
    for (index, _) in &outside {
        dropped[*index] = true;
    }
    let kept: Vec<f64> = samples
        .iter()
        .zip(&dropped)
        .filter(|(_, gone)| !**gone)
        .map(|(sample, _)| *sample)
        .collect();
    (
        Filtered {
            dropped: samples.len() - kept.len(),
            kept,
        },
        would_drop,
    )
}

/// Location and spread of one side's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 denominator).
    pub stddev: f64,
    pub median: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        let n = samples.len();
        let mean = samples.mean();
        let stddev = if n > 1 { samples.std_dev() } else { 0.0 };
        let median = Data::new(samples.to_vec()).median();
        Summary {
            n,
            mean,
            stddev,
            median,
        }
    }

    fn variance_of_mean(&self) -> f64 {
        self.stddev * self.stddev / self.n as f64
    }
}

/// Welch's t-test of "candidate is slower than baseline", with a confidence interval for the
/// ratio of means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// t statistic of (candidate mean - baseline mean).
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// One-sided p-value for "candidate mean > baseline mean".
    pub p_slower: f64,
    /// One-sided p-value for "candidate mean < baseline mean".
    pub p_faster: f64,
    /// candidate mean / baseline mean.
    pub ratio: f64,
    /// Lower and upper bounds of the two-sided (1 - 2α) interval for the ratio. The bounds are
    /// the one-sided α bounds, so `ci_low > 1` exactly when `p_slower < α`.
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Runs Welch's test on two summaries (each needs n ≥ 2 and a positive baseline mean).
///
/// The interval treats the baseline mean as known when dividing by it: ratio bounds are
/// `1 + (Δ ± t_{1-α,df}·se) / baseline_mean`. That keeps the interval and the test in exact
/// agreement; the ignored variance of the denominator is small next to the gate's 10 % margin.
pub fn welch(baseline: &Summary, candidate: &Summary, alpha: f64) -> Welch {
    let diff = candidate.mean - baseline.mean;
    let (vb, vc) = (baseline.variance_of_mean(), candidate.variance_of_mean());
    let se = (vb + vc).sqrt();
    let ratio = candidate.mean / baseline.mean;
    if se == 0.0 || !se.is_finite() {
        // Both sides are constant: the difference is either exactly zero or certain.
        let (p_slower, p_faster) = match diff.partial_cmp(&0.0) {
            Some(std::cmp::Ordering::Greater) => (0.0, 1.0),
            Some(std::cmp::Ordering::Less) => (1.0, 0.0),
            _ => (1.0, 1.0),
        };
        return Welch {
            t: if diff == 0.0 {
                0.0
            } else {
                diff.signum() * f64::INFINITY
            },
            df: (baseline.n + candidate.n).saturating_sub(2) as f64,
            p_slower,
            p_faster,
            ratio,
            ci_low: ratio,
            ci_high: ratio,
        };
    }
    let df = (vb + vc).powi(2)
        / (vb * vb / (baseline.n as f64 - 1.0) + vc * vc / (candidate.n as f64 - 1.0));
    let t = diff / se;
    // df is finite and positive whenever se is; the normal limit is the honest fallback.
    let df = if df.is_finite() && df > 0.0 {
        df
    } else {
        f64::INFINITY
    };
    let Ok(student) = StudentsT::new(0.0, 1.0, df) else {
        unreachable!("Student's t with unit scale and positive df is always valid")
    };
    let quantile = student.inverse_cdf(1.0 - alpha);
    Welch {
        t,
        df,
        p_slower: student.sf(t),
        p_faster: student.cdf(t),
        ratio,
        ci_low: 1.0 + (diff - quantile * se) / baseline.mean,
        ci_high: 1.0 + (diff + quantile * se) / baseline.mean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance * b.abs().max(1e-300)
    }

    // Reference values from SciPy 1.17.1:
    //   scipy.stats.ttest_ind(candidate, baseline, equal_var=False, alternative="greater")
    // which implements Welch's test with Welch–Satterthwaite degrees of freedom independently
    // of statrs. The arrays are reproduced here exactly.
    #[test]
    fn welch_matches_scipy() {
        struct Case {
            baseline: &'static [f64],
            candidate: &'static [f64],
            t: f64,
            df: f64,
            p_greater: f64,
        }
        let cases = [
            Case {
                baseline: &[10.0, 10.2, 9.9, 10.1, 10.3, 9.8, 10.0, 10.1],
                candidate: &[10.9, 11.2, 11.0, 10.8, 11.4, 11.1],
                t: 9.697_035_164_148_348,
                df: 8.900_774_566_895_47,
                p_greater: 2.503_943_669_726_013_3e-6,
            },
            Case {
                baseline: &[37.6, 37.9, 38.1, 37.7, 37.8, 38.0, 37.5, 37.9, 38.2, 37.6],
                candidate: &[37.7, 37.8, 38.0, 37.9, 37.6, 38.3, 37.8, 37.7, 37.9, 38.1],
                t: 0.506_514_010_089_924_8,
                df: 17.832_486_211_187_15,
                p_greater: 0.309_350_522_618_839_55,
            },
            Case {
                baseline: &[100.0, 101.0, 99.0, 102.0, 98.0],
                candidate: &[95.0, 96.0, 94.0, 97.0, 93.0, 95.5, 94.5],
                t: -5.773_502_691_896_258,
                df: 7.714_285_714_285_713_5,
                p_greater: 0.999_761_063_050_652_8,
            },
        ];
        for case in cases {
            let w = welch(
                &Summary::of(case.baseline),
                &Summary::of(case.candidate),
                0.05,
            );
            assert!(close(w.t, case.t, 1e-9), "t {} vs {}", w.t, case.t);
            assert!(close(w.df, case.df, 1e-9), "df {} vs {}", w.df, case.df);
            assert!(
                close(w.p_slower, case.p_greater, 1e-6),
                "p {} vs {}",
                w.p_slower,
                case.p_greater
            );
            assert!(close(w.p_faster, 1.0 - case.p_greater, 1e-6));
        }
    }

    #[test]
    fn interval_agrees_with_test() {
        let baseline = Summary::of(&[10.0, 10.2, 9.9, 10.1, 10.3, 9.8, 10.0, 10.1]);
        let candidate = Summary::of(&[10.9, 11.2, 11.0, 10.8, 11.4, 11.1]);
        let w = welch(&baseline, &candidate, 0.05);
        assert!(w.ci_low > 1.0 && w.p_slower < 0.05);
        assert!(w.ci_low < w.ratio && w.ratio < w.ci_high);
        // At alpha = p the lower bound sits exactly on 1.
        let at_p = welch(&baseline, &candidate, w.p_slower);
        assert!((at_p.ci_low - 1.0).abs() < 1e-9, "{}", at_p.ci_low);
    }

    #[test]
    fn constant_samples_do_not_divide_by_zero() {
        let same = Summary::of(&[5.0, 5.0, 5.0]);
        let w = welch(&same, &same, 0.05);
        assert_eq!((w.p_slower, w.p_faster, w.ratio), (1.0, 1.0, 1.0));
        let slower = Summary::of(&[6.0, 6.0, 6.0]);
        let w = welch(&same, &slower, 0.05);
        assert_eq!((w.p_slower, w.ratio), (0.0, 1.2));
    }

    #[test]
    fn fences_drop_the_tail_and_count_it() {
        let mut samples: Vec<f64> = (0..48).map(|i| 10.0 + (i % 7) as f64 * 0.05).collect();
        samples.extend([25.0, 210.0]);
        let filtered = filter_capped(&samples, tukey_fences(&samples, Some(1.5)), 1.0).0;
        assert_eq!(filtered.dropped, 2);
        assert!(filtered.kept.iter().all(|s| *s < 11.0));
        assert_eq!(
            filter_capped(&samples, tukey_fences(&samples, None), 1.0)
                .0
                .dropped,
            0
        );
    }

    #[test]
    fn zero_iqr_keeps_identical_samples() {
        let mut samples = vec![1.024; 40];
        samples.push(1.0245);
        samples.push(3.0);
        let filtered = filter_capped(&samples, tukey_fences(&samples, Some(1.5)), 1.0).0;
        assert_eq!(filtered.dropped, 1);
    }
}
