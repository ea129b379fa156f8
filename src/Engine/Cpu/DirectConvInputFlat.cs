using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// The input gradient of <see cref="DirectConv"/> with each residue's outputs laid out on dy's own OutH × OutW grid,
/// image after image, so that the pixel-vector tiles run over the whole chunk of images without gaps: a tap reads dy
/// at one constant shift from the output's flat index, and the lanes whose shifted position leaves dy's grid (the
/// borders that the per-image form pads with zeros) are masked off. For the certified-training CNN's second layer each
/// residue owns 7 × 7 input pixels: per image the per-image form computes 64 flat pixels (a halo column and whole
/// 32-pixel tiles) where this one computes 49.
/// </summary>
internal static unsafe partial class DirectConv
{
    /// <summary>Settable so tests can run the per-image form on geometries this one takes.</summary>
    internal static bool FlatInputGradient = true;

    // Floats of per-thread scratch (the copied operand plus the outputs) a chunk of images is sized to (256 KB): a
    // quarter of the core's L2, so the step's other operands stay there.
    private const long FlatChunkFloats = 1 << 16;

    /// <summary>Whether the input gradient of a geometry takes the flat form (tests).</summary>
    internal static bool UsesFlatInputGradient(in Conv2dGeometry g) => AppliesBackwardInput(g) && FlatApplies(BackLayout.For(g), g);

    /// <summary>Whether every residue that owns pixels fits its outputs in dy's grid (U1 − U0 ≤ OutH, V1 − V0 ≤ OutW).</summary>
    private static bool FlatApplies(BackLayout l, in Conv2dGeometry g)
    {
        if (!FlatInputGradient) return false;
        foreach (var ph in l.Phases)
            if (ph.Flat > 0 && (ph.U1 - ph.U0 > g.OutH || ph.V1 - ph.V0 > g.OutW)) return false;
        return true;
    }

    /// <summary>
    /// dx from dy for a geometry <see cref="FlatApplies"/> takes: per chunk of images, dy copied channel-major
    /// ([Cout][image, OutH, OutW]), each residue's outputs (u − U0, v − V0) computed on the same grid by masked
    /// pixel-vector tiles, then interleaved into dx's rows as in the per-image form.
    /// </summary>
    private static void BackwardInputFlat(float* pdy, float* pw, float* pdx, in Conv2dGeometry g, BackLayout l)
    {
        var geo = g;
        int cin = geo.InChannels, cout = geo.OutChannels, s = l.S, kh = geo.KernelH, kw = geo.KernelW, width = geo.Width;
        int outW = geo.OutW, outH = geo.OutH, px = geo.OutPixels, phases = l.Phases.Length;
        const int cb = DirectConvTiles.Channels;
        int blocks = (cin + cb - 1) / cb;
        // Per residue: weights per block of 8 input channels as [(jh, jw)][co][8] (zero past Cin); its taps' shifts and
        // masks are cached with the layout (BackLayout.Phase.FlatTaps).
        var wStart = new long[phases + 1];
        for (int i = 0; i < phases; i++) wStart[i + 1] = wStart[i] + (l.Phases[i].Flat == 0 ? 0 : (long)l.Phases[i].Taps * blocks * cb);
        var wBuf = ScratchPool.Rent(wStart[^1]);
        float* wt = ScratchPool.Ptr(wBuf);
        var channelsOf8 = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (kh * kw);
        for (int i = 0; i < phases; i++)
        {
            var ph = l.Phases[i];
            if (ph.Flat == 0) continue;
            int mh = ph.Mh, mw = ph.Mw, taps2 = mh * mw;
            long ciStride = (long)kh * kw;
            for (int b = 0; b < blocks; b++)
            {
                float* block = wt + wStart[i] + (long)b * ph.Taps * cb;
                int live = Math.Min(cb, cin - b * cb);
                for (int t = 0; t < taps2; t++)
                {
                    int jh = t / mw, jw = t % mw;
                    for (int co = 0; co < cout; co++)
                    {
                        float* src = pw + ((long)co * cin + b * cb) * ciStride + (ph.Rh + s * jh) * kw + ph.Rw + s * jw;
                        float* dst = block + ((long)t * cout + co) * cb;
                        // 8 input channels' taps, kh·kw apart, by one gather (scalar copies cost ~3 % of the layer).
                        if (live == cb) { Avx2.GatherVector256(src, channelsOf8, 4).Store(dst); continue; }
                        int r = 0;
                        for (; r < live; r++) dst[r] = src[r * ciStride];
                        for (; r < cb; r++) dst[r] = 0f;
                    }
                }
            }
        }
        // The tiles load every lane at every shift: dy's copy gets slack before and after, whose contents (and the
        // neighbouring rows') only masked lanes read.
        int lead = (-l.MinShift + 15) & ~15;
        long perImage = (long)px * (cout + (long)phases * blocks * cb);
        int chunk = (int)Math.Clamp(FlatChunkFloats / perImage, 1, geo.Batch);
        // Flat lengths: whole 32-pixel tiles, and 16 floats of slack after the outputs for the interleave's over-read.
        int tilesLen = (chunk * px + 31) & ~31, ld = tilesLen + 32;
        bool interleave = s == 2 && width >= 2;
        long inImage = (long)cin * geo.InPixels, outImage = (long)cout * px, chanLen = (long)blocks * cb * ld;
        ForImageChunks(geo.Batch, (_, n0, n1) =>
        {
            long dyLen = lead + (long)cout * ld + l.MaxShift + 32;
            var dyBuf = ScratchPool.Rent(dyLen);
            var chanBuf = ScratchPool.Rent(chanLen * phases);
            var idxBuf = ScratchPool.Rent(2L * tilesLen);
            float* dyc = ScratchPool.Ptr(dyBuf) + lead, chan0 = ScratchPool.Ptr(chanBuf);
            // A residue no kernel tap reaches (kernel smaller than the stride) contributes zeros. Every other scratch
            // float is either written before it is read or read only by masked lanes (cleared by an AND, NaN or not).
            for (int i = 0; i < phases; i++)
                if (l.Phases[i].Flat == 0) new Span<float>(chan0 + i * chanLen, (int)chanLen).Clear();
            int* uIdx = (int*)ScratchPool.Ptr(idxBuf), vIdx = uIdx + tilesLen;
            LaneIndices(uIdx, vIdx, chunk, outH, outW, tilesLen);
            for (int c0 = n0; c0 < n1; c0 += chunk)
            {
                int count = Math.Min(chunk, n1 - c0);
                for (int n = 0; n < count; n++)
                    for (int co = 0; co < cout; co++)
                        new ReadOnlySpan<float>(pdy + (c0 + n) * outImage + (long)co * px, px).CopyTo(new Span<float>(dyc + (long)co * ld + (long)n * px, px));
                // A short last chunk: the lanes past its images read zeros (not stale data) and are dropped.
                if (count < chunk)
                    for (int co = 0; co < cout; co++)
                        new Span<float>(dyc + (long)co * ld + (long)count * px, (chunk - count) * px).Clear();
                int tiles = (count * px + 31) / 32;
                for (int i = 0; i < phases; i++)
                {
                    var ph = l.Phases[i];
                    if (ph.Flat == 0) continue;
                    int* info = ph.FlatTaps;
                    for (int b = 0; b < blocks; b++)
                    {
                        float* wb = wt + wStart[i] + (long)b * ph.Taps * cb;
                        float* o = chan0 + i * chanLen + (long)b * cb * ld;
                        for (int t = 0; t < tiles; t++)
                            DirectConvTiles.PixelsMasked(cout, ph.Mh * ph.Mw, dyc + t * 32, ld, info, uIdx + t * 32, vIdx + t * 32, wb, o + t * 32, ld);
                    }
                }
                for (int n = 0; n < count; n++)
                    Scatter(pdx + (c0 + n) * inImage, chan0, chanLen, ld, (long)n * px, l, geo, interleave);
            }
            ScratchPool.Return(idxBuf);
            ScratchPool.Return(chanBuf);
            ScratchPool.Return(dyBuf);
        });
        ScratchPool.Return(wBuf);
    }

    /// <summary>
    /// Each flat lane's output row u' and column v' within its image, for <paramref name="chunk"/> images of an
    /// outH × outW grid laid end to end; lanes past them (up to <paramref name="length"/>) get rows far out of every
    /// tap's range, so the masked tiles never read for them.
    /// </summary>
    private static void LaneIndices(int* uIdx, int* vIdx, int chunk, int outH, int outW, int length)
    {
        int f = 0;
        for (int n = 0; n < chunk; n++)
            for (int u = 0; u < outH; u++)
                for (int v = 0; v < outW; v++, f++) { uIdx[f] = u; vIdx[f] = v; }
        for (; f < length; f++) uIdx[f] = vIdx[f] = 1 << 24;
    }

    /// <summary>
    /// One image's dx rows from the residues' outputs: residue (rh, rw)'s output (u, v) of input channel ci sits at
    /// chan[residue][ci][at + (u − U0)·OutW + (v − V0)]; stride 2 interleaves the two column residues of a row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scatter(float* dx, float* chan0, long chanLen, int ld, long at, BackLayout l, in Conv2dGeometry g, bool interleave)
    {
        int s = l.S, cin = g.InChannels, width = g.Width, outW = g.OutW;
        for (int rh = 0; rh < s; rh++)
        {
            var first = l.Phases[rh * s];
            int u0 = first.U0, u1 = first.U1;
            if (interleave)
            {
                int ie = rh * 2 + g.PadW % 2, io = rh * 2 + (g.PadW + 1) % 2;
                var pe = l.Phases[ie]; var po = l.Phases[io];
                // A residue without taps has a zero buffer: every row of it reads the same zeros.
                float* even = chan0 + ie * chanLen, odd = chan0 + io * chanLen;
                long ceStride = pe.Flat == 0 ? 0 : ld, coStride = po.Flat == 0 ? 0 : ld;
                int ueStride = pe.Flat == 0 ? 0 : outW, uoStride = po.Flat == 0 ? 0 : outW;
                if (pe.Flat != 0) even += at - (long)pe.U0 * outW;
                if (po.Flat != 0) odd += at - (long)po.U0 * outW;
                if (width <= 32)
                {
                    // One pair of permutes per row; the store masks made once.
                    var m0 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(Math.Min(width, 16))).AsSingle();
                    var m1 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(width - 16)).AsSingle();
                    for (int ci = 0; ci < cin; ci++)
                    {
                        float* e = even + ci * ceStride, o = odd + ci * coStride;
                        float* d = dx + (long)ci * g.InPixels + (long)(s * u0 + rh - g.PadH) * width;
                        for (int u = u0; u < u1; u++, d += s * width)
                        {
                            var a = Vector512.Load(e + u * ueStride);
                            var b = Vector512.Load(o + u * uoStride);
                            Avx512F.MaskStore(d, m0, Avx512F.PermuteVar16x32x2(a, InterleaveLo, b));
                            if (width > 16) Avx512F.MaskStore(d + 16, m1, Avx512F.PermuteVar16x32x2(a, InterleaveHi, b));
                        }
                    }
                }
                else
                    for (int ci = 0; ci < cin; ci++)
                        for (int u = u0; u < u1; u++)
                            InterleaveRow(even + ci * ceStride + u * ueStride, odd + ci * coStride + u * uoStride,
                                          dx + (long)ci * g.InPixels + (long)(s * u + rh - g.PadH) * width, width);
                continue;
            }
            for (int ci = 0; ci < cin; ci++)
                for (int u = u0; u < u1; u++)
                {
                    float* d = dx + (long)ci * g.InPixels + (long)(s * u + rh - g.PadH) * width;
                    for (int rw = 0; rw < s; rw++)
                    {
                        var ph = l.Phases[rh * s + rw];
                        int nv = ph.V1 - ph.V0;
                        if (nv == 0) continue;
                        float* row = ph.Flat == 0 ? chan0 + (rh * s + rw) * chanLen : chan0 + (rh * s + rw) * chanLen + (long)ci * ld + at + (long)(u - ph.U0) * outW;
                        float* dd = d + s * ph.V0 + rw - g.PadW;
                        if (s == 1) new RowCopy(nv).Run(row, dd);
                        else for (int v = 0; v < nv; v++) dd[v * s] = row[v];
                    }
                }
        }
    }
}
