using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// The forward of <see cref="DirectConv"/> with output pixels across the vector lanes, image after image: the input is
/// split into its s × s polyphase components (x_ab[i, j] = x[s·i + a, s·j + b]), each stored on the output's OutH ×
/// OutW grid, so that every tap (kh, kw) reads one component at one constant shift from the output's flat index, with
/// the lanes whose shifted position leaves the grid (the zero padding) masked off. The masked pixel-vector tiles of
/// the flat input gradient then compute 8 output channels by 32 pixels, and their rows are y's rows: no padding
/// pixels are computed (the channel-lane form computes ceil(W / s) + pad columns per output row) and nothing is
/// transposed on the way into y.
/// </summary>
internal static unsafe partial class DirectConv
{
    /// <summary>Settable so tests can run the channel-lane form on geometries this one takes.</summary>
    internal static bool FlatForward = true;

    /// <summary>The polyphase layout of a geometry (batch and output channels do not matter), cached.</summary>
    private sealed class PolyLayout
    {
        private static readonly ConcurrentDictionary<Conv2dGeometry, PolyLayout?> Cache = new();

        /// <summary>The layout, or null when some input row or column would fall outside the output grid.</summary>
        public static PolyLayout? For(in Conv2dGeometry g)
        {
            var key = new Conv2dGeometry(1, g.InChannels, g.Height, g.Width, 1, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW, 1);
            if (Cache.TryGetValue(key, out var l)) return l;
            if (Cache.Count >= 64) Cache.Clear();
            return Cache.GetOrAdd(key, k => (k.Height - 1) / k.StrideH < k.OutH && (k.Width - 1) / k.StrideW < k.OutW ? new PolyLayout(k) : null);
        }

        /// <summary>Stride, output grid, pixels per image, taps (kh, kw).</summary>
        public readonly int S, OutH, OutW, Px, Taps2;
        /// <summary>Whether some component is smaller than the grid (its other grid cells must stay zero).</summary>
        public readonly bool Gaps;
        /// <summary>Per tap (kh, kw): its component a·s + b, and dy-style info: shift on the grid, u' and v' bounds.</summary>
        public readonly int[] Plane, Shift, ULo, UHi, VLo, VHi;
        /// <summary>Least and greatest shift on the grid (component offsets excluded).</summary>
        public readonly int MinShift, MaxShift;
        /// <summary>
        /// The row form's bordered layout (DirectConvRows.cs) once <see cref="BorderedKnown"/> (null: the row form does
        /// not apply). Set on first use; two threads racing there compute the same layout.
        /// </summary>
        public RowLayout? Bordered;
        public bool BorderedKnown;

        private PolyLayout(in Conv2dGeometry g)
        {
            S = g.StrideH; OutH = g.OutH; OutW = g.OutW; Px = OutH * OutW;
            Taps2 = g.KernelH * g.KernelW;
            Gaps = g.Height / S < OutH || g.Width / S < OutW;   // the smallest component has floor(H / s) rows
            Plane = new int[Taps2]; Shift = new int[Taps2]; ULo = new int[Taps2]; UHi = new int[Taps2]; VLo = new int[Taps2]; VHi = new int[Taps2];
            for (int kh = 0; kh < g.KernelH; kh++)
                for (int kw = 0; kw < g.KernelW; kw++)
                {
                    // Input row s·oh + kh·d − pad = s·(oh + dh) + a with a in [0, s).
                    int rh = kh * g.DilationH - g.PadH, rw = kw * g.DilationW - g.PadW;
                    int dh = (int)Math.Floor(rh / (double)S), dw = (int)Math.Floor(rw / (double)S);
                    int a = rh - S * dh, b = rw - S * dw, t = kh * g.KernelW + kw;
                    Plane[t] = a * S + b;
                    Shift[t] = dh * OutW + dw;
                    ULo[t] = -dh; UHi[t] = OutH - dh; VLo[t] = -dw; VHi[t] = OutW - dw;
                    MinShift = Math.Min(MinShift, Shift[t]);
                    MaxShift = Math.Max(MaxShift, Shift[t]);
                }
        }
    }

    /// <summary>Whether the forward of a geometry (already taken by the direct path) takes the flat form.</summary>
    internal static bool UsesFlatForward(in Conv2dGeometry g) => FlatForward && Applies(g) && PolyLayout.For(g) != null;

    /// <summary>
    /// y = conv(x, w) + bias for a geometry with a <see cref="PolyLayout"/>: per chunk of images, x split into its
    /// components ([component][Cin][image, OutH, OutW]), 8 output channels at a time by masked pixel-vector tiles, and
    /// each image's rows copied into y with the bias.
    /// </summary>
    private static void ForwardFlat(float* px, float* pw, float* pb, float* py, in Conv2dGeometry g, PolyLayout l)
    {
        var geo = g;
        int cin = geo.InChannels, cout = geo.OutChannels, taps2 = l.Taps2, np = l.Px, s = l.S;
        const int cb = DirectConvTiles.Channels;
        int blocks = (cout + cb - 1) / cb, planes = s * s;
        // Weights per block of 8 output channels as [(kh, kw)][ci][8] (zero past Cout).
        var wBuf = ScratchPool.Rent((long)blocks * taps2 * cin * cb);
        float* wt = ScratchPool.Ptr(wBuf);
        PackChannelBlocks(wt, pw, cin, taps2, cout);
        long perImage = (long)np * (planes * cin + blocks * cb);
        int chunk = (int)Math.Clamp(FlatChunkFloats / perImage, 1, geo.Batch);
        int tilesLen = (chunk * np + 31) & ~31, ld = tilesLen + 32;
        long planeLen = (long)cin * ld;
        // Per tap: the component's offset added to its shift (the tiles read x_ab[ci] at ci·ld + q + shift).
        var infoBuf = ScratchPool.Rent(5L * taps2);
        int* info = (int*)ScratchPool.Ptr(infoBuf);
        for (int t = 0; t < taps2; t++)
        {
            info[5 * t] = (int)(l.Plane[t] * planeLen) + l.Shift[t];
            info[5 * t + 1] = l.ULo[t]; info[5 * t + 2] = l.UHi[t]; info[5 * t + 3] = l.VLo[t]; info[5 * t + 4] = l.VHi[t];
        }
        int lead = (-l.MinShift + 15) & ~15;
        long xLen = lead + planes * planeLen + l.MaxShift + 32;
        long inImage = (long)cin * geo.InPixels, outImage = (long)cout * np;
        ForImageChunks(geo.Batch, (_, n0, n1) =>
        {
            var xBuf = ScratchPool.Rent(xLen);
            var outBuf = ScratchPool.Rent((long)blocks * cb * ld);
            var idxBuf = ScratchPool.Rent(2L * tilesLen);
            float* xp = ScratchPool.Ptr(xBuf) + lead, outp = ScratchPool.Ptr(outBuf);
            // Grid cells no input pixel maps to are never written: zero once. Everything else is written before it
            // is read, or read only by masked lanes (cleared by an AND, NaN or not).
            if (l.Gaps) new Span<float>(xp - lead, (int)xLen).Clear();
            int* uIdx = (int*)ScratchPool.Ptr(idxBuf), vIdx = uIdx + tilesLen;
            LaneIndices(uIdx, vIdx, chunk, l.OutH, l.OutW, tilesLen);
            for (int c0 = n0; c0 < n1; c0 += chunk)
            {
                int count = Math.Min(chunk, n1 - c0);
                for (int n = 0; n < count; n++) Split(px + (c0 + n) * inImage, xp, planeLen, ld, (long)n * np, geo, l);
                if (count < chunk)
                    for (int p = 0; p < planes; p++)
                        for (int ci = 0; ci < cin; ci++)
                            new Span<float>(xp + p * planeLen + (long)ci * ld + (long)count * np, (chunk - count) * np).Clear();
                int tiles = (count * np + 31) / 32;
                for (int b = 0; b < blocks; b++)
                {
                    float* wb = wt + (long)b * taps2 * cin * cb;
                    float* o = outp + (long)b * cb * ld;
                    for (int t = 0; t < tiles; t++)
                        DirectConvTiles.PixelsMasked(cin, taps2, xp + t * 32, ld, info, uIdx + t * 32, vIdx + t * 32, wb, o + t * 32, ld);
                }
                var rows = new RowCopy(np);
                for (int n = 0; n < count; n++)
                {
                    float* y = py + (c0 + n) * outImage;
                    for (int co = 0; co < cout; co++)
                        rows.Run(outp + (long)co * ld + (long)n * np, y + (long)co * np, pb != null ? pb[co] : 0f);
                }
            }
            ScratchPool.Return(idxBuf);
            ScratchPool.Return(outBuf);
            ScratchPool.Return(xBuf);
        });
        ScratchPool.Return(infoBuf);
        ScratchPool.Return(wBuf);
    }

    // Lane permutations gathering the even / odd floats of two vectors a, b (a's first, then b's).
    private static readonly Vector512<int> EvenLanes = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> OddLanes = Vector512.Create(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);

    /// <summary>
    /// Writes image x [Cin, H, W] into its components at image offset <paramref name="at"/>: input row r, column c goes
    /// to component (r mod s, c mod s), ci's row at ci·ld, grid cell (r / s, c / s).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Split(float* x, float* xp, long planeLen, int ld, long at, in Conv2dGeometry g, PolyLayout l)
    {
        int s = l.S, h = g.Height, w = g.Width, outW = l.OutW;
        if (s == 1)
        {
            var copy = new RowCopy(w);
            for (int ci = 0; ci < g.InChannels; ci++)
                for (int r = 0; r < h; r++)
                    copy.Run(x + ((long)ci * h + r) * w, xp + (long)ci * ld + at + (long)r * outW);
            return;
        }
        // Stride 2: each row's even and odd columns, 32 at a time, by two permutes.
        int ne = (w + 1) / 2, no = w / 2;
        if (!l.Gaps && w <= 16)
        {
            // Without gaps H = 2·OutH and W = 2·OutW: every component row is OutW floats, the rows follow each other,
            // and two input rows (one per row residue) fill at most two vectors. Four permutes per pair, and whole
            // vectors stored: what spills past a component row lands on the next row (or the next image, or the
            // plane's slack of 32 floats), written or cleared after it. About a third of the per-row form's work.
            var ev0 = EvenLanes; var od0 = OddLanes;
            var ev1 = EvenLanes + Vector512.Create(w); var od1 = OddLanes + Vector512.Create(w);
            var first = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(2 * w)).AsSingle();
            var second = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(2 * w - 16)).AsSingle();
            for (int ci = 0; ci < g.InChannels; ci++)
            {
                float* src = x + (long)ci * h * w;
                float* top = xp + (long)ci * ld + at;   // component (0, 0); (0, 1), (1, 0), (1, 1) are planeLen apart
                for (int i = 0; i < l.OutH; i++, src += 2 * w, top += outW)
                {
                    var a = w >= 8 ? Vector512.Load(src) : Avx512F.MaskLoad(src, first, Vector512<float>.Zero);
                    var b = Avx512F.MaskLoad(src + 16, second, Vector512<float>.Zero);
                    Avx512F.PermuteVar16x32x2(a, ev0, b).Store(top);
                    Avx512F.PermuteVar16x32x2(a, od0, b).Store(top + planeLen);
                    Avx512F.PermuteVar16x32x2(a, ev1, b).Store(top + 2 * planeLen);
                    Avx512F.PermuteVar16x32x2(a, od1, b).Store(top + 3 * planeLen);
                }
            }
            return;
        }
        if (w <= 32)
        {
            // One permute pair per row, the masks made once.
            var l0 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(Math.Min(w, 16))).AsSingle();
            var l1 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w - 16)).AsSingle();
            var me = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(ne)).AsSingle();
            var mo = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(no)).AsSingle();
            for (int ci = 0; ci < g.InChannels; ci++)
            {
                float* src = x + (long)ci * h * w;
                float* plane = xp + (long)ci * ld + at;
                for (int r = 0; r < h; r++, src += w)
                {
                    var a = Avx512F.MaskLoad(src, l0, Vector512<float>.Zero);
                    var b = w > 16 ? Avx512F.MaskLoad(src + 16, l1, Vector512<float>.Zero) : Vector512<float>.Zero;
                    float* even = plane + (long)(r % 2 * 2) * planeLen + (long)(r / 2) * outW;
                    Avx512F.MaskStore(even, me, Avx512F.PermuteVar16x32x2(a, EvenLanes, b));
                    Avx512F.MaskStore(even + planeLen, mo, Avx512F.PermuteVar16x32x2(a, OddLanes, b));
                }
            }
            return;
        }
        for (int ci = 0; ci < g.InChannels; ci++)
            for (int r = 0; r < h; r++)
            {
                float* src = x + ((long)ci * h + r) * w;
                float* even = xp + (long)(r % 2 * 2) * planeLen + (long)ci * ld + at + (long)(r / 2) * outW;
                float* odd = even + planeLen;
                for (int c = 0; c < w; c += 32)
                {
                    int left = w - c;
                    var a = left >= 16 ? Vector512.Load(src + c) : Avx512F.MaskLoad(src + c, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(left)).AsSingle(), Vector512<float>.Zero);
                    var b = left >= 32 ? Vector512.Load(src + c + 16) : left > 16 ? Avx512F.MaskLoad(src + c + 16, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(left - 16)).AsSingle(), Vector512<float>.Zero) : Vector512<float>.Zero;
                    int e = Math.Min(16, ne - c / 2), o = Math.Min(16, no - c / 2);
                    var ev = Avx512F.PermuteVar16x32x2(a, EvenLanes, b);
                    var od = Avx512F.PermuteVar16x32x2(a, OddLanes, b);
                    if (e >= 16) ev.Store(even + c / 2);
                    else Avx512F.MaskStore(even + c / 2, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(e)).AsSingle(), ev);
                    if (o >= 16) od.Store(odd + c / 2);
                    else if (o > 0) Avx512F.MaskStore(odd + c / 2, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(o)).AsSingle(), od);
                }
            }
    }
}
