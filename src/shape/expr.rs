//! Arithmetic over a shape's parameters, for tensor shapes, launch dimensions and scalar
//! arguments: `B*H*S*D`, `ceil(S / 64)`, `1 / sqrt(D)`.
//!
//! Parsing and evaluation are exmex's (f64 arithmetic with `+ - * / ^`, `floor`, `ceil`,
//! `round`, `sqrt`, `abs`, `a min b`, `a max b`, ...). Integer results are exact below 2^53.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ParamValue, Params};

/// An expression as written in gates.yaml: a number or a string of arithmetic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Expr {
    Int(i64),
    Float(f64),
    Text(String),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Int(v) => write!(f, "{v}"),
            Expr::Float(v) => write!(f, "{v}"),
            Expr::Text(v) => write!(f, "{v}"),
        }
    }
}

impl Expr {
    /// Evaluates with the shape's parameters as variables.
    pub fn eval(&self, params: &Params) -> Result<f64, String> {
        let text = match self {
            Expr::Int(v) => return Ok(*v as f64),
            Expr::Float(v) => return Ok(*v),
            Expr::Text(text) => text,
        };
        use exmex::Express;
        let parsed =
            exmex::parse::<f64>(text).map_err(|err| format!("cannot parse {text:?}: {err}"))?;
        let mut values = Vec::new();
        for name in parsed.var_names() {
            let value = match params.get(name) {
                Some(ParamValue::Int(v)) => *v as f64,
                Some(ParamValue::Float(v)) => *v,
                Some(ParamValue::Bool(v)) => f64::from(u8::from(*v)),
                Some(ParamValue::Text(_)) => {
                    return Err(format!("{text:?}: parameter {name} is not a number"))
                }
                None => {
                    let known: Vec<&str> = params.keys().map(String::as_str).collect();
                    return Err(format!(
                        "{text:?}: unknown parameter {name} (the shape has {})",
                        known.join(", ")
                    ));
                }
            };
            values.push(value);
        }
        let value = parsed
            .eval(&values)
            .map_err(|err| format!("cannot evaluate {text:?}: {err}"))?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(format!("{text:?} evaluates to {value}"))
        }
    }

    /// Evaluates to a whole number in `[min, max]`.
    pub fn eval_int(&self, params: &Params, min: i64, max: i64) -> Result<i64, String> {
        let value = self.eval(params)?;
        if value.fract() != 0.0 {
            return Err(format!("{self} = {value} is not a whole number"));
        }
        if value < min as f64 || value > max as f64 {
            return Err(format!("{self} = {value} is outside [{min}, {max}]"));
        }
        Ok(value as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        let mut params = Params::new();
        params.insert("B".into(), ParamValue::Int(2));
        params.insert("S".into(), ParamValue::Int(1000));
        params.insert("D".into(), ParamValue::Int(64));
        params.insert("dtype".into(), ParamValue::Text("fp16".into()));
        params
    }

    #[test]
    fn evaluates_over_parameters() {
        let text = |s: &str| Expr::Text(s.into());
        assert_eq!(text("B*S*D").eval_int(&params(), 0, i64::MAX), Ok(128_000));
        assert_eq!(text("ceil(S / 64)").eval_int(&params(), 1, 1 << 31), Ok(16));
        assert_eq!(text("S min 512").eval_int(&params(), 1, 1 << 31), Ok(512));
        assert_eq!(text("1 / sqrt(D)").eval(&params()), Ok(0.125));
        assert_eq!(Expr::Int(7).eval_int(&params(), 0, 10), Ok(7));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let text = |s: &str| Expr::Text(s.into());
        let err = text("B*H").eval(&params()).unwrap_err();
        assert!(err.contains("unknown parameter H"), "{err}");
        let err = text("dtype*2").eval(&params()).unwrap_err();
        assert!(err.contains("not a number"), "{err}");
        let err = text("S / 3").eval_int(&params(), 0, 100_000).unwrap_err();
        assert!(err.contains("not a whole number"), "{err}");
        let err = text("B - 5").eval_int(&params(), 1, 10).unwrap_err();
        assert!(err.contains("outside [1, 10]"), "{err}");
        assert!(text("B / 0").eval(&params()).is_err());
        assert!(text("(B").eval(&params()).is_err());
    }
}
