//! The pull-request comment: the verdict in the first line, a kernel summary a reviewer reads in
//! ten seconds, then a table per kernel and the logs folded away.
//!
//! Text that comes from a harness (messages, stderr) is escaped or fenced so it cannot break the
//! comment's layout, inject HTML, or @mention anyone.

use std::fmt::Write;

use super::{describe_gate, format_delta, format_mean, format_p, short_commit, Exporter};
use crate::compare::Verdict;
use crate::record::{KernelResult, RunRecord, ShapeResult};

pub struct Markdown;

impl Exporter for Markdown {
    fn render(&self, run: &RunRecord) -> String {
        let mut out = String::new();
        headline(&mut out, run);
        kernel_summary(&mut out, run);
        for kernel in &run.kernels {
            kernel_table(&mut out, run, kernel);
        }
        logs(&mut out, run);
        let _ = writeln!(
            out,
            "<sub>{} · gatekeeper {}</sub>",
            escape_inline(&describe_gate(run)),
            escape_inline(&run.gatekeeper_version)
        );
        out
    }
}

fn headline(out: &mut String, run: &RunRecord) {
    let failed = run.kernels.iter().filter(|k| !k.verdict.passed()).count();
    let title = if failed == 0 {
        format!("✅ gatekeeper: all {} kernels pass", run.kernels.len())
    } else {
        format!(
            "❌ gatekeeper: {failed} of {} kernels failed",
            run.kernels.len()
        )
    };
    let _ = writeln!(out, "## {title}\n");
    let mut context = vec![format!(
        "{} shapes against {}",
        run.results.len(),
        escape_inline(&run.baselines_from)
    )];
    if let Some(commit) = &run.commit {
        let dirty = if run.dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        };
        context.push(format!("commit `{}`{dirty}", short_commit(commit)));
    }
    context.push(format!("{:.1} s", run.duration_s));
    let _ = writeln!(out, "{}\n", context.join(" · "));
}

fn kernel_summary(out: &mut String, run: &RunRecord) {
    let _ = writeln!(out, "| Kernel | Verdict | Why |\n|---|---|---|");
    for kernel in &run.kernels {
        let verdict = if kernel.verdict.passed() {
            "✅ pass"
        } else {
            "❌ fail"
        };
        let _ = writeln!(
            out,
            "| `{}` | {verdict} | {} |",
            kernel.name,
            escape_inline(&kernel.reason)
        );
    }
    out.push('\n');
}

/// Failing kernels' tables are open; passing ones are folded so the failures stand out.
fn kernel_table(out: &mut String, run: &RunRecord, kernel: &KernelResult) {
    let passed = kernel.verdict.passed();
    if passed {
        let _ = writeln!(
            out,
            "<details><summary>✅ <code>{}</code>: {}</summary>\n",
            kernel.name,
            escape_html(&kernel.reason)
        );
    } else {
        let _ = writeln!(out, "### ❌ `{}`\n", kernel.name);
    }
    let _ = writeln!(
        out,
        "| Shape | Baseline (µs) | Candidate (µs) | Δ | p | Verdict |\n|---|--:|--:|--:|--:|---|"
    );
    for result in run.results_of(&kernel.name) {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            result.shape,
            format_mean(result.baseline_mean_us, result.baseline_stddev_us),
            format_mean(result.candidate_mean_us, result.candidate_stddev_us),
            format_delta(result),
            format_p(result),
            verdict_cell(result),
        );
    }
    out.push('\n');
    delta_chart(out, run, kernel);
    peer_table(out, run, kernel);
    profile_section(out, run, kernel);
    if passed {
        out.push_str("</details>\n\n");
    }
}

/// A bar chart of Δ % per shape (Mermaid, which GitHub renders in comments), when at least two
/// shapes were compared.
fn delta_chart(out: &mut String, run: &RunRecord, kernel: &KernelResult) {
    let bars: Vec<(&str, f64)> = run
        .results_of(&kernel.name)
        .filter_map(|r| Some((r.shape.as_str(), (r.ratio? - 1.0) * 100.0)))
        .collect();
    if bars.len() < 2 {
        return;
    }
    let labels: Vec<String> = bars
        .iter()
        .map(|(shape, _)| format!("\"{shape}\""))
        .collect();
    let values: Vec<String> = bars
        .iter()
        .map(|(_, delta)| format!("{delta:.1}"))
        .collect();
    let _ = writeln!(
        out,
        "```mermaid\nxychart-beta\n    title \"{}: Δ % against the baseline\"\n    x-axis [{}]\n    y-axis \"Δ %\"\n    bar [{}]\n```\n",
        kernel.name,
        labels.join(", "),
        values.join(", ")
    );
}

/// The kernel's speedup over each peer, per shape, in the seed report's words.
/// Gate 4's findings for the kernel's shapes, when it has any.
fn profile_section(out: &mut String, run: &RunRecord, kernel: &KernelResult) {
    let rows: Vec<_> = run
        .results_of(&kernel.name)
        .filter(|r| r.profile.is_some())
        .map(|r| {
            (
                r.kernel.as_str(),
                r.shape.as_str(),
                r.profile.as_ref(),
                None,
            )
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "Profiling (gate 4):\n");
    out.push_str(&super::profile_markdown(rows.into_iter()));
}

fn peer_table(out: &mut String, run: &RunRecord, kernel: &KernelResult) {
    let mut peers: Vec<&str> = Vec::new();
    for result in run.results_of(&kernel.name) {
        for peer in &result.peers {
            if !peers.contains(&peer.kernel.as_str()) {
                peers.push(&peer.kernel);
            }
        }
    }
    if peers.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Speedup over peers (their median / this kernel's, same run):\n"
    );
    let header: Vec<String> = peers.iter().map(|p| format!("`{p}`")).collect();
    let _ = writeln!(out, "| Shape | {} |", header.join(" | "));
    let _ = writeln!(out, "|---|{}", "--:|".repeat(peers.len()));
    for result in run.results_of(&kernel.name) {
        let cells: Vec<String> = peers
            .iter()
            .map(|peer| {
                result
                    .peers
                    .iter()
                    .find(|p| p.kernel == *peer)
                    .map_or("—".to_string(), |p| {
                        format!("{:.2}× {}", p.speedup, p.rating)
                    })
            })
            .collect();
        let _ = writeln!(out, "| `{}` | {} |", result.shape, cells.join(" | "));
    }
    out.push('\n');
}

fn verdict_cell(result: &ShapeResult) -> String {
    let word = match result.verdict {
        Verdict::Unchanged => "unchanged",
        Verdict::Improved => "🟢 improved",
        Verdict::Regressed => "🔴 regressed",
        Verdict::Inconclusive => "🟡 inconclusive",
        Verdict::NoBaseline => "⚪ no baseline",
        Verdict::Incorrect => "❌ incorrect",
        Verdict::Error => "💥 error",
    };
    let mut cell = word.to_string();
    if result.verdict == Verdict::Incorrect {
        if let Some(err) = result.max_abs_err {
            let _ = write!(cell, " (max abs err {})", format_error(err));
        }
    }
    cell
}

fn format_error(value: f64) -> String {
    if !value.is_finite() {
        "inf".to_string()
    } else if (1e-3..1e4).contains(&value) {
        format!("{value:.4}")
    } else {
        format!("{value:.2e}")
    }
}

/// Messages and stderr of the shapes that went wrong, folded.
fn logs(out: &mut String, run: &RunRecord) {
    for result in &run.results {
        let Some(message) = &result.message else {
            continue;
        };
        if !matches!(
            result.verdict,
            Verdict::Error | Verdict::Incorrect | Verdict::Inconclusive
        ) {
            continue;
        }
        // The first line heads the entry; the rest of a long message (a compiler log) and the
        // harness's stderr go in the folded block.
        let (headline, rest) = message.split_once('\n').unwrap_or((message, ""));
        let what = format!(
            "<code>{}</code> / <code>{}</code>: {} — {}",
            result.kernel,
            result.shape,
            result.verdict,
            escape_html(headline)
        );
        let body: Vec<&str> = [rest.trim_end(), result.stderr_tail.as_deref().unwrap_or("")]
            .into_iter()
            .filter(|part| !part.trim().is_empty())
            .collect();
        if body.is_empty() {
            let _ = writeln!(out, "{what}\n");
        } else {
            let _ = writeln!(
                out,
                "<details><summary>{what}</summary>\n\n{}\n</details>\n",
                fenced(&body.join("\n"))
            );
        }
    }
}

/// Escapes text for a single line of markdown (a table cell or a summary): HTML is neutralised,
/// markdown punctuation is backslashed, `@` cannot form a mention, and newlines are flattened.
pub(crate) fn escape_inline(text: &str) -> String {
    escape(text, true)
}

/// Escapes text inside an HTML element such as `<summary>`, where markdown is not rendered
/// (so backslashes would show) but tags and mentions still would be.
pub(crate) fn escape_html(text: &str) -> String {
    escape(text, false)
}

fn escape(text: &str, markdown: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if !markdown => out.push_str("&quot;"),
            '@' => out.push_str("@&#8203;"),
            '\n' | '\r' | '\t' => out.push(' '),
            // With brackets escaped no link or image can form, so parentheses may stay.
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' if markdown => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A fenced block that its content cannot close: the fence is longer than any backtick run
/// inside. Inside a fence, GitHub renders neither HTML nor mentions.
fn fenced(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let body: String = text
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    format!("{fence}text\n{}\n{fence}", body.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(Markdown.render(&fixture::run()));
    }

    #[test]
    fn harness_text_cannot_inject() {
        let escaped = escape_inline("<img src=x> @team | [link](http://x) **b**\nnext");
        assert!(!escaped.contains('<') && !escaped.contains("@team"));
        assert!(!escaped.contains('\n'));
        assert_eq!(escaped.matches("\\|").count(), 1);
        let summary = escape_html("`cmd` failed <b> @x");
        assert_eq!(summary, "`cmd` failed &lt;b&gt; @&#8203;x");
        let block = fenced("a ``` b ```` c");
        assert!(block.starts_with("`````text\n"), "{block}");
        assert!(block.ends_with("\n`````"));
    }

    #[test]
    fn passing_run_says_so_first() {
        let mut run = fixture::run();
        run.results.retain(|r| r.kernel == "gemm");
        run.kernels.retain(|k| k.name == "gemm");
        let text = Markdown.render(&run);
        assert!(
            text.starts_with("## ✅ gatekeeper: all 1 kernels pass"),
            "{text}"
        );
    }
}
