//! `gatekeeper history` on a synthetic repository: 500 commits, each refreshing the baselines
//! of 10 kernels × 5 shapes (50 series), every series with 3 planted steps of 5–15 % (up or
//! down) at random commits, amid 1 % noise per refresh and, in 2 % of refreshes, an outlier
//! 10–30 % slow (a bad day on a shared runner).
//!
//!     cargo run --release --example history_bench [-- --commits 500 --noise 0.01 --seed 11]
//!
//! Prints how many planted steps were found at the right commit (± 1), how many changes were
//! reported where none was planted, and how long building the repository and the analysis
//! (walking git, reading every refreshed file, finding the changes) took.

use std::time::Instant;

use gatekeeper::commands::history::{analyse, HistoryOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::json;

const KERNELS: usize = 10;
const SHAPES: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: f64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1)?.parse().ok())
            .unwrap_or(default)
    };
    let commits = value("--commits", 500.0) as usize;
    let noise = Normal::new(0.0, value("--noise", 0.01)).expect("a valid sd");
    let mut rng = StdRng::seed_from_u64(value("--seed", 11.0) as u64);

    // Three steps per series, at least 30 commits apart and from the ends.
    let mut planted: Vec<Vec<(usize, f64)>> = Vec::new();
    for _ in 0..KERNELS * SHAPES {
        let mut at: Vec<usize> = Vec::new();
        while at.len() < 3 {
            let c = rng.random_range(30..commits - 30);
            if at.iter().all(|a| a.abs_diff(c) >= 30) {
                at.push(c);
            }
        }
        at.sort();
        planted.push(
            at.into_iter()
                .map(|c| {
                    let size = rng.random_range(0.05..0.15);
                    (
                        c,
                        if rng.random_bool(0.5) {
                            1.0 + size
                        } else {
                            1.0 / (1.0 + size)
                        },
                    )
                })
                .collect(),
        );
    }

    let dir = tempfile::tempdir().expect("a temporary folder");
    let built = Instant::now();
    let repo = git2::Repository::init(dir.path()).expect("git init");
    std::fs::write(
        dir.path().join("gates.yaml"),
        "version: 1\nshapes:\n  s: {N: 1}\nkernels:\n  - name: k0\n    command: [\"true\"]\n    shapes: [s]\n",
    )
    .expect("gates.yaml");
    let device = dir.path().join("baselines/test-gpu");
    std::fs::create_dir_all(&device).expect("baselines folder");
    let signature = git2::Signature::now("bench", "bench@localhost").expect("a signature");
    let mut levels = vec![100.0f64; KERNELS * SHAPES];
    let mut parent: Option<git2::Oid> = None;
    for commit in 0..commits {
        for kernel in 0..KERNELS {
            let mut shapes = serde_json::Map::new();
            for shape in 0..SHAPES {
                let series = kernel * SHAPES + shape;
                for &(at, factor) in &planted[series] {
                    if at == commit {
                        levels[series] *= factor;
                    }
                }
                let mut median = levels[series] * (1.0 + noise.sample(&mut rng));
                if rng.random_bool(0.02) {
                    median *= rng.random_range(1.1..1.3);
                }
                shapes.insert(
                    format!("s{shape}"),
                    json!({
                        "params": {"N": shape},
                        "samples_us": [median * 0.99, median, median * 1.01],
                        "provenance": {"commit": null, "dirty": false, "date": "2026-11-25T00:00:00Z",
                            "gatekeeper_version": "0.1.0", "warmup": 1, "samples": 3, "seed": 1},
                    }),
                );
            }
            let file = json!({"format": 1, "kernel": format!("k{kernel}"), "device": "Test GPU", "shapes": shapes});
            std::fs::write(device.join(format!("k{kernel}.json")), file.to_string())
                .expect("write");
        }
        let mut index = repo.index().expect("index");
        index
            .add_all(["."], git2::IndexAddOption::DEFAULT, None)
            .expect("add");
        index.write().expect("index write");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let parents: Vec<git2::Commit> = parent
            .map(|p| repo.find_commit(p).expect("parent"))
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        let id = repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                &format!("refresh {commit}"),
                &tree,
                &refs,
            )
            .expect("commit");
        parent = Some(id);
    }
    let build_s = built.elapsed().as_secs_f64();

    let analysed = Instant::now();
    let report = analyse(&HistoryOptions {
        config: dir.path().join("gates.yaml"),
        ..HistoryOptions::default()
    })
    .expect("history");
    let analyse_s = analysed.elapsed().as_secs_f64();

    // Commits in order, oldest first: refresh N is commit N.
    let index_of = |hash: &str| -> usize {
        report.series[0]
            .points
            .iter()
            .position(|p| p.commit == hash)
            .unwrap_or(usize::MAX)
    };
    let (mut found, mut false_steps) = (0, 0);
    for (s, series) in report.series.iter().enumerate() {
        let kernel: usize = series.kernel[1..].parse().expect("k<N>");
        let shape: usize = series.shape[1..].parse().expect("s<N>");
        let planted = &planted[kernel * SHAPES + shape];
        let changes: Vec<usize> = report
            .change_points
            .iter()
            .filter(|c| c.kernel == series.kernel && c.shape == series.shape)
            .map(|c| index_of(&c.commit))
            .collect();
        for (at, factor) in planted {
            if changes.iter().any(|c| c.abs_diff(*at) <= 1) {
                found += 1;
            } else {
                println!(
                    "missed: {}/{} step {factor:.3}x at commit {at}; changes found at {changes:?}",
                    series.kernel, series.shape
                );
                if std::env::var_os("SHOW").is_some() {
                    let around: Vec<String> = series.points
                        [at.saturating_sub(8)..(*at + 8).min(series.points.len())]
                        .iter()
                        .map(|p| format!("{:.1}", p.median_us))
                        .collect();
                    println!("  medians around it: {}", around.join(" "));
                }
            }
        }
        false_steps += changes
            .iter()
            .filter(|c| planted.iter().all(|(at, _)| c.abs_diff(*at) > 1))
            .count();
        let _ = s;
    }
    println!(
        "{commits} commits x {} series, 3 planted steps of 5-15 % each, noise {:.1} %, 2 % outliers at 1.1-1.3x",
        report.series.len(),
        value("--noise", 0.01) * 100.0
    );
    println!(
        "planted steps found at the right commit (+-1): {found} of {}",
        3 * report.series.len()
    );
    println!("changes reported where none was planted: {false_steps}");
    println!("building the repository: {build_s:.2} s; history (git walk, parsing, change points): {analyse_s:.3} s");
}
