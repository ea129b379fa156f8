using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// Direct convolution for narrow layers (at most 64 output channels, the networks certified training uses): output
/// channels across the AVX-512 lanes, image values broadcast straight from a zero-padded copy of each image. The
/// im2col + GEMM path has to pack a [Cin·k·k, pixels] panel for every image, and with 16–32 output channels each packed
/// float feeds only one or two vector FMAs, so packing cost as much as the multiply-adds; here nothing is packed.
/// <para>
/// The padded copy is laid out Wv·s floats wide, Wv = ceil((W + 2·pad) / s), with its rows grouped by their residue
/// mod s (padded row r stored at (r mod s)·Hu + r / s), so that output pixel (oh, ow) reads the image at flat index
/// (oh·Wv + ow)·s + offset(tap): every output row is Wv "flat" pixels, of which the last Wv − OutW are padding whose
/// results are dropped (their dy is zero in the weight gradient). A tile is then 14 consecutive flat pixels, each
/// tap one offset from a table and each pixel a constant displacement s apart.
/// </para>
/// Work is split by images (one contiguous chunk per thread, each with its own scratch); results do not depend on
/// the thread count except the weight gradient, whose per-thread partial sums are added in a fixed order.
/// </summary>
internal static unsafe class DirectConv
{
    /// <summary>Most output channels (forward) or weight-gradient output channels taken on this path.</summary>
    internal const int MaxChannels = 64;

    // Per-image scratch above this many floats (the padded image plus the flat output) goes to the GEMM path.
    private const long MaxImageScratch = 1 << 20;

    /// <summary>Settable so tests can compare this path with the GEMM path on the same machine.</summary>
    internal static bool Enabled = true;

    /// <summary>Whether the CPU has the AVX-512 FMA these kernels are written in.</summary>
    internal static bool Supported => Avx512F.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>Whether a geometry is taken by this path: ungrouped, equal strides 1 or 2, at most 64 output channels.</summary>
    internal static bool Applies(in Conv2dGeometry g)
    {
        if (!Enabled || !Supported || g.Groups != 1 || g.StrideH != g.StrideW || g.StrideH is not (1 or 2)) return false;
        if (g.OutChannels > MaxChannels || g.OutChannels < 1 || g.InChannels < 1 || g.Batch < 1 || g.OutH < 1 || g.OutW < 1) return false;
        if (g.KernelH * g.KernelW == 1 && g.StrideH == 1 && g.PadH == 0 && g.PadW == 0) return false;   // 1x1: the GEMM reads the image as is
        var l = Layout.For(g);
        return l.ImageLen + (long)l.FlatRows * Pad(g.OutChannels) <= MaxImageScratch;
    }

    /// <summary>Output channels rounded up to whole 16-lane vectors.</summary>
    private static int Pad(int channels) => (channels + 15) & ~15;

    /// <summary>
    /// The padded-image layout and tap offsets of a geometry (batch and output channels do not matter), cached: a
    /// training loop runs the same few convolutions over and over.
    /// </summary>
    private sealed class Layout
    {
        private static readonly ConcurrentDictionary<Conv2dGeometry, Layout> Cache = new();

        public static Layout For(in Conv2dGeometry g)
        {
            var key = new Conv2dGeometry(1, g.InChannels, g.Height, g.Width, 1, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW, 1);
            if (Cache.TryGetValue(key, out var l)) return l;
            if (Cache.Count >= 64) Cache.Clear();
            return Cache.GetOrAdd(key, k => new Layout(k));
        }

        /// <summary>Stride; flat pixels per output row; padded row length (Wv·s); rows per residue class; one channel plane.</summary>
        public readonly int S, Wv, Wq, Hu, Plane;
        /// <summary>Flat output pixels (OutH·Wv), that rounded up to whole tiles, and to whole 16-pixel transposes.</summary>
        public readonly int Flat, FlatRows, FlatT;
        /// <summary>Taps (Cin·k·k) and that rounded up to whole weight-gradient tiles.</summary>
        public readonly int Taps, TapsPadded;
        /// <summary>Floats of one padded image, with the slack the last tile reads past it (zero).</summary>
        public readonly long ImageLen;
        /// <summary>Offset of each tap (ci, kh, kw) in the padded image; TapsPadded entries, the extra ones 0.</summary>
        public readonly int* Offsets;
        private readonly int[] _offsets, _rowStartArray;
        private readonly int* _rowStarts;

        private Layout(in Conv2dGeometry g)
        {
            S = g.StrideH;
            Wv = (g.Width + 2 * g.PadW + S - 1) / S;
            Wq = Wv * S;
            Hu = (g.Height + 2 * g.PadH + S - 1) / S;
            Plane = S * Hu * Wq;
            Flat = g.OutH * Wv;
            FlatRows = (Flat + DirectConvTiles.Rows - 1) / DirectConvTiles.Rows * DirectConvTiles.Rows;
            FlatT = (FlatRows + 15) & ~15;
            Taps = g.InChannels * g.KernelH * g.KernelW;
            TapsPadded = (Taps + DirectConvTiles.Taps - 1) / DirectConvTiles.Taps * DirectConvTiles.Taps;
            _offsets = GC.AllocateArray<int>(TapsPadded, pinned: true);
            Offsets = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _offsets[0]);
            int k = 0;
            for (int c = 0; c < g.InChannels; c++)
                for (int i = 0; i < g.KernelH; i++)
                    for (int j = 0; j < g.KernelW; j++)
                        _offsets[k++] = c * Plane + Row(i * g.DilationH) * Wq + j * g.DilationW;
            // Where each image row starts in a channel plane (an integer division per row would cost more than its copy).
            _rowStartArray = GC.AllocateArray<int>(Math.Max(1, g.Height), pinned: true);
            _rowStarts = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _rowStartArray[0]);
            for (int i = 0; i < g.Height; i++) _rowStartArray[i] = Row(i + g.PadH) * Wq + g.PadW;
            long reach = (long)(FlatRows - 1) * S + _offsets[Taps - 1] + 1;
            ImageLen = Math.Max((long)g.InChannels * Plane, reach);
            ImageLen = (ImageLen + 15) & ~15L;
        }

        /// <summary>Where padded row r is stored: rows of one residue mod s together, in order.</summary>
        private int Row(int r) => r % S * Hu + r / S;

        /// <summary>Copies image x [Cin, H, W] into the interior of a padded image whose border is already zero.</summary>
        public void Fill(float* x, float* pad, in Conv2dGeometry g)
        {
            int* rows = _rowStarts;
            int w = g.Width, h = g.Height;
            for (int c = 0; c < g.InChannels; c++)
            {
                float* src = x + (long)c * h * w;
                float* dst = pad + (long)c * Plane;
                for (int i = 0; i < h; i++) CopyRow(src + i * w, dst + rows[i], w);
            }
        }
    }

    /// <summary>
    /// dst[i] = src[i] + bias for i &lt; n, without touching the floats after them: rows here are short (7–28 floats) and
    /// there are hundreds per image, so a masked vector per row beats a library call per row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRow(float* src, float* dst, int n, float bias = 0f)
    {
        var b = Vector512.Create(bias);
        int i = 0;
        for (; i <= n - 16; i += 16) Vector512.Store(Vector512.Load(src + i) + b, dst + i);
        if (i < n)
        {
            var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n - i)).AsSingle();
            Avx512F.MaskStore(dst + i, m, Avx512F.MaskLoad(src + i, m, Vector512<float>.Zero) + b);
        }
    }

    /// <summary>Runs body(first image, end image) over one contiguous chunk of images per thread.</summary>
    private static void ForImageChunks(int batch, Action<int, int, int> body)
    {
        int threads = CpuThreads.InParallelRegion ? 1 : Math.Min(CpuThreads.Count, batch);
        if (threads <= 1) { body(0, 0, batch); return; }
        CpuThreads.ForEach(threads, c => body(c, (int)((long)c * batch / threads), (int)((long)(c + 1) * batch / threads)));
    }

    /// <summary>
    /// Packs weight rows as TW-wide panels (32 channels, the last one 16 or 32), each [taps, TW], zero past
    /// <paramref name="channels"/>: panel element [k, c] = weight(k, c0 + c).
    /// </summary>
    private static void PackPanels(float* dst, int taps, int channels, Func<int, int, float> weight)
    {
        int cp = Pad(channels);
        for (int c0 = 0; c0 < cp; c0 += 32)
        {
            int tw = Math.Min(32, cp - c0);
            float* panel = dst + (long)c0 * taps;
            for (int k = 0; k < taps; k++)
                for (int c = 0; c < tw; c++)
                    panel[k * tw + c] = c0 + c < channels ? weight(k, c0 + c) : 0f;
        }
    }

    /// <summary>
    /// flat[q, c] = Σ_k pad[q·s + offsets[k]] · panels[k, c] for q &lt; flatRows (a multiple of the tile rows) and c &lt; cp,
    /// then transposed into chan [cp, flatT].
    /// </summary>
    private static void Tiles(int taps, float* pad, int* offsets, int s, float* panels, int cp, int flatRows, int flatT, float* flat, float* chan)
    {
        for (int c0 = 0; c0 < cp; c0 += 32)
        {
            bool wide = cp - c0 >= 32;
            float* panel = panels + (long)c0 * taps;
            for (int q0 = 0; q0 < flatRows; q0 += DirectConvTiles.Rows)
            {
                float* src = pad + (long)q0 * s;
                float* o = flat + (long)q0 * cp + c0;
                if (wide)
                {
                    if (s == 1) DirectConvTiles.Forward<G32, G1>(taps, src, offsets, panel, 32, o, cp);
                    else DirectConvTiles.Forward<G32, G2>(taps, src, offsets, panel, 32, o, cp);
                }
                else
                {
                    if (s == 1) DirectConvTiles.Forward<G16, G1>(taps, src, offsets, panel, 16, o, cp);
                    else DirectConvTiles.Forward<G16, G2>(taps, src, offsets, panel, 16, o, cp);
                }
            }
        }
        for (int q0 = 0; q0 < flatRows; q0 += 16)
            for (int c0 = 0; c0 < cp; c0 += 16)
                GemmPack.Transpose16Store(flat + (long)q0 * cp + c0, cp, Math.Min(16, flatRows - q0), chan + (long)c0 * flatT + q0, flatT);
    }

    /// <summary>y = conv(x, w) + bias (bias may be null); x [N, Cin, H, W], w [Cout, Cin, kh, kw], y [N, Cout, OutH, OutW].</summary>
    public static void Forward(float* px, float* pw, float* pb, float* py, in Conv2dGeometry g)
    {
        var geo = g;
        var l = Layout.For(geo);
        int cout = geo.OutChannels, cp = Pad(cout), taps = l.Taps, np = geo.OutPixels;
        var wBuf = ScratchPool.Rent((long)taps * cp);
        float* wt = ScratchPool.Ptr(wBuf);
        PackPanels(wt, taps, cout, (k, c) => pw[(long)c * taps + k]);
        long inImage = (long)geo.InChannels * geo.InPixels, outImage = (long)cout * np;
        ForImageChunks(geo.Batch, (_, n0, n1) =>
        {
            var padBuf = ScratchPool.Rent(l.ImageLen);
            var outBuf = ScratchPool.Rent((long)l.FlatT * cp);
            var tBuf = ScratchPool.Rent((long)cp * l.FlatT);
            float* pad = ScratchPool.Ptr(padBuf), flat = ScratchPool.Ptr(outBuf), chan = ScratchPool.Ptr(tBuf);
            new Span<float>(pad, (int)l.ImageLen).Clear();
            for (int n = n0; n < n1; n++)
            {
                l.Fill(px + n * inImage, pad, geo);
                Tiles(taps, pad, l.Offsets, l.S, wt, cp, l.FlatRows, l.FlatT, flat, chan);
                // Each output row's valid run into y, bias added.
                float* y = py + n * outImage;
                for (int co = 0; co < cout; co++)
                {
                    float* dst = y + (long)co * np, src = chan + (long)co * l.FlatT;
                    float bias = pb == null ? 0f : pb[co];
                    for (int oh = 0; oh < geo.OutH; oh++)
                    {
                        CopyRow(src + (long)oh * l.Wv, dst + oh * geo.OutW, geo.OutW, bias);
                    }
                }
            }
            ScratchPool.Return(tBuf);
            ScratchPool.Return(outBuf);
            ScratchPool.Return(padBuf);
        });
        ScratchPool.Return(wBuf);
    }

    /// <summary>
    /// Whether the input gradient of a geometry is taken by this path: ungrouped, undilated, equal strides 1 or 2,
    /// 8 to 64 input channels (they take the lanes; fewer would leave most of them idle).
    /// </summary>
    internal static bool AppliesBackwardInput(in Conv2dGeometry g)
    {
        if (!Enabled || !Supported || g.Groups != 1 || g.StrideH != g.StrideW || g.StrideH is not (1 or 2)) return false;
        if (g.DilationH != 1 || g.DilationW != 1 || g.InChannels is < 8 or > MaxChannels) return false;
        if (g.OutChannels < 1 || g.Batch < 1 || g.OutH < 1 || g.OutW < 1 || g.Height < 1 || g.Width < 1) return false;
        var l = BackLayout.For(g);
        return l.ImageLen + 2L * l.MaxFlatT * Pad(g.InChannels) <= MaxImageScratch;
    }

    /// <summary>
    /// The input gradient as s·s stride-1 convolutions of dy, one per residue (rh, rw) of the input pixel mod s:
    /// dx[ci, s·u + rh − pad, s·v + rw − pad] = Σ_{co, jh, jw} w[co, ci, rh + s·jh, rw + s·jw] · dy[co, u − jh, v − jw],
    /// over a copy of dy padded by ceil(k / s) − 1 (zero outside it). Each residue computes only the input pixels it
    /// owns, with the flat layout of <see cref="Layout"/> (Wd flat pixels per row of u).
    /// </summary>
    private sealed class BackLayout
    {
        private static readonly ConcurrentDictionary<Conv2dGeometry, BackLayout> Cache = new();

        public static BackLayout For(in Conv2dGeometry g)
        {
            var key = new Conv2dGeometry(1, g.InChannels, g.Height, g.Width, g.OutChannels, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, 1, 1, 1);
            if (Cache.TryGetValue(key, out var l)) return l;
            if (Cache.Count >= 64) Cache.Clear();
            return Cache.GetOrAdd(key, k => new BackLayout(k));
        }

        /// <summary>One residue class of input pixels: its u and v ranges, taps (co, jh, jw) and their offsets in padded dy.</summary>
        public sealed class Phase
        {
            public int Rh, Rw, U0, U1, V0, V1, Mh, Mw, Taps, Flat, FlatRows, FlatT;
            public int[] OffsetArray = [];
            public int* Offsets;
        }

        public readonly int S, Ph, Pw, Hd, Wd, PlaneD, MaxFlatT;
        public readonly long ImageLen;
        public readonly Phase[] Phases;

        private BackLayout(in Conv2dGeometry g)
        {
            S = g.StrideH;
            int s = S;
            Ph = (g.KernelH + s - 1) / s - 1;
            Pw = (g.KernelW + s - 1) / s - 1;
            var phases = new List<Phase>();
            int uMax = 0, vMax = 0;
            for (int rh = 0; rh < s; rh++)
                for (int rw = 0; rw < s; rw++)
                {
                    var ph = new Phase { Rh = rh, Rw = rw };
                    (ph.U0, ph.U1) = Range(rh, g.PadH, g.Height);
                    (ph.V0, ph.V1) = Range(rw, g.PadW, g.Width);
                    ph.Mh = Math.Max(0, (g.KernelH - rh + s - 1) / s);
                    ph.Mw = Math.Max(0, (g.KernelW - rw + s - 1) / s);
                    ph.Taps = g.OutChannels * ph.Mh * ph.Mw;
                    uMax = Math.Max(uMax, ph.U1);
                    vMax = Math.Max(vMax, ph.V1);
                    phases.Add(ph);
                }
            Hd = Math.Max(g.OutH, uMax) + Ph;
            Wd = Math.Max(g.OutW, vMax) + Pw;
            PlaneD = Hd * Wd;
            long reach = (long)g.OutChannels * PlaneD;
            foreach (var ph in phases)
            {
                ph.Flat = Math.Max(0, ph.U1 - ph.U0) * Wd;
                ph.FlatRows = (ph.Flat + DirectConvTiles.Rows - 1) / DirectConvTiles.Rows * DirectConvTiles.Rows;
                ph.FlatT = (ph.FlatRows + 15) & ~15;
                MaxFlatT = Math.Max(MaxFlatT, ph.FlatT);
                ph.OffsetArray = GC.AllocateArray<int>(Math.Max(1, ph.Taps), pinned: true);
                ph.Offsets = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref ph.OffsetArray[0]);
                int k = 0;
                for (int co = 0; co < g.OutChannels; co++)
                    for (int jh = 0; jh < ph.Mh; jh++)
                        for (int jw = 0; jw < ph.Mw; jw++)
                            ph.OffsetArray[k++] = co * PlaneD + (ph.U0 - jh + Ph) * Wd + (ph.V0 - jw + Pw);
                if (ph.Taps > 0 && ph.FlatRows > 0) reach = Math.Max(reach, (long)ph.FlatRows - 1 + ph.OffsetArray.Max() + 1);
            }
            Phases = [.. phases];
            ImageLen = (reach + 15) & ~15L;
        }

        // Residue r's outputs u: the input pixels s·u + r − pad inside [0, size).
        private (int, int) Range(int r, int pad, int size)
        {
            int lo = pad - r <= 0 ? 0 : (pad - r + S - 1) / S;
            int hi = size - 1 + pad - r < 0 ? lo : (size - 1 + pad - r) / S + 1;
            return (lo, Math.Max(lo, hi));
        }

        /// <summary>Copies dy [Cout, OutH, OutW] into the interior of a padded copy whose border is already zero.</summary>
        public void Fill(float* dy, float* pad, in Conv2dGeometry g)
        {
            for (int c = 0; c < g.OutChannels; c++)
            {
                float* src = dy + (long)c * g.OutPixels;
                float* dst = pad + (long)c * PlaneD + (long)Ph * Wd + Pw;
                for (int h = 0; h < g.OutH; h++) CopyRow(src + h * g.OutW, dst + (long)h * Wd, g.OutW);
            }
        }
    }

    /// <summary>dx = the input gradient of conv(x, w) for output gradient dy (overwritten).</summary>
    public static void BackwardInput(float* pdy, float* pw, float* pdx, in Conv2dGeometry g)
    {
        var geo = g;
        var l = BackLayout.For(geo);
        int cin = geo.InChannels, cp = Pad(cin), s = l.S, kh = geo.KernelH, kw = geo.KernelW, cout = geo.OutChannels;
        // Per residue: panels [taps (co, jh, jw), Cin] of w[co, ci, rh + s·jh, rw + s·jw].
        var starts = new long[l.Phases.Length + 1];
        for (int i = 0; i < l.Phases.Length; i++) starts[i + 1] = starts[i] + (long)l.Phases[i].Taps * cp;
        var wBuf = ScratchPool.Rent(starts[^1]);
        float* wt = ScratchPool.Ptr(wBuf);
        for (int i = 0; i < l.Phases.Length; i++)
        {
            var ph = l.Phases[i];
            int mh = ph.Mh, mw = ph.Mw, rh = ph.Rh, rw = ph.Rw;
            PackPanels(wt + starts[i], ph.Taps, cin, (k, ci) =>
            {
                int co = k / (mh * mw), jh = k / mw % mh, jw = k % mw;
                return pw[(((long)co * cin + ci) * kh + rh + s * jh) * kw + rw + s * jw];
            });
        }
        long inImage = (long)cin * geo.InPixels, outImage = (long)cout * geo.OutPixels;
        ForImageChunks(geo.Batch, (_, n0, n1) =>
        {
            var padBuf = ScratchPool.Rent(l.ImageLen);
            var outBuf = ScratchPool.Rent((long)l.MaxFlatT * cp);
            var tBuf = ScratchPool.Rent((long)cp * l.MaxFlatT);
            float* pad = ScratchPool.Ptr(padBuf), flat = ScratchPool.Ptr(outBuf), chan = ScratchPool.Ptr(tBuf);
            new Span<float>(pad, (int)l.ImageLen).Clear();
            for (int n = n0; n < n1; n++)
            {
                l.Fill(pdy + n * outImage, pad, geo);
                float* dx = pdx + n * inImage;
                for (int i = 0; i < l.Phases.Length; i++)
                {
                    var ph = l.Phases[i];
                    if (ph.Flat == 0) continue;
                    if (ph.Taps == 0)
                    {
                        // No kernel tap lands on this residue (kernel smaller than the stride): its pixels get no gradient.
                        for (int ci = 0; ci < cin; ci++)
                            for (int u = ph.U0; u < ph.U1; u++)
                                for (int v = ph.V0; v < ph.V1; v++)
                                    dx[(long)ci * geo.InPixels + (s * u + ph.Rh - geo.PadH) * geo.Width + s * v + ph.Rw - geo.PadW] = 0f;
                        continue;
                    }
                    Tiles(ph.Taps, pad, ph.Offsets, 1, wt + starts[i], cp, ph.FlatRows, ph.FlatT, flat, chan);
                    int nv = ph.V1 - ph.V0;
                    for (int ci = 0; ci < cin; ci++)
                    {
                        float* src = chan + (long)ci * ph.FlatT;
                        for (int u = ph.U0; u < ph.U1; u++)
                        {
                            float* row = src + (long)(u - ph.U0) * l.Wd;
                            float* d = dx + (long)ci * geo.InPixels + (long)(s * u + ph.Rh - geo.PadH) * geo.Width + s * ph.V0 + ph.Rw - geo.PadW;
                            if (s == 1) CopyRow(row, d, nv);
                            else for (int v = 0; v < nv; v++) d[v * 2] = row[v];
                        }
                    }
                }
            }
            ScratchPool.Return(tBuf);
            ScratchPool.Return(outBuf);
            ScratchPool.Return(padBuf);
        });
        ScratchPool.Return(wBuf);
    }

    /// <summary>dw = Σ_images dy ⋆ x (the weight gradient, overwritten); x [N, Cin, H, W], dy [N, Cout, OutH, OutW].</summary>
    public static void BackwardWeight(float* px, float* pdy, float* pdw, in Conv2dGeometry g)
    {
        var geo = g;
        var l = Layout.For(geo);
        int cout = geo.OutChannels, cp = Pad(cout), taps = l.Taps, np = geo.OutPixels;
        int threads = CpuThreads.InParallelRegion ? 1 : Math.Min(CpuThreads.Count, geo.Batch);
        long accLen = (long)l.TapsPadded * cp;
        var partials = new float[threads][];
        long inImage = (long)geo.InChannels * geo.InPixels, outImage = (long)cout * np;
        ForImageChunks(geo.Batch, (c, n0, n1) =>
        {
            var padBuf = ScratchPool.Rent(l.ImageLen);
            var dyBuf = ScratchPool.Rent((long)(l.FlatT + 16) * cp);
            var chanBuf = ScratchPool.Rent((long)cout * l.FlatT);
            partials[c] = ScratchPool.Rent(accLen);
            float* pad = ScratchPool.Ptr(padBuf), dyt = ScratchPool.Ptr(dyBuf), chan = ScratchPool.Ptr(chanBuf), acc = ScratchPool.Ptr(partials[c]);
            new Span<float>(pad, (int)l.ImageLen).Clear();
            new Span<float>(chan, cout * l.FlatT).Clear();
            new Span<float>(acc, (int)accLen).Clear();
            for (int n = n0; n < n1; n++)
            {
                l.Fill(px + n * inImage, pad, geo);
                // dy [Cout, OutH, OutW] as [Cout, flat pixels] (padding columns stay zero), then by 16x16 transposes as
                // [flat pixels, Cp] (channels past Cout zero).
                float* dy = pdy + n * outImage;
                for (int co = 0; co < cout; co++)
                    for (int oh = 0; oh < geo.OutH; oh++)
                        CopyRow(dy + (long)co * np + oh * geo.OutW, chan + (long)co * l.FlatT + oh * l.Wv, geo.OutW);
                for (int c0 = 0; c0 < cp; c0 += 16)
                    for (int q0 = 0; q0 < l.Flat; q0 += 16)
                        GemmPack.Transpose16Store(chan + (long)c0 * l.FlatT + q0, l.FlatT, Math.Clamp(cout - c0, 0, 16), dyt + (long)q0 * cp + c0, cp);
                for (int c0 = 0; c0 < cp; c0 += 32)
                {
                    bool wide = cp - c0 >= 32;
                    for (int k0 = 0; k0 < l.TapsPadded; k0 += DirectConvTiles.Taps)
                    {
                        float* a = acc + (long)k0 * cp + c0;
                        if (wide)
                        {
                            if (l.S == 1) DirectConvTiles.Weight<G32, G1>(l.Flat, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                            else DirectConvTiles.Weight<G32, G2>(l.Flat, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                        }
                        else
                        {
                            if (l.S == 1) DirectConvTiles.Weight<G16, G1>(l.Flat, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                            else DirectConvTiles.Weight<G16, G2>(l.Flat, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                        }
                    }
                }
            }
            ScratchPool.Return(chanBuf);
            ScratchPool.Return(dyBuf);
            ScratchPool.Return(padBuf);
        });
        // dw[co, k] = Σ_threads acc_t[k, co], threads in order.
        for (int co = 0; co < cout; co++)
            for (int k = 0; k < taps; k++)
            {
                float sum = 0f;
                for (int t = 0; t < threads; t++) sum += ScratchPool.Ptr(partials[t])[(long)k * cp + co];
                pdw[(long)co * taps + k] = sum;
            }
        foreach (var p in partials) ScratchPool.Return(p);
    }
}
