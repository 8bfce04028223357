// sdpa_fp8_stage_c: scaled-dot-product attention over per-head-scaled FP8 (E4M3) Q, K, V.
//
//   O[b,h] = softmax(Q K^T * sq * sk / sqrt(D)) (V * sv)      (f16 output, optionally causal)
//
// FlashAttention-2 structure: a CTA owns 128 query rows of one head and streams tiles of K and
// V through shared memory, keeping the softmax online (running max and sum per row) so the
// S x S score matrix never leaves registers. Two implementations of that structure:
//
//   - Hopper (compiled for sm_90a, `__CUDA_ARCH_FEAT_SM90_ALL`): warpgroup MMA. Q K^T is FP8
//     wgmma straight from the E4M3 bytes in shared memory; P V is f16 wgmma with P from
//     registers and V widened to f16 once per tile. See `sdpa_fp8_wgmma`.
//   - Everything else: f16 mma.sync (m16n8k16) for both products, every operand widened from
//     E4M3 to f16 first. See `sdpa_fp8`. Why not FP8 mma.sync: on sm_90 `mma.sync ... .e4m3` is
//     emulated (version 1's SASS shows it lowered to HMMA.16816 plus conversions on every call).
//
// E4M3 values are exact in f16, so widening costs no accuracy; the per-head scales are folded
// into the f32 scores (sq * sk) and the output (sv).
//
// Layouts: q, k, v are [B*H][S][D] E4M3; scales are [B*H] f32; out is [B*H][S][D] f16.
// S must be a multiple of 128. Grid: (S / 128, B*H). Block: 128 threads. Dynamic shared memory:
// 384 * (D + 8) bytes covers both implementations (see the entry points).
#include <cuda_fp16.h>
#include <cuda_fp8.h>
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;

#define LOG2E 1.4426950408889634f
#define NEG_INF __int_as_float(0xff800000)  // NVRTC has no math.h INFINITY

// Row stride of the f16 K and V tiles: 8 halves of padding spread a warp's fragment loads
// (and ldmatrix rows) over all 32 banks.
template <int D, int BC> struct Tiles {
    static constexpr int STRIDE = D + 8;  // halves
    alignas(16) __half k[BC * STRIDE];
    alignas(16) __half v[BC * STRIDE];
};

__device__ __forceinline__ void mma_f16(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* smem) {
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void* smem) {
    uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// 2^x on the special-function unit; 2^-inf = 0, which the masked scores rely on.
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&h);
}

// Two E4M3 values (low byte first) to an f16 pair, with the hardware's packed conversion.
__device__ __forceinline__ uint32_t widen2(uint16_t pair) {
    __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3);
    return (uint32_t)h.x | ((uint32_t)h.y << 16);
}

// 16 E4M3 bytes to 16 halves in shared memory (two 16-byte stores).
__device__ __forceinline__ void widen16(__half* dst, uint4 raw) {
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
    uint32_t h[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        h[2 * i] = widen2((uint16_t)(w[i] & 0xffff));
        h[2 * i + 1] = widen2((uint16_t)(w[i] >> 16));
    }
    reinterpret_cast<uint4*>(dst)[0] = make_uint4(h[0], h[1], h[2], h[3]);
    reinterpret_cast<uint4*>(dst)[1] = make_uint4(h[4], h[5], h[6], h[7]);
}

// 16 E4M3 bytes to two 16-byte runs of 8 halves at `lo` and `hi`.
__device__ __forceinline__ void widen16_split(uint8_t* lo, uint8_t* hi, uint4 raw) {
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
    uint32_t h[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        h[2 * i] = widen2((uint16_t)(w[i] & 0xffff));
        h[2 * i + 1] = widen2((uint16_t)(w[i] >> 16));
    }
    *reinterpret_cast<uint4*>(lo) = make_uint4(h[0], h[1], h[2], h[3]);
    *reinterpret_cast<uint4*>(hi) = make_uint4(h[4], h[5], h[6], h[7]);
}

// Both implementations keep scores and output in the m16n8 accumulator layout: per n-tile of
// 8 columns, 4 floats, (0, 1) in row g and (2, 3) in row g + 8 of the m-tile, columns 2t, 2t + 1.
// A tile of BC keys is BC / 2 floats of scores per thread, a D-wide output D / 2 floats.

// One m-tile's online-softmax step over a tile of BC keys, in log2 units: the causal mask (only
// on tiles crossing the diagonal), the tile's row maxima across the quad, the rescale of the
// running sums and of the output, and P = exp2(S * scale - m) packed straight into f16
// A-fragments for P V. The maxima are taken on the raw scores and scaled once (the scale is
// positive), so each exp2 is one FMA and one MUFU op.
template <int BC, int D, bool CAUSAL>
__device__ __forceinline__ void online_softmax(float (&s)[BC / 2], float (&o)[D / 2], float& m_lo,
                                               float& m_hi, float& l_lo, float& l_hi,
                                               uint32_t (&pa)[BC / 16][4], float score_scale,
                                               int key0, int row0, int g, int t) {
    const int q_lo_idx = row0 + g, q_hi_idx = row0 + g + 8;
    const bool masked = CAUSAL && key0 + BC - 1 > row0;
    float tile_max_lo = NEG_INF, tile_max_hi = NEG_INF;
#pragma unroll
    for (int n = 0; n < BC / 8; ++n) {
        float* sn = &s[4 * n];
        if (masked) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const int key = key0 + n * 8 + 2 * t + (j & 1);
                const int query = (j < 2) ? q_lo_idx : q_hi_idx;
                if (key > query) sn[j] = NEG_INF;
            }
        }
        tile_max_lo = fmaxf(tile_max_lo, fmaxf(sn[0], sn[1]));
        tile_max_hi = fmaxf(tile_max_hi, fmaxf(sn[2], sn[3]));
    }
#pragma unroll
    for (int offset = 1; offset < 4; offset <<= 1) {
        tile_max_lo = fmaxf(tile_max_lo, __shfl_xor_sync(0xffffffffu, tile_max_lo, offset));
        tile_max_hi = fmaxf(tile_max_hi, __shfl_xor_sync(0xffffffffu, tile_max_hi, offset));
    }
    // A row whose keys in this tile are all masked keeps its maximum: every row met key 0 in its
    // first tile, so the maxima are finite.
    const float new_lo = fmaxf(m_lo, tile_max_lo * score_scale);
    const float new_hi = fmaxf(m_hi, tile_max_hi * score_scale);
    const float alpha_lo = fast_exp2(m_lo - new_lo);
    const float alpha_hi = fast_exp2(m_hi - new_hi);
    m_lo = new_lo;
    m_hi = new_hi;
    l_lo *= alpha_lo;
    l_hi *= alpha_hi;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        o[4 * n + 0] *= alpha_lo;
        o[4 * n + 1] *= alpha_lo;
        o[4 * n + 2] *= alpha_hi;
        o[4 * n + 3] *= alpha_hi;
    }
#pragma unroll
    for (int n = 0; n < BC / 8; ++n) {
        const float* sn = &s[4 * n];
        const float p0 = fast_exp2(fmaf(sn[0], score_scale, -new_lo));
        const float p1 = fast_exp2(fmaf(sn[1], score_scale, -new_lo));
        const float p2 = fast_exp2(fmaf(sn[2], score_scale, -new_hi));
        const float p3 = fast_exp2(fmaf(sn[3], score_scale, -new_hi));
        l_lo += p0 + p1;
        l_hi += p2 + p3;
        pa[n / 2][(n & 1) * 2 + 0] = pack_half2(p0, p1);
        pa[n / 2][(n & 1) * 2 + 1] = pack_half2(p2, p3);
    }
}

// The epilogue of one m-tile: the row sums reduced across the quad, the output normalised by
// them and scaled by V's scale, stored as f16 to rows g (`o_lo`) and g + 8 of the output.
template <int D>
__device__ __forceinline__ void store_rows(const float (&o)[D / 2], float l_lo, float l_hi,
                                           float v_scale, __half* o_lo, int t) {
#pragma unroll
    for (int offset = 1; offset < 4; offset <<= 1) {
        l_lo += __shfl_xor_sync(0xffffffffu, l_lo, offset);
        l_hi += __shfl_xor_sync(0xffffffffu, l_hi, offset);
    }
    const float f_lo = v_scale / l_lo, f_hi = v_scale / l_hi;
    __half* o_hi = o_lo + 8 * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        *reinterpret_cast<__half2*>(o_lo + n * 8 + 2 * t) =
            __floats2half2_rn(o[4 * n] * f_lo, o[4 * n + 1] * f_lo);
        *reinterpret_cast<__half2*>(o_hi + n * 8 + 2 * t) =
            __floats2half2_rn(o[4 * n + 2] * f_hi, o[4 * n + 3] * f_hi);
    }
}

// A [N][4] accumulator array seen as the flat [N * 4] the helpers take (same registers).
template <int N>
__device__ __forceinline__ float (&flat(float (&a)[N][4]))[N * 4] {
    return *reinterpret_cast<float(*)[N * 4]>(&a[0][0]);
}

#ifdef SDPA_EXTRA_WORK
// TEST-ONLY KNOB, for demonstrating regression detection; never set in production. Without
// the macro nothing below or in the other `#ifdef SDPA_EXTRA_WORK` blocks is compiled.
//
// With -DSDPA_EXTRA_WORK=1 both implementations run ceil(n_tiles / 20) extra iterations of
// their K/V tile loop per CTA (at least one: 5-6 % more loop work on long loops, more on short
// ones, e.g. 1 in 4 at S = 256), re-processing the CTA's first tiles 0, 1, ... in full: loads,
// widening, Q K^T, online softmax and P V. Every score of an extra tile gets -inf added before
// the softmax (like the causal mask, this relies on score_scale > 0), so its maxima are -inf:
// m keeps its value (finite, since every row met key 0 in the first tile), alpha = exp2(0) = 1,
// P = exp2(-inf) = 0, l += 0 and O += 0 * V. The output does not change, yet each result feeds
// the live scores, sums and accumulators, so nothing can be eliminated. The tiles re-read are
// ones the main loop already processed (so they bring no new data, NaN or otherwise).
__device__ __forceinline__ int extra_tiles(int n_tiles) { return (n_tiles + 19) / 20; }
// The K/V tile that loop iteration `it` processes: 0 .. n_tiles - 1, then 0, 1, ... again.
__device__ __forceinline__ int extra_source_tile(int it, int n_tiles) {
    return it < n_tiles ? it : it - n_tiles;
}
// Scores of an extra tile: finite + (-inf) = -inf, which the compiler cannot fold away.
template <int N> __device__ __forceinline__ void extra_mask(float (&s)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) s[i] += NEG_INF;
}
#endif

// WARPS warps, each owning MT m-tiles of 16 query rows: a CTA owns BR = 16 * MT * WARPS rows.
// Every K/V tile widened into shared memory serves all of them, and with MT = 2 every K or V
// fragment a warp loads from shared memory feeds two MMAs.
template <int D, bool CAUSAL, int WARPS, int MT, int BC, bool Q_IN_SMEM>
__device__ void sdpa_fp8(const uint8_t* __restrict__ q, const uint8_t* __restrict__ k,
                         const uint8_t* __restrict__ v, const float* __restrict__ q_scale,
                         const float* __restrict__ k_scale, const float* __restrict__ v_scale,
                         __half* __restrict__ out, int S) {
    constexpr int BR = 16 * MT * WARPS;            // query rows per CTA
    constexpr int THREADS = 32 * WARPS;
    constexpr int KSTEPS = D / 16;                 // k-steps of Q K^T
    constexpr int NT_S = BC / 8;                   // n-tiles of a score tile
    constexpr int NT_O = D / 8;                    // n-tiles of the output
    constexpr int CHUNKS = BC * D / 16 / THREADS;  // 16-byte chunks per thread per tensor
    constexpr int STRIDE = Tiles<D, BC>::STRIDE;
    extern __shared__ __align__(16) uint8_t smem_raw[];
    Tiles<D, BC>& tiles = *reinterpret_cast<Tiles<D, BC>*>(smem_raw);

    const int head = blockIdx.y;
    const int q_block = blockIdx.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;   // mma group and thread-in-group
    const size_t head_off = (size_t)head * S * D;
    const float score_scale = q_scale[head] * k_scale[head] * rsqrtf((float)D) * LOG2E;

    // This warp's query rows as f16 A-fragments: held in registers for the whole pass, or,
    // when registers are short (D = 128 with two m-tiles), widened once into shared memory and
    // loaded per k-step with ldmatrix.
    const int warp_row0 = q_block * BR + warp * 16 * MT;
    __half* q_tile = reinterpret_cast<__half*>(smem_raw + sizeof(Tiles<D, BC>));
    uint32_t qa[Q_IN_SMEM ? 1 : MT][Q_IN_SMEM ? 1 : KSTEPS][4];
    if constexpr (Q_IN_SMEM) {
        const uint8_t* q_rows = q + head_off + (size_t)q_block * BR * D;
        for (int c = threadIdx.x; c < BR * D / 16; c += THREADS) {
            const int r = c / (D / 16), col = (c % (D / 16)) * 16;
            widen16(&q_tile[r * STRIDE + col], *reinterpret_cast<const uint4*>(q_rows + (size_t)r * D + col));
        }
    } else {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            const uint8_t* q_lo = q + head_off + (size_t)(warp_row0 + mt * 16 + g) * D;
            const uint8_t* q_hi = q_lo + 8 * D;
#pragma unroll
            for (int kk = 0; kk < KSTEPS; ++kk) {
                const int c = kk * 16 + 2 * t;
                qa[mt][kk][0] = widen2(*reinterpret_cast<const uint16_t*>(q_lo + c));
                qa[mt][kk][1] = widen2(*reinterpret_cast<const uint16_t*>(q_hi + c));
                qa[mt][kk][2] = widen2(*reinterpret_cast<const uint16_t*>(q_lo + c + 8));
                qa[mt][kk][3] = widen2(*reinterpret_cast<const uint16_t*>(q_hi + c + 8));
            }
        }
    }

    float o[MT][NT_O][4];
    float m_lo[MT], m_hi[MT], l_lo[MT], l_hi[MT];   // running max (log2 units) and sums
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int n = 0; n < NT_O; ++n) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
        m_lo[mt] = m_hi[mt] = NEG_INF;
        l_lo[mt] = l_hi[mt] = 0.0f;
    }

    // Prefetch of the next tile's raw bytes, in flight while the current tile computes.
    uint4 k_next[CHUNKS], v_next[CHUNKS];
    auto load_tile = [&](int tile) {
        const size_t base = head_off + (size_t)tile * BC * D;
#pragma unroll
        for (int i = 0; i < CHUNKS; ++i) {
            const int c = threadIdx.x + i * THREADS;
            const size_t at = base + (size_t)(c / (D / 16)) * D + (c % (D / 16)) * 16;
            k_next[i] = *reinterpret_cast<const uint4*>(k + at);
            v_next[i] = *reinterpret_cast<const uint4*>(v + at);
        }
    };

    const int n_tiles = CAUSAL ? ((q_block + 1) * BR + BC - 1) / BC : (S / BC);
    load_tile(0);
#ifdef SDPA_EXTRA_WORK
    // Test-only extra iterations (see `extra_tiles`); `tile` is the K/V tile processed.
    const int n_iters = n_tiles + extra_tiles(n_tiles);
    for (int it = 0; it < n_iters; ++it) {
        const int tile = extra_source_tile(it, n_tiles);
#else
    for (int tile = 0; tile < n_tiles; ++tile) {
#endif
        const int key0 = tile * BC;
        __syncthreads();   // every warp is done reading the previous tile
#pragma unroll
        for (int i = 0; i < CHUNKS; ++i) {
            const int c = threadIdx.x + i * THREADS;
            const int r = c / (D / 16), col = (c % (D / 16)) * 16;
            widen16(&tiles.k[r * STRIDE + col], k_next[i]);
            widen16(&tiles.v[r * STRIDE + col], v_next[i]);
        }
        __syncthreads();
#ifdef SDPA_EXTRA_WORK
        if (it + 1 < n_iters) load_tile(extra_source_tile(it + 1, n_tiles));
#else
        if (tile + 1 < n_tiles) load_tile(tile + 1);
#endif

        // A causal warp skips tiles that lie wholly after its last row (it still helped load).
        if (CAUSAL && key0 > warp_row0 + 16 * MT - 1) continue;

        // S = Q K^T for this warp's rows x 64 keys; each K fragment serves every m-tile. For
        // D = 128 one ldmatrix.x4 brings the fragments of two k-steps (measured 4 % faster on
        // `wide`); for D = 64 two 32-bit loads per fragment measured faster (ldmatrix cost
        // 12 % on `long`), so each keeps its own.
        float s[MT][NT_S][4];
#pragma unroll
        for (int n = 0; n < NT_S; ++n)
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
        if constexpr (Q_IN_SMEM) {
            // k-steps outermost: each Q fragment is loaded once per tile and serves every
            // n-tile; each K fragment serves every m-tile.
            const int a_row = (lane & 7) + ((lane >> 3) & 1) * 8, a_col = (lane >> 4) * 8;
            const int k_row = lane & 7, k_col = (lane >> 3) * 8;
#pragma unroll
            for (int kk = 0; kk < KSTEPS; kk += 2) {
                uint32_t a[MT][2][4];
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                    for (int h = 0; h < 2; ++h)
                        ldmatrix_x4(a[mt][h], &q_tile[(warp * 16 * MT + mt * 16 + a_row) * STRIDE + (kk + h) * 16 + a_col]);
#pragma unroll
                for (int n = 0; n < NT_S; ++n) {
                    uint32_t b[4];
                    ldmatrix_x4(b, &tiles.k[(n * 8 + k_row) * STRIDE + kk * 16 + k_col]);
#pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma_f16(s[mt][n], a[mt][0], b[0], b[1]);
                        mma_f16(s[mt][n], a[mt][1], b[2], b[3]);
                    }
                }
            }
        } else {
#pragma unroll
            for (int n = 0; n < NT_S; ++n) {
                if constexpr (D == 128) {
                    const int k_row = lane & 7, k_col = (lane >> 3) * 8;
#pragma unroll
                    for (int kk = 0; kk < KSTEPS; kk += 2) {
                        uint32_t b[4];
                        ldmatrix_x4(b, &tiles.k[(n * 8 + k_row) * STRIDE + kk * 16 + k_col]);
#pragma unroll
                        for (int mt = 0; mt < MT; ++mt) {
                            mma_f16(s[mt][n], qa[mt][kk], b[0], b[1]);
                            mma_f16(s[mt][n], qa[mt][kk + 1], b[2], b[3]);
                        }
                    }
                } else {
                    const __half* krow = &tiles.k[(n * 8 + g) * STRIDE + 2 * t];
#pragma unroll
                    for (int kk = 0; kk < KSTEPS; ++kk) {
                        uint32_t b0 = *reinterpret_cast<const uint32_t*>(krow + kk * 16);
                        uint32_t b1 = *reinterpret_cast<const uint32_t*>(krow + kk * 16 + 8);
#pragma unroll
                        for (int mt = 0; mt < MT; ++mt) mma_f16(s[mt][n], qa[mt][kk], b0, b1);
                    }
                }
            }
        }

#ifdef SDPA_EXTRA_WORK
        if (it >= n_tiles) {   // an extra tile: every score to -inf, so P = 0
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) extra_mask(flat(s[mt]));
        }
#endif
        uint32_t pa[MT][BC / 16][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            online_softmax<BC, D, CAUSAL>(flat(s[mt]), flat(o[mt]), m_lo[mt], m_hi[mt], l_lo[mt],
                                          l_hi[mt], pa[mt], score_scale, key0,
                                          warp_row0 + mt * 16, g, t);
        }

        // O += P V, V's fragments by ldmatrix.trans, two output n-tiles per load, each load
        // serving every m-tile.
        const int v_row = (lane & 7) + ((lane >> 3) & 1) * 8;
        const int v_col = (lane >> 4) * 8;
#pragma unroll
        for (int kb = 0; kb < BC / 16; ++kb) {
#pragma unroll
            for (int n = 0; n < NT_O; n += 2) {
                uint32_t b[4];
                ldmatrix_x4_trans(b, &tiles.v[(kb * 16 + v_row) * STRIDE + n * 8 + v_col]);
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma_f16(o[mt][n], pa[mt][kb], b[0], b[1]);
                    mma_f16(o[mt][n + 1], pa[mt][kb], b[2], b[3]);
                }
            }
        }
    }

    const float vs = v_scale[head];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        const int row = warp_row0 + mt * 16 + g;
        store_rows<D>(flat(o[mt]), l_lo[mt], l_hi[mt], vs, out + head_off + (size_t)row * D, t);
    }
}

// ---------------------------------------------------------------------------------------------
// D = 128 on Hopper (sm_90a): warpgroup MMA (wgmma) with both products fed from shared memory.
//
// One warpgroup (the CTA's 4 warps) owns 128 query rows as two 64-row wgmma tiles. Q K^T runs
// as FP8 wgmma straight from the E4M3 bytes (no widening: QGMMA reads E4M3 natively, at twice
// the f16 rate); P V runs as f16 wgmma with P from registers (the Q K^T accumulator layout is
// the A-register layout) and V widened once per tile into f16 shared memory, as before.
//
// Shared-memory operands use the canonical no-swizzle layout of "core matrices": 8 rows of
// 16 contiguous bytes. For Q and K (K-major, 16 E4M3 per core row) a row r of 16-byte segment
// s sits at s * ROWS * 16 + r * 16, so 8-row groups are 128 bytes apart (the descriptor's
// stride offset) and segments ROWS * 16 apart (its leading offset). V is N-major for P V: the
// core matrix is 8 keys x 8 halves of D, at (key / 8) * 2048 + (d / 8) * 128 + (key % 8) * 16.
// K tiles arrive by cp.async into two buffers (the next tile loads while this one computes);
// V's E4M3 bytes are prefetched into registers and widened after the tile barrier.
// -DSDPA_FORCE_MMA builds the mma.sync kernel on sm_90a too (a variant for `gatekeeper rank`).
#if defined(__CUDA_ARCH_FEAT_SM90_ALL) && !defined(SDPA_FORCE_MMA)
#define SDPA_HAS_WGMMA 1
// S(64 x 64, f32) (+)= A(64 x 32, E4M3, shared) * B(64 keys x 32, E4M3, shared)^T.
__device__ __forceinline__ void wgmma_qk(float d[32], uint64_t desc_a, uint64_t desc_b, int accumulate) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k32.f32.e4m3.e4m3 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1;\n}\n"
        :
          "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// O(64 x 128, f32) += P(64 x 16, f16, registers) * V(16 keys x 128, f16, shared, N-major).
__device__ __forceinline__ void wgmma_pv(float (&d)[64], const uint32_t a[4], uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"
        :
          "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

// O(64 x 64, f32) += P(64 x 16, f16, registers) * V(16 keys x 64, f16, shared, N-major).
__device__ __forceinline__ void wgmma_pv(float (&d)[32], const uint32_t a[4], uint64_t desc_b) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"
        :
          "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

// A shared-memory matrix descriptor, no swizzle: start address, leading (K-direction) and
// stride (M/N-direction) byte offsets between core matrices, each in 16-byte units.
__device__ __forceinline__ uint64_t smem_desc(const void* p, uint32_t leading, uint32_t stride) {
    const uint32_t addr = (uint32_t)__cvta_generic_to_shared(p);
    return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(leading >> 4) << 16) |
           ((uint64_t)(stride >> 4) << 32);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Keeps the compiler from moving accumulator reads or writes across a wgmma fence or wait.
template <int N> __device__ __forceinline__ void pin(float (&r)[N]) {
#pragma unroll
    for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    const uint32_t addr = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(addr), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }
// Generic-proxy shared-memory writes (cp.async, st.shared) made visible to wgmma's reads.
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// The 16-byte item a thread moves: row `r` (query or key) and 16-byte segment `s` of D, from
// a flat index. Lanes 0-7 take 8 consecutive rows (one conflict-free 128-byte shared-memory
// wavefront) and lanes 8-15 the neighbouring segment of the same rows (full 32-byte sectors).
__device__ __forceinline__ void item_of(int idx, int rows, int& r, int& s) {
    const int rest = idx >> 4;
    r = (rest % (rows / 8)) * 8 + (idx & 7);
    s = (rest / (rows / 8)) * 2 + ((idx >> 3) & 1);
}

template <int D, bool CAUSAL>
__device__ void sdpa_fp8_wgmma(const uint8_t* __restrict__ q, const uint8_t* __restrict__ k,
                                    const uint8_t* __restrict__ v, const float* __restrict__ q_scale,
                                    const float* __restrict__ k_scale, const float* __restrict__ v_scale,
                                    __half* __restrict__ out, int S) {
    constexpr int BR = 128, BC = 64, THREADS = 128;
    constexpr int SEGS = D / 16;                       // 16-byte E4M3 segments per row
    constexpr int V_ITEMS = BC * SEGS / THREADS;       // V items per thread per tile
    constexpr int V_KGROUP = (D / 8) * 128;            // bytes between 8-key groups of V
    extern __shared__ __align__(128) uint8_t smem_raw[];
    uint8_t* q_s = smem_raw;                           // BR * D bytes
    uint8_t* k_s = smem_raw + BR * D;                  // two buffers of BC * D bytes
    uint8_t* v_s = smem_raw + BR * D + 2 * BC * D;     // BC * D halves

    const int head = blockIdx.y, q_block = blockIdx.x;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const size_t head_off = (size_t)head * S * D;
    const float score_scale = q_scale[head] * k_scale[head] * rsqrtf((float)D) * LOG2E;

    const uint8_t* q_rows = q + head_off + (size_t)q_block * BR * D;
    for (int i = 0; i < BR * SEGS / THREADS; ++i) {
        int r, s;
        item_of(threadIdx.x + i * THREADS, BR, r, s);
        cp_async16(q_s + s * BR * 16 + r * 16, q_rows + (size_t)r * D + s * 16);
    }
    auto load_k = [&](int tile) {
        const uint8_t* rows = k + head_off + (size_t)tile * BC * D;
        uint8_t* buf = k_s + (tile & 1) * BC * D;
#pragma unroll
        for (int i = 0; i < BC * SEGS / THREADS; ++i) {
            int r, s;
            item_of(threadIdx.x + i * THREADS, BC, r, s);
            cp_async16(buf + s * BC * 16 + r * 16, rows + (size_t)r * D + s * 16);
        }
        cp_async_commit();
    };
    uint4 v_next[V_ITEMS];
    auto load_v = [&](int tile) {
        const uint8_t* rows = v + head_off + (size_t)tile * BC * D;
#pragma unroll
        for (int i = 0; i < V_ITEMS; ++i) {
            int r, s;
            item_of(threadIdx.x + i * THREADS, BC, r, s);
            v_next[i] = *reinterpret_cast<const uint4*>(rows + (size_t)r * D + s * 16);
        }
    };

    float o[2][D / 2];
    float m_lo[2], m_hi[2], l_lo[2], l_hi[2];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
        for (int i = 0; i < 64; ++i) o[mt][i] = 0.0f;
        m_lo[mt] = m_hi[mt] = NEG_INF;
        l_lo[mt] = l_hi[mt] = 0.0f;
    }

    const int n_tiles = CAUSAL ? (q_block + 1) * BR / BC : S / BC;
    load_k(0);   // commits Q's copies with K's first tile
    load_v(0);
#ifdef SDPA_EXTRA_WORK
    // Test-only extra iterations (see `extra_tiles`); `tile` is the K/V tile processed. n_tiles
    // is even (BR = 2 * BC, S a multiple of 128), so the K buffers (tile & 1) still alternate
    // from tile n_tiles - 1 to tile 0.
    const int n_iters = n_tiles + extra_tiles(n_tiles);
    for (int it = 0; it < n_iters; ++it) {
        const int tile = extra_source_tile(it, n_tiles);
#else
    for (int tile = 0; tile < n_tiles; ++tile) {
#endif
        const int key0 = tile * BC;
        cp_async_wait_all();
        fence_async_shared();
        __syncthreads();   // this tile's K is in; every warp is done with the last tile's V
#pragma unroll
        for (int i = 0; i < V_ITEMS; ++i) {
            int r, s;
            item_of(threadIdx.x + i * THREADS, BC, r, s);
            uint8_t* dst = v_s + (r / 8) * V_KGROUP + 2 * s * 128 + (r % 8) * 16;
            widen16_split(dst, dst + 128, v_next[i]);   // 8-column core matrices 128 bytes apart
        }
#ifdef SDPA_EXTRA_WORK
        if (it + 1 < n_iters) {
            const int next = extra_source_tile(it + 1, n_tiles);
            load_k(next);
            load_v(next);
        }
#else
        if (tile + 1 < n_tiles) {
            load_k(tile + 1);
            load_v(tile + 1);
        }
#endif

        // S = Q K^T: four k-steps of 32 E4M3, each K descriptor serving both 64-row tiles.
        float s_acc[2][32];
        const uint8_t* k_buf = k_s + (tile & 1) * BC * D;
        pin(s_acc[0]);
        pin(s_acc[1]);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < D / 32; ++kk) {
            const uint64_t kd = smem_desc(k_buf + kk * 2 * BC * 16, BC * 16, 128);
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
                const uint8_t* qa = q_s + mt * 64 * 16 + kk * 2 * BR * 16;
                wgmma_qk(s_acc[mt], smem_desc(qa, BR * 16, 128), kd, kk > 0);
            }
        }
        wgmma_commit();
        wgmma_wait_all();
        pin(s_acc[0]);
        pin(s_acc[1]);
        fence_async_shared();
        __syncthreads();   // V's widened tile is complete

#ifdef SDPA_EXTRA_WORK
        if (it >= n_tiles) {   // an extra tile: every score to -inf, so P = 0
            extra_mask(s_acc[0]);
            extra_mask(s_acc[1]);
        }
#endif
        uint32_t pa[2][BC / 16][4];
#pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            online_softmax<BC, D, CAUSAL>(s_acc[mt], o[mt], m_lo[mt], m_hi[mt], l_lo[mt], l_hi[mt],
                                          pa[mt], score_scale, key0,
                                          q_block * BR + mt * 64 + warp * 16, g, t);
        }

        // O += P V over four 16-key steps, each V descriptor serving both 64-row tiles. V is
        // N-major here (the instruction's transpose-B form): the leading offset steps over
        // 8-key groups, the stride offset over 8-column core matrices.
        pin(o[0]);
        pin(o[1]);
        wgmma_fence();
#pragma unroll
        for (int kb = 0; kb < BC / 16; ++kb) {
            const uint64_t vd = smem_desc(v_s + kb * 2 * V_KGROUP, V_KGROUP, 128);
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) wgmma_pv(o[mt], pa[mt][kb], vd);
        }
        wgmma_commit();
        wgmma_wait_all();
        pin(o[0]);
        pin(o[1]);
    }

    const float vs = v_scale[head];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
        const int row = q_block * BR + mt * 64 + warp * 16 + g;
        store_rows<D>(o[mt], l_lo[mt], l_hi[mt], vs, out + head_off + (size_t)row * D, t);
    }
}
#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Entry points: head dim D, causal C. A CTA owns 128 query rows and runs 128 threads: grid
// (S / 128, B*H), block 128.
//   - sm_90a: `sdpa_fp8_wgmma` for both head dims (v7: 7-31 % less time than the mma.sync
//     kernel on every shape but `small`, see docs/attention-notes.md); 384 * D bytes of
//     dynamic shared memory.
//   - Elsewhere: `sdpa_fp8` with W warps, MT m-tiles of 16 rows per warp, BC keys per tile, Q in
//     registers or shared memory, chosen from measurements (v5, v6): D = 64 as 4 warps x 2
//     m-tiles, 64-key tiles, Q in registers; D = 128 as 4 x 2 with 32-key tiles and Q in
//     shared memory (the only fit in 255 registers). 256 * (D + 8) bytes for D = 64,
//     384 * (D + 8) for D = 128.
#define SDPA_ENTRY(NAME, D, C, W, MT, BC, QS)                                               \
    extern "C" __global__ void __launch_bounds__(32 * W)                                   \
        NAME(const uint8_t* q, const uint8_t* k, const uint8_t* v, const float* qs,        \
             const float* ks, const float* vs, __half* out, int S) {                       \
        sdpa_fp8<D, C, W, MT, BC, QS>(q, k, v, qs, ks, vs, out, S);                        \
    }

#if SDPA_HAS_WGMMA
#define SDPA_WGMMA_ENTRY(NAME, D, C)                                                         \
    extern "C" __global__ void __launch_bounds__(128)                                      \
        NAME(const uint8_t* q, const uint8_t* k, const uint8_t* v, const float* qs,        \
             const float* ks, const float* vs, __half* out, int S) {                       \
        sdpa_fp8_wgmma<D, C>(q, k, v, qs, ks, vs, out, S);                                 \
    }
SDPA_WGMMA_ENTRY(sdpa_fp8_stage_c_d64_c0, 64, 0)
SDPA_WGMMA_ENTRY(sdpa_fp8_stage_c_d64_c1, 64, 1)
SDPA_WGMMA_ENTRY(sdpa_fp8_stage_c_d128_c0, 128, 0)
SDPA_WGMMA_ENTRY(sdpa_fp8_stage_c_d128_c1, 128, 1)
#else
// The mma.sync kernel's levers per head dim, as "W, MT, BC, QS" (warps, m-tiles per warp, keys
// per tile, Q in shared memory): the measured best by default, another in a gates.yaml variant
// (-DSDPA_D64_MMA=8,1,64,false). The launch must match: 32 * W threads, S / (16 * MT * W) CTAs
// along x, 2 * BC * (D + 8) * 2 bytes of shared memory, plus 16 * MT * W * (D + 8) * 2 with QS.
#ifndef SDPA_D64_MMA
#define SDPA_D64_MMA 4, 2, 64, false
#endif
#ifndef SDPA_D128_MMA
#define SDPA_D128_MMA 4, 2, 32, true
#endif
#define SDPA_ENTRY_OF(...) SDPA_ENTRY(__VA_ARGS__)
SDPA_ENTRY_OF(sdpa_fp8_stage_c_d64_c0, 64, 0, SDPA_D64_MMA)
SDPA_ENTRY_OF(sdpa_fp8_stage_c_d64_c1, 64, 1, SDPA_D64_MMA)
SDPA_ENTRY_OF(sdpa_fp8_stage_c_d128_c0, 128, 0, SDPA_D128_MMA)
SDPA_ENTRY_OF(sdpa_fp8_stage_c_d128_c1, 128, 1, SDPA_D128_MMA)
#endif

