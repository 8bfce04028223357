//! The shape's device buffers, and the seeded inputs drawn into them.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;

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
        for (index, bytes) in draw(resolved, seed)? {
            self.tensors[index].upload(&bytes)?;
            inputs[index] = Some(bytes);
        }
        Ok(())
    }
}

/// Elements drawn from one generator: blocks are drawn in parallel, each from a generator
/// seeded by its position, so the values do not depend on how many threads draw them.
const BLOCK: usize = 1 << 16;

/// Each input tensor's seeded values, encoded in its type: `(tensor index, bytes)`.
pub(super) fn draw(resolved: &Resolved, seed: u64) -> Result<Vec<(usize, Vec<u8>)>> {
    let mut drawn = Vec::new();
    for (index, tensor) in resolved.tensors.iter().enumerate() {
        if tensor.output || tensor.scratch {
            continue;
        }
        let tensor_seed = seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let blocks = tensor.numel.div_ceil(BLOCK);
        // 33 M elements take seconds on one core: the host must not be what a check waits for.
        let encoded: Vec<Vec<u8>> = (0..blocks)
            .into_par_iter()
            .map(|block| {
                let start = block * BLOCK;
                let len = BLOCK.min(tensor.numel - start);
                let mut rng = StdRng::seed_from_u64(block_seed(tensor_seed, block as u64));
                generate(&mut rng, tensor.init, len).map(|values| tensor.dtype.encode(&values))
            })
            .collect::<Result<_>>()?;
        drawn.push((index, encoded.concat()));
    }
    Ok(drawn)
}

/// The seed of one block of a tensor (SplitMix64's finaliser: neighbouring blocks get
/// unrelated streams).
fn block_seed(tensor_seed: u64, block: u64) -> u64 {
    let mut z = tensor_seed.wrapping_add(block.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
    fn a_draw_is_the_same_on_any_number_of_threads() {
        let tensor = crate::cuda::spec::ResolvedTensor {
            name: "x".into(),
            dtype: crate::cuda::dtype::DType::F32,
            dims: vec![3 * BLOCK + 5],
            numel: 3 * BLOCK + 5,
            output: false,
            scratch: false,
            init: Init::default(),
        };
        let resolved = Resolved {
            tensors: vec![tensor],
            launches: vec![],
            reference: vec![],
        };
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| draw(&resolved, 7).unwrap())
        };
        let one = on(1);
        assert_eq!(one, on(4));
        assert_eq!(one[0].1.len(), (3 * BLOCK + 5) * 4);
        assert_ne!(one, draw(&resolved, 8).unwrap());
        // Blocks are not copies of each other.
        assert_ne!(one[0].1[..64], one[0].1[BLOCK * 4..BLOCK * 4 + 64]);
    }

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
