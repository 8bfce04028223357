//! Gate 4's table, shared by `gatekeeper profile` and the check reports.

use std::fmt::Write;

use comfy_table::Table;

use super::markdown::escape_inline;
use super::terminal::{align_right, new_table};
use crate::profile::{number, ShapeProfile};

/// One row: kernel, shape, its profile (if it got one) and why not (an error).
pub type Row<'a> = (&'a str, &'a str, Option<&'a ShapeProfile>, Option<&'a str>);

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
pub fn profile_table<'a>(rows: impl Iterator<Item = Row<'a>>) -> Table {
    let mut table = new_table([
        "kernel",
        "shape",
        "class",
        "× floor",
        "regs / spills",
        "tensor pipe % · occupancy % (theor. / achieved)",
        "tensor-core SASS · limits",
    ]);
    for (kernel, shape, profile, error) in rows {
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
pub fn profile_markdown<'a>(rows: impl Iterator<Item = Row<'a>>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| Shape | Class | × floor | Registers / spills | Tensor pipe % | Occupancy % (theor. / achieved) | Tensor-core SASS | Limits |");
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|---|---|");
    let mut notes = Vec::new();
    for (kernel, shape, profile, error) in rows {
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
