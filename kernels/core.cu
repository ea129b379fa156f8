// Core kernels of CudaKernels (Fill uses cuMemsetD32Async, Copy cuMemcpyDtoDAsync, Gemm cuBLAS).
#include "common.cuh"

// y[i] += alpha * x[i] (x may alias y: no __restrict__). The product is rounded before the add (no FMA contraction) to match the CPU's
// TensorPrimitives.MultiplyAdd / Add bit for bit.
extern "C" __global__ void axpy_f32(float alpha, const float* x, float* y, int n)
{
    GRID_STRIDE_LOOP(i, n) y[i] = __fadd_rn(__fmul_rn(alpha, x[i]), y[i]);
}
