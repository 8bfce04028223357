//! The command harness, protocol v2: one process serves every shape of a kernel.
//!
//! gatekeeper starts the harness once (per tree, when a base build is measured too) with
//! `GATEKEEPER_PROTOCOL=2`. The harness prints `{"ready": true}` on one stdout line once it is
//! set up (its imports, its CUDA context), then answers one request per stdin line,
//!
//! ```json
//! {"kernel": "k", "shape": "mission", "params": {"N": 4096}, "warmup": 10, "samples": 50, "seed": 42, "timing_only": false}
//! ```
//!
//! with one response line, the same object a v1 harness prints last. End of stdin means exit.
//! Anything else it has to say goes to stderr. A crash, a timeout or a line that is not a
//! response fails that shape only: the process is killed, and the next shape starts a fresh one.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::json;

use super::command::{drain, kill_group, tail_lines, track, untrack, Captured};
use super::{Failure, RunSettings};
use crate::plan::Job;

/// How long a server may take to exit after its stdin closes, before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// A running v2 harness.
pub struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Complete stdout lines, as they arrive.
    lines: mpsc::Receiver<String>,
    stderr: Captured,
    /// Hears when stderr closes: after the process died, all of its stderr has arrived.
    stderr_closed: mpsc::Receiver<()>,
    /// Shown in messages: the argv.
    program: String,
    /// The device the ready line named, if it did: what a check needs to know before
    /// measuring anything, to reuse a baseline.
    pub device: Option<String>,
    /// The key the ready line named (`inputs_key`), if it did: what the harness says its
    /// results depend on, stored with baselines so an unchanged kernel is not measured again.
    pub key: Option<String>,
    /// Seconds from start to ready, and the part the ready line says went to compiling.
    pub startup_s: f64,
    pub compile_s: Option<f64>,
    /// Behind a profiler: its `==PROF==`-style lines on stdout are not protocol lines.
    pub profiler_chatter: bool,
}

/// A v2 harness started but not yet ready (so several can start at once).
pub struct Starting {
    server: Server,
    started: Instant,
}

impl Server {
    /// Starts `command` (its argv, folder and environment set; stdio is set here) as a v2
    /// harness, without waiting for it to be ready.
    pub fn spawn(mut command: Command, program: String) -> Result<Starting, Failure> {
        command
            .env("GATEKEEPER_PROTOCOL", "2")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|err| Failure {
            message: format!("cannot start `{program}`: {err}"),
            stderr_tail: String::new(),
        })?;
        track(child.id());
        let (stderr, stderr_closed) = drain(child.stderr.take());
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Starting {
            server: Server {
                child,
                stdin,
                lines,
                stderr,
                stderr_closed,
                program,
                device: None,
                key: None,
                startup_s: 0.0,
                compile_s: None,
                profiler_chatter: false,
            },
            started: Instant::now(),
        })
    }

    /// One request for `job`, and the response line, within `timeout`. Any failure leaves the
    /// server unusable: drop it.
    pub fn request(
        &mut self,
        job: &Job,
        settings: &RunSettings,
        timing_only: bool,
        timeout: Duration,
    ) -> Result<(String, String), Failure> {
        let request = json!({
            "kernel": job.kernel.name,
            "shape": job.shape,
            "params": job.params,
            "warmup": settings.warmup,
            "samples": settings.samples,
            "seed": settings.seed,
            "timing_only": timing_only,
        });
        // Best effort: stderr still in the pipe from the previous request lands with this one.
        self.stderr.clear();
        let sent = self
            .stdin
            .as_mut()
            .map(|stdin| writeln!(stdin, "{request}").and_then(|()| stdin.flush()));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.died("stopped reading requests"));
        }
        let line = self.next_line(Instant::now() + timeout, |waited| {
            format!("timed out after {waited} s (the kernel's timeout_s) and was killed")
        })?;
        Ok((line, tail_lines(&self.stderr.text())))
    }

    /// Closes stdin and waits up to `timeout` for the process to exit, successfully: for a
    /// harness behind a profiler, which writes its results when the process ends.
    pub fn finish(mut self, timeout: Duration) -> Result<(), Failure> {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    let _ = self.stderr_closed.recv_timeout(EXIT_GRACE);
                    return Err(self.failure(format!("`{}` failed: {status}", self.program)));
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    kill_group(self.child.id());
                    let waited = timeout.as_secs();
                    return Err(self.failure(format!(
                        "`{}` did not exit within {waited} s of its last request and was killed",
                        self.program
                    )));
                }
            }
        }
    }

    /// The next non-empty stdout line before `deadline`, or why there is none.
    fn next_line(
        &mut self,
        deadline: Instant,
        timed_out: impl Fn(u64) -> String,
    ) -> Result<String, Failure> {
        let begun = Instant::now();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) if self.profiler_chatter && line.starts_with("==") => continue,
                Ok(line) => return Ok(line),
                Err(RecvTimeoutError::Timeout) => {
                    kill_group(self.child.id());
                    let waited = begun.elapsed().as_secs_f64().round() as u64;
                    return Err(self.failure(timed_out(waited)));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.died("closed its stdout")),
            }
        }
    }

    /// The failure of a server whose process ended (or stopped listening): its exit status
    /// when it has one.
    fn died(&mut self, what: &str) -> Failure {
        let deadline = Instant::now() + EXIT_GRACE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                _ => break None,
            }
        };
        let message = match status {
            Some(status) => {
                // It is gone: wait for the last of its stderr rather than guess.
                let _ = self.stderr_closed.recv_timeout(EXIT_GRACE);
                format!("`{}` failed: {status}", self.program)
            }
            None => format!("`{}` {what}", self.program),
        };
        self.failure(message)
    }

    fn failure(&self, message: String) -> Failure {
        // Let the last of stderr arrive.
        std::thread::sleep(Duration::from_millis(20));
        Failure {
            message,
            stderr_tail: tail_lines(&self.stderr.text()),
        }
    }
}

impl Starting {
    /// Marks a harness that runs behind a profiler (see [`Server::profiler_chatter`]).
    pub fn behind_profiler(mut self) -> Starting {
        self.server.profiler_chatter = true;
        self
    }

    /// Waits until the harness says it is ready, at most `timeout` after it was started.
    pub fn ready(mut self, timeout: Duration) -> Result<Server, Failure> {
        let server = &mut self.server;
        let line = server.next_line(self.started + timeout, |waited| {
            format!("was not ready after {waited} s (the kernel's timeout_s) and was killed")
        })?;
        let parsed = serde_json::from_str::<serde_json::Value>(line.trim()).ok();
        let ready = parsed
            .as_ref()
            .and_then(|value| value.get("ready").and_then(serde_json::Value::as_bool));
        let text = |name: &str| {
            parsed
                .as_ref()
                .and_then(|value| value.get(name)?.as_str().map(str::to_string))
        };
        server.device = text("device");
        server.key = text("inputs_key");
        server.startup_s = self.started.elapsed().as_secs_f64();
        server.compile_s = parsed
            .as_ref()
            .and_then(|value| value.get("compile_s")?.as_f64())
            .filter(|s| s.is_finite() && *s >= 0.0)
            // Part of the start-up, whatever the harness claims.
            .map(|s| s.min(server.startup_s));
        if ready != Some(true) {
            let shown: String = line.trim().chars().take(200).collect();
            kill_group(server.child.id());
            return Err(server.failure(format!(
                "protocol v2: the first stdout line must be {{\"ready\": true}}, got: {shown}"
            )));
        }
        Ok(self.server)
    }
}

impl Drop for Server {
    /// Closes stdin (the harness's cue to exit), waits briefly, then kills its process group.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        untrack(self.child.id());
    }
}
