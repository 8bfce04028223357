//! A kernel's `profile:` block and the top-level `profile` block of gates.yaml: the limits
//! gate 4 checks, the Nsight Compute metrics they may name, and each device's peaks.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::shape::{is_identifier, Expr, Params, IDENTIFIER_PATTERN};
use crate::unique;

/// Built-in metric names: what the reports show, and what `targets` may bound without more
/// configuration. Each was checked against `ncu --query-metrics` on an H100 (Nsight Compute
/// 2025); gatekeeper checks them again against the device's own list before profiling.
pub const DEFAULT_METRICS: [(&str, &str); 8] = [
    ("duration_ns", "gpu__time_duration.sum"),
    ("sm_pct", "sm__throughput.avg.pct_of_peak_sustained_elapsed"),
    (
        "memory_pct",
        "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    ),
    (
        "dram_pct",
        "dram__throughput.avg.pct_of_peak_sustained_elapsed",
    ),
    ("dram_bytes_per_s", "dram__bytes.sum.per_second"),
    (
        "tensor_pipe_pct",
        "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active",
    ),
    (
        "occupancy_pct",
        "sm__warps_active.avg.pct_of_peak_sustained_active",
    ),
    (
        "bank_conflicts",
        "l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum",
    ),
];

/// Gate 4 for one kernel: resource limits read from the compiled kernel (no GPU time), and
/// targets on Nsight Compute metrics (`gatekeeper profile`, and `check` when `ncu` is there).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelProfile {
    /// Most bytes of register spills (stores + loads) allowed per thread; `0` forbids spills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spills: Option<u64>,
    /// `required`: the SASS must contain tensor-core instructions (HMMA, HGMMA, QGMMA, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_cores: Option<TensorCores>,
    /// Most registers per thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_registers: Option<u32>,
    /// Least theoretical occupancy, % of the SM's warp slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub min_occupancy_pct: Option<f64>,
    /// Floating-point operations per launch, over the shape's parameters (for the floor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops: Option<Expr>,
    /// Least bytes moved to and from device memory per launch (for the floor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Expr>,
    /// Bounds on profiled metrics, by name (see `profile.metrics`), e.g.
    /// `tensor_pipe_pct: {min: 50}`.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "unique::keys"
    )]
    pub targets: IndexMap<String, Bound>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TensorCores {
    Required,
}

/// A metric's allowed range; either end may be open, not both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct Bound {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// The top-level `profile` block: metric names and each device's measured peaks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileSettings {
    /// Extra metric names, or other Nsight Compute metrics under the built-in names.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "unique::keys"
    )]
    #[schemars(extend(
        "propertyNames" = {"pattern": IDENTIFIER_PATTERN},
        "additionalProperties" = {"type": "string", "pattern": "^[^, ]*[^,\\s][^, ]*$"}
    ))]
    pub metrics: IndexMap<String, String>,
    /// Measured peaks by device (the folder name under `baselines/`), for the floor.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "unique::keys"
    )]
    pub peaks: IndexMap<String, Peaks>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Peaks {
    /// Tensor-core rate, TFLOP/s.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub tflops: f64,
    /// Device-memory bandwidth, GB/s.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub bandwidth_gbs: f64,
}

/// The Nsight Compute metric behind a name: gates.yaml's `profile.metrics` first, then the
/// built-ins.
pub fn metric_name<'a>(name: &str, settings: &'a ProfileSettings) -> Option<&'a str> {
    if let Some(metric) = settings.metrics.get(name) {
        return Some(metric.as_str());
    }
    DEFAULT_METRICS
        .iter()
        .find(|(alias, _)| *alias == name)
        .map(|(_, metric)| *metric)
}

/// Every metric name in effect, built-ins first.
pub fn metric_names(settings: &ProfileSettings) -> Vec<String> {
    let mut names: Vec<String> = DEFAULT_METRICS.iter().map(|(n, _)| n.to_string()).collect();
    for name in settings.metrics.keys() {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

impl ProfileSettings {
    /// Problems as (key relative to the block, message): metric names that `targets` can use,
    /// each naming one Nsight Compute metric, and peaks a floor can be computed from.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (device, peaks) in &self.peaks {
            for (name, value) in [
                ("tflops", peaks.tflops),
                ("bandwidth_gbs", peaks.bandwidth_gbs),
            ] {
                if !(value.is_finite() && value > 0.0) {
                    problems.push((
                        format!("peaks.{device}.{name}"),
                        format!("must be a positive number, got {value}"),
                    ));
                }
            }
        }
        for (name, metric) in &self.metrics {
            if !is_identifier(name) {
                problems.push((
                    format!("metrics.{name}"),
                    "metric names are letters, digits and _".to_string(),
                ));
            }
            if metric.trim().is_empty() || metric.contains([',', ' ']) {
                problems.push((
                    format!("metrics.{name}"),
                    format!("expected one Nsight Compute metric name, got {metric:?}"),
                ));
            }
        }
        problems
    }
}

impl KernelProfile {
    /// Problems as (key relative to the block, message): limits that fit the kernel (`cuda`:
    /// whether it is a `cuda:` kernel), known metric names with sane bounds, and work
    /// expressions that evaluate on every shape the kernel `runs_on`.
    pub fn problems(
        &self,
        cuda: bool,
        runs_on: &[(&str, &Params)],
        settings: &ProfileSettings,
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let static_limits = self.spills.is_some()
            || self.tensor_cores.is_some()
            || self.max_registers.is_some()
            || self.min_occupancy_pct.is_some();
        if static_limits && !cuda {
            problems.push((
                "spills".to_string(),
                "resource limits (spills, tensor_cores, max_registers, min_occupancy_pct) need a `cuda` kernel: gatekeeper reads them from the compiled code".to_string(),
            ));
        }
        if let Some(pct) = self.min_occupancy_pct {
            if !(0.0..=100.0).contains(&pct) {
                problems.push((
                    "min_occupancy_pct".to_string(),
                    format!("must be in [0, 100], got {pct}"),
                ));
            }
        }
        problems.extend(self.target_problems(settings));
        if !cuda && !self.targets.is_empty() {
            problems.push((
                "targets".to_string(),
                "Nsight Compute targets need a `cuda` kernel (gatekeeper profiles the kernels it launches)".to_string(),
            ));
        }
        for (name, expr) in [("flops", &self.flops), ("bytes", &self.bytes)] {
            let Some(expr) = expr else { continue };
            if let Some(message) = work_problem(expr, runs_on) {
                problems.push((name.to_string(), message));
            }
        }
        problems
    }

    /// Each target names a known metric and bounds it with finite numbers, min below max.
    fn target_problems(&self, settings: &ProfileSettings) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (name, bound) in &self.targets {
            let key = format!("targets.{name}");
            if metric_name(name, settings).is_none() {
                let known = metric_names(settings).join(", ");
                problems.push((key.clone(), format!("unknown metric {name:?} (known: {known}; add others under the top-level profile.metrics)")));
            }
            match (bound.min, bound.max) {
                (None, None) => problems.push((key, "give `min`, `max` or both".to_string())),
                (Some(lo), Some(hi)) if lo > hi => {
                    problems.push((key, format!("min {lo} is above max {hi}")))
                }
                (lo, hi) if lo.into_iter().chain(hi).any(|v| !v.is_finite()) => {
                    problems.push((key, "bounds must be finite numbers".to_string()))
                }
                _ => {}
            }
        }
        problems
    }
}

/// What is wrong with a work expression on the first shape where it does not evaluate to a
/// finite number >= 0.
fn work_problem(expr: &Expr, runs_on: &[(&str, &Params)]) -> Option<String> {
    runs_on
        .iter()
        .find_map(|(shape, params)| match expr.eval(params) {
            Ok(v) if v.is_finite() && v >= 0.0 => None,
            Ok(v) => Some(format!(
                "is {v} on shape {shape}: must be a finite number >= 0"
            )),
            Err(why) => Some(format!("{why} (shape {shape})")),
        })
}
