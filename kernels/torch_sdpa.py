#!/usr/bin/env python3
"""PyTorch's scaled_dot_product_attention as a gatekeeper command harness (protocol v2, or v1
when run without GATEKEEPER_PROTOCOL=2; see kernels/gatekeeper_harness.py).

    python3 kernels/torch_sdpa.py --backend {auto,math,flash,mem_efficient,cudnn}

Times F.scaled_dot_product_attention on f16 Q, K, V of the requested shape (B, H, S, D, and
CAUSAL 0/1) with CUDA events, and checks its output against attention computed
in f32 from the same inputs (atol = rtol = 1e-2, as for the FP8 kernel). It is the peer that
sdpa_fp8_stage_c is compared with.

The attention is captured once per shape in a CUDA graph and the samples time replays: one
launch from the host whatever the backend, so per-process Python dispatch speed cannot leak
into the samples (details.timing says "graph", or "eager" for a backend that cannot be
captured). Before every sample a buffer twice the size of L2 is overwritten (the inputs start
cold, as in gatekeeper's own CUDA runner) and a ~100 µs sleep kernel is queued ahead of the
start event, so the GPU is still busy when the replay is launched.
"""
import argparse
import math
import sys
import time

from gatekeeper_harness import HarnessError, serve

BACKENDS = ["auto", "math", "flash", "mem_efficient", "cudnn"]


def setup():
    """Imports and the CUDA context, once per process; a reason instead when they fail."""
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError as err:
        return None, f"PyTorch is not installed: {err}"
    if not torch.cuda.is_available():
        return None, "PyTorch sees no CUDA device"
    torch.cuda.init()
    return (torch, F, SDPBackend, sdpa_kernel), None


def measurer(backend, modules):
    torch, F, SDPBackend, sdpa_kernel = modules
    backends = {
        "math": [SDPBackend.MATH],
        "flash": [SDPBackend.FLASH_ATTENTION],
        "mem_efficient": [SDPBackend.EFFICIENT_ATTENTION],
        "cudnn": [SDPBackend.CUDNN_ATTENTION],
    }
    dev = "cuda"
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size,
                        dtype=torch.uint8, device=dev)

    def measure(request):
        shape = request["params"]
        b, h, s, d = (int(shape[k]) for k in ("B", "H", "S", "D"))
        causal = bool(int(shape.get("CAUSAL", 0)))
        torch.manual_seed(request["seed"])
        q, k, v = (torch.empty(b, h, s, d, device=dev, dtype=torch.float16).uniform_(-1, 1)
                   for _ in range(3))

        def run():
            if backend == "auto":
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            with sdpa_kernel(backends[backend]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

        try:
            out = run()
            torch.cuda.synchronize()
        except RuntimeError as err:
            raise HarnessError(
                f"backend {backend} cannot run this shape: {str(err).splitlines()[0]}") from None

        report = {
            "device": torch.cuda.get_device_name(),
            "details": {"backend": backend, "torch": torch.__version__},
        }
        if not request.get("timing_only"):
            begun = time.perf_counter()
            report.update(check(torch, q, k, v, out, causal))
            report["details"]["correctness_s"] = time.perf_counter() - begun
        del out

        begun = time.perf_counter()
        replay, method = capture(torch, run)
        report["details"]["timing"] = method
        for _ in range(request["warmup"]):
            replay()
        times = []
        for _ in range(request["samples"]):
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            flush.zero_()
            torch.cuda._sleep(200_000)  # cycles: ~100 µs at 2 GHz
            start.record()
            replay()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) * 1000.0)
        report["samples_us"] = times
        report["details"]["timing_s"] = time.perf_counter() - begun
        return report

    return measure


def capture(torch, run):
    """The attention as one CUDA graph, and a function that replays it: a replay is one launch
    from the host, so the event pair times the GPU's work even when Python is slow to
    dispatch the backend's kernels (the math backend is a dozen). Eager calls when the backend
    cannot be captured, with the method saying so."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    try:
        with torch.cuda.stream(side):
            for _ in range(3):  # lets the backend pick and allocate before capture
                run()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        torch.cuda.synchronize()
    except RuntimeError as err:
        torch.cuda.synchronize()
        print(f"CUDA graph capture failed, timing eager calls: {err}", file=sys.stderr)
        return run, "eager"
    return graph.replay, "graph"


def check(torch, q, k, v, out, causal):
    """The output against f32 attention from the same inputs, one batch at a time to bound
    memory (atol = rtol = 1e-2)."""
    b, _, s, d = q.shape
    errs_abs, errs_rel, bad, total = 0.0, 0.0, 0, 0
    for i in range(b):
        qf, kf, vf = (x[i].float() for x in (q, k, v))
        scores = qf @ kf.transpose(-1, -2) / d ** 0.5
        if causal:
            mask = torch.ones(s, s, device=q.device, dtype=torch.bool).triu(1)
            scores.masked_fill_(mask, float("-inf"))
        ref = torch.softmax(scores, dim=-1) @ vf
        got = out[i].float()
        diff = (got - ref).abs()
        errs_abs = max(errs_abs, diff.max().item())
        errs_rel = max(errs_rel, (diff / ref.abs().clamp_min(1e-6)).max().item())
        bad += int((~torch.isfinite(got) | (diff > 1e-2 + 1e-2 * ref.abs())).sum().item())
        total += got.numel()
        del scores, ref
    result = {
        "correct": bad == 0,
        "max_abs_err": errs_abs if math.isfinite(errs_abs) else None,
        "max_rel_err": errs_rel if math.isfinite(errs_rel) else None,
    }
    if bad:
        result["message"] = f"{bad:,} / {total:,} elements outside atol = rtol = 1e-2"
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    args = parser.parse_args()
    modules, why = setup()
    if why is not None:
        def unavailable(_request):
            raise HarnessError(why)
        serve(unavailable)
        return
    torch = modules[0]
    serve(measurer(args.backend, modules), device=torch.cuda.get_device_name())


if __name__ == "__main__":
    main()
