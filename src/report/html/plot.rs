//! The HTML report's charts as inline SVG, built with the `svg` crate's elements.
//!
//! The crate escapes `&`, `<` and `>` but not quotes, so only numbers and fixed words go into
//! attributes; any name from a record goes into a text node (`<text>`, `<title>`), neutralised
//! first. A chart whose values cannot be placed (a span that overflows) is left out, not drawn
//! with NaN coordinates.

use svg::node::element::{Circle, Group, Line, Polygon, Polyline, Rectangle, Text, Title};
use svg::{Document, Node};

use crate::report::neutralise;

const WIDTH: f64 = 640.0;
const LEFT: f64 = 96.0;
const RIGHT: f64 = 24.0;
const AXIS: f64 = 34.0;
const BASELINE_COLOUR: &str = "#5b7db1";
const CANDIDATE_COLOUR: &str = "#e0822b";
const OUTLIER_COLOUR: &str = "#c62828";
const MUTED: &str = "#888";
/// Points drawn per row at most: beyond it every k-th sample is drawn (the box uses them all),
/// so a run of many samples still gives a page a browser opens quickly.
const MAX_POINTS: usize = 2_000;

/// Whether `[low, high]` can be scaled: both ends and the span are finite numbers.
fn placeable(low: f64, high: f64) -> bool {
    low.is_finite() && high.is_finite() && (high - low).is_finite()
}

/// The range of the finite `values`, widened each way by `pad` times its span (a span of at
/// least `min_span` times the largest value), or `None` when it cannot be placed.
fn padded_range(values: &[f64], pad: f64, min_span: f64) -> Option<(f64, f64)> {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let low = finite().fold(f64::INFINITY, f64::min);
    let high = finite().fold(f64::NEG_INFINITY, f64::max);
    let pad = (high - low).max(high.abs() * min_span) * pad;
    placeable(low - pad, high + pad).then_some((low - pad, high + pad))
}

/// A linear map from data values to pixels.
#[derive(Debug, Clone, Copy)]
struct Scale {
    from: (f64, f64),
    to: (f64, f64),
}

impl Scale {
    /// A degenerate domain (one value) is widened by 5 % each way, so it still has a width.
    fn new(from: (f64, f64), to: (f64, f64)) -> Scale {
        let (low, high) = from;
        let from = if high > low {
            (low, high)
        } else {
            let pad = (low.abs() * 0.05).max(1e-9);
            (low - pad, high + pad)
        };
        Scale { from, to }
    }

    fn at(&self, value: f64) -> f64 {
        let (d0, d1) = self.from;
        let (p0, p1) = self.to;
        p0 + (value - d0) / (d1 - d0) * (p1 - p0)
    }

    fn contains(&self, value: f64) -> bool {
        value >= self.from.0 && value <= self.from.1
    }
}

/// About `count` round-number ticks (1, 2 or 5 times a power of ten) within `[low, high]`, and
/// the decimals their labels need.
pub(crate) fn ticks(low: f64, high: f64, count: usize) -> (Vec<f64>, usize) {
    if !(low.is_finite() && high.is_finite()) || high <= low {
        return (vec![low].into_iter().filter(|v| v.is_finite()).collect(), 2);
    }
    let raw = (high - low) / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|step| *step >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power);
    let first = (low / step).ceil() * step;
    let ticks = (0..64)
        .map(|i| first + f64::from(i) * step)
        .take_while(|tick| *tick <= high + step * 1e-9)
        .collect();
    let decimals = (-step.log10().floor()).max(0.0) as usize;
    (ticks, decimals)
}

/// A tick's label: fixed decimals in a readable range, scientific notation outside it.
fn tick_label(value: f64, decimals: usize) -> String {
    if decimals > 6 || value.abs() >= 1e7 {
        format!("{value:.2e}")
    } else {
        format!("{value:.decimals$}")
    }
}

/// The `q` quantile of sorted `values`, interpolated linearly.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (low, high) = (at.floor() as usize, at.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (at - low as f64)
}

/// A tooltip; its text may come from a record.
fn tip(content: impl AsRef<str>) -> Title {
    Title::new(neutralise(content.as_ref()).into_owned())
}

/// A label; its text may come from a record.
fn text(x: f64, y: f64, anchor: &str, content: impl AsRef<str>) -> Text {
    Text::new(neutralise(content.as_ref()).into_owned())
        .set("x", x)
        .set("y", y)
        .set("text-anchor", anchor)
        .set("font-size", 11)
}

fn line(x1: f64, y1: f64, x2: f64, y2: f64, colour: &str) -> Line {
    Line::new()
        .set("x1", x1)
        .set("y1", y1)
        .set("x2", x2)
        .set("y2", y2)
        .set("stroke", colour)
}

/// A horizontal axis at `y` with its ticks, labels and unit.
fn x_axis(scale: Scale, y: f64, unit: &str) -> Group {
    let (low, high) = scale.from;
    let (ticks, decimals) = ticks(low, high, 6);
    let mut axis = Group::new()
        .set("class", "axis")
        .add(line(scale.to.0, y, scale.to.1, y, MUTED));
    for tick in ticks {
        let x = scale.at(tick);
        axis.append(line(x, y, x, y + 4.0, MUTED));
        axis.append(text(x, y + 16.0, "middle", tick_label(tick, decimals)));
    }
    axis.append(text(scale.to.1, y + 30.0, "end", unit));
    axis
}

/// A vertical axis at `x` with its ticks and labels, and light grid lines across to `right`.
fn y_axis(scale: Scale, x: f64, right: f64, suffix: &str) -> Group {
    let (low, high) = (
        scale.from.0.min(scale.from.1),
        scale.from.0.max(scale.from.1),
    );
    let (ticks, decimals) = ticks(low, high, 5);
    let mut axis = Group::new().set("class", "axis");
    for tick in ticks {
        let y = scale.at(tick);
        axis.append(line(x, y, right, y, "#eee"));
        axis.append(text(
            x - 6.0,
            y + 4.0,
            "end",
            format!("{}{suffix}", tick_label(tick, decimals)),
        ));
    }
    axis
}

fn document(class: &str, height: f64, title: &str) -> Document {
    Document::new()
        .set("class", format!("plot {class}"))
        .set("viewBox", (0, 0, WIDTH, height))
        .set("width", WIDTH)
        .set("height", height)
        .set("role", "img")
        .add(tip(title))
}

/// One side of a shape's samples for [`samples`].
pub struct SampleRow<'a> {
    pub label: &'a str,
    pub samples: &'a [f64],
    pub candidate: bool,
}

/// Both sides' samples of a shape as a strip plot over a box plot: the box spans the quartiles
/// with the median marked, the whiskers reach the farthest samples inside the outlier fences,
/// and samples outside the fences are drawn as red rings. The axis covers every sample unless a
/// far tail would squeeze the rest into a sliver; then it covers the fences' span and the
/// samples beyond it are counted at its edge.
pub fn samples(title: &str, rows: &[SampleRow<'_>], fences: Option<(f64, f64)>) -> String {
    let finite = |row: &SampleRow<'_>| -> Vec<f64> {
        let mut values: Vec<f64> = row
            .samples
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        values.sort_by(f64::total_cmp);
        values
    };
    // Fences a hand-edited record inverted (a negative factor) fence nothing.
    let fences = fences.filter(|(low, high)| low <= high);
    let sorted: Vec<Vec<f64>> = rows.iter().map(finite).collect();
    let all = || sorted.iter().flatten().copied();
    let inside = |v: f64| fences.is_none_or(|(low, high)| v >= low && v <= high);
    let (Some(low), Some(high)) = (
        all().filter(|v| inside(*v)).reduce(f64::min),
        all().filter(|v| inside(*v)).reduce(f64::max),
    ) else {
        return String::new();
    };
    let (min, max) = (
        all().reduce(f64::min).unwrap_or(low),
        all().reduce(f64::max).unwrap_or(high),
    );
    let span = (high - low).max(high.abs() * 1e-3);
    let domain = if max - min > 4.0 * span {
        (low - 0.5 * span, high + 0.5 * span)
    } else {
        (min - 0.05 * span, max + 0.05 * span)
    };
    if !placeable(min, max) || !placeable(domain.0, domain.1) {
        return String::new();
    }
    let row_height = 46.0;
    let height = 8.0 + rows.len() as f64 * row_height + AXIS;
    let scale = Scale::new(domain, (LEFT, WIDTH - RIGHT));
    let mut document = document("samples", height, title);
    if let Some((fence_low, fence_high)) = fences {
        for fence in [fence_low, fence_high] {
            if scale.contains(fence) {
                let x = scale.at(fence);
                document.append(
                    line(x, 4.0, x, height - AXIS, OUTLIER_COLOUR)
                        .set("class", "fence")
                        .set("stroke-dasharray", "4 3")
                        .set("opacity", 0.6),
                );
            }
        }
    }
    for (index, (row, values)) in rows.iter().zip(&sorted).enumerate() {
        let middle = 8.0 + (index as f64 + 0.5) * row_height;
        document.append(strip(row, values, middle, scale, &inside));
    }
    document.append(x_axis(scale, height - AXIS + 4.0, "µs"));
    document.to_string()
}

/// One row of [`samples`]: its label, box, whiskers and points.
fn strip(
    row: &SampleRow<'_>,
    values: &[f64],
    middle: f64,
    scale: Scale,
    inside: &dyn Fn(f64) -> bool,
) -> Group {
    let colour = if row.candidate {
        CANDIDATE_COLOUR
    } else {
        BASELINE_COLOUR
    };
    let outside = values.iter().filter(|v| !inside(**v)).count();
    let mut group = Group::new()
        .set(
            "class",
            if row.candidate {
                "candidate"
            } else {
                "baseline"
            },
        )
        .add(text(LEFT - 8.0, middle + 4.0, "end", row.label));
    if values.is_empty() {
        return group.add(text(LEFT + 4.0, middle + 4.0, "start", "no samples"));
    }
    let median = quantile(values, 0.5);
    group.append(tip(format!(
        "{}: {} samples, median {median:.3} µs, {outside} outside the fences",
        row.label,
        values.len()
    )));
    let kept: Vec<f64> = values.iter().copied().filter(|v| inside(*v)).collect();
    if let (Some(first), Some(last)) = (kept.first(), kept.last()) {
        let (q1, q3) = (quantile(&kept, 0.25), quantile(&kept, 0.75));
        group.append(line(scale.at(*first), middle, scale.at(q1), middle, colour));
        group.append(line(scale.at(q3), middle, scale.at(*last), middle, colour));
        group.append(
            Rectangle::new()
                .set("class", "box")
                .set("x", scale.at(q1))
                .set("y", middle - 12.0)
                .set("width", (scale.at(q3) - scale.at(q1)).max(1.0))
                .set("height", 24.0)
                .set("fill", colour)
                .set("fill-opacity", 0.15)
                .set("stroke", colour),
        );
        let x = scale.at(quantile(&kept, 0.5));
        group.append(
            line(x, middle - 12.0, x, middle + 12.0, colour)
                .set("class", "median")
                .set("stroke-width", 2.5),
        );
    }
    let (mut left_of, mut right_of) = (0, 0);
    let every = values.len().div_ceil(MAX_POINTS);
    if every > 1 {
        group.append(text(
            WIDTH - RIGHT,
            middle + 20.0,
            "end",
            format!("every {every}th sample drawn"),
        ));
    }
    for (i, value) in values.iter().enumerate() {
        if value < &scale.from.0 {
            left_of += 1;
            continue;
        }
        if value > &scale.from.1 {
            right_of += 1;
            continue;
        }
        if i % every != 0 && inside(*value) {
            continue;
        }
        // A fixed jitter (the golden ratio's fractional parts) spreads the points the same way
        // on every render.
        let jitter = ((i as f64 * 0.618_034) % 1.0 - 0.5) * 26.0;
        let point = Circle::new()
            .set("cx", scale.at(*value))
            .set("cy", middle + jitter)
            .set("r", 2.2);
        group.append(if inside(*value) {
            point
                .set("class", "sample")
                .set("fill", colour)
                .set("fill-opacity", 0.55)
        } else {
            point
                .set("class", "sample outlier")
                .set("fill", "none")
                .set("stroke", OUTLIER_COLOUR)
        });
    }
    for (count, x, anchor, arrow) in [
        (left_of, scale.to.0, "start", -1.0),
        (right_of, scale.to.1, "end", 1.0),
    ] {
        if count > 0 {
            let tip = x + arrow * 2.0;
            group.append(
                Polygon::new()
                    .set("class", "beyond")
                    .set(
                        "points",
                        format!(
                            "{tip},{middle} {},{} {},{}",
                            tip - arrow * 7.0,
                            middle - 5.0,
                            tip - arrow * 7.0,
                            middle + 5.0
                        ),
                    )
                    .set("fill", OUTLIER_COLOUR),
            );
            group.append(
                text(
                    x - arrow * 10.0,
                    middle - 8.0,
                    anchor,
                    format!("{count} beyond"),
                )
                .set("fill", OUTLIER_COLOUR),
            );
        }
    }
    group
}

/// An A/B comparison's rounds: each round's ratio of medians (candidate over base), the final
/// interval as a band, parity, and the threshold either side.
pub fn rounds(
    title: &str,
    medians_us: &[[f64; 2]],
    ci: Option<[f64; 2]>,
    threshold: f64,
) -> String {
    let ratios: Vec<f64> = medians_us
        .iter()
        .map(|[base, candidate]| candidate / base)
        .filter(|r| r.is_finite())
        .collect();
    if ratios.is_empty() {
        return String::new();
    }
    let height = 180.0;
    let mut values = ratios.clone();
    values.extend([1.0 - threshold, 1.0 + threshold]);
    values.extend(ci.into_iter().flatten());
    let Some(range) = padded_range(&values, 0.08, 0.0) else {
        return String::new();
    };
    let y = Scale::new(range, (height - AXIS, 18.0));
    let x = Scale::new((0.5, ratios.len() as f64 + 0.5), (LEFT, WIDTH - RIGHT));
    let mut document = document("rounds", height, title);
    document.append(y_axis(y, LEFT, WIDTH - RIGHT, "×"));
    let ci = ci
        .filter(|ci| ci.iter().all(|v| v.is_finite()))
        .map(|[a, b]| [a.min(b), a.max(b)]);
    if let Some([ci_low, ci_high]) = ci {
        document.append(
            Rectangle::new()
                .set("class", "interval")
                .set("x", LEFT)
                .set("y", y.at(ci_high))
                .set("width", WIDTH - RIGHT - LEFT)
                .set("height", (y.at(ci_low) - y.at(ci_high)).max(1.0))
                .set("fill", CANDIDATE_COLOUR)
                .set("fill-opacity", 0.15)
                .add(tip(format!(
                    "interval of the ratio: [{ci_low:.3}, {ci_high:.3}]"
                ))),
        );
    }
    for (level, colour, dash) in [
        (1.0, MUTED, "none"),
        (1.0 + threshold, OUTLIER_COLOUR, "5 4"),
        (1.0 - threshold, "#2e7d32", "5 4"),
    ] {
        document.append(
            line(LEFT, y.at(level), WIDTH - RIGHT, y.at(level), colour)
                .set("stroke-dasharray", dash),
        );
    }
    for (round, ratio) in ratios.iter().enumerate() {
        let round = round + 1;
        document.append(
            Circle::new()
                .set("class", "round")
                .set("cx", x.at(round as f64))
                .set("cy", y.at(*ratio))
                .set("r", 3.5)
                .set("fill", CANDIDATE_COLOUR)
                .add(tip(format!("round {round}: {ratio:.4}×"))),
        );
        document.append(text(
            x.at(round as f64),
            height - AXIS + 18.0,
            "middle",
            round.to_string(),
        ));
    }
    document.append(text(WIDTH - RIGHT, height - 4.0, "end", "round"));
    document.append(text(
        LEFT + 4.0,
        10.0,
        "start",
        "candidate median ÷ base median",
    ));
    document.to_string()
}

/// A point of [`trend`]: its label (a short commit) and value.
pub struct TrendPoint {
    pub label: String,
    pub value: f64,
}

/// A series over commits: the points joined in order, each segment's level between change
/// points, and each change point marked with its ratio.
pub fn trend(title: &str, points: &[TrendPoint], changes: &[(usize, f64)]) -> String {
    let values: Vec<f64> = points.iter().map(|p| p.value).collect();
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return String::new();
    }
    let height = 200.0;
    let Some(range) = padded_range(&values, 0.1, 0.01) else {
        return String::new();
    };
    let y = Scale::new(range, (height - AXIS, 14.0));
    let x = Scale::new(
        (0.0, (points.len().max(2) - 1) as f64),
        (LEFT, WIDTH - RIGHT),
    );
    let mut document = document("trend", height, title);
    document.append(y_axis(y, LEFT, WIDTH - RIGHT, ""));
    document.append(text(LEFT + 4.0, 10.0, "start", "median µs"));
    let mut starts: Vec<usize> = vec![0];
    starts.extend(changes.iter().map(|(index, _)| *index));
    starts.push(values.len());
    for pair in starts.windows(2) {
        let segment = &values[pair[0]..pair[1]];
        if segment.is_empty() {
            continue;
        }
        let mut sorted = segment.to_vec();
        sorted.sort_by(f64::total_cmp);
        let level = y.at(quantile(&sorted, 0.5));
        document.append(
            line(
                x.at(pair[0] as f64),
                level,
                x.at((pair[1] - 1) as f64),
                level,
                BASELINE_COLOUR,
            )
            .set("class", "level")
            .set("stroke-width", 3)
            .set("opacity", 0.35),
        );
    }
    let path: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{:.1},{:.1}", x.at(i as f64), y.at(*v)))
        .collect();
    document.append(
        Polyline::new()
            .set("points", path.join(" "))
            .set("fill", "none")
            .set("stroke", BASELINE_COLOUR),
    );
    for (i, point) in points.iter().enumerate() {
        document.append(
            Circle::new()
                .set("class", "point")
                .set("cx", x.at(i as f64))
                .set("cy", y.at(point.value))
                .set("r", 2.5)
                .set("fill", BASELINE_COLOUR)
                .add(tip(format!("{}: {:.3} µs", point.label, point.value))),
        );
    }
    for (index, ratio) in changes {
        let at = x.at(*index as f64 - 0.5);
        document.append(
            line(at, 14.0, at, height - AXIS, CANDIDATE_COLOUR)
                .set("class", "change")
                .set("stroke-dasharray", "4 3"),
        );
        document.append(
            text(at + 3.0, 11.0, "start", format!("{ratio:.3}×")).set("fill", CANDIDATE_COLOUR),
        );
    }
    let first = points.first().map_or("", |p| p.label.as_str());
    let last = points.last().map_or("", |p| p.label.as_str());
    document.append(text(LEFT, height - AXIS + 18.0, "start", first));
    document.append(text(WIDTH - RIGHT, height - AXIS + 18.0, "end", last));
    document.to_string()
}

/// A row of [`speedups`]: a contestant's geometric-mean speedup and its interval.
pub struct SpeedupRow<'a> {
    pub label: &'a str,
    pub speedup: f64,
    pub ci: Option<[f64; 2]>,
    pub excluded: bool,
}

/// Contestants' speedups over the incumbent as points with their intervals (a forest plot),
/// parity marked.
pub fn speedups(title: &str, rows: &[SpeedupRow<'_>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let row_height = 22.0;
    let height = 8.0 + rows.len() as f64 * row_height + AXIS;
    let mut values: Vec<f64> = vec![1.0];
    for row in rows {
        values.push(row.speedup);
        values.extend(row.ci.into_iter().flatten());
    }
    let Some(range) = padded_range(&values, 0.05, 0.0) else {
        return String::new();
    };
    let left = LEFT + 60.0;
    let x = Scale::new(range, (left, WIDTH - RIGHT));
    let mut document = document("speedups", height, title);
    document.append(
        line(x.at(1.0), 4.0, x.at(1.0), height - AXIS, MUTED).set("stroke-dasharray", "4 3"),
    );
    for (index, row) in rows.iter().enumerate() {
        let middle = 8.0 + (index as f64 + 0.5) * row_height;
        let colour = if row.excluded {
            MUTED
        } else {
            CANDIDATE_COLOUR
        };
        document.append(text(left - 8.0, middle + 4.0, "end", row.label));
        if let Some([ci_low, ci_high]) = row.ci.filter(|ci| ci.iter().all(|v| v.is_finite())) {
            document.append(
                line(x.at(ci_low), middle, x.at(ci_high), middle, colour).set("stroke-width", 2),
            );
        }
        if row.speedup.is_finite() {
            document.append(
                Circle::new()
                    .set("class", "speedup")
                    .set("cx", x.at(row.speedup))
                    .set("cy", middle)
                    .set("r", 4)
                    .set("fill", colour)
                    .add(tip(format!("{}: {:.3}×", row.label, row.speedup))),
            );
        }
    }
    document.append(x_axis(x, height - AXIS + 4.0, "× the incumbent"));
    document.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_numbers_inside_the_range() {
        assert_eq!(
            ticks(0.0, 10.0, 5),
            (vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0], 0)
        );
        let (values, decimals) = ticks(37.61, 38.07, 5);
        assert_eq!(decimals, 1);
        assert!(values.iter().all(|v| (37.61..=38.07).contains(v)));
        assert!(values.len() >= 3, "{values:?}");
        assert_eq!(ticks(5.0, 5.0, 5).0, vec![5.0]);
    }

    #[test]
    fn a_far_tail_is_counted_at_the_edge_not_drawn_off_the_chart() {
        let mut baseline: Vec<f64> = (0..50).map(|i| 10.0 + f64::from(i % 7) * 0.01).collect();
        baseline.push(210.0);
        let candidate: Vec<f64> = (0..50).map(|i| 10.5 + f64::from(i % 5) * 0.01).collect();
        let fences = crate::stats::balanced_fences(&[&baseline, &candidate], Some(3.0));
        let svg = samples(
            "t",
            &[
                SampleRow {
                    label: "baseline",
                    samples: &baseline,
                    candidate: false,
                },
                SampleRow {
                    label: "candidate",
                    samples: &candidate,
                    candidate: true,
                },
            ],
            fences,
        );
        assert!(svg.contains("1 beyond"), "{svg}");
        assert_eq!(svg.matches("class=\"sample\"").count(), 100);
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn text_from_a_record_stays_text() {
        let svg = trend(
            "<script>alert(1)</script>",
            &[TrendPoint {
                label: "a\"<b>".into(),
                value: 1.0,
            }],
            &[],
        );
        assert!(!svg.contains("<script>"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn nothing_to_draw_draws_nothing() {
        assert!(samples("t", &[], None).is_empty());
        assert!(rounds("t", &[], None, 0.1).is_empty());
        assert!(trend("t", &[], &[]).is_empty());
        assert!(speedups("t", &[]).is_empty());
    }

    #[test]
    fn values_too_far_apart_to_place_draw_nothing_rather_than_nan() {
        let far = [1e308, -1e308, 1e308];
        let row = [SampleRow {
            label: "b",
            samples: &far,
            candidate: false,
        }];
        assert!(samples("t", &row, None).is_empty());
        let points: Vec<TrendPoint> = far
            .iter()
            .map(|value| TrendPoint {
                label: "c".into(),
                value: *value,
            })
            .collect();
        assert!(trend("t", &points, &[]).is_empty());
        assert!(rounds("t", &[[1.0, 1.1]], None, 1e308).is_empty());
        let tiny = [1e-300, 2e-300, 3e-300];
        let svg = samples(
            "t",
            &[SampleRow {
                label: "b",
                samples: &tiny,
                candidate: false,
            }],
            None,
        );
        assert!(!svg.contains("NaN") && svg.contains("e-300"), "{svg}");
    }

    #[test]
    fn many_samples_are_thinned_inverted_fences_ignored_and_intervals_sorted() {
        let many: Vec<f64> = (0..50_000)
            .map(|i| 100.0 + f64::from(i % 97) * 0.01)
            .collect();
        let row = [SampleRow {
            label: "b",
            samples: &many,
            candidate: false,
        }];
        let svg = samples("t", &row, Some((120.0, 80.0)));
        let drawn = svg.matches("<circle").count();
        assert!(drawn > 0 && drawn <= MAX_POINTS, "{drawn}");
        assert!(svg.contains("every 25th sample drawn"));
        let svg = rounds("t", &[[1.0, 1.5]], Some([1.6, 1.4]), 0.1);
        assert!(
            svg.contains("interval of the ratio: [1.400, 1.600]"),
            "{svg}"
        );
    }

    #[test]
    fn controls_in_labels_are_shown_as_escapes() {
        let svg = trend(
            "k\u{202e}\u{1b}[31m",
            &[TrendPoint {
                label: "a\u{0}".into(),
                value: 1.0,
            }],
            &[],
        );
        assert!(!svg.contains('\u{202e}') && !svg.contains('\u{1b}') && !svg.contains('\u{0}'));
        assert!(svg.contains("\\u{202e}"));
    }
}
