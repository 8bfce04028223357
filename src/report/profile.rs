//! Gate 4's table, shared by `gatekeeper profile` and the check reports.

use std::fmt::Write;

use comfy_table::Table;

use super::markdown::escape_inline;
use super::terminal::{align_right, new_table};
use crate::profile::{number, ShapeProfile};
use crate::record::ShapeResult;

/// One row of gate 4's table: a shape, its profile (if it got one) and why not (an error).
#[derive(Debug, Clone, Copy)]
pub struct ProfileRow<'a> {
    pub kernel: &'a str,
    pub shape: &'a str,
    pub profile: Option<&'a ShapeProfile>,
    pub error: Option<&'a str>,
}

impl<'a> ProfileRow<'a> {
    /// The rows of a check's results that gate 4 looked at.
    pub fn of_results(results: impl Iterator<Item = &'a ShapeResult>) -> Vec<ProfileRow<'a>> {
        results
            .filter_map(|result| {
                Some(ProfileRow {
                    kernel: &result.kernel,
                    shape: &result.shape,
                    profile: Some(result.profile.as_ref()?),
                    error: None,
                })
            })
            .collect()
    }
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "—".to_string())
}

/// `255 / 48 B`: most registers and most spill bytes over the entry points.
fn registers_cell(profile: &ShapeProfile) -> String {
    match (profile.registers(), profile.spill_bytes()) {
        (Some(regs), Some(spills)) => format!("{regs} / {spills} B"),
        _ => "—".to_string(),
    }
}

/// `QGMMA 8, HGMMA 8` from the SASS, `none`, or `—` when it could not be read.
fn tensor_cell(profile: &ShapeProfile) -> String {
    let mut counts: Vec<(String, u64)> = Vec::new();
    for resources in &profile.resources {
        let Some(map) = &resources.tensor_instructions else {
            return "—".to_string();
        };
        for (opcode, count) in map {
            match counts.iter_mut().find(|(o, _)| o == opcode) {
                Some(entry) => entry.1 += count,
                None => counts.push((opcode.clone(), *count)),
            }
        }
    }
    if profile.resources.is_empty() {
        return "—".to_string();
    }
    if counts.is_empty() {
        return "none".to_string();
    }
    counts
        .iter()
        .map(|(o, c)| format!("{o} {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `12.5 / 11.8`: theoretical occupancy (from the compiled kernel) and achieved (profiled).
fn occupancy_cell(profile: &ShapeProfile) -> String {
    let theoretical = profile
        .resources
        .iter()
        .map(|r| r.occupancy_pct)
        .fold(None, |lo: Option<f64>, v| {
            Some(lo.map_or(v, |lo| lo.min(v)))
        });
    format!(
        "{} / {}",
        or_dash(theoretical.map(number)),
        or_dash(profile.metric("occupancy_pct").map(number))
    )
}

fn limits_cell(profile: &ShapeProfile) -> String {
    let failed: Vec<String> = profile.failed_checks().map(|c| c.describe()).collect();
    if !failed.is_empty() {
        return format!("FAIL {}", failed.join("; "));
    }
    let checked = profile.checks.iter().filter(|c| c.passed.is_some()).count();
    let unchecked = profile.checks.len() - checked;
    match (checked, unchecked) {
        (0, 0) => "—".to_string(),
        (n, 0) => format!("{n} ok"),
        (n, m) => format!("{n} ok, {m} not checked"),
    }
}

fn floor_cell(profile: &ShapeProfile) -> String {
    or_dash(profile.times_floor.map(|t| format!("{}×", number(t))))
}

/// The terminal table.
pub fn profile_table<'a>(rows: impl IntoIterator<Item = ProfileRow<'a>>) -> Table {
    let mut table = new_table(&[
        "kernel",
        "shape",
        "class",
        "× floor",
        "regs / spills",
        "tensor pipe % · occupancy % (theor. / achieved)",
        "tensor-core SASS · limits",
    ]);
    for row in rows {
        let (kernel, shape, profile, error) = (row.kernel, row.shape, row.profile, row.error);
        let Some(profile) = profile else {
            table.add_row([
                kernel.to_string(),
                shape.to_string(),
                "error".to_string(),
                "—".to_string(),
                "—".to_string(),
                "—".to_string(),
                error.unwrap_or("").chars().take(60).collect(),
            ]);
            continue;
        };
        table.add_row([
            kernel.to_string(),
            shape.to_string(),
            or_dash(profile.class.map(|class| class.to_string())),
            floor_cell(profile),
            registers_cell(profile),
            format!(
                "{} · {}",
                or_dash(profile.metric("tensor_pipe_pct").map(number)),
                occupancy_cell(profile)
            ),
            format!("{} · {}", tensor_cell(profile), limits_cell(profile)),
        ]);
    }
    align_right(&mut table, 3..5);
    table
}

/// The markdown table, with each class's evidence and every missed limit spelled out.
pub fn profile_markdown<'a>(rows: impl IntoIterator<Item = ProfileRow<'a>>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| Shape | Class | × floor | Registers / spills | Tensor pipe % | Occupancy % (theor. / achieved) | Tensor-core SASS | Limits |");
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|---|---|");
    let mut notes = Vec::new();
    for row in rows {
        let (kernel, shape, profile, error) = (row.kernel, row.shape, row.profile, row.error);
        let label = format!("`{}/{}`", escape_inline(kernel), escape_inline(shape));
        let Some(profile) = profile else {
            let _ = writeln!(
                out,
                "| {label} | error | — | — | — | — | — | {} |",
                escape_inline(error.unwrap_or(""))
            );
            continue;
        };
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} | {} |",
            escape_inline(&or_dash(profile.class.map(|class| class.to_string()))),
            floor_cell(profile),
            registers_cell(profile),
            or_dash(profile.metric("tensor_pipe_pct").map(number)),
            occupancy_cell(profile),
            escape_inline(&tensor_cell(profile)),
            escape_inline(&limits_cell(profile)),
        );
        if let Some(evidence) = &profile.evidence {
            notes.push(format!("{label}: {}", escape_inline(evidence)));
        }
        if let Some(note) = &profile.note {
            notes.push(format!(
                "{label}: metrics not profiled: {}",
                escape_inline(note)
            ));
        }
    }
    if !notes.is_empty() {
        out.push('\n');
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use indexmap::IndexMap;

    use super::*;
    use crate::profile::{BoundClass, Check, MetricValue, Resources};

    /// One row of the fixture, owned.
    struct Case {
        kernel: &'static str,
        shape: &'static str,
        profile: Option<ShapeProfile>,
        error: Option<&'static str>,
    }

    /// The tables' input over the fixture: the one place that builds a `ProfileRow`.
    fn rows(cases: &[Case]) -> impl Iterator<Item = ProfileRow<'_>> {
        cases.iter().map(|case| ProfileRow {
            kernel: case.kernel,
            shape: case.shape,
            profile: case.profile.as_ref(),
            error: case.error,
        })
    }

    fn resources(
        entry: &str,
        registers: u32,
        spills: Option<u64>,
        sass: Option<&[(&str, u64)]>,
    ) -> Resources {
        Resources {
            entry: entry.to_string(),
            registers,
            spill_bytes: spills,
            local_bytes: 64,
            static_shared_bytes: 0,
            dynamic_shared_bytes: 98_304,
            threads_per_block: 256,
            blocks_per_sm: 2,
            occupancy_pct: 25.0,
            tensor_instructions: sass.map(|sass| {
                sass.iter()
                    .map(|(opcode, count)| (opcode.to_string(), *count))
                    .collect()
            }),
        }
    }

    fn metrics(values: &[(&str, f64)]) -> IndexMap<String, MetricValue> {
        values
            .iter()
            .map(|(name, value)| {
                let metric = MetricValue {
                    metric: format!("ncu:{name}"),
                    value: *value,
                    unit: "%".to_string(),
                };
                (name.to_string(), metric)
            })
            .collect()
    }

    fn check(name: &str, limit: &str, actual: Option<f64>, passed: Option<bool>) -> Check {
        Check {
            name: name.to_string(),
            limit: limit.to_string(),
            actual,
            passed,
            note: passed.is_none().then(|| "no disassembler".to_string()),
        }
    }

    /// Every kind of row: all limits met, a limit missed beside one not checked, no metrics
    /// (no profiler), nothing known at all, and a shape that failed before it was profiled.
    fn fixture() -> Vec<Case> {
        let compute = ShapeProfile {
            resources: vec![
                resources("attn_fwd", 168, Some(0), Some(&[("QGMMA", 8)])),
                resources(
                    "attn_fwd_tail",
                    96,
                    Some(0),
                    Some(&[("QGMMA", 4), ("HGMMA", 2)]),
                ),
            ],
            metrics: metrics(&[("tensor_pipe_pct", 71.25), ("occupancy_pct", 23.4)]),
            class: Some(BoundClass::ComputeBound),
            evidence: Some("SM 82.1 % of peak, memory 40.3 %".to_string()),
            floor_us: Some(80.0),
            times_floor: Some(1.375),
            checks: vec![
                check("spills", "<= 0", Some(0.0), Some(true)),
                check("tensor_pipe_pct", ">= 50", Some(71.25), Some(true)),
            ],
            note: None,
        };
        let memory = ShapeProfile {
            resources: vec![resources("attn_fwd", 255, Some(48), Some(&[]))],
            metrics: metrics(&[("tensor_pipe_pct", 3.0), ("occupancy_pct", 12.5)]),
            class: Some(BoundClass::MemoryBound),
            evidence: Some("SM 20 % of peak, memory 91.7 %".to_string()),
            floor_us: Some(410.0),
            times_floor: Some(2.0),
            checks: vec![
                check("spills", "<= 0", Some(48.0), Some(false)),
                check("tensor_instructions", ">= 1", None, None),
                check("occupancy_pct", "10 .. 50", Some(12.5), Some(true)),
            ],
            note: None,
        };
        let latency = ShapeProfile {
            resources: vec![resources("attn_fwd", 40, None, None)],
            class: Some(BoundClass::LatencyBound),
            evidence: Some("SM 4 % of peak, memory 6.5 %".to_string()),
            checks: vec![check("tensor_pipe_pct", ">= 50", None, None)],
            note: Some("ncu was not found on PATH".to_string()),
            ..ShapeProfile::default()
        };
        let case = |shape, profile, error| Case {
            kernel: "attn",
            shape,
            profile,
            error,
        };
        vec![
            case("mission", Some(compute), None),
            case("long", Some(memory), None),
            case("small", Some(latency), None),
            case("tiny", Some(ShapeProfile::default()), None),
            case(
                "huge",
                None,
                Some("compile failed: attn.cu(12): error: expected a \";\" | see the log"),
            ),
        ]
    }

    #[test]
    fn terminal_snapshot() {
        insta::assert_snapshot!(profile_table(rows(&fixture())).to_string());
    }

    #[test]
    fn markdown_snapshot() {
        insta::assert_snapshot!(profile_markdown(rows(&fixture())));
    }
}
