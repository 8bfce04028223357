//! The command harness, protocol v1: any program that times a kernel and prints its samples.
//!
//! gatekeeper runs the program in the config's folder with the job in environment variables;
//! the last non-empty line of its stdout is a JSON object with `samples_us` and, optionally,
//! `correct`, `max_abs_err`, `max_rel_err`, `rel_l2_err` and `device`. Everything else it prints is ignored.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use wait_timeout::ChildExt;

use super::serve::{Server, Starting};
use super::{Details, Failure, Harness, KernelTime, Measurement, Outcome, RunSettings};
use crate::ab::AbSide;
use crate::plan::Job;
use std::collections::HashMap;

/// How much of each output stream is kept: the protocol only needs the end of stdout, and
/// 32 MiB holds the longest report line `timing.samples` allows.
const STREAM_TAIL_BYTES: usize = 32 << 20;
/// How long output may keep arriving after the harness exits (from a process that escaped its
/// group), before gatekeeper stops waiting for it.
const STREAM_GRACE: Duration = Duration::from_secs(2);
/// Lines of stderr quoted in reports.
const STDERR_TAIL_LINES: usize = 20;
const STDERR_TAIL_CHARS: usize = 4000;

pub struct CommandHarness {
    /// Folder the harness runs in: the folder of gates.yaml.
    pub workdir: PathBuf,
    /// How to run a `cuda:` kernel: gatekeeper itself, as a protocol v1 harness in a child
    /// process, so a crash or hang in one kernel cannot take the run down.
    pub cuda_runner: Vec<String>,
    /// The harness launches the kernel once for a profiler and reports no samples.
    pub launch_only: bool,
    /// Which build this harness measures, told to it as `GATEKEEPER_SIDE`.
    pub side: AbSide,
    /// Each kernel's `setup:` outcome in this tree, so it runs once per kernel and a failure
    /// fails every later shape of the kernel with the same message.
    pub setups: Mutex<HashMap<String, Result<(), Failure>>>,
    /// The protocol v2 harnesses serving, by kernel.
    servers: Mutex<HashMap<String, Server>>,
    /// What each kernel's v2 harness said when it became ready, kept after it stops.
    announced: Mutex<HashMap<String, Announced>>,
    /// Processes started and start-up seconds, by kernel.
    spent: Mutex<indexmap::IndexMap<String, KernelTime>>,
}

impl CommandHarness {
    /// A harness for the build in `workdir`, running `cuda:` kernels with `cuda_runner`.
    pub fn new(workdir: PathBuf, cuda_runner: Vec<String>, side: AbSide) -> CommandHarness {
        CommandHarness {
            workdir,
            cuda_runner,
            launch_only: false,
            side,
            setups: Mutex::new(HashMap::new()),
            servers: Mutex::new(HashMap::new()),
            announced: Mutex::new(HashMap::new()),
            spent: Mutex::new(indexmap::IndexMap::new()),
        }
    }

    /// The device a protocol v2 harness of `kernel` named in its ready line.
    pub fn served_device(&self, kernel: &str) -> Option<String> {
        self.announced.lock().ok()?.get(kernel)?.device.clone()
    }

    /// The key a protocol v2 harness of `kernel` named in its ready line (`inputs_key`): what
    /// it says its results depend on. The CUDA runner names one for every kernel it compiles.
    /// `None` when two processes of the kernel named different keys (a file changed during
    /// the run): nothing measured then may be reused later.
    pub fn served_key(&self, kernel: &str) -> Option<String> {
        self.announced.lock().ok()?.get(kernel)?.key.clone()
    }

    /// Keeps what a server said when it became ready, and how long it took.
    fn note_ready(&self, kernel: &str, server: &Server) {
        if let Ok(mut spent) = self.spent.lock() {
            let time = spent.entry(kernel.to_string()).or_default();
            time.startup_s += server.startup_s;
            time.compile_s += server.compile_s.unwrap_or(0.0);
        }
        let Ok(mut announced) = self.announced.lock() else {
            return;
        };
        let fresh = Announced {
            device: server.device.clone(),
            key: server.key.clone(),
        };
        announced
            .entry(kernel.to_string())
            .and_modify(|before| {
                if *before != fresh {
                    before.key = None;
                }
            })
            .or_insert(fresh);
    }

    /// Processes started so far and the start-up of persistent harnesses, by kernel.
    pub fn spent(&self) -> indexmap::IndexMap<String, KernelTime> {
        self.spent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn count_start(&self, kernel: &str) {
        if let Ok(mut spent) = self.spent.lock() {
            spent.entry(kernel.to_string()).or_default().processes += 1;
        }
    }

    /// Runs the kernel's `setup:` the first time one of its shapes is measured here.
    fn set_up(&self, job: &Job, settings: &RunSettings) -> Result<(), Failure> {
        let Some(setup) = &job.kernel.setup else {
            return Ok(());
        };
        let Ok(mut setups) = self.setups.lock() else {
            return Err(Failure {
                message: "setup state is unavailable".to_string(),
                stderr_tail: String::new(),
            });
        };
        setups
            .entry(job.kernel.name.clone())
            .or_insert_with(|| {
                let shown = setup.join(" ");
                let failed = |message: String, stderr_tail: String| Failure {
                    message: format!("setup `{shown}` {message}"),
                    stderr_tail,
                };
                let Some((program, args)) = setup.split_first() else {
                    return Err(failed("is empty".to_string(), String::new()));
                };
                let mut command = self.command(program, args, job, settings, false)?;
                self.count_start(&job.kernel.name);
                let child = command
                    .spawn()
                    .map_err(|err| failed(format!("cannot start: {err}"), String::new()))?;
                let finished = finish(child, job.kernel.timeout_s);
                match finished.status {
                    Ok(Some(status)) if status.success() => Ok(()),
                    Ok(Some(status)) => {
                        Err(failed(format!("failed: {status}"), finished.stderr_tail))
                    }
                    Ok(None) => Err(failed(
                        format!("timed out after {} s and was killed", job.kernel.timeout_s),
                        finished.stderr_tail,
                    )),
                    Err(err) => Err(failed(
                        format!("could not be waited for: {err}"),
                        finished.stderr_tail,
                    )),
                }
            })
            .clone()
    }

    fn command(
        &self,
        program: &str,
        args: &[String],
        job: &Job,
        settings: &RunSettings,
        timing_only: bool,
    ) -> Result<Command, Failure> {
        let mut command = harness_command(program, args, &self.workdir, job, settings)?;
        command.env("GATEKEEPER_SIDE", self.side.as_str());
        if timing_only {
            command.env(super::TIMING_ONLY_ENV, "1");
        } else {
            // Only gatekeeper says so: one left in its own environment must not skip gate 2.
            command.env_remove(super::TIMING_ONLY_ENV);
        }
        Ok(command)
    }
}

/// What a v2 harness said in its ready line.
#[derive(Debug, Clone, PartialEq)]
struct Announced {
    device: Option<String>,
    key: Option<String>,
}

/// A finished (or killed) harness process and what it printed.
struct Finished {
    status: std::io::Result<Option<std::process::ExitStatus>>,
    stdout: String,
    stderr_tail: String,
}

/// Waits for `child` up to `timeout_s`, collecting its output; see [`wait_or_kill`].
fn finish(mut child: Child, timeout_s: f64) -> Finished {
    track(child.id());
    let (stdout, stdout_closed) = drain(child.stdout.take());
    let (stderr, stderr_closed) = drain(child.stderr.take());
    let status = wait_or_kill(&mut child, Duration::from_secs_f64(timeout_s));
    untrack(child.id());
    settle(&[&stdout_closed, &stderr_closed]);
    Finished {
        status,
        stdout: stdout.text(),
        stderr_tail: tail_lines(&stderr.text()),
    }
}

/// The JSON object a harness prints last.
#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    samples_us: Vec<f64>,
    correct: Option<bool>,
    max_abs_err: Option<f64>,
    max_rel_err: Option<f64>,
    rel_l2_err: Option<f64>,
    device: Option<String>,
    /// Why the output is wrong, when `correct` is false.
    message: Option<String>,
    /// The harness could not measure: compile error, crash it caught, bad setup.
    error: Option<String>,
    /// Anything else worth keeping in the run record (clocks, driver, batch size, ...).
    details: Option<serde_json::Map<String, serde_json::Value>>,
    /// Protocol v2: the harness exits after this response (a fault left it unusable); the
    /// next shape gets a fresh process.
    #[serde(default)]
    exiting: bool,
}

impl Harness for CommandHarness {
    fn measure(&self, job: &Job, settings: &RunSettings) -> Outcome {
        self.run(job, settings, false)
    }

    fn done_with(&self, kernel: &str) {
        self.retire(kernel);
    }

    fn prepare(&self, jobs: &[Job], settings: &RunSettings) {
        let serving: Vec<String> = self
            .servers
            .lock()
            .map(|servers| servers.keys().cloned().collect())
            .unwrap_or_default();
        let mut kernels: Vec<&Job> = jobs
            .iter()
            .filter(|job| self.serves(job) && !serving.contains(&job.kernel.name))
            .collect();
        kernels.dedup_by_key(|job| &job.kernel.name);
        let starting: Vec<(&Job, Result<Starting, Failure>)> = kernels
            .into_iter()
            .filter(|job| self.set_up(job, settings).is_ok())
            .map(|job| (job, self.spawn(job, settings)))
            .collect();
        for (job, started) in starting {
            // A harness that fails to start is started again, and fails, when its shape runs.
            if let Ok(server) = started.and_then(|s| s.ready(timeout_of(job))) {
                self.note_ready(&job.kernel.name, &server);
                if let Ok(mut servers) = self.servers.lock() {
                    servers.insert(job.kernel.name.clone(), server);
                }
            }
        }
    }
}

fn timeout_of(job: &Job) -> Duration {
    Duration::from_secs_f64(job.kernel.timeout_s)
}

/// A harness whose processes are told they may only time ([`super::TIMING_ONLY_ENV`]): the A/B
/// rounds, whose candidate passed gate 2 in the check's own run and whose base is not judged.
///
/// Every measurement gets a process of its own, v2 harnesses included: a process's median
/// carries an offset of its own (where its memory landed, the clocks when it ran: 0.1–8 % for
/// PyTorch's backends on an H100, docs/benchmarks.md), and a round must sample it. One process
/// per side for all the rounds would turn that offset into a certain, and wrong, ratio.
pub struct TimingOnly<'h>(pub &'h CommandHarness);

impl Harness for TimingOnly<'_> {
    fn measure(&self, job: &Job, settings: &RunSettings) -> Outcome {
        let outcome = self.0.run(job, settings, true);
        self.0.retire(&job.kernel.name);
        outcome
    }

    fn prepare(&self, jobs: &[Job], settings: &RunSettings) {
        self.0.prepare(jobs, settings);
    }
}

impl CommandHarness {
    /// Whether `job`'s harness serves protocol v2: a kernel that says so, and the CUDA runner,
    /// except under a profiler (which wants one shape per process).
    fn serves(&self, job: &Job) -> bool {
        !self.launch_only && (job.kernel.cuda.is_some() || job.kernel.protocol == Some(2))
    }

    /// The argv that runs `job`'s kernel, and how messages name it.
    fn argv<'a>(&'a self, job: &'a Job) -> (&'a [String], String) {
        match &job.kernel.command {
            Some(argv) => (argv, argv.join(" ")),
            None => (&self.cuda_runner, "the CUDA runner".to_string()),
        }
    }

    /// Times `job` without checking it (its kernel passed gate 2 already), through the
    /// kernel's serving process if one runs: several shapes can share a process, and
    /// [`CommandHarness::retire`] ends it.
    pub fn time_only(&self, job: &Job, settings: &RunSettings) -> Outcome {
        self.run(job, settings, true)
    }

    /// Stops the server of `kernel`, if one is running: its kernel is done, and an idle
    /// process should not keep GPU memory a later kernel may need. A later request for the
    /// kernel starts a fresh one.
    pub fn retire(&self, kernel: &str) {
        let server = self
            .servers
            .lock()
            .ok()
            .and_then(|mut servers| servers.remove(kernel));
        drop(server);
    }

    /// Starts the v2 harness of `job`'s kernel, without waiting for it.
    fn spawn(&self, job: &Job, settings: &RunSettings) -> Result<Starting, Failure> {
        let (argv, shown) = self.argv(job);
        let Some((program, args)) = argv.split_first() else {
            return Err(Failure {
                message: "no command to run".to_string(),
                stderr_tail: String::new(),
            });
        };
        let mut command = self.command(program, args, job, settings, false)?;
        // Per request, not per process: the request carries the shape.
        for name in [
            "GATEKEEPER_SHAPE",
            "GATEKEEPER_SHAPE_JSON",
            "GATEKEEPER_WARMUP",
            "GATEKEEPER_SAMPLES",
            "GATEKEEPER_SEED",
        ] {
            command.env_remove(name);
        }
        self.count_start(&job.kernel.name);
        Server::spawn(command, shown)
    }

    /// Every job of `jobs` (shapes of one kernel, in order) through one protocol v2 process,
    /// which is then told to exit and waited for. Gate 4 runs the CUDA runner this way under
    /// one profiler session, which writes its results when the process ends. Any failure fails
    /// the whole batch: the caller can fall back to a process per shape.
    pub fn serve_all(
        &self,
        jobs: &[Job],
        settings: &RunSettings,
    ) -> Result<Vec<Measurement>, Failure> {
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        self.set_up(first, settings)?;
        let mut starting = self.spawn(first, settings)?;
        if self.launch_only {
            starting = starting.behind_profiler();
        }
        let mut server = starting.ready(timeout_of(first))?;
        let mut measured = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (line, stderr_tail) = server.request(job, settings, false, timeout_of(job))?;
            let fail = |message: String| Failure {
                message: format!("{}: {message}", job.shape),
                stderr_tail: stderr_tail.clone(),
            };
            let report = parse_report(&line, self.launch_only).map_err(fail)?;
            if let Some(error) = report.error {
                return Err(fail(error));
            }
            measured.push(measurement(report, stderr_tail));
        }
        server.finish(timeout_of(first))?;
        Ok(measured)
    }

    /// One job through the kernel's v2 harness, started now if none is serving.
    fn run_v2(&self, job: &Job, settings: &RunSettings, timing_only: bool) -> Outcome {
        self.set_up(job, settings)?;
        let Ok(mut servers) = self.servers.lock() else {
            return Err(Failure {
                message: "the harness table is unavailable".to_string(),
                stderr_tail: String::new(),
            });
        };
        let name = &job.kernel.name;
        let server = match servers.remove(name) {
            Some(server) => server,
            None => {
                let server = self.spawn(job, settings)?.ready(timeout_of(job))?;
                self.note_ready(name, &server);
                server
            }
        };
        let mut server = server;
        let (line, stderr_tail) = server.request(job, settings, timing_only, timeout_of(job))?;
        let fail = |message: String| Failure {
            message,
            stderr_tail: stderr_tail.clone(),
        };
        // A line that is not a response leaves the conversation out of step: the server goes.
        let report = parse_report(&line, self.launch_only).map_err(fail)?;
        if !report.exiting {
            servers.insert(name.clone(), server);
        }
        if let Some(error) = report.error {
            return Err(fail(if error.trim().is_empty() {
                "the harness reported an error without a message".to_string()
            } else {
                error
            }));
        }
        Ok(measurement(report, stderr_tail))
    }

    fn run(&self, job: &Job, settings: &RunSettings, timing_only: bool) -> Outcome {
        if self.serves(job) {
            return self.run_v2(job, settings, timing_only);
        }
        let kernel = job.kernel;
        let (argv, program) = self.argv(job);
        let Some((program_path, program_args)) = argv.split_first() else {
            return Err(Failure {
                message: "no command to run".to_string(),
                stderr_tail: String::new(),
            });
        };
        self.set_up(job, settings)?;
        let mut command = self.command(program_path, program_args, job, settings, timing_only)?;
        self.count_start(&kernel.name);
        let child = command.spawn().map_err(|err| Failure {
            message: format!("cannot start `{program}`: {err}"),
            stderr_tail: String::new(),
        })?;
        let Finished {
            status,
            stdout,
            stderr_tail,
        } = finish(child, kernel.timeout_s);
        let fail = |message: String| Failure {
            message,
            stderr_tail: stderr_tail.clone(),
        };

        match status {
            Err(err) => return Err(fail(format!("waiting for `{program}` failed: {err}"))),
            Ok(None) => {
                return Err(fail(format!(
                    "timed out after {} s (the timeout_s of kernel {}) and was killed",
                    kernel.timeout_s, kernel.name
                )))
            }
            Ok(Some(status)) if !status.success() => {
                return Err(fail(format!("`{program}` failed: {status}")));
            }
            Ok(Some(_)) => {}
        }

        let report = parse_report(&stdout, self.launch_only).map_err(fail)?;
        if let Some(error) = report.error {
            return Err(fail(if error.trim().is_empty() {
                "the harness reported an error without a message".to_string()
            } else {
                error
            }));
        }
        Ok(measurement(report, stderr_tail))
    }
}

fn measurement(report: Report, stderr_tail: String) -> Measurement {
    Measurement {
        samples_us: report.samples_us,
        correct: report.correct,
        max_abs_err: report.max_abs_err,
        max_rel_err: report.max_rel_err,
        rel_l2_err: report.rel_l2_err,
        device: report.device,
        message: report.message,
        details: report.details.map(Details::from),
        stderr_tail,
    }
}

/// The harness's process: its argv, in the config's folder, with the job in its environment,
/// in a process group of its own so a timeout kills the harness's children too.
fn harness_command(
    program: &str,
    args: &[String],
    workdir: &std::path::Path,
    job: &Job,
    settings: &RunSettings,
) -> Result<Command, Failure> {
    let shape_json = serde_json::to_string(job.params).map_err(|err| Failure {
        message: format!("cannot encode shape parameters: {err}"),
        stderr_tail: String::new(),
    })?;
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(workdir)
        .envs(&job.kernel.env)
        .env("GATEKEEPER_KERNEL", &job.kernel.name)
        .env("GATEKEEPER_SHAPE", job.shape)
        .env("GATEKEEPER_SHAPE_JSON", shape_json)
        .env("GATEKEEPER_WARMUP", settings.warmup.to_string())
        .env("GATEKEEPER_SAMPLES", settings.samples.to_string())
        .env("GATEKEEPER_SEED", settings.seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    Ok(command)
}

/// Output collected from one stream by a reader thread. Shared rather than returned, so a
/// stream held open by a process we cannot kill (one that left our process group) does not
/// block us: after the harness exits we wait briefly, then take what arrived.
#[derive(Clone, Default)]
pub(super) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Forgets what arrived so far: a v2 harness's stderr is reported per request.
    pub(super) fn clear(&self) {
        if let Ok(mut kept) = self.0.lock() {
            kept.clear();
        }
    }

    pub(super) fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Reads a stream to its end on a thread, keeping the last [`STREAM_TAIL_BYTES`], so a chatty
/// harness can neither block on a full pipe nor exhaust memory. The receiver hears when the
/// stream closes.
pub(super) fn drain(stream: Option<impl Read + Send + 'static>) -> (Captured, mpsc::Receiver<()>) {
    let captured = Captured::default();
    let (done, closed) = mpsc::channel();
    if let Some(mut stream) = stream {
        let sink = captured.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(read) = stream.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                if let Ok(mut kept) = sink.0.lock() {
                    kept.extend_from_slice(&buffer[..read]);
                    if kept.len() > 2 * STREAM_TAIL_BYTES {
                        let excess = kept.len() - STREAM_TAIL_BYTES;
                        kept.drain(..excess);
                    }
                }
            }
            let _ = done.send(());
        });
    } else {
        let _ = done.send(());
    }
    (captured, closed)
}

/// Waits for both streams to close, at most [`STREAM_GRACE`] past the harness's exit.
fn settle(streams: &[&mpsc::Receiver<()>]) {
    let deadline = Instant::now() + STREAM_GRACE;
    for closed in streams {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = closed.recv_timeout(left);
    }
}

/// Waits up to `timeout`; past it, kills the whole process group and returns `None`. Either
/// way, whatever the harness left running in its group is killed too.
fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let status = child.wait_timeout(timeout)?;
    kill_group(child.id());
    if status.is_some() {
        return Ok(status);
    }
    let _ = child.kill();
    child.wait()?;
    Ok(None)
}

/// The harnesses alive now (each pid is its process group): the one measuring, and the v2
/// harnesses waiting for their next request. For the interrupt handler.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

pub(super) fn track(pid: u32) {
    if let Ok(mut live) = LIVE.lock() {
        live.push(pid);
    }
}

pub(super) fn untrack(pid: u32) {
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|&p| p != pid);
    }
}

/// Folders the interrupt handler removes (the A/B base's exported tree): it exits without
/// running destructors.
static REMOVE_ON_INTERRUPT: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Has the interrupt handler remove `folder`, until [`keep_on_interrupt`] is called for it.
pub fn remove_on_interrupt(folder: &std::path::Path) {
    if let Ok(mut folders) = REMOVE_ON_INTERRUPT.lock() {
        folders.push(folder.to_path_buf());
    }
}

/// Undoes [`remove_on_interrupt`]: the folder's owner removes it, or has.
pub fn keep_on_interrupt(folder: &std::path::Path) {
    if let Ok(mut folders) = REMOVE_ON_INTERRUPT.lock() {
        folders.retain(|kept| kept != folder);
    }
}

/// On SIGINT or SIGTERM (a cancelled CI job), kill every live harness's process group before
/// exiting: each lives in a group of its own and would otherwise keep the GPU busy. Then remove
/// the folders named by [`remove_on_interrupt`].
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        let live = LIVE.lock().map(|live| live.clone()).unwrap_or_default();
        for pid in live {
            kill_group(pid);
        }
        if let Ok(folders) = REMOVE_ON_INTERRUPT.lock() {
            for folder in folders.iter() {
                let _ = std::fs::remove_dir_all(folder);
            }
        }
        crate::errln!("gatekeeper: interrupted");
        std::process::exit(130);
    });
}

/// SIGKILL to a process group; it may already be gone.
pub(crate) fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

fn parse_report(stdout: &str, launch_only: bool) -> Result<Report, String> {
    let Some(line) = stdout.lines().rev().find(|line| !line.trim().is_empty()) else {
        return Err("the harness printed nothing on stdout (protocol v1 expects a JSON object on its last line)".to_string());
    };
    let report: Report = serde_json::from_str(line.trim()).map_err(|err| {
        // Python's json.dumps writes NaN and Infinity, which JSON does not allow.
        let hint = if ["NaN", "Infinity", "1e999"]
            .iter()
            .any(|t| line.contains(t))
        {
            "; samples must be finite"
        } else {
            ""
        };
        format!(
            "cannot parse the harness's last stdout line as protocol v1 JSON ({err}{hint}): {}",
            clip(line.trim(), 200)
        )
    })?;
    // A harness that failed, or found the output wrong, need not time anything.
    if report.error.is_some() || report.correct == Some(false) || launch_only {
        return Ok(report);
    }
    if report.samples_us.len() < 2 {
        return Err(format!(
            "the harness reported {} sample(s); at least 2 are needed",
            report.samples_us.len()
        ));
    }
    if let Some(bad) = report
        .samples_us
        .iter()
        .find(|sample| !(sample.is_finite() && **sample > 0.0))
    {
        return Err(format!(
            "the harness reported a sample of {bad} µs; samples must be finite and positive"
        ));
    }
    for (key, value) in [
        ("max_abs_err", report.max_abs_err),
        ("max_rel_err", report.max_rel_err),
        ("rel_l2_err", report.rel_l2_err),
    ] {
        if value.is_some_and(|v| v.is_nan() || v < 0.0) {
            return Err(format!("the harness reported an invalid {key}"));
        }
    }
    Ok(report)
}

pub(super) fn tail_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    let tail = lines[start..].join("\n");
    let chars = tail.chars().count();
    if chars <= STDERR_TAIL_CHARS {
        tail
    } else {
        tail.chars().skip(chars - STDERR_TAIL_CHARS).collect()
    }
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_non_empty_line_is_the_report() {
        let report = parse_report(
            "warming up\n{\"samples_us\": [1]}\n{\"samples_us\": [1.5, 2.5], \"correct\": true, \"device\": \"X\"}\n\n  \n",
            false,
        )
        .unwrap();
        assert_eq!(report.samples_us, [1.5, 2.5]);
        assert_eq!(report.correct, Some(true));
        assert_eq!(report.device.as_deref(), Some("X"));
    }

    #[test]
    fn bad_reports_are_explained() {
        let cases = [
            ("", "printed nothing"),
            ("done\n", "cannot parse"),
            ("{\"samples_us\": []}", "at least 2"),
            ("{\"samples_us\": [1, -2]}", "finite and positive"),
            ("{\"samples_us\": [1, 0]}", "finite and positive"),
            ("{\"samples_us\": [1, 1e999]}", "samples must be finite"),
            ("{\"samples_us\": [1, NaN]}", "samples must be finite"),
            (
                "{\"samples_us\": [1, 2], \"max_abs_err\": -1}",
                "max_abs_err",
            ),
            ("{\"samples\": [1, 2]}", "at least 2"),
        ];
        for (stdout, needle) in cases {
            let err = parse_report(stdout, false).map(|_| ()).unwrap_err();
            assert!(err.contains(needle), "{stdout:?}: {err}");
        }
    }

    #[test]
    fn errors_and_wrong_results_need_no_samples() {
        let report = parse_report("{\"error\": \"compile error\"}", false).unwrap();
        // A launch for a profiler reports its details and no samples.
        assert!(parse_report("{\"device\": \"X\", \"details\": {}}", true).is_ok());
        assert!(parse_report("{\"device\": \"X\", \"details\": {}}", false).is_err());
        assert_eq!(report.error.as_deref(), Some("compile error"));
        let report = parse_report(
            "{\"correct\": false, \"details\": {\"mismatches\": 3}}",
            false,
        )
        .unwrap();
        assert_eq!(report.correct, Some(false));
        assert_eq!(report.details.unwrap()["mismatches"], 3);
    }

    #[test]
    fn tail_keeps_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = tail_lines(&text);
        assert!(tail.starts_with("line 80"));
        assert!(tail.ends_with("line 99"));
    }
}
