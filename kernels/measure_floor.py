#!/usr/bin/env python3
"""The floor for each attention shape of gates.yaml, from ceilings measured on this GPU.

    python3 kernels/measure_floor.py

Measures two ceilings with PyTorch (CUDA events, median of 20):
  - memory: a 2 GiB device-to-device copy, counting bytes read plus written;
  - tensor rate: an 8192^3 f16 matrix product (cuBLAS), 2*M*N*K FLOPs.
Then, per shape, the least work the FP8 attention must do:
  - FLOPs: 4*B*H*S*S*D (Q K^T and P V), halved for causal;
  - bytes: Q, K, V once in E4M3 (1 byte each) + O once in f16 (2 bytes) + scales.
The floor is the larger of FLOPs / tensor rate and bytes / bandwidth: no version runs faster.
"""
import torch

SHAPES = {  # B, H, S, D, causal — as in gates.yaml
    "small": (1, 8, 256, 64, 0),
    "mission": (2, 16, 1024, 64, 0),
    "long": (1, 16, 8192, 64, 0),
    "wide": (2, 16, 1024, 128, 0),
    "stress": (4, 32, 4096, 64, 0),
    "mission_causal": (2, 16, 1024, 64, 1),
    "long_causal": (1, 16, 8192, 64, 1),
    "wide_causal": (2, 16, 1024, 128, 1),
}


def median_ms(fn, reps=20):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def main():
    src = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    bandwidth = 2 * src.numel() / (median_ms(lambda: dst.copy_(src)) * 1e-3)
    del src, dst
    n = 8192
    a = torch.randn(n, n, dtype=torch.float16, device="cuda")
    b = torch.randn(n, n, dtype=torch.float16, device="cuda")
    tensor_rate = 2 * n**3 / (median_ms(lambda: a @ b) * 1e-3)
    print(f"device {torch.cuda.get_device_name()}: copy {bandwidth / 1e12:.2f} TB/s, "
          f"f16 GEMM {tensor_rate / 1e12:.0f} TFLOP/s")
    print(f"{'shape':<16}{'GFLOP':>9}{'MB':>9}{'compute us':>12}{'memory us':>11}{'floor us':>10}")
    for name, (bb, h, s, d, causal) in SHAPES.items():
        flops = 4 * bb * h * s * s * d * (0.5 if causal else 1.0)
        bytes_ = bb * h * s * d * (3 * 1 + 2) + 3 * bb * h * 4
        compute_us, memory_us = flops / tensor_rate * 1e6, bytes_ / bandwidth * 1e6
        print(f"{name:<16}{flops / 1e9:>9.2f}{bytes_ / 1e6:>9.2f}{compute_us:>12.2f}"
              f"{memory_us:>11.2f}{max(compute_us, memory_us):>10.2f}")


if __name__ == "__main__":
    main()
