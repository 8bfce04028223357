//! The shape's device buffers, and the seeded inputs drawn into them.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

use super::error::{Result, RunnerError};
use crate::cuda::driver::Buffer;
use crate::cuda::spec::{Init, Resolved};

/// Device buffers: the kernel's tensors, and an f32 twin of each output for the reference.
pub struct Buffers {
    pub tensors: Vec<Buffer>,
    pub reference_outputs: Vec<Option<Buffer>>,
    /// What was uploaded to each input, to prove the kernel left it alone.
    pub inputs: RefCell<Vec<Option<Vec<u8>>>>,
}

impl Buffers {
    pub fn new(resolved: &Resolved) -> Result<Buffers> {
        let allocate = |what: &'static str, tensor: &str, bytes: usize, guard: &[u8]| {
            Buffer::new(bytes, guard).map_err(|source| RunnerError::Allocate {
                what,
                tensor: tensor.to_string(),
                source,
            })
        };
        let mut tensors = Vec::new();
        let mut reference_outputs = Vec::new();
        for tensor in &resolved.tensors {
            tensors.push(allocate(
                "tensor",
                &tensor.name,
                tensor.bytes(),
                &tensor.dtype.guard(),
            )?);
            reference_outputs.push(if tensor.output {
                let twin = tensor.dtype.reference_type();
                Some(allocate(
                    "reference",
                    &tensor.name,
                    tensor.numel * twin.size(),
                    &twin.guard(),
                )?)
            } else {
                None
            });
        }
        Ok(Buffers {
            inputs: RefCell::new(vec![None; tensors.len()]),
            tensors,
            reference_outputs,
        })
    }

    /// Seeded random inputs, a fresh draw per seed and tensor.
    pub fn fill_inputs(&self, resolved: &Resolved, seed: u64) -> Result<()> {
        let mut inputs = self.inputs.borrow_mut();
        for (index, tensor) in resolved.tensors.iter().enumerate() {
            if tensor.output || tensor.scratch {
                continue;
            }
            let mut rng =
                StdRng::seed_from_u64(seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let values = generate(&mut rng, tensor.init, tensor.numel)?;
            let bytes = tensor.dtype.encode(&values);
            self.tensors[index].upload(&bytes)?;
            inputs[index] = Some(bytes);
        }
        Ok(())
    }
}

fn generate(rng: &mut StdRng, init: Init, n: usize) -> Result<Vec<f32>> {
    Ok(match init {
        Init::Uniform([lo, hi]) => (0..n).map(|_| rng.random_range(lo..hi) as f32).collect(),
        Init::Normal([mean, std]) => {
            let normal = Normal::new(mean, std).map_err(RunnerError::NormalInit)?;
            (0..n).map(|_| normal.sample(rng) as f32).collect()
        }
        Init::Constant(value) => vec![value as f32; n],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_seeded_and_fresh_per_seed() {
        let draw = |seed| generate(&mut StdRng::seed_from_u64(seed), Init::default(), 8).unwrap();
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(3).iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(
            generate(&mut StdRng::seed_from_u64(0), Init::Constant(0.0), 3).unwrap(),
            [0.0; 3]
        );
    }
}
