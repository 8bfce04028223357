//! Ranking candidates against an incumbent, as an evolutionary loop needs: per-shape speedups
//! from interleaved rounds, the geometric mean across shapes with an interval, racing (a
//! candidate that cannot reach the Top-K stops costing GPU time), the seed's discard rule, and
//! the elite.
//!
//! A round measures every contestant once on every shape, each in a fresh process, so a
//! process's own offset is in the evidence as it is for an A/B round. The statistic of a
//! candidate in a round is the mean over shapes of `ln(incumbent median / candidate median)`:
//! its mean over rounds is the log of the geometric-mean speedup, and the rounds' spread gives
//! a t-interval on it.

use serde::{Deserialize, Serialize};

use crate::ab::t_quantile;

/// One contestant's log speedups over the incumbent: `[round][shape]`.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub rounds: Vec<Vec<f64>>,
}

/// A speedup over the incumbent with its interval (both as multiples: 1.25 is 25 % faster).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Speedup {
    pub speedup: f64,
    /// `None` with fewer than two rounds.
    pub ci: Option<[f64; 2]>,
}

impl Evidence {
    /// The geometric-mean speedup across shapes, with a `1 - alpha` interval over rounds.
    pub fn geomean(&self, alpha: f64) -> Speedup {
        let per_round: Vec<f64> = self
            .rounds
            .iter()
            .map(|shapes| shapes.iter().sum::<f64>() / shapes.len().max(1) as f64)
            .collect();
        interval(&per_round, alpha)
    }

    /// Shape `shape`'s speedup, with a `1 - alpha` interval over rounds.
    pub fn shape(&self, shape: usize, alpha: f64) -> Speedup {
        let values: Vec<f64> = self
            .rounds
            .iter()
            .filter_map(|shapes| shapes.get(shape).copied())
            .collect();
        interval(&values, alpha)
    }
}

/// `exp` of the mean of `logs`, with the t-interval of the mean.
fn interval(logs: &[f64], alpha: f64) -> Speedup {
    let n = logs.len();
    if n == 0 {
        return Speedup {
            speedup: f64::NAN,
            ci: None,
        };
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Speedup {
            speedup: mean.exp(),
            ci: None,
        };
    }
    let variance = logs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_quantile(alpha, n) * (variance / n as f64).sqrt();
    Speedup {
        speedup: mean.exp(),
        ci: Some([(mean - half).exp(), (mean + half).exp()]),
    }
}

/// Who leaves the race: among `standings` (name, geomean), every one whose interval lies
/// entirely below the lower end of the `top`-th best's (by point estimate), as F-race and
/// successive halving drop a configuration that cannot make the cut. Nobody leaves while
/// `top` or fewer remain, nor on a look without intervals.
pub fn losers(standings: &[(String, Speedup)], top: usize) -> Vec<String> {
    if standings.len() <= top || top == 0 {
        return Vec::new();
    }
    let mut order: Vec<&(String, Speedup)> = standings.iter().collect();
    order.sort_by(|a, b| b.1.speedup.total_cmp(&a.1.speedup));
    let Some(cut) = order[top - 1].1.ci.map(|[low, _]| low) else {
        return Vec::new();
    };
    order[top..]
        .iter()
        .filter(|(_, s)| s.ci.is_some_and(|[_, high]| high < cut))
        .map(|(name, _)| name.clone())
        .collect()
}

/// Whether the Top-K is settled: the `top`-th best's interval lies entirely above every
/// other contestant's below it. Then more rounds cannot change who is in the elite.
pub fn settled(standings: &[(String, Speedup)], top: usize) -> bool {
    if standings.len() <= top {
        return standings.iter().all(|(_, s)| s.ci.is_some());
    }
    let mut order: Vec<&Speedup> = standings.iter().map(|(_, s)| s).collect();
    order.sort_by(|a, b| b.speedup.total_cmp(&a.speedup));
    let Some([cut, _]) = order[top - 1].ci else {
        return false;
    };
    order[top..]
        .iter()
        .all(|s| s.ci.is_some_and(|[_, high]| high < cut))
}

/// The seed's words for a speedup (Excellent ≥ 2×, Good ≥ 1.5×, Modest ≥ 1.1×, Parity ≥ 0.9×,
/// Regression below).
pub fn rating(speedup: f64) -> &'static str {
    crate::record::rate_speedup(speedup).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(per_round: &[[f64; 2]]) -> Evidence {
        Evidence {
            rounds: per_round.iter().map(|r| r.to_vec()).collect(),
        }
    }

    #[test]
    fn the_geomean_is_the_mean_of_log_speedups_across_shapes_and_rounds() {
        // 2× on one shape, 0.5× on the other: a geometric mean of 1.
        let e = evidence(&[[2f64.ln(), 0.5f64.ln()], [2f64.ln(), 0.5f64.ln()]]);
        let g = e.geomean(0.05);
        assert!((g.speedup - 1.0).abs() < 1e-12);
        let [low, high] = g.ci.unwrap();
        assert!((low - 1.0).abs() < 1e-9 && (high - 1.0).abs() < 1e-9);
        assert!((e.shape(0, 0.05).speedup - 2.0).abs() < 1e-12);
        // One round: a point, no interval.
        assert!(evidence(&[[0.1, 0.1]]).geomean(0.05).ci.is_none());
    }

    #[test]
    fn a_clear_loser_leaves_and_a_close_one_stays() {
        let s = |x: f64, low: f64, high: f64| Speedup {
            speedup: x,
            ci: Some([low, high]),
        };
        let standings = vec![
            ("a".to_string(), s(1.5, 1.45, 1.55)),
            ("b".to_string(), s(1.3, 1.25, 1.35)),
            ("close".to_string(), s(1.2, 1.15, 1.28)),
            ("loser".to_string(), s(0.8, 0.78, 0.82)),
        ];
        assert_eq!(losers(&standings, 2), ["loser"]);
        assert!(!settled(&standings, 2));
        assert!(losers(&standings, 4).is_empty());
        let decided = vec![
            ("a".to_string(), s(1.5, 1.45, 1.55)),
            ("b".to_string(), s(1.3, 1.25, 1.35)),
            ("c".to_string(), s(1.0, 0.95, 1.05)),
        ];
        assert!(settled(&decided, 2));
        // Without intervals nobody leaves.
        let early = vec![
            (
                "a".to_string(),
                Speedup {
                    speedup: 2.0,
                    ci: None,
                },
            ),
            (
                "b".to_string(),
                Speedup {
                    speedup: 0.1,
                    ci: None,
                },
            ),
        ];
        assert!(losers(&early, 1).is_empty());
    }
}
