// 2-D pooling over independent H x W planes (IKernels.Pool.cs), semantics of CpuKernels.Pool.cs. Forward kernels run
// one thread per output element; backward kernels gather (one thread per input element, summing over the windows
// that contain it in ascending output order), so they need no atomics, are deterministic and add in the same order
// as the CPU's scatter loops.

// Pooling geometry, field for field as CudaKernels.PoolArgs packs it (12 ints, the last unused).
struct PoolGeo
{
    int planes, H, W, KH, KW, sH, sW, pH, pW, OH, OW, unused;
};

#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); i += (long long)gridDim.x * blockDim.x)

// The output rows [*o0, *o1) whose windows (start o*s - pad, length k) contain input row h.
__device__ __forceinline__ void pool_covering(int h, int k, int s, int pad, int outSize, int* o0, int* o1)
{
    *o0 = h + pad < k ? 0 : (h + pad - k) / s + 1;
    int e = (h + pad) / s + 1;
    *o1 = e < outSize ? e : outSize;
}

// y = max over each window clipped to the input (padding never wins), idx = in-plane index h*W + w of the maximum as a
// float: the first maximum on ties, and a NaN wins over numbers (a later NaN over an earlier one, as the CPU's
// `v > best || isnan(v)` scan). total = planes*OH*OW.
extern "C" __global__ void maxpool2d_fwd(const float* __restrict__ x, float* __restrict__ y, float* __restrict__ idx, PoolGeo g, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int ow = u % g.OW; u /= g.OW;
        int oh = u % g.OH; int p = u / g.OH;
        int hs = oh * g.sH - g.pH, ws = ow * g.sW - g.pW;
        int h0 = max(hs, 0), h1 = min(hs + g.KH, g.H), w0 = max(ws, 0), w1 = min(ws + g.KW, g.W);
        const float* xp = x + (long long)p * g.H * g.W;
        float best = __int_as_float(0xff800000);   // -inf
        int bi = 0;
        if (h0 < h1 && w0 < w1)   // always, unless the plane is empty
        {
            bi = h0 * g.W + w0;
            best = xp[bi];
            for (int h = h0; h < h1; h++)
                for (int w = w0; w < w1; w++)
                {
                    float v = xp[h * g.W + w];
                    if (v > best || isnan(v)) { best = v; bi = h * g.W + w; }
                }
        }
        y[t] = best;
        idx[t] = (float)bi;
    }
}

// dx[plane, i] = Σ dy[plane, o] over the outputs o whose window contains i and whose recorded index is i (indices from
// maxpool2d_fwd lie inside their own window, so no other output can point at i). total = planes*H*W.
extern "C" __global__ void maxpool2d_bwd(const float* __restrict__ dy, const float* __restrict__ idx, float* __restrict__ dx, PoolGeo g, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int w = u % g.W; u /= g.W;
        int h = u % g.H; int p = u / g.H;
        int oh0, oh1, ow0, ow1;
        pool_covering(h, g.KH, g.sH, g.pH, g.OH, &oh0, &oh1);
        pool_covering(w, g.KW, g.sW, g.pW, g.OW, &ow0, &ow1);
        int self = h * g.W + w;
        long long base = (long long)p * g.OH * g.OW;
        float acc = 0.f;
        for (int oh = oh0; oh < oh1; oh++)
            for (int ow = ow0; ow < ow1; ow++)
            {
                long long o = base + oh * g.OW + ow;
                if ((int)idx[o] == self) acc += dy[o];
            }
        dx[t] = acc;
    }
}

// The divisor of output (oh, ow)'s window: the full kernel area, or the part inside the input.
__device__ __forceinline__ int pool_divisor(const PoolGeo& g, int oh, int ow, int countIncludePad)
{
    if (countIncludePad) return g.KH * g.KW;
    int hs = oh * g.sH - g.pH, ws = ow * g.sW - g.pW;
    return (min(hs + g.KH, g.H) - max(hs, 0)) * (min(ws + g.KW, g.W) - max(ws, 0));
}

// y = (Σ window, row by row in float) / divisor. total = planes*OH*OW.
extern "C" __global__ void avgpool2d_fwd(const float* __restrict__ x, float* __restrict__ y, PoolGeo g, int countIncludePad, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int ow = u % g.OW; u /= g.OW;
        int oh = u % g.OH; int p = u / g.OH;
        int hs = oh * g.sH - g.pH, ws = ow * g.sW - g.pW;
        int h0 = max(hs, 0), h1 = min(hs + g.KH, g.H), w0 = max(ws, 0), w1 = min(ws + g.KW, g.W);
        const float* xp = x + (long long)p * g.H * g.W;
        float sum = 0.f;
        for (int h = h0; h < h1; h++)
            for (int w = w0; w < w1; w++) sum += xp[h * g.W + w];
        y[t] = sum / (float)pool_divisor(g, oh, ow, countIncludePad);
    }
}

// dx[plane, i] = Σ dy[plane, o] / divisor(o) over the windows o containing i, in ascending o (the CPU's order).
// total = planes*H*W.
extern "C" __global__ void avgpool2d_bwd(const float* __restrict__ dy, float* __restrict__ dx, PoolGeo g, int countIncludePad, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int w = u % g.W; u /= g.W;
        int h = u % g.H; int p = u / g.H;
        int oh0, oh1, ow0, ow1;
        pool_covering(h, g.KH, g.sH, g.pH, g.OH, &oh0, &oh1);
        pool_covering(w, g.KW, g.sW, g.pW, g.OW, &ow0, &ow1);
        const float* dyp = dy + (long long)p * g.OH * g.OW;
        float acc = 0.f;
        for (int oh = oh0; oh < oh1; oh++)
            for (int ow = ow0; ow < ow1; ow++)
                acc += dyp[oh * g.OW + ow] / (float)pool_divisor(g, oh, ow, countIncludePad);
        dx[t] = acc;
    }
}
