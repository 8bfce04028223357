//! A kernel's `profile:` block and the top-level `profile` block of gates.yaml: the limits
//! gate 4 checks, the Nsight Compute metrics they may name, and each device's peaks.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::shape::{Expr, IDENTIFIER_PATTERN};
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
