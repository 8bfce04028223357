// Compute-bound work whose time scales with ITERS: the benchmark's yardstick kernel.
// WORK_SCALE_PERCENT > 100 adds a second chain of iterations whose result is folded in as
// (w - w) = 0, so a slower build computes the same output.
#ifndef WORK_SCALE_PERCENT
#define WORK_SCALE_PERCENT 100
#endif

extern "C" __global__ void fma_work(const float* x, float* out, int n, int iters) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i];
    for (int k = 0; k < iters; ++k) v = __fmaf_rn(v, 0.999f, 0.001f);
#if WORK_SCALE_PERCENT > 100
    float w = v;
    int extra = iters * (WORK_SCALE_PERCENT - 100) / 100;
    for (int k = 0; k < extra; ++k) w = __fmaf_rn(w, 0.999f, 0.001f);
    v = v + (w - w);
#endif
    out[i] = v;
}
