//! The plan: which kernel × shape pairs a command measures, in config order.

use crate::config::{Config, KernelSpec, Params};
use crate::error::{Error, Result};

/// One kernel on one shape.
#[derive(Debug, Clone)]
pub struct Job<'c> {
    /// Position in the full plan, before sharding.
    pub index: usize,
    pub kernel: &'c KernelSpec,
    pub shape: &'c str,
    pub params: &'c Params,
}

/// Optional `--kernels` / `--shapes` filters; `None` means all.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub kernels: Option<Vec<String>>,
    pub shapes: Option<Vec<String>>,
    /// `Some(Shard { index: 2, count: 4 })`: only the second of four slices.
    pub shard: Option<Shard>,
}

/// More slices than any runner pool would use; bounds what a merge has to account for.
pub const MAX_SHARDS: usize = 1024;

/// One of `count` deterministic slices of the plan: jobs are dealt round-robin, so every
/// slice gets a similar mix of kernels and shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("{text:?} is not K/N with 1 <= K <= N (e.g. 2/4)");
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = index.trim().parse().map_err(|_| bad())?;
        let count: usize = count.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        if count > MAX_SHARDS {
            return Err(format!("{text:?}: at most {MAX_SHARDS} shards"));
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
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
                .map(move |shape| (kernel, shape))
        })
        .enumerate()
        .map(|(index, (kernel, shape))| Job {
            index,
            kernel,
            shape,
            params: &config.shapes[shape],
        })
        .collect();
    if jobs.is_empty() {
        return Err(Error::Usage(
            "--kernels/--shapes: the selection matches no kernel × shape pair".to_string(),
        ));
    }
    Ok(match selection.shard {
        Some(shard) => jobs
            .into_iter()
            .filter(|job| job.index % shard.count == shard.index - 1)
            .collect(),
        None => jobs,
    })
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
            shard: None,
        };
        assert_eq!(pairs(&plan(&config, &selection).unwrap()), ["k2/a"]);
    }

    #[test]
    fn shards_partition_the_plan() {
        let config = config();
        let shard = |index, count| Selection {
            shard: Some(Shard { index, count }),
            ..Selection::default()
        };
        assert_eq!(
            pairs(&plan(&config, &shard(1, 2)).unwrap()),
            ["k1/a", "k2/c"]
        );
        assert_eq!(
            pairs(&plan(&config, &shard(2, 2)).unwrap()),
            ["k1/b", "k2/a"]
        );
        let indices: Vec<usize> = plan(&config, &shard(2, 3))
            .unwrap()
            .iter()
            .map(|j| j.index)
            .collect();
        assert_eq!(indices, [1]);
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/2", "3/2", "2", "a/b", "1/0", "1/3000000000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_names_are_usage_errors() {
        let config = config();
        let selection = Selection {
            kernels: Some(vec!["k3".into()]),
            ..Selection::default()
        };
        let err = plan(&config, &selection).unwrap_err().to_string();
        assert!(err.contains("--kernels") && err.contains("\"k3\""), "{err}");
        let selection = Selection {
            kernels: Some(vec!["k1".into()]),
            shapes: Some(vec!["c".into()]),
            shard: None,
        };
        let err = plan(&config, &selection).unwrap_err().to_string();
        assert!(err.contains("matches no"), "{err}");
    }
}
