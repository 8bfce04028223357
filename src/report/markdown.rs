//! The pull-request comment: the verdict in the first line, a kernel summary a reviewer reads in
//! ten seconds, then a table per kernel and the logs folded away.
//!
//! Text that comes from a harness (messages, stderr) is escaped or fenced so it cannot break the
//! comment's layout, inject HTML, or @mention anyone.
//!
//! GitHub refuses a comment over 65,536 characters, so the comment keeps to a budget: when the
//! whole report is larger, the passing kernels shrink to their summary line, and if that is not
//! enough the comment names the failures it can and points to the run record for the rest. It
//! is assembled from whole blocks, never cut, so it stays valid markdown.

use std::fmt::Write;

use super::{
    describe_errors, describe_gate, format_ab, format_delta, format_mean, format_p, is_unsafe,
    neutralise, push_escaped, Exporter,
};
use crate::compare::Verdict;
use crate::record::{KernelResult, RunRecord, ShapeResult};

pub struct Markdown;

/// The most bytes a comment takes. A character is at least one byte (and at most two UTF-16
/// units for four), so this stays under GitHub's 65,536 characters however they are counted,
/// with room for the marker line the comment workflow puts first.
pub const MARKDOWN_BUDGET: usize = 60_000;

/// Room kept for the notice that says what was left out.
const NOTICE_ROOM: usize = 1_000;

impl Exporter for Markdown {
    fn render(&self, run: &RunRecord) -> String {
        render_within(run, MARKDOWN_BUDGET)
    }
}

/// The whole report when it fits in `budget` bytes; else the passing kernels folded to their
/// summary line; else [`summarised`].
fn render_within(run: &RunRecord, budget: usize) -> String {
    let full = assemble(run, |_| true, "");
    if full.len() <= budget {
        return full;
    }
    let passing = run.kernels.iter().filter(|k| k.verdict.passed()).count();
    if passing == 0 {
        return summarised(run, budget);
    }
    let note = format!(
        "<sub>The tables of the {passing} passing kernel{} are left out to keep this comment \
         within GitHub's size limit; the run record has every result.</sub>\n\n",
        plural(passing)
    );
    let folded = assemble(run, |kernel| !kernel.verdict.passed(), &note);
    if folded.len() <= budget {
        return folded;
    }
    summarised(run, budget)
}

/// Headline, summary, the tables of the kernels `shown` picks, `note`, logs and footer.
fn assemble(run: &RunRecord, shown: impl Fn(&KernelResult) -> bool, note: &str) -> String {
    let mut out = headline(run);
    out.push_str(SUMMARY_HEADER);
    for kernel in &run.kernels {
        out.push_str(&summary_row(kernel));
    }
    out.push('\n');
    for kernel in run.kernels.iter().filter(|k| shown(k)) {
        out.push_str(&kernel_table(run, kernel));
    }
    out.push_str(note);
    for entry in logs(run) {
        out.push_str(&entry);
    }
    out.push_str(&footer(run));
    out
}

/// The comment for a run too large to show even without the passing kernels' tables: the
/// failing kernels' summary rows (in at most half the room), their tables (leaving the logs up
/// to a quarter) and the logs, each in order while they fit, then what was left out and where
/// to find it. Every block is added whole or not at all.
fn summarised(run: &RunRecord, budget: usize) -> String {
    let footer = footer(run);
    let mut out = headline(run);
    let limit = budget.saturating_sub(footer.len() + NOTICE_ROOM);
    let failing: Vec<&KernelResult> = run.kernels.iter().filter(|k| !k.verdict.passed()).collect();
    let passing = run.kernels.len() - failing.len();

    let mut rows_shown = 0;
    let summary_limit = out.len() + (limit.saturating_sub(out.len())) / 2;
    if out.len() + SUMMARY_HEADER.len() < summary_limit {
        out.push_str(SUMMARY_HEADER);
        for kernel in &failing {
            let row = summary_row(kernel);
            if out.len() + row.len() + 1 > summary_limit {
                break;
            }
            out.push_str(&row);
            rows_shown += 1;
        }
        out.push('\n');
    }
    let entries = logs(run);
    let logs_room = (entries.iter().map(String::len).sum::<usize>()).min(limit / 4);
    let tables_limit = limit.saturating_sub(logs_room);
    let (mut tables_shown, mut tables_cut) = (0, 0);
    for kernel in &failing[..rows_shown] {
        let full = kernel_table(run, kernel);
        if out.len() + full.len() <= tables_limit {
            out.push_str(&full);
        } else {
            let room = tables_limit.saturating_sub(out.len());
            let Some(compact) = compact_table(run, kernel, room) else {
                break;
            };
            out.push_str(&compact);
            tables_cut += 1;
        }
        tables_shown += 1;
    }
    let mut logs_shown = 0;
    for entry in &entries {
        if out.len() + entry.len() <= limit {
            out.push_str(entry);
            logs_shown += 1;
        }
    }

    let missing_rows = failing.len() - rows_shown;
    let missing_tables = rows_shown - tables_shown;
    let missing_logs = entries.len() - logs_shown;
    let shortened: Vec<String> = [
        (passing > 0).then(|| format!("{} left out", count(passing, "passing kernel"))),
        (missing_rows > 0)
            .then(|| format!("{} left out", count(missing_rows, "more failing kernel"))),
        (missing_tables > 0).then(|| {
            format!(
                "the tables of {} left out",
                count(missing_tables, "failing kernel")
            )
        }),
        (tables_cut > 0).then(|| {
            format!(
                "the tables of {} cut to the shapes that failed",
                count(tables_cut, "failing kernel")
            )
        }),
        (missing_logs > 0).then(|| format!("{} left out", count(missing_logs, "log"))),
    ]
    .into_iter()
    .flatten()
    .collect();
    let _ = writeln!(
        out,
        "> [!NOTE]\n> This comment is shortened to fit GitHub's size limit: {}. The run record \
         (the `--json` file, or the newest `runs/*.json` beside gates.yaml) has every result, \
         and `gatekeeper report RUN.json` shows them all.\n",
        shortened.join(", ")
    );
    out.push_str(&footer);
    out
}

/// A failing kernel's table cut down to the shapes that failed it, as many as fit in `room`
/// bytes; `None` when not even its heading fits.
fn compact_table(run: &RunRecord, kernel: &KernelResult, room: usize) -> Option<String> {
    let mut out = format!("### ❌ {}\n\n{}", code(&kernel.name), table_header(run));
    let failed: Vec<&ShapeResult> = run
        .results_of(&kernel.name)
        .filter(|r| run.fails_its_kernel(r))
        .collect();
    let total = run.results_of(&kernel.name).count();
    // Room for the closing line, whose numbers are at most 20 digits each.
    let closing = 120;
    if out.len() + closing > room {
        return None;
    }
    let mut shown = 0;
    for result in &failed {
        let row = table_row(run, result);
        if out.len() + row.len() + closing > room {
            break;
        }
        out.push_str(&row);
        shown += 1;
    }
    let _ = writeln!(
        out,
        "\nShown: {shown} of the {} shapes that failed it ({total} in all).\n",
        failed.len()
    );
    Some(out)
}

/// `1 log`, `2 logs`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", plural(n))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The footer: the gate's settings and the version.
fn footer(run: &RunRecord) -> String {
    format!(
        "<sub>{} · gatekeeper {}</sub>\n",
        escape_inline(&describe_gate(run)),
        escape_inline(&clip(&run.gatekeeper_version, 40))
    )
}

/// At most `max` characters of `text`, cut at a character.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn headline(run: &RunRecord) -> String {
    let failed = run.kernels.iter().filter(|k| !k.verdict.passed()).count();
    let title = if failed == 0 {
        format!("✅ gatekeeper: all {} kernels pass", run.kernels.len())
    } else {
        format!(
            "❌ gatekeeper: {failed} of {} kernels failed",
            run.kernels.len()
        )
    };
    let mut context = vec![format!(
        "{} shapes against {}",
        run.results.len(),
        escape_inline(&clip(&run.baselines_from, 200))
    )];
    if let Some(base) = &run.ab_base {
        context.push(format!("A/B beside {}", escape_inline(&clip(base, 200))));
    }
    if let Some(commit) = &run.commit {
        let dirty = if run.dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        };
        context.push(format!(
            "commit {}{dirty}",
            code(crate::git::short_commit(commit))
        ));
    }
    context.push(format!("{:.1} s", run.duration_s));
    format!("## {title}\n\n{}\n\n", context.join(" · "))
}

const SUMMARY_HEADER: &str = "| Kernel | Verdict | Why |\n|---|---|---|\n";

fn summary_row(kernel: &KernelResult) -> String {
    let verdict = if kernel.verdict.passed() {
        "✅ pass"
    } else {
        "❌ fail"
    };
    format!(
        "| {} | {verdict} | {} |\n",
        code(&kernel.name),
        escape_inline(&kernel.reason)
    )
}

/// The shape table's header; the A/B column shows only when some shape was measured beside
/// the base.
fn table_header(run: &RunRecord) -> &'static str {
    if with_ab(run) {
        "| Shape | Baseline (µs) | Candidate (µs) | Δ | p | A/B candidate/base | Verdict |\n|---|--:|--:|--:|--:|--:|---|\n"
    } else {
        "| Shape | Baseline (µs) | Candidate (µs) | Δ | p | Verdict |\n|---|--:|--:|--:|--:|---|\n"
    }
}

fn with_ab(run: &RunRecord) -> bool {
    run.results.iter().any(|r| r.ab.is_some())
}

fn table_row(run: &RunRecord, result: &ShapeResult) -> String {
    let ab = if with_ab(run) {
        format!(" {} |", format_ab(result))
    } else {
        String::new()
    };
    format!(
        "| {} | {} | {} | {} | {} |{ab} {} |\n",
        code(&result.shape),
        format_mean(&result.sides.baseline),
        format_mean(&result.sides.candidate),
        format_delta(result),
        format_p(result),
        verdict_cell(result),
    )
}

/// Failing kernels' tables are open; passing ones are folded so the failures stand out.
fn kernel_table(run: &RunRecord, kernel: &KernelResult) -> String {
    let mut out = String::new();
    let passed = kernel.verdict.passed();
    if passed {
        let _ = writeln!(
            out,
            "<details><summary>✅ <code>{}</code>: {}</summary>\n",
            escape_html(&kernel.name),
            escape_html(&kernel.reason)
        );
    } else {
        let _ = writeln!(out, "### ❌ {}\n", code(&kernel.name));
    }
    out.push_str(table_header(run));
    for result in run.results_of(&kernel.name) {
        out.push_str(&table_row(run, result));
    }
    out.push('\n');
    delta_chart(&mut out, run, kernel);
    peer_table(&mut out, run, kernel);
    profile_section(&mut out, run, kernel);
    if passed {
        out.push_str("</details>\n\n");
    }
    out
}

/// A bar chart of Δ % per shape (Mermaid, which GitHub renders in comments), when at least two
/// shapes were compared.
fn delta_chart(out: &mut String, run: &RunRecord, kernel: &KernelResult) {
    let bars: Vec<(&str, f64)> = run
        .results_of(&kernel.name)
        .filter_map(|r| Some((r.shape.as_str(), (r.test?.ratio - 1.0) * 100.0)))
        .collect();
    if bars.len() < 2 {
        return;
    }
    let labels: Vec<String> = bars
        .iter()
        .map(|(shape, _)| format!("\"{}\"", chart_text(shape)))
        .collect();
    let values: Vec<String> = bars
        .iter()
        .map(|(_, delta)| format!("{delta:.1}"))
        .collect();
    let _ = writeln!(
        out,
        "```mermaid\nxychart-beta\n    title \"{}: Δ % against the baseline\"\n    x-axis [{}]\n    y-axis \"Δ %\"\n    bar [{}]\n```\n",
        chart_text(&kernel.name),
        labels.join(", "),
        values.join(", ")
    );
}

/// A name as Mermaid text in quotes: names in gates.yaml are plain, but a record can be edited,
/// and a quote, backtick or line break would end the string, the chart or the fence.
fn chart_text(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Gate 4's findings for the kernel's shapes, when it has any.
fn profile_section(out: &mut String, run: &RunRecord, kernel: &KernelResult) {
    let rows = super::ProfileRow::of_results(run.results_of(&kernel.name));
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "Profiling (gate 4):\n");
    out.push_str(&super::profile_markdown(rows));
}

/// The kernel's speedup over each peer, per shape, in the seed report's words.
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
    let header: Vec<String> = peers.iter().map(|p| code(p)).collect();
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
                        format!("{:.2}× {}", p.speedup, escape_inline(p.rating.as_str()))
                    })
            })
            .collect();
        let _ = writeln!(out, "| {} | {} |", code(&result.shape), cells.join(" | "));
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
        if let Some(errors) = describe_errors(result) {
            let _ = write!(cell, " ({errors})");
        }
    }
    cell
}

/// Messages and stderr of the shapes that went wrong, folded: one whole block per shape.
fn logs(run: &RunRecord) -> Vec<String> {
    let mut entries = Vec::new();
    for result in &run.results {
        let Some(message) = &result.message else {
            continue;
        };
        // A missing baseline is said in the kernel's table; every other message (an error, a
        // wrong output, a note on dropped outliers) is listed here.
        if result.verdict == Verdict::NoBaseline {
            continue;
        }
        // The first line heads the entry; the rest of a long message (a compiler log) and the
        // harness's stderr go in the folded block.
        let (headline, rest) = message.split_once('\n').unwrap_or((message, ""));
        let what = format!(
            "<code>{}</code> / <code>{}</code>: {} — {}",
            escape_html(&result.kernel),
            escape_html(&result.shape),
            result.verdict,
            escape_html(headline)
        );
        let body: Vec<&str> = [rest.trim_end(), result.stderr_tail.as_deref().unwrap_or("")]
            .into_iter()
            .filter(|part| !part.trim().is_empty())
            .collect();
        entries.push(if body.is_empty() {
            format!("{what}\n\n")
        } else {
            format!(
                "<details><summary>{what}</summary>\n\n{}\n</details>\n\n",
                fenced(&body.join("\n"))
            )
        });
    }
    entries
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
            // Shown as the terminal shows them; in markdown the escape's backslash is doubled.
            c if is_unsafe(c) => {
                if markdown {
                    out.push('\\');
                }
                push_escaped(&mut out, c);
            }
            c => out.push(c),
        }
    }
    out
}

/// An inline code span that its text cannot close or break out of: on one line, neutralised,
/// between more backticks than any run inside, with `|` escaped for a table cell.
fn code(text: &str) -> String {
    let flat: String = neutralise(text)
        .chars()
        .map(|c| if matches!(c, '\n' | '\t') { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|");
    let longest_run = flat.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    let pad = if flat.starts_with('`') || flat.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{flat}{pad}{fence}")
}

/// A fenced block that its content cannot close: the fence is longer than any backtick run
/// inside. Inside a fence, GitHub renders neither HTML nor mentions.
fn fenced(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    format!("{fence}text\n{}\n{fence}", neutralise(text).trim_end())
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
    fn control_and_bidi_characters_show_as_escapes() {
        assert_eq!(
            escape_inline("a\u{1b}[2J\u{202e}b"),
            "a\\\\x1b\\[2J\\\\u{202e}b"
        );
        assert_eq!(escape_html("a\u{0}\u{2066}"), "a\\x00\\u{2066}");
        assert_eq!(fenced("x\u{1b}]0;t\u{7}"), "```text\nx\\x1b]0;t\\x07\n```");
        assert_eq!(code("a|b``c"), "```a\\|b``c```");
    }

    /// Outside fences, every `<details>` is closed after it opens; every fence is closed.
    fn assert_valid(text: &str) {
        let mut open = 0usize;
        let mut fence: Option<String> = None;
        for line in text.lines() {
            let run: String = line.chars().take_while(|&c| c == '`').collect();
            match &fence {
                Some(f) if *f == line.trim_end() => fence = None,
                Some(_) => {}
                None if run.len() >= 3 => fence = Some(run),
                None => {
                    open += line.matches("<details>").count();
                    let closed = line.matches("</details>").count();
                    assert!(closed <= open, "a </details> before its <details>");
                    open -= closed;
                }
            }
        }
        assert!(fence.is_none(), "an unclosed fence");
        assert_eq!(open, 0, "unclosed <details>");
    }

    /// `rounds` copies of the fixture's kernels (4 kernels, 10 shapes each round), with
    /// multi-byte text in the logs.
    fn large_run(rounds: usize, failing_every: usize) -> RunRecord {
        let template = fixture::run();
        let mut run = template.clone();
        run.results.clear();
        for round in 0..rounds {
            for result in &template.results {
                let mut result = result.clone();
                result.kernel = format!("{}_{round:04}", result.kernel);
                let fails = round % failing_every == 0;
                if !fails {
                    result.verdict = Verdict::Unchanged;
                    result.message = None;
                }
                if let Some(message) = &mut result.message {
                    message.push_str(&" µs ✅ → 😀".repeat(20));
                }
                result.peers.clear();
                run.results.push(result);
            }
        }
        run.kernels = crate::record::decide_kernels(&run.results, &run.gate);
        run
    }

    #[test]
    fn a_large_run_folds_its_passing_kernels_to_fit() {
        let run = large_run(110, 20);
        assert!(run.results.len() > 1_000);
        assert!(assemble(&run, |_| true, "").len() > MARKDOWN_BUDGET);
        let text = Markdown.render(&run);
        assert!(text.len() <= MARKDOWN_BUDGET, "{}", text.len());
        assert_valid(&text);
        assert!(text.contains("passing kernels are left out"), "{text}");
        for kernel in run.kernels.iter().filter(|k| !k.verdict.passed()) {
            assert!(
                text.contains(&format!("### ❌ `{}`", kernel.name)),
                "{}",
                kernel.name
            );
        }
    }

    #[test]
    fn a_run_too_large_even_folded_is_summarised() {
        let mut run = large_run(300, 1);
        for result in &mut run.results {
            result.stderr_tail = Some("Traceback → ✅ <details> ```\n".repeat(60));
        }
        let text = Markdown.render(&run);
        assert!(text.len() <= MARKDOWN_BUDGET, "{}", text.len());
        assert_valid(&text);
        assert!(
            text.starts_with("## ❌ gatekeeper: 900 of 1200 kernels failed"),
            "{text}"
        );
        assert!(text.contains("This comment is shortened"), "{text}");
        assert!(text.contains(" more failing kernels left out, "), "{text}");
        assert!(text.contains("### ❌ `attention_0000`"), "{text}");
        assert!(text.ends_with("</sub>\n"));
    }

    #[test]
    fn every_budget_is_kept_with_whole_blocks() {
        let run = large_run(3, 1);
        let full = Markdown.render(&run);
        for budget in (2_000..full.len() + 100).step_by(250) {
            let text = render_within(&run, budget);
            assert!(text.len() <= budget, "{budget}: {}", text.len());
            assert_valid(&text);
            assert!(text.starts_with("## ❌ gatekeeper"), "{text}");
        }
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
