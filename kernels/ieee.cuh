// IEEE 754-2019 maximum / minimum, as MathF.Max / Min and TensorPrimitives.Max / Min on the CPU: NaN if either is
// NaN, +0 above -0. One definition for every module that needs them (element-wise, reductions, bounds).
#pragma once

__device__ __forceinline__ float engine_max(float a, float b)
{
    if (isnan(a) || isnan(b)) return __fadd_rn(a, b);
    if (a == b) return __int_as_float(__float_as_int(a) & __float_as_int(b));
    return a > b ? a : b;
}

__device__ __forceinline__ float engine_min(float a, float b)
{
    if (isnan(a) || isnan(b)) return __fadd_rn(a, b);
    if (a == b) return __int_as_float(__float_as_int(a) | __float_as_int(b));
    return a < b ? a : b;
}
