//! Reports: each format renders a [`RunRecord`] behind one small trait, so adding a format
//! touches one file.

pub mod html;
mod json;
mod junit;
mod markdown;
mod profile;
mod terminal;

pub use html::Html;
pub use json::Json;
pub use junit::JUnit;
pub(crate) use markdown::escape_inline;
pub use markdown::{Markdown, MARKDOWN_BUDGET};
pub use profile::{profile_markdown, profile_table, ProfileRow};
pub use terminal::Terminal;

use std::borrow::Cow;
use std::fmt::Write;

use crate::record::{RunRecord, ShapeResult, Side};

pub trait Exporter {
    fn render(&self, run: &RunRecord) -> String;
}

/// Decimals that suit a time of this size: 4 significant digits for typical kernel times.
fn decimals(us: f64) -> usize {
    if us >= 1000.0 {
        0
    } else if us >= 100.0 {
        1
    } else {
        2
    }
}

/// Microseconds with precision that suits their size.
pub(crate) fn format_us(us: f64) -> String {
    format!("{us:.*}", decimals(us))
}

/// `mean ± stddev` of one side (both at the mean's precision), or a dash where the side was not
/// summarised. A hand-edited record may lack the stddev: then the mean alone.
pub(crate) fn format_mean(side: &Option<Side>) -> String {
    match side.as_ref().and_then(|side| side.kept) {
        Some(kept) if kept.stddev_us.is_finite() => {
            let places = decimals(kept.mean_us);
            format!("{:.places$} ± {:.places$}", kept.mean_us, kept.stddev_us)
        }
        Some(kept) => format_us(kept.mean_us),
        None => "—".to_string(),
    }
}

pub(crate) fn format_delta(result: &ShapeResult) -> String {
    match result.test {
        Some(test) => format!("{:+.1} %", (test.ratio - 1.0) * 100.0),
        None => "—".to_string(),
    }
}

/// Where each kernel's time went: `attention 12.5 s (measuring 5.0, A/B 7.5; 12 processes)`,
/// one per kernel that took any.
pub(crate) fn time_spent(run: &RunRecord) -> Vec<String> {
    run.kernels
        .iter()
        .filter_map(|kernel| {
            let time = run.time.get(&kernel.name)?;
            if time.total_s() <= 0.0 && time.processes == 0 {
                return None;
            }
            let mut parts = Vec::new();
            let mut part = |name: &str, seconds: f64| {
                if seconds > 0.0 {
                    parts.push(format!("{name} {seconds:.1}"));
                }
            };
            part("start-up", time.startup_s - time.compile_s);
            part("compile", time.compile_s);
            part("correctness", time.correctness_s);
            part("timing", time.timing_s);
            // What the harness did not attribute: v1 process starts, transfers, set-up per shape.
            let other = time.measuring_s - time.correctness_s - time.timing_s;
            let split = time.correctness_s + time.timing_s > 0.0;
            part(if split { "other" } else { "measuring" }, other);
            part("profiling", time.profiling_s);
            part("A/B", time.ab_s);
            let processes = if time.processes == 1 {
                "1 process".to_string()
            } else {
                format!("{} processes", time.processes)
            };
            parts.push(processes);
            Some(format!(
                "{} {:.1} s ({})",
                kernel.name,
                time.total_s(),
                parts.join(", ")
            ))
        })
        .collect()
}

/// A shape's A/B comparison, `1.148× [1.139, 1.157] · 4 rounds`, or a dash where none ran.
pub(crate) fn format_ab(result: &ShapeResult) -> String {
    let Some(ab) = &result.ab else {
        return "—".to_string();
    };
    let ratio = ab.ratio.map_or("—".to_string(), |r| format!("{r:.3}×"));
    let ci = ab.ratio_ci.map_or(String::new(), |[low, high]| {
        format!(" [{low:.3}, {high:.3}]")
    });
    let rounds = if ab.rounds == 1 { "round" } else { "rounds" };
    format!("{ratio}{ci} · {} {rounds}", ab.rounds)
}

pub(crate) fn format_p(result: &ShapeResult) -> String {
    match result.test.map(|test| test.p_value) {
        Some(p) if p < 0.001 => "<0.001".to_string(),
        Some(p) => format!("{p:.3}"),
        None => "—".to_string(),
    }
}

/// A correctness error in the reports' style: `inf` when infinite, 4 decimals in a readable
/// range, scientific notation outside it.
pub(crate) fn format_error(value: f64) -> String {
    if !value.is_finite() {
        "inf".to_string()
    } else if value == 0.0 {
        "0".to_string()
    } else if (1e-3..1e4).contains(&value) {
        format!("{value:.4}")
    } else {
        format!("{value:.2e}")
    }
}

/// The output errors the harness reported, `max abs err 1.129, max rel err inf, rel L2 err
/// 1.0000`, or `None` when it reported none.
pub(crate) fn describe_errors(result: &ShapeResult) -> Option<String> {
    let parts: Vec<String> = [
        ("max abs err", result.max_abs_err),
        ("max rel err", result.max_rel_err),
        ("rel L2 err", result.rel_l2_err),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| format!("{name} {}", format_error(v))))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Text from a harness (or a record) made safe to show: every character that could drive a
/// terminal or mislead a reader is written as a visible escape, `\x1b` or `\u{202e}`. That is
/// C0 and C1 controls (ESC starts colour, screen-clearing and OSC title or link sequences; U+009B
/// is a one-byte CSI), DEL, the bidirectional marks, embeddings, overrides and isolates (they
/// reorder what is shown, so a line can read other than it is), the line and paragraph
/// separators, and U+FFFE and U+FFFF, which XML 1.0 forbids. Newlines and tabs are kept.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Whether [`neutralise`] escapes `c`.
pub(crate) fn is_unsafe(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

/// `\x1b` for a character below U+0100, `\u{202e}` above.
pub(crate) fn push_escaped(out: &mut String, c: char) {
    let code = u32::from(c);
    if code < 0x100 {
        let _ = write!(out, "\\x{code:02x}");
    } else {
        let _ = write!(out, "\\u{{{code:04x}}}");
    }
}

/// GitHub Actions workflow commands that put each compiler error on its file and line
/// (`kernels/x.cu(12): error: ...` in an error message). `root` is the folder of gates.yaml,
/// which compiler paths are relative to.
pub fn github_annotations(run: &RunRecord, root: &std::path::Path) -> Vec<String> {
    let mut annotations = Vec::new();
    for result in run
        .results
        .iter()
        .filter(|r| r.verdict == crate::compare::Verdict::Error)
    {
        let Some(message) = &result.message else {
            continue;
        };
        for line in message.lines() {
            let Some((file, rest)) = line.split_once('(') else {
                continue;
            };
            let Some((number, text)) = rest.split_once("): ") else {
                continue;
            };
            if number.parse::<u32>().is_err()
                || !(text.starts_with("error") || text.starts_with("catastrophic error"))
            {
                continue;
            }
            let path = root.join(file.trim());
            let path = path.strip_prefix("./").unwrap_or(&path);
            // Workflow commands end at a newline and treat %, \r, \n specially.
            let escape = |s: &str| {
                neutralise(s)
                    .replace('%', "%25")
                    .replace('\r', "%0D")
                    .replace('\n', "%0A")
            };
            annotations.push(format!(
                "::error file={},line={number},title=gatekeeper: {} does not compile::{}",
                escape(&path.display().to_string())
                    .replace(',', "%2C")
                    .replace(':', "%3A"),
                result.kernel,
                escape(text)
            ));
        }
    }
    annotations.sort();
    annotations.dedup();
    annotations
}

/// One line of gate settings, shown under every human-readable report.
pub(crate) fn describe_gate(run: &RunRecord) -> String {
    let gate = &run.gate;
    let fence = match gate.outlier_fence {
        Some(k) => format!("outliers beyond {k}×IQR dropped"),
        None => "no outlier filtering".to_string(),
    };
    let mut text = format!(
        "a shape regresses when its mean is > {:.0} % slower with one-sided Welch p < {}; a kernel fails at {} regressed shapes or any incorrect/error shape; {fence}",
        gate.regression_threshold * 100.0,
        gate.alpha,
        gate.min_regressed_shapes,
    );
    if let Some(base) = &run.ab_base {
        let _ = write!(
            text,
            "; A/B beside {base}: base and candidate processes in alternating rounds, a shape \
             decided when the interval of its log-ratios of medians clears the threshold \
             ({}-{} rounds, alpha {} over all looks), and that verdict is final",
            gate.ab.min_rounds, gate.ab.max_rounds, gate.ab.alpha
        );
    }
    text
}

#[cfg(test)]
pub(crate) mod fixture {
    //! A run record covering every verdict, shared by the snapshot tests of each format.

    use crate::ab::AbResult;
    use crate::compare::Verdict;
    use crate::config::{GateSettings, TimingSettings};
    use crate::record::{
        self, Kept, KernelTime, PassFail, RunRecord, ShapeResult, Side, Sides, Test,
    };

    fn shape(kernel: &str, shape: &str, verdict: Verdict) -> ShapeResult {
        ShapeResult {
            kernel: kernel.into(),
            shape: shape.into(),
            verdict,
            device: Some("NVIDIA H100 80GB HBM3".into()),
            ..ShapeResult::default()
        }
    }

    /// A side around `mean`: three samples whose median is the summary's.
    fn side(mean: f64, stddev: f64, n: usize, dropped: usize) -> Side {
        Side {
            samples_us: vec![mean * 0.99, mean, mean * 1.01],
            kept: Some(Kept {
                mean_us: mean,
                stddev_us: stddev,
                median_us: mean,
                n,
                dropped,
            }),
        }
    }

    fn timed(
        kernel: &str,
        name: &str,
        verdict: Verdict,
        base: f64,
        ratio: f64,
        p: f64,
    ) -> ShapeResult {
        ShapeResult {
            test: Some(Test {
                ratio,
                ci: [ratio - 0.02, ratio + 0.02],
                p_value: p,
            }),
            sides: Sides {
                baseline: Some(side(base, base * 0.01, 49, 1)),
                candidate: Some(side(base * ratio, base * ratio * 0.012, 48, 2)),
            },
            correct: Some(true),
            max_abs_err: Some(0.0012),
            max_rel_err: Some(0.0031),
            baseline_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            wall_s: Some(1.25),
            ..shape(kernel, name, verdict)
        }
    }

    /// An A/B comparison over `rounds` rounds around `ratio`, with an interval of ± `half`.
    fn ab(verdict: Verdict, ratio: f64, half: f64, rounds: usize) -> AbResult {
        AbResult {
            verdict,
            ratio: Some(ratio),
            ratio_ci: Some([ratio - half, ratio + half]),
            rounds,
            spread: Some(0.004),
            medians_us: (0..rounds)
                .map(|i| [100.0 + i as f64 * 0.1, ratio * (100.0 + i as f64 * 0.1)])
                .collect(),
            base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            wall_s: rounds as f64 * 2.5,
            note: None,
        }
    }

    #[test]
    fn compiler_errors_become_annotations() {
        let run = run();
        let annotations = super::github_annotations(&run, std::path::Path::new("."));
        assert_eq!(
            annotations,
            ["::error file=kernels/softmax.cu,line=12,title=gatekeeper: softmax does not compile::error: identifier \"acc\" is undefined"]
        );
    }

    pub fn run() -> RunRecord {
        let gate = GateSettings::default();
        let mut crashed = shape("quantize", "small", Verdict::Error);
        crashed.device = None;
        crashed.message = Some("`python3 bench/q.py` failed: exit status: 1".into());
        let mut compile = shape("softmax", "small", Verdict::Error);
        compile.device = None;
        compile.message = Some(
            "compile error in kernels/softmax.cu (NVRTC 13.0, sm_90):\nkernels/softmax.cu(12): error: identifier \"acc\" is undefined\n\n1 error detected in the compilation of \"kernels/softmax.cu\"."
                .into(),
        );
        crashed.stderr_tail = Some(
            "Traceback (most recent call last):\n  File \"q.py\", line 3\nRuntimeError: CUDA error: an illegal memory access <b>@here</b> | ```"
                .into(),
        );
        let mut wrong = shape("quantize", "mission", Verdict::Incorrect);
        wrong.correct = Some(false);
        wrong.max_abs_err = Some(1.129);
        wrong.max_rel_err = Some(f64::INFINITY);
        wrong.rel_l2_err = Some(1.0);
        wrong.message = Some("the harness reported incorrect output".into());
        let mut fresh = shape("gemm", "wide", Verdict::NoBaseline);
        // Summarised without samples, so no peer can be compared with it.
        fresh.sides.candidate = Some(Side {
            samples_us: vec![],
            kept: Some(Kept {
                mean_us: 812.5,
                stddev_us: 3.25,
                median_us: 811.0,
                n: 40,
                dropped: 0,
            }),
        });
        fresh.message = Some("no baseline for gemm/wide on nvidia-h100-80gb-hbm3".into());
        let results = vec![
            timed("attention", "small", Verdict::Unchanged, 12.5, 1.013, 0.21),
            {
                let mut confirmed = timed(
                    "attention",
                    "mission",
                    Verdict::Regressed,
                    37.65,
                    1.152,
                    0.0001,
                );
                confirmed.settle_by_ab(ab(Verdict::Regressed, 1.148, 0.009, 4));
                confirmed
            },
            {
                let mut unconfirmed = timed(
                    "attention",
                    "long",
                    Verdict::Regressed,
                    1480.0,
                    1.171,
                    0.0004,
                );
                unconfirmed.add_note("not measured by A/B: the base failed in round 1: `the CUDA runner` failed: exit status: 1; the stored verdict stands".into());
                unconfirmed
            },
            timed("attention", "wide", Verdict::Improved, 75.0, 0.82, 0.0002),
            {
                let mut capped = timed("gemm", "mission", Verdict::Regressed, 210.0, 1.12, 0.003);
                capped.message = Some("16 of the candidate's 48 samples (33 %) lie outside the outlier fences: more than a heavy tail explains, so only the 12 farthest were dropped".into());
                // The stored baseline came from a faster runner: beside the base, no change.
                capped.settle_by_ab(ab(Verdict::Unchanged, 1.006, 0.012, 6));
                capped
            },
            timed("gemm", "long", Verdict::Inconclusive, 95.0, 1.06, 0.2),
            fresh,
            wrong,
            crashed,
            compile,
        ];
        let mut results = results;
        record::attach_peers(&mut results, |kernel| {
            if kernel == "attention" {
                vec!["gemm".to_string()]
            } else {
                vec![]
            }
        });
        let kernels = record::decide_kernels(&results, &gate);
        let passed = kernels.iter().all(|k| k.verdict.passed());
        RunRecord {
            format: record::FORMAT,
            gatekeeper_version: "0.1.0".into(),
            started_at: "2026-11-24T06:00:00Z".into(),
            duration_s: 42.5,
            config: "gates.yaml".into(),
            commit: Some("fedcba9876543210fedcba9876543210fedcba98".into()),
            dirty: Some(false),
            baselines_from: "origin/main (0123456789ab)".into(),
            ab_base: Some(
                "origin/main's merge-base with HEAD (0123456789ab; origin/main is at 89abcdef0123)"
                    .into(),
            ),
            time: [
                ("attention", 3, 2.5, 1.75, 5.0, 0.0, 10.0),
                ("gemm", 9, 0.0, 0.0, 3.0, 0.0, 15.0),
                ("quantize", 2, 0.0, 0.0, 0.5, 1.25, 0.0),
                ("softmax", 1, 0.5, 0.0, 0.25, 0.0, 0.0),
            ]
            .into_iter()
            .map(
                |(kernel, processes, startup_s, compile_s, measuring_s, profiling_s, ab_s)| {
                    let time = KernelTime {
                        processes,
                        startup_s,
                        compile_s,
                        measuring_s,
                        correctness_s: measuring_s / 4.0,
                        timing_s: measuring_s / 2.0,
                        profiling_s,
                        ab_s,
                    };
                    (kernel.to_string(), time)
                },
            )
            .collect(),
            shard: None,
            plan_id: "fixture".into(),
            plan_jobs: 10,
            gate,
            timing: TimingSettings::default(),
            peers: indexmap::IndexMap::new(),
            verdict: PassFail::from_passed(passed),
            kernels,
            results,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutralise_escapes_what_could_drive_a_terminal() {
        let text = "a\u{1b}[2Jb\u{1b}]0;title\u{7}c\u{0}d\u{202e}e\u{2066}f\u{200f}g\u{9b}h\r\ni\tj\u{7f}\u{fffe}";
        assert_eq!(
            neutralise(text),
            "a\\x1b[2Jb\\x1b]0;title\\x07c\\x00d\\u{202e}e\\u{2066}f\\u{200f}g\\x9bh\\x0d\ni\tj\\x7f\\u{fffe}"
        );
        assert!(matches!(neutralise("plain µs ✅ ←\n"), Cow::Borrowed(_)));
    }
}
