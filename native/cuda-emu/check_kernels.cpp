// Kernels of the emulator's own checks (emu_test.cpp launches them; the engine never does: they are in no module's
// PTX). They misbehave on purpose or pin down one semantic. In the library, so that its shared-memory section holds
// theirs too.
#include "cuda_emu.h"

extern "C" __global__ void emu_test_shuffle(const float* x, float* down, float* butterfly)
{
    int t = threadIdx.x;
    float v = x[t], w = x[t];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    for (int o = 16; o > 0; o >>= 1) w += __shfl_xor_sync(0xffffffffu, w, o);
    down[t] = v;
    butterfly[t] = w;
}

extern "C" __global__ void emu_test_rotate(const float* x, float* y)
{
    __shared__ float s[256];
    int t = threadIdx.x, n = blockDim.x;
    s[t] = x[blockIdx.x * n + t];
    __syncthreads();
    y[blockIdx.x * n + t] = s[(t + 1) % n];   // another thread's write: needs the barrier
}

extern "C" __global__ void emu_test_racy(const float* x, float* y)
{
    __shared__ float s[256];
    int t = threadIdx.x, n = blockDim.x;
    s[t] = x[t];
    y[t] = s[(t + 1) % n];   // no barrier: which value it reads depends on the order the threads run
}

extern "C" __global__ void emu_test_write(float* y, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) y[i] = 1.f;
}

extern "C" __global__ void emu_test_divergent(float* y)
{
    float v = (float)threadIdx.x;
    if (threadIdx.x < 16) __syncthreads();
    else v += __shfl_down_sync(0xffffffffu, v, 1);
    y[threadIdx.x] = v;
}

extern "C" __global__ void emu_test_uninit_shared(float* y)
{
    __shared__ float s[64];
    y[threadIdx.x] = s[threadIdx.x];   // nothing wrote it: a GPU gives whatever was there, the emulator NaN
}

EMU_REGISTER(emu_test_shuffle)
EMU_REGISTER(emu_test_rotate)
EMU_REGISTER(emu_test_racy)
EMU_REGISTER(emu_test_write)
EMU_REGISTER(emu_test_divergent)
EMU_REGISTER(emu_test_uninit_shared)
