//! Gate 3, timing: CUDA events around each sample, batched through a CUDA graph for kernels
//! too short to time one launch at a time.

use super::error::{Result, RunnerError};
use super::launch::{fork_and_joins, Op};
use super::Job;
use crate::cuda::driver::{self, ArgValue, Buffer, Event, Function, Gpu, Scratch, Stream};
use crate::cuda::spec::L2Mode;
use crate::measure::TimingMethod;

/// Kernels faster than this are timed in batches replayed from a CUDA graph, so the launch
/// overhead of a few microseconds does not drown them.
const BATCH_BELOW_US: f64 = 20.0;
/// A batch is sized to last about this long.
const BATCH_TARGET_US: f64 = 200.0;
const MAX_BATCH: usize = 1000;
/// In hot mode a spin kernel this long keeps the GPU busy ahead of the start event.
const SPIN_NS: u64 = 20_000;
/// The spin kernel's entry point, compiled with every kernel (see [`SPIN_SOURCE`]).
pub const SPIN_ENTRY: &str = "gatekeeper_spin";

pub const SPIN_SOURCE: &str = r#"
extern "C" __global__ void gatekeeper_spin(unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
}
"#;

/// What the timing loop measured.
pub struct Timing {
    pub samples_us: Vec<f64>,
    /// Launches per sample: 1, or the size of the graph-replayed batch.
    pub batch: usize,
    /// The median of the pilot samples that chose the batch size.
    pub pilot_us: f64,
}

impl Timing {
    /// How a baseline must have been timed to be compared with these samples.
    pub fn method(&self) -> TimingMethod {
        if self.batch > 1 {
            TimingMethod::GraphBatch
        } else {
            TimingMethod::Single
        }
    }
}

/// What surrounds one timed sample.
struct Sampler<'a> {
    gpu: &'a Gpu,
    main: &'a Stream,
    outputs: &'a [&'a Buffer],
    l2: L2Mode,
    flush: Scratch,
    spin: &'a Function,
    start: Event,
    end: Event,
}

impl Sampler<'_> {
    /// Ahead of the start event: outputs spoiled, then L2 flushed (cold) or the GPU kept busy
    /// by the spin kernel (hot).
    fn prelude(&self) -> driver::Result<()> {
        // Outputs are spoiled before every sample (0xFF is NaN in every float type), so a
        // kernel cannot be timed skipping work because its output already looks done.
        for output in self.outputs {
            output.memset_async(0xFF, self.main)?;
        }
        match self.l2 {
            L2Mode::Cold => self.flush.overwrite(self.main, 0),
            L2Mode::Hot => self.spin.launch(
                [1, 1, 1],
                [1, 1, 1],
                0,
                self.main,
                &[ArgValue::U64(SPIN_NS)],
            ),
        }
    }

    /// Microseconds `body` took, the whole device synchronised before the sample ends.
    fn sample(&self, body: &dyn Fn() -> driver::Result<()>) -> Result<f64> {
        self.prelude()?;
        self.start.record(self.main)?;
        body()?;
        self.end.record(self.main)?;
        self.synchronize()?;
        Ok(f64::from(self.start.elapsed_ms(&self.end)?) * 1000.0)
    }

    fn synchronize(&self) -> Result<()> {
        self.gpu
            .synchronize()
            .map_err(RunnerError::FailedWhileTimed)
    }
}

/// Gate 3: CUDA events around each run, after warm-up; L2 flushed (cold) or a spin kernel
/// (hot) ahead of the start event so it is queued behind work and times only the kernel; the
/// whole device synchronised before a sample ends.
pub fn time(
    gpu: &Gpu,
    streams: &[Stream],
    op: &Op,
    spin: &Function,
    l2: L2Mode,
    job: &Job,
    outputs: &[&Buffer],
) -> Result<Timing> {
    let main = &streams[0];
    let (fork, joins) = fork_and_joins(streams)?;
    let (start, end) = (Event::new()?, Event::new()?);
    let flush = Scratch::new((2 * gpu.info.l2_bytes).max(8 << 20))?;
    let sampler = Sampler {
        gpu,
        main,
        outputs,
        l2,
        flush,
        spin,
        start,
        end,
    };
    let run_once = || op.enqueue(streams, &fork, &joins);

    for _ in 0..job.warmup {
        run_once()?;
    }
    sampler.synchronize()?;

    let mut pilot: Vec<f64> = (0..5)
        .map(|_| sampler.sample(&run_once))
        .collect::<Result<_>>()?;
    pilot.sort_by(f64::total_cmp);
    let pilot_us = pilot[pilot.len() / 2];

    let batch = if pilot_us < BATCH_BELOW_US && op.single_stream() {
        ((BATCH_TARGET_US / pilot_us.max(0.5)).ceil() as usize).clamp(2, MAX_BATCH)
    } else {
        1
    };
    let graph = if batch > 1 {
        main.begin_capture()?;
        let captured = (0..batch).try_for_each(|_| run_once());
        let graph = main.end_capture()?;
        captured?;
        graph.launch(main)?;
        sampler.synchronize()?;
        Some(graph)
    } else {
        None
    };

    let mut samples_us = Vec::with_capacity(job.samples as usize);
    for _ in 0..job.samples {
        let elapsed = match &graph {
            Some(graph) => sampler.sample(&|| graph.launch(main))?,
            None => sampler.sample(&run_once)?,
        };
        samples_us.push(elapsed / batch as f64);
    }
    Ok(Timing {
        samples_us,
        batch,
        pilot_us,
    })
}
