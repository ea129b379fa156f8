using System.Collections.Concurrent;
using System.Numerics.Tensors;
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
        private readonly int[] _offsets;

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
            long reach = (long)(FlatRows - 1) * S + _offsets[Taps - 1] + 1;
            ImageLen = Math.Max((long)g.InChannels * Plane, reach);
            ImageLen = (ImageLen + 15) & ~15L;
        }

        /// <summary>Where padded row r is stored: rows of one residue mod s together, in order.</summary>
        private int Row(int r) => r % S * Hu + r / S;

        /// <summary>Copies image x [Cin, H, W] into the interior of a padded image whose border is already zero.</summary>
        public void Fill(float* x, float* pad, in Conv2dGeometry g)
        {
            for (int c = 0; c < g.InChannels; c++)
            {
                float* src = x + (long)c * g.Height * g.Width;
                float* dst = pad + (long)c * Plane + g.PadW;
                for (int h = 0; h < g.Height; h++) CopyRow(src + h * g.Width, dst + (long)Row(h + g.PadH) * Wq, g.Width);
            }
        }
    }

    /// <summary>Copies n floats without touching the floats after them (rows are short: a library call per row costs more).</summary>
    private static void CopyRow(float* src, float* dst, int n)
    {
        int i = 0;
        for (; i <= n - 16; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
        if (i <= n - 8) { Vector256.Store(Vector256.Load(src + i), dst + i); i += 8; }
        if (i <= n - 4) { Vector128.Store(Vector128.Load(src + i), dst + i); i += 4; }
        for (; i < n; i++) dst[i] = src[i];
    }

    /// <summary>Runs body(first image, end image) over one contiguous chunk of images per thread.</summary>
    private static void ForImageChunks(int batch, Action<int, int, int> body)
    {
        int threads = CpuThreads.InParallelRegion ? 1 : Math.Min(CpuThreads.Count, batch);
        if (threads <= 1) { body(0, 0, batch); return; }
        CpuThreads.ForEach(threads, c => body(c, (int)((long)c * batch / threads), (int)((long)(c + 1) * batch / threads)));
    }

    /// <summary>y = conv(x, w) + bias (bias may be null); x [N, Cin, H, W], w [Cout, Cin, kh, kw], y [N, Cout, OutH, OutW].</summary>
    public static void Forward(float* px, float* pw, float* pb, float* py, in Conv2dGeometry g)
    {
        var geo = g;
        var l = Layout.For(geo);
        int cout = geo.OutChannels, cp = Pad(cout), taps = l.Taps, np = geo.OutPixels;
        // Weights as TW-wide panels (32 channels, the last one 16 or 32), each [taps, TW], zero past Cout.
        var wBuf = ScratchPool.Rent((long)taps * cp);
        float* wt = ScratchPool.Ptr(wBuf);
        for (int c0 = 0; c0 < cp; c0 += 32)
        {
            int tw = Math.Min(32, cp - c0);
            float* panel = wt + (long)c0 * taps;
            for (int k = 0; k < taps; k++)
                for (int c = 0; c < tw; c++)
                    panel[k * tw + c] = c0 + c < cout ? pw[(long)(c0 + c) * taps + k] : 0f;
        }
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
                for (int c0 = 0; c0 < cp; c0 += 32)
                {
                    bool wide = cp - c0 >= 32;
                    float* panel = wt + (long)c0 * taps;
                    for (int q0 = 0; q0 < l.FlatRows; q0 += DirectConvTiles.Rows)
                    {
                        float* src = pad + (long)q0 * l.S;
                        float* o = flat + (long)q0 * cp + c0;
                        if (wide)
                        {
                            if (l.S == 1) DirectConvTiles.Forward<G32, G1>(taps, src, l.Offsets, panel, 32, o, cp);
                            else DirectConvTiles.Forward<G32, G2>(taps, src, l.Offsets, panel, 32, o, cp);
                        }
                        else
                        {
                            if (l.S == 1) DirectConvTiles.Forward<G16, G1>(taps, src, l.Offsets, panel, 16, o, cp);
                            else DirectConvTiles.Forward<G16, G2>(taps, src, l.Offsets, panel, 16, o, cp);
                        }
                    }
                }
                // Flat [pixels, Cp] to [Cp, pixels] by 16x16 transposes, then each output row's valid run into y, bias added.
                for (int q0 = 0; q0 < l.FlatRows; q0 += 16)
                    for (int c0 = 0; c0 < cp; c0 += 16)
                        GemmPack.Transpose16Store(flat + (long)q0 * cp + c0, cp, Math.Min(16, l.FlatRows - q0), chan + (long)c0 * l.FlatT + q0, l.FlatT);
                float* y = py + n * outImage;
                for (int co = 0; co < cout; co++)
                {
                    float* dst = y + (long)co * np, src = chan + (long)co * l.FlatT;
                    for (int oh = 0; oh < geo.OutH; oh++)
                    {
                        if (pb == null) CopyRow(src + (long)oh * l.Wv, dst + oh * geo.OutW, geo.OutW);
                        else TensorPrimitives.Add(new ReadOnlySpan<float>(src + (long)oh * l.Wv, geo.OutW), pb[co], new Span<float>(dst + oh * geo.OutW, geo.OutW));
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
