//! The statistics of a same-runner A/B comparison: base and candidate measured in the same job,
//! in alternating processes, judged from rounds and stopped as soon as the verdict is certain.
//!
//! A stored baseline mixes the change with the machine and the day it was measured on, and the
//! samples of one process are not independent draws of "this kernel on this runner". Here the
//! unit of evidence is the round: one base process and one candidate process, reduced to the
//! log-ratio of their medians. A machine factor shared by both sides cancels in the ratio, and
//! the process-to-process spread is in the evidence instead of being ignored.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::statistics::{Data, OrderStatistics, Statistics};

use crate::compare::Verdict;

/// The fewest rounds a verdict may rest on: two rounds give one degree of freedom, whose t
/// quantiles are too wide to be useful and whose spread estimate is one number.
pub const MIN_ROUNDS: usize = 3;

/// Which build a process measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AbSide {
    Base,
    #[default]
    Candidate,
}

impl AbSide {
    /// As `GATEKEEPER_SIDE` and the reports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AbSide::Base => "base",
            AbSide::Candidate => "candidate",
        }
    }
}

/// The order in which round `round` (counted from 0) runs its two processes: ABBA alternation,
/// so that a drift within the job (clocks warming, a neighbour starting) is charged to each side
/// equally instead of always to the side that runs second.
pub fn side_order(round: usize) -> [AbSide; 2] {
    if round % 2 == 0 {
        [AbSide::Base, AbSide::Candidate]
    } else {
        [AbSide::Candidate, AbSide::Base]
    }
}

/// One round: each side's robust centre, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Round {
    pub base_us: f64,
    pub candidate_us: f64,
}

impl Round {
    /// The round from each process's samples, centred by their medians (a process's heavy tail
    /// of preempted launches must not move its centre). `None` when a side has no samples, a
    /// sample that is not finite, or a median that is not positive.
    pub fn from_samples(base: &[f64], candidate: &[f64]) -> Option<Round> {
        Some(Round {
            base_us: positive_median(base)?,
            candidate_us: positive_median(candidate)?,
        })
    }

    /// `ln(candidate / base)`: a slowdown and the matching speed-up are symmetric around 0, and
    /// the mean of log-ratios is the log of their geometric mean.
    pub fn log_ratio(&self) -> f64 {
        (self.candidate_us / self.base_us).ln()
    }
}

fn positive_median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() || samples.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let median = Data::new(samples.to_vec()).median();
    (median > 0.0).then_some(median)
}

/// The verdict of an A/B comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbOutcome {
    /// A threshold-sized slowdown is established.
    Regressed,
    /// A threshold-sized slowdown is ruled out (the candidate may still be slightly slower, or
    /// much faster: the test stops at the first look that clears the gate).
    Unchanged,
    /// A threshold-sized speed-up is established by the look that stopped.
    Improved,
    /// The round budget was spent, or a round was unusable, before either could be said.
    Inconclusive,
}

impl AbOutcome {
    /// The shape verdict it becomes.
    pub fn verdict(self) -> Verdict {
        match self {
            AbOutcome::Regressed => Verdict::Regressed,
            AbOutcome::Unchanged => Verdict::Unchanged,
            AbOutcome::Improved => Verdict::Improved,
            AbOutcome::Inconclusive => Verdict::Inconclusive,
        }
    }
}

/// A shape's A/B comparison as the run record keeps it (`ab` in each result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbResult {
    /// `regressed`, `unchanged`, `improved` or `inconclusive`: the shape's final verdict.
    pub verdict: Verdict,
    /// Geometric mean of the rounds' candidate/base ratios of medians; `null` when no round
    /// could be used.
    pub ratio: Option<f64>,
    /// The interval for `ratio` at the level of the look that stopped; `null` when the test
    /// stopped before it could form one.
    pub ratio_ci: Option<[f64; 2]>,
    /// Rounds measured: each one base and one candidate process.
    pub rounds: usize,
    /// Standard deviation of the rounds' log-ratios: the spread across processes.
    pub spread: Option<f64>,
    /// Each round's medians as `[base, candidate]`, in µs, in the order measured.
    pub medians_us: Vec<[f64; 2]>,
    /// The commit the base was built from.
    pub base_commit: String,
    /// Seconds the rounds took, both sides' processes included.
    #[serde(default)]
    pub wall_s: f64,
    /// Why the test stopped without a verdict, or why the spread leaves the threshold
    /// undecidable here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl AbResult {
    /// The record of a finished test over `rounds`, with `note` if one applies.
    pub fn new(
        verdict: &AbVerdict,
        rounds: &[Round],
        base_commit: &str,
        note: Option<String>,
    ) -> AbResult {
        let finite = |x: f64| x.is_finite().then_some(x);
        let ci = verdict.ratio_ci;
        AbResult {
            verdict: verdict.verdict.verdict(),
            ratio: finite(verdict.ratio),
            ratio_ci: (ci[0].is_finite() && ci[1].is_finite()).then_some(ci),
            rounds: verdict.rounds,
            spread: finite(verdict.spread).filter(|_| verdict.rounds > 1),
            medians_us: rounds
                .iter()
                .map(|round| [round.base_us, round.candidate_us])
                .collect(),
            base_commit: base_commit.to_string(),
            wall_s: 0.0,
            note,
        }
    }
}

/// A final A/B verdict with the evidence behind it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbVerdict {
    pub verdict: AbOutcome,
    /// Geometric mean of the rounds' candidate/base ratios.
    pub ratio: f64,
    /// The interval for `ratio` at the level spent on the look that stopped.
    pub ratio_ci: [f64; 2],
    pub rounds: usize,
    /// Standard deviation of the rounds' log-ratios: the process-to-process spread.
    pub spread: f64,
}

/// What to do after a round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AbDecision {
    /// Measure another round.
    Continue,
    Final(AbVerdict),
}

/// A sequential test of the mean log-ratio, looked at after every round.
///
/// Each look is a two-sided t-interval for the mean log-ratio at level `alpha / looks`, where
/// the looks are rounds `min_rounds..=max_rounds` (Bonferroni alpha spending). Looking after
/// every round and stopping at the first decisive interval would, with a fixed level, raise the
/// error rate with every look; splitting alpha across the looks keeps it valid without any
/// assumption about how the looks are correlated, because the probability that *some* look errs
/// is at most the sum of the looks' error rates. It is conservative for the same reason: the
/// looks share most of their rounds, so the true error rate is well below `alpha`, paid for with
/// a few more rounds than an exact group-sequential boundary would need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequentialTest {
    /// Relative slowdown that counts as a regression (0.03 = 3 %).
    pub threshold: f64,
    /// Error rate over all looks.
    pub alpha: f64,
    /// The first look; raised to [`MIN_ROUNDS`] if lower.
    pub min_rounds: usize,
    /// The last look: the verdict is final here whatever the interval says.
    pub max_rounds: usize,
}

impl SequentialTest {
    /// Out-of-range settings as (field, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            let got = self.threshold;
            problems.push(("threshold", format!("must be in (0, 1), got {got}")));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            problems.push(("alpha", format!("must be in (0, 1), got {}", self.alpha)));
        }
        if self.min_rounds < MIN_ROUNDS {
            let got = self.min_rounds;
            problems.push(("min_rounds", format!("must be at least 3, got {got}")));
        }
        if self.max_rounds < self.min_rounds {
            problems.push(("max_rounds", "must be at least min_rounds".to_string()));
        }
        problems
    }

    fn first_look(&self) -> usize {
        self.min_rounds.max(MIN_ROUNDS)
    }

    fn last_look(&self) -> usize {
        self.max_rounds.max(self.first_look())
    }

    /// The two-sided level of each look's interval.
    pub fn look_alpha(&self) -> f64 {
        self.alpha / (self.last_look() - self.first_look() + 1) as f64
    }

    /// The decision after the rounds so far. Never final before `min_rounds`; always final at
    /// `max_rounds`. A log-ratio that is not finite (a round the caller could not measure) makes
    /// the verdict `Inconclusive` at once: no interval can be trusted with it.
    pub fn decide(&self, log_ratios: &[f64]) -> AbDecision {
        let rounds = log_ratios.len();
        if log_ratios.iter().any(|x| !x.is_finite()) {
            let finite: Vec<f64> = log_ratios
                .iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect();
            let (mean, spread) = mean_and_spread(&finite);
            let ratio = mean.exp();
            return AbDecision::Final(AbVerdict {
                verdict: AbOutcome::Inconclusive,
                ratio,
                ratio_ci: [f64::NAN, f64::NAN],
                rounds,
                spread,
            });
        }
        if rounds < self.first_look() {
            return AbDecision::Continue;
        }
        let (mean, spread) = mean_and_spread(log_ratios);
        let half = t_quantile(self.look_alpha(), rounds) * spread / (rounds as f64).sqrt();
        // Zero spread gives a zero half-width: the point value decides, by the same rules.
        let half = if half.is_finite() { half } else { 0.0 };
        let (low, high) = (mean - half, mean + half);
        let regression = self.threshold.ln_1p();
        let verdict = if low > regression {
            Some(AbOutcome::Regressed)
        } else if high < (-self.threshold).ln_1p() {
            Some(AbOutcome::Improved)
        } else if high < regression {
            Some(AbOutcome::Unchanged)
        } else if rounds >= self.last_look() {
            Some(AbOutcome::Inconclusive)
        } else {
            None
        };
        match verdict {
            None => AbDecision::Continue,
            Some(verdict) => AbDecision::Final(AbVerdict {
                verdict,
                ratio: mean.exp(),
                ratio_ci: [low.exp(), high.exp()],
                rounds,
                spread,
            }),
        }
    }

    /// [`undecidable_note`] for this test's threshold, round budget and per-look level.
    pub fn undecidable_note(&self, spread: f64) -> Option<String> {
        undecidable_note(spread, self.threshold, self.last_look(), self.look_alpha())
    }
}

/// Mean and sample standard deviation (0 for fewer than two values).
fn mean_and_spread(values: &[f64]) -> (f64, f64) {
    let mean = values.mean();
    let spread = if values.len() > 1 {
        values.std_dev()
    } else {
        0.0
    };
    (mean, spread)
}

/// The `1 - alpha/2` quantile of Student's t with `rounds - 1` degrees of freedom.
pub fn t_quantile(alpha: f64, rounds: usize) -> f64 {
    let df = rounds.saturating_sub(1).max(1) as f64;
    match StudentsT::new(0.0, 1.0, df) {
        Ok(student) => student.inverse_cdf(1.0 - alpha / 2.0),
        Err(_) => f64::INFINITY,
    }
}

/// A plain sentence when a kernel's process-to-process `spread` (sd of log-ratios) is too large
/// for `max_rounds` rounds to decide `threshold`: even an unchanged kernel's interval at the
/// last look (two-sided level `look_alpha`) would be wider than the distance from 0 to
/// `ln(1 + threshold)`, so the test could only end `Inconclusive`. Saying so beats a silent
/// `Inconclusive`: the fix is a quieter harness or a larger threshold, not another run.
pub fn undecidable_note(
    spread: f64,
    threshold: f64,
    max_rounds: usize,
    look_alpha: f64,
) -> Option<String> {
    if max_rounds < 2 {
        return None;
    }
    let half = t_quantile(look_alpha, max_rounds) * spread / (max_rounds as f64).sqrt();
    (half > threshold.ln_1p()).then(|| {
        format!(
            "spread across processes {} %: a {} % threshold cannot be decided in {max_rounds} rounds",
            percent(spread),
            percent(threshold)
        )
    })
}

/// `0.054` as `5.4`, `0.03` as `3`.
fn percent(fraction: f64) -> String {
    let text = format!("{:.1}", fraction * 100.0);
    text.strip_suffix(".0").map_or(text.clone(), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    /// A fixed, roughly standard-normal sequence, so that the tests do not depend on a RNG.
    const Z: [f64; 30] = [
        0.5, -1.0, 0.8, -0.3, 1.2, -0.7, 0.1, -1.4, 0.9, 0.2, -0.5, 1.6, -0.9, 0.3, -0.2, 0.7,
        -1.1, 0.4, -0.6, 1.0, -0.4, 0.6, -1.3, 0.0, 1.3, -0.8, 0.2, -0.1, 1.1, -1.2,
    ];

    fn rounds(centre: f64, spread: f64) -> Vec<f64> {
        Z.iter().map(|z| centre + spread * z).collect()
    }

    const TEST: SequentialTest = SequentialTest {
        threshold: 0.03,
        alpha: 0.05,
        min_rounds: 3,
        max_rounds: 30,
    };

    /// Runs `test` round by round until it stops.
    fn run(test: &SequentialTest, log_ratios: &[f64]) -> AbVerdict {
        for n in 0..=log_ratios.len() {
            if let AbDecision::Final(verdict) = test.decide(&log_ratios[..n]) {
                return verdict;
            }
        }
        panic!("no verdict after {} rounds", log_ratios.len());
    }

    // With one look (min = max = 3) the level is alpha itself and df = 2, where Student's t has
    // the closed-form quantile (2p - 1) / sqrt(2p(1 - p)): t(0.975, 2) = 4.302652729749462.
    // Log-ratios 0.01, 0.02, 0.03: mean 0.02, sd 0.01, half-width 4.3027 · 0.01 / √3.
    #[test]
    fn interval_matches_closed_form() {
        let test = SequentialTest {
            min_rounds: 3,
            max_rounds: 3,
            ..TEST
        };
        let p: f64 = 0.975;
        let t = (2.0 * p - 1.0) / (2.0 * p * (1.0 - p)).sqrt();
        assert!((t - 4.302652729749462).abs() < 1e-12);
        let AbDecision::Final(v) = test.decide(&[0.01, 0.02, 0.03]) else {
            panic!("the last look is final");
        };
        assert_eq!(v.verdict, AbOutcome::Inconclusive);
        assert_eq!(v.rounds, 3);
        assert!(close(v.spread, 0.01));
        assert!(close(v.ratio, 1.0202013400267558));
        assert!((v.ratio_ci[0] - 0.9951703234587773).abs() < 1e-9);
        assert!((v.ratio_ci[1] - 1.0458619491133785).abs() < 1e-9);
    }

    #[test]
    fn bonferroni_spends_alpha_over_the_looks() {
        assert!(close(TEST.look_alpha(), 0.05 / 28.0));
        let one_look = SequentialTest {
            max_rounds: 3,
            ..TEST
        };
        assert!(close(one_look.look_alpha(), 0.05));
    }

    #[test]
    fn clear_slowdown_is_regressed_within_few_rounds() {
        let v = run(&TEST, &rounds(1.10f64.ln(), 0.01));
        assert_eq!(v.verdict, AbOutcome::Regressed);
        assert!(v.rounds <= 5, "took {} rounds", v.rounds);
        assert!(v.ratio_ci[0] > 1.03 && v.ratio_ci[0] < v.ratio && v.ratio < v.ratio_ci[1]);
    }

    #[test]
    fn a_a_is_unchanged() {
        let v = run(&TEST, &rounds(0.0, 0.01));
        assert_eq!(v.verdict, AbOutcome::Unchanged);
        assert!(v.rounds <= 8, "took {} rounds", v.rounds);
        assert!(v.ratio_ci[1] < 1.03);
    }

    #[test]
    fn speed_up_stops_as_soon_as_a_regression_is_ruled_out() {
        let v = run(&TEST, &rounds(0.70f64.ln(), 0.01));
        assert_eq!((v.verdict, v.rounds), (AbOutcome::Improved, 3));
        // At round 3 a 15 % speed-up's interval already excludes +3 % but still reaches -3 %.
        let v = run(&TEST, &rounds(0.85f64.ln(), 0.01));
        assert_eq!((v.verdict, v.rounds), (AbOutcome::Unchanged, 3));
        assert!(v.ratio < 0.9 && v.ratio_ci[1] > 0.97);
    }

    #[test]
    fn huge_spread_is_inconclusive_at_the_budget() {
        let v = run(&TEST, &rounds(0.0, 0.20));
        assert_eq!(v.verdict, AbOutcome::Inconclusive);
        assert_eq!(v.rounds, 30);
        assert!(TEST.undecidable_note(v.spread).is_some());
    }

    #[test]
    fn never_decides_before_min_rounds() {
        for n in 0..3 {
            assert_eq!(TEST.decide(&vec![1.0; n]), AbDecision::Continue);
        }
        let later = SequentialTest {
            min_rounds: 6,
            ..TEST
        };
        let slow = rounds(2.0f64.ln(), 0.001);
        assert_eq!(later.decide(&slow[..5]), AbDecision::Continue);
        assert!(matches!(later.decide(&slow[..6]), AbDecision::Final(_)));
        // A min_rounds below 3 is raised to 3.
        let low = SequentialTest {
            min_rounds: 1,
            ..TEST
        };
        assert_eq!(low.decide(&[0.5, 0.5]), AbDecision::Continue);
        assert!(!low.problems().is_empty());
        assert!(TEST.problems().is_empty());
    }

    #[test]
    fn zero_spread_is_decided_by_the_point_value() {
        let decided = |x: f64| match TEST.decide(&[x; 3]) {
            AbDecision::Final(v) => v,
            AbDecision::Continue => panic!("zero spread decides at min_rounds"),
        };
        let slow = decided(0.1);
        assert_eq!(slow.verdict, AbOutcome::Regressed);
        assert_eq!(slow.ratio_ci, [slow.ratio, slow.ratio]);
        assert!(close(slow.ratio, 0.1f64.exp()));
        assert_eq!(decided(0.0).verdict, AbOutcome::Unchanged);
        assert_eq!(decided(0.9f64.ln()).verdict, AbOutcome::Improved);
    }

    #[test]
    fn unusable_rounds_do_not_panic() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let AbDecision::Final(v) = TEST.decide(&[0.0, bad, 0.0]) else {
                panic!("an unusable round is final");
            };
            assert_eq!(v.verdict, AbOutcome::Inconclusive);
            assert_eq!(v.rounds, 3);
        }
        assert_eq!(Round::from_samples(&[], &[1.0]), None);
        assert_eq!(Round::from_samples(&[1.0, f64::NAN], &[1.0]), None);
        assert_eq!(Round::from_samples(&[0.0, 0.0, 1.0], &[1.0]), None);
        assert_eq!(Round::from_samples(&[1.0], &[-1.0]), None);
    }

    #[test]
    fn round_is_the_ratio_of_medians() {
        let round = Round::from_samples(&[10.0, 11.0, 200.0], &[12.0, 1.0, 13.0, 11.0]);
        assert_eq!(
            round,
            Some(Round {
                base_us: 11.0,
                candidate_us: 11.5
            })
        );
        let round = round.unwrap_or(Round {
            base_us: 1.0,
            candidate_us: 1.0,
        });
        assert!(close(round.log_ratio(), (11.5f64 / 11.0).ln()));
    }

    #[test]
    fn rounds_alternate_abba() {
        use AbSide::{Base, Candidate};
        let order: Vec<[AbSide; 2]> = (0..4).map(side_order).collect();
        assert_eq!(
            order,
            [
                [Base, Candidate],
                [Candidate, Base],
                [Base, Candidate],
                [Candidate, Base]
            ]
        );
    }

    #[test]
    fn undecidable_note_names_the_spread_and_threshold() {
        assert_eq!(
            TEST.undecidable_note(0.054).as_deref(),
            Some("spread across processes 5.4 %: a 3 % threshold cannot be decided in 30 rounds")
        );
        assert_eq!(TEST.undecidable_note(0.04), None);
        assert_eq!(TEST.undecidable_note(0.0), None);
        // At the boundary: half-width = ln(1.03) exactly when spread = ln(1.03)·√30 / t.
        let t = t_quantile(TEST.look_alpha(), 30);
        let boundary = 1.03f64.ln() * 30f64.sqrt() / t;
        assert!(TEST.undecidable_note(boundary * 0.999).is_none());
        assert!(TEST.undecidable_note(boundary * 1.001).is_some());
    }
}
