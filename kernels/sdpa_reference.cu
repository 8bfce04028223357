// The reference for sdpa_fp8_stage_c: plain f32 attention over the dequantised inputs
// (value x per-head scale), so the gate measures the kernel's own error, not quantisation's.
//
// One thread per query row, K and V tiles staged in shared memory as f32, exact online softmax
// in f32 with expf. Output is f32, [B*H][S][D]. Grid: (S / 128, B*H). Block: 128 threads.
#include <cuda_fp8.h>

#define ROWS 128
#define TILE 32
#define NEG_INF __int_as_float(0xff800000)

template <int D>
__device__ void sdpa_ref(const __nv_fp8_e4m3* q, const __nv_fp8_e4m3* k, const __nv_fp8_e4m3* v,
                         const float* q_scale, const float* k_scale, const float* v_scale,
                         float* out, int S, int causal) {
    __shared__ float ks[TILE][D];
    __shared__ float vs[TILE][D];
    const int head = blockIdx.y;
    const int row = blockIdx.x * ROWS + threadIdx.x;
    const size_t off = (size_t)head * S * D;
    const float qsc = q_scale[head], ksc = k_scale[head], vsc = v_scale[head];
    const float scale = 1.0f / sqrtf((float)D);

    float qrow[D], acc[D];
    for (int d = 0; d < D; ++d) {
        qrow[d] = float(q[off + (size_t)row * D + d]) * qsc;
        acc[d] = 0.0f;
    }
    float m = NEG_INF, l = 0.0f;
    const int last_key = causal ? (blockIdx.x + 1) * ROWS : S;
    for (int key0 = 0; key0 < last_key; key0 += TILE) {
        __syncthreads();
        for (int i = threadIdx.x; i < TILE * D; i += blockDim.x) {
            int r = i / D, d = i % D;
            ks[r][d] = float(k[off + (size_t)(key0 + r) * D + d]) * ksc;
            vs[r][d] = float(v[off + (size_t)(key0 + r) * D + d]) * vsc;
        }
        __syncthreads();
        for (int j = 0; j < TILE; ++j) {
            if (causal && key0 + j > row) break;
            float s = 0.0f;
            for (int d = 0; d < D; ++d) s += qrow[d] * ks[j][d];
            s *= scale;
            float m_new = fmaxf(m, s);
            float alpha = expf(m - m_new), p = expf(s - m_new);
            l = l * alpha + p;
            for (int d = 0; d < D; ++d) acc[d] = acc[d] * alpha + p * vs[j][d];
            m = m_new;
        }
    }
    for (int d = 0; d < D; ++d) out[off + (size_t)row * D + d] = acc[d] / l;
}

extern "C" __global__ void sdpa_reference_d64(const __nv_fp8_e4m3* q, const __nv_fp8_e4m3* k,
                                              const __nv_fp8_e4m3* v, const float* qs, const float* ks,
                                              const float* vs, float* out, int S, int causal) {
    sdpa_ref<64>(q, k, v, qs, ks, vs, out, S, causal);
}

extern "C" __global__ void sdpa_reference_d128(const __nv_fp8_e4m3* q, const __nv_fp8_e4m3* k,
                                               const __nv_fp8_e4m3* v, const float* qs, const float* ks,
                                               const float* vs, float* out, int S, int causal) {
    sdpa_ref<128>(q, k, v, qs, ks, vs, out, S, causal);
}
