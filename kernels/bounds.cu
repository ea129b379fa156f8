// Fused passes of CROWN's backward sweep (IKernels.Bounds.cs), semantics of CpuKernels.Bounds.cs. The row reductions
// accumulate in double (each thread, then warp shuffles and shared memory), so their rounding error is far below the
// CPU's float-block accumulation that the float32 rounding margin of Engine.Bounds is sized for; the per-element terms
// are the same float products as the CPU's (__fmul_rn: never contracted into an FMA).
//
// Rows are [rows, n] slices of [batch, rows, n]. A row is reduced either by one warp (warpPerRow = 1: eight rows per
// 256-thread block, for short rows) or by a whole 256-thread block (warpPerRow = 0, long rows). Blocks walk the rows
// grid-stride; the loop condition is uniform within a block, so the __syncthreads inside are safe.

#include "ieee.cuh"

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ double bounds_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(FULL_MASK, v, o);
    return v;
}

// Sums v over the block (256 threads) into the return value of thread 0; every thread must call it.
__device__ __forceinline__ double bounds_block_sum(double v, double* shared8)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = bounds_warp_sum(v);
    __syncthreads();   // shared8 may still be read from the previous call
    if (lane == 0) shared8[warp] = v;
    __syncthreads();
    double s = 0;
    if (threadIdx.x == 0)
        for (int k = 0; k < (int)(blockDim.x >> 5); k++) s += shared8[k];
    return s;
}

// Offset of row (b, r) of an operand with tRows rows per example (1: shared by the example's rows, else rows).
__device__ __forceinline__ long long bounds_row(int b, int r, int tRows, int n)
{
    return ((long long)b * tRows + (tRows == 1 ? 0 : r)) * n;
}

// CROWN's ReLU relaxation from pre-activation bounds (ReluOp's element-wise composition, the same float operations):
// unstable (l < 0 < u): upSlope = u / (u - l), upBias = (-upSlope)·l, lowSlope = (u >= -l); else both slopes are
// (l >= 0) and upBias = 0. NaN compares false, as on the CPU. Division is IEEE (no fast math), so bit-identical.
extern "C" __global__ void relu_relaxation(const float* __restrict__ lower, const float* __restrict__ upper, float* __restrict__ lowSlope,
                                           float* __restrict__ upSlope, float* __restrict__ upBias, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float l = lower[i], u = upper[i];
        bool unstable = l < 0.f && u > 0.f;
        float active = l >= 0.f ? 1.f : 0.f;
        float aU = unstable ? __fdiv_rn(u, __fsub_rn(u, l)) : active;
        upSlope[i] = aU;
        upBias[i] = unstable ? __fmul_rn(-aU, l) : 0.f;
        lowSlope[i] = unstable ? (u >= -l ? 1.f : 0.f) : active;
    }
}

// Backward of relu_relaxation (lowSlope has no gradient): for an unstable neuron, d = u - l, s = u / d,
// g = gS + gB·(-l), gl = g·(s / d) - gB·s, gu = g·((1 - s) / d); 0 elsewhere. Each operation rounded on its own, as the CPU.
extern "C" __global__ void relu_relaxation_backward(const float* __restrict__ lower, const float* __restrict__ upper, const float* __restrict__ gS,
                                                    const float* __restrict__ gB, float* __restrict__ gl, float* __restrict__ gu,
                                                    int hasS, int hasB, int hasL, int hasU, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float l = lower[i], u = upper[i], dl = 0.f, du = 0.f;
        if (l < 0.f && u > 0.f)
        {
            float s0 = hasS ? gS[i] : 0.f, b0 = hasB ? gB[i] : 0.f;
            float d = __fsub_rn(u, l), s = __fdiv_rn(u, d);
            float g = __fadd_rn(s0, __fmul_rn(b0, -l));
            dl = __fsub_rn(__fmul_rn(g, __fdiv_rn(s, d)), __fmul_rn(b0, s));
            du = __fmul_rn(g, __fdiv_rn(__fsub_rn(1.f, s), d));
        }
        if (hasL) gl[i] = dl;
        if (hasU) gu[i] = du;
    }
}

// IBP's affine-layer operands from an interval: center = (l + u)·0.5, margin = ((u - l)·0.5)·(1 + rho) + |center|·rho,
// each operation rounded on its own (no FMA contraction), as the CPU and BoundRules.Affine's composition compute them.
extern "C" __global__ void ibp_center_margin(const float* __restrict__ lower, const float* __restrict__ upper, float* __restrict__ center,
                                             float* __restrict__ margin, int n, float rho)
{
    const float k = __fadd_rn(1.f, rho);
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float l = lower[i], u = upper[i];
        float c = __fmul_rn(__fadd_rn(l, u), 0.5f);
        center[i] = c;
        margin[i] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(u, l), 0.5f), k), __fmul_rn(fabsf(c), rho));
    }
}

// IBP's interval from an affine layer's products: the margin e = |bias[(i / inner) % channels]|·rho + abs (abs without
// a bias), r = rad + e; lower = center - r, upper = center + r; each operation rounded on its own.
extern "C" __global__ void ibp_combine(const float* __restrict__ center, const float* __restrict__ rad, const float* __restrict__ bias,
                                       int hasBias, int channels, int inner, float rho, float abs, float* __restrict__ lower,
                                       float* __restrict__ upper, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float e = hasBias ? __fadd_rn(__fmul_rn(fabsf(bias[(i / inner) % channels]), rho), abs) : abs;
        float r = __fadd_rn(rad[i], e);
        float c = center[i];
        lower[i] = __fsub_rn(c, r);
        upper[i] = __fadd_rn(c, r);
    }
}

// IBP's ReLU and the next affine layer's centre / margin in one pass: lo = max(l, 0), hi = max(u, 0) (IEEE maximum),
// then ibp_center_margin's operations on (lo, hi), each rounded on its own.
extern "C" __global__ void ibp_relu(const float* __restrict__ lower, const float* __restrict__ upper, float* __restrict__ lo,
                                    float* __restrict__ hi, float* __restrict__ center, float* __restrict__ margin, int n, float rho)
{
    const float k = __fadd_rn(1.f, rho);
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float a = engine_max(lower[i], 0.f), b = engine_max(upper[i], 0.f);
        lo[i] = a;
        hi[i] = b;
        float c = __fmul_rn(__fadd_rn(a, b), 0.5f);
        center[i] = c;
        margin[i] = __fadd_rn(__fmul_rn(__fmul_rn(__fsub_rn(b, a), 0.5f), k), __fmul_rn(fabsf(c), rho));
    }
}

// Backward of ibp_relu: a = gc·0.5, b = gm·hk (hk = 0.5·(1 + rho), rounded by the host), gl = l > 0 ? gLo + (a - b) : 0,
// gu = u > 0 ? gHi + (a + b) : 0; absent gradients read as 0.
extern "C" __global__ void ibp_relu_backward(const float* __restrict__ lower, const float* __restrict__ upper, const float* __restrict__ gLo,
                                             const float* __restrict__ gHi, const float* __restrict__ gc, const float* __restrict__ gm,
                                             float* __restrict__ gl, float* __restrict__ gu, int hasLo, int hasHi, int hasC, int hasM,
                                             int hasL, int hasU, int n, float hk)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float a = hasC ? __fmul_rn(gc[i], 0.5f) : 0.f, b = hasM ? __fmul_rn(gm[i], hk) : 0.f;
        float dlo = __fadd_rn(hasLo ? gLo[i] : 0.f, __fsub_rn(a, b)), dhi = __fadd_rn(hasHi ? gHi[i] : 0.f, __fadd_rn(a, b));
        if (hasL) gl[i] = lower[i] > 0.f ? dlo : 0.f;
        if (hasU) gu[i] = upper[i] > 0.f ? dhi : 0.f;
    }
}

// Backward of ibp_center_margin (|center|·rho detached): a = gc·0.5, b = gm·hk (hk = 0.5·(1 + rho), rounded by the
// host as the CPU rounds it), gl = a - b, gu = a + b; an absent gradient reads as 0, an absent output is not written.
extern "C" __global__ void ibp_center_margin_backward(const float* __restrict__ gc, const float* __restrict__ gm, float* __restrict__ gl,
                                                      float* __restrict__ gu, int hasC, int hasM, int hasL, int hasU, int n, float hk)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float a = hasC ? __fmul_rn(gc[i], 0.5f) : 0.f, b = hasM ? __fmul_rn(gm[i], hk) : 0.f;
        if (hasL) gl[i] = __fsub_rn(a, b);
        if (hasU) gu[i] = __fadd_rn(a, b);
    }
}

// Backward of ibp_combine (the bias's margin detached): gCenter = gl + gu, gRad = gu - gl.
extern "C" __global__ void ibp_combine_backward(const float* __restrict__ gl, const float* __restrict__ gu, float* __restrict__ gc,
                                                float* __restrict__ gr, int hasC, int hasR, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        float a = gl[i], b = gu[i];
        if (hasC) gc[i] = __fadd_rn(a, b);
        if (hasR) gr[i] = __fsub_rn(b, a);
    }
}

// CROWN's refined rows merged into IBP's bounds: index[i] (lower) and index[n + i] (upper) are -1 (keep IBP) or a
// row of `rows`, whose value (negated for an upper bound) is intersected with IBP's.
extern "C" __global__ void bound_merge(const float* __restrict__ ibpLower, const float* __restrict__ ibpUpper, const float* __restrict__ rows,
                                       const int* __restrict__ index, float* __restrict__ lower, float* __restrict__ upper, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        int kl = index[i], ku = index[n + i];
        float l = ibpLower[i], u = ibpUpper[i];
        lower[i] = kl < 0 ? l : engine_max(rows[kl], l);
        upper[i] = ku < 0 ? u : engine_min(-rows[ku], u);
    }
}

// A row's two results, written or (accumulate) added to what is there: the float sum the host's tensor add would make.
__device__ __forceinline__ void bounds_store2(float* __restrict__ x, float* __restrict__ y, long long row, float vx, float vy, int accumulate)
{
    x[row] = accumulate ? __fadd_rn(x[row], vx) : vx;
    y[row] = accumulate ? __fadd_rn(y[row], vy) : vy;
}

// y = a·(a ≥ 0 ? lowSlope : upSlope) element-wise; withBias (lowBias or upBias given; the host says so, as an empty
// buffer's address may be 0): bias[row] = Σ t and mag[row] = Σ |t| for t = a·(a ≥ 0 ? lowBias : upBias), an absent
// (null) bias reading as 0; with accumulate, bias and mag are added to instead.
extern "C" __global__ void bound_relax(const float* __restrict__ a, const float* __restrict__ lowSlope, int lowSlopeRows,
                                       const float* __restrict__ lowBias, int lowBiasRows, const float* __restrict__ upSlope, int upSlopeRows,
                                       const float* __restrict__ upBias, int upBiasRows, float* __restrict__ y, float* __restrict__ bias,
                                       float* __restrict__ mag, int withBias, int batch, int rows, int n, int warpPerRow, int accumulate)
{
    __shared__ double sb[8], sm[8];
    const long long totalRows = (long long)batch * rows;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int perBlock = warpPerRow ? (int)(blockDim.x >> 5) : 1;
    const int stride = warpPerRow ? 32 : (int)blockDim.x;
    const int first = warpPerRow ? lane : (int)threadIdx.x;
    for (long long base = (long long)blockIdx.x * perBlock; base < totalRows; base += (long long)gridDim.x * perBlock)
    {
        long long row = base + (warpPerRow ? warp : 0);
        double s = 0, m = 0;
        if (row < totalRows)
        {
            int b = (int)(row / rows), r = (int)(row % rows);
            const float* ar = a + row * n;
            float* yr = y + row * n;
            const float* ls = lowSlope + bounds_row(b, r, lowSlopeRows, n);
            const float* us = upSlope + bounds_row(b, r, upSlopeRows, n);
            const float* lb = lowBias != nullptr ? lowBias + bounds_row(b, r, lowBiasRows, n) : nullptr;
            const float* ub = upBias != nullptr ? upBias + bounds_row(b, r, upBiasRows, n) : nullptr;
            for (int i = first; i < n; i += stride)
            {
                float v = ar[i];
                bool pos = v >= 0.f;   // NaN: false, as on the CPU
                yr[i] = __fmul_rn(v, pos ? ls[i] : us[i]);
                if (withBias)
                {
                    float bv = pos ? (lb != nullptr ? lb[i] : 0.f) : (ub != nullptr ? ub[i] : 0.f);
                    float t = __fmul_rn(v, bv);
                    s += (double)t;
                    m += (double)fabsf(t);
                }
            }
        }
        if (!withBias) continue;
        if (warpPerRow)
        {
            s = bounds_warp_sum(s);
            m = bounds_warp_sum(m);
            if (lane == 0 && row < totalRows) bounds_store2(bias, mag, row, (float)s, (float)m, accumulate);
        }
        else
        {
            s = bounds_block_sum(s, sb);
            m = bounds_block_sum(m, sm);
            if (threadIdx.x == 0) bounds_store2(bias, mag, row, (float)s, (float)m, accumulate);
        }
    }
}

// value[row] = Σ a·c − spread, mag[row] = Σ |a|·|c| + spread, spread = Σ |a|·radius (hasRadius) or eps·Σ |a|;
// c and radius of example b start at b*cBatchStride / b*radiusBatchStride. Products and sums in double. With
// accumulate, value and mag are added to instead.
extern "C" __global__ void bound_dot(const float* __restrict__ a, const float* __restrict__ c, int cBatchStride,
                                     const float* __restrict__ radius, int hasRadius, int radiusBatchStride, float eps,
                                     float* __restrict__ value, float* __restrict__ mag, int batch, int rows, int n, int warpPerRow, int accumulate)
{
    __shared__ double sd[8], sm[8], ss[8];
    const long long totalRows = (long long)batch * rows;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int perBlock = warpPerRow ? (int)(blockDim.x >> 5) : 1;
    const int stride = warpPerRow ? 32 : (int)blockDim.x;
    const int first = warpPerRow ? lane : (int)threadIdx.x;
    for (long long base = (long long)blockIdx.x * perBlock; base < totalRows; base += (long long)gridDim.x * perBlock)
    {
        long long row = base + (warpPerRow ? warp : 0);
        double d = 0, m = 0, sp = 0;
        if (row < totalRows)
        {
            int b = (int)(row / rows);
            const float* ar = a + row * n;
            const float* cr = c + (long long)b * cBatchStride;
            const float* rr = hasRadius ? radius + (long long)b * radiusBatchStride : nullptr;
            for (int i = first; i < n; i += stride)
            {
                double v = ar[i], cv = cr[i], av = fabs(v);
                d += v * cv;
                m += av * fabs(cv);
                sp += hasRadius ? av * (double)rr[i] : av;
            }
        }
        if (warpPerRow)
        {
            d = bounds_warp_sum(d);
            m = bounds_warp_sum(m);
            sp = bounds_warp_sum(sp);
        }
        else
        {
            d = bounds_block_sum(d, sd);
            m = bounds_block_sum(m, sm);
            sp = bounds_block_sum(sp, ss);
        }
        if ((warpPerRow ? lane : (int)threadIdx.x) == 0 && row < totalRows)
        {
            if (!hasRadius) sp *= (double)eps;
            bounds_store2(value, mag, row, (float)(d - sp), (float)(m + sp), accumulate);
        }
    }
}

// Convolution geometry, field for field as CudaKernels.ConvArgs packs it (16 ints).
struct ConvGeo
{
    int N, C, H, W, Cout, KH, KW, sH, sW, pH, pW, dH, dW, groups, OH, OW;
};

// y[i] ([C, H, W]) = sign·(output channel co's kernel laid over output pixel (oh, ow)'s window) for code[i] = ±(p + 1),
// p = (co*OH + oh)*OW + ow; zero elsewhere and for code 0 (or a code past the output, which the host cannot check).
// One thread per element of y; each element is under at most one tap of the window. total = count*C*H*W.
// Signed rows: y[i, j] = x[(|code[i]| - 1) / divisor, j]·(±1) (the sign of code[i]; code 0: +0), abs (when not null)
// = |y|. The host checked every code against x's rows.
extern "C" __global__ void bound_select_rows(const float* __restrict__ x, int cols, const int* __restrict__ code, int divisor,
                                             float* __restrict__ y, float* __restrict__ abs, int total)
{
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x)
    {
        int i = t / cols, j = t - i * cols;
        int c = code[i];
        float v = 0.f;
        if (c != 0)
        {
            int row = ((c < 0 ? -c : c) - 1) / divisor;
            v = __fmul_rn(x[(long long)row * cols + j], c > 0 ? 1.f : -1.f);
        }
        y[t] = v;
        if (abs) abs[t] = fabsf(v);
    }
}

// Backward of bound_relax: one thread per (example b, element i) walks the rows in order, writing gA per element and
// summing the gradients of operands shared by the rows (one row per example) in registers, in the CPU's order.
extern "C" __global__ void bound_relax_backward(const float* __restrict__ a, const float* __restrict__ ls, int lsRows,
                                                const float* __restrict__ lb, int lbRows, const float* __restrict__ us, int usRows,
                                                const float* __restrict__ ub, int ubRows, const float* __restrict__ gy,
                                                const float* __restrict__ gb, float* __restrict__ ga, float* __restrict__ gls,
                                                float* __restrict__ gus, float* __restrict__ glb, float* __restrict__ gub,
                                                int withBias, int hasGy, int hasGb, int hasGa, int hasGls, int hasGus, int hasGlb,
                                                int hasGub, int batch, int rows, int n)
{
    const long long columns = (long long)batch * n;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < columns; t += (long long)gridDim.x * blockDim.x)
    {
        const int b = (int)(t / n), i = (int)(t % n);
        float sls = 0.f, sus = 0.f, slb = 0.f, sub = 0.f;
        for (int r = 0; r < rows; r++)
        {
            const long long row = (long long)b * rows + r, at = row * n + i;
            const long long ols = ((long long)b * lsRows + (lsRows == 1 ? 0 : r)) * n + i;
            const long long ous = ((long long)b * usRows + (usRows == 1 ? 0 : r)) * n + i;
            const long long olb = ((long long)b * lbRows + (lbRows == 1 ? 0 : r)) * n + i;
            const long long oub = ((long long)b * ubRows + (ubRows == 1 ? 0 : r)) * n + i;
            const float v = a[at];
            const bool pos = v >= 0.f;
            const float g = hasGy ? gy[at] : 0.f, gbv = hasGb ? gb[row] : 0.f;
            if (hasGa)
            {
                float s = __fmul_rn(g, pos ? ls[ols] : us[ous]);
                if (withBias) s = __fadd_rn(s, __fmul_rn(gbv, pos ? (lb ? lb[olb] : 0.f) : (ub ? ub[oub] : 0.f)));
                ga[at] = s;
            }
            const float gv = __fmul_rn(g, v), bv = __fmul_rn(gbv, v);
            const float pgv = pos ? gv : 0.f, ngv = pos ? 0.f : gv, pbv = pos ? bv : 0.f, nbv = pos ? 0.f : bv;
            if (hasGls) { if (lsRows == 1) sls = __fadd_rn(sls, pgv); else gls[ols] = __fadd_rn(0.f, pgv); }
            if (hasGus) { if (usRows == 1) sus = __fadd_rn(sus, ngv); else gus[ous] = __fadd_rn(0.f, ngv); }
            if (hasGlb) { if (lbRows == 1) slb = __fadd_rn(slb, pbv); else glb[olb] = __fadd_rn(0.f, pbv); }
            if (hasGub) { if (ubRows == 1) sub = __fadd_rn(sub, nbv); else gub[oub] = __fadd_rn(0.f, nbv); }
        }
        if (hasGls && lsRows == 1) gls[(long long)b * n + i] = sls;
        if (hasGus && usRows == 1) gus[(long long)b * n + i] = sus;
        if (hasGlb && lbRows == 1) glb[(long long)b * n + i] = slb;
        if (hasGub && ubRows == 1) gub[(long long)b * n + i] = sub;
    }
}

// Backward of bound_dot's value with respect to a: ga = g[row]·(c - sign(a)·(radius or eps)), sign(0) = sign(NaN) = 0.
extern "C" __global__ void bound_dot_backward(const float* __restrict__ a, const float* __restrict__ c, int cStride, const float* __restrict__ radius,
                                              int hasRadius, int rStride, float eps, const float* __restrict__ g, float* __restrict__ ga,
                                              int rows, int n, int total)
{
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x)
    {
        const int row = t / n, i = t - row * n, b = row / rows;
        const float v = a[t];
        const float sign = v > 0.f ? 1.f : v < 0.f ? -1.f : 0.f;
        const float spread = __fmul_rn(sign, hasRadius ? radius[(long long)b * rStride + i] : eps);
        ga[t] = __fmul_rn(g[row], __fsub_rn(c[(long long)b * cStride + i], spread));
    }
}

extern "C" __global__ void bound_conv_select(const float* __restrict__ w, const float* __restrict__ code, float* __restrict__ y, ConvGeo g, int total)
{
    const int inImage = g.C * g.H * g.W, outPix = g.OH * g.OW;
    const int cg = g.C / g.groups, og = g.Cout / g.groups;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += (long long)gridDim.x * blockDim.x)
    {
        int u = (int)t;
        int q = u % inImage, i = u / inImage;
        int cc = (int)code[i];   // truncation, as the CPU's (int) cast
        float v = 0.f;
        long long ap = cc < 0 ? -(long long)cc : (long long)cc;
        if (cc != 0 && ap - 1 < (long long)g.Cout * outPix)
        {
            int p = (int)(ap - 1);
            int co = p / outPix, oh = p % outPix / g.OW, ow = p % g.OW;
            int gi = co / og;
            int ci = q / (g.H * g.W), rem = q % (g.H * g.W);
            int ih = rem / g.W, iw = rem % g.W;
            int c = ci - gi * cg;
            int th = ih - (oh * g.sH - g.pH), tw = iw - (ow * g.sW - g.pW);
            if (c >= 0 && c < cg && th >= 0 && tw >= 0 && th % g.dH == 0 && tw % g.dW == 0)
            {
                int kh = th / g.dH, kw = tw / g.dW;
                if (kh < g.KH && kw < g.KW)
                    v = __fmul_rn(cc > 0 ? 1.f : -1.f, w[(((long long)co * cg + c) * g.KH + kh) * g.KW + kw]);
            }
        }
        y[t] = v;
    }
}
