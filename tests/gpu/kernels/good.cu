// Correct kernels for gatekeeper's GPU tests.

extern "C" __global__ void saxpy(const float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * x[i] + y[i];
}

// The reference: same arithmetic, written plainly, outputs in f32.
extern "C" __global__ void saxpy_ref(const float* x, const float* y, float* out, float a, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        out[i] = __fmaf_rn(a, x[i], y[i]);
}

// A tiny kernel on stream 0 while saxpy runs on stream 1: the "hidden work" layout.
extern "C" __global__ void touch(float* out) {
    if (threadIdx.x == 0 && blockIdx.x == 0) (void)out;
}

// Spins for a known wall time, measured by the GPU's global timer: a timing yardstick.
extern "C" __global__ void spin_ns(float* out, unsigned long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while (now - start < ns);
    if (threadIdx.x == 0) out[0] = 1.0f;
}

extern "C" __global__ void one(float* out) {
    out[0] = 1.0f;
}
