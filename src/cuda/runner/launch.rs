//! One run of a kernel: its launches bound to the shape's buffers, enqueued across streams.

use super::error::{Result, RunnerError};
use super::inputs::Buffers;
use crate::cuda::driver::{self, ArgValue, Event, Function, Stream};
use crate::cuda::spec::{Arg, ResolvedLaunch};

/// One run of a kernel: its launches with their arguments bound to buffers.
pub struct Op<'a> {
    steps: Vec<(&'a ResolvedLaunch, &'a Function, Vec<ArgValue>)>,
}

impl<'a> Op<'a> {
    /// `reference`: bind outputs to their reference twins instead of the kernel's tensors.
    pub fn new(
        launches: &'a [ResolvedLaunch],
        functions: &'a [Function],
        buffers: &Buffers,
        reference: bool,
    ) -> Result<Op<'a>> {
        let steps = launches
            .iter()
            .zip(functions)
            .map(|(launch, function)| -> Result<_> {
                let args = launch
                    .args
                    .iter()
                    .map(|arg| match *arg {
                        Arg::Tensor(i) => {
                            let buffer = match (&buffers.reference_outputs[i], reference) {
                                (Some(twin), true) => twin,
                                _ => &buffers.tensors[i],
                            };
                            ArgValue::Ptr(buffer.ptr())
                        }
                        Arg::I32(v) => ArgValue::I32(v),
                        Arg::I64(v) => ArgValue::I64(v),
                        Arg::U32(v) => ArgValue::U32(v),
                        Arg::U64(v) => ArgValue::U64(v),
                        Arg::F32(v) => ArgValue::F32(v),
                        Arg::F64(v) => ArgValue::F64(v),
                    })
                    .collect::<Vec<ArgValue>>();
                check_arguments(function, &args)?;
                Ok((launch, function, args))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Op { steps })
    }

    pub fn single_stream(&self) -> bool {
        self.steps.iter().all(|(launch, _, _)| launch.stream == 0)
    }

    /// Enqueues the launches. Auxiliary streams fork from stream 0 and are joined back into it,
    /// so whatever runs on them finishes before anything later on stream 0.
    pub fn enqueue(&self, streams: &[Stream], fork: &Event, joins: &[Event]) -> driver::Result<()> {
        let main = &streams[0];
        let side: Vec<usize> = (1..streams.len())
            .filter(|s| self.steps.iter().any(|(l, _, _)| l.stream == *s))
            .collect();
        if !side.is_empty() {
            fork.record(main)?;
            for s in &side {
                streams[*s].wait(fork)?;
            }
        }
        for (launch, function, args) in &self.steps {
            function.launch(
                launch.grid,
                launch.block,
                launch.shared_bytes,
                &streams[launch.stream],
                args,
            )?;
        }
        for s in &side {
            joins[*s].record(&streams[*s])?;
            main.wait(&joins[*s])?;
        }
        Ok(())
    }
}

/// The events [`Op::enqueue`] forks and joins `streams` with.
pub fn fork_and_joins(streams: &[Stream]) -> driver::Result<(Event, Vec<Event>)> {
    let fork = Event::new()?;
    let joins = (0..streams.len())
        .map(|_| Event::new())
        .collect::<driver::Result<Vec<_>>>()?;
    Ok((fork, joins))
}

/// Refuses a launch whose arguments do not match the kernel's parameters in number and width.
fn check_arguments(function: &Function, args: &[ArgValue]) -> Result<()> {
    let sizes = function.param_sizes()?;
    if sizes.len() != args.len() {
        return Err(RunnerError::ArgumentCount {
            entry: function.name.clone(),
            takes: sizes.len(),
            given: args.len(),
        });
    }
    for (index, (size, arg)) in sizes.iter().zip(args).enumerate() {
        if *size != arg.size() {
            return Err(RunnerError::ArgumentWidth {
                entry: function.name.clone(),
                index,
                size: *size,
                given: arg.size(),
                kind: match arg {
                    ArgValue::Ptr(_) => "pointer",
                    _ => "scalar",
                },
            });
        }
    }
    Ok(())
}
