//! A shape's parameters and the arithmetic over them: the vocabulary that gates.yaml, the CUDA
//! runner, gate 4 and the baseline store all speak, kept free of any of them.

mod expr;

use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use expr::Expr;

/// What [`is_identifier`] accepts, for the JSON Schema: editors then reject what gatekeeper does.
pub(crate) const IDENTIFIER_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// A shape's parameters, in the order the file lists them.
pub type Params = IndexMap<String, ParamValue>;

/// A shape parameter: harnesses receive these as a JSON object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Text(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v}"),
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Text(v) => write!(f, "{v}"),
        }
    }
}

/// Whether `name` can be a variable in an [`Expr`]: parameter names are, and tensor, metric and
/// environment-variable names follow the same rule.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
