//! The `cuda:` block of a kernel in gates.yaml: everything needed to compile, feed, check and
//! launch a CUDA C++ kernel without host code. [`resolve`] turns it into concrete sizes for one
//! shape; config loading resolves every shape up front so mistakes surface before any GPU work.

use std::collections::HashSet;
use std::path::{Component, Path};

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::dtype::DType;
use crate::shape::{is_identifier, Expr, Params};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CudaSpec {
    /// CUDA C++ source, relative to the folder of gates.yaml and inside it.
    #[schemars(regex(pattern = RELATIVE_PATTERN), extend("not" = {"type": "string", "pattern": LEAVING_PATTERN}))]
    pub source: String,
    /// Extra NVRTC options. The architecture defaults to the device's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// Device buffers, in order; inputs get seeded random data, outputs a NaN sentinel.
    #[serde(deserialize_with = "crate::unique::keys")]
    #[schemars(extend(
        "minProperties" = 1,
        "propertyNames" = {"pattern": crate::shape::IDENTIFIER_PATTERN}
    ))]
    pub tensors: IndexMap<String, TensorSpec>,
    /// The launches that make up one run of the kernel, in order.
    #[schemars(length(min = 1))]
    pub launches: Vec<LaunchSpec>,
    /// The kernel it is checked against, computing every output in f32.
    pub reference: ReferenceSpec,
    pub tolerance: Tolerance,
    /// Correctness trials, each with fresh inputs.
    #[serde(default = "default_trials")]
    #[schemars(range(min = 1, max = 100))]
    pub trials: u32,
    /// `cold` flushes L2 before every timed sample; `hot` keeps what the previous run left.
    #[serde(default)]
    pub l2: L2Mode,
}

fn default_trials() -> u32 {
    3
}

/// For the JSON Schema, what [`check_source_path`] wants: a non-empty path that does not start
/// at the root, and no `..` component (a string matching the second is refused).
const RELATIVE_PATTERN: &str = "^[^/]";
const LEAVING_PATTERN: &str = "(^|/)\\.\\.(/|$)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TensorSpec {
    pub dtype: DType,
    /// Dimensions as expressions over the shape's parameters.
    #[schemars(length(min = 1))]
    pub shape: Vec<Expr>,
    #[serde(default)]
    pub output: bool,
    /// Working memory for the kernel: neither initialised nor checked.
    #[serde(default)]
    pub scratch: bool,
    /// Distribution of an input's values (ignored for outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
}

/// `{uniform: [low, high]}`, `{normal: [mean, std]}` or `{constant: value}`: one key. Written
/// as a struct because serde_yaml spells enums as YAML tags, which nobody writes by hand.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct InitSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<f64>,
}

/// How an input's values are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Uniform([f64; 2]),
    Normal([f64; 2]),
    Constant(f64),
}

impl InitSpec {
    fn to_init(self) -> Result<Init, String> {
        match (self.uniform, self.normal, self.constant) {
            (Some([lo, hi]), None, None) if (hi - lo).is_finite() && lo < hi => {
                Ok(Init::Uniform([lo, hi]))
            }
            (Some(_), None, None) => Err("uniform needs finite [low, high] with low < high".into()),
            (None, Some([mean, std]), None) if mean.is_finite() && std.is_finite() && std > 0.0 => {
                Ok(Init::Normal([mean, std]))
            }
            (None, Some(_), None) => {
                Err("normal needs a finite mean and a positive standard deviation".into())
            }
            (None, None, Some(value)) if value.is_finite() => Ok(Init::Constant(value)),
            (None, None, Some(_)) => Err("constant must be finite".into()),
            _ => Err(
                "give exactly one of uniform: [low, high], normal: [mean, std], constant: value"
                    .into(),
            ),
        }
    }
}

impl Default for Init {
    fn default() -> Self {
        Init::Uniform([-1.0, 1.0])
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchSpec {
    /// `extern "C"` entry point. `{NAME}` is replaced by the shape's parameter NAME, so one
    /// kernel can pick a specialisation per shape: `attention_d{D}_causal{CAUSAL}`.
    #[schemars(regex(pattern = "^[{}]*[A-Za-z_][A-Za-z0-9_{}]*$"))]
    pub entry: String,
    #[schemars(length(min = 1, max = 3))]
    pub grid: Vec<Expr>,
    #[schemars(length(min = 1, max = 3))]
    pub block: Vec<Expr>,
    #[serde(default = "zero")]
    pub shared_bytes: Expr,
    pub args: Vec<ArgSpec>,
    /// Which stream it runs on (0, the default, or an auxiliary stream 1, 2, ...). Every stream
    /// is joined before a sample ends, so work moved to another stream is still timed.
    #[serde(default)]
    #[schemars(range(max = MAX_STREAM))]
    pub stream: u32,
}

fn zero() -> Expr {
    Expr::Int(0)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceSpec {
    /// Defaults to the kernel's own source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = RELATIVE_PATTERN), extend("not" = {"type": "string", "pattern": LEAVING_PATTERN}))]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    #[schemars(length(min = 1))]
    pub launches: Vec<LaunchSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    #[schemars(range(min = 0))]
    pub atol: f64,
    #[schemars(range(min = 0))]
    pub rtol: f64,
    /// Largest relative L2 error ‖got − want‖₂ / ‖want‖₂ of an output; defaults to
    /// [`Tolerance::DEFAULT_REL_L2`] or `rtol`, whichever is larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("exclusiveMinimum" = 0), range(max = 1))]
    pub rel_l2: Option<f64>,
}

impl Tolerance {
    pub const DEFAULT_REL_L2: f64 = 1e-2;

    /// The norm-wise limit in force: `rel_l2` when set, else the larger of 1e-2 and `rtol`
    /// (outputs whose every element is off by rtol are off by rtol norm-wise too, so the default
    /// does not reject what a looser rtol was chosen to accept).
    pub fn rel_l2_limit(&self) -> f64 {
        self.rel_l2
            .unwrap_or_else(|| Self::DEFAULT_REL_L2.max(self.rtol))
    }
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum L2Mode {
    #[default]
    Cold,
    Hot,
}

/// A kernel argument: a tensor's name (its device pointer) or a typed scalar expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ArgSpec {
    Tensor(String),
    Scalar(ScalarSpec),
}

/// `{i32: expr}`, `{f32: expr}`, ...: one key naming the C type of the parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1, "maxProperties" = 1))]
pub struct ScalarSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i32: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i64: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u32: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub u64: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f32: Option<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f64: Option<Expr>,
}

/// A kernel with every expression evaluated for one shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub tensors: Vec<ResolvedTensor>,
    pub launches: Vec<ResolvedLaunch>,
    pub reference: Vec<ResolvedLaunch>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedTensor {
    pub name: String,
    pub dtype: DType,
    pub dims: Vec<usize>,
    pub numel: usize,
    pub output: bool,
    pub scratch: bool,
    pub init: Init,
}

impl ResolvedTensor {
    pub fn bytes(&self) -> usize {
        self.numel * self.dtype.size()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedLaunch {
    pub entry: String,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_bytes: u32,
    pub args: Vec<Arg>,
    pub stream: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    /// Index into [`Resolved::tensors`].
    Tensor(usize),
    I32(i32),
    I64(i64),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64),
}

/// Most elements one tensor may have (16 Gi).
const MAX_NUMEL: i64 = 1 << 34;
/// Most auxiliary streams a kernel may use.
const MAX_STREAM: u32 = 8;

impl CudaSpec {
    /// Every problem as (key relative to the block, message): its own checks first, then every
    /// expression evaluated for every shape the kernel `runs_on`, so a typo fails at load time
    /// rather than on the GPU.
    pub fn problems(&self, runs_on: &[(&str, &Params)]) -> Vec<(String, String)> {
        let problems = check(self);
        if !problems.is_empty() {
            return problems;
        }
        let mut seen = HashSet::new();
        let mut problems = Vec::new();
        for (shape, params) in runs_on {
            if let Err(found) = resolve(self, params) {
                for (key, message) in found {
                    if seen.insert((key.clone(), message.clone())) {
                        problems.push((key, format!("{message} (shape {shape})")));
                    }
                }
            }
        }
        problems
    }
}

/// Checks that do not depend on the shape; each problem is `(key, message)`, the key relative
/// to the `cuda` block.
fn check(spec: &CudaSpec) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    for (key, source) in [
        ("source", Some(&spec.source)),
        ("reference.source", spec.reference.source.as_ref()),
    ] {
        if let Some(Err(why)) = source.map(|source| check_source_path(source)) {
            problems.push((key.to_string(), why));
        }
    }
    problems.extend(tensors_problems(&spec.tensors));
    for (group, launches) in [
        ("launches", &spec.launches),
        ("reference.launches", &spec.reference.launches),
    ] {
        if launches.is_empty() {
            problems.push((group.to_string(), "must list at least one launch".into()));
        }
        for (index, launch) in launches.iter().enumerate() {
            let found = launch.problems(&spec.tensors, group == "reference.launches");
            problems.extend(
                found
                    .into_iter()
                    .map(|(key, message)| (format!("{group}[{index}].{key}"), message)),
            );
        }
    }
    let tolerance = spec.tolerance;
    if !(tolerance.atol >= 0.0
        && tolerance.rtol >= 0.0
        && tolerance.atol.is_finite()
        && tolerance.rtol.is_finite())
    {
        problems.push((
            "tolerance".into(),
            "atol and rtol must be finite and non-negative".into(),
        ));
    }
    if let Some(rel_l2) = tolerance.rel_l2 {
        if !(rel_l2 > 0.0 && rel_l2 <= 1.0) {
            problems.push((
                "tolerance.rel_l2".into(),
                format!("must be in (0, 1], got {rel_l2}"),
            ));
        }
    }
    if !(1..=100).contains(&spec.trials) {
        problems.push((
            "trials".into(),
            format!("must be in [1, 100], got {}", spec.trials),
        ));
    }
    problems
}

/// The `tensors` map: at least one output, identifier names, a shape and a usable `init` each.
fn tensors_problems(tensors: &IndexMap<String, TensorSpec>) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    if tensors.is_empty() {
        problems.push(("tensors".into(), "must declare at least one tensor".into()));
    }
    if !tensors.values().any(|t| t.output) {
        problems.push((
            "tensors".into(),
            "must have at least one tensor with `output: true`: there is nothing to check".into(),
        ));
    }
    for (name, tensor) in tensors {
        if !is_identifier(name) {
            problems.push((
                format!("tensors.{name}"),
                "tensor names are identifiers".into(),
            ));
        }
        if tensor.output && tensor.scratch {
            problems.push((
                format!("tensors.{name}"),
                "a tensor is an output or scratch, not both".into(),
            ));
        }
        if tensor.shape.is_empty() {
            problems.push((
                format!("tensors.{name}.shape"),
                "must have at least one dimension".into(),
            ));
        }
        if let Some(Err(why)) = tensor.init.map(InitSpec::to_init) {
            problems.push((format!("tensors.{name}.init"), why));
        }
    }
    problems
}

impl LaunchSpec {
    /// Problems as (key relative to the launch, message); a `reference` launch must run on
    /// stream 0.
    fn problems(
        &self,
        tensors: &IndexMap<String, TensorSpec>,
        reference: bool,
    ) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !is_identifier(&self.entry.replace(['{', '}'], "")) {
            problems.push((
                "entry".into(),
                format!("{:?} is not a C identifier", self.entry),
            ));
        }
        for (key, dims) in [("grid", &self.grid), ("block", &self.block)] {
            if dims.is_empty() || dims.len() > 3 {
                problems.push((key.into(), "must have 1 to 3 dimensions".into()));
            }
        }
        if self.stream > MAX_STREAM {
            problems.push(("stream".into(), format!("must be at most {MAX_STREAM}")));
        }
        if reference && self.stream != 0 {
            problems.push(("stream".into(), "the reference runs on stream 0".into()));
        }
        for (index, arg) in self.args.iter().enumerate() {
            let key = format!("args[{index}]");
            match arg {
                ArgSpec::Tensor(name) if !tensors.contains_key(name) => problems.push((
                    key,
                    format!("unknown tensor {name:?} (scalars are written {{i32: expr}}, {{f32: expr}}, ...)"),
                )),
                ArgSpec::Scalar(scalar) if scalar.typed().is_none() => problems.push((
                    key,
                    "a scalar names exactly one type: {i32: expr}, {i64: ..}, {u32: ..}, {u64: ..}, {f32: ..} or {f64: ..}".into(),
                )),
                _ => {}
            }
        }
        problems
    }
}

/// Evaluates every expression for one shape. Assumes [`check`] found nothing.
pub fn resolve(spec: &CudaSpec, params: &Params) -> Result<Resolved, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut tensors = Vec::new();
    for (name, tensor) in &spec.tensors {
        let mut dims = Vec::new();
        for (index, dim) in tensor.shape.iter().enumerate() {
            match dim.eval_int(params, 1, MAX_NUMEL) {
                Ok(value) => dims.push(value as usize),
                Err(why) => problems.push((format!("tensors.{name}.shape[{index}]"), why)),
            }
        }
        let numel = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
        match numel {
            Some(numel) if numel as u64 <= MAX_NUMEL as u64 => tensors.push(ResolvedTensor {
                name: name.clone(),
                dtype: tensor.dtype,
                dims,
                numel,
                output: tensor.output,
                scratch: tensor.scratch,
                init: tensor
                    .init
                    .map(InitSpec::to_init)
                    .transpose()
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            }),
            _ => problems.push((
                format!("tensors.{name}.shape"),
                format!("more than {MAX_NUMEL} elements"),
            )),
        }
    }
    let index: IndexMap<&str, usize> = spec
        .tensors
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let mut resolve_launches = |group: &str, launches: &[LaunchSpec]| -> Vec<ResolvedLaunch> {
        launches
            .iter()
            .enumerate()
            .filter_map(|(i, launch)| {
                resolve_launch(launch, params, &index)
                    .map_err(|(key, why)| problems.push((format!("{group}[{i}].{key}"), why)))
                    .ok()
            })
            .collect()
    };
    let launches = resolve_launches("launches", &spec.launches);
    let reference = resolve_launches("reference.launches", &spec.reference.launches);
    if problems.is_empty() {
        Ok(Resolved {
            tensors,
            launches,
            reference,
        })
    } else {
        Err(problems)
    }
}

fn resolve_launch(
    launch: &LaunchSpec,
    params: &Params,
    tensors: &IndexMap<&str, usize>,
) -> Result<ResolvedLaunch, (String, String)> {
    let dims = |key: &str, exprs: &[Expr], max: i64| -> Result<[u32; 3], (String, String)> {
        let mut out = [1u32; 3];
        for (i, expr) in exprs.iter().enumerate() {
            out[i] = expr
                .eval_int(params, 1, max)
                .map_err(|why| (format!("{key}[{i}]"), why))? as u32;
        }
        Ok(out)
    };
    let grid = dims("grid", &launch.grid, i64::from(u32::MAX))?;
    if grid[1] > 65_535 || grid[2] > 65_535 {
        return Err((
            "grid".into(),
            "the y and z dimensions are at most 65535".into(),
        ));
    }
    let block = dims("block", &launch.block, 1024)?;
    if block[2] > 64 {
        return Err(("block".into(), "the z dimension is at most 64".into()));
    }
    if block.iter().map(|b| u64::from(*b)).product::<u64>() > 1024 {
        return Err(("block".into(), "more than 1024 threads per block".into()));
    }
    let shared_bytes = launch
        .shared_bytes
        .eval_int(params, 0, 1 << 20)
        .map_err(|why| ("shared_bytes".to_string(), why))? as u32;
    let mut args = Vec::new();
    for (i, arg) in launch.args.iter().enumerate() {
        let key = || format!("args[{i}]");
        let resolved = match arg {
            ArgSpec::Tensor(name) => Arg::Tensor(tensors[name.as_str()]),
            ArgSpec::Scalar(scalar) => {
                resolve_scalar(scalar, params).map_err(|why| (key(), why))?
            }
        };
        args.push(resolved);
    }
    Ok(ResolvedLaunch {
        entry: substitute(&launch.entry, params).map_err(|why| ("entry".to_string(), why))?,
        grid,
        block,
        shared_bytes,
        args,
        stream: launch.stream as usize,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScalarType {
    I32,
    I64,
    U32,
    U64,
    F32,
    F64,
}

impl ScalarSpec {
    /// The one type named, with its expression.
    fn typed(&self) -> Option<(ScalarType, &Expr)> {
        let named: Vec<(ScalarType, &Expr)> = [
            (ScalarType::I32, &self.i32),
            (ScalarType::I64, &self.i64),
            (ScalarType::U32, &self.u32),
            (ScalarType::U64, &self.u64),
            (ScalarType::F32, &self.f32),
            (ScalarType::F64, &self.f64),
        ]
        .into_iter()
        .filter_map(|(ty, expr)| expr.as_ref().map(|e| (ty, e)))
        .collect();
        match named.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

fn resolve_scalar(scalar: &ScalarSpec, params: &Params) -> Result<Arg, String> {
    let (ty, e) = scalar
        .typed()
        .ok_or_else(|| "a scalar names exactly one type".to_string())?;
    Ok(match ty {
        ScalarType::I32 => {
            Arg::I32(e.eval_int(params, i64::from(i32::MIN), i64::from(i32::MAX))? as i32)
        }
        ScalarType::I64 => Arg::I64(e.eval_int(params, -(1 << 53), 1 << 53)?),
        ScalarType::U32 => Arg::U32(e.eval_int(params, 0, i64::from(u32::MAX))? as u32),
        ScalarType::U64 => Arg::U64(e.eval_int(params, 0, 1 << 53)? as u64),
        ScalarType::F32 => {
            let value = e.eval(params)? as f32;
            if !value.is_finite() {
                return Err(format!("{e} does not fit in an f32"));
            }
            Arg::F32(value)
        }
        ScalarType::F64 => Arg::F64(e.eval(params)?),
    })
}

/// Replaces each `{NAME}` in an entry point with the shape's parameter.
fn substitute(entry: &str, params: &Params) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = entry;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("{entry:?}: unclosed {{"));
        };
        let name = &rest[open + 1..open + close];
        match params.get(name) {
            Some(value) => out.push_str(&value.to_string()),
            None => return Err(format!("{entry:?}: the shape has no parameter {name}")),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    if is_identifier(&out) {
        Ok(out)
    } else {
        Err(format!("{entry:?} becomes {out:?}, not a C identifier"))
    }
}

/// Sources are named relative to gates.yaml and may not leave its folder.
fn check_source_path(source: &str) -> Result<(), String> {
    let path = Path::new(source);
    if source.is_empty() {
        return Err("must name a file".into());
    }
    if path.is_absolute() {
        return Err(format!(
            "{source:?} is absolute; name it relative to gates.yaml"
        ));
    }
    if path.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(format!(
            "{source:?} leaves the repository; '..' is not allowed"
        ));
    }
    Ok(())
}

/// Streams a resolved kernel uses, stream 0 included.
pub fn stream_count(launches: &[ResolvedLaunch]) -> usize {
    let used: HashSet<usize> = launches.iter().map(|l| l.stream).collect();
    used.into_iter().max().unwrap_or(0) + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::ParamValue;

    #[test]
    fn entries_take_shape_parameters() {
        let mut params = Params::new();
        params.insert("D".into(), ParamValue::Int(128));
        params.insert("CAUSAL".into(), ParamValue::Int(1));
        assert_eq!(
            substitute("attn_d{D}_c{CAUSAL}", &params).unwrap(),
            "attn_d128_c1"
        );
        assert_eq!(substitute("plain", &params).unwrap(), "plain");
        assert!(substitute("attn_{X}", &params)
            .unwrap_err()
            .contains("no parameter X"));
        assert!(substitute("attn_{D", &params)
            .unwrap_err()
            .contains("unclosed"));
    }
}
