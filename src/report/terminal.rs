//! The table printed at the end of a command.
//!
//! Harness text (messages, stderr) is neutralised before it reaches the reader's terminal: an
//! escape sequence in a harness's output must not clear the screen, retitle the window, forge a
//! link or a PASS line.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, ContentArrangement, Table};

use super::{
    describe_errors, describe_gate, format_ab, format_delta, format_mean, format_p, format_us,
    neutralise, time_spent, Exporter, ProfileRow,
};
use crate::compare::Verdict;
use crate::record::RunRecord;

pub struct Terminal;

/// Lines of a multi-line message (a compiler log) shown under its shape.
const MESSAGE_LINES: usize = 20;

impl Exporter for Terminal {
    fn render(&self, run: &RunRecord) -> String {
        // The A/B column shows only when some shape was measured beside the base.
        let with_ab = run.results.iter().any(|r| r.ab.is_some());
        let mut header = vec!["kernel", "shape", "baseline µs", "candidate µs", "Δ", "p"];
        if with_ab {
            header.push("A/B candidate/base");
        }
        header.push("verdict");
        let mut table = new_table(&header);
        for result in &run.results {
            let mut row = vec![
                cell(&result.kernel),
                cell(&result.shape),
                format_mean(&result.sides.baseline),
                format_mean(&result.sides.candidate),
                format_delta(result),
                format_p(result),
            ];
            if with_ab {
                row.push(format_ab(result));
            }
            row.push(result.verdict.to_string());
            table.add_row(row);
        }
        align_right(&mut table, 2..6);
        let mut out = format!("{table}\n");
        if run.results.iter().any(|r| !r.peers.is_empty()) {
            out.push_str(&format!("{}\n", peer_table(run)));
        }
        let rows = ProfileRow::of_results(run.results.iter());
        if !rows.is_empty() {
            out.push_str(&format!("{}\n", super::profile_table(rows)));
            for result in &run.results {
                for check in result.profile.iter().flat_map(|p| p.failed_checks()) {
                    out.push_str(&format!(
                        "{}/{}: profiling limit missed: {}\n",
                        result.kernel,
                        result.shape,
                        check.describe()
                    ));
                }
            }
        }
        out.push_str(&messages(run));
        for kernel in &run.kernels {
            let word = if kernel.verdict.passed() {
                "PASS"
            } else {
                "FAIL"
            };
            out.push_str(&format!("{word}  {}: {}\n", kernel.name, kernel.reason));
        }
        let spent = time_spent(run);
        if !spent.is_empty() {
            out.push_str(&format!("time: {}\n", spent.join(" · ")));
        }
        let verdict = if run.verdict.passed() { "PASS" } else { "FAIL" };
        out.push_str(&format!(
            "gatekeeper: {verdict} against {} ({})\n",
            run.baselines_from,
            describe_gate(run)
        ));
        // The cells were neutralised one by one, so the columns line up; this catches the rest.
        neutralise(&out).into_owned()
    }
}

/// Each shape's message (its first lines), the output errors of a wrong result, and the
/// harness's stderr, under the shape they belong to.
fn messages(run: &RunRecord) -> String {
    let mut out = String::new();
    for result in &run.results {
        if let Some(message) = &result.message {
            let mut lines = message.lines();
            out.push_str(&format!(
                "{}/{}: {}: {}\n",
                result.kernel,
                result.shape,
                result.verdict,
                lines.next().unwrap_or_default()
            ));
            // The rest of a long message, such as a compiler log with file(line) errors.
            for line in lines.take(MESSAGE_LINES) {
                out.push_str(&format!("    {line}\n"));
            }
        }
        if result.verdict == Verdict::Incorrect {
            if let Some(errors) = describe_errors(result) {
                out.push_str(&format!("    {errors}\n"));
            }
        }
        if let Some(tail) = &result.stderr_tail {
            for line in tail.lines() {
                out.push_str(&format!("    | {line}\n"));
            }
        }
    }
    out
}

/// A table cell from a record's text.
fn cell(text: &str) -> String {
    neutralise(text).into_owned()
}

/// A table in the terminal report's style.
pub(super) fn new_table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// Right-aligns the numeric columns.
pub(super) fn align_right(table: &mut Table, columns: std::ops::Range<usize>) {
    for index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Speedup of each kernel over its peers, one row per kernel × shape × peer.
fn peer_table(run: &RunRecord) -> Table {
    let mut table = new_table(&[
        "kernel",
        "shape",
        "peer",
        "peer µs",
        "kernel µs",
        "speedup",
        "rating",
    ]);
    for result in &run.results {
        for peer in &result.peers {
            table.add_row([
                cell(&result.kernel),
                cell(&result.shape),
                cell(&peer.kernel),
                format_us(peer.median_us),
                result
                    .candidate_median_of_all()
                    .map_or("—".to_string(), format_us),
                format!("{:.2}×", peer.speedup),
                cell(peer.rating.as_str()),
            ]);
        }
    }
    align_right(&mut table, 3..6);
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(Terminal.render(&fixture::run()));
    }

    #[test]
    fn harness_text_cannot_drive_the_terminal() {
        let mut run = fixture::run();
        for result in &mut run.results {
            result.shape.push_str("\u{1b}[31m");
            result.message = Some(
                "\u{1b}[2J\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7} \u{0}\u{202e}txt.exe\nnext\u{9b}31m"
                    .into(),
            );
            result.stderr_tail = Some("\u{1b}]0;title\u{7}\rPASS\u{2067}\u{200e}".into());
        }
        let text = Terminal.render(&run);
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && crate::report::is_unsafe(c)),
            "{text:?}"
        );
        for escaped in [
            "\\x1b[2J",
            "\\x1b]0;title\\x07\\x0dPASS",
            "\\u{202e}",
            "\\x9b31m",
        ] {
            assert!(text.contains(escaped), "{escaped} in {text}");
        }
    }
}
