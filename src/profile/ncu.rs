//! Nsight Compute (`ncu`): the runner launches the kernel once under it, and its raw CSV page
//! becomes [`MetricValue`]s.
//!
//! `ncu` accepts metric names it does not know without complaint (the column is simply
//! missing), so names are checked first against `ncu --query-metrics` for the device.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::MetricValue;
use crate::ab::AbSide;
use crate::cuda::{runner::PROFILE_ENV, tools};
use crate::measure::{CommandHarness, Harness, Measurement, Outcome, RunSettings};
use crate::plan::Job;

/// One shape of a profiler session: the runner's report and the metrics of its launches.
pub type Profiled = (Measurement, IndexMap<String, MetricValue>);

/// The column every profiled row has; durations weight the averages of several launches.
const DURATION: &str = "gpu__time_duration.sum";

/// An `ncu` that was found, with the metrics the device offers.
pub struct Profiler {
    ncu: PathBuf,
    /// Base names from `--query-metrics`; `None` when listing them failed.
    known: Option<HashSet<String>>,
}

impl Profiler {
    /// Finds `ncu` (`GATEKEEPER_NCU`, the CUDA toolkit, `PATH`) and lists the device's metrics.
    /// The error says what is missing, in one line.
    pub fn find() -> Result<Profiler, String> {
        let ncu = tools::find("ncu", Some("GATEKEEPER_NCU")).ok_or_else(|| {
            "Nsight Compute (ncu) was not found: install it, or set GATEKEEPER_NCU to its path"
                .to_string()
        })?;
        let known = std::process::Command::new(&ncu)
            .args(["--query-metrics", "--csv"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| query_names(&String::from_utf8_lossy(&out.stdout)));
        Ok(Profiler { ncu, known })
    }

    pub fn path(&self) -> &Path {
        &self.ncu
    }

    /// Names (`(name, metric)`) whose metric this device does not have.
    pub fn unknown<'a>(&self, metrics: &'a [(String, String)]) -> Vec<&'a (String, String)> {
        let Some(known) = &self.known else {
            return Vec::new();
        };
        metrics
            .iter()
            .filter(|(_, metric)| !known.contains(base_name(metric)))
            .collect()
    }

    /// Runs the job's kernel once under `ncu` through the CUDA runner (`runner` is its argv).
    /// Returns the runner's report (static resources in its details) and the metrics, or why
    /// there are none.
    pub fn profile(
        &self,
        workdir: &Path,
        runner: &[String],
        job: &Job,
        metrics: &[(String, String)],
        settings: &RunSettings,
    ) -> (Outcome, Result<IndexMap<String, MetricValue>, String>) {
        let log = match tempfile::Builder::new()
            .prefix("gatekeeper-ncu")
            .suffix(".csv")
            .tempfile()
        {
            Ok(file) => file,
            Err(err) => {
                let message = format!("cannot create a file for ncu's output: {err}");
                return (
                    Err(crate::measure::Failure {
                        message: message.clone(),
                        stderr_tail: String::new(),
                    }),
                    Err(message),
                );
            }
        };
        let argv = self.argv(metrics, log.path(), runner);
        let outcome = bare_runner(workdir, &argv, job, settings);
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        let stderr = match &outcome {
            Ok(m) => m.stderr_tail.as_str(),
            Err(f) => f.stderr_tail.as_str(),
        };
        let values = if text.contains(NO_PERMISSION) || stderr.contains(NO_PERMISSION) {
            Err(no_permission())
        } else if let Err(failure) = &outcome {
            Err(format!("the profiled run failed: {}", failure.message))
        } else {
            parse_csv(&text).and_then(|rows| {
                if rows.is_empty() {
                    Err(format!(
                        "ncu profiled no kernel launch{}",
                        last_error(&text)
                            .map(|e| format!(": {e}"))
                            .unwrap_or_default()
                    ))
                } else {
                    Ok(aggregate(&rows, metrics))
                }
            })
        };
        (outcome, values)
    }
}

impl Profiler {
    /// `ncu` collecting `metrics` into `log`, in front of `runner`.
    fn argv(&self, metrics: &[(String, String)], log: &Path, runner: &[String]) -> Vec<String> {
        let names: Vec<&str> = metrics.iter().map(|(_, m)| m.as_str()).collect();
        let mut argv = vec![
            self.ncu.display().to_string(),
            // Clocks as the timing gate sees them, not locked to base.
            "--clock-control".to_string(),
            "none".to_string(),
            "--csv".to_string(),
            "--page".to_string(),
            "raw".to_string(),
            "--metrics".to_string(),
            names.join(","),
            "--log-file".to_string(),
            log.display().to_string(),
            "--target-processes".to_string(),
            "all".to_string(),
        ];
        argv.extend(runner.iter().cloned());
        argv
    }

    /// Every one of `jobs` (shapes of one kernel) in one `ncu` session: one profiler start-up
    /// and one runner (context, module) for all of them, where a session per shape costs
    /// ~3.5 s each on an H100 whatever the shape. The runner names the entry points it
    /// launched for each shape; ncu's rows, in launch order, must match them one for one, or
    /// the session is not used (the error says why, and the caller profiles shape by shape).
    pub fn profile_session(
        &self,
        workdir: &Path,
        runner: &[String],
        jobs: &[&Job],
        metrics: &[(String, String)],
        settings: &RunSettings,
    ) -> Result<Vec<Profiled>, String> {
        let Some(first) = jobs.first() else {
            return Ok(Vec::new());
        };
        let log = tempfile::Builder::new()
            .prefix("gatekeeper-ncu")
            .suffix(".csv")
            .tempfile()
            .map_err(|err| format!("cannot create a file for ncu's output: {err}"))?;
        let argv = self.argv(metrics, log.path(), runner);
        let mut kernel = first.kernel.clone();
        kernel.env.insert(PROFILE_ENV.to_string(), "1".to_string());
        let session: Vec<Job> = jobs
            .iter()
            .map(|job| Job {
                kernel: &kernel,
                ..**job
            })
            .collect();
        let mut harness = CommandHarness::new(workdir.to_path_buf(), argv, AbSide::Candidate);
        harness.launch_only = true;
        let served = harness.serve_all(&session, settings);
        let text = std::fs::read_to_string(log.path()).unwrap_or_default();
        if text.contains(NO_PERMISSION) {
            return Err(no_permission());
        }
        let measured = served.map_err(|failure| failure.message)?;
        let mut rows = parse_csv(&text)?;
        rows.sort_by(|a, b| {
            let id = |row: &Row| row.get("ID").and_then(|(_, id)| parse_number(id));
            id(a)
                .partial_cmp(&id(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        split_rows(measured, &rows, metrics)
    }
}

/// Each shape's rows of one session, by the entry points its runner says it launched, in order.
fn split_rows(
    measured: Vec<Measurement>,
    rows: &[Row],
    metrics: &[(String, String)],
) -> Result<Vec<Profiled>, String> {
    let mut at = 0;
    let mut out = Vec::with_capacity(measured.len());
    for measurement in measured {
        let launched: Vec<String> = measurement
            .details
            .as_ref()
            .and_then(|d| d.extra.get("launched"))
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .ok_or("the runner did not say what it launched")?;
        let mine = rows
            .get(at..at + launched.len())
            .ok_or("ncu profiled fewer launches than the runner made")?;
        for (k, (row, entry)) in mine.iter().zip(&launched).enumerate() {
            let name = row.get("Kernel Name").map(|(_, name)| name.as_str());
            if name != Some(entry.as_str()) {
                return Err(format!(
                    "ncu's launch {} is {:?}, the runner launched {entry:?}",
                    at + k + 1,
                    name.unwrap_or("")
                ));
            }
        }
        at += launched.len();
        out.push((measurement, aggregate(mine, metrics)));
    }
    if at != rows.len() {
        return Err(format!(
            "ncu profiled {} launches, the runner made {at}",
            rows.len()
        ));
    }
    Ok(out)
}

const NO_PERMISSION: &str = "ERR_NVGPUCTRPERM";

fn no_permission() -> String {
    "no permission to read the GPU's performance counters (ERR_NVGPUCTRPERM): run as root, or load the driver with NVreg_RestrictProfilingToAdminUsers=0".to_string()
}

/// Runs `runner` (the CUDA runner's argv, perhaps behind a profiler) in profile mode: one
/// launch, the static resources in its report.
pub fn bare_runner(
    workdir: &Path,
    runner: &[String],
    job: &Job,
    settings: &RunSettings,
) -> Outcome {
    let mut harness =
        CommandHarness::new(workdir.to_path_buf(), runner.to_vec(), AbSide::Candidate);
    harness.launch_only = true;
    let mut kernel = job.kernel.clone();
    kernel.env.insert(PROFILE_ENV.to_string(), "1".to_string());
    harness.measure(
        &Job {
            kernel: &kernel,
            ..*job
        },
        settings,
    )
}

/// A metric's base name: `sm__throughput.avg.pct_of_peak_sustained_elapsed` → `sm__throughput`.
pub fn base_name(metric: &str) -> &str {
    metric.split('.').next().unwrap_or(metric)
}

/// The first column of `ncu --query-metrics --csv`, below its header.
pub fn query_names(csv_text: &str) -> HashSet<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(csv_text.as_bytes());
    reader
        .records()
        .filter_map(|record| record.ok()?.get(0).map(str::to_string))
        .collect()
}

/// One profiled launch: column → (unit, value as printed).
pub type Row = IndexMap<String, (String, String)>;

/// The raw page: `==PROF==` chatter, a header row, a units row, then one row per launch.
pub fn parse_csv(text: &str) -> Result<Vec<Row>, String> {
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("=="))
        .flat_map(|line| [line, "\n"])
        .collect();
    if body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(body.as_bytes());
    let header = reader
        .headers()
        .map_err(|err| format!("ncu's CSV: {err}"))?
        .clone();
    let mut records = reader.records();
    let units = match records.next() {
        Some(units) => units.map_err(|err| format!("ncu's CSV: {err}"))?,
        None => return Ok(Vec::new()),
    };
    records
        .map(|record| {
            let record = record.map_err(|err| format!("ncu's CSV: {err}"))?;
            Ok(header
                .iter()
                .enumerate()
                .map(|(i, name)| {
                    (
                        name.to_string(),
                        (
                            units.get(i).unwrap_or("").to_string(),
                            record.get(i).unwrap_or("").to_string(),
                        ),
                    )
                })
                .collect())
        })
        .collect()
}

/// `1,234.5` → 1234.5; `n/a` and blanks → `None`.
pub fn parse_number(text: &str) -> Option<f64> {
    let clean: String = text.chars().filter(|c| *c != ',').collect();
    clean.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// One value per named metric over all profiled launches: totals for counters (`.sum`),
/// duration-weighted means for rates and percentages.
pub fn aggregate(rows: &[Row], metrics: &[(String, String)]) -> IndexMap<String, MetricValue> {
    let mut out = IndexMap::new();
    for (name, metric) in metrics {
        let values: Vec<(f64, f64, &str)> = rows
            .iter()
            .filter_map(|row| {
                let (unit, text) = row.get(metric)?;
                let value = parse_number(text)?;
                let weight = row
                    .get(DURATION)
                    .and_then(|(_, d)| parse_number(d))
                    .unwrap_or(1.0);
                Some((value, weight, unit.as_str()))
            })
            .collect();
        let Some((_, _, unit)) = values.first() else {
            continue;
        };
        let counter = metric.ends_with(".sum") && *unit != "%";
        let value = if counter {
            values.iter().map(|(v, _, _)| v).sum()
        } else {
            let total: f64 = values.iter().map(|(_, w, _)| w).sum();
            if total > 0.0 {
                values.iter().map(|(v, w, _)| v * w).sum::<f64>() / total
            } else {
                values.iter().map(|(v, _, _)| v).sum::<f64>() / values.len() as f64
            }
        };
        out.insert(
            name.clone(),
            MetricValue {
                metric: metric.clone(),
                value,
                unit: unit.to_string(),
            },
        );
    }
    out
}

/// ncu's last `==ERROR==` line, if any.
fn last_error(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .find(|line| line.starts_with("==ERROR=="))
        .map(|line| line.trim_start_matches("==ERROR==").trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from `ncu --csv --page raw` on an H100 (Nsight Compute 2025.3): two launches of
    /// the attention kernel, the chatter lines kept.
    const RAW: &str = include_str!("../../tests/fixtures/ncu-raw.csv");

    fn names(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, m)| (a.to_string(), m.to_string()))
            .collect()
    }

    fn launched(entries: &[&str]) -> Measurement {
        let mut details = crate::measure::Details::default();
        details
            .extra
            .insert("launched".to_string(), serde_json::json!(entries));
        Measurement {
            samples_us: Vec::new(),
            correct: None,
            max_abs_err: None,
            max_rel_err: None,
            rel_l2_err: None,
            device: None,
            message: None,
            details: Some(details),
            stderr_tail: String::new(),
        }
    }

    fn row(id: u32, kernel: &str, duration_ns: &str) -> Row {
        [
            ("ID", ("", id.to_string())),
            ("Kernel Name", ("", kernel.to_string())),
            (DURATION, ("ns", duration_ns.to_string())),
        ]
        .into_iter()
        .map(|(k, (u, v))| (k.to_string(), (u.to_string(), v)))
        .collect()
    }

    #[test]
    fn a_session_splits_into_shapes_by_what_each_launched() {
        let metrics = names(&[("time", DURATION)]);
        let rows = [
            row(0, "a", "100"),
            row(1, "a", "200"),
            row(2, "b", "50"),
            row(3, "a", "400"),
        ];
        let measured = vec![launched(&["a"]), launched(&["a", "b"]), launched(&["a"])];
        let split = split_rows(measured, &rows, &metrics).unwrap();
        let times: Vec<f64> = split.iter().map(|(_, v)| v["time"].value).collect();
        assert_eq!(times, [100.0, 250.0, 400.0]);

        // Anything that does not line up is refused, never guessed.
        let fewer = vec![launched(&["a"]), launched(&["a", "b"])];
        assert!(split_rows(fewer, &rows, &metrics)
            .unwrap_err()
            .contains("ncu profiled 4 launches, the runner made 3"));
        let more = vec![launched(&["a", "a", "b", "a", "a"])];
        assert!(split_rows(more, &rows, &metrics)
            .unwrap_err()
            .contains("fewer launches"));
        let other = vec![launched(&["a", "b"]), launched(&["b", "a"])];
        assert!(split_rows(other, &rows, &metrics)
            .unwrap_err()
            .contains("launch 2 is \"a\""));
        let silent = vec![Measurement {
            details: None,
            ..launched(&[])
        }];
        assert!(split_rows(silent, &rows, &metrics).is_err());
    }

    #[test]
    fn the_raw_page_parses_with_units_and_thousands_separators() {
        let rows = parse_csv(RAW).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["Kernel Name"].1, "sdpa_fp8_stage_c_d64_c0");
        assert_eq!(rows[0][DURATION], ("ns".to_string(), "29,472".to_string()));
        let metrics = aggregate(
            &rows,
            &names(&[
                ("duration_ns", DURATION),
                ("sm_pct", "sm__throughput.avg.pct_of_peak_sustained_elapsed"),
                (
                    "bank_conflicts",
                    "l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum",
                ),
                ("absent", "no__such_metric.sum"),
            ]),
        );
        // Counters add up over launches; percentages are duration-weighted means.
        assert_eq!(metrics["duration_ns"].value, 29_472.0 + 29_504.0);
        assert_eq!(metrics["bank_conflicts"].value, 22_531.0 + 27_139.0);
        let sm = (33.62 * 29_472.0 + 33.53 * 29_504.0) / (29_472.0 + 29_504.0);
        assert!((metrics["sm_pct"].value - sm).abs() < 1e-9);
        assert_eq!(metrics["sm_pct"].unit, "%");
        assert!(!metrics.contains_key("absent"));
    }

    #[test]
    fn chatter_only_means_no_launch_was_profiled() {
        let text = "==PROF== Connected to process 1\n==ERROR== something broke\n";
        assert!(parse_csv(text).unwrap().is_empty());
        assert_eq!(last_error(text), Some("something broke"));
    }

    #[test]
    fn metric_names_are_checked_by_base_name() {
        let listed = "\"Metric name\",\"Metric type\",\"Metric unit\",\"Metric description\",\"NVIDIA H100 80GB HBM3\"\n\"sm__throughput\",\"Throughput\",\"%\",\"SM throughput\",\"1\"\n\"dram__bytes\",\"Counter\",\"byte\",\"bytes\",\"1\"\n";
        let profiler = Profiler {
            ncu: PathBuf::from("ncu"),
            known: Some(query_names(listed)),
        };
        let asked = names(&[
            ("sm_pct", "sm__throughput.avg.pct_of_peak_sustained_elapsed"),
            ("dram", "dram__bytes.sum.per_second"),
            ("tensor", "sm__pipe_tensor_op_hmma_cycles_activ.avg"),
        ]);
        let unknown: Vec<&str> = profiler
            .unknown(&asked)
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(unknown, ["tensor"]);
    }

    #[test]
    fn numbers_lose_their_separators() {
        assert_eq!(parse_number("1,980,000"), Some(1_980_000.0));
        assert_eq!(parse_number("6.39"), Some(6.39));
        assert_eq!(parse_number("n/a"), None);
        assert_eq!(parse_number(""), None);
    }
}
