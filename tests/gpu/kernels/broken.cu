// Deliberately broken kernels: each must be caught by gatekeeper with the right verdict.

extern "C" __global__ void nan_output(const float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = (i == n / 2) ? __int_as_float(0x7fc00000) : a * x[i] + y[i];
}

extern "C" __global__ void unwritten_one(const float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n - 1) out[i] = a * x[i] + y[i];
}

extern "C" __global__ void oob_write(const float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * x[i] + y[i];
    if (i == 0) out[n] = 0.0f;  // one past the end: does not fault, corrupts a neighbour
}

__device__ volatile int keep_going = 1;
extern "C" __global__ void endless_loop(const float* x, const float* y, float* out, float a, int n) {
    while (keep_going) {
    }
}

// Correct on its first launch only: later launches see the block counter past the grid.
__device__ unsigned int blocks_seen = 0;
extern "C" __global__ void first_call_only(const float* x, const float* y, float* out, float a, int n) {
    __shared__ unsigned int ticket;
    if (threadIdx.x == 0) ticket = atomicAdd(&blocks_seen, 1u);
    __syncthreads();
    if (ticket >= gridDim.x) return;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = a * x[i] + y[i];
}

extern "C" __global__ void inputs_overwritten(float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = a * x[i] + y[i];
        x[i] = 0.0f;  // scratch use of an input
    }
}

// Hard-codes the small shape's size: right for N = 4096, wrong for anything else.
extern "C" __global__ void one_shape_only(const float* x, const float* y, float* out, float a, int n) {
    const int fixed = 4096;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < fixed && i < n) out[i] = a * x[i] + y[i];
}

extern "C" __global__ void illegal_address(const float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i == 0) *(volatile float*)(out + (1ll << 40)) = 1.0f;  // far outside any allocation
}

// Faults on the small shape only: the runner serving the kernel must be replaced after the
// fault, and the large shape measured by a fresh one.
extern "C" __global__ void faults_when_small(const float* x, const float* y, float* out, float a, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (n == 4096) {
        if (i == 0) *(volatile float*)(out + (1ll << 40)) = 1.0f;
        return;
    }
    if (i < n) out[i] = a * x[i] + y[i];
}
