using System.Numerics.Tensors;
using Engine.Tensors;

namespace Engine.Cpu;

// Convolution schedule on the CPU: im2col + GEMM, with one level of parallelism.
//  - When there are at least as many (image, group) work items as threads, the items are split into one
//    contiguous chunk per thread; each chunk has its own pooled column buffer and runs single-threaded GEMMs
//    (CpuThreads runs nested parallel calls inline). Small per-image GEMMs then run at full speed on every core
//    with no synchronisation between images.
//  - Otherwise (batch 1, few groups) the items run one after another and the GEMM itself spreads over the cores.
// 1x1 stride-1 unpadded convolutions skip im2col: the image already is the [Cin, H*W] column matrix.
// The weight gradient sums over images: each chunk accumulates into its own buffer (chunk 0 into dw itself),
// and the partial sums are added in chunk order, so results depend only on the thread count.
public sealed unsafe partial class CpuKernels
{
    /// <inheritdoc/>
    public void Conv2dForward(Buf x, Buf w, Buf? bias, Buf y, in Conv2dGeometry g)
    {
        var geo = g;
        float* px = P(x), pw = P(w), py = P(y);
        float* pb = bias is Buf bb ? P(bb) : null;
        int cg = geo.GroupInChannels, og = geo.GroupOutChannels, kk = geo.ColRows, np = geo.OutPixels, hw = geo.InPixels;
        bool direct = geo.IsPointwise;
        ForEachConvItem(geo.Batch * geo.Groups, direct ? 0 : (long)kk * np, (item, col) =>
        {
            int n = item / geo.Groups, gi = item % geo.Groups;
            float* xg = px + ((long)n * geo.InChannels + gi * cg) * hw;
            float* yg = py + ((long)n * geo.OutChannels + gi * og) * np;
            float* bm = xg;
            if (!direct) { Im2ColCore(xg, col, geo, 0, cg); bm = col; }
            Sgemm.Run(false, false, og, np, kk, 1f, pw + (long)gi * og * kk, kk, bm, np, 0f, yg, np);
            if (pb != null)
                for (int oc = 0; oc < og; oc++)
                {
                    var row = new Span<float>(yg + (long)oc * np, np);
                    TensorPrimitives.Add(row, pb[gi * og + oc], row);
                }
        });
    }

    /// <inheritdoc/>
    public void Conv2dBackwardInput(Buf dy, Buf w, Buf dx, in Conv2dGeometry g)
    {
        var geo = g;
        float* pdy = P(dy), pw = P(w), pdx = P(dx);
        int cg = geo.GroupInChannels, og = geo.GroupOutChannels, kk = geo.ColRows, np = geo.OutPixels, hw = geo.InPixels;
        bool direct = geo.IsPointwise;
        ForEachConvItem(geo.Batch * geo.Groups, direct ? 0 : (long)kk * np, (item, col) =>
        {
            int n = item / geo.Groups, gi = item % geo.Groups;
            float* dxg = pdx + ((long)n * geo.InChannels + gi * cg) * hw;
            float* dyg = pdy + ((long)n * geo.OutChannels + gi * og) * np;
            float* wg = pw + (long)gi * og * kk;
            if (direct) { Sgemm.Run(true, false, kk, np, og, 1f, wg, kk, dyg, np, 0f, dxg, np); return; }
            Sgemm.Run(true, false, kk, np, og, 1f, wg, kk, dyg, np, 0f, col, np);
            new Span<float>(dxg, cg * hw).Clear();
            Col2ImCore(col, dxg, geo, 0, cg);
        });
    }

    /// <inheritdoc/>
    public void Conv2dBackwardWeight(Buf x, Buf dy, Buf dw, in Conv2dGeometry g)
    {
        var geo = g;
        float* px = P(x), pdy = P(dy), pdw = P(dw);
        int cg = geo.GroupInChannels, og = geo.GroupOutChannels, kk = geo.ColRows, np = geo.OutPixels, hw = geo.InPixels;
        int wLen = geo.OutChannels * kk, batch = geo.Batch, groups = geo.Groups;
        bool direct = geo.IsPointwise;
        long colLen = direct ? 0 : (long)kk * np;
        if (batch == 0 || np == 0) { new Span<float>(pdw, wLen).Clear(); return; }

        // Accumulates images [n0, n1) of groups [g0, g1) into target (overwriting it at the first image).
        void Accumulate(int n0, int n1, int g0, int g1, float* target, float* col)
        {
            for (int n = n0; n < n1; n++)
                for (int gi = g0; gi < g1; gi++)
                {
                    float* xg = px + ((long)n * geo.InChannels + gi * cg) * hw;
                    float* bm = xg;
                    if (!direct) { Im2ColCore(xg, col, geo, 0, cg); bm = col; }
                    Sgemm.Run(false, true, og, kk, np, 1f, pdy + ((long)n * geo.OutChannels + gi * og) * np, np, bm, np,
                              n == n0 ? 0f : 1f, target + (long)gi * og * kk, kk);
                }
        }

        int threads = CpuThreads.InParallelRegion ? 1 : CpuThreads.Count;
        if (threads > 1 && batch >= threads)
        {
            int chunks = threads;
            var partials = new float[chunks][];
            var cols = new float[chunks][];
            CpuThreads.ForEach(chunks, c =>
            {
                cols[c] = ScratchPool.Rent(colLen);
                float* target = pdw;
                if (c > 0) { partials[c] = ScratchPool.Rent(wLen); target = ScratchPool.Ptr(partials[c]); }
                Accumulate((int)((long)c * batch / chunks), (int)((long)(c + 1) * batch / chunks), 0, groups, target, ScratchPool.Ptr(cols[c]));
            });
            var sum = new Span<float>(pdw, wLen);
            for (int c = 1; c < chunks; c++) TensorPrimitives.Add(sum, partials[c].AsSpan(0, wLen), sum);
            for (int c = 0; c < chunks; c++)
            {
                ScratchPool.Return(cols[c]);
                if (partials[c] != null) ScratchPool.Return(partials[c]);
            }
            return;
        }
        if (threads > 1 && groups >= threads)
        {
            // Few images but many groups (depthwise): groups own disjoint slices of dw.
            CpuThreads.ForEach(threads, c =>
            {
                var col = ScratchPool.Rent(colLen);
                Accumulate(0, batch, (int)((long)c * groups / threads), (int)((long)(c + 1) * groups / threads), pdw, ScratchPool.Ptr(col));
                ScratchPool.Return(col);
            });
            return;
        }
        var col1 = ScratchPool.Rent(colLen);
        Accumulate(0, batch, 0, groups, pdw, ScratchPool.Ptr(col1));
        ScratchPool.Return(col1);
    }

    /// <summary>
    /// Runs body(item, columnBuffer) for every item in [0, items): in one chunk per thread when there are enough
    /// items (single-threaded GEMMs inside), else sequentially (the GEMM parallelises). Column buffers come from the pool.
    /// </summary>
    private static void ForEachConvItem(int items, long colLen, ConvItem body)
    {
        if (items == 0) return;
        int threads = CpuThreads.InParallelRegion ? 1 : CpuThreads.Count;
        if (threads > 1 && items >= threads)
        {
            CpuThreads.ForEach(threads, c =>
            {
                var col = ScratchPool.Rent(colLen);
                float* pc = ScratchPool.Ptr(col);
                int s = (int)((long)c * items / threads), e = (int)((long)(c + 1) * items / threads);
                for (int i = s; i < e; i++) body(i, pc);
                ScratchPool.Return(col);
            });
            return;
        }
        var col1 = ScratchPool.Rent(colLen);
        float* p1 = ScratchPool.Ptr(col1);
        for (int i = 0; i < items; i++) body(i, p1);
        ScratchPool.Return(col1);
    }

    private delegate void ConvItem(int item, float* col);

    /// <inheritdoc/>
    public void Im2Col(Buf image, Buf col, in Conv2dGeometry g)
    {
        var geo = g;
        float* pi = P(image), pc = P(col);
        long per = (long)geo.KernelH * geo.KernelW * geo.OutPixels;
        CpuThreads.For(geo.GroupInChannels, (int)Math.Max(1, ParallelCopyElements / Math.Max(1, per)), (s, e) => Im2ColCore(pi, pc, geo, s, e));
    }

    /// <inheritdoc/>
    public void Col2Im(Buf col, Buf image, in Conv2dGeometry g)
    {
        var geo = g;
        float* pi = P(image), pc = P(col);
        long per = (long)geo.KernelH * geo.KernelW * geo.OutPixels;
        CpuThreads.For(geo.GroupInChannels, (int)Math.Max(1, ParallelCopyElements / Math.Max(1, per)), (s, e) => Col2ImCore(pc, pi, geo, s, e));
    }

    /// <summary>
    /// The valid output columns [lo, hi) of kernel column j: those whose input column ow*StrideW - PadW + j*DilationW
    /// lies in [0, Width). Everything left of lo and right of hi reads padding.
    /// </summary>
    private static (int lo, int hi, int iw0) ColumnRange(in Conv2dGeometry g, int j)
    {
        int iw0 = j * g.DilationW - g.PadW, sw = g.StrideW;
        int lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
        int hi = g.Width - 1 - iw0 < 0 ? 0 : Math.Min(g.OutW, (g.Width - 1 - iw0) / sw + 1);
        lo = Math.Min(lo, g.OutW);
        if (hi < lo) hi = lo;
        return (lo, hi, iw0);
    }

    /// <summary>Im2col of channels [c0, c1) of one group's image (rows of the column matrix for those channels).</summary>
    internal static void Im2ColCore(float* x, float* col, in Conv2dGeometry g, int c0, int c1)
    {
        int kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, h = g.Height, w = g.Width, np = g.OutPixels, sw = g.StrideW;
        for (int c = c0; c < c1; c++)
        {
            float* src = x + (long)c * h * w;
            for (int i = 0; i < kh; i++)
            {
                int ih0 = i * g.DilationH - g.PadH;
                for (int j = 0; j < kw; j++)
                {
                    var (lo, hi, iw0) = ColumnRange(g, j);
                    float* dst = col + ((long)(c * kh + i) * kw + j) * np;
                    for (int r = 0; r < oh; r++, dst += ow)
                    {
                        int ih = r * g.StrideH + ih0;
                        if ((uint)ih >= (uint)h) { new Span<float>(dst, ow).Clear(); continue; }
                        float* srow = src + (long)ih * w + iw0;
                        for (int t = 0; t < lo; t++) dst[t] = 0f;
                        if (sw == 1) CopyRun(srow + lo, dst + lo, hi - lo);
                        else for (int t = lo; t < hi; t++) dst[t] = srow[t * sw];
                        for (int t = hi; t < ow; t++) dst[t] = 0f;
                    }
                }
            }
        }
    }

    /// <summary>Col2im (accumulating) of channels [c0, c1) of one group's image.</summary>
    internal static void Col2ImCore(float* col, float* x, in Conv2dGeometry g, int c0, int c1)
    {
        int kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, h = g.Height, w = g.Width, np = g.OutPixels, sw = g.StrideW;
        for (int c = c0; c < c1; c++)
        {
            float* dstImg = x + (long)c * h * w;
            for (int i = 0; i < kh; i++)
            {
                int ih0 = i * g.DilationH - g.PadH;
                for (int j = 0; j < kw; j++)
                {
                    var (lo, hi, iw0) = ColumnRange(g, j);
                    float* src = col + ((long)(c * kh + i) * kw + j) * np;
                    for (int r = 0; r < oh; r++, src += ow)
                    {
                        int ih = r * g.StrideH + ih0;
                        if ((uint)ih >= (uint)h) continue;
                        float* drow = dstImg + (long)ih * w + iw0;
                        if (sw == 1) AddRun(src + lo, drow + lo, hi - lo);
                        else for (int t = lo; t < hi; t++) drow[t * sw] += src[t];
                    }
                }
            }
        }
    }

    /// <inheritdoc/>
    public void AddBias(Buf y, Buf bias, int outer, int channels, int inner)
    {
        if ((long)outer * channels * inner == 0) return;
        float* py = P(y), pb = P(bias);
        if (inner == 1)
        {
            CpuThreads.For(outer, Math.Max(1, ParallelCopyElements / channels), (s, e) =>
            {
                for (int o = s; o < e; o++)
                {
                    var row = new Span<float>(py + (long)o * channels, channels);
                    TensorPrimitives.Add(row, new ReadOnlySpan<float>(pb, channels), row);
                }
            });
            return;
        }
        CpuThreads.For(outer * channels, Math.Max(1, ParallelCopyElements / inner), (s, e) =>
        {
            for (int t = s; t < e; t++)
            {
                var seg = new Span<float>(py + (long)t * inner, inner);
                TensorPrimitives.Add(seg, pb[t % channels], seg);
            }
        });
    }

    /// <inheritdoc/>
    public void BiasGrad(Buf dy, Buf db, int outer, int channels, int inner)
    {
        float* pdy = P(dy), pdb = P(db);
        if (channels == 0) return;
        var sum = new Span<float>(pdb, channels);
        if (inner == 1)
        {
            // Column sums of a [outer, channels] matrix: add rows in order (vectorised across channels).
            sum.Clear();
            for (int o = 0; o < outer; o++) TensorPrimitives.Add(sum, new ReadOnlySpan<float>(pdy + (long)o * channels, channels), sum);
            return;
        }
        CpuThreads.For(channels, (int)Math.Max(1, ParallelCopyElements / Math.Max(1L, (long)outer * inner)), (s, e) =>
        {
            for (int c = s; c < e; c++)
            {
                double acc = 0;
                for (int o = 0; o < outer; o++) acc += TensorPrimitives.Sum(new ReadOnlySpan<float>(pdy + ((long)o * channels + c) * inner, inner));
                pdb[c] = (float)acc;
            }
        });
    }
}
