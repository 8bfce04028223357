//! The commands, each a function from typed options to an exit code. They wire the pipeline
//! together: config → plan → measure → compare → report.

pub mod ab;
pub mod check;
pub mod doctor;
pub mod history;
pub mod offline;
pub mod profile;
pub mod rank;
pub mod refresh;

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ab::AbSide;
use crate::atomic;
use crate::config::Config;
use crate::cuda;
use crate::error::{Error, Result};
use crate::exit;
use crate::measure::{CommandHarness, Harness, Outcome, RunSettings};
use crate::plan::Job;
use crate::record::RunRecord;
use crate::report::{format_us, neutralise, Exporter, Html, JUnit, Json, Markdown, Terminal};
use crate::{errln, output};

/// Where a command writes its reports (`--json`, `--junit`, `--markdown`).
#[derive(Debug, Clone, Default)]
pub struct ReportPaths {
    pub json: Option<std::path::PathBuf>,
    pub junit: Option<std::path::PathBuf>,
    pub markdown: Option<std::path::PathBuf>,
    pub html: Option<std::path::PathBuf>,
}

impl ReportPaths {
    fn each(&self) -> [(Option<&std::path::Path>, &dyn Exporter); 4] {
        [
            (self.json.as_deref(), &Json),
            (self.junit.as_deref(), &JUnit),
            (self.markdown.as_deref(), &Markdown),
            (self.html.as_deref(), &Html),
        ]
    }

    /// See [`prepare_reports`].
    pub fn prepare(&self) -> Result<()> {
        prepare_reports(self.each().map(|(path, _)| path))
    }

    fn write(&self, run: &RunRecord) -> Result<()> {
        for (path, exporter) in self.each() {
            if let Some(path) = path {
                atomic::write(path, exporter.render(run).as_bytes())?;
            }
        }
        Ok(())
    }
}

/// Creates the reports' folders and checks that each path can be written (a folder is refused;
/// `/dev/stdout` or a symlink is written through): run before any measuring, so a typo costs no
/// GPU time.
fn prepare_reports<'a>(paths: impl IntoIterator<Item = Option<&'a std::path::Path>>) -> Result<()> {
    for path in paths.into_iter().flatten() {
        atomic::check_writable(path)?;
    }
    Ok(())
}

/// Writes the reports, shows the verdict, and returns the exit code the verdict calls for.
fn finish(run: &RunRecord, reports: &ReportPaths) -> Result<u8> {
    let written = reports.write(run);
    show(run, written)
}

/// Shows the verdict once the reports are written (`written`), and returns the exit code.
/// Files come first, so a reader who stops reading stdout (`| head`) cannot cost them; a report
/// that could not be written still lets the verdict show before the command fails.
fn show(run: &RunRecord, written: Result<()>) -> Result<u8> {
    output::print(&Terminal.render(run));
    written?;
    Ok(if run.verdict.passed() {
        exit::PASS
    } else {
        exit::GATE_FAILED
    })
}

/// The harness for a config: command harnesses as written, and for `cuda:` kernels this very
/// binary in runner mode. Checks first that the GPU kernels in `jobs` can run here at all.
fn harness_for(config: &Config, jobs: &[Job]) -> Result<CommandHarness> {
    let mut gpu_kernels: Vec<&str> = jobs
        .iter()
        .filter(|job| job.kernel.cuda.is_some())
        .map(|job| job.kernel.name.as_str())
        .collect();
    gpu_kernels.dedup();
    cuda::preflight(&gpu_kernels)?;
    let exe = std::env::current_exe()
        .map_err(|err| Error::Environment(format!("cannot locate the gatekeeper binary: {err}")))?;
    let config_path = config
        .path
        .canonicalize()
        .map_err(|err| Error::io(&config.path, err))?;
    Ok(CommandHarness::new(
        config.root.clone(),
        cuda_runner(&exe, &config_path),
        AbSide::Candidate,
    ))
}

/// How a harness runs a `cuda:` kernel of the gates.yaml at `config_path`: this very binary,
/// in runner mode, in a child process.
fn cuda_runner(exe: &std::path::Path, config_path: &std::path::Path) -> Vec<String> {
    vec![
        exe.display().to_string(),
        "--config".to_string(),
        config_path.display().to_string(),
        cuda::RUNNER_SUBCOMMAND.to_string(),
    ]
}

fn run_settings(config: &Config) -> RunSettings {
    RunSettings {
        warmup: config.timing.warmup,
        samples: config.timing.samples,
        seed: config.timing.seed,
    }
}

/// Every job's outcome, and the seconds each took (the harness's process included).
struct Measured {
    outcomes: Vec<Outcome>,
    seconds: Vec<f64>,
}

/// Measures every job in order. On a terminal a progress bar shows on stderr; in a CI log,
/// where a bar would be noise, each job gets one line instead.
fn measure_all(jobs: &[Job], harness: &dyn Harness, settings: &RunSettings) -> Measured {
    let interactive = std::io::stderr().is_terminal();
    let bar = if interactive {
        let bar =
            ProgressBar::with_draw_target(Some(jobs.len() as u64), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    harness.prepare(jobs, settings);
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut seconds = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate() {
        let label = format!("{}/{}", job.kernel.name, job.shape);
        bar.set_message(label.clone());
        let started = std::time::Instant::now();
        let outcome = harness.measure(job, settings);
        seconds.push(started.elapsed().as_secs_f64());
        if !interactive {
            errln!(
                "[{}/{}] {label}: {}",
                index + 1,
                jobs.len(),
                neutralise(&describe(&outcome))
            );
        }
        if let Some(warning) = short_of_samples(&outcome, settings) {
            bar.suspend(|| errln!("warning: {label}: {warning}"));
        }
        bar.inc(1);
        outcomes.push(outcome);
        let last_of_kernel = jobs
            .get(index + 1)
            .is_none_or(|next| next.kernel.name != job.kernel.name);
        if last_of_kernel {
            harness.done_with(&job.kernel.name);
        }
    }
    bar.finish_and_clear();
    Measured { outcomes, seconds }
}

/// A harness may return fewer samples than `timing.samples` (protocol v1 accepts any two or
/// more), which weakens the test without failing it: say so rather than let it pass unnoticed.
fn short_of_samples(outcome: &Outcome, settings: &RunSettings) -> Option<String> {
    let measurement = outcome.as_ref().ok().filter(|m| m.correct != Some(false))?;
    let returned = measurement.samples_us.len();
    // Nothing timed (a launch for the profiler) or a wrong result is not a short count.
    (returned > 0 && (returned as u64) < settings.samples).then(|| {
        format!(
            "the harness returned {returned} of the {} samples requested",
            settings.samples
        )
    })
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Err(failure) => format!("error: {}", failure.message),
        Ok(m) if m.correct == Some(false) => "incorrect".to_string(),
        Ok(m) => {
            let mut sorted = m.samples_us.clone();
            sorted.sort_by(f64::total_cmp);
            format!(
                "median {} µs over {} samples",
                format_us(sorted[sorted.len() / 2]),
                sorted.len()
            )
        }
    }
}
