//! JUnit XML for CI test reporters: one testsuite per kernel, one testcase per shape.
//!
//! A testcase fails exactly when its shape is a reason its kernel failed the gate, so the
//! reporter's red and green agree with gatekeeper's exit code: a lone regressed shape under
//! `min_regressed_shapes` passes, with its numbers in `system-out`.

use junit_report::{Duration, OffsetDateTime, ReportBuilder, TestCase, TestSuiteBuilder};

use super::{
    describe_errors, describe_gate, format_ab, format_delta, format_mean, format_p, neutralise,
    Exporter,
};
use crate::compare::Verdict;
use crate::record::{RunRecord, ShapeResult};

pub struct JUnit;

impl Exporter for JUnit {
    fn render(&self, run: &RunRecord) -> String {
        let timestamp = chrono::DateTime::parse_from_rfc3339(&run.started_at)
            .ok()
            .and_then(|at| OffsetDateTime::from_unix_timestamp(at.timestamp()).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut report = ReportBuilder::new();
        for kernel in &run.kernels {
            let mut suite = TestSuiteBuilder::new(&xml_safe(&kernel.name));
            suite.set_timestamp(timestamp);
            suite.set_system_out(&xml_safe(&format!(
                "{}: {}\n{}",
                if kernel.verdict.passed() {
                    "pass"
                } else {
                    "fail"
                },
                kernel.reason,
                describe_gate(run)
            )));
            for result in run.results_of(&kernel.name) {
                suite.add_testcase(testcase(run, result));
            }
            report.add_testsuite(suite.build());
        }
        let mut xml = Vec::new();
        if let Err(err) = report.build().write_xml(&mut xml) {
            return format!(
                "<!-- cannot render JUnit report: {} -->\n",
                xml_safe(&err.to_string())
            );
        }
        let mut text = String::from_utf8_lossy(&xml).into_owned();
        text.push('\n');
        text
    }
}

fn testcase(run: &RunRecord, result: &ShapeResult) -> TestCase {
    let summary = xml_safe(&summarize(result));
    let name = &xml_safe(&result.shape);
    // The shape's own measurement and its A/B rounds: what a CI test reporter sums per suite.
    let seconds = result.wall_s.unwrap_or(0.0) + result.ab.as_ref().map_or(0.0, |ab| ab.wall_s);
    let time = if seconds.is_finite() && (0.0..1e9).contains(&seconds) {
        Duration::seconds_f64(seconds)
    } else {
        Duration::ZERO
    };
    let mut case = if !run.fails_its_kernel(result) {
        match result.verdict {
            Verdict::NoBaseline => TestCase::skipped(name),
            _ => TestCase::success(name, time),
        }
    } else if result.verdict == Verdict::Error {
        TestCase::error(name, time, "error", &summary)
    } else if result.verdict.is_fatal() || result.verdict == Verdict::Regressed {
        TestCase::failure(name, time, result.verdict.as_str(), &summary)
    } else {
        TestCase::failure(name, time, "profile", &summary)
    };
    case.set_classname(&xml_safe(&result.kernel));
    case.set_system_out(&summary);
    if let Some(tail) = &result.stderr_tail {
        case.set_system_err(&xml_safe(tail));
    }
    case
}

fn summarize(result: &ShapeResult) -> String {
    let message = result.message.clone().unwrap_or_default();
    match result.verdict {
        Verdict::Error => return format!("error: {message}"),
        Verdict::Incorrect => {
            let errors = describe_errors(result).unwrap_or_else(|| "no errors reported".into());
            return format!("incorrect: {errors}");
        }
        _ => {}
    }
    let mut lines = vec![format!(
        "{}: baseline {} µs, candidate {} µs, Δ {}, p {}",
        result.verdict,
        format_mean(&result.sides.baseline),
        format_mean(&result.sides.candidate),
        format_delta(result),
        format_p(result),
    )];
    if let Some(ab) = &result.ab {
        lines.push(format!(
            "A/B beside {}: candidate/base {}: {}",
            crate::git::short_commit(&ab.base_commit),
            format_ab(result),
            ab.verdict
        ));
    }
    if let Some(message) = &result.message {
        lines.push(message.clone());
    }
    for check in result.profile.iter().flat_map(|p| p.checks.iter()) {
        let state = match check.passed {
            Some(true) => "ok",
            Some(false) => "FAIL",
            None => "not checked",
        };
        lines.push(format!("gate 4: {state}: {}", check.describe()));
    }
    lines.join("\n")
}

/// XML 1.0 forbids most control characters (ANSI colour codes from a harness, say) and U+FFFE
/// and U+FFFF, which strict parsers reject: the neutraliser writes each as a visible escape.
/// CDATA sections cannot contain `]]>`.
fn xml_safe(text: &str) -> String {
    neutralise(text).replace("]]>", "]] >")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn snapshot() {
        insta::assert_snapshot!(JUnit.render(&fixture::run()));
    }

    #[test]
    fn failures_match_the_gate() {
        let xml = JUnit.render(&fixture::run());
        // attention fails on two regressions: two failures. gemm has one regression and passes:
        // no failures. quantize: one incorrect (failure), one error.
        assert!(xml.contains(r#"name="attention" package="testsuite/attention" tests="4" errors="0" failures="2""#), "{xml}");
        assert!(
            xml.contains(
                r#"name="gemm" package="testsuite/gemm" tests="3" errors="0" failures="0""#
            ),
            "{xml}"
        );
        assert!(
            xml.contains(
                r#"name="quantize" package="testsuite/quantize" tests="2" errors="1" failures="1""#
            ),
            "{xml}"
        );
    }

    #[test]
    fn a_lone_regression_is_not_blamed_when_its_kernel_fails_for_another_reason() {
        let mut run = fixture::run();
        // gemm: one regression (below the gate) plus an error.
        for result in run
            .results
            .iter_mut()
            .filter(|r| r.kernel == "gemm" && r.shape == "wide")
        {
            result.verdict = Verdict::Error;
            result.message = Some("boom".into());
        }
        run.kernels = crate::record::decide_kernels(&run.results, &run.gate);
        let xml = JUnit.render(&run);
        assert!(
            xml.contains(
                r#"name="gemm" package="testsuite/gemm" tests="3" errors="1" failures="0""#
            ),
            "{xml}"
        );
    }

    #[test]
    fn characters_xml_forbids_are_escaped() {
        assert_eq!(
            xml_safe("\u{1b}[31mred\u{1b}[0m]]>\n\u{0}\u{b}\u{c}\u{fffe}\u{ffff}\t"),
            "\\x1b[31mred\\x1b[0m]] >\n\\x00\\x0b\\x0c\\u{fffe}\\u{ffff}\t"
        );
    }

    #[test]
    fn names_and_text_from_a_record_stay_well_formed() {
        let mut run = fixture::run();
        let bad = "\u{0}\u{8}\u{b}\u{c}\u{e}\u{1f}\u{fffe}\u{ffff}";
        for result in &mut run.results {
            result.shape = format!("{}{bad}", result.shape);
            result.kernel = format!("{}{bad}", result.kernel);
            result.message = Some(format!("message {bad}"));
            result.stderr_tail = Some(format!("stderr {bad}"));
        }
        run.kernels = crate::record::decide_kernels(&run.results, &run.gate);
        let xml = JUnit.render(&run);
        let forbidden = |c: char| matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}');
        assert!(!xml.chars().any(forbidden), "{xml:?}");
        assert!(xml.contains(r"stderr \x00\x08"), "{xml}");
    }
}
