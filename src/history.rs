//! Change points in a kernel × shape's history of baseline medians: where the level moved, by
//! how much, and how sure that is.
//!
//! The series is taken in logs (a 10 % step is the same size at 5 µs and at 5 ms). PELT finds
//! the partition into segments of constant mean that minimises the squared error plus a
//! penalty per change, exactly and in linear time on average. The noise level comes from the
//! series itself (the median absolute difference of neighbours, robust to the steps and to
//! single outliers), so the penalty scales with it; outliers are replaced by their
//! neighbourhood's median first. Each change is then tested on its own: a
//! Welch t-test between the segments on either side, capped at [`WINDOW`] points each; a change
//! that does not reach [`ALPHA`] is dropped.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Penalty per change, in units of σ² · ln n: large enough that pure noise of 500 points
/// yields no change (BIC would be 2; outliers in real histories need more).
pub const PENALTY: f64 = 6.0;
/// Fewest points in a segment: a single odd refresh is an outlier, not a level.
pub const MIN_SEGMENT: usize = 3;
/// Points on each side a change is tested with.
pub const WINDOW: usize = 20;
/// A change whose two-sided test p-value is above this is dropped.
pub const ALPHA: f64 = 0.001;

/// One detected change: the first point of the new level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Change {
    pub index: usize,
    /// Mean after / mean before (geometric: of the segments' log means).
    pub ratio: f64,
    pub p_value: f64,
}

/// The changes in `values` (positive: medians in µs).
pub fn changes(values: &[f64]) -> Vec<Change> {
    let logs: Vec<f64> = values
        .iter()
        .map(|v| if *v > 0.0 { v.ln() } else { f64::NAN })
        .collect();
    if logs.len() < 2 * MIN_SEGMENT || logs.iter().any(|x| !x.is_finite()) {
        return Vec::new();
    }
    let sigma = noise(&logs);
    let logs = despike(&logs, sigma);
    if sigma <= 0.0 {
        // A flat series (or nearly): any difference is a change, tested below.
        return pelt(&logs, 1e-12)
            .into_iter()
            .filter_map(|at| test(&logs, at, None))
            .collect();
    }
    let penalty = PENALTY * sigma * sigma * (logs.len() as f64).ln();
    let mut cuts = pelt(&logs, penalty);
    // Each change is tested between its neighbours; the first that fails goes, and the rest
    // are tested again between their new neighbours (a short segment PELT cut off around an
    // outlier must not leave the real step beside it tested on three points).
    loop {
        let mut bounds = vec![0];
        bounds.extend(&cuts);
        bounds.push(logs.len());
        let tested: Vec<(usize, Option<Change>)> = cuts
            .iter()
            .enumerate()
            .map(|(i, &at)| (i, test(&logs, at, Some((bounds[i], bounds[i + 2])))))
            .collect();
        let failing = tested
            .iter()
            .filter(|(_, change)| change.is_none())
            .map(|(i, _)| *i)
            .next();
        match failing {
            None => return tested.into_iter().filter_map(|(_, c)| c).collect(),
            Some(i) => {
                cuts.remove(i);
            }
        }
    }
}

/// `logs` with outliers (a refresh on a bad day, or two in a row) replaced by the median of
/// their neighbourhood: a point more than [`SPIKE`] σ from the median of itself and two
/// neighbours on each side. A median of five keeps a step's edge where it is.
fn despike(logs: &[f64], sigma: f64) -> Vec<f64> {
    let mut out = logs.to_vec();
    if sigma <= 0.0 {
        return out;
    }
    for i in 0..logs.len() {
        let mut five: Vec<f64> = logs[i.saturating_sub(2)..(i + 3).min(logs.len())].to_vec();
        five.sort_by(f64::total_cmp);
        let median = five[five.len() / 2];
        if (logs[i] - median).abs() > SPIKE * sigma {
            out[i] = median;
        }
    }
    out
}

/// How far (in σ) a lone point may stray before it counts as an outlier.
pub const SPIKE: f64 = 4.0;

/// σ of the noise: 1.4826 × the median absolute first difference, over √2.
fn noise(logs: &[f64]) -> f64 {
    let mut diffs: Vec<f64> = logs.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    diffs.sort_by(f64::total_cmp);
    let median = diffs[diffs.len() / 2];
    1.4826 * median / std::f64::consts::SQRT_2
}

/// The optimal change positions (indices where a new segment starts) under `penalty`.
fn pelt(x: &[f64], penalty: f64) -> Vec<usize> {
    let n = x.len();
    let mut sum = vec![0.0; n + 1];
    let mut sq = vec![0.0; n + 1];
    for (i, v) in x.iter().enumerate() {
        sum[i + 1] = sum[i] + v;
        sq[i + 1] = sq[i] + v * v;
    }
    // Squared error of x[s..t] around its mean.
    let cost = |s: usize, t: usize| {
        let m = (t - s) as f64;
        let total = sum[t] - sum[s];
        (sq[t] - sq[s]) - total * total / m
    };
    let mut best = vec![f64::INFINITY; n + 1];
    let mut last = vec![0usize; n + 1];
    best[0] = -penalty;
    let mut candidates: Vec<usize> = vec![0];
    for t in MIN_SEGMENT..=n {
        let mut chosen = (f64::INFINITY, 0);
        for &s in &candidates {
            if t - s < MIN_SEGMENT || !best[s].is_finite() {
                continue;
            }
            let value = best[s] + cost(s, t) + penalty;
            if value < chosen.0 {
                chosen = (value, s);
            }
        }
        best[t] = chosen.0;
        last[t] = chosen.1;
        // Prune: a start that cannot beat the best even before paying the penalty never will.
        candidates.retain(|&s| t - s < MIN_SEGMENT || best[s] + cost(s, t) <= best[t]);
        if t + 1 >= MIN_SEGMENT {
            candidates.push(t + 1 - MIN_SEGMENT);
        }
        candidates.sort_unstable();
        candidates.dedup();
    }
    let mut cuts = Vec::new();
    let mut t = n;
    while t > 0 {
        let s = last[t];
        if s > 0 {
            cuts.push(s);
        }
        t = s;
    }
    cuts.reverse();
    cuts
}

/// The change at `at`, tested between the segments on either side (within `bounds`, and at
/// most [`WINDOW`] points each); `None` when the test does not reach [`ALPHA`].
fn test(logs: &[f64], at: usize, bounds: Option<(usize, usize)>) -> Option<Change> {
    let (start, end) = bounds.unwrap_or((0, logs.len()));
    let before = &logs[start.max(at.saturating_sub(WINDOW))..at];
    let after = &logs[at..end.min(at + WINDOW)];
    if before.len() < 2 || after.len() < 2 {
        return None;
    }
    let (m1, v1) = mean_var(before);
    let (m2, v2) = mean_var(after);
    let (n1, n2) = (before.len() as f64, after.len() as f64);
    let se2 = v1 / n1 + v2 / n2;
    let p_value = if se2 <= 0.0 {
        if m1 == m2 {
            1.0
        } else {
            0.0
        }
    } else {
        let t = (m2 - m1) / se2.sqrt();
        let df = se2 * se2
            / ((v1 / n1).powi(2) / (n1 - 1.0) + (v2 / n2).powi(2) / (n2 - 1.0))
                .max(f64::MIN_POSITIVE);
        match StudentsT::new(0.0, 1.0, df.max(1.0)) {
            Ok(dist) => 2.0 * (1.0 - dist.cdf(t.abs())),
            Err(_) => return None,
        }
    };
    (p_value < ALPHA).then_some(Change {
        index: at,
        ratio: (m2 - m1).exp(),
        p_value,
    })
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

#[cfg(test)]
mod tests_support {
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    pub fn series(steps: &[(usize, f64)], n: usize, sd: f64, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, sd).unwrap();
        let mut level = 100.0;
        (0..n)
            .map(|i| {
                for &(at, factor) in steps {
                    if at == i {
                        level *= factor;
                    }
                }
                level * (1.0 + noise.sample(&mut rng))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::series;
    use super::*;

    #[test]
    fn planted_steps_are_found_where_they_are() {
        let values = series(&[(120, 1.08), (300, 0.90), (410, 1.05)], 500, 0.01, 1);
        let found = changes(&values);
        let at: Vec<usize> = found.iter().map(|c| c.index).collect();
        assert_eq!(at.len(), 3, "{found:?}");
        for (want, got) in [120usize, 300, 410].iter().zip(&at) {
            assert!(want.abs_diff(*got) <= 1, "{found:?}");
        }
        assert!((found[0].ratio - 1.08).abs() < 0.01, "{found:?}");
        assert!((found[1].ratio - 0.90).abs() < 0.01, "{found:?}");
        assert!(found.iter().all(|c| c.p_value < ALPHA));
    }

    #[test]
    fn noise_and_a_lone_outlier_are_not_changes() {
        for seed in 0..20 {
            let mut values = series(&[], 300, 0.02, seed);
            values[150] *= 1.3;
            assert!(changes(&values).is_empty(), "seed {seed}");
        }
        assert!(changes(&[5.0; 40]).is_empty());
        assert!(changes(&[1.0, 2.0]).is_empty());
    }
}

#[cfg(test)]
mod close_steps {
    use super::*;

    #[test]
    fn two_steps_close_together_are_both_found() {
        for seed in 0..30 {
            let values = super::tests_support::series(
                &[(138, 1.10), (176, 0.898), (352, 1.07)],
                500,
                0.01,
                seed,
            );
            let at: Vec<usize> = changes(&values).iter().map(|c| c.index).collect();
            assert_eq!(at.len(), 3, "seed {seed}: {at:?}");
        }
    }
}

#[cfg(test)]
mod outliers_by_a_step {
    use super::*;

    #[test]
    fn outliers_two_apart_before_a_step() {
        let mut values =
            super::tests_support::series(&[(138, 1.114), (176, 0.898), (352, 1.07)], 500, 0.01, 3);
        values[172] *= 1.27;
        values[174] *= 1.24;
        let found = changes(&values);
        let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
        let sigma = noise(&logs);
        let cleaned = despike(&logs, sigma);
        let cuts = pelt(&cleaned, PENALTY * sigma * sigma * (500f64).ln());
        assert_eq!(found.len(), 3, "{found:?} cuts {cuts:?} sigma {sigma}");
    }
}
