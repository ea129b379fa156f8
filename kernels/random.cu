// Counter-based random numbers: Philox4x32-10 exactly as src/Engine/Tensors/Philox.cs, so element i of a random
// tensor is the same number on every device for the same (seed, counter).
//  * random_uniform: quad q uses counter + q; its four words give elements 4q..4q+3 as low + scale * unit(w),
//    with unit(w) = (w >> 8) * 2^-24 (exact) and the multiply-add rounded twice like the CPU (no FMA): bit-exact.
//  * random_normal: pair q uses counter + q; Box-Muller in double from words 0 and 1 like the CPU. CUDA's double
//    log / sin / cos are within 1-2 ulp of glibc's, so after rounding to float the result matches the CPU except
//    when the double lies within a few ulp of a float rounding boundary (about one element in 10^8, off by 1 ulp).
// 1-D grid-stride loops over quads / pairs.

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ uint4 philox4x32_10(unsigned long long seed, unsigned long long counter)
{
    unsigned c0 = (unsigned)counter, c1 = (unsigned)(counter >> 32), c2 = 0u, c3 = 0u;
    unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
#pragma unroll
    for (int r = 0; r < 10; r++)
    {
        unsigned hi0 = __umulhi(PHILOX_M0, c0), lo0 = PHILOX_M0 * c0;
        unsigned hi1 = __umulhi(PHILOX_M1, c2), lo1 = PHILOX_M1 * c2;
        unsigned n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0; k1 += PHILOX_W1;
    }
    return make_uint4(c0, c1, c2, c3);
}

// [0, 1) with 24 bits (Philox.ToUnit) and (0, 1] (Philox.ToUnitOpen); both products are exact.
__device__ __forceinline__ float philox_unit(unsigned w) { return __fmul_rn((float)(w >> 8), 5.9604644775390625e-08f); }
__device__ __forceinline__ float philox_unit_open(unsigned w) { return __fmul_rn((float)((w >> 8) + 1u), 5.9604644775390625e-08f); }

__device__ __forceinline__ float uniform_at(unsigned w, float low, float scale) { return __fadd_rn(low, __fmul_rn(scale, philox_unit(w))); }

// y[i] = low + scale * unit, scale = high - low rounded on the host like the CPU.
extern "C" __global__ void random_uniform(float* y, int n, unsigned long long seed, unsigned long long counter, float low, float scale)
{
    unsigned un = (unsigned)n;
    unsigned quads = (un + 3u) >> 2;
    bool vec = (((unsigned long long)y) & 15ULL) == 0;
    for (unsigned q = blockIdx.x * blockDim.x + threadIdx.x; q < quads; q += gridDim.x * blockDim.x)
    {
        uint4 w = philox4x32_10(seed, counter + q);
        unsigned i = q << 2;
        float4 v = make_float4(uniform_at(w.x, low, scale), uniform_at(w.y, low, scale), uniform_at(w.z, low, scale), uniform_at(w.w, low, scale));
        if (vec && i + 3u < un) ((float4*)y)[q] = v;
        else
        {
            y[i] = v.x;
            if (i + 1u < un) y[i + 1] = v.y;
            if (i + 2u < un) y[i + 2] = v.z;
            if (i + 3u < un) y[i + 3] = v.w;
        }
    }
}

// y[2q], y[2q+1] = mean + std * (r cos th, r sin th), r = sqrt(-2 log u0), th = 2 pi u1, in double like the CPU.
extern "C" __global__ void random_normal(float* y, int n, unsigned long long seed, unsigned long long counter, float mean, float stdev)
{
    unsigned un = (unsigned)n;
    unsigned pairs = (un + 1u) >> 1;
    bool vec = (((unsigned long long)y) & 7ULL) == 0;
    for (unsigned q = blockIdx.x * blockDim.x + threadIdx.x; q < pairs; q += gridDim.x * blockDim.x)
    {
        uint4 w = philox4x32_10(seed, counter + q);
        double r = sqrt(-2.0 * log((double)philox_unit_open(w.x)));
        double th = (2.0 * 3.141592653589793) * (double)philox_unit(w.y);
        float a = __fadd_rn(mean, __fmul_rn(stdev, (float)(r * cos(th))));
        float b = __fadd_rn(mean, __fmul_rn(stdev, (float)(r * sin(th))));
        unsigned i = q << 1;
        if (vec && i + 1u < un) ((float2*)y)[q] = make_float2(a, b);
        else
        {
            y[i] = a;
            if (i + 1u < un) y[i + 1] = b;
        }
    }
}
