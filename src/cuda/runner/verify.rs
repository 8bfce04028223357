//! Gate 2, correctness: the kernel against its reference on fresh inputs, element-wise and
//! norm-wise, with guard bands and unchanged inputs checked on the way.

use rayon::prelude::*;

use super::error::{Result, RunnerError};
use super::launch::fork_and_joins;
use super::Bench;
use crate::cuda::dtype::DType;
use crate::cuda::spec::Tolerance;

/// The result of comparing one run against the reference.
#[derive(Debug, Default)]
pub struct Check {
    pub total: usize,
    pub mismatches: usize,
    pub unwritten: usize,
    pub max_abs: f64,
    pub max_rel: f64,
    /// The largest ‖got − want‖₂ / ‖want‖₂ over the outputs (0 where not computed).
    pub rel_l2: f64,
    pub first: Option<String>,
    /// Failures that are not element mismatches: a modified input, a write out of bounds.
    pub problems: Vec<String>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.mismatches == 0 && self.problems.is_empty()
    }

    pub fn absorb(&mut self, other: &Check) {
        self.total = self.total.max(other.total);
        self.max_abs = self.max_abs.max(other.max_abs);
        self.max_rel = self.max_rel.max(other.max_rel);
        self.rel_l2 = self.rel_l2.max(other.rel_l2);
    }

    pub fn describe(&self) -> String {
        let mut parts = self.problems.clone();
        if self.mismatches > 0 {
            let mut text = format!(
                "{} / {} elements incorrect",
                thousands(self.mismatches),
                thousands(self.total)
            );
            if self.unwritten > 0 {
                text.push_str(&format!(" ({} never written)", thousands(self.unwritten)));
            }
            if let Some(first) = &self.first {
                text.push_str(&format!("; first: {first}"));
            }
            parts.push(text);
        }
        parts.join("; ")
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Bench<'_> {
    /// One correctness check: fresh inputs from `seed`, poisoned outputs, kernel, reference.
    pub fn check(&self, seed: u64) -> Result<Check> {
        self.buffers.fill_inputs(self.resolved, seed)?;
        self.verify()
    }

    /// Poisons the outputs, runs the kernel and the reference on the current inputs, and
    /// compares.
    fn verify(&self) -> Result<Check> {
        let mut check = Check::default();
        self.poison_outputs()?;
        let (fork, joins) = fork_and_joins(self.streams)?;
        self.candidate.enqueue(self.streams, &fork, &joins)?;
        self.gpu.synchronize().map_err(RunnerError::KernelFailed)?;
        self.inspect_tensors(&mut check)?;
        self.reference.enqueue(&self.streams[..1], &fork, &joins)?;
        self.gpu
            .synchronize()
            .map_err(RunnerError::ReferenceFailed)?;
        for (index, tensor) in self.resolved.tensors.iter().enumerate() {
            let Some(twin) = &self.buffers.reference_outputs[index] else {
                continue;
            };
            let got = self.buffers.tensors[index].download()?;
            let want = twin.download()?;
            check.compare_output(&tensor.name, tensor.dtype, &got, &want, self.tolerance)?;
        }
        Ok(check)
    }

    /// Fills every output, and its reference twin, with its type's sentinel.
    fn poison_outputs(&self) -> Result<()> {
        for (index, tensor) in self.resolved.tensors.iter().enumerate() {
            if tensor.output {
                self.buffers.tensors[index].fill(&tensor.dtype.sentinel())?;
                if let Some(twin) = &self.buffers.reference_outputs[index] {
                    twin.fill(&tensor.dtype.reference_type().sentinel())?;
                }
            }
        }
        Ok(())
    }

    /// After the kernel: writes past a tensor's ends, and inputs it changed (restored, so the
    /// reference sees the real inputs).
    fn inspect_tensors(&self, check: &mut Check) -> Result<()> {
        let inputs = self.buffers.inputs.borrow();
        for (index, tensor) in self.resolved.tensors.iter().enumerate() {
            let buffer = &self.buffers.tensors[index];
            let (before, after) = buffer.guard_damage()?;
            if before + after > 0 {
                check.problems.push(format!(
                    "wrote outside tensor `{}`: {before} byte(s) before its start, {after} after its end",
                    tensor.name
                ));
                buffer.reset_guards()?;
            }
            if let Some(uploaded) = &inputs[index] {
                let now = buffer.download()?;
                if now != *uploaded {
                    let changed = now.iter().zip(uploaded).filter(|(a, b)| a != b).count();
                    check.problems.push(format!(
                        "input `{}` was modified by the kernel ({} bytes changed)",
                        tensor.name,
                        thousands(changed)
                    ));
                    buffer.upload(uploaded)?;
                }
            }
        }
        Ok(())
    }
}

impl Check {
    /// Compares one output's device bytes (`got`, of `dtype`) with the reference's (`want`, of
    /// `dtype.reference_type()`): element-wise, then norm-wise.
    ///
    /// The element-wise test `|got − want| ≤ atol + rtol·|want|` accepts anything where every
    /// |want| is below atol (a softmax over 65,536 columns, with atol = 1e-2, accepts zeros). The
    /// norm-wise test ‖got − want‖₂ / ‖want‖₂ ≤ `rel_l2` cannot be passed that way: an all-zero,
    /// constant or rescaled output is off by a large fraction of the answer's norm. i32 outputs
    /// are compared exactly and have no norm test.
    pub fn compare_output(
        &mut self,
        name: &str,
        dtype: DType,
        got_raw: &[u8],
        want_raw: &[u8],
        tolerance: Tolerance,
    ) -> Result<()> {
        reference_wrote_everything(name, dtype, want_raw)?;
        let exact = dtype == DType::I32;
        let (got_size, want_size) = (dtype.size(), dtype.reference_type().size());
        let elements = (got_raw.len() / got_size).min(want_raw.len() / want_size);
        // Tens of millions of elements: compared in blocks in parallel, merged in order.
        let tally = (0..elements.div_ceil(COMPARE_BLOCK))
            .into_par_iter()
            .map(|block| {
                let start = block * COMPARE_BLOCK;
                let end = elements.min(start + COMPARE_BLOCK);
                Tally::of(
                    dtype,
                    &got_raw[start * got_size..end * got_size],
                    &want_raw[start * want_size..end * want_size],
                    start,
                    tolerance,
                )
            })
            .reduce(Tally::default, Tally::merge);
        if let Some((element, value)) = tally.not_finite {
            return Err(RunnerError::ReferenceNotFinite {
                value,
                output: name.to_string(),
                element,
            });
        }
        self.total += tally.total;
        self.mismatches += tally.mismatches;
        self.unwritten += tally.unwritten;
        self.max_abs = self.max_abs.max(tally.max_abs);
        self.max_rel = self.max_rel.max(tally.max_rel);
        if self.first.is_none() {
            self.first = tally
                .first
                .map(|(element, g, w)| format!("{name}[{element}] = {g}, expected {w}"));
        }
        let (error_sq, want_sq) = (tally.error_sq, tally.want_sq);
        if exact || want_sq == 0.0 {
            // Nothing to scale by: an all-zero answer is judged element by element.
            return Ok(());
        }
        let rel_l2 = (error_sq / want_sq).sqrt();
        self.rel_l2 = self.rel_l2.max(rel_l2);
        let limit = tolerance.rel_l2_limit();
        if rel_l2 > limit && rel_l2.is_finite() {
            self.problems.push(format!(
                "`{name}` is off by {} of the reference's norm (relative L2 error {rel_l2:.3e} > {limit:.0e}): \
                 it fails the norm-wise check even where elements are within atol",
                percent(rel_l2)
            ));
        }
        Ok(())
    }
}

/// Elements compared by one task.
const COMPARE_BLOCK: usize = 1 << 16;

/// The comparison of a run of elements, merged with its neighbours' into the whole output's.
#[derive(Debug, Default)]
struct Tally {
    total: usize,
    mismatches: usize,
    unwritten: usize,
    max_abs: f64,
    max_rel: f64,
    error_sq: f64,
    want_sq: f64,
    /// The first mismatch: element, got, expected.
    first: Option<(usize, f64, f64)>,
    /// The first element where the reference is not finite, and its value.
    not_finite: Option<(usize, f64)>,
}

impl Tally {
    /// Elements `offset..` of an output: `got_raw` in `dtype`, `want_raw` in its reference type.
    fn of(
        dtype: DType,
        got_raw: &[u8],
        want_raw: &[u8],
        offset: usize,
        tolerance: Tolerance,
    ) -> Tally {
        let got = dtype.decode(got_raw);
        let want = dtype.reference_type().decode(want_raw);
        let sentinel = dtype.sentinel();
        let untouched = got_raw
            .chunks_exact(sentinel.len())
            .map(|chunk| chunk == sentinel.as_slice());
        let exact = dtype == DType::I32;
        let mut tally = Tally::default();
        for (index, ((g, w), unwritten)) in got.iter().zip(&want).zip(untouched).enumerate() {
            let element = offset + index;
            if !w.is_finite() {
                tally.not_finite = Some((element, *w));
                break;
            }
            tally.total += 1;
            let abs = (g - w).abs();
            let rel = if *w == 0.0 {
                if abs == 0.0 {
                    0.0
                } else {
                    f64::INFINITY
                }
            } else {
                abs / w.abs()
            };
            let allowed = if exact {
                0.0
            } else {
                tolerance.atol + tolerance.rtol * w.abs()
            };
            let bad = unwritten || !g.is_finite() || abs > allowed;
            if g.is_finite() && !unwritten {
                tally.max_abs = tally.max_abs.max(abs);
                tally.max_rel = tally.max_rel.max(rel);
                tally.error_sq += abs * abs;
            } else {
                tally.max_abs = f64::INFINITY;
                tally.max_rel = f64::INFINITY;
                tally.error_sq = f64::INFINITY;
            }
            tally.want_sq += w * w;
            if bad {
                tally.mismatches += 1;
                tally.unwritten += usize::from(unwritten);
                if tally.first.is_none() {
                    tally.first = Some((element, *g, *w));
                }
            }
        }
        tally
    }

    /// Both runs as one; the earlier element wins where each names one.
    fn merge(a: Tally, b: Tally) -> Tally {
        let earlier = |x: Option<(usize, f64, f64)>, y: Option<(usize, f64, f64)>| match (x, y) {
            (Some(x), Some(y)) => Some(if x.0 <= y.0 { x } else { y }),
            (x, y) => x.or(y),
        };
        let not_finite = match (a.not_finite, b.not_finite) {
            (Some(x), Some(y)) => Some(if x.0 <= y.0 { x } else { y }),
            (x, y) => x.or(y),
        };
        Tally {
            total: a.total + b.total,
            mismatches: a.mismatches + b.mismatches,
            unwritten: a.unwritten + b.unwritten,
            max_abs: a.max_abs.max(b.max_abs),
            max_rel: a.max_rel.max(b.max_rel),
            error_sq: a.error_sq + b.error_sq,
            want_sq: a.want_sq + b.want_sq,
            first: earlier(a.first, b.first),
            not_finite,
        }
    }
}

/// The reference's buffer is poisoned too: an element it left alone is its fault, not the
/// kernel's (for an i32 output the poison, i32::MIN, would read as a finite answer).
fn reference_wrote_everything(name: &str, dtype: DType, want_raw: &[u8]) -> Result<()> {
    let sentinel = dtype.reference_type().sentinel();
    match want_raw
        .par_chunks_exact(sentinel.len())
        .position_first(|chunk| chunk == sentinel.as_slice())
    {
        Some(element) => Err(RunnerError::ReferenceUnwritten {
            output: name.to_string(),
            element,
        }),
        None => Ok(()),
    }
}

/// `0.42` as "42 %", with enough digits for small shares.
fn percent(share: f64) -> String {
    let pct = share * 100.0;
    if pct >= 10.0 {
        format!("{pct:.0} %")
    } else {
        format!("{pct:.2} %")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A softmax row over 65,536 columns: every probability is far below atol = 1e-2.
    fn softmax_row() -> Vec<f32> {
        let logits: Vec<f32> = (0..65_536)
            .map(|i| ((i * 7919) % 200) as f32 / 100.0 - 1.0)
            .collect();
        let total: f32 = logits.iter().map(|x| x.exp()).sum();
        logits.iter().map(|x| x.exp() / total).collect()
    }

    fn judge(got: &[f32], want: &[f32], tolerance: Tolerance) -> Check {
        let mut check = Check::default();
        check
            .compare_output(
                "out",
                DType::F32,
                &DType::F32.encode(got),
                &DType::F32.encode(want),
                tolerance,
            )
            .unwrap();
        check
    }

    const LOOSE: Tolerance = Tolerance {
        atol: 1e-2,
        rtol: 1e-2,
        rel_l2: None,
    };

    #[test]
    fn zero_constant_or_rescaled_outputs_fail_the_norm_check() {
        let want = softmax_row();
        let mean = 1.0 / want.len() as f32;
        let cheats: [(&str, Vec<f32>); 3] = [
            ("zeros", vec![0.0; want.len()]),
            ("constant", vec![mean; want.len()]),
            ("scaled", want.iter().map(|x| x * 0.9).collect()),
        ];
        for (name, got) in cheats {
            let check = judge(&got, &want, LOOSE);
            // Every element is within atol: only the norm-wise check can see it.
            assert_eq!(check.mismatches, 0, "{name}");
            assert!(!check.passed(), "{name} passed: {check:?}");
            assert!(
                check.describe().contains("relative L2 error"),
                "{}",
                check.describe()
            );
            assert!(check.rel_l2 > 0.05, "{name}: {}", check.rel_l2);
        }
        let zeros = judge(&vec![0.0; want.len()], &want, LOOSE);
        assert!((zeros.rel_l2 - 1.0).abs() < 1e-9);
    }

    #[test]
    fn the_right_answer_with_rounding_error_passes_the_norm_check() {
        let want = softmax_row();
        // f16 rounding of every element (subnormal in f16 here): ~1e-3 relative.
        let got: Vec<f32> = want
            .iter()
            .map(|x| half::f16::from_f32(*x).to_f32())
            .collect();
        let check = judge(&got, &want, LOOSE);
        assert!(check.passed(), "{}", check.describe());
        assert!(
            check.rel_l2 > 0.0 && check.rel_l2 < 5e-3,
            "{}",
            check.rel_l2
        );
        // The limit is a key of its own.
        let strict = Tolerance {
            rel_l2: Some(1e-5),
            ..LOOSE
        };
        assert!(!judge(&got, &want, strict).passed());
        // An all-zero answer has no norm to scale by: element-wise only.
        assert!(judge(&[0.0, 0.0], &[0.0, 0.0], LOOSE).passed());
    }

    #[test]
    fn the_default_norm_limit_follows_a_looser_rtol() {
        assert_eq!(LOOSE.rel_l2_limit(), 1e-2);
        let loose = Tolerance { rtol: 0.1, ..LOOSE };
        assert_eq!(loose.rel_l2_limit(), 0.1);
    }

    #[test]
    fn i32_outputs_are_compared_exactly_beyond_f32_precision() {
        // 2^24 + 1 has no f32: through f32 it reads as 2^24, so an off-by-one passed.
        let want = [16_777_217i32, 5];
        let got = [16_777_216i32, 5];
        let bytes = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let mut check = Check::default();
        check
            .compare_output("idx", DType::I32, &bytes(&got), &bytes(&want), LOOSE)
            .unwrap();
        assert_eq!(check.mismatches, 1, "{check:?}");
        assert!(check
            .describe()
            .contains("idx[0] = 16777216, expected 16777217"));
        let mut same = Check::default();
        same.compare_output("idx", DType::I32, &bytes(&want), &bytes(&want), LOOSE)
            .unwrap();
        assert!(same.passed());
    }

    #[test]
    fn an_element_the_reference_never_wrote_is_the_references_fault() {
        // i32::MIN is the poison of an i32 reference buffer: finite, so it must be looked for.
        let bytes = |v: &[i32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let err = Check::default()
            .compare_output(
                "idx",
                DType::I32,
                &bytes(&[1, 2]),
                &bytes(&[1, i32::MIN]),
                LOOSE,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the reference never wrote idx[1]: it must write every element of every output"
        );
        let mut want = DType::F32.encode(&[1.0]);
        want.extend(DType::F32.sentinel());
        let err = Check::default()
            .compare_output(
                "out",
                DType::F32,
                &DType::F32.encode(&[1.0, 2.0]),
                &want,
                LOOSE,
            )
            .unwrap_err();
        assert!(err.to_string().contains("never wrote out[1]"), "{err}");
    }

    #[test]
    fn counts_read_like_the_seed_report() {
        let check = Check {
            total: 32_768,
            mismatches: 32_616,
            unwritten: 0,
            first: Some("out[0] = NaN, expected 0.5".into()),
            ..Check::default()
        };
        assert_eq!(
            check.describe(),
            "32,616 / 32,768 elements incorrect; first: out[0] = NaN, expected 0.5"
        );
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(999), "999");
    }
}

#[cfg(test)]
mod bench {
    use super::*;
    use std::time::Instant;

    /// Host-side cost of one correctness check of the FP8 attention's `stress` shape.
    #[test]
    #[ignore = "a timing, not a test: cargo test --release -- --ignored host_cost --nocapture"]
    fn host_cost() {
        let n = 4 * 32 * 4096 * 64;
        let resolved = crate::cuda::spec::Resolved {
            tensors: (0..3)
                .map(|i| crate::cuda::spec::ResolvedTensor {
                    name: format!("t{i}"),
                    dtype: DType::Fp8E4m3,
                    dims: vec![n],
                    numel: n,
                    output: false,
                    scratch: false,
                    init: crate::cuda::spec::Init::default(),
                })
                .collect(),
            launches: vec![],
            reference: vec![],
        };
        let begun = Instant::now();
        let drawn = super::super::inputs::draw(&resolved, 42).unwrap();
        eprintln!(
            "draw + encode 3 × {n}: {:.2} s",
            begun.elapsed().as_secs_f64()
        );
        assert_eq!(drawn.len(), 3);
        let got = DType::F16.encode(&vec![0.5f32; n]);
        let want = DType::F32.encode(&vec![0.5f32; n]);
        let begun = Instant::now();
        let mut check = Check::default();
        check
            .compare_output("out", DType::F16, &got, &want, LOOSE_BENCH)
            .unwrap();
        eprintln!("compare {n}: {:.2} s", begun.elapsed().as_secs_f64());
        assert!(check.passed());
    }

    const LOOSE_BENCH: Tolerance = Tolerance {
        atol: 1e-2,
        rtol: 1e-2,
        rel_l2: None,
    };
}
