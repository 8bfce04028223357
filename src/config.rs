//! `gates.yaml`, schema version 1: what to run, on which shapes, and how to judge it.
//!
//! Loading happens in two passes, as nextest does: serde parses the document strictly (unknown
//! keys, duplicate keys and wrong types carry the key path and line; [`crate::yaml`] finds all of
//! them, not just the first), then a semantic pass checks ranges and cross-references and
//! collects *every* problem before giving up.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::shape::{is_identifier, IDENTIFIER_PATTERN};
// The types of `Config`'s fields that other modules define, reachable from here too.
pub use crate::shape::{ParamValue, Params};
pub use crate::spec::cuda::CudaSpec;
pub use crate::spec::profile::{KernelProfile, ProfileSettings};
use crate::unique;
use crate::yaml::{self, Parsed};

/// The file every command reads unless `--config` names another.
pub const DEFAULT_CONFIG_FILE: &str = "gates.yaml";
/// The only schema version this build understands.
pub const SCHEMA_VERSION: u32 = 1;

/// What [`check_name`] accepts, for the JSON Schema: editors then reject what gatekeeper does.
pub(crate) const NAME_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$";

/// A configuration that passed every check of [`Config::load`] and [`Config::from_yaml`], which
/// is how gatekeeper makes one. The fields are public for reading: a `Config` built or changed
/// by hand is not checked again.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The folder that holds it: harnesses run here, and `baselines/` and `runs/` live here.
    pub root: PathBuf,
    pub gate: GateSettings,
    pub timing: TimingSettings,
    pub shapes: IndexMap<String, Params>,
    pub kernels: Vec<KernelSpec>,
    pub profile: ProfileSettings,
}

/// How a candidate is judged against its baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GateSettings {
    /// Relative slowdown of the (outlier-filtered) mean that counts as a regression.
    #[serde(default = "defaults::regression_threshold")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 10))]
    pub regression_threshold: f64,
    /// A kernel fails when at least this many of its shapes regress.
    #[serde(default = "defaults::min_regressed_shapes")]
    #[schemars(range(min = 1))]
    pub min_regressed_shapes: usize,
    /// One-sided significance level of Welch's t-test.
    #[serde(default = "defaults::alpha")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 0.5))]
    pub alpha: f64,
    /// Tukey fence multiplier k: samples outside [Q1 - k·IQR, Q3 + k·IQR] are dropped before the
    /// test. `null` keeps every sample.
    #[serde(default = "defaults::outlier_fence")]
    #[schemars(range(min = 1, max = 100))]
    pub outlier_fence: Option<f64>,
    /// What happens to a shape the stored baseline calls regressed or inconclusive: `ab`
    /// measures it again beside the base build, in alternating processes, and that verdict is
    /// final; `none` keeps the stored verdict. Unset means `ab` when `check --against REF` gives
    /// a base to build, and `none` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Confirm>,
    /// The same-runner A/B comparison's rounds and error rate.
    #[serde(default)]
    pub ab: AbSettings,
}

/// `gate.confirm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Confirm {
    /// Re-measure doubtful shapes beside the base build (same runner, interleaved rounds).
    Ab,
    /// The stored-baseline verdict is final.
    None,
}

/// `gate.ab`: how a same-runner A/B comparison is run and stopped. A round is one base and one
/// candidate process; the verdict comes from the rounds' log-ratios of medians.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbSettings {
    /// The first round at which the test may stop (at least 3).
    #[serde(default = "defaults::ab_min_rounds")]
    #[schemars(range(min = 3, max = 1000))]
    pub min_rounds: usize,
    /// The last round: the verdict is `inconclusive` if it is not certain by then.
    #[serde(default = "defaults::ab_max_rounds")]
    #[schemars(range(min = 3, max = 1000))]
    pub max_rounds: usize,
    /// Error rate of the interval over all looks (two-sided, split across rounds).
    #[serde(default = "defaults::ab_alpha")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 0.5))]
    pub alpha: f64,
    /// Seconds one shape's rounds may take; past them the verdict is `inconclusive`.
    #[serde(default = "defaults::ab_max_seconds")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 86_400))]
    pub max_seconds: f64,
}

impl Default for AbSettings {
    fn default() -> Self {
        AbSettings {
            min_rounds: defaults::ab_min_rounds(),
            max_rounds: defaults::ab_max_rounds(),
            alpha: defaults::ab_alpha(),
            max_seconds: defaults::ab_max_seconds(),
        }
    }
}

impl AbSettings {
    /// Out-of-range settings as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(3..=1000).contains(&self.min_rounds) {
            let got = self.min_rounds;
            problems.push(("ab.min_rounds", format!("must be in [3, 1000], got {got}")));
        }
        if !(3..=1000).contains(&self.max_rounds) {
            let got = self.max_rounds;
            problems.push(("ab.max_rounds", format!("must be in [3, 1000], got {got}")));
        } else if self.max_rounds < self.min_rounds {
            problems.push((
                "ab.max_rounds",
                format!("must be at least ab.min_rounds ({})", self.min_rounds),
            ));
        }
        if !(self.alpha > 0.0 && self.alpha <= 0.5) {
            problems.push((
                "ab.alpha",
                format!("must be in (0, 0.5], got {}", self.alpha),
            ));
        }
        if !(self.max_seconds > 0.0 && self.max_seconds <= 86_400.0) {
            let got = self.max_seconds;
            problems.push((
                "ab.max_seconds",
                format!("must be in (0, 86400], got {got}"),
            ));
        }
        problems
    }
}

impl GateSettings {
    /// Out-of-range settings as (key, message): one rule for gates.yaml and for the flags that
    /// override it.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if !(self.regression_threshold > 0.0 && self.regression_threshold <= 10.0) {
            problems.push((
                "regression_threshold",
                format!(
                    "must be in (0, 10], got {} (0.10 means 10 % slower)",
                    self.regression_threshold
                ),
            ));
        }
        if self.min_regressed_shapes == 0 {
            problems.push(("min_regressed_shapes", "must be at least 1".to_string()));
        }
        if !(self.alpha > 0.0 && self.alpha <= 0.5) {
            problems.push(("alpha", format!("must be in (0, 0.5], got {}", self.alpha)));
        }
        if let Some(fence) = self.outlier_fence {
            if !(1.0..=100.0).contains(&fence) {
                problems.push((
                    "outlier_fence",
                    format!("must be in [1, 100] or null, got {fence}"),
                ));
            }
        }
        problems.extend(self.ab.problems());
        problems
    }
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            regression_threshold: defaults::regression_threshold(),
            min_regressed_shapes: defaults::min_regressed_shapes(),
            alpha: defaults::alpha(),
            outlier_fence: defaults::outlier_fence(),
            confirm: None,
            ab: AbSettings::default(),
        }
    }
}

/// How many samples to take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimingSettings {
    #[serde(default = "defaults::warmup")]
    #[schemars(range(max = 1_000_000))]
    pub warmup: u64,
    #[serde(default = "defaults::samples")]
    #[schemars(range(min = 5, max = 100_000))]
    pub samples: u64,
    /// Seed for input generation, passed to harnesses as `GATEKEEPER_SEED`.
    #[serde(default = "defaults::seed")]
    pub seed: u64,
}

impl Default for TimingSettings {
    fn default() -> Self {
        TimingSettings {
            warmup: defaults::warmup(),
            samples: defaults::samples(),
            seed: defaults::seed(),
        }
    }
}

/// One kernel to gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["command"], "properties": {"command": {"type": "array"}}},
    {"required": ["cuda"], "properties": {"cuda": {"type": "object"}}}
]))]
pub struct KernelSpec {
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// A command harness: argv of a program that times the kernel (see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), extend("prefixItems" = [{"pattern": "\\S"}]))]
    pub command: Option<Vec<String>>,
    /// A CUDA C++ kernel that gatekeeper compiles, checks and times itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda: Option<CudaSpec>,
    /// Names of entries in the top-level `shapes`.
    #[schemars(length(min = 1), extend("uniqueItems" = true))]
    pub shapes: Vec<String>,
    /// Kernels this one is compared with, shape by shape: the reports show its speedup over
    /// each (a peer is an ordinary kernel of this file, e.g. a library's implementation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = NAME_PATTERN)))]
    pub peers: Vec<String>,
    /// Seconds one harness run may take before it is killed and the shape becomes `error`.
    #[serde(default = "defaults::timeout_s")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 86_400))]
    pub timeout_s: f64,
    /// Files (globs relative to the folder of gates.yaml) that define a command kernel: its
    /// harness, sources, lock files. When they and the kernel's entry are as they were for the
    /// `--against` baseline, the kernel is not measured again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// The command harness's protocol: 1 (a process per shape, the default) or 2 (one process
    /// serves every shape over stdin and stdout; see the README).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 2))]
    pub protocol: Option<u32>,
    /// A build step run in each tree before the kernel's first measurement there: in the
    /// working tree, and in the base tree exported for an A/B comparison. Its argv runs in the
    /// folder of gates.yaml with the kernel's `env`; a failure fails every shape of the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1), extend("prefixItems" = [{"pattern": "\\S"}]))]
    pub setup: Option<Vec<String>>,
    /// Extra environment variables for the harness.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "unique::keys"
    )]
    // A number or boolean is read as the text it was written as (`MY_FLAG: 1`), so the schema
    // takes those too.
    #[schemars(extend(
        "propertyNames" = {"pattern": IDENTIFIER_PATTERN},
        "additionalProperties" = {"type": ["string", "number", "boolean"]}
    ))]
    pub env: IndexMap<String, String>,
    /// Gate 4: static resources of the compiled kernel and Nsight Compute targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<KernelProfile>,
    /// Named alternatives to this kernel (the incumbent), each its definition with some parts
    /// replaced: what `gatekeeper rank` compares.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<Variant>,
}

/// One alternative to a kernel: the kernel's own definition with the parts given here replaced.
/// `source`, `options` and `launches` apply to `cuda:` kernels, `command` to command kernels;
/// `env` is added to the kernel's for both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[schemars(regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// Another CUDA source file, relative to the folder of gates.yaml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// NVRTC options in place of the kernel's, e.g. `["-DTILE_N=64"]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<String>>,
    /// Launches in place of the kernel's (another grid, block or shared memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launches: Option<Vec<crate::spec::cuda::LaunchSpec>>,
    /// A command harness's argv in place of the kernel's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub command: Option<Vec<String>>,
    /// Environment variables added to (or replacing) the kernel's.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "unique::keys"
    )]
    #[schemars(extend(
        "propertyNames" = {"pattern": IDENTIFIER_PATTERN},
        "additionalProperties" = {"type": ["string", "number", "boolean"]}
    ))]
    pub env: IndexMap<String, String>,
}

impl KernelSpec {
    /// This kernel as `variant` defines it: named `kernel@variant`, without variants of its own.
    pub fn with_variant(&self, variant: &Variant) -> KernelSpec {
        let mut spec = self.clone();
        spec.name = format!("{}@{}", self.name, variant.name);
        spec.variants = Vec::new();
        if let Some(cuda) = &mut spec.cuda {
            if let Some(source) = &variant.source {
                cuda.source = source.clone();
            }
            if let Some(options) = &variant.options {
                cuda.options = options.clone();
            }
            if let Some(launches) = &variant.launches {
                cuda.launches = launches.clone();
            }
        }
        if let Some(command) = &variant.command {
            spec.command = Some(command.clone());
        }
        spec.env
            .extend(variant.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        spec
    }

    /// The problems of each variant: a name, fields that fit the kernel's kind, and a
    /// definition that is valid once applied.
    fn variant_problems(&self, runs_on: &[(&str, &Params)]) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (index, variant) in self.variants.iter().enumerate() {
            let key = |field: &str| format!("variants[{index}]{field}");
            if let Err(why) = check_name(&variant.name) {
                problems.push((
                    key(".name"),
                    format!("bad variant name {:?}: {why}", variant.name),
                ));
            } else if self.variants[..index]
                .iter()
                .any(|v| v.name == variant.name)
            {
                problems.push((
                    key(".name"),
                    format!("duplicate variant name {:?}", variant.name),
                ));
            }
            let cuda_only = [
                ("source", variant.source.is_some()),
                ("options", variant.options.is_some()),
                ("launches", variant.launches.is_some()),
            ];
            match &self.cuda {
                Some(_) if variant.command.is_some() => problems.push((
                    key(".command"),
                    "applies to command kernels; this kernel is `cuda:`".to_string(),
                )),
                None => {
                    for (field, given) in cuda_only {
                        if given {
                            problems.push((
                                key(&format!(".{field}")),
                                "applies to `cuda:` kernels; this kernel is a command".to_string(),
                            ));
                        }
                    }
                }
                Some(_) => {}
            }
            problems.extend(nested(&key(""), env_problems(&variant.env)));
            let applied = self.with_variant(variant);
            problems.extend(nested(&key(""), applied.harness_problems(runs_on)));
        }
        problems
    }
}

/// An `env` map's names that are not identifiers, as (`env.NAME`, message).
fn env_problems(env: &IndexMap<String, String>) -> Vec<(String, String)> {
    env.keys()
        .filter(|name| !is_identifier(name))
        .map(|name| {
            (
                format!("env.{name}"),
                "environment variable names are letters, digits and _".to_string(),
            )
        })
        .collect()
}

mod defaults {
    pub fn regression_threshold() -> f64 {
        0.10
    }
    pub fn min_regressed_shapes() -> usize {
        2
    }
    pub fn alpha() -> f64 {
        0.05
    }
    pub fn outlier_fence() -> Option<f64> {
        Some(1.5)
    }
    pub fn warmup() -> u64 {
        10
    }
    pub fn samples() -> u64 {
        50
    }
    pub fn seed() -> u64 {
        42
    }
    pub fn timeout_s() -> f64 {
        600.0
    }
    pub fn ab_min_rounds() -> usize {
        3
    }
    pub fn ab_max_rounds() -> usize {
        30
    }
    pub fn ab_alpha() -> f64 {
        0.05
    }
    pub fn ab_max_seconds() -> f64 {
        600.0
    }
}

/// The document exactly as written, before semantic checks. Its JSON Schema is what
/// `gatekeeper schema` prints.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "gatekeeper gates.yaml, schema version 1",
    description = "Kernels, shapes and thresholds for gatekeeper, a CI gate for GPU kernels."
)]
struct RawConfig {
    /// The schema version; only 1 exists.
    #[schemars(extend("const" = SCHEMA_VERSION))]
    version: u32,
    #[serde(default)]
    gate: GateSettings,
    #[serde(default)]
    timing: TimingSettings,
    #[serde(deserialize_with = "shape_map")]
    #[schemars(schema_with = "shapes_schema")]
    shapes: IndexMap<String, Params>,
    #[schemars(length(min = 1))]
    kernels: Vec<KernelSpec>,
    #[serde(default)]
    profile: ProfileSettings,
    /// Free-form and ignored: a home for YAML anchors (`&name`) that several kernels share.
    #[serde(default)]
    #[allow(dead_code)]
    #[schemars(with = "Option<serde_json::Value>")]
    templates: Option<serde_yaml::Value>,
}

/// The shapes mapping, with duplicate keys rejected at both levels.
fn shape_map<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<IndexMap<String, Params>, D::Error> {
    #[derive(Deserialize)]
    struct UniqueParams(#[serde(deserialize_with = "unique::keys")] Params);
    let shapes: IndexMap<String, UniqueParams> = unique::keys(deserializer)?;
    Ok(shapes.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// `shapes`: at least one, named as [`check_name`] wants, with identifier parameter names.
fn shapes_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let param = generator.subschema_for::<ParamValue>();
    schemars::json_schema!({
        "description": "Named parameter sets: integers, numbers, booleans or strings.",
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"pattern": NAME_PATTERN},
        "additionalProperties": {
            "type": "object",
            "propertyNames": {"pattern": IDENTIFIER_PATTERN},
            "additionalProperties": param
        }
    })
}

/// The JSON Schema of gates.yaml, for editors that validate and complete YAML.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).unwrap_or_default()
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => Error::Usage(format!(
                "{}: no such file (run gatekeeper next to a {DEFAULT_CONFIG_FILE}, or pass --config PATH)",
                path.display()
            )),
            _ => Error::io(path, source),
        })?;
        Config::from_yaml(&text, path)
    }

    /// Parses and validates `text` as if it had been read from `path`.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Config> {
        let invalid = |problems: Vec<String>| Error::Config {
            path: path.to_path_buf(),
            problems,
        };
        let raw = match yaml::parse::<RawConfig>(text) {
            Parsed::Valid(raw) => raw,
            Parsed::Invalid { problems, stand_in } => {
                let mut found: Vec<String> = problems
                    .iter()
                    .map(|problem| plain_message(&problem.to_string()))
                    .collect();
                // The parts that did read are still checked, so one pass lists everything.
                if let Some((raw, stand_ins)) = stand_in {
                    let stand_ins: Vec<String> = stand_ins.iter().map(|p| p.to_string()).collect();
                    found.extend(
                        validate(&raw)
                            .into_iter()
                            .filter(|(key, _)| !stand_ins.iter().any(|s| shadowed_by(key, s)))
                            .map(|(key, message)| format!("`{key}`: {message}")),
                    );
                }
                return Err(invalid(found));
            }
        };
        let problems = validate(&raw);
        if !problems.is_empty() {
            return Err(invalid(
                problems
                    .into_iter()
                    .map(|(key, message)| format!("`{key}`: {message}"))
                    .collect(),
            ));
        }
        let root = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Config {
            path: path.to_path_buf(),
            root,
            gate: raw.gate,
            timing: raw.timing,
            shapes: raw.shapes,
            kernels: raw.kernels,
            profile: raw.profile,
        })
    }

    /// Whether any kernel is a `cuda:` kernel, so the run needs a GPU.
    pub fn needs_gpu(&self) -> bool {
        self.kernels.iter().any(|kernel| kernel.cuda.is_some())
    }

    pub fn kernel(&self, name: &str) -> Option<&KernelSpec> {
        self.kernels.iter().find(|kernel| kernel.name == name)
    }

    /// A kernel by name, or one of its variants as `kernel@variant`.
    pub fn kernel_or_variant(&self, name: &str) -> Option<KernelSpec> {
        match name.split_once('@') {
            None => self.kernel(name).cloned(),
            Some((kernel, variant)) => {
                let kernel = self.kernel(kernel)?;
                let variant = kernel.variants.iter().find(|v| v.name == variant)?;
                Some(kernel.with_variant(variant))
            }
        }
    }

    /// Where baselines live in the working tree.
    pub fn baselines_dir(&self) -> PathBuf {
        self.root.join("baselines")
    }

    /// Where run records go.
    pub fn runs_dir(&self) -> PathBuf {
        self.root.join("runs")
    }
}

/// serde's messages with type names a YAML author knows.
fn plain_message(message: &str) -> String {
    const PLAIN: [(&str, &str); 8] = [
        (
            "data did not match any variant of untagged enum ParamValue",
            "expected a number, boolean or string",
        ),
        (
            "data did not match any variant of untagged enum Expr",
            "expected a number or an arithmetic expression in quotes",
        ),
        (
            "data did not match any variant of untagged enum ArgSpec",
            "expected a tensor name or a typed scalar such as {i32: N}",
        ),
        ("expected f64", "expected a number"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected u32", "expected a whole number >= 0"),
        ("expected usize", "expected a whole number >= 0"),
        ("expected a sequence", "expected a list"),
    ];
    let mut message = message.to_string();
    for (from, to) in PLAIN {
        message = message.replace(from, to);
    }
    message
}

/// Whether a semantic problem at `key` may come from the stand-in put at `stand_in` for a value
/// of the wrong type, rather than from the file: it lies inside the stand-in, or is checked
/// against it (kernels' shape lists and expressions against the shapes, peers against kernel
/// names, the rest of a `cuda` or `profile` block against its parts, targets against the metric
/// names).
fn shadowed_by(key: &str, stand_in: &str) -> bool {
    let under = |prefix: &str| {
        prefix.is_empty()
            || key == prefix
            || key.starts_with(&format!("{prefix}."))
            || key.starts_with(&format!("{prefix}["))
    };
    if under(stand_in) {
        return true;
    }
    if stand_in == "shapes" {
        return key.starts_with("kernels");
    }
    if stand_in.starts_with("shapes.") {
        return key.starts_with("kernels") && (key.contains(".cuda") || key.contains(".profile"));
    }
    if stand_in == "profile" || stand_in.starts_with("profile.metrics") {
        return key.contains(".profile.targets");
    }
    let Some(rest) = stand_in.strip_prefix("kernels") else {
        return false;
    };
    let in_kernel = rest
        .strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .map(|(index, field)| (index, field.trim_start_matches('.')));
    match in_kernel {
        None => true,
        Some((_, "" | "name")) => key.ends_with(".name") || key.contains(".peers["),
        Some((index, field)) => {
            let block = field.split(['.', '[']).next().unwrap_or_default();
            matches!(block, "cuda" | "profile") && under(&format!("kernels[{index}].{block}"))
        }
    }
}

/// Semantic checks: every problem, as (key path, message), section by section in file order.
fn validate(raw: &RawConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if raw.version != SCHEMA_VERSION {
        problems.push((
            "version".to_string(),
            format!(
                "unsupported schema version {} (this gatekeeper reads version {SCHEMA_VERSION})",
                raw.version
            ),
        ));
    }
    problems.extend(nested("gate", raw.gate.problems()));
    problems.extend(nested("timing", raw.timing.problems()));
    problems.extend(nested("shapes", shapes_problems(&raw.shapes)));
    if raw.kernels.is_empty() {
        problems.push((
            "kernels".to_string(),
            "must list at least one kernel".to_string(),
        ));
    }
    for (index, kernel) in raw.kernels.iter().enumerate() {
        let found = kernel.problems(&raw.kernels[..index], raw);
        problems.extend(nested(&format!("kernels[{index}]"), found));
    }
    problems.extend(nested("profile", raw.profile.problems()));
    problems
}

/// `problems` of one part of the file, with the part's key path put before each key (an
/// empty key is the part itself).
fn nested<K: AsRef<str>>(
    prefix: &str,
    problems: impl IntoIterator<Item = (K, String)>,
) -> Vec<(String, String)> {
    problems
        .into_iter()
        .map(|(key, message)| {
            let key = match key.as_ref() {
                "" => prefix.to_string(),
                key if key.starts_with('[') => format!("{prefix}{key}"),
                key => format!("{prefix}.{key}"),
            };
            (key, message)
        })
        .collect()
}

impl TimingSettings {
    /// Out-of-range settings as (key, message), like [`GateSettings::problems`].
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.warmup > 1_000_000 {
            problems.push((
                "warmup",
                format!("must be at most 1000000, got {}", self.warmup),
            ));
        }
        if !(5..=100_000).contains(&self.samples) {
            problems.push((
                "samples",
                format!(
                    "must be in [5, 100000], got {} (the t-test needs several samples a side)",
                    self.samples
                ),
            ));
        }
        problems
    }
}

/// The `shapes` map: plain names, identifier parameter names, finite numbers.
fn shapes_problems(shapes: &IndexMap<String, Params>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if shapes.is_empty() {
        problems.push((String::new(), "must name at least one shape".to_string()));
    }
    for (name, params) in shapes {
        if let Err(why) = check_name(name) {
            problems.push((name.clone(), format!("bad shape name: {why}")));
        }
        for (param, value) in params {
            let key = format!("{name}.{param}");
            if !is_identifier(param) {
                problems.push((
                    key.clone(),
                    "parameter names are letters, digits and _, not starting with a digit"
                        .to_string(),
                ));
            }
            if let ParamValue::Float(v) = value {
                if !v.is_finite() {
                    problems.push((key, format!("must be a finite number, got {v}")));
                }
            }
        }
    }
    problems
}

impl KernelSpec {
    /// This kernel's problems as (key relative to the kernel, message), checked against the
    /// kernels listed before it (for duplicate names) and the rest of the file.
    fn problems(&self, earlier: &[KernelSpec], raw: &RawConfig) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Err(why) = check_name(&self.name) {
            problems.push((
                "name".to_string(),
                format!("bad kernel name {:?}: {why}", self.name),
            ));
        } else if earlier.iter().any(|kernel| kernel.name == self.name) {
            problems.push((
                "name".to_string(),
                format!("duplicate kernel name {:?}", self.name),
            ));
        }
        let runs_on: Vec<(&str, &Params)> = self
            .shapes
            .iter()
            .filter_map(|shape| Some((shape.as_str(), raw.shapes.get(shape)?)))
            .collect();
        problems.extend(self.harness_problems(&runs_on));
        problems.extend(self.shape_list_problems(&raw.shapes));
        if !(self.timeout_s > 0.0 && self.timeout_s <= 86_400.0) {
            problems.push((
                "timeout_s".to_string(),
                format!("must be in (0, 86400] seconds, got {}", self.timeout_s),
            ));
        }
        for (index, peer) in self.peers.iter().enumerate() {
            let key = format!("peers[{index}]");
            if peer == &self.name {
                problems.push((key, "a kernel is not its own peer".to_string()));
            } else if !raw.kernels.iter().any(|kernel| &kernel.name == peer) {
                problems.push((key, format!("unknown kernel {peer:?}")));
            }
        }
        match (self.protocol, &self.cuda) {
            (Some(1 | 2) | None, None) | (None, Some(_)) => {}
            (Some(_), Some(_)) => problems.push((
                "protocol".to_string(),
                "applies to `command` harnesses; the CUDA runner speaks its own".to_string(),
            )),
            (Some(other), None) => problems.push((
                "protocol".to_string(),
                format!("must be 1 or 2, got {other}"),
            )),
        }
        if !self.inputs.is_empty() && self.cuda.is_some() {
            problems.push((
                "inputs".to_string(),
                "applies to `command` harnesses; a `cuda:` kernel's inputs are its sources"
                    .to_string(),
            ));
        }
        for (index, pattern) in self.inputs.iter().enumerate() {
            if let Err(err) = glob::Pattern::new(pattern) {
                problems.push((format!("inputs[{index}]"), format!("not a glob: {err}")));
            } else if std::path::Path::new(pattern).is_absolute() || pattern.contains("..") {
                problems.push((
                    format!("inputs[{index}]"),
                    "must stay inside the folder of gates.yaml".to_string(),
                ));
            }
        }
        match self.setup.as_ref().map(|argv| argv.first()) {
            Some(None) => problems.push(("setup".to_string(), "must not be empty".to_string())),
            Some(Some(program)) if program.trim().is_empty() => problems.push((
                "setup[0]".to_string(),
                "the program must not be blank".to_string(),
            )),
            _ => {}
        }
        problems.extend(env_problems(&self.env));
        if let Some(profile) = &self.profile {
            let found = profile.problems(self.cuda.is_some(), &runs_on, &raw.profile);
            problems.extend(nested("profile", found));
        }
        problems.extend(self.variant_problems(&runs_on));
        problems
    }

    /// Exactly one of `command` and `cuda`, and whichever it is, usable.
    fn harness_problems(&self, runs_on: &[(&str, &Params)]) -> Vec<(String, String)> {
        let problem = |key: &str, message: &str| vec![(key.to_string(), message.to_string())];
        match (&self.command, &self.cuda) {
            (Some(_), Some(_)) => problem(
                "command",
                "give either `command` (a harness) or `cuda` (a CUDA kernel), not both",
            ),
            (None, None) => problem("", "needs `command` (a harness) or `cuda` (a CUDA kernel)"),
            (Some(command), None) => match command.first() {
                None => problem("command", "must not be empty"),
                Some(program) if program.trim().is_empty() => {
                    problem("command[0]", "the program must not be blank")
                }
                Some(_) => Vec::new(),
            },
            (None, Some(cuda)) => nested("cuda", cuda.problems(runs_on)),
        }
    }

    /// At least one shape, each defined and listed once.
    fn shape_list_problems(&self, shapes: &IndexMap<String, Params>) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if self.shapes.is_empty() {
            problems.push((
                "shapes".to_string(),
                "must name at least one shape".to_string(),
            ));
        }
        let mut listed = HashSet::new();
        for (index, shape) in self.shapes.iter().enumerate() {
            let key = format!("shapes[{index}]");
            if !shapes.contains_key(shape) {
                let known: Vec<&str> = shapes.keys().map(String::as_str).collect();
                problems.push((
                    key,
                    format!(
                        "unknown shape {shape:?} (shapes defined: {})",
                        known.join(", ")
                    ),
                ));
            } else if !listed.insert(shape.as_str()) {
                problems.push((key, format!("shape {shape:?} listed twice")));
            }
        }
        problems
    }
}

/// Kernel and shape names become file names and report keys, so they are kept plain.
fn check_name(name: &str) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > 100 {
        return Err("must be at most 100 characters");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err("must not start with '.' or '-'");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err("use letters, digits, '_', '-' and '.' only");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
version: 1
gate:
  regression_threshold: 0.10
  min_regressed_shapes: 2
  alpha: 0.05
timing: {warmup: 10, samples: 50}
shapes:
  mission: {B: 2, H: 16, S: 1024, D: 64}
  small: {B: 1, H: 8, S: 256, D: 64, dtype: fp16}
kernels:
  - name: my_kernel
    command: ["python3", "bench/my_kernel.py"]
    shapes: [mission, small]
"#;

    fn load(text: &str) -> Result<Config> {
        Config::from_yaml(text, Path::new("gates.yaml"))
    }

    fn problems(text: &str) -> Vec<String> {
        match load(text) {
            Err(Error::Config { problems, .. }) => problems,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn valid_config_loads_with_order_kept() {
        let config = load(VALID).unwrap();
        assert_eq!(config.kernels[0].name, "my_kernel");
        assert_eq!(config.kernels[0].timeout_s, 600.0);
        let keys: Vec<&String> = config.shapes["mission"].keys().collect();
        assert_eq!(keys, ["B", "H", "S", "D"]);
        assert_eq!(
            config.shapes["small"]["dtype"],
            ParamValue::Text("fp16".into())
        );
        assert_eq!(config.gate.outlier_fence, Some(1.5));
        assert_eq!(config.timing.seed, 42);
        assert_eq!(config.root, PathBuf::from("."));
    }

    #[test]
    fn defaults_fill_missing_sections() {
        let config = load(
            "version: 1\nshapes: {s: {N: 1}}\nkernels: [{name: k, command: [x], shapes: [s]}]\n",
        )
        .unwrap();
        assert_eq!(config.gate, GateSettings::default());
        assert_eq!(config.timing, TimingSettings::default());
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let text = VALID.replace(
            "    shapes: [mission, small]",
            "    shapes: [mission]\n    shpes: [x]",
        );
        let problems = problems(&text);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("line 15"), "{problems:?}");
        assert!(problems[0].contains("kernels[0]"), "{problems:?}");
        assert!(
            problems[0].contains("unknown field `shpes`"),
            "{problems:?}"
        );
    }

    #[test]
    fn wrong_type_names_key() {
        let text = VALID.replace("samples: 50", "samples: many");
        let problems = problems(&text);
        assert!(problems[0].contains("`timing.samples`"), "{problems:?}");
        assert!(problems[0].contains("line 7"), "{problems:?}");
    }

    #[test]
    fn semantic_problems_are_all_collected() {
        let text = r#"
version: 2
gate: {regression_threshold: -1, min_regressed_shapes: 0, alpha: 0.9}
timing: {samples: 1}
shapes:
  mission: {B: 2}
kernels:
  - name: a
    command: []
    shapes: [mission, nope, mission]
    timeout_s: 0
  - name: a
    command: [x]
    shapes: [mission]
  - name: "../escape"
    command: [x]
    shapes: []
"#;
        let problems = problems(text);
        let expect = [
            "`version`: unsupported schema version 2",
            "`gate.regression_threshold`",
            "`gate.min_regressed_shapes`",
            "`gate.alpha`",
            "`timing.samples`",
            "`kernels[0].command`: must not be empty",
            "`kernels[0].shapes[1]`: unknown shape \"nope\"",
            "`kernels[0].shapes[2]`: shape \"mission\" listed twice",
            "`kernels[0].timeout_s`",
            "`kernels[1].name`: duplicate kernel name",
            "`kernels[2].name`: bad kernel name",
            "`kernels[2].shapes`: must name at least one shape",
        ];
        for needle in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(needle)),
                "missing {needle:?} in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn every_wrong_type_is_listed_with_the_checks_of_the_rest() {
        let text = r#"version: 1
gate: {regression_threshold: high, min_regressed_shapes: two, alpha: 0.9}
timing: {warmup: x, samples: 0, seed: -1}
shapes:
  mission: {B: [2], H: 16}
kernels:
  - name: a
    command: python3 bench.py
    shapes: [mission, huge]
    timeout_s: forever
    env: {A: [1]}
  - name: b
    command: [x]
    shapes: mission
    peers: [nobody]
    profile: {spills: none}
"#;
        let problems = problems(text);
        let expect = [
            "line 2: `gate.regression_threshold`: invalid type: string \"high\", expected a number",
            "line 2: `gate.min_regressed_shapes`: invalid type: string \"two\"",
            "line 3: `timing.warmup`: invalid type: string \"x\"",
            "line 3: `timing.seed`: invalid type: integer `-1`",
            "line 5: `shapes.mission.B`: expected a number, boolean or string",
            "line 8: `kernels[0].command`: invalid type: string \"python3 bench.py\", expected a list",
            "line 10: `kernels[0].timeout_s`: invalid type: string \"forever\"",
            "line 11: `kernels[0].env.A`: invalid type: sequence, expected a string",
            "line 14: `kernels[1].shapes`: invalid type: string \"mission\", expected a list",
            "line 16: `kernels[1].profile.spills`: invalid type: string \"none\"",
            // The parts that read are still checked; values that did not are not judged again.
            "`gate.alpha`: must be in (0, 0.5], got 0.9",
            "`timing.samples`: must be in [5, 100000], got 0",
            "`kernels[0].shapes[1]`: unknown shape \"huge\"",
            "`kernels[1].peers[0]`: unknown kernel \"nobody\"",
        ];
        for (problem, needle) in problems.iter().zip(expect) {
            assert!(problem.starts_with(needle), "{needle:?} in {problems:#?}");
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let config = load(&format!("\u{feff}{VALID}")).unwrap();
        assert_eq!(config.kernels[0].name, "my_kernel");
        // Not read as part of the first key: a problem there still names `version`.
        let problems = problems(&format!(
            "\u{feff}{}",
            VALID.trim_start().replace("version: 1", "version: x")
        ));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].starts_with("line 1: `version`"), "{problems:?}");
    }

    #[test]
    fn stand_ins_hide_only_the_checks_that_depend_on_them() {
        assert!(shadowed_by("kernels[0].shapes[1]", "shapes"));
        assert!(!shadowed_by("kernels[0].shapes[1]", "shapes.mission.B"));
        assert!(shadowed_by(
            "kernels[0].cuda.launches[0].grid[0]",
            "shapes.mission.B"
        ));
        assert!(shadowed_by("kernels[1].peers[0]", "kernels[0].name"));
        assert!(!shadowed_by("kernels[1].timeout_s", "kernels[0].name"));
        assert!(shadowed_by(
            "kernels[0].cuda.launches[0].args[1]",
            "kernels[0].cuda.tensors"
        ));
        assert!(!shadowed_by(
            "kernels[1].cuda.trials",
            "kernels[0].cuda.tensors"
        ));
        assert!(shadowed_by(
            "kernels[0].profile.targets.x",
            "profile.metrics.x"
        ));
        assert!(!shadowed_by("gate.alpha", "timing.samples"));
        assert!(shadowed_by("gate.alpha", ""));
    }

    #[test]
    fn schema_patterns_agree_with_the_name_checks() {
        let schema = serde_json::json!({"properties": {
            "name": {"pattern": NAME_PATTERN},
            "identifier": {"pattern": IDENTIFIER_PATTERN},
        }});
        let validator = jsonschema::validator_for(&schema).unwrap();
        let (longest, too_long) = ("x".repeat(100), "x".repeat(101));
        for name in [
            "a", "A.b-c_1", "_x", "9", "x9", ".hidden", "-x", "", "a/b", "a b", "a\n", "é",
            &longest, &too_long,
        ] {
            let valid = |key: &str| validator.is_valid(&serde_json::json!({ key: name }));
            assert_eq!(valid("name"), check_name(name).is_ok(), "{name:?}");
            assert_eq!(valid("identifier"), is_identifier(name), "{name:?}");
        }
    }

    #[test]
    fn malformed_yaml_is_an_error_not_a_panic() {
        for text in [
            "",
            "version: [1",
            "- just\n- a list",
            "version: 1\nshapes: {}\n",
        ] {
            assert!(!problems(text).is_empty());
        }
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        for (text, key) in [
            ("version: 1\nshapes: {s: {N: 1}, s: {N: 2}}\nkernels: [{name: k, command: [x], shapes: [s]}]\n", "`shapes`"),
            ("version: 1\nshapes: {s: {N: 1, N: 2}}\nkernels: [{name: k, command: [x], shapes: [s]}]\n", "`shapes.s`"),
            ("version: 1\nshapes: {s: {N: 1}}\nkernels: [{name: k, command: [x], shapes: [s], env: {A: a, A: b}}]\n", "`kernels[0].env`"),
        ] {
            let problems = problems(text);
            assert!(problems[0].contains("duplicate key"), "{problems:?}");
            assert!(problems[0].contains(key), "{problems:?}");
        }
    }

    #[test]
    fn null_fence_disables_outlier_filtering() {
        let text = VALID.replace("alpha: 0.05", "alpha: 0.05\n  outlier_fence: null");
        assert_eq!(load(&text).unwrap().gate.outlier_fence, None);
    }

    #[test]
    fn cuda_and_profile_blocks_report_under_their_keys_in_file_order() {
        let text = r#"
version: 1
shapes:
  s: {N: 8}
  t: {N: 16, bad-name: 1}
kernels:
  - name: broken_block
    shapes: [s]
    cuda:
      source: ../outside.cu
      tensors:
        1x: {dtype: f32, shape: [], output: true, scratch: true, init: {constant: 1, normal: [0, 1]}}
      launches:
        - {entry: sax-py, grid: [1, 1, 1, 1], block: [], args: [nope, {}], stream: 9}
      reference:
        launches: [{entry: ref, grid: [1], block: [1], args: [], stream: 1}]
      tolerance: {atol: -1, rtol: 0, rel_l2: 2}
      trials: 0
    profile:
      min_occupancy_pct: 101
      targets: {bogus: {}, sm_pct: {min: 2, max: 1}}
      flops: "N * Q"
  - name: unresolved
    shapes: [s, t]
    cuda:
      source: k.cu
      tensors: {out: {dtype: f32, shape: [M], output: true}}
      launches: [{entry: k, grid: ["N / 3"], block: [1], args: [out]}]
      reference: {launches: [{entry: r, grid: [1], block: [1], args: [out]}]}
      tolerance: {atol: 0, rtol: 0}
  - name: harness
    command: [x]
    shapes: [s]
    env: {1A: b}
    profile: {spills: 0, targets: {sm_pct: {min: 1}}, bytes: -1}
profile:
  metrics: {1x: "a b"}
  peaks: {h100: {tflops: 0, bandwidth_gbs: 1}}
"#;
        // In file order: each block's checks, then its expressions on every shape it runs on.
        let expect = [
            "`shapes.t.bad-name`: parameter names are letters, digits and _, not starting with a digit",
            "`kernels[0].cuda.source`: \"../outside.cu\" leaves the repository; '..' is not allowed",
            "`kernels[0].cuda.tensors.1x`: tensor names are identifiers",
            "`kernels[0].cuda.tensors.1x`: a tensor is an output or scratch, not both",
            "`kernels[0].cuda.tensors.1x.shape`: must have at least one dimension",
            "`kernels[0].cuda.tensors.1x.init`: give exactly one of uniform: [low, high], normal: [mean, std], constant: value",
            "`kernels[0].cuda.launches[0].entry`: \"sax-py\" is not a C identifier",
            "`kernels[0].cuda.launches[0].grid`: must have 1 to 3 dimensions",
            "`kernels[0].cuda.launches[0].block`: must have 1 to 3 dimensions",
            "`kernels[0].cuda.launches[0].stream`: must be at most 8",
            "`kernels[0].cuda.launches[0].args[0]`: unknown tensor \"nope\" (scalars are written {i32: expr}, {f32: expr}, ...)",
            "`kernels[0].cuda.launches[0].args[1]`: a scalar names exactly one type: {i32: expr}, {i64: ..}, {u32: ..}, {u64: ..}, {f32: ..} or {f64: ..}",
            "`kernels[0].cuda.reference.launches[0].stream`: the reference runs on stream 0",
            "`kernels[0].cuda.tolerance`: atol and rtol must be finite and non-negative",
            "`kernels[0].cuda.tolerance.rel_l2`: must be in (0, 1], got 2",
            "`kernels[0].cuda.trials`: must be in [1, 100], got 0",
            "`kernels[0].profile.min_occupancy_pct`: must be in [0, 100], got 101",
            "`kernels[0].profile.targets.bogus`: unknown metric \"bogus\" (known: duration_ns, sm_pct, memory_pct, dram_pct, dram_bytes_per_s, tensor_pipe_pct, occupancy_pct, bank_conflicts, 1x; add others under the top-level profile.metrics)",
            "`kernels[0].profile.targets.bogus`: give `min`, `max` or both",
            "`kernels[0].profile.targets.sm_pct`: min 2 is above max 1",
            "`kernels[0].profile.flops`: \"N * Q\": unknown parameter Q (the shape has N) (shape s)",
            "`kernels[1].cuda.tensors.out.shape[0]`: \"M\": unknown parameter M (the shape has N) (shape s)",
            "`kernels[1].cuda.launches[0].grid[0]`: N / 3 = 2.6666666666666665 is not a whole number (shape s)",
            "`kernels[1].cuda.tensors.out.shape[0]`: \"M\": unknown parameter M (the shape has N, bad-name) (shape t)",
            "`kernels[1].cuda.launches[0].grid[0]`: N / 3 = 5.333333333333333 is not a whole number (shape t)",
            "`kernels[2].env.1A`: environment variable names are letters, digits and _",
            "`kernels[2].profile.spills`: resource limits (spills, tensor_cores, max_registers, min_occupancy_pct) need a `cuda` kernel: gatekeeper reads them from the compiled code",
            "`kernels[2].profile.targets`: Nsight Compute targets need a `cuda` kernel (gatekeeper profiles the kernels it launches)",
            "`kernels[2].profile.bytes`: is -1 on shape s: must be a finite number >= 0",
            "`profile.peaks.h100.tflops`: must be a positive number, got 0",
            "`profile.metrics.1x`: metric names are letters, digits and _",
            "`profile.metrics.1x`: expected one Nsight Compute metric name, got \"a b\"",
        ];
        assert_eq!(problems(text), expect);
    }

    #[test]
    fn missing_file_is_a_usage_error_naming_it() {
        let err = Config::load(Path::new("/nonexistent/gates.yaml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/gates.yaml"));
        assert!(err.to_string().contains("--config"));
    }
}
