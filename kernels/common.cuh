// Shared helpers for the kernels in kernels/*.cu (passed to NVRTC as a header; no standard headers: NVRTC has none).
#pragma once

// A by-value int array parameter: KernelParams.Ints(values, N) packs exactly this layout.
template <int N> struct IntArray { int v[N]; };
typedef IntArray<8> Ints8;

// Grid-stride loop over [0, n): the host launches at most enough blocks to fill the device (Launch1D).
#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); i += (long long)gridDim.x * blockDim.x)

// Float bits for IEEE constants without <cmath> macros.
__device__ __forceinline__ float engine_nan() { return __int_as_float(0x7fc00000); }
__device__ __forceinline__ float engine_inf() { return __int_as_float(0x7f800000); }
