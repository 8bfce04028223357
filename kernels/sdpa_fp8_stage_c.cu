// sdpa_fp8_stage_c: scaled-dot-product attention over per-head-scaled FP8 (E4M3) Q, K, V.
//
//   O[b,h] = softmax(Q K^T * sq * sk / sqrt(D)) (V * sv)      (f16 output, optionally causal)
//
// FlashAttention-2 structure: a CTA owns 64 query rows of one head (4 warps x 16 rows) and
// streams 64-key tiles of K and V through shared memory, keeping the softmax online (running
// max and sum per row) so the S x S score matrix never leaves registers.
//
// Tensor cores do both products:
//   - Q K^T on the raw E4M3 values with FP8 mma.sync (m16n8k32, f32 accumulate, sm_89+); the
//     per-head scales are folded into the f32 scores afterwards, so nothing is dequantised.
//   - P V with f16 mma.sync (m16n8k16): P stays in registers (the QK^T accumulator layout is the
//     A-operand layout), V is widened to f16 (exact for E4M3) and transposed once per tile in
//     shared memory. Keeping P in f16 rather than E4M3 keeps 10 mantissa bits in the weights.
//
// Layouts: q, k, v are [B*H][S][D] E4M3; scales are [B*H] f32; out is [B*H][S][D] f16.
// S must be a multiple of 64. Grid: (S / 64, B*H). Block: 128 threads.
#include <cuda_fp16.h>
#include <cuda_fp8.h>
typedef unsigned char uint8_t;
typedef unsigned int uint32_t;

#define BR 64            // query rows per CTA
#define BC 64            // keys per tile
#define WARPS 4
#define LOG2E 1.4426950408889634f
#define NEG_INF __int_as_float(0xff800000)  // NVRTC has no math.h INFINITY

// Shared-memory row padding: 16 bytes for the fp8 K rows and 8 halves for the f16 V^T rows
// spread a warp's fragment loads over all 32 banks.
template <int D> struct Smem {
    static constexpr int K_STRIDE = D + 16;     // bytes
    static constexpr int VT_STRIDE = BC + 8;    // halves
    alignas(16) uint8_t k[BC * K_STRIDE];
    alignas(16) __half vt[D * VT_STRIDE];
};

__device__ __forceinline__ void mma_fp8(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void mma_f16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
}

template <int D, bool CAUSAL>
__device__ void sdpa_fp8(const uint8_t* __restrict__ q, const uint8_t* __restrict__ k,
                         const uint8_t* __restrict__ v, const float* __restrict__ q_scale,
                         const float* __restrict__ k_scale, const float* __restrict__ v_scale,
                         __half* __restrict__ out, int S) {
    constexpr int KSTEPS = D / 32;     // fp8 k-steps of Q K^T
    constexpr int NT_S = BC / 8;       // n-tiles of a score tile
    constexpr int NT_O = D / 8;        // n-tiles of the output
    extern __shared__ __align__(16) uint8_t smem_raw[];
    Smem<D>& sm = *reinterpret_cast<Smem<D>*>(smem_raw);

    const int head = blockIdx.y;
    const int q_block = blockIdx.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;   // mma group and thread-in-group
    const size_t head_off = (size_t)head * S * D;
    const float score_scale = q_scale[head] * k_scale[head] * rsqrtf((float)D) * LOG2E;

    // This warp's 16 query rows as FP8 A-fragments, kept in registers for the whole pass.
    const int row0 = q_block * BR + warp * 16;
    uint32_t qa[KSTEPS][4];
    {
        const uint8_t* q_lo = q + head_off + (size_t)(row0 + g) * D;
        const uint8_t* q_hi = q_lo + 8 * D;
#pragma unroll
        for (int ks = 0; ks < KSTEPS; ++ks) {
            qa[ks][0] = *reinterpret_cast<const uint32_t*>(q_lo + ks * 32 + 4 * t);
            qa[ks][1] = *reinterpret_cast<const uint32_t*>(q_hi + ks * 32 + 4 * t);
            qa[ks][2] = *reinterpret_cast<const uint32_t*>(q_lo + ks * 32 + 16 + 4 * t);
            qa[ks][3] = *reinterpret_cast<const uint32_t*>(q_hi + ks * 32 + 16 + 4 * t);
        }
    }

    float o[NT_O][4];
#pragma unroll
    for (int n = 0; n < NT_O; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
    float m_lo = NEG_INF, m_hi = NEG_INF;   // running max of rows g and g+8 (log2 units)
    float l_lo = 0.0f, l_hi = 0.0f;             // running sums (this thread's columns only)

    const int q_lo_idx = row0 + g, q_hi_idx = row0 + g + 8;
    const int n_tiles = CAUSAL ? (q_block + 1) : (S / BC);
    for (int tile = 0; tile < n_tiles; ++tile) {
        const int key0 = tile * BC;
        __syncthreads();   // the previous tile's shared memory is no longer read
        // K tile: 16-byte chunks, raw fp8.
        for (int c = threadIdx.x; c < BC * D / 16; c += blockDim.x) {
            int r = c / (D / 16), col = (c % (D / 16)) * 16;
            *reinterpret_cast<uint4*>(&sm.k[r * Smem<D>::K_STRIDE + col]) =
                *reinterpret_cast<const uint4*>(k + head_off + (size_t)(key0 + r) * D + col);
        }
        // V tile: widened to f16 (exact for E4M3) and transposed to V^T[d][key].
        for (int c = threadIdx.x; c < BC * D / 16; c += blockDim.x) {
            int r = c / (D / 16), col = (c % (D / 16)) * 16;
            uint4 raw = *reinterpret_cast<const uint4*>(v + head_off + (size_t)(key0 + r) * D + col);
            const __nv_fp8_e4m3* e = reinterpret_cast<const __nv_fp8_e4m3*>(&raw);
#pragma unroll
            for (int i = 0; i < 16; ++i) sm.vt[(col + i) * Smem<D>::VT_STRIDE + r] = __half(float(e[i]));
        }
        __syncthreads();

        // S = Q K^T for this warp's 16 rows x 64 keys.
        float s[NT_S][4];
#pragma unroll
        for (int n = 0; n < NT_S; ++n) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
            const uint8_t* krow = &sm.k[(n * 8 + g) * Smem<D>::K_STRIDE];
#pragma unroll
            for (int ks = 0; ks < KSTEPS; ++ks) {
                uint32_t b0 = *reinterpret_cast<const uint32_t*>(krow + ks * 32 + 4 * t);
                uint32_t b1 = *reinterpret_cast<const uint32_t*>(krow + ks * 32 + 16 + 4 * t);
                mma_fp8(s[n], qa[ks], b0, b1);
            }
        }

        // Online softmax in log2 units.
        float tile_max_lo = NEG_INF, tile_max_hi = NEG_INF;
#pragma unroll
        for (int n = 0; n < NT_S; ++n) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                s[n][j] *= score_scale;
                if (CAUSAL) {
                    int key = key0 + n * 8 + 2 * t + (j & 1);
                    int query = (j < 2) ? q_lo_idx : q_hi_idx;
                    if (key > query) s[n][j] = NEG_INF;
                }
            }
            tile_max_lo = fmaxf(tile_max_lo, fmaxf(s[n][0], s[n][1]));
            tile_max_hi = fmaxf(tile_max_hi, fmaxf(s[n][2], s[n][3]));
        }
#pragma unroll
        for (int offset = 1; offset < 4; offset <<= 1) {
            tile_max_lo = fmaxf(tile_max_lo, __shfl_xor_sync(0xffffffffu, tile_max_lo, offset));
            tile_max_hi = fmaxf(tile_max_hi, __shfl_xor_sync(0xffffffffu, tile_max_hi, offset));
        }
        const float new_lo = fmaxf(m_lo, tile_max_lo), new_hi = fmaxf(m_hi, tile_max_hi);
        // Every row sees key 0 in its first tile, so the new maxima are finite.
        const float alpha_lo = exp2f(m_lo - new_lo), alpha_hi = exp2f(m_hi - new_hi);
        m_lo = new_lo;
        m_hi = new_hi;
        l_lo *= alpha_lo;
        l_hi *= alpha_hi;
#pragma unroll
        for (int n = 0; n < NT_O; ++n) {
            o[n][0] *= alpha_lo;
            o[n][1] *= alpha_lo;
            o[n][2] *= alpha_hi;
            o[n][3] *= alpha_hi;
        }

        // P = exp2(S - m), packed straight into f16 A-fragments for P V.
        uint32_t pa[BC / 16][4];
#pragma unroll
        for (int n = 0; n < NT_S; ++n) {
            float p0 = exp2f(s[n][0] - m_lo), p1 = exp2f(s[n][1] - m_lo);
            float p2 = exp2f(s[n][2] - m_hi), p3 = exp2f(s[n][3] - m_hi);
            l_lo += p0 + p1;
            l_hi += p2 + p3;
            pa[n / 2][(n & 1) * 2 + 0] = pack_half2(p0, p1);
            pa[n / 2][(n & 1) * 2 + 1] = pack_half2(p2, p3);
        }

        // O += P V.
#pragma unroll
        for (int kb = 0; kb < BC / 16; ++kb) {
#pragma unroll
            for (int n = 0; n < NT_O; ++n) {
                const __half* vrow = &sm.vt[(n * 8 + g) * Smem<D>::VT_STRIDE + kb * 16];
                uint32_t b0 = *reinterpret_cast<const uint32_t*>(vrow + 2 * t);
                uint32_t b1 = *reinterpret_cast<const uint32_t*>(vrow + 8 + 2 * t);
                mma_f16(o[n], pa[kb], b0, b1);
            }
        }
    }

    // Finish: row sums across the quad, normalise, apply V's scale, store f16.
#pragma unroll
    for (int offset = 1; offset < 4; offset <<= 1) {
        l_lo += __shfl_xor_sync(0xffffffffu, l_lo, offset);
        l_hi += __shfl_xor_sync(0xffffffffu, l_hi, offset);
    }
    const float vs = v_scale[head];
    const float f_lo = vs / l_lo, f_hi = vs / l_hi;
    __half* o_lo = out + head_off + (size_t)q_lo_idx * D;
    __half* o_hi = out + head_off + (size_t)q_hi_idx * D;
#pragma unroll
    for (int n = 0; n < NT_O; ++n) {
        *reinterpret_cast<__half2*>(o_lo + n * 8 + 2 * t) = __floats2half2_rn(o[n][0] * f_lo, o[n][1] * f_lo);
        *reinterpret_cast<__half2*>(o_hi + n * 8 + 2 * t) = __floats2half2_rn(o[n][2] * f_hi, o[n][3] * f_hi);
    }
}

#define SDPA_ENTRY(D, C)                                                                      \
    extern "C" __global__ void __launch_bounds__(128)                                         \
        sdpa_fp8_stage_c_d##D##_c##C(const uint8_t* q, const uint8_t* k, const uint8_t* v,    \
                                      const float* qs, const float* ks, const float* vs,      \
                                      __half* out, int S) {                                   \
        sdpa_fp8<D, C>(q, k, v, qs, ks, vs, out, S);                                          \
    }

SDPA_ENTRY(64, 0)
SDPA_ENTRY(64, 1)
SDPA_ENTRY(128, 0)
SDPA_ENTRY(128, 1)
