#!/usr/bin/env python3
"""How much the PyTorch peers' medians move from one process to the next, on a GPU machine.

Starts kernels/torch_sdpa.py as a protocol v2 harness PROCESSES times per backend (all at once,
so their imports overlap; then measured one process after another), asks each process for every attention shape of
gates.yaml with the timing settings of gates.yaml, and prints per backend × shape the lowest
and highest per-process median and their spread, (max - min) / min. A harness that times the
host instead of the kernel shows here as a spread of many percent.

    python3 scripts/peer-spread.py [--processes 8] [--backends flash,cudnn,mem_efficient,math]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {
    "small": {"B": 1, "H": 8, "S": 256, "D": 64, "CAUSAL": 0},
    "mission": {"B": 2, "H": 16, "S": 1024, "D": 64, "CAUSAL": 0},
    "long": {"B": 1, "H": 16, "S": 8192, "D": 64, "CAUSAL": 0},
    "wide": {"B": 2, "H": 16, "S": 1024, "D": 128, "CAUSAL": 0},
    "stress": {"B": 4, "H": 32, "S": 4096, "D": 64, "CAUSAL": 0},
    "mission_causal": {"B": 2, "H": 16, "S": 1024, "D": 64, "CAUSAL": 1},
    "long_causal": {"B": 1, "H": 16, "S": 8192, "D": 64, "CAUSAL": 1},
    "wide_causal": {"B": 2, "H": 16, "S": 1024, "D": 128, "CAUSAL": 1},
}


def start(backend):
    """A harness process for `backend`, started; its ready line is read later, so all start
    together and only the measuring is one after another."""
    env = dict(os.environ, GATEKEEPER_PROTOCOL="2", GATEKEEPER_KERNEL=f"torch_sdpa_{backend}")
    return subprocess.Popen(
        [sys.executable, os.path.join(REPO, "kernels", "torch_sdpa.py"), "--backend", backend],
        cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def measure(proc, backend, warmup, samples, seed):
    """Per-shape medians (µs) and timing method from one harness process, which then exits."""
    medians = {}
    for shape, params in SHAPES.items():
        request = {"kernel": f"torch_sdpa_{backend}", "shape": shape, "params": params,
                   "warmup": warmup, "samples": samples, "seed": seed, "timing_only": True}
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        response = json.loads(proc.stdout.readline())
        if "error" in response:
            medians[shape] = (None, response["error"][:60])
        else:
            method = response.get("details", {}).get("timing", "?")
            medians[shape] = (statistics.median(response["samples_us"]), method)
    proc.stdin.close()
    proc.wait()
    return medians


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--backends", default="flash,cudnn,mem_efficient,math")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print(f"{args.processes} processes per backend, {args.warmup} warm-up, {args.samples} samples")
    print(f"{'backend':<14} {'shape':<15} {'method':<6} {'min µs':>9} {'max µs':>9} {'spread':>8}")
    worst = 0.0
    backends = args.backends.split(",")
    procs = {b: [start(b) for _ in range(args.processes)] for b in backends}
    for proc in (p for ps in procs.values() for p in ps):
        ready = json.loads(proc.stdout.readline())
        assert ready.get("ready"), ready
    for backend in backends:
        runs = [measure(proc, backend, args.warmup, args.samples, args.seed)
                for proc in procs[backend]]
        for shape in SHAPES:
            medians = [run[shape][0] for run in runs]
            methods = sorted({run[shape][1] for run in runs})
            if any(m is None for m in medians):
                print(f"{backend:<14} {shape:<15} error: {methods[0]}")
                continue
            spread = (max(medians) - min(medians)) / min(medians)
            worst = max(worst, spread)
            print(f"{backend:<14} {shape:<15} {','.join(methods):<6} {min(medians):9.2f} "
                  f"{max(medians):9.2f} {spread * 100:7.2f}%")
    print(f"largest spread: {worst * 100:.2f} %")


if __name__ == "__main__":
    main()
