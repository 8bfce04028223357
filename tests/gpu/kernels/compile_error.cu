extern "C" __global__ void does_not_compile(float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x
    if (i < n) out[i] = 0.0f;
}
