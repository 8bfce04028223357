//! What a harness reports beside its samples (`details`): the CUDA runner's facts as typed
//! fields, anything else a harness says kept as it came.
//!
//! Run records and baselines store this object, so it reads back what older versions wrote:
//! a key whose value does not fit its field (a command harness's own `"batch": "auto"`) stays
//! in [`Details::extra`] instead of failing the whole report, and a typed key is written back
//! only when it was there.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How the samples were timed. A kernel near the batching threshold can flip between the two
/// from one run to the next, and the two ways do not measure the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimingMethod {
    /// One launch per sample, between two events.
    Single,
    /// A batch of launches replayed from a CUDA graph, divided by the batch size.
    GraphBatch,
}

impl TimingMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            TimingMethod::Single => "single",
            TimingMethod::GraphBatch => "graph-batch",
        }
    }
}

impl std::fmt::Display for TimingMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `details` object of a harness report, as the run record and the baseline store it.
/// Fields are in the order the CUDA runner writes them; a field that is `None` is not written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "Map<String, Value>", into = "Map<String, Value>")]
pub struct Details {
    /// `cuda` for the built-in runner.
    pub runner: Option<String>,
    /// The architecture compiled for, e.g. `sm_90a`.
    pub arch: Option<String>,
    /// The CUDA driver's version, e.g. `12.8`.
    pub driver_version: Option<String>,
    pub multiprocessors: Option<i64>,
    pub seed: Option<u64>,
    pub trials: Option<u64>,
    /// `cache` or `nvrtc`: where the CUBIN came from.
    pub compiled: Option<String>,
    /// Where the cached CUBIN lies.
    pub cubin: Option<String>,
    /// Gate 4's static half: what each compiled entry point needs.
    pub resources: Option<Vec<Resources>>,
    pub elements_checked: Option<u64>,
    pub elements_incorrect: Option<u64>,
    /// Launches per timed sample.
    pub batch: Option<u64>,
    pub method: Option<TimingMethod>,
    /// The median of the pilot samples that chose the batch size, µs.
    pub pilot_us: Option<f64>,
    /// `cold` or `hot`.
    pub l2: Option<String>,
    /// The SM clock before and after the run; `Some(None)` where nvidia-smi did not answer.
    pub sm_clock_mhz_before: Option<Option<u64>>,
    pub sm_clock_mhz_after: Option<Option<u64>>,
    /// Seconds the harness spent checking the output (gate 2) and taking the samples (gate 3)
    /// for this shape: with gatekeeper's own clocks, where a kernel's time went.
    pub correctness_s: Option<f64>,
    pub timing_s: Option<f64>,
    /// Every other key, as the harness wrote it.
    pub extra: Map<String, Value>,
}

impl Details {
    /// Why samples timed as `now` cannot be judged against a baseline timed as `before`: both
    /// said how they were timed, and the ways differ. Where either side does not say, the two
    /// are compared.
    pub fn timing_changed(
        before: Option<&Details>,
        now: Option<&Details>,
    ) -> Option<(TimingMethod, TimingMethod)> {
        let before = before?.method?;
        let now = now?.method?;
        (before != now).then_some((before, now))
    }
}

/// Moves `key` out of `map` into a typed value, when its value has that type.
fn take<T: serde::de::DeserializeOwned>(map: &mut Map<String, Value>, key: &str) -> Option<T> {
    let typed = serde_json::from_value(map.get(key)?.clone()).ok()?;
    map.shift_remove(key);
    Some(typed)
}

impl From<Map<String, Value>> for Details {
    fn from(mut map: Map<String, Value>) -> Self {
        Details {
            runner: take(&mut map, "runner"),
            arch: take(&mut map, "arch"),
            driver_version: take(&mut map, "driver_version"),
            multiprocessors: take(&mut map, "multiprocessors"),
            seed: take(&mut map, "seed"),
            trials: take(&mut map, "trials"),
            compiled: take(&mut map, "compiled"),
            cubin: take(&mut map, "cubin"),
            resources: take(&mut map, "resources"),
            elements_checked: take(&mut map, "elements_checked"),
            elements_incorrect: take(&mut map, "elements_incorrect"),
            batch: take(&mut map, "batch"),
            method: take(&mut map, "method"),
            // A whole number stays as written: read as f64 it would come back as `5.0`.
            pilot_us: map
                .get("pilot_us")
                .is_some_and(Value::is_f64)
                .then(|| take(&mut map, "pilot_us"))
                .flatten(),
            l2: take(&mut map, "l2"),
            sm_clock_mhz_before: take(&mut map, "sm_clock_mhz_before"),
            sm_clock_mhz_after: take(&mut map, "sm_clock_mhz_after"),
            correctness_s: take(&mut map, "correctness_s"),
            timing_s: take(&mut map, "timing_s"),
            extra: map,
        }
    }
}

/// Writes `value` under `key`, if there is one.
fn put<T: Serialize>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(value) = value {
        // These types always have a JSON form (a NaN becomes null, as serde_json writes it).
        map.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
    }
}

impl From<Details> for Map<String, Value> {
    fn from(details: Details) -> Self {
        let mut map = Map::new();
        put(&mut map, "runner", details.runner);
        put(&mut map, "arch", details.arch);
        put(&mut map, "driver_version", details.driver_version);
        put(&mut map, "multiprocessors", details.multiprocessors);
        put(&mut map, "seed", details.seed);
        put(&mut map, "trials", details.trials);
        put(&mut map, "compiled", details.compiled);
        put(&mut map, "cubin", details.cubin);
        put(&mut map, "resources", details.resources);
        put(&mut map, "elements_checked", details.elements_checked);
        put(&mut map, "elements_incorrect", details.elements_incorrect);
        put(&mut map, "batch", details.batch);
        put(&mut map, "method", details.method);
        put(&mut map, "pilot_us", details.pilot_us);
        put(&mut map, "l2", details.l2);
        put(&mut map, "sm_clock_mhz_before", details.sm_clock_mhz_before);
        put(&mut map, "sm_clock_mhz_after", details.sm_clock_mhz_after);
        put(&mut map, "correctness_s", details.correctness_s);
        put(&mut map, "timing_s", details.timing_s);
        map.extend(details.extra);
        map
    }
}

/// Static resources of one compiled entry point, as the CUDA runner reports them (gate 4 reads them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    pub entry: String,
    pub registers: u32,
    /// Spill stores + loads in bytes per thread, from ptxas; `None` when its report was not
    /// available.
    pub spill_bytes: Option<u64>,
    /// Local memory per thread (stack frame, spills, local arrays).
    pub local_bytes: u64,
    pub static_shared_bytes: u64,
    pub dynamic_shared_bytes: u64,
    pub threads_per_block: u32,
    pub blocks_per_sm: u32,
    /// Theoretical occupancy: resident warps over the SM's warp slots, %.
    pub occupancy_pct: f64,
    /// Tensor-core instructions in the SASS by opcode (`HMMA`, `HGMMA`, `QGMMA`, ...); `None`
    /// when no disassembler was found.
    pub tensor_instructions: Option<indexmap::IndexMap<String, u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(json: &str) -> Details {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_runners_details_read_typed_and_write_back_unchanged() {
        let text = r#"{"runner":"cuda","arch":"sm_90a","driver_version":"12.8","multiprocessors":132,"seed":7,"trials":3,"compiled":"cache","cubin":"/c/x.cubin","resources":[],"elements_checked":4096,"batch":12,"method":"graph-batch","pilot_us":3.5,"l2":"cold","sm_clock_mhz_before":null,"sm_clock_mhz_after":1980}"#;
        let read = details(text);
        assert_eq!(read.method, Some(TimingMethod::GraphBatch));
        assert_eq!(read.batch, Some(12));
        assert_eq!(read.sm_clock_mhz_before, Some(None));
        assert_eq!(read.sm_clock_mhz_after, Some(Some(1980)));
        assert!(read.extra.is_empty(), "{:?}", read.extra);
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
    }

    #[test]
    fn a_command_harnesss_own_keys_round_trip() {
        // `batch` is not a count here and `method` names no timing method: both stay as written.
        let text =
            r#"{"batch":"auto","method":"cupti","pilot_us":5,"mismatches":3,"nested":{"a":[1,2]}}"#;
        let read = details(text);
        assert_eq!(read.batch, None);
        assert_eq!(read.method, None);
        assert_eq!(read.pilot_us, None);
        assert_eq!(read.extra["mismatches"], 3);
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
        assert!(serde_json::from_str::<Details>("[1]").is_err());
    }

    #[test]
    fn only_two_known_and_different_methods_keep_a_baseline_out() {
        let single = details(r#"{"method":"single"}"#);
        let batch = details(r#"{"method":"graph-batch"}"#);
        let unknown = details(r#"{"clock":1}"#);
        assert_eq!(
            Details::timing_changed(Some(&single), Some(&batch)),
            Some((TimingMethod::Single, TimingMethod::GraphBatch))
        );
        assert_eq!(Details::timing_changed(Some(&single), Some(&single)), None);
        assert_eq!(Details::timing_changed(Some(&unknown), Some(&batch)), None);
        assert_eq!(Details::timing_changed(None, Some(&batch)), None);
    }
}
