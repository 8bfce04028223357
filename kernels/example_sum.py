#!/usr/bin/env python3
"""A command harness served over gatekeeper's protocol v2 (one process for every shape), using
the small `gatekeeper_harness.py` beside it; `example_sum_v1.py` is the same harness as a plain
protocol v1 script, one process per shape, with nothing to import.

With PyTorch and a CUDA device it times a CUDA reduction with CUDA events; otherwise it times the
same reduction in plain Python on the CPU, so the example runs anywhere.
"""
import math
import random
import sys
import time

from gatekeeper_harness import serve

# Set-up once, before the ready line: the import and the CUDA context are the slow part.
try:
    import torch
    has_cuda = torch.cuda.is_available()
except ImportError:
    has_cuda = False
if has_cuda:
    device = torch.cuda.get_device_name()
    # Writing a buffer twice the size of L2 before each sample evicts the inputs (a cold
    # measurement) and keeps the GPU busy ahead of the start event, so the event pair times the
    # kernel rather than the host's launch latency.
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
else:
    print("no CUDA device: timing the CPU reference instead", file=sys.stderr)
    device = "cpu-python"


def measure(request):
    n = int(request["params"]["N"])
    rng = random.Random(request["seed"])
    values = [rng.uniform(-1.0, 1.0) for _ in range(n)]
    expected = math.fsum(values)
    times = []
    if has_cuda:
        x = torch.tensor(values, dtype=torch.float64, device="cuda")
        for _ in range(request["warmup"]):
            torch.sum(x)
        for _ in range(request["samples"]):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            flush.zero_()
            start.record()
            result = float(torch.sum(x))
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) * 1000.0)  # ms -> µs
    else:
        for _ in range(request["warmup"]):
            sum(values)
        for _ in range(request["samples"]):
            begin = time.perf_counter_ns()
            result = sum(values)
            times.append((time.perf_counter_ns() - begin) / 1000.0)
    error = abs(result - expected)
    return {
        "samples_us": times,
        "correct": error <= 1e-6 * max(1.0, abs(expected)) + 1e-3,
        "max_abs_err": error,
        "device": device,
    }


serve(measure, device)
