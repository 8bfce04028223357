//! The plan: which kernel × shape pairs a command measures, in config order.

use crate::config::{Config, KernelSpec, Params};
use crate::error::{Error, Result};

/// One kernel on one shape.
#[derive(Debug, Clone)]
pub struct Job<'c> {
    pub kernel: &'c KernelSpec,
    pub shape: &'c str,
    pub params: &'c Params,
}

/// Optional `--kernels` / `--shapes` filters; `None` means all.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub kernels: Option<Vec<String>>,
    pub shapes: Option<Vec<String>>,
}

/// Expands the config into jobs. A filter naming something the config does not define is a
/// usage error: a typo must not silently check nothing.
pub fn plan<'c>(config: &'c Config, selection: &Selection) -> Result<Vec<Job<'c>>> {
    if let Some(kernels) = &selection.kernels {
        for name in kernels {
            if config.kernel(name).is_none() {
                return Err(Error::Usage(format!(
                    "--kernels: no kernel named {name:?} in {} (kernels: {})",
                    config.path.display(),
                    config
                        .kernels
                        .iter()
                        .map(|k| k.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    if let Some(shapes) = &selection.shapes {
        for name in shapes {
            if !config.shapes.contains_key(name) {
                return Err(Error::Usage(format!(
                    "--shapes: no shape named {name:?} in {} (shapes: {})",
                    config.path.display(),
                    config
                        .shapes
                        .keys()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    let wanted = |filter: &Option<Vec<String>>, name: &str| {
        filter
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    };
    let jobs: Vec<Job> = config
        .kernels
        .iter()
        .filter(|kernel| wanted(&selection.kernels, &kernel.name))
        .flat_map(|kernel| {
            kernel
                .shapes
                .iter()
                .filter(|shape| wanted(&selection.shapes, shape))
                .map(move |shape| Job {
                    kernel,
                    shape,
                    params: &config.shapes[shape],
                })
        })
        .collect();
    if jobs.is_empty() {
        return Err(Error::Usage(
            "--kernels/--shapes: the selection matches no kernel × shape pair".to_string(),
        ));
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config() -> Config {
        Config::from_yaml(
            r#"
version: 1
shapes: {a: {N: 1}, b: {N: 2}, c: {N: 3}}
kernels:
  - {name: k1, command: [x], shapes: [a, b]}
  - {name: k2, command: [x], shapes: [c, a]}
"#,
            Path::new("gates.yaml"),
        )
        .unwrap()
    }

    fn pairs(jobs: &[Job]) -> Vec<String> {
        jobs.iter()
            .map(|job| format!("{}/{}", job.kernel.name, job.shape))
            .collect()
    }

    #[test]
    fn all_pairs_in_config_order() {
        let config = config();
        let jobs = plan(&config, &Selection::default()).unwrap();
        assert_eq!(pairs(&jobs), ["k1/a", "k1/b", "k2/c", "k2/a"]);
    }

    #[test]
    fn filters_intersect() {
        let config = config();
        let selection = Selection {
            kernels: Some(vec!["k2".into()]),
            shapes: Some(vec!["a".into()]),
        };
        assert_eq!(pairs(&plan(&config, &selection).unwrap()), ["k2/a"]);
    }

    #[test]
    fn unknown_names_are_usage_errors() {
        let config = config();
        let selection = Selection {
            kernels: Some(vec!["k3".into()]),
            shapes: None,
        };
        let err = plan(&config, &selection).unwrap_err().to_string();
        assert!(err.contains("--kernels") && err.contains("\"k3\""), "{err}");
        let selection = Selection {
            kernels: Some(vec!["k1".into()]),
            shapes: Some(vec!["c".into()]),
        };
        let err = plan(&config, &selection).unwrap_err().to_string();
        assert!(err.contains("matches no"), "{err}");
    }
}
