//! `gatekeeper history`: every kernel × shape's baseline median at each commit that refreshed
//! it, read from git (first-parent history of `baselines/<device>/*.json`, through libgit2),
//! and the commits where the level moved ([`crate::history`]).

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::atomic;
use crate::baseline::BaselineFile;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::git::{short_commit, EntryKind, Repo};
use crate::history;

#[derive(Debug, Clone, Default)]
pub struct HistoryOptions {
    pub config: PathBuf,
    pub kernels: Option<Vec<String>>,
    pub shapes: Option<Vec<String>>,
    /// A device folder name (`nvidia-h100-80gb-hbm3`); all when `None`.
    pub device: Option<String>,
    /// Only commits after this revision.
    pub since: Option<String>,
    pub json: Option<PathBuf>,
    pub html: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct HistoryReport {
    /// First-parent commits walked.
    pub commits: usize,
    pub series: Vec<Series>,
    pub change_points: Vec<ChangePoint>,
}

#[derive(Debug, Serialize)]
pub struct Series {
    pub device: String,
    pub kernel: String,
    pub shape: String,
    pub points: Vec<Point>,
}

#[derive(Debug, Serialize)]
pub struct Point {
    pub commit: String,
    pub median_us: f64,
}

#[derive(Debug, Serialize)]
pub struct ChangePoint {
    pub device: String,
    pub kernel: String,
    pub shape: String,
    /// The first commit at the new level (full hash), and its summary line.
    pub commit: String,
    pub summary: String,
    /// New level / old level.
    pub ratio: f64,
    pub p_value: f64,
}

pub fn run(options: &HistoryOptions) -> Result<u8> {
    super::prepare_reports([options.json.as_deref(), options.html.as_deref()])?;
    let report = analyse(options)?;
    if let Some(path) = &options.json {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        atomic::write(path, format!("{text}\n").as_bytes())?;
    }
    if let Some(path) = &options.html {
        atomic::write(path, html(&report).as_bytes())?;
    }
    crate::output::print(&crate::report::neutralise(&terminal(&report)));
    Ok(crate::exit::PASS)
}

/// The series and their change points.
pub fn analyse(options: &HistoryOptions) -> Result<HistoryReport> {
    let config = Config::load(&options.config)?;
    let repo = Repo::discover(&config.root)?.ok_or_else(|| {
        Error::Usage(format!(
            "history reads baselines from git, and {} is not in a git repository",
            config.root.display()
        ))
    })?;
    let folder = repo.relative(&config.root)?.join("baselines");
    let commits = repo.first_parent_history(options.since.as_deref())?;
    let mut seen: HashMap<PathBuf, git2::Oid> = HashMap::new();
    let mut folder_id = None;
    let mut series: indexmap::IndexMap<(String, String, String), Vec<(usize, f64)>> =
        indexmap::IndexMap::new();
    for (at, (commit, _)) in commits.iter().enumerate() {
        // Most commits do not touch the baselines: one lookup says so.
        let id = repo.entry_id(*commit, &folder);
        if id.is_none() || id == folder_id {
            continue;
        }
        folder_id = id;
        for (device, kind) in repo.list(*commit, &folder)? {
            if kind != EntryKind::Folder || options.device.as_ref().is_some_and(|d| *d != device) {
                continue;
            }
            let device_folder = folder.join(&device);
            for (name, kind) in repo.list(*commit, &device_folder)? {
                let Some(kernel) = name.strip_suffix(".json") else {
                    continue;
                };
                if kind != EntryKind::File || !wanted(&options.kernels, kernel) {
                    continue;
                }
                let path = device_folder.join(&name);
                let Some(blob) = repo.entry_id(*commit, &path) else {
                    continue;
                };
                if seen.insert(path.clone(), blob) == Some(blob) {
                    continue;
                }
                // A file that does not parse (an old format, a bad merge) is skipped, not fatal:
                // the history is what it is.
                let Ok(file) = serde_json::from_slice::<BaselineFile>(&repo.blob(blob)?) else {
                    continue;
                };
                for (shape, stored) in &file.shapes {
                    if !wanted(&options.shapes, shape) {
                        continue;
                    }
                    if let Some(median) = median(&stored.samples_us) {
                        series
                            .entry((device.clone(), kernel.to_string(), shape.clone()))
                            .or_default()
                            .push((at, median));
                    }
                }
            }
        }
    }
    let mut report = HistoryReport {
        commits: commits.len(),
        series: Vec::new(),
        change_points: Vec::new(),
    };
    for ((device, kernel, shape), points) in series {
        let values: Vec<f64> = points.iter().map(|(_, m)| *m).collect();
        for change in history::changes(&values) {
            let (commit, summary) = &commits[points[change.index].0];
            report.change_points.push(ChangePoint {
                device: device.clone(),
                kernel: kernel.clone(),
                shape: shape.clone(),
                commit: commit.to_string(),
                summary: summary.clone(),
                ratio: change.ratio,
                p_value: change.p_value,
            });
        }
        report.series.push(Series {
            device,
            kernel,
            shape,
            points: points
                .iter()
                .map(|(at, median_us)| Point {
                    commit: commits[*at].0.to_string(),
                    median_us: *median_us,
                })
                .collect(),
        });
    }
    Ok(report)
}

fn wanted(filter: &Option<Vec<String>>, name: &str) -> bool {
    filter
        .as_ref()
        .is_none_or(|names| names.iter().any(|n| n == name))
}

fn median(samples: &[f64]) -> Option<f64> {
    let mut finite: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.is_empty() {
        return None;
    }
    finite.sort_by(f64::total_cmp);
    Some(finite[finite.len() / 2])
}

/// The change points of `series`.
fn changes_of<'a>(
    report: &'a HistoryReport,
    series: &'a Series,
) -> impl Iterator<Item = &'a ChangePoint> {
    report.change_points.iter().filter(move |c| {
        c.device == series.device && c.kernel == series.kernel && c.shape == series.shape
    })
}

/// A page with the change points first, then a trend chart per series (each point a refresh,
/// each segment's level drawn, each change marked with its ratio).
fn html(report: &HistoryReport) -> String {
    use crate::report::html::{page, plot, safe};
    use maud::{html, PreEscaped};
    let chart = |series: &Series| {
        let points: Vec<plot::TrendPoint> = series
            .points
            .iter()
            .map(|p| plot::TrendPoint {
                label: short_commit(&p.commit).to_string(),
                value: p.median_us,
            })
            .collect();
        let changes: Vec<(usize, f64)> = changes_of(report, series)
            .filter_map(|c| {
                let at = series.points.iter().position(|p| p.commit == c.commit)?;
                Some((at, c.ratio))
            })
            .collect();
        plot::trend(
            &format!(
                "{}/{} on {}: the baseline median at each refresh",
                series.kernel, series.shape, series.device
            ),
            &points,
            &changes,
        )
    };
    let body = html! {
        header #verdict.banner.pass {
            h1 { "gatekeeper history" }
            p {
                (report.commits) " commits, " (report.series.len()) " series, "
                (report.change_points.len()) " change points."
            }
        }
        section #changes {
            h2 { "Change points" }
            @if report.change_points.is_empty() {
                p.note { "No series changed level." }
            } @else {
                table.changes {
                    thead { tr { th { "kernel" } th { "shape" } th { "device" } th { "commit" } th.num { "ratio" } th.num { "p" } } }
                    tbody {
                        @for change in &report.change_points {
                            tr {
                                td { code { (safe(&change.kernel)) } }
                                td { (safe(&change.shape)) }
                                td { (safe(&change.device)) }
                                td { code { (short_commit(&change.commit)) } " " (safe(&change.summary.chars().take(72).collect::<String>())) }
                                td.num { (format!("{:.3}×", change.ratio)) }
                                td.num { (format!("{:.1e}", change.p_value)) }
                            }
                        }
                    }
                }
            }
        }
        @for series in &report.series {
            section.series {
                h3 { code { (safe(&series.kernel)) } " / " (safe(&series.shape)) " " span.note { (safe(&series.device)) ", " (series.points.len()) " refreshes" } }
                (PreEscaped(chart(series)))
            }
        }
    };
    page("gatekeeper history", body)
}

fn terminal(report: &HistoryReport) -> String {
    let mut out = String::new();
    for series in &report.series {
        let changes: Vec<&ChangePoint> = changes_of(report, series).collect();
        let last = series.points.last().map_or(f64::NAN, |p| p.median_us);
        let mut line = format!(
            "{}/{} ({}): {} refreshes, now {}",
            series.kernel,
            series.shape,
            series.device,
            series.points.len(),
            format_us(last)
        );
        for change in changes {
            line.push_str(&format!(
                "; {:.3}× at {} {:?} (p {:.1e})",
                change.ratio,
                short_commit(&change.commit),
                change.summary.chars().take(50).collect::<String>(),
                change.p_value
            ));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "history: {} commits, {} series, {} change points\n",
        report.commits,
        report.series.len(),
        report.change_points.len()
    ));
    out
}

fn format_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.3} ms", us / 1000.0)
    } else {
        format!("{us:.2} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_snapshot_and_escaping() {
        let commit = |i: usize| format!("{i:040x}");
        let series = Series {
            device: "nvidia-h100-80gb-hbm3".into(),
            kernel: "attn<img src=x>".into(),
            shape: "mission".into(),
            points: (0..8)
                .map(|i| Point {
                    commit: commit(i),
                    median_us: if i < 5 { 37.6 } else { 41.4 } + (i % 2) as f64 * 0.1,
                })
                .collect(),
        };
        let report = HistoryReport {
            commits: 20,
            change_points: vec![ChangePoint {
                device: series.device.clone(),
                kernel: series.kernel.clone(),
                shape: series.shape.clone(),
                commit: commit(5),
                summary: "slower softmax </td><script>".into(),
                ratio: 1.101,
                p_value: 1e-6,
            }],
            series: vec![series],
        };
        let page = html(&report);
        assert!(!page.contains("<img") && !page.contains("<script>"));
        assert_eq!(page.matches("class=\"change\"").count(), 1);
        assert_eq!(page.matches("class=\"point\"").count(), 8);
        insta::assert_snapshot!(page);
    }
}
