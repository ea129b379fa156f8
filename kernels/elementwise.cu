// Elementwise kernels: unary forward / backward, broadcasting binary, where, expand, one-hot.
// Semantics follow src/Engine/Cpu/ElementwiseOps.cs op for op. Products that feed a sum are written with
// __fmul_rn / __fadd_rn: the compiler would otherwise contract them into an FMA, which rounds differently
// from the CPU (whose elementwise ops never fuse unless they say so).
//
// Launch: every kernel is a 1-D grid-stride loop (any grid works). Contiguous kernels move float4 when all their
// pointers are 16-byte aligned (checked at run time, so any Buf offset is fine) and fall back to floats otherwise.

#include "ieee.cuh"

struct Ints8 { int v[8]; };

#define EW_MAXDIM 8

// ---------------------------------------------------------------- helpers

// x^p as the CPU's vector path (VMath.Pow): exp(p * log|x|) in double, rounded once to float, with IEEE pow's
// sign rules for negative x (odd integer p keeps the sign bit, even integer p drops it, non-integer p gives NaN for
// negative finite x; (-inf)^p is +inf or +0 as IEEE pow says, which r already is).
__device__ __forceinline__ float ew_pow(float x, float p)
{
    float r = (float)exp((double)p * log(fabs((double)x)));
    bool isInt = rintf(p) == p;
    if (!isInt) return (x < 0.f && !isinf(x)) ? __int_as_float(0x7fc00000) : r;
    bool isOdd = fabsf(p) < 16777216.f && (((long long)p) & 1LL) != 0;
    return (isOdd && __float_as_int(x) < 0) ? -r : r;
}

// log1p(e) for e >= 0 by Goldberg's trick, as VMath.Log1p.
__device__ __forceinline__ float ew_log1p(float e)
{
    float u = __fadd_rn(1.f, e);
    return u == 1.f ? e : __fdiv_rn(__fmul_rn(logf(u), e), __fsub_rn(u, 1.f));
}

// log(1 + e^x) = max(x, 0) + log1p(e^-|x|), as VMath.Softplus.
__device__ __forceinline__ float ew_softplus(float x)
{
    return __fadd_rn(engine_max(x, 0.f), ew_log1p(expf(-fabsf(x))));
}

__device__ __forceinline__ float ew_sigmoid(float x)
{
    return __fdiv_rn(1.f, __fadd_rn(1.f, expf(-x)));
}

// ---------------------------------------------------------------- unary ops (UnaryOp order)

#define OP_NEG 0
#define OP_ABS 1
#define OP_SIGN 2
#define OP_EXP 3
#define OP_LOG 4
#define OP_SQRT 5
#define OP_SQUARE 6
#define OP_POW 7
#define OP_CLAMP 8
#define OP_RELU 9
#define OP_LEAKYRELU 10
#define OP_SIGMOID 11
#define OP_TANH 12
#define OP_SOFTPLUS 13
#define OP_AFFINE 14
#define OP_RECIPROCAL 15

template <int OP>
__device__ __forceinline__ float unary_f(float x, float alpha, float beta)
{
    switch (OP)
    {
    case OP_NEG: return -x;
    case OP_ABS: return fabsf(x);
    case OP_SIGN: return x > 0.f ? 1.f : x < 0.f ? -1.f : x == 0.f ? 0.f : x;
    case OP_EXP: return expf(x);
    case OP_LOG: return logf(x);
    case OP_SQRT: return __fsqrt_rn(x);
    case OP_SQUARE: return __fmul_rn(x, x);
    case OP_POW: return ew_pow(x, alpha);
    case OP_CLAMP: return engine_min(engine_max(x, alpha), beta);
    case OP_RELU: return engine_max(x, 0.f);
    case OP_LEAKYRELU: return x > 0.f ? x : __fmul_rn(alpha, x);
    case OP_SIGMOID: return ew_sigmoid(x);
    case OP_TANH: return tanhf(x);
    case OP_SOFTPLUS:
    {
        // alpha = torch's beta, beta = threshold; 1/alpha rounded once like the CPU's cached reciprocal.
        float z = __fmul_rn(alpha, x);
        return z > beta ? x : __fmul_rn(ew_softplus(z), __fdiv_rn(1.f, alpha));
    }
    case OP_AFFINE: return __fadd_rn(__fmul_rn(alpha, x), beta);
    case OP_RECIPROCAL: return __fdiv_rn(alpha, x);
    default: return x;
    }
}

// dx = dy * op'(x) as the *Grad structs; reads y only for Exp, Sqrt, Sigmoid, Tanh, Reciprocal.
template <int OP>
__device__ __forceinline__ float unary_grad_f(float x, float y, float dy, float alpha, float beta)
{
    switch (OP)
    {
    case OP_NEG: return -dy;
    case OP_ABS: return x > 0.f ? dy : x < 0.f ? -dy : 0.f;
    case OP_SIGN: return 0.f;
    case OP_EXP: return __fmul_rn(dy, y);
    case OP_LOG: return __fdiv_rn(dy, x);
    case OP_SQRT: return __fdiv_rn(dy, __fadd_rn(y, y));
    case OP_SQUARE: return __fmul_rn(__fadd_rn(x, x), dy);
    case OP_POW: return __fmul_rn(__fmul_rn(dy, alpha), ew_pow(x, __fsub_rn(alpha, 1.f)));
    case OP_CLAMP: return (x >= alpha && x <= beta) ? dy : 0.f;
    case OP_RELU: return x > 0.f ? dy : 0.f;
    case OP_LEAKYRELU: return x > 0.f ? dy : __fmul_rn(alpha, dy);
    case OP_SIGMOID: return __fmul_rn(__fmul_rn(dy, y), __fsub_rn(1.f, y));
    case OP_TANH: return __fmul_rn(dy, __fsub_rn(1.f, __fmul_rn(y, y)));
    case OP_SOFTPLUS:
    {
        float z = __fmul_rn(alpha, x);
        return z > beta ? dy : __fmul_rn(dy, ew_sigmoid(z));
    }
    case OP_AFFINE: return __fmul_rn(alpha, dy);
    case OP_RECIPROCAL: return __fdiv_rn(__fmul_rn(-dy, y), x);
    default: return 0.f;
    }
}

template <int OP> __device__ __forceinline__ bool grad_reads_x() { return !(OP == OP_NEG || OP == OP_SIGN || OP == OP_EXP || OP == OP_SQRT || OP == OP_SIGMOID || OP == OP_TANH || OP == OP_AFFINE); }
template <int OP> __device__ __forceinline__ bool grad_reads_y() { return OP == OP_EXP || OP == OP_SQRT || OP == OP_SIGMOID || OP == OP_TANH || OP == OP_RECIPROCAL; }

__device__ __forceinline__ bool ew_aligned16(const void* p) { return (((unsigned long long)p) & 15ULL) == 0; }

template <int OP>
__device__ __forceinline__ void unary_body(const float* x, float* y, int n, float alpha, float beta)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (ew_aligned16(x) && ew_aligned16(y))
    {
        unsigned n4 = un >> 2;
        const float4* x4 = (const float4*)x;
        float4* y4 = (float4*)y;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 v = x4[i];
            y4[i] = make_float4(unary_f<OP>(v.x, alpha, beta), unary_f<OP>(v.y, alpha, beta),
                                unary_f<OP>(v.z, alpha, beta), unary_f<OP>(v.w, alpha, beta));
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) y[i] = unary_f<OP>(x[i], alpha, beta);
}

template <int OP>
__device__ __forceinline__ void unary_grad_body(const float* x, const float* y, const float* dy, float* dx, int n, float alpha, float beta)
{
    const bool rx = grad_reads_x<OP>(), ry = grad_reads_y<OP>();
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if ((!rx || ew_aligned16(x)) && (!ry || ew_aligned16(y)) && ew_aligned16(dy) && ew_aligned16(dx))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 vx = rx ? ((const float4*)x)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
            float4 vy = ry ? ((const float4*)y)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
            float4 vd = ((const float4*)dy)[i];
            ((float4*)dx)[i] = make_float4(unary_grad_f<OP>(vx.x, vy.x, vd.x, alpha, beta), unary_grad_f<OP>(vx.y, vy.y, vd.y, alpha, beta),
                                           unary_grad_f<OP>(vx.z, vy.z, vd.z, alpha, beta), unary_grad_f<OP>(vx.w, vy.w, vd.w, alpha, beta));
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride)
        dx[i] = unary_grad_f<OP>(rx ? x[i] : 0.f, ry ? y[i] : 0.f, dy[i], alpha, beta);
}

#define UNARY_KERNELS(name, OP)                                                                                   \
    extern "C" __global__ void unary_##name(const float* x, float* y, int n, float alpha, float beta)             \
    { unary_body<OP>(x, y, n, alpha, beta); }                                                                     \
    extern "C" __global__ void unary_grad_##name(const float* x, const float* y, const float* dy, float* dx,      \
                                                 int n, float alpha, float beta)                                  \
    { unary_grad_body<OP>(x, y, dy, dx, n, alpha, beta); }

UNARY_KERNELS(neg, OP_NEG)
UNARY_KERNELS(abs, OP_ABS)
UNARY_KERNELS(sign, OP_SIGN)
UNARY_KERNELS(exp, OP_EXP)
UNARY_KERNELS(log, OP_LOG)
UNARY_KERNELS(sqrt, OP_SQRT)
UNARY_KERNELS(square, OP_SQUARE)
UNARY_KERNELS(pow, OP_POW)
UNARY_KERNELS(clamp, OP_CLAMP)
UNARY_KERNELS(relu, OP_RELU)
UNARY_KERNELS(leakyrelu, OP_LEAKYRELU)
UNARY_KERNELS(sigmoid, OP_SIGMOID)
UNARY_KERNELS(tanh, OP_TANH)
UNARY_KERNELS(softplus, OP_SOFTPLUS)
UNARY_KERNELS(affine, OP_AFFINE)
UNARY_KERNELS(reciprocal, OP_RECIPROCAL)

// y[i] = value (Pow with exponent 0, Sign's gradient): float4 stores where aligned.
extern "C" __global__ void ew_fill(float* y, int n, float value)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (ew_aligned16(y))
    {
        unsigned n4 = un >> 2;
        float4 v = make_float4(value, value, value, value);
        for (unsigned i = tid; i < n4; i += stride) ((float4*)y)[i] = v;
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) y[i] = value;
}

// ---------------------------------------------------------------- binary ops (BinaryOp order)

#define BOP_ADD 0
#define BOP_SUB 1
#define BOP_MUL 2
#define BOP_DIV 3
#define BOP_MAX 4
#define BOP_MIN 5
#define BOP_GT 6
#define BOP_GE 7
#define BOP_LT 8
#define BOP_LE 9
#define BOP_EQ 10
#define BOP_NE 11

template <int OP>
__device__ __forceinline__ float binary_f(float a, float b)
{
    switch (OP)
    {
    case BOP_ADD: return __fadd_rn(a, b);
    case BOP_SUB: return __fsub_rn(a, b);
    case BOP_MUL: return __fmul_rn(a, b);
    case BOP_DIV: return __fdiv_rn(a, b);
    case BOP_MAX: return engine_max(a, b);
    case BOP_MIN: return engine_min(a, b);
    case BOP_GT: return a > b ? 1.f : 0.f;
    case BOP_GE: return a >= b ? 1.f : 0.f;
    case BOP_LT: return a < b ? 1.f : 0.f;
    case BOP_LE: return a <= b ? 1.f : 0.f;
    case BOP_EQ: return a == b ? 1.f : 0.f;
    case BOP_NE: return a != b ? 1.f : 0.f;
    default: return 0.f;
    }
}

// Same-shape contiguous operands: y[i] = a[i] op b[i].
template <int OP>
__device__ __forceinline__ void binary_contig_body(const float* a, const float* b, float* y, int n)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (ew_aligned16(a) && ew_aligned16(b) && ew_aligned16(y))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 u = ((const float4*)a)[i], v = ((const float4*)b)[i];
            ((float4*)y)[i] = make_float4(binary_f<OP>(u.x, v.x), binary_f<OP>(u.y, v.y), binary_f<OP>(u.z, v.z), binary_f<OP>(u.w, v.w));
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) y[i] = binary_f<OP>(a[i], b[i]);
}

// One operand is a broadcast scalar: y[i] = a[i] op s (SCALAR_B) or s op b[i].
template <int OP, bool SCALAR_B>
__device__ __forceinline__ void binary_scalar_body(const float* v, const float* s, float* y, int n)
{
    float c = *s;
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (ew_aligned16(v) && ew_aligned16(y))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 u = ((const float4*)v)[i];
            ((float4*)y)[i] = SCALAR_B
                ? make_float4(binary_f<OP>(u.x, c), binary_f<OP>(u.y, c), binary_f<OP>(u.z, c), binary_f<OP>(u.w, c))
                : make_float4(binary_f<OP>(c, u.x), binary_f<OP>(c, u.y), binary_f<OP>(c, u.z), binary_f<OP>(c, u.w));
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) y[i] = SCALAR_B ? binary_f<OP>(v[i], c) : binary_f<OP>(c, v[i]);
}

// The offsets of flat output index i in up to three operands, from the coalesced shape (innermost first) and
// per-operand strides. The outermost dimension needs no division: what is left of i is its index.
template <int K>
__device__ __forceinline__ void ew_offsets(unsigned i, int ndim, const Ints8& shape, const Ints8& s0, const Ints8& s1,
                                           const Ints8& s2, int& o0, int& o1, int& o2)
{
    o0 = 0; o1 = 0; o2 = 0;
    unsigned rem = i;
#pragma unroll
    for (int d = 0; d < EW_MAXDIM; d++)
    {
        if (d >= ndim) break;
        unsigned idx;
        if (d == ndim - 1) idx = rem;
        else
        {
            unsigned q = rem / (unsigned)shape.v[d];
            idx = rem - q * (unsigned)shape.v[d];
            rem = q;
        }
        o0 += (int)idx * s0.v[d];
        if (K > 1) o1 += (int)idx * s1.v[d];
        if (K > 2) o2 += (int)idx * s2.v[d];
    }
}

template <int OP>
__device__ __forceinline__ void binary_strided_body(const float* a, const float* b, float* y, int n, int ndim,
                                                    Ints8 shape, Ints8 sa, Ints8 sb)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    for (unsigned i = tid; i < un; i += stride)
    {
        int oa, ob, unused;
        ew_offsets<2>(i, ndim, shape, sa, sb, sb, oa, ob, unused);
        y[i] = binary_f<OP>(a[oa], b[ob]);
    }
}

#define BINARY_KERNELS(name, OP)                                                                                   \
    extern "C" __global__ void binary_##name##_contig(const float* a, const float* b, float* y, int n)             \
    { binary_contig_body<OP>(a, b, y, n); }                                                                        \
    extern "C" __global__ void binary_##name##_scalar_b(const float* a, const float* b, float* y, int n)           \
    { binary_scalar_body<OP, true>(a, b, y, n); }                                                                  \
    extern "C" __global__ void binary_##name##_scalar_a(const float* a, const float* b, float* y, int n)           \
    { binary_scalar_body<OP, false>(b, a, y, n); }                                                                 \
    extern "C" __global__ void binary_##name##_strided(const float* a, const float* b, float* y, int n, int ndim,   \
                                                       Ints8 shape, Ints8 sa, Ints8 sb)                            \
    { binary_strided_body<OP>(a, b, y, n, ndim, shape, sa, sb); }

BINARY_KERNELS(add, BOP_ADD)
BINARY_KERNELS(sub, BOP_SUB)
BINARY_KERNELS(mul, BOP_MUL)
BINARY_KERNELS(div, BOP_DIV)
BINARY_KERNELS(maximum, BOP_MAX)
BINARY_KERNELS(minimum, BOP_MIN)
BINARY_KERNELS(gt, BOP_GT)
BINARY_KERNELS(ge, BOP_GE)
BINARY_KERNELS(lt, BOP_LT)
BINARY_KERNELS(le, BOP_LE)
BINARY_KERNELS(eq, BOP_EQ)
BINARY_KERNELS(ne, BOP_NE)

// ---------------------------------------------------------------- where, expand

// y = c != 0 ? a : b (NaN counts as true), all three contiguous.
extern "C" __global__ void where_contig(const float* c, const float* a, const float* b, float* y, int n)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (ew_aligned16(c) && ew_aligned16(a) && ew_aligned16(b) && ew_aligned16(y))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 vc = ((const float4*)c)[i], va = ((const float4*)a)[i], vb = ((const float4*)b)[i];
            ((float4*)y)[i] = make_float4(vc.x != 0.f ? va.x : vb.x, vc.y != 0.f ? va.y : vb.y,
                                          vc.z != 0.f ? va.z : vb.z, vc.w != 0.f ? va.w : vb.w);
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) y[i] = c[i] != 0.f ? a[i] : b[i];
}

extern "C" __global__ void where_strided(const float* c, const float* a, const float* b, float* y, int n, int ndim,
                                         Ints8 shape, Ints8 sc, Ints8 sa, Ints8 sb)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    for (unsigned i = tid; i < un; i += stride)
    {
        int oc, oa, ob;
        ew_offsets<3>(i, ndim, shape, sc, sa, sb, oc, oa, ob);
        y[i] = c[oc] != 0.f ? a[oa] : b[ob];
    }
}

// Plain contiguous copy (an Expand that broadcasts nothing).
extern "C" __global__ void expand_contig(const float* x, float* y, int n)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (ew_aligned16(x) && ew_aligned16(y))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride) ((float4*)y)[i] = ((const float4*)x)[i];
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) y[i] = x[i];
}

extern "C" __global__ void expand_strided(const float* x, float* y, int n, int ndim, Ints8 shape, Ints8 sx)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    for (unsigned i = tid; i < un; i += stride)
    {
        int ox, u1, u2;
        ew_offsets<1>(i, ndim, shape, sx, sx, sx, ox, u1, u2);
        y[i] = x[ox];
    }
}

// ---------------------------------------------------------------- one-hot

// bad[0] = the smallest i whose label is not an integer in [0, numClasses) (bad[0] starts at INT_MAX).
extern "C" __global__ void onehot_check(const float* labels, int n, int numClasses, int* bad)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    for (unsigned i = tid; i < un; i += stride)
    {
        float v = labels[i];
        if (!(v >= 0.f && v < (float)numClasses) || v != floorf(v)) atomicMin(bad, (int)i);
    }
}

// y[i, c] = labels[i] == c over all n * numClasses outputs (labels already validated).
extern "C" __global__ void onehot_fill(const float* labels, float* y, int total, int numClasses)
{
    unsigned un = (unsigned)total, nc = (unsigned)numClasses;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    for (unsigned j = tid; j < un; j += stride)
    {
        unsigned i = j / nc, c = j - i * nc;
        y[j] = (unsigned)labels[i] == c ? 1.f : 0.f;
    }
}
