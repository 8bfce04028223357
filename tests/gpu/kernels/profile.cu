// Kernels for gate 4's GPU tests: the same small GEMM with and without tensor cores, and a
// kernel squeezed into too few registers so that it spills.
#include <cuda_fp16.h>
typedef unsigned int uint32_t;

// One warp per 16 x 8 tile: C[t] = A[t] (16 x 16, row-major) * B[t]^T (B is 8 x 16), f32.
extern "C" __global__ void gemm_mma(const __half* a, const __half* b, float* c, int tiles) {
    const int t = blockIdx.x, lane = threadIdx.x, g = lane >> 2, q = lane & 3;
    if (t >= tiles) return;
    const __half* at = a + t * 256;
    const __half* bt = b + t * 128;
    uint32_t a0 = *reinterpret_cast<const uint32_t*>(at + g * 16 + 2 * q);
    uint32_t a1 = *reinterpret_cast<const uint32_t*>(at + (g + 8) * 16 + 2 * q);
    uint32_t a2 = *reinterpret_cast<const uint32_t*>(at + g * 16 + 2 * q + 8);
    uint32_t a3 = *reinterpret_cast<const uint32_t*>(at + (g + 8) * 16 + 2 * q + 8);
    uint32_t b0 = *reinterpret_cast<const uint32_t*>(bt + g * 16 + 2 * q);
    uint32_t b1 = *reinterpret_cast<const uint32_t*>(bt + g * 16 + 2 * q + 8);
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    float* ct = c + t * 128;
    ct[g * 8 + 2 * q] = d[0];
    ct[g * 8 + 2 * q + 1] = d[1];
    ct[(g + 8) * 8 + 2 * q] = d[2];
    ct[(g + 8) * 8 + 2 * q + 1] = d[3];
}

// The same product on the FMA pipe: correct, fast enough on small tiles, and the "tensor cores
// not engaged" bug that gate 4's `tensor_cores: required` exists to catch.
extern "C" __global__ void gemm_fma(const __half* a, const __half* b, float* c, int tiles) {
    const int t = blockIdx.x;
    if (t >= tiles) return;
    for (int e = threadIdx.x; e < 128; e += blockDim.x) {
        const int m = e / 8, n = e % 8;
        float sum = 0.0f;
        for (int k = 0; k < 16; ++k)
            sum += __half2float(a[t * 256 + m * 16 + k]) * __half2float(b[t * 128 + n * 16 + k]);
        c[t * 128 + e] = sum;
    }
}

// 64 live accumulators per thread: with --maxrregcount=32 they cannot all stay in registers.
extern "C" __global__ void spilly(const float* x, float* out, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float acc[64];
#pragma unroll
    for (int j = 0; j < 64; ++j) acc[j] = x[(i + j) % n];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int j = 0; j < 64; ++j) acc[j] = fmaf(acc[j], 0.5f, acc[(j + 1) & 63] * 0.25f);
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < 64; ++j) sum += acc[j];
    out[i] = sum;
}
