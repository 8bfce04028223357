// fp8 inputs, f16 / bf16 / i32 outputs: exercises every dtype the runner supports.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>

extern "C" __global__ void widen(const __nv_fp8_e4m3* x, const float* scale, __half* out_h,
                                 __nv_bfloat16* out_b, int* out_i, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = float(x[i]) * scale[0];
        out_h[i] = __float2half(v);
        out_b[i] = __float2bfloat16(v);
        out_i[i] = __float2int_rn(v * 4.0f);
    }
}

// The reference writes f32 for floating outputs and int for i32 ones (compared exactly).
extern "C" __global__ void widen_ref(const __nv_fp8_e4m3* x, const float* scale, float* out_h,
                                     float* out_b, int* out_i, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = float(x[i]) * scale[0];
        out_h[i] = v;
        out_b[i] = v;
        out_i[i] = __float2int_rn(v * 4.0f);
    }
}
