//! Gate 4, profiling: why a kernel is as fast as it is, and limits a team can gate on.
//!
//! Two sources, both optional. The compiled kernel's static resources (registers, spills,
//! shared memory, theoretical occupancy, tensor-core instructions in the SASS) come from the
//! CUDA runner at no GPU cost. Nsight Compute metrics come from a profiled launch
//! ([`ncu`]). Each shape gets a class (compute-, memory- or latency-bound, with the numbers
//! that say so), its distance from the floor, and a check per limit in gates.yaml.

pub mod ncu;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use crate::measure::Resources;
use crate::shape::Params;
pub use crate::spec::profile::{metric_name, metric_names, DEFAULT_METRICS};
use crate::spec::profile::{Bound, KernelProfile, Peaks, TensorCores};

/// Below this share of peak on both the SM and the memory side, a kernel is latency-bound:
/// neither unit is busy, so stalls (dependencies, barriers, too few warps) set its time.
pub const LATENCY_BOUND_BELOW_PCT: f64 = 60.0;

/// One metric value, in the unit Nsight Compute printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub metric: String,
    pub value: f64,
    pub unit: String,
}

/// One limit from gates.yaml, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// The key in gates.yaml, e.g. `spills` or `tensor_pipe_pct`.
    pub name: String,
    /// The limit, e.g. `<= 0` or `>= 50`.
    pub limit: String,
    pub actual: Option<f64>,
    /// `None`: could not be checked (no profiler, no disassembler); see `note`.
    pub passed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Check {
    pub fn failed(&self) -> bool {
        self.passed == Some(false)
    }

    /// `name 12.3 (limit >= 50)` or `name: not checked (why)`.
    pub fn describe(&self) -> String {
        match (self.actual, &self.note) {
            (Some(actual), _) => format!("{} {} (limit {})", self.name, number(actual), self.limit),
            (None, Some(note)) => format!("{}: not checked ({note})", self.name),
            (None, None) => format!("{}: not checked", self.name),
        }
    }
}

/// Gate 4's findings for one kernel × shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShapeProfile {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resources>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub metrics: IndexMap<String, MetricValue>,
    /// What sets the kernel's time, from the metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<BoundClass>,
    /// The numbers behind the class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Least possible time from the declared work and the device's peaks, µs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_us: Option<f64>,
    /// Profiled duration over the floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times_floor: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// Why there are no metrics (no `ncu`, no permission to read counters, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ShapeProfile {
    pub fn failed_checks(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.failed())
    }

    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).map(|m| m.value)
    }

    /// Most registers and most spill bytes over the entry points, for the summary tables.
    pub fn registers(&self) -> Option<u32> {
        self.resources.iter().map(|r| r.registers).max()
    }

    pub fn spill_bytes(&self) -> Option<u64> {
        self.resources.iter().map(spills_of).max()
    }

    /// Tensor-core instructions over all entry points; `None` when unknown.
    pub fn tensor_instructions(&self) -> Option<u64> {
        self.resources
            .iter()
            .map(|r| {
                r.tensor_instructions
                    .as_ref()
                    .map(|m| m.values().sum::<u64>())
            })
            .sum()
    }
}

/// Spill bytes, or local memory where ptxas's figure is missing (spills live there).
fn spills_of(resources: &Resources) -> u64 {
    resources.spill_bytes.unwrap_or(resources.local_bytes)
}

/// What bounds a kernel's time, from its SM and memory throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoundClass {
    /// The SM side is the busier, at or above [`LATENCY_BOUND_BELOW_PCT`].
    ComputeBound,
    /// The memory side is the busier, at or above [`LATENCY_BOUND_BELOW_PCT`].
    MemoryBound,
    /// Neither side reaches [`LATENCY_BOUND_BELOW_PCT`]: stalls set the time.
    LatencyBound,
}

impl BoundClass {
    pub fn as_str(self) -> &'static str {
        match self {
            BoundClass::ComputeBound => "compute-bound",
            BoundClass::MemoryBound => "memory-bound",
            BoundClass::LatencyBound => "latency-bound",
        }
    }
}

impl std::fmt::Display for BoundClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies from SM and memory throughput (% of peak).
pub fn classify(sm_pct: f64, memory_pct: f64) -> (BoundClass, String) {
    let numbers = format!(
        "SM {} % of peak, memory {} %",
        number(sm_pct),
        number(memory_pct)
    );
    if sm_pct.max(memory_pct) < LATENCY_BOUND_BELOW_PCT {
        (
            BoundClass::LatencyBound,
            format!(
                "{numbers}: neither reaches {LATENCY_BOUND_BELOW_PCT} %, so stalls set the time"
            ),
        )
    } else if sm_pct >= memory_pct {
        (BoundClass::ComputeBound, numbers)
    } else {
        (BoundClass::MemoryBound, numbers)
    }
}

/// Least time for `flops` and `bytes` at the device's peaks, µs, and which side sets it.
pub fn floor_us(
    flops: Option<f64>,
    bytes: Option<f64>,
    peaks: &Peaks,
) -> Option<(f64, &'static str)> {
    let compute = flops.map(|f| f / (peaks.tflops * 1e12) * 1e6);
    let memory = bytes.map(|b| b / (peaks.bandwidth_gbs * 1e9) * 1e6);
    match (compute, memory) {
        (Some(c), Some(m)) if c >= m => Some((c, "compute")),
        (Some(_), Some(m)) => Some((m, "memory")),
        (Some(c), None) => Some((c, "compute")),
        (None, Some(m)) => Some((m, "memory")),
        (None, None) => None,
    }
}

/// Checks the static limits of `spec` against the compiled entry points.
pub fn check_resources(spec: &KernelProfile, resources: &[Resources]) -> Vec<Check> {
    let mut checks = Vec::new();
    if resources.is_empty() {
        return checks;
    }
    if let Some(limit) = spec.spills {
        let worst = resources.iter().map(spills_of).max().unwrap_or(0);
        checks.push(bounded("spills", worst as f64, None, Some(limit as f64)));
    }
    if let Some(limit) = spec.max_registers {
        let worst = resources.iter().map(|r| r.registers).max().unwrap_or(0);
        checks.push(bounded(
            "max_registers",
            f64::from(worst),
            None,
            Some(f64::from(limit)),
        ));
    }
    if let Some(limit) = spec.min_occupancy_pct {
        let worst = resources
            .iter()
            .map(|r| r.occupancy_pct)
            .fold(f64::INFINITY, f64::min);
        checks.push(bounded("min_occupancy_pct", worst, Some(limit), None));
    }
    if spec.tensor_cores == Some(TensorCores::Required) {
        // Every entry point must use them: a helper kernel without MMA is the "not engaged" bug.
        let counts: Option<Vec<u64>> = resources
            .iter()
            .map(|r| r.tensor_instructions.as_ref().map(|m| m.values().sum()))
            .collect();
        checks.push(match counts {
            Some(counts) => {
                let least = counts.iter().copied().min().unwrap_or(0);
                Check {
                    name: "tensor_cores".to_string(),
                    limit: "required".to_string(),
                    actual: Some(least as f64),
                    passed: Some(least > 0),
                    note: (least == 0).then(|| {
                        let idle: Vec<&str> = resources
                            .iter()
                            .filter(|r| {
                                r.tensor_instructions
                                    .as_ref()
                                    .is_some_and(|m| m.values().sum::<u64>() == 0)
                            })
                            .map(|r| r.entry.as_str())
                            .collect();
                        format!(
                            "no tensor-core instruction in the SASS of {}",
                            idle.join(", ")
                        )
                    }),
                }
            }
            None => Check {
                name: "tensor_cores".to_string(),
                limit: "required".to_string(),
                actual: None,
                passed: None,
                note: Some("no cuobjdump found to read the SASS (set CUDA_HOME)".to_string()),
            },
        });
    }
    checks
}

/// Checks `targets` against profiled metrics; a missing metric is reported, not passed.
pub fn check_targets(
    targets: &IndexMap<String, Bound>,
    metrics: Option<&IndexMap<String, MetricValue>>,
    why_missing: Option<&str>,
) -> Vec<Check> {
    targets
        .iter()
        .map(|(name, bound)| match metrics.and_then(|m| m.get(name)) {
            Some(value) => bounded(name, value.value, bound.min, bound.max),
            None => Check {
                name: name.clone(),
                limit: limit_text(bound.min, bound.max),
                actual: None,
                passed: None,
                note: Some(
                    why_missing
                        .unwrap_or("the profiler did not report this metric")
                        .to_string(),
                ),
            },
        })
        .collect()
}

fn bounded(name: &str, actual: f64, min: Option<f64>, max: Option<f64>) -> Check {
    let passed = min.is_none_or(|lo| actual >= lo) && max.is_none_or(|hi| actual <= hi);
    Check {
        name: name.to_string(),
        limit: limit_text(min, max),
        actual: Some(actual),
        passed: Some(passed),
        note: None,
    }
}

fn limit_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("{} .. {}", number(lo), number(hi)),
        (Some(lo), None) => format!(">= {}", number(lo)),
        (None, Some(hi)) => format!("<= {}", number(hi)),
        (None, None) => "any".to_string(),
    }
}

/// A number as people write it: no trailing zeros, at most 3 significant decimals.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Builds a shape's profile: static checks, metrics with class and floor, target checks.
pub fn assemble(
    spec: &KernelProfile,
    params: &Params,
    peaks: Option<&Peaks>,
    resources: Vec<Resources>,
    metrics: Result<IndexMap<String, MetricValue>, String>,
) -> ShapeProfile {
    let mut profile = ShapeProfile {
        checks: check_resources(spec, &resources),
        resources,
        ..ShapeProfile::default()
    };
    let (metrics, note) = match metrics {
        Ok(metrics) => (Some(metrics), None),
        Err(why) => (None, Some(why)),
    };
    if let Some(metrics) = &metrics {
        let value = |name: &str| metrics.get(name).map(|m| m.value);
        if let (Some(sm), Some(memory)) = (value("sm_pct"), value("memory_pct")) {
            let (class, evidence) = classify(sm, memory);
            profile.class = Some(class);
            profile.evidence = Some(evidence);
        }
        let flops = spec.flops.as_ref().and_then(|e| e.eval(params).ok());
        let bytes = spec.bytes.as_ref().and_then(|e| e.eval(params).ok());
        if let Some((floor, side)) = peaks.and_then(|p| floor_us(flops, bytes, p)) {
            profile.floor_us = Some(floor);
            if let Some(duration) = metrics.get("duration_ns").filter(|m| m.unit == "ns") {
                let times = duration.value / 1e3 / floor;
                profile.times_floor = Some(times);
                if let Some(evidence) = &mut profile.evidence {
                    evidence.push_str(&format!(
                        "; {}× the {side} floor of {} µs",
                        number(times),
                        number(floor)
                    ));
                }
            }
        }
    }
    profile.checks.extend(check_targets(
        &spec.targets,
        metrics.as_ref(),
        note.as_deref(),
    ));
    profile.metrics = metrics.unwrap_or_default();
    profile.note = note;
    profile
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources(
        entry: &str,
        registers: u32,
        spills: Option<u64>,
        tensor: Option<u64>,
    ) -> Resources {
        Resources {
            entry: entry.to_string(),
            registers,
            spill_bytes: spills,
            local_bytes: spills.unwrap_or(0),
            static_shared_bytes: 0,
            dynamic_shared_bytes: 0,
            threads_per_block: 128,
            blocks_per_sm: 2,
            occupancy_pct: 12.5,
            tensor_instructions: tensor.map(|n| IndexMap::from([("HMMA".to_string(), n)])),
        }
    }

    #[test]
    fn classes_follow_the_busier_unit_or_neither() {
        assert_eq!(classify(85.0, 30.0).0, BoundClass::ComputeBound);
        assert_eq!(classify(40.0, 90.0).0, BoundClass::MemoryBound);
        let (class, evidence) = classify(33.6, 45.4);
        assert_eq!(class, BoundClass::LatencyBound);
        assert_eq!(class.to_string(), "latency-bound");
        assert_eq!(
            serde_json::to_value(class).unwrap(),
            serde_json::json!("latency-bound")
        );
        assert!(
            evidence.contains("SM 33.6 % of peak, memory 45.4 %"),
            "{evidence}"
        );
    }

    #[test]
    fn the_floor_is_the_slower_side() {
        let h100 = Peaks {
            tflops: 743.0,
            bandwidth_gbs: 3010.0,
        };
        // mission: 8.59 GFLOP, 10.49 MB -> 11.57 µs of compute, 3.49 µs of memory.
        let (floor, side) = floor_us(Some(8.589934592e9), Some(10_485_760.0), &h100).unwrap();
        assert_eq!(side, "compute");
        assert!((floor - 11.561).abs() < 0.01, "{floor}");
        let (floor, side) = floor_us(Some(1e6), Some(1e9), &h100).unwrap();
        assert_eq!(side, "memory");
        assert!((floor - 332.2).abs() < 0.1, "{floor}");
        assert_eq!(floor_us(None, None, &h100), None);
    }

    #[test]
    fn resource_limits_fail_on_spills_and_idle_tensor_cores() {
        let spec = KernelProfile {
            spills: Some(0),
            tensor_cores: Some(TensorCores::Required),
            max_registers: Some(200),
            min_occupancy_pct: Some(10.0),
            ..KernelProfile::default()
        };
        let good = check_resources(&spec, &[resources("a", 180, Some(0), Some(64))]);
        assert!(good.iter().all(|c| c.passed == Some(true)), "{good:?}");

        let bad = check_resources(
            &spec,
            &[
                resources("a", 255, Some(48), Some(64)),
                resources("b", 32, Some(0), Some(0)),
            ],
        );
        let failed: Vec<&str> = bad
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(failed, ["spills", "max_registers", "tensor_cores"]);
        let tensor = bad.iter().find(|c| c.name == "tensor_cores").unwrap();
        assert_eq!(
            tensor.note.as_deref(),
            Some("no tensor-core instruction in the SASS of b")
        );

        let unknown = check_resources(&spec, &[resources("a", 100, Some(0), None)]);
        let tensor = unknown.iter().find(|c| c.name == "tensor_cores").unwrap();
        assert_eq!(tensor.passed, None, "unknown is not a pass");
    }

    #[test]
    fn targets_check_bounds_and_say_why_a_metric_is_missing() {
        let targets = IndexMap::from([
            (
                "tensor_pipe_pct".to_string(),
                Bound {
                    min: Some(50.0),
                    max: None,
                },
            ),
            (
                "dram_pct".to_string(),
                Bound {
                    min: None,
                    max: Some(70.0),
                },
            ),
        ]);
        let metrics = IndexMap::from([
            (
                "tensor_pipe_pct".to_string(),
                MetricValue {
                    metric: "m".into(),
                    value: 25.9,
                    unit: "%".into(),
                },
            ),
            (
                "dram_pct".to_string(),
                MetricValue {
                    metric: "d".into(),
                    value: 6.4,
                    unit: "%".into(),
                },
            ),
        ]);
        let checks = check_targets(&targets, Some(&metrics), None);
        assert_eq!(checks[0].passed, Some(false));
        assert_eq!(checks[0].describe(), "tensor_pipe_pct 25.9 (limit >= 50)");
        assert_eq!(checks[1].passed, Some(true));

        let skipped = check_targets(&targets, None, Some("ncu not found"));
        assert!(skipped.iter().all(|c| c.passed.is_none()));
        assert_eq!(
            skipped[0].describe(),
            "tensor_pipe_pct: not checked (ncu not found)"
        );
    }

    #[test]
    fn numbers_read_plainly() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(25.87), "25.87");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(1234.56), "1234.6");
    }
}
