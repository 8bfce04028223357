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

use gatekeeper::compare::{compare, decide_kernel, Verdict};
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
}
