// Fused optimiser kernels with the formula order of src/Engine/Cpu/CpuKernels.Optim.cs (its scalar tail, which
// equals its vector body): explicit fmaf where the CPU fuses, __fmul_rn / __fadd_rn where it does not, so an update
// rounds exactly as on the CPU. 1-D grid-stride loops, float4 where every pointer is 16-byte aligned.

__device__ __forceinline__ bool op_aligned16(const void* p) { return (((unsigned long long)p) & 15ULL) == 0; }

// ---------------------------------------------------------------- SGD

// One element of torch.optim.SGD; the buffer b is used only with momentum (hasBuf). keep = 1 - dampening (rounded
// on the host, as the CPU).
__device__ __forceinline__ void sgd_one(float& p, float g, float& b, bool hasBuf, float lr, float momentum, float keep,
                                        float weightDecay, bool nesterov, bool firstStep)
{
    float d = g;
    if (weightDecay != 0.f) d = __fmaf_rn(weightDecay, p, d);
    if (hasBuf)
    {
        float buf = firstStep ? d : __fmaf_rn(momentum, b, __fmul_rn(keep, d));
        b = buf;
        d = nesterov ? __fmaf_rn(momentum, buf, d) : buf;
    }
    p = __fmaf_rn(-lr, d, p);
}

extern "C" __global__ void sgd_update(float* param, const float* grad, float* buf, int n, float lr, float momentum,
                                      float keep, float weightDecay, int nesterov, int firstStep)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    bool nes = nesterov != 0, first = firstStep != 0, hasBuf = buf != nullptr;
    unsigned start = 0;
    if (op_aligned16(param) && op_aligned16(grad) && op_aligned16(buf))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 p = ((float4*)param)[i], g = ((const float4*)grad)[i];
            float4 b = hasBuf ? ((float4*)buf)[i] : make_float4(0.f, 0.f, 0.f, 0.f);
            sgd_one(p.x, g.x, b.x, hasBuf, lr, momentum, keep, weightDecay, nes, first);
            sgd_one(p.y, g.y, b.y, hasBuf, lr, momentum, keep, weightDecay, nes, first);
            sgd_one(p.z, g.z, b.z, hasBuf, lr, momentum, keep, weightDecay, nes, first);
            sgd_one(p.w, g.w, b.w, hasBuf, lr, momentum, keep, weightDecay, nes, first);
            ((float4*)param)[i] = p;
            if (hasBuf) ((float4*)buf)[i] = b;
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride)
    {
        float p = param[i], b = hasBuf ? buf[i] : 0.f;
        sgd_one(p, grad[i], b, hasBuf, lr, momentum, keep, weightDecay, nes, first);
        param[i] = p;
        if (hasBuf) buf[i] = b;
    }
}

// ---------------------------------------------------------------- Adam / AdamW

// decay = 1 - lr * weightDecay for AdamW (else 1); l2 = weightDecay for Adam (else 0); stepSize = lr / (1 - beta1^t)
// and invBc2Sqrt = 1 / sqrt(1 - beta2^t) (both from double on the host); w1 = 1 - beta1, w2 = 1 - beta2.
__device__ __forceinline__ void adam_one(float& p, float g, float& m, float& v, float w1, float beta2, float w2, float eps,
                                         float decay, float l2, float stepSize, float invBc2Sqrt)
{
    float x = p;
    float gr = __fmaf_rn(l2, x, g);
    x = __fmul_rn(x, decay);
    float mm = __fmaf_rn(w1, __fsub_rn(gr, m), m);
    float vv = __fmaf_rn(beta2, v, __fmul_rn(__fmul_rn(w2, gr), gr));
    m = mm; v = vv;
    float denom = __fmaf_rn(__fsqrt_rn(vv), invBc2Sqrt, eps);
    p = __fmaf_rn(-stepSize, __fdiv_rn(mm, denom), x);
}

extern "C" __global__ void adam_update(float* param, const float* grad, float* expAvg, float* expAvgSq, int n,
                                       float w1, float beta2, float w2, float eps, float decay, float l2,
                                       float stepSize, float invBc2Sqrt)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (op_aligned16(param) && op_aligned16(grad) && op_aligned16(expAvg) && op_aligned16(expAvgSq))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 p = ((float4*)param)[i], g = ((const float4*)grad)[i];
            float4 m = ((float4*)expAvg)[i], v = ((float4*)expAvgSq)[i];
            adam_one(p.x, g.x, m.x, v.x, w1, beta2, w2, eps, decay, l2, stepSize, invBc2Sqrt);
            adam_one(p.y, g.y, m.y, v.y, w1, beta2, w2, eps, decay, l2, stepSize, invBc2Sqrt);
            adam_one(p.z, g.z, m.z, v.z, w1, beta2, w2, eps, decay, l2, stepSize, invBc2Sqrt);
            adam_one(p.w, g.w, m.w, v.w, w1, beta2, w2, eps, decay, l2, stepSize, invBc2Sqrt);
            ((float4*)param)[i] = p; ((float4*)expAvg)[i] = m; ((float4*)expAvgSq)[i] = v;
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride)
    {
        float p = param[i], m = expAvg[i], v = expAvgSq[i];
        adam_one(p, grad[i], m, v, w1, beta2, w2, eps, decay, l2, stepSize, invBc2Sqrt);
        param[i] = p; expAvg[i] = m; expAvgSq[i] = v;
    }
}

// ---------------------------------------------------------------- sum of squares, scale

__device__ __forceinline__ double op_warp_sum(double v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// partials[blockIdx.x] = Σ x[i]² over this block's grid-stride share, in double (each square is exact in double).
// blockDim.x must be a multiple of 32, at most 1024.
extern "C" __global__ void sumsq_partial(const float* x, int n, double* partials)
{
    __shared__ double sh[32];
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    double s = 0.0;
    unsigned start = 0;
    if (op_aligned16(x))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 v = ((const float4*)x)[i];
            s += (double)v.x * v.x; s += (double)v.y * v.y; s += (double)v.z * v.z; s += (double)v.w * v.w;
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) { double v = x[i]; s += v * v; }
    s = op_warp_sum(s);
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0)
    {
        double t = 0.0;
        for (int k = 0; k < (int)(blockDim.x >> 5); k++) t += sh[k];
        partials[blockIdx.x] = t;
    }
}

// result[0] = Σ partials[0..count): one warp, fixed order, so the total is deterministic.
extern "C" __global__ void sumsq_final(const double* partials, int count, double* result)
{
    if (threadIdx.x >= 32) return;
    double s = 0.0;
    for (int k = threadIdx.x; k < count; k += 32) s += partials[k];
    s = op_warp_sum(s);
    if (threadIdx.x == 0) result[0] = s;
}

// x[i] *= alpha.
extern "C" __global__ void scale_inplace(float* x, int n, float alpha)
{
    unsigned un = (unsigned)n;
    unsigned tid = blockIdx.x * blockDim.x + threadIdx.x, stride = gridDim.x * blockDim.x;
    unsigned start = 0;
    if (op_aligned16(x))
    {
        unsigned n4 = un >> 2;
        for (unsigned i = tid; i < n4; i += stride)
        {
            float4 v = ((float4*)x)[i];
            ((float4*)x)[i] = make_float4(__fmul_rn(v.x, alpha), __fmul_rn(v.y, alpha), __fmul_rn(v.z, alpha), __fmul_rn(v.w, alpha));
        }
        start = n4 << 2;
    }
    for (unsigned i = start + tid; i < un; i += stride) x[i] = __fmul_rn(x[i], alpha);
}
