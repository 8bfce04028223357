#!/usr/bin/env python3
"""The simplest command harness (gatekeeper protocol v1, one process per shape), to copy.

gatekeeper runs this once per kernel x shape with the job in environment variables, and reads
the last line of stdout: {"samples_us": [...], "correct": ..., "max_abs_err": ..., "device": ...}.

With PyTorch and a CUDA device it times a CUDA reduction with CUDA events; otherwise it times the
same reduction in plain Python on the CPU, so the example runs anywhere.
"""
import json
import math
import os
import random
import sys
import time

shape = json.loads(os.environ["GATEKEEPER_SHAPE_JSON"])
warmup = int(os.environ["GATEKEEPER_WARMUP"])
samples = int(os.environ["GATEKEEPER_SAMPLES"])
seed = int(os.environ["GATEKEEPER_SEED"])
n = int(shape["N"])

rng = random.Random(seed)
values = [rng.uniform(-1.0, 1.0) for _ in range(n)]
expected = math.fsum(values)


def report(times_us, result, device):
    error = abs(result - expected)
    print(json.dumps({
        "samples_us": times_us,
        "correct": error <= 1e-6 * max(1.0, abs(expected)) + 1e-3,
        "max_abs_err": error,
        "device": device,
    }))


try:
    import torch
    has_cuda = torch.cuda.is_available()
except ImportError:
    has_cuda = False

if has_cuda:
    x = torch.tensor(values, dtype=torch.float64, device="cuda")
    # Writing a buffer twice the size of L2 before each sample evicts the inputs (a cold
    # measurement) and keeps the GPU busy ahead of the start event, so the event pair times the
    # kernel rather than the host's launch latency.
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    for _ in range(warmup):
        torch.sum(x)
    times = []
    for _ in range(samples):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        flush.zero_()
        start.record()
        result = torch.sum(x)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) * 1000.0)  # ms -> µs
    report(times, float(result), torch.cuda.get_device_name())
else:
    print("no CUDA device: timing the CPU reference instead", file=sys.stderr)
    for _ in range(warmup):
        sum(values)
    times = []
    for _ in range(samples):
        begin = time.perf_counter_ns()
        result = sum(values)
        times.append((time.perf_counter_ns() - begin) / 1000.0)
    report(times, result, "cpu-python")
