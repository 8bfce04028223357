//! The HTML report: one self-contained page a reviewer opens from the CI artifacts. The verdict
//! and a per-kernel summary come first; then, per shape, both sides' samples as a strip and box
//! plot, the ratio with its interval, the A/B rounds where they ran, peer speedups, gate 4's
//! class and metrics, and the compile log or correctness message where a shape failed.
//!
//! The page loads nothing: styles are inline, charts are inline SVG, and a Content Security
//! Policy forbids scripts and every fetch, so a string a harness smuggled into a record can
//! neither run nor phone home. Every text goes through `maud`, which escapes it, after
//! [`neutralise`] has made control and bidirectional characters visible.

pub mod plot;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{
    describe_errors, describe_gate, format_ab, format_delta, format_error, format_mean, format_p,
    format_us, neutralise, time_spent, Exporter,
};
use crate::record::{KernelResult, RunRecord, ShapeResult};
use plot::SampleRow;

pub struct Html;

impl Exporter for Html {
    fn render(&self, run: &RunRecord) -> String {
        let verdict = if run.verdict.passed() { "PASS" } else { "FAIL" };
        page(
            &format!("gatekeeper {verdict}"),
            html! {
                (headline(run))
                (summary(run))
                @for (index, kernel) in run.kernels.iter().enumerate() {
                    (kernel_section(run, index, kernel))
                }
                (unjudged(run))
                (footer(run))
            },
        )
    }
}

/// Text from a record, safe for the page: visible escapes for controls, then HTML-escaped by
/// maud where it is spliced in.
pub(crate) fn safe(text: &str) -> String {
    neutralise(text).into_owned()
}

const STYLE: &str = r#"
:root { color-scheme: light; --pass: #2e7d32; --fail: #c62828; --warn: #b26a00; --muted: #666; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
  max-width: 1100px; padding: 16px 24px 48px; color: #1d1d1d; }
h1 { font-size: 24px; margin: 8px 0; } h2 { font-size: 19px; margin: 28px 0 8px; }
h3 { font-size: 15px; margin: 0 0 6px; }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12.5px; }
pre { background: #f6f8fa; padding: 8px 10px; overflow-x: auto; white-space: pre-wrap;
  border-radius: 4px; max-height: 320px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
h2, h3, p, td, code, pre { overflow-wrap: anywhere; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 10px 3px 0; text-align: left;
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.banner { border-left: 6px solid; padding: 6px 14px; margin: 8px 0 16px; background: #fafafa; }
.banner.pass { border-color: var(--pass); } .banner.fail { border-color: var(--fail); }
.banner p { margin: 2px 0; color: var(--muted); }
.badge { display: inline-block; border-radius: 3px; padding: 0 6px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--muted); }
.badge.pass, .badge.unchanged, .badge.improved { background: var(--pass); }
.badge.fail, .badge.regressed, .badge.incorrect, .badge.error { background: var(--fail); }
.badge.inconclusive, .badge.no_baseline { background: var(--warn); }
.shape { border: 1px solid #e3e3e3; border-radius: 6px; padding: 10px 14px; margin: 10px 0; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 4px 0 8px; }
.facts div span { color: var(--muted); margin-right: 4px; }
.message { color: var(--fail); }
.note { color: var(--muted); }
svg.plot { display: block; max-width: 100%; height: auto; margin: 4px 0; font-family: inherit; }
footer { margin-top: 32px; color: var(--muted); font-size: 12.5px; }
"#;

/// The page around `body`: inline style, and a policy that loads nothing and runs nothing.
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy"
                    content="default-src 'none'; style-src 'unsafe-inline'; img-src data:";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (safe(title)) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
    .into_string()
}

/// A verdict word as a coloured badge.
pub fn badge(word: &str, class: &str) -> Markup {
    html! { span class=(format!("badge {class}")) { (word) } }
}

fn headline(run: &RunRecord) -> Markup {
    let passed = run.verdict.passed();
    let failing = run.kernels.iter().filter(|k| !k.verdict.passed()).count();
    let commit = run.commit.as_deref().map(|c| {
        let dirty = if run.dirty == Some(true) {
            " (dirty)"
        } else {
            ""
        };
        format!("{}{dirty}", c.chars().take(12).collect::<String>())
    });
    html! {
        header #verdict class=(if passed { "banner pass" } else { "banner fail" }) {
            h1 {
                "gatekeeper: " (if passed { "PASS" } else { "FAIL" })
            }
            p {
                @if passed {
                    "All " (run.kernels.len()) " kernels passed"
                } @else {
                    (failing) " of " (run.kernels.len()) " kernels failed"
                }
                " over " (run.results.len()) " shapes."
            }
            p {
                @if let Some(commit) = commit { "Commit " code { (commit) } ", " }
                "baselines from " (safe(&run.baselines_from))
                @if let Some(base) = &run.ab_base { "; A/B beside " (safe(base)) }
                "."
            }
            p { "Started " (safe(&run.started_at)) ", took " (format!("{:.1}", run.duration_s)) " s"
                @if let Some(shard) = &run.shard { ", shard " (safe(shard)) }
                "." }
        }
    }
}

fn summary(run: &RunRecord) -> Markup {
    html! {
        section #summary {
            h2 { "Kernels" }
            table.kernels {
                thead { tr {
                    th { "kernel" } th { "verdict" } th.num { "regressed" }
                    th.num { "incorrect" } th.num { "errors" } th { "why" }
                } }
                tbody {
                    @for (index, kernel) in run.kernels.iter().enumerate() {
                        @let word = if kernel.verdict.passed() { "PASS" } else { "FAIL" };
                        tr {
                            td { a href=(format!("#{}", anchor(index))) { code { (safe(&kernel.name)) } } }
                            td { (badge(word, &word.to_lowercase())) }
                            td.num { (kernel.regressed) }
                            td.num { (kernel.incorrect) }
                            td.num { (kernel.errors) }
                            td { (safe(&kernel.reason)) }
                        }
                    }
                }
            }
        }
    }
}

/// The element id of the `index`-th kernel: by position, so no two names can share one.
fn anchor(index: usize) -> String {
    format!("kernel-{index}")
}

fn kernel_section(run: &RunRecord, index: usize, kernel: &KernelResult) -> Markup {
    let word = if kernel.verdict.passed() {
        "PASS"
    } else {
        "FAIL"
    };
    html! {
        section.kernel id=(anchor(index)) {
            h2 { code { (safe(&kernel.name)) } " " (badge(word, &word.to_lowercase())) }
            p.note { (safe(&kernel.reason)) }
            @for result in run.results_of(&kernel.name) {
                (shape_card(run, result))
            }
        }
    }
}

fn shape_card(run: &RunRecord, result: &ShapeResult) -> Markup {
    let verdict = result.verdict;
    let fatal = verdict.is_fatal();
    html! {
        article.shape data-verdict=(verdict.as_str()) {
            h3 {
                code { (safe(&result.shape)) } " " (badge(verdict.as_str(), verdict.as_str()))
                @if result.reused { " " span.note { "(reused: unchanged inputs)" } }
            }
            @if !fatal {
                div.facts {
                    div { span { "baseline" } (format_mean(&result.sides.baseline)) " µs" }
                    div { span { "candidate" } (format_mean(&result.sides.candidate)) " µs" }
                    div { span { "Δ" } (format_delta(result)) }
                    @if let Some(test) = result.test {
                        div { span { "ratio" } (format!("{:.3}× [{:.3}, {:.3}]", test.ratio, test.ci[0], test.ci[1])) }
                    }
                    div { span { "p" } (format_p(result)) }
                    @if result.ab.is_some() { div { span { "A/B" } (format_ab(result)) } }
                }
                (PreEscaped(samples_plot(run, result)))
                @if let Some(ab) = &result.ab {
                    (PreEscaped(plot::rounds(
                        &format!("A/B rounds of {}/{}: the candidate's median over the base's, per round", result.kernel, result.shape),
                        &ab.medians_us,
                        ab.ratio_ci,
                        run.gate.regression_threshold,
                    )))
                }
            }
            @if let Some(errors) = describe_errors(result) { p { (errors) } }
            @if let Some(message) = &result.message {
                @if fatal {
                    pre.message.log { (safe(message)) }
                } @else {
                    p.note { (safe(message)) }
                }
            }
            @if let Some(stderr) = &result.stderr_tail {
                details open[fatal] {
                    summary { "stderr (last lines)" }
                    pre.log { (safe(stderr)) }
                }
            }
            (peers(result))
            (profile(result))
        }
    }
}

/// Results of kernels the record has no verdict for (a hand-edited or truncated record): shown,
/// not silently dropped.
fn unjudged(run: &RunRecord) -> Markup {
    let orphans: Vec<&ShapeResult> = run
        .results
        .iter()
        .filter(|r| run.kernel(&r.kernel).is_none())
        .collect();
    html! {
        @if !orphans.is_empty() {
            section.kernel #unjudged {
                h2 { "Results without a kernel verdict" }
                p.note { "The record holds no verdict for these results' kernels." }
                @for result in orphans {
                    p { code { (safe(&result.kernel)) } }
                    (shape_card(run, result))
                }
            }
        }
    }
}

/// Both sides' samples, with the gate's outlier fences drawn over both.
fn samples_plot(run: &RunRecord, result: &ShapeResult) -> String {
    let (baseline, candidate) = (result.baseline_samples(), result.candidate_samples());
    if baseline.is_empty() && candidate.is_empty() {
        return String::new();
    }
    let fences = crate::stats::balanced_fences(&[baseline, candidate], run.gate.outlier_fence);
    let mut rows = Vec::new();
    if !baseline.is_empty() {
        rows.push(SampleRow {
            label: "baseline",
            samples: baseline,
            candidate: false,
        });
    }
    rows.push(SampleRow {
        label: "candidate",
        samples: candidate,
        candidate: true,
    });
    plot::samples(
        &format!(
            "samples of {}/{}: baseline and candidate, outliers outside the fences ringed",
            result.kernel, result.shape
        ),
        &rows,
        fences,
    )
}

fn peers(result: &ShapeResult) -> Markup {
    html! {
        @if !result.peers.is_empty() {
            table.peers {
                thead { tr { th { "peer" } th.num { "median µs" } th.num { "speedup" } th { "rating" } } }
                tbody {
                    @for peer in &result.peers {
                        tr {
                            td { code { (safe(&peer.kernel)) } }
                            td.num { (format_us(peer.median_us)) }
                            td.num { (format!("{:.2}×", peer.speedup)) }
                            td { (peer.rating.as_str()) }
                        }
                    }
                }
            }
        }
    }
}

fn profile(result: &ShapeResult) -> Markup {
    let Some(profile) = &result.profile else {
        return html! {};
    };
    html! {
        div.profile {
            p {
                strong { "Gate 4: " }
                @if let Some(class) = profile.class { (class.as_str()) }
                @if let Some(times) = profile.times_floor { ", " (format!("{times:.2}")) "× the floor" }
                @if let Some(floor) = profile.floor_us { " (" (format_us(floor)) " µs)" }
                @if let Some(evidence) = &profile.evidence { " · " span.note { (safe(evidence)) } }
            }
            @if let Some(note) = &profile.note { p.note { (safe(note)) } }
            @if !profile.metrics.is_empty() {
                table.metrics {
                    thead { tr { th { "metric" } th.num { "value" } th { "unit" } } }
                    tbody {
                        @for (name, metric) in &profile.metrics {
                            tr { td { (safe(name)) } td.num { (format_error(metric.value)) } td { (safe(&metric.unit)) } }
                        }
                    }
                }
            }
            @if !profile.checks.is_empty() {
                table.checks {
                    thead { tr { th { "limit" } th.num { "actual" } th { "" } } }
                    tbody {
                        @for check in &profile.checks {
                            tr {
                                td { (safe(&check.name)) " " (safe(&check.limit)) }
                                td.num { (check.actual.map_or("—".to_string(), format_error)) }
                                td {
                                    @match check.passed {
                                        Some(true) => (badge("met", "pass")),
                                        Some(false) => (badge("missed", "fail")),
                                        None => span.note { (check.note.as_deref().map_or(String::from("not checked"), safe)) },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn footer(run: &RunRecord) -> Markup {
    let time = time_spent(run);
    html! {
        footer {
            p { (safe(&describe_gate(run))) "." }
            @if !time.is_empty() {
                p { "Time: " (safe(&time.join("; "))) "." }
            }
            p { "gatekeeper " (safe(&run.gatekeeper_version)) " · " (safe(&run.config)) " · plan " (safe(&run.plan_id)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(Html.render(&fixture::run()));
    }

    #[test]
    fn the_page_loads_nothing_and_runs_nothing() {
        let page = Html.render(&fixture::run());
        assert!(page.contains("default-src 'none'"));
        for forbidden in ["<script", "http://", "https://", " src=", "@import", "url("] {
            let allowed = forbidden == "http://"
                && page.matches(forbidden).count()
                    == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
            assert!(
                allowed || !page.contains(forbidden),
                "the page contains {forbidden}"
            );
        }
    }

    #[test]
    fn harness_text_is_escaped() {
        let mut run = fixture::run();
        run.results[0].message = Some(
            "</pre><script>alert(1)</script><img src=x onerror=alert(1)>\u{1b}[2J\u{202e}".into(),
        );
        run.results[0].stderr_tail = Some("\"><svg onload=alert(1)>".into());
        run.kernels[0].reason = "<b>bold</b>".into();
        run.results[1].shape = "a\"b<c>".into();
        let page = Html.render(&run);
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("<img"));
        assert!(!page.contains("<svg onload"));
        assert!(!page.contains("<b>bold"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("\\x1b[2J") && page.contains("\\u{202e}"));
        assert!(page.contains("a&quot;b&lt;c&gt;"));
    }

    #[test]
    fn every_timed_shape_has_its_samples_and_every_ab_its_rounds() {
        let run = fixture::run();
        let page = Html.render(&run);
        let timed = run
            .results
            .iter()
            .filter(|r| !r.candidate_samples().is_empty())
            .count();
        let ab = run.results.iter().filter(|r| r.ab.is_some()).count();
        assert_eq!(page.matches("class=\"plot samples\"").count(), timed);
        assert_eq!(page.matches("class=\"plot rounds\"").count(), ab);
        assert!(page.contains("identifier &quot;acc&quot; is undefined"));
        // Every verdict word has its colour.
        for verdict in [
            "unchanged",
            "improved",
            "regressed",
            "inconclusive",
            "no_baseline",
            "incorrect",
            "error",
        ] {
            assert!(STYLE.contains(&format!(".badge.{verdict}")), "{verdict}");
        }
    }

    #[test]
    fn a_result_without_a_kernel_verdict_is_shown_and_ids_are_unique() {
        let mut run = fixture::run();
        run.results[0].kernel = "ghost".into();
        run.results[1].kernel = "ghost\u{202e}".into();
        let page = Html.render(&run);
        assert!(page.contains("Results without a kernel verdict"));
        assert_eq!(
            page.matches("<article class=\"shape\"").count(),
            run.results.len()
        );
        assert!(!page.contains('\u{202e}'));
        for index in 0..run.kernels.len() {
            assert_eq!(page.matches(&format!("id=\"kernel-{index}\"")).count(), 1);
        }
    }
}
