//! Same-runner A/B: the base build, made from git, measured beside the candidate in alternating
//! processes until [`SequentialTest`] is certain (the statistics live in [`crate::ab`]).
//!
//! The base is a commit (the merge-base of HEAD and `--against REF`, or REF's tip). Its
//! gates.yaml and the files its kernels need are written from the commit's tree through libgit2
//! into a private folder (the working tree, index and HEAD are never touched), and its kernels
//! run there with the same harness code, the same NVRTC and the same GPU as the candidate's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::ab::{side_order, AbDecision, AbResult, AbSide, Round, SequentialTest};
use crate::config::{Config, GateSettings};
use crate::error::{Error, Result};
use crate::git::{short_commit, Repo, ResolvedRef};
use crate::measure::{CommandHarness, Failure, Harness, Measurement, RunSettings, TimingOnly};
use crate::plan::Job;
use crate::record::ShapeResult;
use crate::report::neutralise;
use crate::{compare::Verdict, errln};

/// Which shapes a check measures by A/B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbScope {
    /// None: the stored verdicts are final.
    Off,
    /// Shapes whose stored verdict is in doubt ([`needs_confirmation`]).
    Confirm,
    /// Every shape that ran and was correct (`check --ab`).
    Every,
}

/// Whether a shape's stored-baseline verdict must be confirmed beside the base before its
/// kernel is judged ([`crate::compare::in_doubt`]).
pub fn needs_confirmation(result: &ShapeResult, gate: &GateSettings) -> bool {
    crate::compare::in_doubt(result.verdict, result.test.as_ref(), gate)
}

/// The base build: its gates.yaml and files, exported from a commit, and a harness that runs
/// its kernels there.
pub struct Base {
    pub resolved: ResolvedRef,
    /// The exported tree; removed when the base is dropped.
    _export: Export,
    /// The base's gates.yaml, or why it cannot be used (missing, invalid).
    config: std::result::Result<Config, String>,
    harness: Option<CommandHarness>,
}

impl Base {
    /// Exports what `kernels` need from `resolved`'s tree and loads the base's gates.yaml,
    /// found at the same path as `head`'s. A missing or invalid base gates.yaml is not an error
    /// here: each shape is reported as having no usable base.
    pub fn build(
        repo: &Repo,
        resolved: ResolvedRef,
        head: &Config,
        kernels: &[&str],
    ) -> Result<Base> {
        let export = Export::new()?;
        let root = repo.relative(&head.root)?;
        let file_name = head
            .path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("gates.yaml"));
        let config_in_repo = root.join(&file_name);
        let commit = resolved.commit;
        let short = short_commit(&commit.to_string()).to_string();
        // The whole folder of gates.yaml, before gates.yaml is read: it may be a link to a
        // file beside it.
        let config = if repo.kind(commit, &config_in_repo)?.is_some() {
            repo.export(commit, &root, export.path())?;
            let path = export.path().join(&config_in_repo);
            Config::load(&path).map_err(|err| {
                // The problems on one line, without the export's path: it is gone by the
                // time the message is read, and a shape's message is one line of a table.
                let why = match err {
                    Error::Config { problems, .. } => problems.join("; "),
                    err => err.to_string(),
                };
                format!(
                    "the base's {} ({short}) is invalid: {why}",
                    config_in_repo.display()
                )
            })
        } else {
            Err(format!(
                "the base ({short}) has no {}",
                config_in_repo.display()
            ))
        };
        let mut harness = None;
        if let Ok(config) = &config {
            for path in needed_paths(config, kernels, &root) {
                if path != root {
                    repo.export(commit, &path, export.path())?;
                }
            }
            let exe = std::env::current_exe().map_err(|err| {
                Error::Environment(format!("cannot locate the gatekeeper binary: {err}"))
            })?;
            harness = Some(CommandHarness::new(
                config.root.clone(),
                super::cuda_runner(&exe, &config.path),
                AbSide::Base,
            ));
        }
        Ok(Base {
            resolved,
            _export: export,
            config,
            harness,
        })
    }

    /// The base's job for the candidate's `job`: the same kernel on the same shape with the same
    /// parameters, or why the base has none.
    pub fn job<'b>(&'b self, job: &Job) -> std::result::Result<Job<'b>, String> {
        let config = self.config.as_ref().map_err(Clone::clone)?;
        let short = short_commit(&self.resolved.commit.to_string()).to_string();
        let kernel = config.kernel(&job.kernel.name).ok_or_else(|| {
            format!(
                "kernel {} is new: the base ({short}) does not define it",
                job.kernel.name
            )
        })?;
        let (shape, params) = config
            .shapes
            .get_key_value(job.shape)
            .filter(|_| kernel.shapes.iter().any(|s| s == job.shape))
            .ok_or_else(|| {
                format!(
                    "shape {} of kernel {} is new: the base ({short}) does not measure it",
                    job.shape, job.kernel.name
                )
            })?;
        if params != job.params {
            return Err(format!(
                "shape {} has other parameters in the base ({short}): A/B compares the same work only",
                job.shape
            ));
        }
        Ok(Job {
            index: job.index,
            kernel,
            shape,
            params,
        })
    }

    pub fn harness(&self) -> Option<&CommandHarness> {
        self.harness.as_ref()
    }
}

/// The folder the base is exported to: removed when dropped, or by the interrupt handler if
/// the check is interrupted first (a cancelled CI job), which exits without running destructors.
struct Export(tempfile::TempDir);

impl Export {
    fn new() -> Result<Export> {
        let dir = tempfile::Builder::new()
            .prefix("gatekeeper-base-")
            .tempdir()
            .map_err(|err| {
                Error::Environment(format!("cannot create a folder for the base build: {err}"))
            })?;
        crate::measure::remove_on_interrupt(dir.path());
        Ok(Export(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Export {
    fn drop(&mut self) {
        crate::measure::keep_on_interrupt(self.0.path());
    }
}

/// The paths (relative to the repository) that `kernels` of `config`, whose folder is `root`
/// in the repository, need: the whole folder of gates.yaml (a command harness may read anything
/// in it, and a `cuda:` source, which lies inside it, may include any header there, such as
/// `../common/x.cuh`), and the relative `-I` folders of `cuda:` kernels, which may lie outside it.
fn needed_paths(config: &Config, kernels: &[&str], root: &Path) -> Vec<PathBuf> {
    let mut paths = vec![root.to_path_buf()];
    let specs = kernels.iter().filter_map(|name| config.kernel(name));
    for cuda in specs.filter_map(|kernel| kernel.cuda.as_ref()) {
        for option in cuda.options.iter().chain(&cuda.reference.options) {
            if let Some(folder) = option
                .strip_prefix("-I")
                .or_else(|| option.strip_prefix("--include-path="))
                .filter(|folder| Path::new(folder).is_relative())
            {
                // `..` may climb out of the folder of gates.yaml, but not out of the repository:
                // a folder above it (or an absolute one) is the same for both sides.
                paths.extend(within(&root.join(folder)));
            }
        }
    }
    // A folder inside another is written with it (sorted, a folder comes before its contents).
    paths.sort();
    let mut kept: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !kept.iter().any(|folder| path.starts_with(folder)) {
            kept.push(path);
        }
    }
    kept
}

/// `path` with `.` and `..` resolved by name, or `None` if it climbs above where it starts.
fn within(path: &Path) -> Option<PathBuf> {
    let mut resolved = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if !resolved.pop() => return None,
            std::path::Component::ParentDir => {}
            std::path::Component::Normal(name) => resolved.push(name),
            _ => return None,
        }
    }
    Some(resolved)
}

/// How an A/B comparison of one shape ended.
#[derive(Debug)]
pub enum AbRun {
    Done(AbResult),
    /// The base could not be measured: the stored verdict stands.
    BaseFailed(String),
    /// The candidate failed or was wrong in a round: the shape is an error or incorrect.
    CandidateFailed {
        round: usize,
        failure: Failure,
    },
    CandidateIncorrect {
        round: usize,
        measurement: Box<Measurement>,
    },
}

/// Measures rounds of `base` and `candidate` in ABBA order until the test of `gate` stops, or
/// until `gate.ab.max_seconds` are spent. `jobs` and `harnesses` are `[base, candidate]`.
pub fn compare_rounds(
    jobs: [&Job; 2],
    harnesses: [&(dyn Harness + Sync); 2],
    settings: &RunSettings,
    gate: &GateSettings,
    base_commit: &str,
) -> AbRun {
    let test = SequentialTest {
        threshold: gate.regression_threshold,
        alpha: gate.ab.alpha,
        min_rounds: gate.ab.min_rounds,
        max_rounds: gate.ab.max_rounds,
    };
    let started = Instant::now();
    let mut rounds: Vec<Round> = Vec::new();
    let mut log_ratios: Vec<f64> = Vec::new();
    loop {
        let round = log_ratios.len();
        // Each round's processes (fresh ones, see `TimingOnly`) start together, and measuring
        // waits until both are ready: one start-up per round, not two, and none under a timing.
        std::thread::scope(|scope| {
            scope.spawn(|| harnesses[0].prepare(std::slice::from_ref(jobs[0]), settings));
            harnesses[1].prepare(std::slice::from_ref(jobs[1]), settings);
        });
        let mut samples = [Vec::new(), Vec::new()];
        for side in side_order(round) {
            let at = usize::from(side == AbSide::Candidate);
            match harnesses[at].measure(jobs[at], settings) {
                Err(failure) if side == AbSide::Base => {
                    return AbRun::BaseFailed(format!(
                        "the base failed in round {}: {}",
                        round + 1,
                        failure.message
                    ))
                }
                Err(failure) => {
                    return AbRun::CandidateFailed {
                        round: round + 1,
                        failure,
                    }
                }
                Ok(measured) if measured.correct == Some(false) => {
                    if side == AbSide::Base {
                        return AbRun::BaseFailed(format!(
                            "the base's output was incorrect in round {}",
                            round + 1
                        ));
                    }
                    return AbRun::CandidateIncorrect {
                        round: round + 1,
                        measurement: Box::new(measured),
                    };
                }
                Ok(measured) => samples[at] = measured.samples_us,
            }
        }
        match Round::from_samples(&samples[0], &samples[1]) {
            Some(measured) => {
                rounds.push(measured);
                log_ratios.push(measured.log_ratio());
            }
            None => log_ratios.push(f64::NAN),
        }
        let spent = started.elapsed().as_secs_f64() > gate.ab.max_seconds;
        let verdict = match test.decide(&log_ratios) {
            AbDecision::Final(verdict) => verdict,
            AbDecision::Continue if !spent => continue,
            // Out of time: judged as at the last look, without its certainty.
            AbDecision::Continue => {
                let last = SequentialTest {
                    min_rounds: log_ratios.len(),
                    max_rounds: log_ratios.len(),
                    ..test
                };
                let mut verdict = match last.decide(&log_ratios) {
                    AbDecision::Final(verdict) => verdict,
                    AbDecision::Continue => crate::ab::AbVerdict {
                        verdict: crate::ab::AbOutcome::Inconclusive,
                        ratio: f64::NAN,
                        ratio_ci: [f64::NAN; 2],
                        rounds: log_ratios.len(),
                        spread: f64::NAN,
                    },
                };
                verdict.verdict = crate::ab::AbOutcome::Inconclusive;
                let note = format!(
                    "the A/B time budget (gate.ab.max_seconds: {} s) was spent after {} rounds",
                    gate.ab.max_seconds,
                    log_ratios.len()
                );
                let mut ab = AbResult::new(&verdict, &rounds, base_commit, Some(note));
                ab.wall_s = started.elapsed().as_secs_f64();
                return AbRun::Done(ab);
            }
        };
        let note = if log_ratios.iter().any(|x| !x.is_finite()) {
            Some(format!(
                "round {} had no usable median on a side",
                log_ratios.len()
            ))
        } else if verdict.verdict == crate::ab::AbOutcome::Inconclusive {
            test.undecidable_note(verdict.spread)
        } else {
            None
        };
        let mut ab = AbResult::new(&verdict, &rounds, base_commit, note);
        ab.wall_s = started.elapsed().as_secs_f64();
        return AbRun::Done(ab);
    }
}

/// The positions in `results` of the shapes `scope` measures by A/B.
pub fn chosen(results: &[ShapeResult], scope: AbScope, gate: &GateSettings) -> Vec<usize> {
    (0..results.len())
        .filter(|&at| match scope {
            AbScope::Off => false,
            AbScope::Confirm => needs_confirmation(&results[at], gate),
            AbScope::Every => !results[at].verdict.is_fatal(),
        })
        .collect()
}

/// Measures the `chosen` shapes of `results` (whose jobs are `jobs`, in the same order) by
/// A/B, and settles each by it.
pub fn settle(
    results: &mut [ShapeResult],
    jobs: &[Job],
    chosen: &[usize],
    candidate: &CommandHarness,
    base: &Base,
    settings: &RunSettings,
    gate: &GateSettings,
) {
    // The candidate passed gate 2 in the check's own run; the rounds only time.
    let candidate = TimingOnly(candidate);
    errln!(
        "A/B: {} shape(s) measured beside {}",
        chosen.len(),
        base.resolved.describe()
    );
    let base_commit = base.resolved.commit.to_string();
    for &at in chosen {
        let (job, result) = (&jobs[at], &mut results[at]);
        let label = format!("{}/{}", job.kernel.name, job.shape);
        let run = match (base.job(job), base.harness()) {
            (Err(why), _) => AbRun::BaseFailed(why),
            (Ok(_), None) => AbRun::BaseFailed("the base cannot be built".to_string()),
            (Ok(base_job), Some(harness)) => compare_rounds(
                [&base_job, job],
                [&TimingOnly(harness) as &(dyn Harness + Sync), &candidate],
                settings,
                gate,
                &base_commit,
            ),
        };
        errln!("A/B {label}: {}", neutralise(&describe(&run)));
        apply(result, run);
    }
}

/// Writes an A/B run's outcome into the shape's result.
pub fn apply(result: &mut ShapeResult, run: AbRun) {
    match run {
        // Rounds that never formed an interval (the time budget spent before the first look, a
        // round without a usable median) are no evidence against the stored verdict: it
        // stands, or a harness that stalls in the rounds could wash out a regression.
        AbRun::Done(ab) if ab.ratio_ci.is_none() && result.verdict != Verdict::NoBaseline => {
            let why = ab.note.clone().unwrap_or_else(|| "no interval".to_string());
            result.add_note(format!(
                "A/B ended after {} round(s) without an interval ({why}); the stored verdict stands",
                ab.rounds
            ));
            result.ab = Some(ab);
        }
        AbRun::Done(ab) => result.settle_by_ab(ab),
        AbRun::BaseFailed(why) => result.add_note(format!(
            "not measured by A/B: {why}; the stored verdict stands"
        )),
        AbRun::CandidateFailed { round, failure } => {
            result.verdict = Verdict::Error;
            result.message = Some(format!("A/B round {round}: {}", failure.message));
            result.stderr_tail = crate::record::non_empty(&failure.stderr_tail);
        }
        AbRun::CandidateIncorrect { round, measurement } => {
            result.verdict = Verdict::Incorrect;
            result.correct = Some(false);
            result.max_abs_err = measurement.max_abs_err;
            result.max_rel_err = measurement.max_rel_err;
            result.rel_l2_err = measurement.rel_l2_err;
            let why = measurement
                .message
                .unwrap_or_else(|| "the harness reported incorrect output".to_string());
            result.message = Some(format!("A/B round {round}: {why}"));
            result.stderr_tail = crate::record::non_empty(&measurement.stderr_tail);
        }
    }
}

fn describe(run: &AbRun) -> String {
    match run {
        AbRun::Done(ab) => {
            let ratio = ab.ratio.map_or("-".to_string(), |r| format!("{r:.3}x"));
            let ci = ab
                .ratio_ci
                .map_or(String::new(), |[lo, hi]| format!(" [{lo:.3}, {hi:.3}]"));
            format!(
                "{ratio}{ci} over {} rounds in {:.1} s: {}",
                ab.rounds, ab.wall_s, ab.verdict
            )
        }
        AbRun::BaseFailed(why) => format!("not measured: {why}"),
        AbRun::CandidateFailed { round, failure } => {
            format!("round {round}: the candidate failed: {}", failure.message)
        }
        AbRun::CandidateIncorrect { round, .. } => {
            format!("round {round}: the candidate's output was incorrect")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Outcome;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A harness whose `n`-th process (counted per side from 0) returns `outcome(n)`.
    struct Fake<F: Fn(usize) -> Outcome> {
        outcome: F,
        runs: AtomicUsize,
    }

    impl<F: Fn(usize) -> Outcome> Fake<F> {
        fn new(outcome: F) -> Self {
            Fake {
                outcome,
                runs: AtomicUsize::new(0),
            }
        }
    }

    impl<F: Fn(usize) -> Outcome + Sync> Harness for Fake<F> {
        fn measure(&self, _job: &Job, _settings: &RunSettings) -> Outcome {
            let n = self.runs.fetch_add(1, Ordering::SeqCst);
            (self.outcome)(n)
        }
    }

    fn timed(median: f64) -> Outcome {
        Ok(Measurement {
            samples_us: (0..9)
                .map(|i| median * (1.0 + (i as f64 - 4.0) * 1e-3))
                .collect(),
            correct: Some(true),
            max_abs_err: None,
            max_rel_err: None,
            rel_l2_err: None,
            device: Some("Test GPU".into()),
            message: None,
            details: None,
            stderr_tail: String::new(),
        })
    }

    fn config() -> Config {
        Config::from_yaml(
            "version: 1\nshapes: {a: {N: 1}}\nkernels:\n  - {name: k, command: [x], shapes: [a]}\n",
            Path::new("gates.yaml"),
        )
        .unwrap()
    }

    fn gate(threshold: f64) -> GateSettings {
        GateSettings {
            regression_threshold: threshold,
            ..GateSettings::default()
        }
    }

    fn run(
        base: &(dyn Harness + Sync),
        candidate: &(dyn Harness + Sync),
        gate: &GateSettings,
    ) -> AbRun {
        let config = config();
        let job = &crate::plan::plan(&config, &Default::default()).unwrap()[0];
        let settings = RunSettings {
            warmup: 0,
            samples: 9,
            seed: 1,
        };
        compare_rounds([job, job], [base, candidate], &settings, gate, "abc")
    }

    /// ±0.3 % per process, alternating, so the rounds have a spread.
    fn wobble(n: usize) -> f64 {
        if n % 2 == 0 {
            1.003
        } else {
            0.997
        }
    }

    #[test]
    fn an_unchanged_kernel_stops_long_before_the_budget() {
        let base = Fake::new(|n| timed(100.0 * wobble(n)));
        let candidate = Fake::new(|n| timed(100.0 * wobble(n + 1)));
        let AbRun::Done(ab) = run(&base, &candidate, &gate(0.03)) else {
            panic!("not done")
        };
        // ±0.6 % log-ratios: a few rounds rule out +3 % at the Bonferroni level of 28 looks.
        assert_eq!(ab.verdict, Verdict::Unchanged);
        assert!((3..=6).contains(&ab.rounds), "{}", ab.rounds);
        assert_eq!(
            (
                base.runs.load(Ordering::SeqCst),
                candidate.runs.load(Ordering::SeqCst),
            ),
            (ab.rounds, ab.rounds)
        );
        assert_eq!(ab.medians_us.len(), ab.rounds);
        let [low, high] = ab.ratio_ci.unwrap();
        assert!(low < 1.0 && high < 1.03, "{low} {high}");
        assert_eq!(ab.base_commit, "abc");
    }

    #[test]
    fn a_regression_is_found_and_a_speed_up_is_not_one() {
        let base = Fake::new(|n| timed(100.0 * wobble(n)));
        let slower = Fake::new(|n| timed(110.0 * wobble(n + 1)));
        let AbRun::Done(ab) = run(&base, &slower, &gate(0.03)) else {
            panic!("not done")
        };
        assert_eq!(ab.verdict, Verdict::Regressed);
        assert!((ab.ratio.unwrap() - 1.1).abs() < 0.01);
        let faster = Fake::new(|n| timed(90.0 * wobble(n)));
        let AbRun::Done(ab) = run(&base, &faster, &gate(0.03)) else {
            panic!("not done")
        };
        assert_ne!(ab.verdict, Verdict::Regressed);
    }

    #[test]
    fn a_spread_too_wide_for_the_threshold_is_said_plainly() {
        // Processes 0.6-1.6x apart: no 30 rounds can place a 3 % threshold.
        let base = Fake::new(|n| timed(100.0 * if n % 3 == 0 { 1.6 } else { 0.6 }));
        let candidate = Fake::new(|n| timed(100.0 * if n % 2 == 0 { 0.6 } else { 1.6 }));
        let AbRun::Done(ab) = run(&base, &candidate, &gate(0.03)) else {
            panic!("not done")
        };
        assert_eq!((ab.verdict, ab.rounds), (Verdict::Inconclusive, 30));
        let note = ab.note.unwrap();
        assert!(
            note.starts_with("spread across processes")
                && note.contains("3 % threshold cannot be decided"),
            "{note}"
        );
    }

    #[test]
    fn the_time_budget_ends_the_rounds_as_inconclusive() {
        let mut settings = gate(0.03);
        settings.ab.max_seconds = 1e-9;
        // At the threshold: no look can decide, so only the budget stops it.
        let base = Fake::new(|n| timed(100.0 * wobble(n)));
        let candidate = Fake::new(|n| timed(103.0 * wobble(n + 1)));
        let AbRun::Done(ab) = run(&base, &candidate, &settings) else {
            panic!("not done")
        };
        assert_eq!((ab.verdict, ab.rounds), (Verdict::Inconclusive, 1));
        assert!(ab.note.unwrap().contains("gate.ab.max_seconds"));
        assert_eq!(ab.ratio_ci, None);
    }

    #[test]
    fn a_round_without_a_usable_median_ends_the_test() {
        let base = Fake::new(|n| {
            if n == 1 {
                timed(f64::NAN)
            } else {
                timed(100.0)
            }
        });
        let candidate = Fake::new(|_| timed(100.0));
        let AbRun::Done(ab) = run(&base, &candidate, &gate(0.03)) else {
            panic!("not done")
        };
        assert_eq!((ab.verdict, ab.rounds), (Verdict::Inconclusive, 2));
        assert_eq!(ab.medians_us.len(), 1);
        assert!(ab.note.unwrap().contains("round 2 had no usable median"));
    }

    #[test]
    fn failures_are_charged_to_their_side() {
        let fail = |_| -> Outcome {
            Err(Failure {
                message: "exit status: 3".into(),
                stderr_tail: "boom".into(),
            })
        };
        let fine = |_| timed(100.0);
        let AbRun::BaseFailed(why) = run(&Fake::new(fail), &Fake::new(fine), &gate(0.03)) else {
            panic!("the base failed")
        };
        assert_eq!(why, "the base failed in round 1: exit status: 3");
        // Round 2 runs the candidate first (ABBA): it fails there.
        let late = |n| if n == 1 { fail(n) } else { timed(100.0) };
        let AbRun::CandidateFailed { round, failure } =
            run(&Fake::new(fine), &Fake::new(late), &gate(0.03))
        else {
            panic!("the candidate failed")
        };
        assert_eq!((round, failure.stderr_tail.as_str()), (2, "boom"));
        let wrong = |_| {
            let mut outcome = timed(100.0);
            if let Ok(m) = &mut outcome {
                m.correct = Some(false);
            }
            outcome
        };
        assert!(matches!(
            run(&Fake::new(fine), &Fake::new(wrong), &gate(0.03)),
            AbRun::CandidateIncorrect { round: 1, .. }
        ));
        assert!(matches!(
            run(&Fake::new(wrong), &Fake::new(fine), &gate(0.03)),
            AbRun::BaseFailed(why) if why.contains("incorrect in round 1")
        ));
    }

    #[test]
    fn a_cuda_kernel_gets_every_header_it_can_include_from_the_base() {
        let cuda = Config::from_yaml(
            r#"version: 1
shapes: {a: {N: 4096}}
kernels:
  - name: saxpy
    shapes: [a]
    cuda:
      source: kernels/attn/saxpy.cu
      options: ["-I../include", "-Ikernels/attn/inc", "--include-path=../../outside", "-I/usr/include"]
      tensors:
        x: {dtype: f32, shape: [N]}
        out: {dtype: f32, shape: [N], output: true}
      launches:
        - {entry: saxpy, grid: ["ceil(N / 256)"], block: [256], args: [x, out, {i32: N}]}
      reference:
        launches:
          - {entry: saxpy_ref, grid: ["ceil(N / 256)"], block: [256], args: [x, out, {i32: N}]}
      tolerance: {atol: 1.0e-6, rtol: 1.0e-6}
"#,
            Path::new("bench/gates.yaml"),
        )
        .unwrap();
        // gates.yaml is in the repository's `bench` folder. `#include "../common/x.cuh"` in
        // kernels/attn/saxpy.cu reaches bench/kernels/common: the whole folder of gates.yaml is
        // exported. `-I../include` is the repository's `include`, inside the export; a folder
        // above the repository or an absolute one is the same for both sides and not exported.
        let paths = needed_paths(&cuda, &["saxpy"], Path::new("bench"));
        assert_eq!(
            paths,
            [PathBuf::from("bench"), PathBuf::from("include")],
            "{paths:?}"
        );
        // At the repository's root, the whole tree.
        let paths = needed_paths(&config(), &["k"], Path::new(""));
        assert_eq!(paths, [PathBuf::new()]);
    }

    #[test]
    fn confirmation_takes_the_doubtful_shapes_only() {
        let gate = gate(0.1);
        let mut result = ShapeResult {
            verdict: Verdict::Unchanged,
            ..ShapeResult::default()
        };
        assert!(!needs_confirmation(&result, &gate));
        result.test = Some(crate::compare::Test {
            ratio: 1.02,
            ci: [0.95, 1.12],
            p_value: 0.3,
        });
        assert!(needs_confirmation(&result, &gate));
        for verdict in [Verdict::Regressed, Verdict::Inconclusive] {
            result.verdict = verdict;
            assert!(needs_confirmation(&result, &gate));
        }
        for verdict in [
            Verdict::Improved,
            Verdict::NoBaseline,
            Verdict::Incorrect,
            Verdict::Error,
        ] {
            result.verdict = verdict;
            assert!(!needs_confirmation(&result, &gate), "{verdict}");
        }
    }
}
