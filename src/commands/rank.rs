//! `gatekeeper rank`: a kernel's candidates (its gates.yaml `variants`, CUDA source files from
//! `--candidates`, the stored elite of `--population`) through compile and correctness on
//! every shape, then timed in rounds interleaved with the incumbent until the Top-K is
//! settled, racing the rest out; the seed's discard rule; the elite, as JSON for a generator
//! and markdown for a person.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{harness_for, prepare_reports, run_settings};
use crate::ab::MIN_ROUNDS;
use crate::config::{Config, KernelSpec};
use crate::cuda::runner::KERNEL_SPEC_ENV;
use crate::error::{Error, Result};
use crate::measure::{CommandHarness, Harness, Outcome, Resources, RunSettings};
use crate::plan::Job;
use crate::rank::{self, Evidence, Speedup};
use crate::{atomic, errln, exit};

#[derive(Debug, Clone, Default)]
pub struct RankOptions {
    pub config: PathBuf,
    pub kernel: String,
    /// Variants to rank (`None`: all of them, unless `candidates` are given).
    pub variants: Option<Vec<String>>,
    /// Globs of CUDA source files, relative to the folder of gates.yaml.
    pub candidates: Vec<String>,
    pub shapes: Option<Vec<String>>,
    pub top: usize,
    pub population: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    pub html: Option<PathBuf>,
    /// Rounds at most (default: `gate.ab.max_rounds`).
    pub max_rounds: Option<usize>,
}

/// One entrant: the incumbent, a variant, a source file or a stored elite member.
struct Contestant {
    /// As reports show it: the kernel's name, `variant`, or the file's path.
    name: String,
    origin: &'static str,
    spec: KernelSpec,
    /// Hash of what defines it (its source file's bytes and its definition).
    fingerprint: String,
}

/// One contestant's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ranked {
    pub name: String,
    pub origin: String,
    pub geomean_speedup: f64,
    pub geomean_ci: Option<[f64; 2]>,
    pub rating: String,
    /// Rounds it was timed in, and the round it left the race at (`None`: it stayed).
    pub rounds: usize,
    pub left_at: Option<usize>,
    pub shapes: IndexMap<String, ShapeSpeedup>,
    pub source: Option<String>,
    pub fingerprint: String,
    /// What the compiled kernel needs (registers, spills, occupancy, tensor-core SASS).
    pub resources: Vec<Resources>,
    /// The whole definition, so a stored elite member can run again.
    pub spec: KernelSpec,
    /// Gate 4's evidence per shape (class, floor, tensor-pipe and memory throughput), for the
    /// elite of a `cuda:` kernel when Nsight Compute is here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<IndexMap<String, crate::profile::ShapeProfile>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShapeSpeedup {
    pub speedup: f64,
    pub speedup_ci: Option<[f64; 2]>,
    /// Medians over rounds of each round's median, µs.
    pub median_us: f64,
    pub incumbent_median_us: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Excluded {
    pub name: String,
    pub reason: String,
    /// A discarded candidate's standing, for the next generation to learn from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<Box<Ranked>>,
}

/// What `--json` writes.
#[derive(Debug, Serialize)]
pub struct RankReport {
    pub kernel: String,
    pub device: Option<String>,
    pub top: usize,
    pub shapes: Vec<String>,
    pub rounds: usize,
    /// Contestant-rounds timed, and how many every contestant that passed gates 1 and 2
    /// running every round would have been: what racing saved.
    pub contestant_rounds: usize,
    pub contestant_rounds_without_racing: usize,
    pub wall_s: f64,
    pub notes: Vec<String>,
    /// Best first.
    pub elite: Vec<Ranked>,
    /// Every contestant that passed gates 1 and 2 and was not discarded, best first.
    pub ranked: Vec<Ranked>,
    pub discarded: Vec<Excluded>,
    pub failed: Vec<Excluded>,
}

/// The stored elite, one file per kernel and device.
#[derive(Debug, Serialize, Deserialize)]
struct Population {
    format: u32,
    kernel: String,
    device: Option<String>,
    updated_at: String,
    members: Vec<Ranked>,
}

pub fn run(options: &RankOptions) -> Result<u8> {
    let started = Instant::now();
    let config = Config::load(&options.config)?;
    let kernel = config.kernel(&options.kernel).ok_or_else(|| {
        Error::Usage(format!(
            "rank: no kernel {:?} in {}",
            options.kernel,
            config.path.display()
        ))
    })?;
    if options.top == 0 {
        return Err(Error::Usage("rank: --top must be at least 1".to_string()));
    }
    prepare_reports([
        options.json.as_deref(),
        options.markdown.as_deref(),
        options.html.as_deref(),
        options.population.as_deref(),
    ])?;
    let shapes = shapes(&config, kernel, options)?;
    let mut notes = Vec::new();
    let population = options
        .population
        .as_deref()
        .map(read_population)
        .transpose()?
        .flatten();
    if let (Some(population), Some(path)) = (&population, &options.population) {
        if population.kernel != kernel.name {
            return Err(Error::Usage(format!(
                "rank: {} holds the elite of {}, not of {}",
                path.display(),
                population.kernel,
                kernel.name
            )));
        }
    }
    let contestants = contestants(&config, kernel, options, population.as_ref(), &mut notes)?;
    if contestants.len() < 2 {
        return Err(Error::Usage(format!(
            "rank: nothing to rank against {}: give --candidates, or list variants under the kernel in gates.yaml",
            kernel.name
        )));
    }
    let incumbent_jobs = jobs(&config, &contestants[0].spec, &shapes);
    let harness = harness_for(&config, &incumbent_jobs)?;
    let settings = run_settings(&config);

    // Gates 1 and 2 for everyone, every shape.
    let mut failed = Vec::new();
    let mut passed: Vec<(usize, Vec<Resources>)> = Vec::new();
    let mut device = None;
    let all_jobs: Vec<Job> = contestants
        .iter()
        .flat_map(|c| jobs(&config, &c.spec, &shapes[..1]))
        .collect();
    harness.prepare(&all_jobs, &settings);
    for (at, contestant) in contestants.iter().enumerate() {
        match check(&harness, &config, contestant, &shapes, &settings) {
            Ok((found, resources)) => {
                device = device.or(found);
                passed.push((at, resources));
            }
            Err(reason) => {
                errln!("rank: {} failed: {reason}", contestant.name);
                failed.push(Excluded {
                    name: contestant.name.clone(),
                    reason,
                    standing: None,
                });
            }
        }
        harness.retire(&contestant.spec.name);
    }
    if passed.first().map(|(at, _)| *at) != Some(0) {
        let why = failed.first().map(|f| f.reason.clone()).unwrap_or_default();
        return Err(Error::Usage(format!(
            "rank: the incumbent {} does not pass gates 1 and 2 ({why}); there is nothing to rank against",
            kernel.name
        )));
    }
    if let (Some(population), Some(device)) = (&population, &device) {
        if population.device.as_deref().is_some_and(|d| d != device) {
            return Err(Error::Usage(format!(
                "rank: the population file is for {}, this runner's device is {device}",
                population.device.as_deref().unwrap_or("?")
            )));
        }
    }

    // Rounds, racing.
    let max_rounds = options
        .max_rounds
        .unwrap_or(config.gate.ab.max_rounds)
        .max(MIN_ROUNDS);
    let race = race(
        &harness,
        &config,
        &contestants,
        &passed.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
        &shapes,
        &settings,
        options.top,
        max_rounds,
        &mut failed,
    );
    let alpha = config.gate.ab.alpha;
    let mut ranked = Vec::new();
    let mut discarded = Vec::new();
    let contestant_rounds = race.entries.values().map(|e| e.medians.len()).sum();
    let contestant_rounds_without_racing = race.entries.len() * race.rounds;
    for (at, resources) in passed {
        let Some(entry) = race.entries.get(&at) else {
            continue;
        };
        let contestant = &contestants[at];
        let result = standing(contestant, entry, &shapes, alpha, resources);
        match discard_reason(&result, &config) {
            Some(reason) => discarded.push(Excluded {
                name: contestant.name.clone(),
                reason,
                standing: Some(Box::new(result)),
            }),
            None => ranked.push(result),
        }
    }
    ranked.sort_by(|a, b| b.geomean_speedup.total_cmp(&a.geomean_speedup));
    // Gate 4 for the elite: what the next generation needs to know about why they are fast.
    if kernel.cuda.is_some() {
        for member in ranked.iter_mut().take(options.top) {
            // The contestant's definition, with what the CUDA runner needs to find it.
            let Some(contestant) = contestants.iter().find(|c| c.name == member.name) else {
                continue;
            };
            let member_jobs = jobs(&config, &contestant.spec, &shapes);
            if let Some(profiles) = super::profile::evidence(&config, &harness, &member_jobs) {
                member.profile = Some(shapes.iter().cloned().zip(profiles).collect());
            }
        }
    }
    let elite: Vec<Ranked> = ranked.iter().take(options.top).cloned().collect();
    let report = RankReport {
        kernel: kernel.name.clone(),
        device: device.clone(),
        top: options.top,
        shapes: shapes.clone(),
        rounds: race.rounds,
        contestant_rounds,
        contestant_rounds_without_racing,
        wall_s: started.elapsed().as_secs_f64(),
        notes,
        elite,
        ranked,
        discarded,
        failed,
    };

    let written = write_reports(options, &report, &device);
    crate::output::print(&crate::report::neutralise(&terminal(&report)));
    written?;
    let candidates_ranked = report.ranked.iter().any(|r| r.origin != "incumbent");
    Ok(if candidates_ranked || !report.discarded.is_empty() {
        exit::PASS
    } else {
        exit::GATE_FAILED
    })
}

/// The kernel's shapes, or those of `--shapes` (each must be one of them).
fn shapes(config: &Config, kernel: &KernelSpec, options: &RankOptions) -> Result<Vec<String>> {
    let Some(wanted) = &options.shapes else {
        return Ok(kernel.shapes.clone());
    };
    for shape in wanted {
        if !kernel.shapes.contains(shape) {
            return Err(Error::Usage(format!(
                "rank: {} does not run shape {shape:?} (its shapes: {}) in {}",
                kernel.name,
                kernel.shapes.join(", "),
                config.path.display()
            )));
        }
    }
    Ok(wanted.clone())
}

fn jobs<'c>(config: &'c Config, spec: &'c KernelSpec, shapes: &'c [String]) -> Vec<Job<'c>> {
    shapes
        .iter()
        .enumerate()
        .filter_map(|(index, shape)| {
            Some(Job {
                index,
                kernel: spec,
                shape,
                params: config.shapes.get(shape)?,
            })
        })
        .collect()
}

/// The incumbent first, then the variants, the files and the stored elite, each once.
fn contestants(
    config: &Config,
    kernel: &KernelSpec,
    options: &RankOptions,
    population: Option<&Population>,
    notes: &mut Vec<String>,
) -> Result<Vec<Contestant>> {
    let mut incumbent = kernel.clone();
    incumbent.variants = Vec::new();
    let mut out = vec![entrant(config, kernel.name.clone(), "incumbent", incumbent)];
    let wanted: Vec<&str> = match &options.variants {
        Some(names) => names.iter().map(String::as_str).collect(),
        None if options.candidates.is_empty() => {
            kernel.variants.iter().map(|v| v.name.as_str()).collect()
        }
        None => Vec::new(),
    };
    for name in wanted {
        let variant = kernel
            .variants
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "rank: {} has no variant {name:?} (its variants: {})",
                    kernel.name,
                    kernel
                        .variants
                        .iter()
                        .map(|v| v.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        out.push(entrant(
            config,
            name.to_string(),
            "variant",
            kernel.with_variant(variant),
        ));
    }
    for file in candidate_files(config, kernel, &options.candidates)? {
        let mut spec = kernel.clone();
        spec.variants = Vec::new();
        spec.name = format!("{}@{file}", kernel.name);
        if let Some(cuda) = &mut spec.cuda {
            cuda.source = file.clone();
        }
        out.push(entrant(config, file, "file", spec));
    }
    for member in population.map(|p| p.members.as_slice()).unwrap_or_default() {
        let again = entrant(config, member.name.clone(), "elite", member.spec.clone());
        if out.iter().any(|c| c.spec.name == again.spec.name) {
            continue;
        }
        if again.fingerprint != member.fingerprint {
            notes.push(format!(
                "elite member {} changed or is gone since it was stored: not run again",
                member.name
            ));
            continue;
        }
        out.push(again);
    }
    Ok(out)
}

/// A contestant, told to the CUDA runner by its whole definition (a file candidate is in no
/// gates.yaml).
fn entrant(
    config: &Config,
    name: String,
    origin: &'static str,
    mut spec: KernelSpec,
) -> Contestant {
    spec.env.shift_remove(KERNEL_SPEC_ENV);
    let mut hash = Sha256::new();
    hash.update(serde_json::to_string(&spec).unwrap_or_default().as_bytes());
    if let Some(cuda) = &spec.cuda {
        hash.update(std::fs::read(config.root.join(&cuda.source)).unwrap_or_default());
    }
    let fingerprint = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    if spec.cuda.is_some() {
        let json = serde_json::to_string(&spec).unwrap_or_default();
        spec.env.insert(KERNEL_SPEC_ENV.to_string(), json);
    }
    Contestant {
        name,
        origin,
        spec,
        fingerprint,
    }
}

/// The files `--candidates` globs match, relative to the folder of gates.yaml, sorted.
fn candidate_files(config: &Config, kernel: &KernelSpec, globs: &[String]) -> Result<Vec<String>> {
    if globs.is_empty() {
        return Ok(Vec::new());
    }
    if kernel.cuda.is_none() {
        return Err(Error::Usage(format!(
            "rank: --candidates are CUDA sources, and {} is a command kernel (list its variants in gates.yaml)",
            kernel.name
        )));
    }
    let mut files = Vec::new();
    for pattern in globs {
        let full = config.root.join(pattern);
        let matched: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
            .map_err(|err| Error::Usage(format!("rank: --candidates {pattern:?}: {err}")))?
            .filter_map(std::result::Result::ok)
            .filter(|path| path.is_file())
            .collect();
        if matched.is_empty() {
            return Err(Error::Usage(format!(
                "rank: --candidates {pattern:?} matches no file under {}",
                config.root.display()
            )));
        }
        for path in matched {
            let relative = path.strip_prefix(&config.root).unwrap_or(&path);
            files.push(relative.display().to_string());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Gates 1 and 2 on every shape: the device and the static resources, or why it failed.
fn check(
    harness: &CommandHarness,
    config: &Config,
    contestant: &Contestant,
    shapes: &[String],
    settings: &RunSettings,
) -> std::result::Result<(Option<String>, Vec<Resources>), String> {
    let mut device = None;
    let mut resources = Vec::new();
    for job in jobs(config, &contestant.spec, shapes) {
        match harness.measure(&job, settings) {
            Err(failure) => return Err(format!("{}: {}", job.shape, failure.message)),
            Ok(m) if m.correct == Some(false) => {
                let why = m.message.unwrap_or_else(|| "incorrect".to_string());
                return Err(format!("{}: incorrect: {why}", job.shape));
            }
            Ok(m) => {
                device = device.or(m.device);
                if resources.is_empty() {
                    resources = m.details.and_then(|d| d.resources).unwrap_or_default();
                }
            }
        }
    }
    Ok((device, resources))
}

/// One contestant's rounds: per round and shape, its median (µs).
#[derive(Default)]
struct Entry {
    medians: Vec<Vec<f64>>,
    evidence: Evidence,
    left_at: Option<usize>,
}

struct Race {
    entries: HashMap<usize, Entry>,
    rounds: usize,
}

/// Rounds of every contestant still in the race, each in a fresh process per round (all of a
/// round's processes start together), in an order that rotates, until the Top-K is settled or
/// `max_rounds` are spent. A contestant that fails in a round leaves with the reason.
#[allow(clippy::too_many_arguments)]
fn race(
    harness: &CommandHarness,
    config: &Config,
    contestants: &[Contestant],
    passed: &[usize],
    shapes: &[String],
    settings: &RunSettings,
    top: usize,
    max_rounds: usize,
    failed: &mut Vec<Excluded>,
) -> Race {
    let alpha = config.gate.ab.alpha;
    let mut entries: HashMap<usize, Entry> =
        passed.iter().map(|&at| (at, Entry::default())).collect();
    let mut alive: Vec<usize> = passed.to_vec();
    let mut rounds = 0;
    while rounds < max_rounds && alive.len() > 1 {
        let starting: Vec<Job> = alive
            .iter()
            .flat_map(|&at| jobs(config, &contestants[at].spec, &shapes[..1]))
            .collect();
        harness.prepare(&starting, settings);
        let mut order = alive.clone();
        order.rotate_left(rounds % alive.len());
        let mut medians: HashMap<usize, Vec<f64>> = HashMap::new();
        for &at in &order {
            let contestant = &contestants[at];
            let mut row = Vec::new();
            for job in jobs(config, &contestant.spec, shapes) {
                match median(harness.time_only(&job, settings)) {
                    Ok(value) => row.push(value),
                    Err(why) => {
                        failed.push(Excluded {
                            name: contestant.name.clone(),
                            reason: format!("round {}: {}: {why}", rounds + 1, job.shape),
                            standing: None,
                        });
                        break;
                    }
                }
            }
            harness.retire(&contestant.spec.name);
            if row.len() == shapes.len() {
                medians.insert(at, row);
            }
        }
        rounds += 1;
        // A contestant that failed leaves; without the incumbent's medians nothing compares.
        alive.retain(|at| medians.contains_key(at));
        let Some(incumbent) = medians.get(&0).cloned() else {
            break;
        };
        for &at in &alive {
            let entry = entries.entry(at).or_default();
            let row = &medians[&at];
            entry.medians.push(row.clone());
            entry.evidence.rounds.push(
                incumbent
                    .iter()
                    .zip(row)
                    .map(|(i, c)| (i / c).ln())
                    .collect(),
            );
        }
        if rounds < MIN_ROUNDS {
            continue;
        }
        let standings: Vec<(String, Speedup)> = alive
            .iter()
            .map(|at| (at.to_string(), entries[at].evidence.geomean(alpha)))
            .collect();
        for loser in rank::losers(&standings, top) {
            let Ok(at) = loser.parse::<usize>() else {
                continue;
            };
            if at == 0 {
                continue; // the incumbent is the yardstick of every round
            }
            if let Some(entry) = entries.get_mut(&at) {
                entry.left_at = Some(rounds);
            }
            alive.retain(|&a| a != at);
        }
        let standings: Vec<(String, Speedup)> = alive
            .iter()
            .map(|at| (at.to_string(), entries[at].evidence.geomean(alpha)))
            .collect();
        if rank::settled(&standings, top) {
            break;
        }
    }
    entries.retain(|at, entry| !entry.medians.is_empty() || *at == 0);
    Race { entries, rounds }
}

fn median(outcome: Outcome) -> std::result::Result<f64, String> {
    let measured = outcome.map_err(|failure| failure.message)?;
    let mut samples = measured.samples_us;
    samples.retain(|x| x.is_finite());
    if samples.is_empty() {
        return Err("no samples".to_string());
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

fn standing(
    contestant: &Contestant,
    entry: &Entry,
    shapes: &[String],
    alpha: f64,
    resources: Vec<Resources>,
) -> Ranked {
    let incumbent = contestant.origin == "incumbent";
    let geomean = if incumbent {
        Speedup {
            speedup: 1.0,
            ci: Some([1.0, 1.0]),
        }
    } else {
        entry.evidence.geomean(alpha)
    };
    let mid = |values: Vec<f64>| {
        let mut values: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let shapes = shapes
        .iter()
        .enumerate()
        .map(|(s, shape)| {
            let speedup = if incumbent {
                Speedup {
                    speedup: 1.0,
                    ci: Some([1.0, 1.0]),
                }
            } else {
                entry.evidence.shape(s, alpha)
            };
            let median_us = mid(entry
                .medians
                .iter()
                .filter_map(|r| r.get(s).copied())
                .collect());
            (
                shape.clone(),
                ShapeSpeedup {
                    speedup: speedup.speedup,
                    speedup_ci: speedup.ci,
                    median_us,
                    // The candidate's median times its speedup.
                    incumbent_median_us: median_us * speedup.speedup,
                },
            )
        })
        .collect();
    let mut spec = contestant.spec.clone();
    spec.env.shift_remove(KERNEL_SPEC_ENV);
    Ranked {
        name: contestant.name.clone(),
        origin: contestant.origin.to_string(),
        geomean_speedup: geomean.speedup,
        geomean_ci: geomean.ci,
        rating: rank::rating(geomean.speedup).to_string(),
        rounds: entry.medians.len(),
        left_at: entry.left_at,
        shapes,
        source: spec.cuda.as_ref().map(|c| c.source.clone()),
        fingerprint: contestant.fingerprint.clone(),
        resources,
        spec,
        profile: None,
    }
}

/// The seed's rule: slower than the incumbent by more than `gate.regression_threshold` on at
/// least `gate.min_regressed_shapes` shapes, each with an interval entirely on the slow side.
fn discard_reason(ranked: &Ranked, config: &Config) -> Option<String> {
    let threshold = config.gate.regression_threshold;
    let regressed: Vec<String> = ranked
        .shapes
        .iter()
        .filter(|(_, s)| {
            1.0 / s.speedup > 1.0 + threshold && s.speedup_ci.is_some_and(|[_, high]| high < 1.0)
        })
        .map(|(shape, s)| format!("{shape} {:.3}×", 1.0 / s.speedup))
        .collect();
    (regressed.len() >= config.gate.min_regressed_shapes.max(1)).then(|| {
        format!(
            "slower than the incumbent by more than {:.0} % on {} shapes: {}",
            threshold * 100.0,
            regressed.len(),
            regressed.join(", ")
        )
    })
}

fn read_population(path: &Path) -> Result<Option<Population>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io(path, err)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| Error::Usage(format!("{}: not a population file: {err}", path.display())))
}

fn write_reports(
    options: &RankOptions,
    report: &RankReport,
    device: &Option<String>,
) -> Result<()> {
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(report).unwrap_or_default();
        atomic::write(path, format!("{text}\n").as_bytes())?;
    }
    if let Some(path) = &options.markdown {
        atomic::write(path, markdown(report).as_bytes())?;
    }
    if let Some(path) = &options.html {
        atomic::write(path, html(report).as_bytes())?;
    }
    if let Some(path) = &options.population {
        let population = Population {
            format: 1,
            kernel: report.kernel.clone(),
            device: device.clone(),
            updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            members: report.elite.clone(),
        };
        let text = serde_json::to_string_pretty(&population).unwrap_or_default();
        atomic::write(path, format!("{text}\n").as_bytes())?;
    }
    Ok(())
}

fn speedup_text(speedup: f64, ci: Option<[f64; 2]>) -> String {
    match ci {
        Some([low, high]) => format!("{speedup:.3}× [{low:.3}, {high:.3}]"),
        None => format!("{speedup:.3}×"),
    }
}

fn left_text(ranked: &Ranked) -> String {
    match ranked.left_at {
        Some(round) => format!("left at round {round}"),
        None => format!("{} rounds", ranked.rounds),
    }
}

fn terminal(report: &RankReport) -> String {
    let mut out = format!(
        "rank {} on {} ({} shapes, {} rounds, {} of {} contestant-rounds timed, {:.1} s)\n",
        report.kernel,
        report.device.as_deref().unwrap_or("unknown device"),
        report.shapes.len(),
        report.rounds,
        report.contestant_rounds,
        report.contestant_rounds_without_racing,
        report.wall_s
    );
    for (place, ranked) in report.ranked.iter().enumerate() {
        let mark = if place < report.top { "*" } else { " " };
        out.push_str(&format!(
            "{mark} {}. {:<28} {:<30} {:<10} {}\n",
            place + 1,
            ranked.name,
            speedup_text(ranked.geomean_speedup, ranked.geomean_ci),
            ranked.rating,
            left_text(ranked)
        ));
    }
    for excluded in &report.discarded {
        out.push_str(&format!(
            "discarded {}: {}\n",
            excluded.name, excluded.reason
        ));
    }
    for excluded in &report.failed {
        out.push_str(&format!("failed {}: {}\n", excluded.name, excluded.reason));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    out.push_str(&format!(
        "elite (top {}): {}\n",
        report.top,
        report
            .elite
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out
}

fn markdown(report: &RankReport) -> String {
    let cell = |text: &str| crate::report::escape_inline(text);
    let mut out = format!(
        "### gatekeeper rank: {}\n\n{} shapes on {}, {} rounds, {:.1} s; geometric-mean speedup over the incumbent, 95 % interval.\n\n",
        cell(&report.kernel),
        report.shapes.len(),
        cell(report.device.as_deref().unwrap_or("unknown device")),
        report.rounds,
        report.wall_s
    );
    out.push_str("| # | candidate | geomean speedup | rating | rounds |");
    for shape in &report.shapes {
        out.push_str(&format!(" {} |", cell(shape)));
    }
    out.push_str("\n|---|---|---|---|---|");
    out.push_str(&"---|".repeat(report.shapes.len()));
    out.push('\n');
    for (place, ranked) in report.ranked.iter().enumerate() {
        let elite = if place < report.top { " (elite)" } else { "" };
        out.push_str(&format!(
            "| {}{elite} | {} | {} | {} | {} |",
            place + 1,
            cell(&ranked.name),
            speedup_text(ranked.geomean_speedup, ranked.geomean_ci),
            ranked.rating,
            left_text(ranked)
        ));
        for shape in &report.shapes {
            let text = ranked
                .shapes
                .get(shape)
                .map(|s| format!("{:.3}×", s.speedup))
                .unwrap_or_default();
            out.push_str(&format!(" {text} |"));
        }
        out.push('\n');
    }
    let evidence: Vec<&Ranked> = report
        .elite
        .iter()
        .filter(|r| r.profile.is_some())
        .collect();
    if !evidence.is_empty() {
        out.push_str(
            "\n**Gate 4, the elite** (Nsight Compute; tensor pipe and DRAM as % of peak)\n\n",
        );
        out.push_str("| candidate | shape | class | × floor | tensor pipe % | DRAM % | registers / spills |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for member in evidence {
            for (shape, profile) in member.profile.iter().flatten() {
                let metric = |name: &str| {
                    profile
                        .metrics
                        .get(name)
                        .map(|m| format!("{:.1}", m.value))
                        .unwrap_or_else(|| "—".to_string())
                };
                let resources = profile
                    .resources
                    .first()
                    .map(|r| {
                        format!(
                            "{} / {} B",
                            r.registers,
                            r.spill_bytes.map_or("?".to_string(), |b| b.to_string())
                        )
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} | {resources} |\n",
                    cell(&member.name),
                    cell(shape),
                    profile.class.map_or("—", |c| c.as_str()),
                    profile
                        .times_floor
                        .map_or("—".to_string(), |x| format!("{x:.1}×")),
                    metric("tensor_pipe_pct"),
                    metric("dram_pct"),
                ));
            }
        }
    }
    for (title, list) in [("Discarded", &report.discarded), ("Failed", &report.failed)] {
        if list.is_empty() {
            continue;
        }
        out.push_str(&format!("\n**{title}**\n\n"));
        for excluded in list {
            out.push_str(&format!(
                "- {}: {}\n",
                cell(&excluded.name),
                cell(&excluded.reason)
            ));
        }
    }
    out
}

/// The ranking as a page: the contestants' speedups as a forest plot, the table with every
/// shape, the elite's gate-4 evidence, and who was discarded or failed.
fn html(report: &RankReport) -> String {
    use crate::report::html::{page, plot, safe};
    use maud::{html, PreEscaped};
    let mut rows: Vec<plot::SpeedupRow<'_>> = report
        .ranked
        .iter()
        .map(|r| plot::SpeedupRow {
            label: &r.name,
            speedup: r.geomean_speedup,
            ci: r.geomean_ci,
            excluded: false,
        })
        .collect();
    rows.extend(report.discarded.iter().filter_map(|e| {
        let standing = e.standing.as_deref()?;
        Some(plot::SpeedupRow {
            label: &e.name,
            speedup: standing.geomean_speedup,
            ci: standing.geomean_ci,
            excluded: true,
        })
    }));
    let chart = plot::speedups(
        "geometric-mean speedup over the incumbent with its 95 % interval; discarded in grey",
        &rows,
    );
    let body = html! {
        header #verdict.banner.pass {
            h1 { "gatekeeper rank: " code { (safe(&report.kernel)) } }
            p {
                (report.shapes.len()) " shapes on " (safe(report.device.as_deref().unwrap_or("unknown device")))
                ", " (report.rounds) " rounds, " (report.contestant_rounds) " of "
                (report.contestant_rounds_without_racing) " contestant-rounds timed, "
                (format!("{:.1}", report.wall_s)) " s."
            }
            p { "Elite (top " (report.top) "): "
                @for (i, member) in report.elite.iter().enumerate() {
                    @if i > 0 { ", " } code { (safe(&member.name)) }
                }
            }
        }
        section #ranking {
            h2 { "Ranking" }
            (PreEscaped(chart))
            table.ranking {
                thead { tr {
                    th { "#" } th { "candidate" } th.num { "geomean speedup" } th { "rating" } th { "rounds" }
                    @for shape in &report.shapes { th.num { (safe(shape)) } }
                } }
                tbody {
                    @for (place, ranked) in report.ranked.iter().enumerate() {
                        tr {
                            td { (place + 1) @if place < report.top { " (elite)" } }
                            td { code { (safe(&ranked.name)) } }
                            td.num { (speedup_text(ranked.geomean_speedup, ranked.geomean_ci)) }
                            td { (safe(&ranked.rating)) }
                            td { (left_text(ranked)) }
                            @for shape in &report.shapes {
                                td.num { (ranked.shapes.get(shape).map(|s| format!("{:.3}×", s.speedup)).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
        @for member in report.elite.iter().filter(|m| m.profile.is_some()) {
            section.profile {
                h2 { "Gate 4: " code { (safe(&member.name)) } }
                table {
                    thead { tr { th { "shape" } th { "class" } th.num { "× floor" } th.num { "tensor pipe %" } th.num { "DRAM %" } th.num { "registers" } } }
                    tbody {
                        @for (shape, profile) in member.profile.iter().flatten() {
                            tr {
                                td { (safe(shape)) }
                                td { (profile.class.map_or("—", |c| c.as_str())) }
                                td.num { (profile.times_floor.map_or("—".to_string(), |x| format!("{x:.1}×"))) }
                                td.num { (profile.metric("tensor_pipe_pct").map_or("—".to_string(), |v| format!("{v:.1}"))) }
                                td.num { (profile.metric("dram_pct").map_or("—".to_string(), |v| format!("{v:.1}"))) }
                                td.num { (profile.resources.first().map_or(String::new(), |r| r.registers.to_string())) }
                            }
                        }
                    }
                }
            }
        }
        @for (title, list) in [("Discarded", &report.discarded), ("Failed", &report.failed)] {
            @if !list.is_empty() {
                section {
                    h2 { (title) }
                    ul { @for excluded in list { li { code { (safe(&excluded.name)) } ": " (safe(&excluded.reason)) } } }
                }
            }
        }
        @if !report.notes.is_empty() {
            section { h2 { "Notes" } ul { @for note in &report.notes { li { (safe(note)) } } } }
        }
    };
    page(&format!("gatekeeper rank {}", report.kernel), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CUDA runner reads a candidate's definition back from JSON: every kernel and variant
    /// of this repository's gates.yaml must survive the trip.
    #[test]
    fn definitions_survive_the_trip_to_the_runner() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gates.yaml");
        let config = Config::load(&path).unwrap();
        let mut specs = Vec::new();
        for kernel in &config.kernels {
            specs.push(kernel.clone());
            specs.extend(kernel.variants.iter().map(|v| kernel.with_variant(v)));
        }
        assert!(
            specs.len() > config.kernels.len(),
            "the repository ranks variants"
        );
        for spec in specs {
            let json = serde_json::to_string(&spec).unwrap();
            let back: KernelSpec = serde_json::from_str(&json).unwrap();
            assert_eq!(back, spec, "{}", spec.name);
        }
    }

    fn ranked(name: &str, speedup: f64, spec: &KernelSpec) -> Ranked {
        Ranked {
            name: name.into(),
            origin: "variant".into(),
            geomean_speedup: speedup,
            geomean_ci: Some([speedup - 0.01, speedup + 0.01]),
            rating: "Parity".into(),
            rounds: 3,
            left_at: None,
            shapes: ["small", "long"]
                .into_iter()
                .map(|shape| {
                    let speedup = ShapeSpeedup {
                        speedup,
                        speedup_ci: None,
                        median_us: 10.0 / speedup,
                        incumbent_median_us: 10.0,
                    };
                    (shape.to_string(), speedup)
                })
                .collect(),
            source: None,
            fingerprint: "f".into(),
            resources: Vec::new(),
            spec: spec.clone(),
            profile: None,
        }
    }

    #[test]
    fn html_snapshot_and_escaping() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gates.yaml");
        let config = Config::load(&path).unwrap();
        let spec = &config.kernels[0];
        let ranked = vec![
            ranked("incumbent", 1.0, spec),
            ranked("mma<script>alert(1)</script>", 0.93, spec),
        ];
        let report = RankReport {
            kernel: "sdpa".into(),
            device: Some("NVIDIA H100 80GB HBM3".into()),
            top: 1,
            shapes: vec!["small".into(), "long".into()],
            rounds: 3,
            contestant_rounds: 6,
            contestant_rounds_without_racing: 6,
            wall_s: 12.5,
            notes: vec![],
            elite: ranked[..1].to_vec(),
            discarded: vec![Excluded {
                name: "slow".into(),
                reason: "1.20× slower on 2 shapes".into(),
                standing: Some(Box::new(ranked_slow(spec))),
            }],
            failed: vec![Excluded {
                name: "wrong".into(),
                reason: "incorrect on small: max abs err 3.1".into(),
                standing: None,
            }],
            ranked,
        };
        let page = html(&report);
        assert!(!page.contains("<script>"));
        assert_eq!(page.matches("class=\"speedup\"").count(), 3);
        insta::assert_snapshot!(page);
    }

    fn ranked_slow(spec: &KernelSpec) -> Ranked {
        ranked("slow", 0.83, spec)
    }
}
