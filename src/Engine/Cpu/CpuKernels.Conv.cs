using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

// Convolution schedule on the CPU: narrow layers (<= 64 channels across the lanes, strides 1-2, one group, AVX-512) go
// to DirectConv, which packs nothing; everything else is im2col + GEMM, with one level of parallelism.
//  - Images are processed in blocks of B: the column matrices of a block sit side by side ([K, B*P]), so one
//    GEMM covers B images. B is 1 for large images (P = OutH*OutW >= TargetColumns) and grows for small ones,
//    where a per-image GEMM would be too narrow to keep the micro-kernel busy (e.g. 7x7 outputs). With B > 1 the
//    GEMM output is [Cout, B*P] and is copied back to NCHW (and dy gathered from it) one contiguous run at a time.
//  - When there are at least as many (block, group) work items as threads, the items are split into one
//    contiguous chunk per thread; each chunk has its own pooled scratch and runs single-threaded GEMMs
//    (CpuThreads runs nested parallel calls inline). Otherwise (batch 1, few groups) the items run one after
//    another and the GEMM itself spreads over the cores.
// A 1x1 stride-1 unpadded convolution of a single-image block skips im2col: the image already is the [Cin, H*W]
// column matrix. The weight gradient sums over images: each thread accumulates its blocks into its own buffer
// (thread 0 into dw itself) and the partial sums are added in a fixed order, so results depend only on the thread count.
public sealed unsafe partial class CpuKernels
{
    // GEMM width (columns = output pixels of a block) worth one call; below it images are batched side by side.
    private const int TargetColumns = 512;
    // Upper bound on a block's column matrix (floats) when batching images, so scratch stays cache-sized.
    private const long MaxBlockColumnFloats = 1 << 20;

    /// <summary>How one convolution call is cut into work: images per block, blocks, threads.</summary>
    private readonly struct ConvPlan
    {
        public readonly int Block, Blocks, Threads, Items;
        public readonly bool Direct;
        public readonly long ColLen, BufLen;

        public ConvPlan(in Conv2dGeometry g)
        {
            Threads = CpuThreads.InParallelRegion ? 1 : CpuThreads.Count;
            int np = Math.Max(1, g.OutPixels), n = Math.Max(1, g.Batch);
            int b = Math.Max(1, (TargetColumns + np - 1) / np);
            b = (int)Math.Min(b, Math.Max(1, MaxBlockColumnFloats / Math.Max(1L, (long)g.ColRows * np)));
            b = Math.Min(b, (n + Threads - 1) / Threads);  // leave every thread at least one block
            Block = Math.Max(1, b);
            Blocks = (g.Batch + Block - 1) / Block;
            Items = Blocks * g.Groups;
            Direct = Block == 1 && g.IsPointwise;
            ColLen = Direct ? 0 : (long)g.ColRows * Block * g.OutPixels;
            BufLen = Block == 1 ? 0 : (long)g.GroupOutChannels * Block * g.OutPixels;
        }
    }

    /// <summary>Per-thread scratch: a column matrix, a [Cout/groups, B*P] GEMM output / gathered dy, a padded plane.</summary>
    private sealed class ConvScratch
    {
        private readonly float[] _col, _buf, _plane, _pad;
        public readonly float* Col, Buf, Plane, Pad;
        private readonly long _padLen;
        private bool _padBorderZero;
        /// <summary>
        /// With a pad layout (implicit im2col) the column matrix and plane are not needed; instead a padded block of
        /// plan.Block images whose border is zeroed on first use.
        /// </summary>
        public ConvScratch(in ConvPlan plan, ConvUnfold unfold, ConvPadLayout? pad = null)
        {
            _padLen = pad?.BlockLen(plan.Block) ?? 0;
            _col = ScratchPool.Rent(pad == null ? plan.ColLen : 0); _buf = ScratchPool.Rent(plan.BufLen);
            _plane = ScratchPool.Rent(pad == null ? unfold.PlaneLen : 0); _pad = ScratchPool.Rent(_padLen);
            Col = ScratchPool.Ptr(_col); Buf = ScratchPool.Ptr(_buf); Plane = ScratchPool.Ptr(_plane); Pad = ScratchPool.Ptr(_pad);
        }
        /// <summary>Copies images into the padded block, zeroing its border the first time.</summary>
        public void FillPad(ConvPadLayout layout, float* x, long imageStride, int nb)
        {
            if (!_padBorderZero) new Span<float>(Pad, (int)_padLen).Clear();
            _padBorderZero = true;
            layout.PadBlock(x, imageStride, nb, Pad, false);
        }
        public void Release() { ScratchPool.Return(_col); ScratchPool.Return(_buf); ScratchPool.Return(_plane); ScratchPool.Return(_pad); }
    }

    /// <summary>
    /// How one geometry is unfolded into columns. Wide stride-1 rows are copied run by run. Strided or narrow outputs
    /// (e.g. a 4x4 stride-2 kernel on 14x14) would spend more on per-row bookkeeping than on copying, so they use a
    /// table, built once per call, of each (tap, output pixel)'s offset in a zero-padded copy of the channel plane:
    /// im2col is then one branch-free gather per channel and col2im one scatter-add.
    /// </summary>
    private sealed class ConvUnfold
    {
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<Conv2dGeometry, ConvUnfold> Cache = new();

        /// <summary>
        /// The unfolding of a geometry's spatial part (batch and channels do not matter), cached: a training loop
        /// calls the same few convolutions over and over, so their tables are built once.
        /// </summary>
        public static ConvUnfold For(in Conv2dGeometry g)
        {
            var key = new Conv2dGeometry(1, 1, g.Height, g.Width, 1, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW, 1);
            if (Cache.TryGetValue(key, out var u)) return u;
            if (Cache.Count >= 64) Cache.Clear();
            return Cache.GetOrAdd(key, k => new ConvUnfold(k));
        }

        private readonly Conv2dGeometry _g;
        private readonly int[]? _table;
        private readonly int* _tab;
        // The table inverted (CSR over the image's pixels, taps ascending): col2im as one gather-sum per pixel, which
        // writes every pixel once instead of scatter-adding into a cleared plane (read-modify-write chains).
        private readonly int[]? _inverse;
        private readonly int* _invStart, _invTap, _invPix;
        private readonly int _paddedW;
        /// <summary>Floats of padded-plane scratch a thread needs (0 without a table).</summary>
        public readonly int PlaneLen;

        private ConvUnfold(in Conv2dGeometry g)
        {
            _g = g;
            int taps = g.KernelH * g.KernelW, np = g.OutPixels;
            bool table = (g.StrideW > 1 || g.OutW < 16) && np > 0 && (long)taps * np <= 1 << 20;
            if (!table) return;
            _paddedW = g.Width + 2 * g.PadW;
            PlaneLen = (g.Height + 2 * g.PadH) * _paddedW;
            _table = GC.AllocateUninitializedArray<int>(taps * np, pinned: true);
            _tab = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_table));
            for (int i = 0; i < g.KernelH; i++)
                for (int j = 0; j < g.KernelW; j++)
                    for (int oh = 0; oh < g.OutH; oh++)
                        for (int ow = 0; ow < g.OutW; ow++)
                            _tab[(i * g.KernelW + j) * np + oh * g.OutW + ow] =
                                (oh * g.StrideH + i * g.DilationH) * _paddedW + ow * g.StrideW + j * g.DilationW;

            // Interior pixel of each padded-plane offset (-1 on the border), then the entries per pixel.
            int hw = g.InPixels, entries = 0;
            var pixelOf = new int[PlaneLen];
            Array.Fill(pixelOf, -1);
            for (int h = 0; h < g.Height; h++)
                for (int w = 0; w < g.Width; w++) pixelOf[(h + g.PadH) * _paddedW + w + g.PadW] = h * g.Width + w;
            var count = new int[hw + 1];
            for (int e = 0; e < taps * np; e++)
            {
                int q = pixelOf[_tab[e]];
                if (q >= 0) { count[q + 1]++; entries++; }
            }
            _inverse = GC.AllocateUninitializedArray<int>(hw + 1 + 2 * entries, pinned: true);
            _invStart = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_inverse));
            _invTap = _invStart + hw + 1;
            _invPix = _invTap + entries;
            _invStart[0] = 0;
            for (int q = 0; q < hw; q++) _invStart[q + 1] = _invStart[q] + count[q + 1];
            var fill = new int[hw];
            for (int t = 0; t < taps; t++)      // taps ascending: the gather adds in the scatter's order
                for (int p = 0; p < np; p++)
                {
                    int q = pixelOf[_tab[t * np + p]];
                    if (q < 0) continue;
                    int at = _invStart[q] + fill[q]++;
                    _invTap[at] = t;
                    _invPix[at] = p;
                }
        }

        /// <summary>Column rows of channels [c0, c1) of one group's image, rows <paramref name="ld"/> apart.</summary>
        public void Im2Col(float* x, float* col, long ld, int c0, int c1, float* plane)
        {
            if (_table == null) { Im2ColRows(x, col, ld, _g, c0, c1); return; }
            var g = _g;
            int taps = g.KernelH * g.KernelW, np = g.OutPixels, hw = g.InPixels;
            // The border stays zero: every channel overwrites only the interior.
            new Span<float>(plane, PlaneLen).Clear();
            float* interior = plane + g.PadH * _paddedW + g.PadW;
            for (int c = c0; c < c1; c++)
            {
                float* src = x + (long)c * hw;
                for (int h = 0; h < g.Height; h++) CopyRun(src + h * g.Width, interior + h * _paddedW, g.Width);
                for (int t = 0; t < taps; t++)
                {
                    int* tt = _tab + (long)t * np;
                    float* dst = col + ((long)c * taps + t) * ld;
                    // Scalar loads: hardware gathers measured slower here than one load per element.
                    for (int p = 0; p < np; p++) dst[p] = plane[tt[p]];
                }
            }
        }

        /// <summary>
        /// image += fold(columns) for channels [c0, c1), rows <paramref name="ld"/> apart; with
        /// <paramref name="accumulate"/> false, image = fold(columns) (the image's old values are not read).
        /// </summary>
        public void Col2Im(float* col, long ld, float* x, int c0, int c1, bool accumulate = true)
        {
            var g = _g;
            int taps = g.KernelH * g.KernelW, hw = g.InPixels;
            if (_inverse == null)
            {
                if (!accumulate) new Span<float>(x + (long)c0 * hw, (c1 - c0) * hw).Clear();
                Col2ImRows(col, ld, x, g, c0, c1);
                return;
            }
            for (int c = c0; c < c1; c++)
            {
                float* src = col + (long)c * taps * ld;
                float* dst = x + (long)c * hw;
                for (int q = 0; q < hw; q++)
                {
                    // Starting from +0 and adding taps in ascending order gives the scatter's sums bit for bit.
                    float sum = 0f;
                    for (int e = _invStart[q], end = _invStart[q + 1]; e < end; e++) sum += src[_invTap[e] * ld + _invPix[e]];
                    dst[q] = accumulate ? dst[q] + sum : sum;
                }
            }
        }
    }

    /// <summary>Builds the column matrix of images [n0, n0+nb) of group gi side by side; returns it and its row stride.</summary>
    private static float* BlockColumns(float* px, in Conv2dGeometry g, in ConvPlan plan, ConvUnfold uf, int n0, int nb, int gi, ConvScratch sc, out int ld)
    {
        int cg = g.GroupInChannels, np = g.OutPixels, cols = nb * np;
        long imageStride = (long)g.InChannels * g.InPixels;
        float* x0 = px + (long)n0 * imageStride + (long)gi * cg * g.InPixels;
        if (plan.Direct) { ld = np; return x0; }
        for (int b = 0; b < nb; b++) uf.Im2Col(x0 + b * imageStride, sc.Col + (long)b * np, cols, 0, cg, sc.Plane);
        ld = cols;
        return sc.Col;
    }

    /// <summary>dy of images [n0, n0+nb), group gi, as a [Cout/groups, nb*P] matrix: in place for one image, else gathered.</summary>
    private static float* BlockGradOut(float* pdy, in Conv2dGeometry g, int n0, int nb, int gi, float* buf, out int ld)
    {
        int og = g.GroupOutChannels, np = g.OutPixels, cols = nb * np;
        long imageStride = (long)g.OutChannels * np;
        float* d0 = pdy + (long)n0 * imageStride + (long)gi * og * np;
        if (nb == 1) { ld = np; return d0; }
        for (int b = 0; b < nb; b++)
            for (int oc = 0; oc < og; oc++)
                CopyRun(d0 + b * imageStride + (long)oc * np, buf + (long)oc * cols + (long)b * np, np);
        ld = cols;
        return buf;
    }

    /// <summary>Runs body(item, scratch) over [0, plan.Items): one contiguous chunk per thread, or sequentially.</summary>
    private static void ForEachConvItem(in ConvPlan plan, ConvUnfold uf, ConvPadLayout? pad, Action<int, ConvScratch> body)
    {
        if (plan.Items == 0) return;
        var p = plan;
        if (p.Threads > 1 && p.Items >= p.Threads)
        {
            CpuThreads.ForEach(p.Threads, c =>
            {
                var sc = new ConvScratch(p, uf, pad);
                int s = (int)((long)c * p.Items / p.Threads), e = (int)((long)(c + 1) * p.Items / p.Threads);
                for (int i = s; i < e; i++) body(i, sc);
                sc.Release();
            });
            return;
        }
        var one = new ConvScratch(p, uf, pad);
        for (int i = 0; i < p.Items; i++) body(i, one);
        one.Release();
    }

    /// <summary>
    /// Whether a geometry takes the implicit-im2col path (B panels packed straight from a padded block). The 1x1 direct
    /// path needs no unfolding at all, and the scalar GEMM has no packed-B entry.
    /// </summary>
    private static bool UseImplicit(in ConvPlan plan) => !plan.Direct && Sgemm.PackedBSupported;

    /// <inheritdoc/>
    public void Conv2dForward(Buf x, Buf w, Buf? bias, Buf y, in Conv2dGeometry g)
        => ForwardCore(P(x), P(w), bias is Buf bb ? P(bb) : null, P(y), g);

    /// <summary>y = conv(x, w) + bias (bias may be null) over raw buffers; also runs the input gradient of stride-1 convolutions.</summary>
    private static void ForwardCore(float* px, float* pw, float* pb, float* py, in Conv2dGeometry g)
    {
        if (DirectConv.Applies(g)) { DirectConv.Forward(px, pw, pb, py, g); return; }
        var geo = g;
        var plan = new ConvPlan(geo);
        var uf = ConvUnfold.For(geo);
        var pad = UseImplicit(plan) ? ConvPadLayout.For(geo) : null;
        int og = geo.GroupOutChannels, kk = geo.ColRows, np = geo.OutPixels, groups = geo.Groups, cg = geo.GroupInChannels;
        long outImage = (long)geo.OutChannels * np, inImage = (long)geo.InChannels * geo.InPixels;
        ForEachConvItem(plan, uf, pad, (item, sc) =>
        {
            int bi = item / groups, gi = item % groups;
            int n0 = bi * plan.Block, nb = Math.Min(plan.Block, geo.Batch - n0), cols = nb * np;
            float* wg = pw + (long)gi * og * kk;
            float* y0 = py + n0 * outImage + (long)gi * og * np;
            float* target = nb == 1 ? y0 : sc.Buf;
            int ldt = nb == 1 ? np : cols;
            if (pad != null)
            {
                sc.FillPad(pad, px + n0 * inImage + (long)gi * cg * geo.InPixels, inImage, nb);
                Sgemm.RunPackedB(false, og, cols, kk, 1f, wg, kk, new ConvColumnsPacker(pad, sc.Pad), 0f, target, ldt, CpuThreads.Count);
            }
            else
            {
                float* bm = BlockColumns(px, geo, plan, uf, n0, nb, gi, sc, out int ldb);
                Sgemm.Run(false, false, og, cols, kk, 1f, wg, kk, bm, ldb, 0f, target, ldt);
            }
            if (nb == 1)
            {
                if (pb != null)
                    for (int oc = 0; oc < og; oc++)
                    {
                        var row = new Span<float>(y0 + (long)oc * np, np);
                        TensorPrimitives.Add(row, pb[gi * og + oc], row);
                    }
                return;
            }
            for (int b = 0; b < nb; b++)
                for (int oc = 0; oc < og; oc++)
                {
                    float* src = sc.Buf + (long)oc * cols + (long)b * np;
                    float* dst = y0 + b * outImage + (long)oc * np;
                    if (pb != null) TensorPrimitives.Add(new ReadOnlySpan<float>(src, np), pb[gi * og + oc], new Span<float>(dst, np));
                    else CopyRun(src, dst, np);
                }
        });
    }

    /// <inheritdoc/>
    public void Conv2dBackwardInput(Buf dy, Buf w, Buf dx, in Conv2dGeometry g)
    {
        if (DirectConv.AppliesBackwardInput(g)) { DirectConv.BackwardInput(P(dy), P(w), P(dx), g); return; }
        if (TryBackwardInputAsForward(P(dy), P(w), P(dx), g)) return;
        if (TryBackwardInputSubpixel(P(dy), P(w), P(dx), g)) return;
        var geo = g;
        var plan = new ConvPlan(geo);
        var uf = ConvUnfold.For(geo);
        float* pdy = P(dy), pw = P(w), pdx = P(dx);
        int cg = geo.GroupInChannels, og = geo.GroupOutChannels, kk = geo.ColRows, np = geo.OutPixels, hw = geo.InPixels, groups = geo.Groups;
        long inImage = (long)geo.InChannels * hw;
        ForEachConvItem(plan, uf, null, (item, sc) =>
        {
            int bi = item / groups, gi = item % groups;
            int n0 = bi * plan.Block, nb = Math.Min(plan.Block, geo.Batch - n0), cols = nb * np;
            float* dm = BlockGradOut(pdy, geo, n0, nb, gi, sc.Buf, out int ldd);
            float* wg = pw + (long)gi * og * kk;
            float* dx0 = pdx + n0 * inImage + (long)gi * cg * hw;
            if (plan.Direct) { Sgemm.Run(true, false, kk, np, og, 1f, wg, kk, dm, ldd, 0f, dx0, np); return; }
            Sgemm.Run(true, false, kk, cols, og, 1f, wg, kk, dm, ldd, 0f, sc.Col, cols);
            for (int b = 0; b < nb; b++)
            {
                uf.Col2Im(sc.Col + (long)b * np, cols, dx0 + b * inImage, 0, cg, accumulate: false);
            }
        });
    }

    /// <summary>
    /// The input gradient of a stride-1 convolution is itself a stride-1 convolution: of dy with the kernel flipped in
    /// both spatial axes and its channel axes swapped (per group), padded by dilation*(k-1) - padding. It then runs on
    /// the forward path (implicit im2col, no col2im scatter). Not applicable to strided convolutions or when the padding
    /// exceeds dilation*(k-1) (the equivalent convolution would need negative padding).
    /// </summary>
    private static bool TryBackwardInputAsForward(float* pdy, float* pw, float* pdx, in Conv2dGeometry g)
    {
        int ph = g.DilationH * (g.KernelH - 1) - g.PadH, pwid = g.DilationW * (g.KernelW - 1) - g.PadW;
        if (g.StrideH != 1 || g.StrideW != 1 || ph < 0 || pwid < 0 || !Sgemm.PackedBSupported) return false;
        if (g.Batch == 0) return true;
        var t = new Conv2dGeometry(g.Batch, g.OutChannels, g.OutH, g.OutW, g.InChannels, g.KernelH, g.KernelW, 1, 1, ph, pwid,
                                   g.DilationH, g.DilationW, g.Groups);
        int og = g.GroupOutChannels, cg = g.GroupInChannels, kh = g.KernelH, kw = g.KernelW, taps = kh * kw;
        var flipped = ScratchPool.Rent((long)g.OutChannels * g.ColRows);
        float* wf = ScratchPool.Ptr(flipped);
        // wf[gi*cg + c, o, kh-1-i, kw-1-j] = w[gi*og + o, c, i, j]
        for (int gi = 0; gi < g.Groups; gi++)
            for (int o = 0; o < og; o++)
                for (int c = 0; c < cg; c++)
                {
                    float* src = pw + ((long)(gi * og + o) * cg + c) * taps;
                    float* dst = wf + ((long)(gi * cg + c) * og + o) * taps;
                    for (int q = 0; q < taps; q++) dst[taps - 1 - q] = src[q];
                }
        ForwardCore(pdy, wf, null, pdx, t);
        ScratchPool.Return(flipped);
        return true;
    }

    // Images per chunk of the sub-pixel path are limited so that its phase outputs stay within this many floats
    // (settable so that tests can force several chunks).
    internal static long SubpixelChunkFloats = 1 << 22;

    /// <summary>
    /// The input gradient of a strided convolution whose kernel is a multiple of its stride (e.g. 4x4 stride 2) as one
    /// stride-1 convolution and a pixel shuffle (sub-pixel convolution): input pixel ih = s*u + r - pad takes kernel
    /// rows r, r + s, ... against dy rows u, u - 1, ..., so each residue (rh, rw) is a stride-1 convolution of dy with
    /// a (k/s)x(k/s) slice of the flipped kernel. All s*s residues stack into the output channels of one convolution
    /// on the forward path (implicit im2col), which does the same multiply-adds as im2col + GEMM + col2im without
    /// writing and re-reading the [Cin*k*k, pixels] column matrix, whose inner dimension (Cout) is small in the
    /// narrow networks certified training uses. Ungrouped, undilated convolutions only.
    /// </summary>
    private static bool TryBackwardInputSubpixel(float* pdy, float* pw, float* pdx, in Conv2dGeometry g)
    {
        int sh = g.StrideH, sw = g.StrideW, kh = g.KernelH, kw = g.KernelW;
        if ((sh == 1 && sw == 1) || kh % sh != 0 || kw % sw != 0 || g.Groups != 1 || g.DilationH != 1 || g.DilationW != 1
            || !Sgemm.PackedBSupported || g.OutH < 1 || g.OutW < 1)
            return false;
        if (g.Batch == 0 || g.InPixels == 0) return true;
        int mh = kh / sh, mw = kw / sw, cin = g.InChannels, cout = g.OutChannels, phases = sh * sw;
        // Residue outputs u cover (ih + pad) / s for every input row; the phase convolution with symmetric padding
        // m - 1 + e yields u + e for u in [0, OutH + m - 1 + e), so e is what the last input rows need beyond that.
        int uh = (g.Height - 1 + g.PadH) / sh + 1, uw = (g.Width - 1 + g.PadW) / sw + 1;
        int eh = Math.Max(0, uh - (g.OutH + mh - 1)), ew = Math.Max(0, uw - (g.OutW + mw - 1));
        int chunk = (int)Math.Clamp(SubpixelChunkFloats / Math.Max(1L, (long)phases * cin * (g.OutH + mh - 1 + 2 * eh) * (g.OutW + mw - 1 + 2 * ew)), 1, g.Batch);
        int outH = g.OutH, outW = g.OutW;
        Conv2dGeometry PhaseConv(int images) => new(images, cout, outH, outW, phases * cin, mh, mw, 1, 1, mh - 1 + eh, mw - 1 + ew);
        var t = PhaseConv(chunk);
        int oh2 = t.OutH, ow2 = t.OutW;
        long phasePlane = (long)oh2 * ow2;
        if ((long)phases * cin * phasePlane > int.MaxValue) return false;   // the shuffle's column offsets are ints

        // w2[(rh*sw + rw)*cin + c, o, jh, jw] = w[o, c, rh + sh*(mh-1-jh), rw + sw*(mw-1-jw)]
        var wBuf = ScratchPool.Rent((long)phases * cin * cout * mh * mw);
        float* w2 = ScratchPool.Ptr(wBuf);
        for (int rh = 0; rh < sh; rh++)
            for (int rw = 0; rw < sw; rw++)
                for (int c = 0; c < cin; c++)
                    for (int o = 0; o < cout; o++)
                    {
                        float* dst = w2 + ((((long)(rh * sw + rw) * cin + c) * cout + o) * mh) * mw;
                        float* src = pw + ((long)o * cin + c) * kh * kw;
                        for (int jh = 0; jh < mh; jh++)
                            for (int jw = 0; jw < mw; jw++)
                                dst[jh * mw + jw] = src[(rh + sh * (mh - 1 - jh)) * kw + rw + sw * (mw - 1 - jw)];
                    }

        var oBuf = ScratchPool.Rent((long)chunk * phases * cin * phasePlane);
        float* outs = ScratchPool.Ptr(oBuf);
        long dyImage = (long)cout * g.OutPixels, dxImage = (long)cin * g.InPixels;
        for (int n0 = 0; n0 < g.Batch; n0 += chunk)
        {
            int nb = Math.Min(chunk, g.Batch - n0);
            ForwardCore(pdy + n0 * dyImage, w2, null, outs, PhaseConv(nb));
            // Shuffle: dx[b, c, ih, iw] = outs[b, (rh*sw + rw)*cin + c, (ih + pad) / s + e, ...], one (image, channel)
            // plane at a time, through a per-column table of source offsets (column residue and position).
            var geo = g;
            CpuThreads.For(nb * cin, Math.Max(1, ParallelCopyElements / Math.Max(1, geo.InPixels)), (s0, s1) =>
            {
                Span<int> colOff = geo.Width <= 1024 ? stackalloc int[geo.Width] : new int[geo.Width];
                for (int iw = 0; iw < geo.Width; iw++)
                    colOff[iw] = (int)(((iw + geo.PadW) % sw) * cin * phasePlane) + (iw + geo.PadW) / sw + ew;
                for (int bc = s0; bc < s1; bc++)
                {
                    int b = bc / cin, c = bc % cin;
                    float* dst = pdx + (n0 + b) * dxImage + (long)c * geo.InPixels;
                    float* src = outs + (long)b * phases * cin * phasePlane + (long)c * phasePlane;
                    for (int ih = 0; ih < geo.Height; ih++)
                    {
                        int rh = (ih + geo.PadH) % sh, u = (ih + geo.PadH) / sh + eh;
                        float* srow = src + (long)rh * sw * cin * phasePlane + (long)u * ow2;
                        float* drow = dst + (long)ih * geo.Width;
                        for (int iw = 0; iw < geo.Width; iw++) drow[iw] = srow[colOff[iw]];
                    }
                }
            });
        }
        ScratchPool.Return(oBuf);
        ScratchPool.Return(wBuf);
        return true;
    }

    /// <inheritdoc/>
    public void Conv2dBackwardWeight(Buf x, Buf dy, Buf dw, in Conv2dGeometry g)
    {
        var geo = g;
        var plan = new ConvPlan(geo);
        var uf = ConvUnfold.For(geo);
        float* px = P(x), pdy = P(dy), pdw = P(dw);
        int og = geo.GroupOutChannels, kk = geo.ColRows, np = geo.OutPixels;
        int wLen = geo.OutChannels * kk, groups = geo.Groups, blocks = plan.Blocks, threads = plan.Threads;
        if (geo.Batch == 0 || np == 0) { new Span<float>(pdw, wLen).Clear(); return; }
        if (DirectConv.Applies(geo)) { DirectConv.BackwardWeight(px, pdy, pdw, geo); return; }

        // Accumulates blocks [b0, b1) of groups [g0, g1) into target (overwriting it at the first block).
        var pad = UseImplicit(plan) ? ConvPadLayout.For(geo) : null;
        int cg = geo.GroupInChannels;
        long inImage = (long)geo.InChannels * geo.InPixels;
        void Accumulate(int b0, int b1, int g0, int g1, float* target, ConvScratch sc)
        {
            for (int bi = b0; bi < b1; bi++)
                for (int gi = g0; gi < g1; gi++)
                {
                    int n0 = bi * plan.Block, nb = Math.Min(plan.Block, geo.Batch - n0), cols = nb * np;
                    float* dm = BlockGradOut(pdy, geo, n0, nb, gi, sc.Buf, out int ldd);
                    float beta = bi == b0 ? 0f : 1f;
                    float* tg = target + (long)gi * og * kk;
                    if (pad != null)
                    {
                        sc.FillPad(pad, px + n0 * inImage + (long)gi * cg * geo.InPixels, inImage, nb);
                        Sgemm.RunPackedB(false, og, kk, cols, 1f, dm, ldd, new ConvColumnsTPacker(pad, sc.Pad), beta, tg, kk, CpuThreads.Count);
                        continue;
                    }
                    float* bm = BlockColumns(px, geo, plan, uf, n0, nb, gi, sc, out int ldb);
                    Sgemm.Run(false, true, og, kk, cols, 1f, dm, ldd, bm, ldb, beta, tg, kk);
                }
        }

        if (threads > 1 && blocks >= threads)
        {
            var partials = new float[threads][];
            CpuThreads.ForEach(threads, c =>
            {
                var sc = new ConvScratch(plan, uf, pad);
                float* target = pdw;
                if (c > 0) { partials[c] = ScratchPool.Rent(wLen); target = ScratchPool.Ptr(partials[c]); }
                Accumulate((int)((long)c * blocks / threads), (int)((long)(c + 1) * blocks / threads), 0, groups, target, sc);
                sc.Release();
            });
            var sum = new Span<float>(pdw, wLen);
            for (int c = 1; c < threads; c++)
            {
                TensorPrimitives.Add(sum, partials[c].AsSpan(0, wLen), sum);
                ScratchPool.Return(partials[c]);
            }
            return;
        }
        if (threads > 1 && groups >= threads)
        {
            // Few images but many groups (depthwise): groups own disjoint slices of dw.
            CpuThreads.ForEach(threads, c =>
            {
                var sc = new ConvScratch(plan, uf, pad);
                Accumulate(0, blocks, (int)((long)c * groups / threads), (int)((long)(c + 1) * groups / threads), pdw, sc);
                sc.Release();
            });
            return;
        }
        var one = new ConvScratch(plan, uf, pad);
        Accumulate(0, blocks, 0, groups, pdw, one);
        one.Release();
    }

    /// <inheritdoc/>
    public void Im2Col(Buf image, Buf col, in Conv2dGeometry g)
    {
        var geo = g;
        float* pi = P(image), pc = P(col);
        var uf = ConvUnfold.For(geo);
        long per = (long)geo.KernelH * geo.KernelW * geo.OutPixels;
        CpuThreads.For(geo.GroupInChannels, (int)Math.Max(1, ParallelCopyElements / Math.Max(1, per)), (s, e) =>
        {
            var plane = ScratchPool.Rent(uf.PlaneLen);
            uf.Im2Col(pi, pc, geo.OutPixels, s, e, ScratchPool.Ptr(plane));
            ScratchPool.Return(plane);
        });
    }

    /// <inheritdoc/>
    public void Col2Im(Buf col, Buf image, in Conv2dGeometry g)
    {
        var geo = g;
        float* pi = P(image), pc = P(col);
        var uf = ConvUnfold.For(geo);
        long per = (long)geo.KernelH * geo.KernelW * geo.OutPixels;
        CpuThreads.For(geo.GroupInChannels, (int)Math.Max(1, ParallelCopyElements / Math.Max(1, per)), (s, e) =>
            uf.Col2Im(pc, geo.OutPixels, pi, s, e));
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

    /// <summary>
    /// Im2col of channels [c0, c1) of one group's image by row runs: the rows of the column matrix for those channels,
    /// each OutH*OutW long and <paramref name="ld"/> floats apart (wider than a row when images sit side by side).
    /// </summary>
    private static void Im2ColRows(float* x, float* col, long ld, in Conv2dGeometry g, int c0, int c1)
    {
        int kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, h = g.Height, w = g.Width, sw = g.StrideW;
        for (int c = c0; c < c1; c++)
        {
            float* src = x + (long)c * h * w;
            for (int i = 0; i < kh; i++)
            {
                int ih0 = i * g.DilationH - g.PadH;
                for (int j = 0; j < kw; j++)
                {
                    var (lo, hi, iw0) = ColumnRange(g, j);
                    float* dst = col + ((long)(c * kh + i) * kw + j) * ld;
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

    /// <summary>Col2im (accumulating) by row runs of channels [c0, c1) of one group's image; column-matrix rows are <paramref name="ld"/> apart.</summary>
    private static void Col2ImRows(float* col, long ld, float* x, in Conv2dGeometry g, int c0, int c1)
    {
        int kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, h = g.Height, w = g.Width, sw = g.StrideW;
        for (int c = c0; c < c1; c++)
        {
            float* dstImg = x + (long)c * h * w;
            for (int i = 0; i < kh; i++)
            {
                int ih0 = i * g.DilationH - g.PadH;
                for (int j = 0; j < kw; j++)
                {
                    var (lo, hi, iw0) = ColumnRange(g, j);
                    float* src = col + ((long)(c * kh + i) * kw + j) * ld;
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

    /// <summary>
    /// Σ p[0..n) in float, inline: a convolution's bias gradient sums one short row (7×7 to 28×28 pixels) per image and
    /// channel, where a library call's fixed cost was most of the work.
    /// </summary>
    private static float RowSum(float* p, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            var acc = Vector512.Load(p);
            for (i = 16; i <= n - 16; i += 16) acc += Vector512.Load(p + i);
            if (i < n)
            {
                // The last partial vector through a mask (the row may end the tensor).
                var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n - i)).AsSingle();
                acc += Avx512F.MaskLoad(p + i, m, Vector512<float>.Zero);
            }
            return Vector512.Sum(acc);
        }
        float sum = 0f;
        for (; i < n; i++) sum += p[i];
        return sum;
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
                for (int o = 0; o < outer; o++) acc += RowSum(pdy + ((long)o * channels + c) * inner, inner);
                pdb[c] = (float)acc;
            }
        });
    }
}
