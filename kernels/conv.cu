// Convolution building blocks (IKernels.Conv.cs): im2col / col2im over several images at once, bias add and bias
// gradient, and two direct kernels (transposed convolution and grouped forward) for shapes where a GEMM would be
// tiny. The GEMMs themselves run in cuBLAS (CudaKernels.Gemm). All 1-D kernels loop grid-stride; every launch covers
// at most int.MaxValue items (the host checks), so coordinates are decomposed in 32-bit arithmetic and only the
// final addresses are 64-bit.

// Geometry of one convolution, field for field as CudaKernels.ConvArgs packs it (16 ints, passed by value).
struct ConvGeo
{
    int N, C, H, W, Cout, KH, KW, sH, sW, pH, pW, dH, dW, groups, OH, OW;
};

#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); i += (long long)gridDim.x * blockDim.x)

// Unfolds channels [0, C) of images b < nb (image b at x + b*imageStride, channel-major [C, H, W]) into column
// matrices: col[b*colImage + ((c*KH + i)*KW + j)*colRow + oh*OW + ow] = x_b[c, oh*sH - pH + i*dH, ow*sW - pW + j*dW],
// zero in the padding. colImage = C*KH*KW*P, colRow = P gives one contiguous [C*KH*KW, P] matrix per image (group g's
// rows start at g*K*P); colImage = P, colRow = nb*P puts the images side by side ([C*KH*KW, nb*P], the weight
// gradient's layout). nb = 1, C = Cin/groups is IKernels.Im2Col. total = nb*C*KH*KW*P.
extern "C" __global__ void conv_im2col(const float* __restrict__ x, float* __restrict__ col, int nb, long long imageStride,
                                       long long colImage, long long colRow, int C, ConvGeo g, int total)
{
    const int P = g.OH * g.OW, taps = g.KH * g.KW;
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int p = u % P; u /= P;
        int b = u % nb; u /= nb;
        int tap = u % taps, c = u / taps;
        int oh = p / g.OW, ow = p - oh * g.OW;
        int i = tap / g.KW, j = tap - i * g.KW;
        int ih = oh * g.sH - g.pH + i * g.dH, iw = ow * g.sW - g.pW + j * g.dW;
        float v = 0.f;
        if ((unsigned)ih < (unsigned)g.H && (unsigned)iw < (unsigned)g.W)
            v = x[b * imageStride + ((long long)c * g.H + ih) * g.W + iw];
        col[b * colImage + (long long)(c * taps + tap) * colRow + p] = v;
    }
}

// The adjoint of conv_im2col (same col layout parameters), atomic-free: one thread per image element (b, c, ih, iw)
// gathers the column entries that fold onto it, in tap order (i, then j; a tap reaches the element from at most one
// output pixel). The element is overwritten with the sum (accumulate = 0, the convolution's input gradient) or
// receives element + sum (accumulate = 1, IKernels.Col2Im). total = nb*C*H*W.
extern "C" __global__ void conv_col2im(const float* __restrict__ col, float* __restrict__ x, int nb, long long imageStride,
                                       long long colImage, long long colRow, int C, ConvGeo g, int accumulate, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int iw = u % g.W; u /= g.W;
        int ih = u % g.H; u /= g.H;
        int c = u % C, b = u / C;
        const float* cb = col + b * colImage;
        float acc = 0.f;
        for (int i = 0; i < g.KH; i++)
        {
            int th = ih + g.pH - i * g.dH;   // = oh*sH for the output row whose tap i lands on ih
            if (th < 0) break;               // decreases with i
            if (th % g.sH != 0) continue;
            int oh = th / g.sH;
            if (oh >= g.OH) continue;
            for (int j = 0; j < g.KW; j++)
            {
                int tw = iw + g.pW - j * g.dW;
                if (tw < 0) break;
                if (tw % g.sW != 0) continue;
                int ow = tw / g.sW;
                if (ow >= g.OW) continue;
                acc += cb[(long long)((c * g.KH + i) * g.KW + j) * colRow + oh * g.OW + ow];
            }
        }
        long long at = b * imageStride + ((long long)c * g.H + ih) * g.W + iw;
        x[at] = accumulate ? x[at] + acc : acc;
    }
}

// y = [B, A, P] from x = [A, B, P] (swaps the two outer axes): gathers a batch's dy as [Cout, nb, P] so that one GEMM
// per group sums the weight gradient over the images. total = A*B*P.
extern "C" __global__ void conv_swap01(const float* __restrict__ x, float* __restrict__ y, int A, int B, int P, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int p = u % P; u /= P;
        int a = u % A, b = u / A;   // y index t = (b*A + a)*P + p
        y[t] = x[((long long)a * B + b) * P + p];
    }
}

// y[o, c, i] += bias[c] over [outer, channels, inner]; total = outer*channels*inner.
extern "C" __global__ void conv_add_bias(float* __restrict__ y, const float* __restrict__ bias, int channels, int inner, int total)
{
    GRID_STRIDE(t, total)
    {
        int c = ((int)t / inner) % channels;
        y[t] += bias[c];
    }
}

// db[c] = Σ_o dy[o, c] for inner = 1 ([outer, channels] rows): blockDim (32, 8); a block owns 32 adjacent channels
// (coalesced row reads), its 8 thread rows split the outer range, and the partial sums (double) meet in shared memory.
extern "C" __global__ void conv_bias_grad_rows(const float* __restrict__ dy, float* __restrict__ db, int outer, int channels)
{
    __shared__ double part[8][33];
    int c = blockIdx.x * 32 + threadIdx.x;
    double s = 0;
    if (c < channels)
        for (int o = threadIdx.y; o < outer; o += 8) s += dy[(long long)o * channels + c];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < channels)
    {
        double acc = 0;
        for (int r = 0; r < 8; r++) acc += part[r][threadIdx.x];
        db[c] = (float)acc;
    }
}

__device__ __forceinline__ double conv_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

// db[c] = Σ_{o,i} dy[o, c, i] for inner > 1: one 256-thread block per channel (grid-stride over channels), threads
// walk the channel's outer*inner elements (contiguous runs of inner), double accumulation, warp-shuffle reduction.
extern "C" __global__ void conv_bias_grad(const float* __restrict__ dy, float* __restrict__ db, int outer, int channels, int inner)
{
    __shared__ double warpSums[32];
    const int count = outer * inner;   // <= the buffer's length (host-checked)
    for (int c = blockIdx.x; c < channels; c += gridDim.x)
    {
        double s = 0;
        for (int k = threadIdx.x; k < count; k += blockDim.x)
        {
            int o = k / inner, i = k - o * inner;
            s += dy[((long long)o * channels + c) * inner + i];
        }
        s = conv_warp_sum(s);
        int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        if (lane == 0) warpSums[warp] = s;
        __syncthreads();
        if (warp == 0)
        {
            double v = lane < (int)(blockDim.x >> 5) ? warpSums[lane] : 0.0;
            v = conv_warp_sum(v);
            if (lane == 0) db[c] = (float)v;
        }
        __syncthreads();
    }
}

// dx = convolutionᵀ(a) directly (no column matrix): one thread per dx element (n, ci, ih, iw) sums
// w[co, ci - g*cg, i, j] * a[n, co, oh, ow] over the taps (i, j) that reach it from an output pixel (oh, ow) and the
// output channels co of its group. Serves BoundConvTranspose (many small images) and grouped / depthwise input
// gradients. total = N*C*H*W.
extern "C" __global__ void conv_transpose_direct(const float* __restrict__ a, const float* __restrict__ w, float* __restrict__ dx,
                                                 ConvGeo g, int total)
{
    const int cg = g.C / g.groups, og = g.Cout / g.groups, taps = g.KH * g.KW, P = g.OH * g.OW;
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int iw = u % g.W; u /= g.W;
        int ih = u % g.H; u /= g.H;
        int ci = u % g.C, n = u / g.C;
        int gi = ci / cg, c = ci - gi * cg;
        const float* wc = w + ((long long)gi * og * cg + c) * taps;       // w[gi*og, c, 0, 0]; co steps by cg*taps
        const float* an = a + ((long long)n * g.Cout + (long long)gi * og) * P; // a[n, gi*og, 0, 0]; co steps by P
        float acc = 0.f;
        for (int i = 0; i < g.KH; i++)
        {
            int th = ih + g.pH - i * g.dH;
            if (th < 0) break;
            if (th % g.sH != 0) continue;
            int oh = th / g.sH;
            if (oh >= g.OH) continue;
            for (int j = 0; j < g.KW; j++)
            {
                int tw = iw + g.pW - j * g.dW;
                if (tw < 0) break;
                if (tw % g.sW != 0) continue;
                int ow = tw / g.sW;
                if (ow >= g.OW) continue;
                const float* wt = wc + i * g.KW + j;
                const float* at = an + oh * g.OW + ow;
                for (int co = 0; co < og; co++)
                    acc = fmaf(wt[(long long)co * cg * taps], at[(long long)co * P], acc);
            }
        }
        dx[t] = acc;
    }
}

// y = conv2d(x, w) (+ bias) directly: one thread per output element (n, co, oh, ow) sums its group's channels and the
// in-range taps. For grouped convolutions with few channels per group (depthwise), where per-group GEMMs would be
// tiny. bias may be null. total = N*Cout*OH*OW.
extern "C" __global__ void conv_forward_direct(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ bias,
                                               float* __restrict__ y, ConvGeo g, int total)
{
    const int cg = g.C / g.groups, og = g.Cout / g.groups, taps = g.KH * g.KW;
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int ow = u % g.OW; u /= g.OW;
        int oh = u % g.OH; u /= g.OH;
        int co = u % g.Cout, n = u / g.Cout;
        int gi = co / og;
        const float* xg = x + ((long long)n * g.C + (long long)gi * cg) * g.H * g.W;
        const float* wk = w + (long long)co * cg * taps;
        int ih0 = oh * g.sH - g.pH, iw0 = ow * g.sW - g.pW;
        float acc = 0.f;
        for (int c = 0; c < cg; c++)
        {
            const float* xc = xg + (long long)c * g.H * g.W;
            const float* wcc = wk + c * taps;
            for (int i = 0; i < g.KH; i++)
            {
                int ih = ih0 + i * g.dH;
                if ((unsigned)ih >= (unsigned)g.H) continue;
                for (int j = 0; j < g.KW; j++)
                {
                    int iw = iw0 + j * g.dW;
                    if ((unsigned)iw >= (unsigned)g.W) continue;
                    acc = fmaf(xc[(long long)ih * g.W + iw], wcc[i * g.KW + j], acc);
                }
            }
        }
        if (bias != nullptr) acc += bias[co];
        y[t] = acc;
    }
}
