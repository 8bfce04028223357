//! How a result's timing is stored: as the flat fields `ratio`, `ratio_ci`, `p_value` and, per
//! side, `baseline_*` / `candidate_*` (`mean_us`, `stddev_us`, `median_us`, `n`, `dropped`,
//! `samples_us`), `null` where they do not apply. Scripts read these fields, and formats 1 and 2
//! share them, so the typed [`Side`]s and [`Test`] are written and read through this layout.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Kept, Side, Sides, Test};

#[derive(Serialize, Deserialize)]
struct TestFields {
    ratio: Option<f64>,
    ratio_ci: Option<[f64; 2]>,
    p_value: Option<f64>,
}

/// `ShapeResult::test`, as `#[serde(flatten, with = "flat::test")]`.
pub mod test {
    use super::*;

    pub fn serialize<S: Serializer>(test: &Option<Test>, serializer: S) -> Result<S::Ok, S::Error> {
        TestFields {
            ratio: test.map(|t| t.ratio),
            ratio_ci: test.map(|t| t.ci),
            p_value: test.map(|t| t.p_value),
        }
        .serialize(serializer)
    }

    /// A test is all three fields; a record missing any of them has none.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Test>, D::Error> {
        let fields = TestFields::deserialize(deserializer)?;
        Ok(match (fields.ratio, fields.ratio_ci, fields.p_value) {
            (Some(ratio), Some(ci), Some(p_value)) => Some(Test { ratio, ci, p_value }),
            _ => None,
        })
    }
}

/// The order is the stored one: each statistic for both sides, then the samples.
#[derive(Serialize, Deserialize)]
struct SideFields {
    baseline_mean_us: Option<f64>,
    candidate_mean_us: Option<f64>,
    baseline_stddev_us: Option<f64>,
    candidate_stddev_us: Option<f64>,
    baseline_median_us: Option<f64>,
    candidate_median_us: Option<f64>,
    baseline_n: Option<usize>,
    candidate_n: Option<usize>,
    baseline_dropped: Option<usize>,
    candidate_dropped: Option<usize>,
    #[serde(default)]
    baseline_samples_us: Vec<f64>,
    #[serde(default)]
    candidate_samples_us: Vec<f64>,
}

/// One side's fields, whatever their prefix.
struct Fields {
    mean_us: Option<f64>,
    stddev_us: Option<f64>,
    median_us: Option<f64>,
    n: Option<usize>,
    dropped: Option<usize>,
    samples_us: Vec<f64>,
}

impl Fields {
    fn of(side: &Option<Side>) -> Fields {
        let kept = side.as_ref().and_then(|side| side.kept);
        Fields {
            mean_us: kept.map(|k| k.mean_us),
            stddev_us: kept.map(|k| k.stddev_us),
            median_us: kept.map(|k| k.median_us),
            n: kept.map(|k| k.n),
            dropped: kept.map(|k| k.dropped),
            samples_us: side
                .as_ref()
                .map(|side| side.samples_us.clone())
                .unwrap_or_default(),
        }
    }

    /// A side is summarised where its mean was stored (a record edited by hand may lack the
    /// rest: `NaN` is written back as `null`); it exists where it was summarised or has samples.
    fn side(self) -> Option<Side> {
        let kept = self.mean_us.map(|mean_us| Kept {
            mean_us,
            stddev_us: self.stddev_us.unwrap_or(f64::NAN),
            median_us: self.median_us.unwrap_or(f64::NAN),
            n: self.n.unwrap_or_default(),
            dropped: self.dropped.unwrap_or_default(),
        });
        (kept.is_some() || !self.samples_us.is_empty()).then_some(Side {
            samples_us: self.samples_us,
            kept,
        })
    }
}

impl Serialize for Sides {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (baseline, candidate) = (Fields::of(&self.baseline), Fields::of(&self.candidate));
        SideFields {
            baseline_mean_us: baseline.mean_us,
            candidate_mean_us: candidate.mean_us,
            baseline_stddev_us: baseline.stddev_us,
            candidate_stddev_us: candidate.stddev_us,
            baseline_median_us: baseline.median_us,
            candidate_median_us: candidate.median_us,
            baseline_n: baseline.n,
            candidate_n: candidate.n,
            baseline_dropped: baseline.dropped,
            candidate_dropped: candidate.dropped,
            baseline_samples_us: baseline.samples_us,
            candidate_samples_us: candidate.samples_us,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Sides {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = SideFields::deserialize(deserializer)?;
        let baseline = Fields {
            mean_us: fields.baseline_mean_us,
            stddev_us: fields.baseline_stddev_us,
            median_us: fields.baseline_median_us,
            n: fields.baseline_n,
            dropped: fields.baseline_dropped,
            samples_us: fields.baseline_samples_us,
        };
        let candidate = Fields {
            mean_us: fields.candidate_mean_us,
            stddev_us: fields.candidate_stddev_us,
            median_us: fields.candidate_median_us,
            n: fields.candidate_n,
            dropped: fields.candidate_dropped,
            samples_us: fields.candidate_samples_us,
        };
        Ok(Sides {
            baseline: baseline.side(),
            candidate: candidate.side(),
        })
    }
}
