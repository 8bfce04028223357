//! What racing saves in `gatekeeper rank`: simulated rankings of 20 candidates (3 close to
//! each other at the top, 17 spread below) against an incumbent over 8 shapes, with the same
//! stopping rules as the command (`gatekeeper::rank::{losers, settled}`, looks from round 3,
//! at most 30 rounds). Each contestant's process has its own offset per shape (sd `--noise`,
//! default 1 %), as measured between processes on an H100.
//!
//!     cargo run --release --example rank_racing [-- --trials 1000 --noise 0.01]
//!
//! Prints the rounds and contestant-rounds (processes started) per ranking, the cost relative
//! to ranking one candidate alone, and how often the elite was the true top 3.

use gatekeeper::rank::{losers, settled, Evidence, Speedup};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

const SHAPES: usize = 8;
const TOP: usize = 3;
const MAX_ROUNDS: usize = 30;
const MIN_ROUNDS: usize = 3;
const ALPHA: f64 = 0.05;

struct Outcome {
    rounds: usize,
    contestant_rounds: usize,
    elite: Vec<usize>,
}

/// One ranking of `speedups` (true geometric-mean speedups; index 0 is the incumbent, 1.0).
fn rank(speedups: &[f64], noise: f64, rng: &mut StdRng) -> Outcome {
    let offset = Normal::new(0.0, noise).expect("a valid sd");
    let mut evidence: Vec<Evidence> = speedups.iter().map(|_| Evidence::default()).collect();
    let mut alive: Vec<usize> = (0..speedups.len()).collect();
    let mut contestant_rounds = 0;
    let mut rounds = 0;
    while rounds < MAX_ROUNDS && alive.len() > 1 {
        // Each alive contestant's process this round: log time per shape.
        let log_time = |c: usize, rng: &mut StdRng| -> Vec<f64> {
            (0..SHAPES)
                .map(|_| -speedups[c].ln() + offset.sample(rng))
                .collect()
        };
        let incumbent = log_time(0, rng);
        for &c in &alive {
            let row = if c == 0 {
                incumbent.clone()
            } else {
                log_time(c, rng)
            };
            evidence[c]
                .rounds
                .push(incumbent.iter().zip(&row).map(|(i, t)| i - t).collect());
        }
        contestant_rounds += alive.len();
        rounds += 1;
        if rounds < MIN_ROUNDS {
            continue;
        }
        let standings = |alive: &[usize]| -> Vec<(String, Speedup)> {
            alive
                .iter()
                .map(|&c| (c.to_string(), evidence[c].geomean(ALPHA)))
                .collect()
        };
        for loser in losers(&standings(&alive), TOP) {
            let c: usize = loser.parse().expect("an index");
            if c != 0 {
                alive.retain(|&a| a != c);
            }
        }
        if settled(&standings(&alive), TOP) {
            break;
        }
    }
    let mut order: Vec<usize> = (0..speedups.len()).collect();
    order.sort_by(|&a, &b| {
        let g = |c: usize| evidence[c].geomean(ALPHA).speedup;
        g(b).total_cmp(&g(a))
    });
    Outcome {
        rounds,
        contestant_rounds,
        elite: order.into_iter().take(TOP).collect(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let trials = value("--trials", 1000.0) as usize;
    let noise = value("--noise", 0.01);
    let mut rng = StdRng::seed_from_u64(7);
    let (mut rounds, mut processes, mut alone_processes, mut right) = (vec![], vec![], vec![], 0);
    for _ in 0..trials {
        // The incumbent, 3 close candidates at the top, 17 spread below them.
        let mut speedups = vec![1.0, 1.30, 1.29, 1.28];
        speedups.extend((0..17).map(|_| rng.random_range(0.6..1.2)));
        let outcome = rank(&speedups, noise, &mut rng);
        let mut elite = outcome.elite.clone();
        elite.sort();
        right += usize::from(elite == [1, 2, 3]);
        rounds.push(outcome.rounds as f64);
        processes.push(outcome.contestant_rounds as f64);
        // One candidate alone against the incumbent (the closest: a top one).
        let alone = rank(&[1.0, 1.30], noise, &mut rng);
        alone_processes.push(alone.contestant_rounds as f64);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let p95 = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s[(s.len() as f64 * 0.95) as usize - 1]
    };
    let full = 21.0 * MAX_ROUNDS as f64;
    println!("{trials} rankings of 20 candidates (3 close at 1.28-1.30x, 17 at 0.6-1.2x) over {SHAPES} shapes, process noise {:.1} %, top {TOP}", noise * 100.0);
    println!(
        "rounds per ranking: mean {:.1}, p95 {:.0} (at most {MAX_ROUNDS})",
        mean(&rounds),
        p95(&rounds)
    );
    println!(
        "processes (contestant-rounds) per ranking: mean {:.1}, p95 {:.0}; without racing, the same rounds: {:.1}; every contestant for {MAX_ROUNDS} rounds: {full:.0}",
        mean(&processes),
        p95(&processes),
        21.0 * mean(&rounds)
    );
    println!(
        "one candidate ranked alone: mean {:.1} processes; 20 candidates cost {:.1}x that (target: well under 20x)",
        mean(&alone_processes),
        mean(&processes) / mean(&alone_processes)
    );
    println!(
        "elite = the true top 3: {:.1} % of rankings",
        100.0 * right as f64 / trials as f64
    );
}
