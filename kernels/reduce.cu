// Reductions, arg max / min and softmax over the middle axis of a contiguous [outer, size, inner] array,
// with the semantics of src/Engine/Cpu/CpuKernels.Reduce.cs / CpuKernels.Softmax.cs.
//
// Shapes and launches (the host picks one):
//  * inner == 1 (contiguous rows): *_rows_warp kernels give each row one warp (rows up to 1024 long; 256-thread
//    blocks hold 8 rows), *_rows_block kernels give each row one block (256 threads) - both grid-stride over rows.
//  * inner > 1: *_cols kernels use 32x8 blocks: threadIdx.x walks 32 adjacent columns (coalesced), threadIdx.y
//    splits the reduced axis 8 ways, combined through shared memory; grid = (ceil(inner/32), min(outer, 65535)),
//    grid-stride over outer.
//  * few outputs over a long axis: reduce_*_part kernels reduce segments of the axis into partials
//    ([outer, segs, inner]), reduce_combine_* folds them (one warp per output).
// Combining orders differ from the CPU's, so sums agree to rounding; max / min / arg max / arg min agree exactly.
// Every reduction tree is fixed by the launch shape alone, so results are deterministic run to run.

#include "ieee.cuh"

#define R_SUM 0
#define R_MEAN 1
#define R_MAX 2
#define R_MIN 3
#define R_LSE 4

#define FULL_MASK 0xffffffffu
#define COLS_X 32
#define COLS_Y 8

// C: R_SUM, R_MAX or R_MIN (the combining step of each reduction).
template <int C> __device__ __forceinline__ float rd_combine(float a, float b)
{
    return C == R_MAX ? engine_max(a, b) : C == R_MIN ? engine_min(a, b) : __fadd_rn(a, b);
}

template <int C> __device__ __forceinline__ float rd_identity()
{
    return C == R_MAX ? -__int_as_float(0x7f800000) : C == R_MIN ? __int_as_float(0x7f800000) : 0.f;
}

// Butterfly all-reduce: every lane ends with the same value (each pairwise step is commutative).
template <int C> __device__ __forceinline__ float warp_allreduce(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = rd_combine<C>(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// Whole-block all-reduce (blockDim.x a multiple of 32, at most 1024); every thread must call it.
template <int C> __device__ __forceinline__ float block_allreduce(float v, float* sh)
{
    v = warp_allreduce<C>(v);
    int nw = blockDim.x >> 5;
    __syncthreads();   // sh may still be read by the previous call
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float r = sh[0];
    for (int k = 1; k < nw; k++) r = rd_combine<C>(r, sh[k]);
    return r;
}

// A row's worker group: one warp (WARP) or the whole block.
template <bool WARP> struct RowGroup
{
    __device__ __forceinline__ static int lane() { return WARP ? (threadIdx.x & 31) : threadIdx.x; }
    __device__ __forceinline__ static int size() { return WARP ? 32 : blockDim.x; }
    __device__ __forceinline__ static int first() { return WARP ? (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5) : (int)blockIdx.x; }
    __device__ __forceinline__ static int step() { return WARP ? (int)((gridDim.x * blockDim.x) >> 5) : (int)gridDim.x; }
    template <int C> __device__ __forceinline__ static float allreduce(float v, float* sh)
    {
        return WARP ? warp_allreduce<C>(v) : block_allreduce<C>(v, sh);
    }
};

// Column all-reduce over threadIdx.y in a 32x8 block: every thread gets its column's value. All threads call it.
template <int C> __device__ __forceinline__ float cols_allreduce(float v, float (*sh)[COLS_X + 1])
{
    __syncthreads();
    sh[threadIdx.y][threadIdx.x] = v;
    __syncthreads();
    float r = sh[0][threadIdx.x];
#pragma unroll
    for (int k = 1; k < COLS_Y; k++) r = rd_combine<C>(r, sh[k][threadIdx.x]);
    return r;
}

// m + log(s) where m is finite, else m (all -inf stays -inf; +inf and NaN pass through).
__device__ __forceinline__ float lse_finish(float m, float s) { return isfinite(m) ? __fadd_rn(m, logf(s)) : m; }

// ---------------------------------------------------------------- reduce

// y[i] = value: the result of a reduction over an empty axis.
extern "C" __global__ void reduce_fill(float* y, int n, float value)
{
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned)n; i += gridDim.x * blockDim.x) y[i] = value;
}

template <int OP, bool WARP>
__device__ __forceinline__ void reduce_rows_body(const float* x, float* y, int outer, int size)
{
    typedef RowGroup<WARP> G;
    __shared__ float sh[32];
    for (int row = G::first(); row < outer; row += G::step())
    {
        const float* xr = x + (long long)row * size;
        float r;
        if (OP == R_LSE)
        {
            float m = rd_identity<R_MAX>();
            for (int j = G::lane(); j < size; j += G::size()) m = engine_max(m, xr[j]);
            m = G::template allreduce<R_MAX>(m, sh);
            if (isfinite(m))
            {
                float s = 0.f;
                for (int j = G::lane(); j < size; j += G::size()) s = __fadd_rn(s, expf(__fsub_rn(xr[j], m)));
                s = G::template allreduce<R_SUM>(s, sh);
                r = __fadd_rn(m, logf(s));
            }
            else r = m;
        }
        else
        {
            const int C = OP == R_MEAN ? R_SUM : OP;
            float a = rd_identity<C>();
            for (int j = G::lane(); j < size; j += G::size()) a = rd_combine<C>(a, xr[j]);
            a = G::template allreduce<C>(a, sh);
            r = OP == R_MEAN ? __fdiv_rn(a, (float)size) : a;   // the CPU's row path divides
        }
        if (G::lane() == 0) y[row] = r;
    }
}

template <int OP>
__device__ __forceinline__ void reduce_cols_body(const float* x, float* y, int outer, int size, int inner)
{
    __shared__ float sh[COLS_Y][COLS_X + 1];
    int col = blockIdx.x * COLS_X + threadIdx.x;
    bool active = col < inner;
    for (int o = blockIdx.y; o < outer; o += gridDim.y)
    {
        const float* xo = x + (long long)o * size * inner + col;
        float r;
        if (OP == R_LSE)
        {
            float m = rd_identity<R_MAX>();
            if (active) for (int s = threadIdx.y; s < size; s += COLS_Y) m = engine_max(m, xo[(long long)s * inner]);
            m = cols_allreduce<R_MAX>(m, sh);
            float e = 0.f;
            if (active && isfinite(m))
                for (int s = threadIdx.y; s < size; s += COLS_Y) e = __fadd_rn(e, expf(__fsub_rn(xo[(long long)s * inner], m)));
            e = cols_allreduce<R_SUM>(e, sh);
            r = lse_finish(m, e);
        }
        else
        {
            const int C = OP == R_MEAN ? R_SUM : OP;
            float a = rd_identity<C>();
            if (active) for (int s = threadIdx.y; s < size; s += COLS_Y) a = rd_combine<C>(a, xo[(long long)s * inner]);
            a = cols_allreduce<C>(a, sh);
            r = OP == R_MEAN ? __fmul_rn(a, __fdiv_rn(1.f, (float)size)) : a;   // the CPU's column path scales by 1/size
        }
        if (active && threadIdx.y == 0) y[(long long)o * inner + col] = r;
    }
}

// Partials over segments of the reduced axis: block (blockIdx.x) = one (o, seg) for rows (inner == 1), or
// grid (column tile, o, seg) for columns. Sum / Mean store sums, Max / Min their value, LogSumExp the segment max
// in pm and Σ e^(x - max) in ps (0 where the max is not finite). Partials are laid out [outer, segs, inner].
template <int OP>
__device__ __forceinline__ void reduce_rows_part_body(const float* x, float* pm, float* ps, int outer, int size, int segs, int segLen)
{
    __shared__ float sh[32];
    for (int item = blockIdx.x; item < outer * segs; item += gridDim.x)
    {
        int o = item / segs, g = item - o * segs;
        int s0 = g * segLen, s1 = min(size, s0 + segLen);
        const float* xr = x + (long long)o * size;
        if (OP == R_LSE)
        {
            float m = rd_identity<R_MAX>();
            for (int j = s0 + threadIdx.x; j < s1; j += blockDim.x) m = engine_max(m, xr[j]);
            m = block_allreduce<R_MAX>(m, sh);
            float e = 0.f;
            if (isfinite(m)) for (int j = s0 + threadIdx.x; j < s1; j += blockDim.x) e = __fadd_rn(e, expf(__fsub_rn(xr[j], m)));
            e = block_allreduce<R_SUM>(e, sh);
            if (threadIdx.x == 0) { pm[item] = m; ps[item] = e; }
        }
        else
        {
            const int C = OP == R_MEAN ? R_SUM : OP;
            float a = rd_identity<C>();
            for (int j = s0 + threadIdx.x; j < s1; j += blockDim.x) a = rd_combine<C>(a, xr[j]);
            a = block_allreduce<C>(a, sh);
            if (threadIdx.x == 0) pm[item] = a;
        }
    }
}

template <int OP>
__device__ __forceinline__ void reduce_cols_part_body(const float* x, float* pm, float* ps, int outer, int size, int inner, int segs, int segLen)
{
    __shared__ float sh[COLS_Y][COLS_X + 1];
    int col = blockIdx.x * COLS_X + threadIdx.x;
    bool active = col < inner;
    int g = blockIdx.z;
    int s0 = g * segLen, s1 = min(size, s0 + segLen);
    for (int o = blockIdx.y; o < outer; o += gridDim.y)
    {
        const float* xo = x + (long long)o * size * inner + col;
        long long at = ((long long)o * segs + g) * inner + col;
        if (OP == R_LSE)
        {
            float m = rd_identity<R_MAX>();
            if (active) for (int s = s0 + threadIdx.y; s < s1; s += COLS_Y) m = engine_max(m, xo[(long long)s * inner]);
            m = cols_allreduce<R_MAX>(m, sh);
            float e = 0.f;
            if (active && isfinite(m))
                for (int s = s0 + threadIdx.y; s < s1; s += COLS_Y) e = __fadd_rn(e, expf(__fsub_rn(xo[(long long)s * inner], m)));
            e = cols_allreduce<R_SUM>(e, sh);
            if (active && threadIdx.y == 0) { pm[at] = m; ps[at] = isfinite(m) ? e : 0.f; }
        }
        else
        {
            const int C = OP == R_MEAN ? R_SUM : OP;
            float a = rd_identity<C>();
            if (active) for (int s = s0 + threadIdx.y; s < s1; s += COLS_Y) a = rd_combine<C>(a, xo[(long long)s * inner]);
            a = cols_allreduce<C>(a, sh);
            if (active && threadIdx.y == 0) pm[at] = a;
        }
    }
}

// y[o, i] = the partials [o, 0..segs, i] folded; one warp per output, 256-thread blocks, grid-stride.
template <int OP>
__device__ __forceinline__ void reduce_combine_body(const float* pm, const float* ps, float* y, int outer, int segs, int inner, int size)
{
    int lane = threadIdx.x & 31;
    int total = outer * inner;
    for (int w = (int)((blockIdx.x * blockDim.x + threadIdx.x) >> 5); w < total; w += (int)((gridDim.x * blockDim.x) >> 5))
    {
        int o = w / inner, i = w - o * inner;
        long long base = (long long)o * segs * inner + i;
        float r;
        if (OP == R_LSE)
        {
            float m = rd_identity<R_MAX>();
            for (int g = lane; g < segs; g += 32) m = engine_max(m, pm[base + (long long)g * inner]);
            m = warp_allreduce<R_MAX>(m);
            float e = 0.f;
            if (isfinite(m))
                for (int g = lane; g < segs; g += 32)
                {
                    float mk = pm[base + (long long)g * inner];
                    // A segment of only -inf adds nothing; finite segments scale their sum to the common max.
                    if (mk != -__int_as_float(0x7f800000))
                        e = __fadd_rn(e, __fmul_rn(ps[base + (long long)g * inner], expf(__fsub_rn(mk, m))));
                }
            e = warp_allreduce<R_SUM>(e);
            r = lse_finish(m, e);
        }
        else
        {
            const int C = OP == R_MEAN ? R_SUM : OP;
            float a = rd_identity<C>();
            for (int g = lane; g < segs; g += 32) a = rd_combine<C>(a, pm[base + (long long)g * inner]);
            a = warp_allreduce<C>(a);
            r = OP == R_MEAN ? (inner == 1 ? __fdiv_rn(a, (float)size) : __fmul_rn(a, __fdiv_rn(1.f, (float)size))) : a;
        }
        if (lane == 0) y[w] = r;
    }
}

#define REDUCE_KERNELS(name, OP)                                                                                       \
    extern "C" __global__ void reduce_##name##_rows_warp(const float* x, float* y, int outer, int size)                \
    { reduce_rows_body<OP, true>(x, y, outer, size); }                                                                 \
    extern "C" __global__ void reduce_##name##_rows_block(const float* x, float* y, int outer, int size)               \
    { reduce_rows_body<OP, false>(x, y, outer, size); }                                                                \
    extern "C" __global__ void reduce_##name##_cols(const float* x, float* y, int outer, int size, int inner)          \
    { reduce_cols_body<OP>(x, y, outer, size, inner); }                                                                \
    extern "C" __global__ void reduce_##name##_rows_part(const float* x, float* pm, float* ps, int outer, int size,    \
                                                         int segs, int segLen)                                         \
    { reduce_rows_part_body<OP>(x, pm, ps, outer, size, segs, segLen); }                                               \
    extern "C" __global__ void reduce_##name##_cols_part(const float* x, float* pm, float* ps, int outer, int size,    \
                                                         int inner, int segs, int segLen)                              \
    { reduce_cols_part_body<OP>(x, pm, ps, outer, size, inner, segs, segLen); }                                        \
    extern "C" __global__ void reduce_##name##_combine(const float* pm, const float* ps, float* y, int outer,          \
                                                       int segs, int inner, int size)                                  \
    { reduce_combine_body<OP>(pm, ps, y, outer, segs, inner, size); }

REDUCE_KERNELS(sum, R_SUM)
REDUCE_KERNELS(mean, R_MEAN)
REDUCE_KERNELS(max, R_MAX)
REDUCE_KERNELS(min, R_MIN)
REDUCE_KERNELS(logsumexp, R_LSE)

// ---------------------------------------------------------------- arg max / arg min

// Offers candidate (v, i) to the running best (bv, bi); bi < 0 means none yet. A NaN beats every number and the
// earlier NaN beats a later one; otherwise strictly better wins and equal values keep the smaller index. This is a
// strict total order on (value, index), so any combining order picks the CPU's answer: the first best element.
template <bool MAX> __device__ __forceinline__ void arg_offer(float& bv, int& bi, float v, int i)
{
    bool take;
    if (i < 0) take = false;
    else if (bi < 0) take = true;
    else if (isnan(bv)) take = isnan(v) && i < bi;
    else if (isnan(v)) take = true;
    else take = (MAX ? v > bv : v < bv) || (v == bv && i < bi);
    if (take) { bv = v; bi = i; }
}

template <bool MAX> __device__ __forceinline__ void arg_warp_allreduce(float& bv, int& bi)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
    {
        float v = __shfl_xor_sync(FULL_MASK, bv, o);
        int i = __shfl_xor_sync(FULL_MASK, bi, o);
        arg_offer<MAX>(bv, bi, v, i);
    }
}

template <bool MAX, bool WARP>
__device__ __forceinline__ void arg_rows_body(const float* x, float* y, int outer, int size)
{
    typedef RowGroup<WARP> G;
    __shared__ float shv[32];
    __shared__ int shi[32];
    for (int row = G::first(); row < outer; row += G::step())
    {
        const float* xr = x + (long long)row * size;
        float bv = 0.f;
        int bi = -1;
        for (int j = G::lane(); j < size; j += G::size()) arg_offer<MAX>(bv, bi, xr[j], j);
        arg_warp_allreduce<MAX>(bv, bi);
        if (!WARP)
        {
            __syncthreads();
            if ((threadIdx.x & 31) == 0) { shv[threadIdx.x >> 5] = bv; shi[threadIdx.x >> 5] = bi; }
            __syncthreads();
            bv = shv[0]; bi = shi[0];
            for (int k = 1; k < (int)(blockDim.x >> 5); k++) arg_offer<MAX>(bv, bi, shv[k], shi[k]);
        }
        if (G::lane() == 0) y[row] = (float)bi;
    }
}

template <bool MAX>
__device__ __forceinline__ void arg_cols_body(const float* x, float* y, int outer, int size, int inner)
{
    __shared__ float shv[COLS_Y][COLS_X + 1];
    __shared__ int shi[COLS_Y][COLS_X + 1];
    int col = blockIdx.x * COLS_X + threadIdx.x;
    bool active = col < inner;
    for (int o = blockIdx.y; o < outer; o += gridDim.y)
    {
        const float* xo = x + (long long)o * size * inner + col;
        float bv = 0.f;
        int bi = -1;
        if (active) for (int s = threadIdx.y; s < size; s += COLS_Y) arg_offer<MAX>(bv, bi, xo[(long long)s * inner], s);
        __syncthreads();
        shv[threadIdx.y][threadIdx.x] = bv; shi[threadIdx.y][threadIdx.x] = bi;
        __syncthreads();
        if (active && threadIdx.y == 0)
        {
            for (int k = 1; k < COLS_Y; k++) arg_offer<MAX>(bv, bi, shv[k][threadIdx.x], shi[k][threadIdx.x]);
            y[(long long)o * inner + col] = (float)bi;
        }
    }
}

extern "C" __global__ void argmax_rows_warp(const float* x, float* y, int outer, int size) { arg_rows_body<true, true>(x, y, outer, size); }
extern "C" __global__ void argmax_rows_block(const float* x, float* y, int outer, int size) { arg_rows_body<true, false>(x, y, outer, size); }
extern "C" __global__ void argmax_cols(const float* x, float* y, int outer, int size, int inner) { arg_cols_body<true>(x, y, outer, size, inner); }
extern "C" __global__ void argmin_rows_warp(const float* x, float* y, int outer, int size) { arg_rows_body<false, true>(x, y, outer, size); }
extern "C" __global__ void argmin_rows_block(const float* x, float* y, int outer, int size) { arg_rows_body<false, false>(x, y, outer, size); }
extern "C" __global__ void argmin_cols(const float* x, float* y, int outer, int size, int inner) { arg_cols_body<false>(x, y, outer, size, inner); }

// ---------------------------------------------------------------- softmax / log-softmax

// Forward, as SoftmaxRow: m = max, e = e^(x - m), s = Σ e; softmax y = e * (1/s); log-softmax y = (x - m) - log s.
template <bool LOG, bool WARP>
__device__ __forceinline__ void softmax_rows_body(const float* x, float* y, int outer, int size)
{
    typedef RowGroup<WARP> G;
    __shared__ float sh[32];
    for (int row = G::first(); row < outer; row += G::step())
    {
        const float* xr = x + (long long)row * size;
        float* yr = y + (long long)row * size;
        float m = rd_identity<R_MAX>();
        for (int j = G::lane(); j < size; j += G::size()) m = engine_max(m, xr[j]);
        m = G::template allreduce<R_MAX>(m, sh);
        float s = 0.f;
        for (int j = G::lane(); j < size; j += G::size()) s = __fadd_rn(s, expf(__fsub_rn(xr[j], m)));
        s = G::template allreduce<R_SUM>(s, sh);
        if (LOG)
        {
            float ls = logf(s);
            for (int j = G::lane(); j < size; j += G::size()) yr[j] = __fsub_rn(__fsub_rn(xr[j], m), ls);
        }
        else
        {
            float inv = __fdiv_rn(1.f, s);
            for (int j = G::lane(); j < size; j += G::size()) yr[j] = __fmul_rn(expf(__fsub_rn(xr[j], m)), inv);
        }
    }
}

template <bool LOG>
__device__ __forceinline__ void softmax_cols_body(const float* x, float* y, int outer, int size, int inner)
{
    __shared__ float sh[COLS_Y][COLS_X + 1];
    int col = blockIdx.x * COLS_X + threadIdx.x;
    bool active = col < inner;
    for (int o = blockIdx.y; o < outer; o += gridDim.y)
    {
        long long off = (long long)o * size * inner + col;
        const float* xo = x + off;
        float* yo = y + off;
        float m = rd_identity<R_MAX>();
        if (active) for (int s = threadIdx.y; s < size; s += COLS_Y) m = engine_max(m, xo[(long long)s * inner]);
        m = cols_allreduce<R_MAX>(m, sh);
        float e = 0.f;
        if (active) for (int s = threadIdx.y; s < size; s += COLS_Y) e = __fadd_rn(e, expf(__fsub_rn(xo[(long long)s * inner], m)));
        e = cols_allreduce<R_SUM>(e, sh);
        if (!active) continue;
        if (LOG)
        {
            float ls = logf(e);
            for (int s = threadIdx.y; s < size; s += COLS_Y) yo[(long long)s * inner] = __fsub_rn(__fsub_rn(xo[(long long)s * inner], m), ls);
        }
        else
        {
            float inv = __fdiv_rn(1.f, e);
            for (int s = threadIdx.y; s < size; s += COLS_Y) yo[(long long)s * inner] = __fmul_rn(expf(__fsub_rn(xo[(long long)s * inner], m)), inv);
        }
    }
}

// Backward from the output y: softmax dx = (dy - Σ dy·y) · y; log-softmax dx = dy - e^y · Σ dy.
template <bool LOG, bool WARP>
__device__ __forceinline__ void softmax_grad_rows_body(const float* y, const float* dy, float* dx, int outer, int size)
{
    typedef RowGroup<WARP> G;
    __shared__ float sh[32];
    for (int row = G::first(); row < outer; row += G::step())
    {
        long long off = (long long)row * size;
        float a = 0.f;
        for (int j = G::lane(); j < size; j += G::size())
            a = LOG ? __fadd_rn(a, dy[off + j]) : __fmaf_rn(dy[off + j], y[off + j], a);
        a = G::template allreduce<R_SUM>(a, sh);
        for (int j = G::lane(); j < size; j += G::size())
            dx[off + j] = LOG ? __fsub_rn(dy[off + j], __fmul_rn(expf(y[off + j]), a))
                              : __fmul_rn(__fsub_rn(dy[off + j], a), y[off + j]);
    }
}

template <bool LOG>
__device__ __forceinline__ void softmax_grad_cols_body(const float* y, const float* dy, float* dx, int outer, int size, int inner)
{
    __shared__ float sh[COLS_Y][COLS_X + 1];
    int col = blockIdx.x * COLS_X + threadIdx.x;
    bool active = col < inner;
    for (int o = blockIdx.y; o < outer; o += gridDim.y)
    {
        long long off = (long long)o * size * inner + col;
        float a = 0.f;
        if (active)
            for (int s = threadIdx.y; s < size; s += COLS_Y)
            {
                long long k = off + (long long)s * inner;
                a = LOG ? __fadd_rn(a, dy[k]) : __fadd_rn(a, __fmul_rn(dy[k], y[k]));
            }
        a = cols_allreduce<R_SUM>(a, sh);
        if (!active) continue;
        for (int s = threadIdx.y; s < size; s += COLS_Y)
        {
            long long k = off + (long long)s * inner;
            dx[k] = LOG ? __fsub_rn(dy[k], __fmul_rn(expf(y[k]), a)) : __fmul_rn(__fsub_rn(dy[k], a), y[k]);
        }
    }
}

extern "C" __global__ void softmax_rows_warp(const float* x, float* y, int outer, int size) { softmax_rows_body<false, true>(x, y, outer, size); }
extern "C" __global__ void softmax_rows_block(const float* x, float* y, int outer, int size) { softmax_rows_body<false, false>(x, y, outer, size); }
extern "C" __global__ void softmax_cols(const float* x, float* y, int outer, int size, int inner) { softmax_cols_body<false>(x, y, outer, size, inner); }
extern "C" __global__ void logsoftmax_rows_warp(const float* x, float* y, int outer, int size) { softmax_rows_body<true, true>(x, y, outer, size); }
extern "C" __global__ void logsoftmax_rows_block(const float* x, float* y, int outer, int size) { softmax_rows_body<true, false>(x, y, outer, size); }
extern "C" __global__ void logsoftmax_cols(const float* x, float* y, int outer, int size, int inner) { softmax_cols_body<true>(x, y, outer, size, inner); }

extern "C" __global__ void softmax_grad_rows_warp(const float* y, const float* dy, float* dx, int outer, int size) { softmax_grad_rows_body<false, true>(y, dy, dx, outer, size); }
extern "C" __global__ void softmax_grad_rows_block(const float* y, const float* dy, float* dx, int outer, int size) { softmax_grad_rows_body<false, false>(y, dy, dx, outer, size); }
extern "C" __global__ void softmax_grad_cols(const float* y, const float* dy, float* dx, int outer, int size, int inner) { softmax_grad_cols_body<false>(y, dy, dx, outer, size, inner); }
extern "C" __global__ void logsoftmax_grad_rows_warp(const float* y, const float* dy, float* dx, int outer, int size) { softmax_grad_rows_body<true, true>(y, dy, dx, outer, size); }
extern "C" __global__ void logsoftmax_grad_rows_block(const float* y, const float* dy, float* dx, int outer, int size) { softmax_grad_rows_body<true, false>(y, dy, dx, outer, size); }
extern "C" __global__ void logsoftmax_grad_cols(const float* y, const float* dy, float* dx, int outer, int size, int inner) { softmax_grad_cols_body<true>(y, dy, dx, outer, size, inner); }
