// Per-head FP8 (E4M3) quantizer: scale = absmax / 448 per (batch, head), with the seed's zero
// guard: a head whose absmax is 0 gets scale 1.0 (not 0, which turned every value into NaN).
//
// x:      [B*H][S*D] f32
// out:    [B*H][S*D] e4m3, x / scale rounded to nearest, saturating at ±448
// scales: [B*H] f32
#include <cuda_fp8.h>

#define E4M3_MAX 448.0f

__device__ float head_absmax(const float* x, int n) {
    __shared__ float warp_max[32];
    float m = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) m = fmaxf(m, fabsf(x[i]));
    for (int offset = 16; offset > 0; offset >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
    if ((threadIdx.x & 31) == 0) warp_max[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x < 32) {
        m = threadIdx.x < (blockDim.x >> 5) ? warp_max[threadIdx.x] : 0.0f;
        for (int offset = 16; offset > 0; offset >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
        if (threadIdx.x == 0) warp_max[0] = m;
    }
    __syncthreads();
    return warp_max[0];
}

__device__ float scale_for(float absmax) {
    return absmax > 0.0f ? absmax / E4M3_MAX : 1.0f;
}

// Two passes, so every head is spread over many blocks (one block per head left most of the
// GPU idle: 16 heads, 16 busy SMs):
//   1. absmax_partial: grid (PARTS, B*H); each block writes the absmax of its slice.
//   2. quantize_apply: grid (PARTS, B*H); each block reduces its head's PARTS partial maxima,
//      then quantizes its slice, four values per thread step. Block 0 writes the scale.
// n (= S*D) must be a multiple of 4 * PARTS; partials is scratch of B*H*PARTS floats.
#define PARTS 32

extern "C" __global__ void absmax_partial(const float* x, float* partials, int n) {
    const int slice = n / PARTS;
    const float* src = x + (size_t)blockIdx.y * n + (size_t)blockIdx.x * slice;
    float m = head_absmax(src, slice);
    if (threadIdx.x == 0) partials[blockIdx.y * PARTS + blockIdx.x] = m;
}

extern "C" __global__ void quantize_apply(const float* x, const float* partials, __nv_fp8_e4m3* out,
                                          float* scales, int n) {
    float absmax = 0.0f;
    for (int i = 0; i < PARTS; ++i) absmax = fmaxf(absmax, partials[blockIdx.y * PARTS + i]);
    const float scale = scale_for(absmax);
    if (blockIdx.x == 0 && threadIdx.x == 0) scales[blockIdx.y] = scale;
    const int slice = n / PARTS;
    const size_t base = (size_t)blockIdx.y * n + (size_t)blockIdx.x * slice;
    const float4* src = reinterpret_cast<const float4*>(x + base);
    unsigned int* dst = reinterpret_cast<unsigned int*>(out + base);
    for (int i = threadIdx.x; i < slice / 4; i += blockDim.x) {
        float4 f = src[i];
        // A true division, as the reference does: x * (1 / scale) can round differently.
        __nv_fp8_e4m3 a(f.x / scale), b(f.y / scale), c(f.z / scale), d(f.w / scale);
        dst[i] = (unsigned int)a.__x | ((unsigned int)b.__x << 8) | ((unsigned int)c.__x << 16) |
                 ((unsigned int)d.__x << 24);
    }
}

// Reference: the same arithmetic, written plainly (a serial absmax), outputs as f32.
extern "C" __global__ void quantize_fp8_per_head_ref(const float* x, float* out, float* scales, int n) {
    const float* head = x + (size_t)blockIdx.x * n;
    __shared__ float absmax;
    if (threadIdx.x == 0) {
        float m = 0.0f;
        for (int i = 0; i < n; ++i) m = fmaxf(m, fabsf(head[i]));
        absmax = m;
    }
    __syncthreads();
    float scale = absmax > 0.0f ? absmax / E4M3_MAX : 1.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        out[(size_t)blockIdx.x * n + i] = float(__nv_fp8_e4m3(head[i] / scale));
    if (threadIdx.x == 0) scales[blockIdx.x] = scale;
}
