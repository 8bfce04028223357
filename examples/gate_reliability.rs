//! How often does the gate cry wolf, and how often does it catch a real regression?
//!
//! Simulates kernels of 5 shapes with noisy, heavy-tailed GPU-like timings and runs the real
//! decision (outlier filter → Welch → ≥ 2 regressed shapes) many times:
//!
//!   cargo run --release --example gate_reliability [-- TRIALS]
//!
//! Scenarios:
//! - `target`: 5 % Gaussian noise plus 2 % outliers at 1.5–3×, 50 samples a side.
//! - `gpu-like`: per-process offsets of ±0.5 % on the median, and 0–14 % of samples in a tail
//!   of 1.1–21× (what CUDA-event samples of PyTorch SDPA looked like on an H100).
//!
//! Each prints the false-failure rate of an A/A comparison and the detection rate when 2 of the
//! 5 shapes are 15 % slower, with and without outlier filtering, with 50 samples a side and with
//! unequal counts (a baseline stored with another `timing.samples`, or a harness that returns
//! fewer samples than asked): the verdict must not depend on which side has more samples.
//!
//! A second table runs the same-runner A/B test of [`gatekeeper::ab`] (TRIALS / 5 simulated
//! jobs per cell): each round is a base and a candidate process, each with a lognormal
//! per-process factor on top of the `gpu-like` model, judged by the log-ratio of their medians;
//! threshold 3 %, alpha 0.05, 3 to 30 rounds, a kernel fails at >= 2 regressed shapes. Every
//! job runs on a machine 0.88-1.12x as fast as the one the stored baseline came from; the
//! factor is shared by both A/B sides and cancels, while the stored-baseline Welch gate (same
//! threshold) sees it as a change.

use gatekeeper::ab::{side_order, AbDecision, AbOutcome, AbSide, AbVerdict, Round, SequentialTest};
use gatekeeper::compare::{compare, decide_kernel, in_doubt, Verdict};
use gatekeeper::config::GateSettings;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

const SHAPE_MEANS_US: [f64; 5] = [12.0, 38.0, 95.0, 410.0, 1480.0];

#[derive(Clone, Copy)]
enum Scenario {
    Target,
    GpuLike,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Target => "target (5 % noise, 2 % outliers 1.5-3x)",
            Scenario::GpuLike => "gpu-like (process drift, 0-14 % tail 1.1-21x)",
        }
    }

    /// One process's samples of a kernel whose true time is `mean`.
    fn samples(self, rng: &mut StdRng, mean: f64, count: usize) -> Vec<f64> {
        match self {
            Scenario::Target => {
                let noise: Normal<f64> = Normal::new(1.0, 0.05).unwrap();
                (0..count)
                    .map(|_| {
                        let x = mean * noise.sample(rng).max(0.5);
                        if rng.random::<f64>() < 0.02 {
                            x * rng.random_range(1.5..3.0)
                        } else {
                            x
                        }
                    })
                    .collect()
            }
            Scenario::GpuLike => {
                let offset: f64 = 1.0 + Normal::new(0.0, 0.005).unwrap().sample(rng);
                let noise: Normal<f64> = Normal::new(1.0, 0.01).unwrap();
                let tail_rate = rng.random_range(0.0..0.14);
                (0..count)
                    .map(|_| {
                        let x = mean * offset * noise.sample(rng).max(0.5);
                        if rng.random::<f64>() < tail_rate {
                            // Log-uniform between 1.1× and 21×: mostly mild, sometimes huge.
                            x * (rng.random_range(1.1f64.ln()..21f64.ln())).exp()
                        } else {
                            x
                        }
                    })
                    .collect()
            }
        }
    }
}

/// Whether one simulated kernel fails the gate; `slowdowns` is per shape.
fn kernel_fails(
    rng: &mut StdRng,
    scenario: Scenario,
    slowdowns: &[f64; 5],
    (n_baseline, n_candidate): (usize, usize),
    gate: &GateSettings,
) -> bool {
    let verdicts: Vec<Verdict> = SHAPE_MEANS_US
        .iter()
        .zip(slowdowns)
        .map(|(mean, slowdown)| {
            let baseline = scenario.samples(rng, *mean, n_baseline);
            let candidate = scenario.samples(rng, mean * slowdown, n_candidate);
            compare(&baseline, &candidate, gate).map_or(Verdict::Inconclusive, |c| c.verdict)
        })
        .collect();
    !decide_kernel(&verdicts, gate).passed
}

fn rate(trials: usize, mut fails: impl FnMut() -> bool) -> f64 {
    (0..trials).filter(|_| fails()).count() as f64 / trials as f64 * 100.0
}

const AB_TEST: SequentialTest = SequentialTest {
    threshold: 0.03,
    alpha: 0.05,
    min_rounds: 3,
    max_rounds: 30,
};
const AB_SAMPLES: usize = 50;
const AB_OUTCOMES: [AbOutcome; 4] = [
    AbOutcome::Regressed,
    AbOutcome::Unchanged,
    AbOutcome::Improved,
    AbOutcome::Inconclusive,
];

/// How much faster or slower the job's runner is than the stored baseline's.
#[derive(Clone, Copy)]
enum Machine {
    Between(f64, f64),
    Fixed(f64),
}

impl Machine {
    fn draw(self, rng: &mut StdRng) -> f64 {
        match self {
            Machine::Between(low, high) => rng.random_range(low..high),
            Machine::Fixed(factor) => factor,
        }
    }

    fn label(self) -> String {
        match self {
            Machine::Between(low, high) => format!("{low:.2}-{high:.2}x"),
            Machine::Fixed(factor) => format!("{factor:.2}x"),
        }
    }
}

/// One process's samples: the `gpu-like` model around `mean`, times its own lognormal factor.
fn process_samples(rng: &mut StdRng, mean: f64, process: &Normal<f64>) -> Vec<f64> {
    let factor = process.sample(rng).exp();
    Scenario::GpuLike.samples(rng, mean * factor, AB_SAMPLES)
}

/// One shape judged by A/B rounds until the sequential test stops.
fn ab_shape(rng: &mut StdRng, true_us: [f64; 2], process: &Normal<f64>) -> AbVerdict {
    let mut log_ratios = Vec::new();
    loop {
        let (mut base, mut candidate) = (Vec::new(), Vec::new());
        for side in side_order(log_ratios.len()) {
            match side {
                AbSide::Base => base = process_samples(rng, true_us[0], process),
                AbSide::Candidate => candidate = process_samples(rng, true_us[1], process),
            }
        }
        let round = Round::from_samples(&base, &candidate);
        log_ratios.push(round.map_or(f64::NAN, |r| r.log_ratio()));
        if let AbDecision::Final(verdict) = AB_TEST.decide(&log_ratios) {
            return verdict;
        }
    }
}

/// What one simulated job says, each as "the kernel fails": by A/B on every shape (`check
/// --ab`), by the stored-baseline Welch gate alone (`confirm: none`), and by the stored gate
/// with its doubtful shapes settled by A/B (`confirm: ab`, the default); then each shape's A/B
/// verdict and how many shapes `confirm: ab` measured again.
struct Job {
    ab_fails: bool,
    stored_fails: bool,
    confirmed_fails: bool,
    ab: Vec<AbVerdict>,
    confirmed_shapes: usize,
}

fn ab_job(
    rng: &mut StdRng,
    slowdowns: &[f64; 5],
    machine: Machine,
    process: &Normal<f64>,
    gate: &GateSettings,
) -> Job {
    let machine = machine.draw(rng);
    let mut ab = Vec::new();
    let mut stored = Vec::new();
    let mut confirmed = Vec::new();
    let mut confirmed_shapes = 0;
    for (mean, slowdown) in SHAPE_MEANS_US.iter().zip(slowdowns) {
        let here = mean * machine;
        let shape_ab = ab_shape(rng, [here, here * slowdown], process);
        ab.push(shape_ab);
        let baseline = process_samples(rng, *mean, process);
        let candidate = process_samples(rng, here * slowdown, process);
        let (verdict, test) = compare(&baseline, &candidate, gate)
            .map_or((Verdict::Inconclusive, None), |c| (c.verdict, Some(c.test)));
        stored.push(verdict);
        // The A/B rounds are measured after, and independently of, the stored comparison.
        if in_doubt(verdict, test.as_ref(), gate) {
            confirmed_shapes += 1;
            confirmed.push(shape_ab.verdict.verdict());
        } else {
            confirmed.push(verdict);
        }
    }
    let regressed = ab
        .iter()
        .filter(|v| v.verdict == AbOutcome::Regressed)
        .count();
    Job {
        ab_fails: regressed >= gate.min_regressed_shapes,
        stored_fails: !decide_kernel(&stored, gate).passed,
        confirmed_fails: !decide_kernel(&confirmed, gate).passed,
        ab,
        confirmed_shapes,
    }
}

/// "mean/max" rounds of the shapes that ended with `outcome`, or "-".
fn rounds_of(verdicts: &[AbVerdict], outcome: AbOutcome) -> String {
    let rounds: Vec<usize> = verdicts
        .iter()
        .filter(|v| v.verdict == outcome)
        .map(|v| v.rounds)
        .collect();
    match rounds.iter().max() {
        None => "-".to_string(),
        Some(max) => {
            let mean = rounds.iter().sum::<usize>() as f64 / rounds.len() as f64;
            format!("{mean:.1}/{max}")
        }
    }
}

fn ab_table(rng: &mut StdRng, trials: usize) {
    let gate = GateSettings {
        regression_threshold: AB_TEST.threshold,
        ..GateSettings::default()
    };
    let unchanged = [1.0; 5];
    let two_slower = [1.0, 1.05, 1.0, 1.05, 1.0];
    let shift = Machine::Between(0.88, 1.12);
    let cells = [
        ("A/A", 0.01, unchanged, shift),
        ("A/A", 0.01, unchanged, Machine::Fixed(1.12)),
        ("2 of 5 at +5 %", 0.01, two_slower, shift),
        ("2 of 5 at +5 %", 0.01, two_slower, Machine::Fixed(0.88)),
        ("A/A", 0.03, unchanged, shift),
        ("2 of 5 at +5 %", 0.03, two_slower, shift),
    ];
    println!();
    println!(
        "A/B, same runner: {trials} jobs per cell, 5 shapes, threshold 3 %, alpha 0.05 \
         (Bonferroni over rounds 3-30), {AB_SAMPLES} samples a process, fail at >= 2 regressed \
         shapes; stored Welch: baseline from a machine at 1.00x, same threshold"
    );
    println!(
        "{:<16} {:>8} {:>11} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "cell",
        "process",
        "machine",
        "--ab",
        "stored",
        "confirm: ab",
        "shapes",
        "rounds:",
        "",
        "",
        "",
        "undecidable"
    );
    println!(
        "{:<16} {:>8} {:>11} {:>10} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "",
        "sd",
        "",
        "fails (%)",
        "fails (%)",
        "fails (%)",
        "A/B'd (%)",
        "regressed",
        "unchanged",
        "improved",
        "inconclusive",
        "shapes (%)"
    );
    for (label, spread, slowdowns, machine) in cells {
        let Ok(process) = Normal::new(0.0, spread) else {
            unreachable!("a positive standard deviation is valid")
        };
        let (mut ab_fails, mut stored_fails, mut confirmed_fails, mut confirmed_shapes) =
            (0, 0, 0, 0);
        let mut verdicts = Vec::new();
        for _ in 0..trials {
            let job = ab_job(rng, &slowdowns, machine, &process, &gate);
            ab_fails += usize::from(job.ab_fails);
            stored_fails += usize::from(job.stored_fails);
            confirmed_fails += usize::from(job.confirmed_fails);
            confirmed_shapes += job.confirmed_shapes;
            verdicts.extend(job.ab);
        }
        let undecidable = verdicts
            .iter()
            .filter(|v| AB_TEST.undecidable_note(v.spread).is_some())
            .count();
        let percent = |count: usize, of: usize| count as f64 / of.max(1) as f64 * 100.0;
        let rounds: Vec<String> = AB_OUTCOMES
            .iter()
            .map(|outcome| rounds_of(&verdicts, *outcome))
            .collect();
        println!(
            "{:<16} {:>7.0}% {:>11} {:>10.2} {:>10.2} {:>12.2} {:>10.1} {:>10} {:>10} {:>10} {:>12} {:>12.2}",
            label,
            spread * 100.0,
            machine.label(),
            percent(ab_fails, trials),
            percent(stored_fails, trials),
            percent(confirmed_fails, trials),
            percent(confirmed_shapes, verdicts.len()),
            rounds[0],
            rounds[1],
            rounds[2],
            rounds[3],
            percent(undecidable, verdicts.len())
        );
    }
    println!(
        "--ab: every shape by A/B; stored: the Welch gate alone (confirm: none); confirm: ab: \
         the Welch gate with its doubtful shapes settled by A/B (the default under --against); \
         rounds: mean/max per A/B shape verdict"
    );
}

fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(10_000);
    let mut rng = StdRng::seed_from_u64(20261124);
    let unchanged = [1.0; 5];
    let two_slower = [1.0, 1.15, 1.0, 1.15, 1.0];
    println!("{trials} trials per cell, 5 shapes, threshold 10 %, alpha 0.05, fail at >= 2 regressed shapes");
    println!(
        "{:<48} {:<18} {:>9} {:>14} {:>26}",
        "scenario", "outliers", "samples", "A/A fails (%)", "2 of 5 at +15 % caught (%)"
    );
    let cells = [
        ("Tukey 1.5xIQR", Some(1.5), (50, 50)),
        ("none (raw Welch)", None, (50, 50)),
        ("Tukey 1.5xIQR", Some(1.5), (50, 200)),
        ("Tukey 1.5xIQR", Some(1.5), (200, 50)),
        ("Tukey 1.5xIQR", Some(1.5), (20, 100)),
        ("Tukey 1.5xIQR", Some(1.5), (100, 20)),
    ];
    for scenario in [Scenario::Target, Scenario::GpuLike] {
        for (label, fence, counts) in cells {
            let gate = GateSettings {
                outlier_fence: fence,
                ..GateSettings::default()
            };
            let false_alarms = rate(trials, || {
                kernel_fails(&mut rng, scenario, &unchanged, counts, &gate)
            });
            let caught = rate(trials, || {
                kernel_fails(&mut rng, scenario, &two_slower, counts, &gate)
            });
            println!(
                "{:<48} {:<18} {:>9} {:>14.2} {:>26.2}",
                scenario.name(),
                label,
                format!("{}/{}", counts.0, counts.1),
                false_alarms,
                caught
            );
        }
    }
    ab_table(&mut rng, (trials / 5).max(1));
}
