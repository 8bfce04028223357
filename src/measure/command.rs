//! The command harness, protocol v1: any program that times a kernel and prints its samples.
//!
//! gatekeeper runs the program in the config's folder with the job in environment variables;
//! the last non-empty line of its stdout is a JSON object with `samples_us` and, optionally,
//! `correct`, `max_abs_err`, `max_rel_err` and `device`. Everything else it prints is ignored.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Deserialize;
use wait_timeout::ChildExt;

use super::{Failure, Harness, Measurement, Outcome, RunSettings};
use crate::plan::Job;

/// How much of each output stream is kept: the protocol only needs the end of stdout.
const STREAM_TAIL_BYTES: usize = 1 << 20;
/// Lines of stderr quoted in reports.
const STDERR_TAIL_LINES: usize = 20;
const STDERR_TAIL_CHARS: usize = 4000;

pub struct CommandHarness {
    /// Folder the harness runs in: the folder of gates.yaml.
    pub workdir: PathBuf,
}

/// The JSON object a harness prints last.
#[derive(Debug, Deserialize)]
struct Report {
    samples_us: Vec<f64>,
    correct: Option<bool>,
    max_abs_err: Option<f64>,
    max_rel_err: Option<f64>,
    device: Option<String>,
}

impl Harness for CommandHarness {
    fn measure(&self, job: &Job, settings: &RunSettings) -> Outcome {
        let kernel = job.kernel;
        let shape_json = serde_json::to_string(job.params).map_err(|err| Failure {
            message: format!("cannot encode shape parameters: {err}"),
            stderr_tail: String::new(),
        })?;
        let mut command = Command::new(&kernel.command[0]);
        command
            .args(&kernel.command[1..])
            .current_dir(&self.workdir)
            .envs(&kernel.env)
            .env("GATEKEEPER_KERNEL", &kernel.name)
            .env("GATEKEEPER_SHAPE", job.shape)
            .env("GATEKEEPER_SHAPE_JSON", shape_json)
            .env("GATEKEEPER_WARMUP", settings.warmup.to_string())
            .env("GATEKEEPER_SAMPLES", settings.samples.to_string())
            .env("GATEKEEPER_SEED", settings.seed.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills the harness's children too.
            .process_group(0);

        let program = kernel.command.join(" ");
        let mut child = command.spawn().map_err(|err| Failure {
            message: format!("cannot start `{program}`: {err}"),
            stderr_tail: String::new(),
        })?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let timeout = Duration::from_secs_f64(kernel.timeout_s);
        let status = wait_or_kill(&mut child, timeout);
        let stdout = join(stdout);
        let stderr_tail = tail_lines(&join(stderr));
        let fail = |message: String| Failure {
            message,
            stderr_tail: stderr_tail.clone(),
        };

        match status {
            Err(err) => return Err(fail(format!("waiting for `{program}` failed: {err}"))),
            Ok(None) => {
                return Err(fail(format!(
                    "timed out after {} s (kernels[{}].timeout_s) and was killed",
                    kernel.timeout_s, kernel.name
                )))
            }
            Ok(Some(status)) if !status.success() => {
                return Err(fail(format!("`{program}` failed: {status}")));
            }
            Ok(Some(_)) => {}
        }

        let report = parse_report(&stdout).map_err(fail)?;
        Ok(Measurement {
            samples_us: report.samples_us,
            correct: report.correct,
            max_abs_err: report.max_abs_err,
            max_rel_err: report.max_rel_err,
            device: report.device,
            stderr_tail,
        })
    }
}

/// Reads a stream to its end on a thread, keeping the last [`STREAM_TAIL_BYTES`], so a chatty
/// harness can neither block on a full pipe nor exhaust memory.
fn drain(stream: Option<impl Read + Send + 'static>) -> Option<JoinHandle<Vec<u8>>> {
    let mut stream = stream?;
    Some(std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buffer = [0u8; 8192];
        while let Ok(read) = stream.read(&mut buffer) {
            if read == 0 {
                break;
            }
            kept.extend_from_slice(&buffer[..read]);
            if kept.len() > 2 * STREAM_TAIL_BYTES {
                kept.drain(..kept.len() - STREAM_TAIL_BYTES);
            }
        }
        kept
    }))
}

fn join(handle: Option<JoinHandle<Vec<u8>>>) -> String {
    let bytes = handle
        .and_then(|handle| handle.join().ok())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Waits up to `timeout`; past it, kills the whole process group and returns `None`.
fn wait_or_kill(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    if let Some(status) = child.wait_timeout(timeout)? {
        return Ok(Some(status));
    }
    if let Ok(pid) = i32::try_from(child.id()) {
        // The group may already be gone; the wait below settles it either way.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    child.wait()?;
    Ok(None)
}

fn parse_report(stdout: &str) -> Result<Report, String> {
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
    ] {
        if value.is_some_and(|v| v.is_nan() || v < 0.0) {
            return Err(format!("the harness reported an invalid {key}"));
        }
    }
    Ok(report)
}

fn tail_lines(text: &str) -> String {
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
            ("{\"samples\": [1, 2]}", "missing field `samples_us`"),
        ];
        for (stdout, needle) in cases {
            let err = parse_report(stdout).map(|_| ()).unwrap_err();
            assert!(err.contains(needle), "{stdout:?}: {err}");
        }
    }

    #[test]
    fn tail_keeps_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = tail_lines(&text);
        assert!(tail.starts_with("line 80"));
        assert!(tail.ends_with("line 99"));
    }
}
