using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Cpu;

namespace Engine.Bounds;

/// <summary>A compile-time integer for specialising a kernel (the JIT folds it into addressing).</summary>
internal interface IConst
{
    static abstract int Value { get; }
}

internal struct One : IConst { public static int Value => 1; }

internal struct Two : IConst { public static int Value => 2; }

/// <summary>Marks "not specialised": the kernel reads the runtime value.</summary>
internal struct Any : IConst { public static int Value => 0; }

/// <summary>
/// IBP of a convolution, batched: conv(c, W) + b ± (conv(r', |W|) + |b|·ρ + α), the generic rule. The centre and
/// widened radius of every example are written once into zero-padded planes (or, for kernels vectorised along a
/// row, into stride phases of them), so the direct convolution kernels read every tap without bounds checks; a
/// padding tap adds an exact zero, as a skipped one would.
/// </summary>
internal static unsafe partial class ChainBounds
{
    private static void ConvIbp(ChainRun run, int k, ConvLayer g, float* olo, float* ohi)
    {
        int bsz = run.Batch, nout = g.OutSize, opix = g.OH * g.OW;
        float rho = run.Rho, alpha = run.Alpha;
        bool l2Ball = k == 0 && run.Ball && run.Norm == PerturbationNorm.L2;
        if (TakesLanes(run, k))
        {
            ConvLanes(run, k, g, olo, ohi);
            return;
        }
        // Vectorise over output pixels of a row when that fills more lanes than the output channels do.
        bool byRows = Math.Min(g.OW, 16) / 16.0 > g.Cout / (double)((g.Cout + 15) & ~15);
        int hp = g.H + 2 * g.PH, wp = g.Wd + 2 * g.PW, pw = (wp + g.SW - 1) / g.SW + 16;
        long per = byRows ? (long)g.Cin * g.SW * hp * pw : (long)g.Cin * hp * wp + 16;
        float* pc = run.C.Get(bsz * per), pr = run.R.Get(bsz * per);
        PrepareConvInput(run, k, g, byRows, l2Ball, pc, pr, per);
        float* w = Ptr(g.W);
        float* bias = g.B == null ? null : Ptr(g.B);
        int taps = g.Taps, cpad = (g.Cout + 15) & ~15;
        // Weights as [tap, Cout] rows (and their absolute values): each tap is one vector over the output channels.
        float* wt = run.WAbs.Get(2L * taps * cpad);
        float* wta = wt + (long)taps * cpad;
        for (int t = 0; t < taps; t++)
            for (int co = 0; co < cpad; co++)
            {
                float v = co < g.Cout ? w[(long)co * taps + t] : 0f;
                wt[(long)t * cpad + co] = v; wta[(long)t * cpad + co] = MathF.Abs(v);
            }
        float* center = run.Tmp.Get((long)bsz * nout), rad = run.Tmp2.Get((long)bsz * nout);
        CpuThreads.For(bsz, 1, (s, e) =>
        {
            var scratch = ScratchPool.Rent(2L * opix * cpad + 64);
            try
            {
                float* sc = ScratchPool.Ptr(scratch);
                for (int ex = s; ex < e; ex++)
                {
                    float* c = pc + ex * per, r = pr + ex * per, oc = center + (long)ex * nout, orr = rad + (long)ex * nout;
                    if (byRows) ConvPairRows(g, c, r, wt, wta, cpad, oc, orr);
                    else if (g.SW == 1) ConvPair<One>(g, c, r, wt, wta, cpad, oc, orr, sc);
                    else if (g.SW == 2) ConvPair<Two>(g, c, r, wt, wta, cpad, oc, orr, sc);
                    else ConvPair<Any>(g, c, r, wt, wta, cpad, oc, orr, sc);
                }
            }
            finally { ScratchPool.Return(scratch); }
        });
        float er = run.Eps * (1 + rho);
        float* addC = run.Tmp3.Get(2L * nout), addR = addC + nout;
        for (int co = 0; co < g.Cout; co++)
        {
            float bc = bias == null ? 0f : bias[co];
            new Span<float>(addC + (long)co * opix, opix).Fill(bc);
            new Span<float>(addR + (long)co * opix, opix).Fill(bias == null ? alpha : MathF.Abs(bc) * rho + alpha);
        }
        for (int e = 0; e < bsz; e++)
        {
            long q = (long)e * nout;
            if (!l2Ball)
            {
                Finish(center + q, bias == null ? null : addC, rad + q, addR, olo + q, ohi + q, nout);
                continue;
            }
            // The generic L2 ball rule: ‖W_co‖₂·eps·(1 + ρ) + (|W|·|x₀| + |b|)·ρ + α.
            for (int co = 0; co < g.Cout; co++)
            {
                float rowNorm = (float)Math.Sqrt(SumSquares(w + (long)co * taps, taps));
                float ba = bias == null ? 0f : MathF.Abs(bias[co]), bc = bias == null ? 0f : bias[co];
                for (int p = 0; p < opix; p++)
                {
                    long i = q + co * opix + p;
                    float cc = bias == null ? center[i] : center[i] + bc;
                    float rr = rowNorm * er + (bias == null ? rad[i] : rad[i] + ba) * rho + alpha;
                    olo[i] = cc - rr; ohi[i] = cc + rr;
                }
            }
        }
        GC.KeepAlive(g);
    }

    /// <summary>
    /// The box rule for a batch in lane layout (ChainLanes.cs): the centre and widened radius of every input element
    /// in zero-padded planes [Cin, H + 2·PH, W + 2·PW, lanes] (formed here, or handed over by the layer before), then
    /// conv(c, W) and conv(r', |W|) in one lane pass over the taps (a padding tap adds an exact zero), finished as
    /// c + b ± (r + |b|·ρ + α) by the epilogue or back in rows.
    /// </summary>
    private static void ConvLanes(ChainRun run, int k, ConvLayer g, float* olo, float* ohi)
    {
        int bsz = run.Batch, lanes = LaneCount(bsz), cin = g.Cin, h = g.H, wd = g.Wd, padH = g.PH, padW = g.PW;
        int hp = h + 2 * padH, wp = wd + 2 * padW, opix = g.OH * g.OW, nout = g.OutSize, taps = g.Taps;
        float rho = run.Rho, alpha = run.Alpha, onePlus = 1 + rho, re = run.Eps * onePlus;
        bool ball = k == 0 && run.Ball, inLanes = k > 0 && run.LaneOut[k - 1];
        long plane = (long)hp * wp * lanes, row = (long)wp * lanes, n0 = (long)cin * h * wd;
        float* lo = ball ? run.X0 : k == 0 ? run.BoxLo.Get(0) : run.Lo[k - 1].Get(0);
        float* hi = ball ? lo : k == 0 ? run.BoxHi.Get(0) : run.Hi[k - 1].Get(0);
        // The layer before may have written the centre and radius into these planes already.
        bool handed = k > 0 && run.Centered[k - 1];
        float* xc = handed ? lo : run.C.Get(cin * plane), xr = handed ? hi : run.R.Get(cin * plane);
        for (int ci = 0; ci < cin && !handed; ci++)
        {
            float* pc = xc + ci * plane, pr = xr + ci * plane;
            // Only the padding needs zeros: the rows above and below the image and each image row's margins.
            ChainKernels.Clear(pc, padH * row); ChainKernels.Clear(pr, padH * row);
            ChainKernels.Clear(pc + (padH + h) * row, padH * row); ChainKernels.Clear(pr + (padH + h) * row, padH * row);
            for (int y = 0; y < h; y++)
            {
                long r0 = (y + padH) * row;
                ChainKernels.Clear(pc + r0, (long)padW * lanes); ChainKernels.Clear(pr + r0, (long)padW * lanes);
                long r1 = r0 + (long)(padW + wd) * lanes;
                ChainKernels.Clear(pc + r1, (long)padW * lanes); ChainKernels.Clear(pr + r1, (long)padW * lanes);
                long src = ((long)ci * h + y) * wd, at = r0 + (long)padW * lanes, len = (long)wd * lanes;
                if (inLanes)
                {
                    BoxToCenterRadius(lo + src * lanes, hi + src * lanes, pc + at, pr + at, len, rho);
                    continue;
                }
                ToLanes(lo + src, n0, bsz, wd, pc + at, lanes);
                if (ball)
                {
                    // The unclipped ball: c = x₀, r' = eps·(1 + ρ) + |x₀|·ρ.
                    var vre = Vector512.Create(re); var vr = Vector512.Create(rho);
                    for (long i = 0; i < len; i += 16) Vector512.Store(vre + Vector512.Abs(Vector512.Load(pc + at + i)) * vr, pr + at + i);
                }
                else
                {
                    ToLanes(hi + src, n0, bsz, wd, pr + at, lanes);
                    BoxToCenterRadius(pc + at, pr + at, pc + at, pr + at, len, rho);
                }
            }
        }
        int* toff = run.Offsets.Get(taps), pbase = run.PixelOffsets.Get(opix);
        for (int ci = 0, t = 0; ci < cin; ci++)
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++, t++)
                    toff[t] = (int)(ci * plane + (long)kh * g.DH * row + (long)kw * g.DW * lanes);
        for (int oh = 0, p = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++, p++) pbase[p] = (int)((long)oh * g.SH * row + (long)ow * g.SW * lanes);
        float* w = Ptr(g.W);
        float* bias = g.B == null ? null : Ptr(g.B);
        float* yc = run.Tmp.Get((long)nout * lanes), yr = run.Tmp2.Get((long)nout * lanes);
        float* addC = run.Tmp3.Get(2L * nout), addR = addC + nout;
        for (int co = 0; co < g.Cout; co++)
        {
            float bc = bias == null ? 0f : bias[co];
            new Span<float>(addC + (long)co * opix, opix).Fill(bc);
            new Span<float>(addR + (long)co * opix, opix).Fill(bias == null ? alpha : MathF.Abs(bc) * rho + alpha);
        }
        if (bias == null) addC = null;
        bool lanesOut = OutEpilogue(run, k, olo, ohi, addC, addR, out var ep);
        if (!LanePair(xc, xr, toff, taps, pbase, opix, w, taps, g.Cout, lanes, yc, yr, lanesOut ? &ep : null))
        {
            double* dacc = run.DAcc.Get(2L * nout * lanes);
            LaneAffine(xc, toff, taps, pbase, opix, w, taps, g.Cout, false, lanes, yc, dacc);
            LaneAffine(xr, toff, taps, pbase, opix, w, taps, g.Cout, true, lanes, yr, dacc + (long)nout * lanes);
            FinishLanes(yc, yr, addC, addR, nout, bsz, lanes, olo, ohi, lanesOut ? &ep : null);
        }
        else if (!lanesOut) FinishLanes(yc, yr, addC, addR, nout, bsz, lanes, olo, ohi);
        GC.KeepAlive(g);
    }

    /// <summary>
    /// The centre c and widened radius r' (the generic box rule's, or x₀ and eps at an unclipped input ball, or x₀
    /// and |x₀| for the L2 ball rule) of every input element of the convolution, written into zero-padded planes
    /// [Cin, H + 2·PH, W + 2·PW] per example, or into their stride phases [Cin, SW, H + 2·PH, ⌈(W + 2·PW)/SW⌉ + 16].
    /// </summary>
    private static void PrepareConvInput(ChainRun run, int k, ConvLayer g, bool phases, bool l2Ball, float* pc, float* pr, long per)
    {
        int bsz = run.Batch, h = g.H, wd = g.Wd, cin = g.Cin, sw = g.SW, padH = g.PH, padW = g.PW;
        int hp = h + 2 * padH, wp = wd + 2 * padW, pw = (wp + sw - 1) / sw + 16;
        float rho = run.Rho, onePlus = 1 + rho, re = run.Eps * onePlus;
        bool ball = k == 0 && run.Ball;
        float* lo = ball ? run.X0 : k == 0 ? run.BoxLo.Get(0) : run.Lo[k - 1].Get(0);
        float* hi = ball ? lo : k == 0 ? run.BoxHi.Get(0) : run.Hi[k - 1].Get(0);
        if (phases) { ChainKernels.Clear(pc, bsz * per); ChainKernels.Clear(pr, bsz * per); }
        else
        {
            // Only the padding needs zeros: the rows above and below the image, and each image row's margins.
            for (int e = 0; e < bsz; e++)
                for (int ci = 0; ci < cin; ci++)
                {
                    long plane = e * per + (long)ci * hp * wp;
                    ChainKernels.Clear(pc + plane, (long)padH * wp); ChainKernels.Clear(pr + plane, (long)padH * wp);
                    long below = plane + (long)(padH + h) * wp;
                    ChainKernels.Clear(pc + below, (long)padH * wp); ChainKernels.Clear(pr + below, (long)padH * wp);
                    for (int y = 0; y < h; y++)
                    {
                        long row = plane + (long)(y + padH) * wp;
                        for (int x = 0; x < padW; x++) { pc[row + x] = pr[row + x] = 0f; pc[row + padW + wd + x] = pr[row + padW + wd + x] = 0f; }
                    }
                }
            for (int e = 0; e < bsz; e++) { ChainKernels.Clear(pc + e * per + per - 16, 16); ChainKernels.Clear(pr + e * per + per - 16, 16); }
        }
        int mode = l2Ball ? 2 : ball ? 1 : 0;
        if (!phases)
        {
            for (int e = 0; e < bsz; e++)
                for (int ci = 0; ci < cin; ci++)
                {
                    long src = ((long)e * cin + ci) * h * wd, dst = e * per + ((long)ci * hp + padH) * wp + padW;
                    BoxRows(lo + src, hi + src, h, wd, pc + dst, pr + dst, wp, mode, rho, re);
                }
            return;
        }
        int rowLen = (wp + 31) & ~31;
        float* tc = stackalloc float[2 * rowLen + 32];
        float* tr = tc + rowLen + 16;
        new Span<float>(tc, 2 * rowLen + 32).Clear();
        for (int e = 0; e < bsz; e++)
            for (int ci = 0; ci < cin; ci++)
                for (int y = 0; y < h; y++)
                {
                    long src = (((long)e * cin + ci) * h + y) * wd;
                    BoxRows(lo + src, hi + src, 1, wd, tc + padW, tr + padW, wp, mode, rho, re);
                    for (int ph = 0; ph < sw; ph++)
                    {
                        long dst = e * per + (((long)ci * sw + ph) * hp + y + padH) * pw;
                        Deinterleave(tc, pc + dst, sw, ph, wp);
                        Deinterleave(tr, pr + dst, sw, ph, wp);
                    }
                }
    }

    /// <summary>
    /// c and r' of h rows of w elements (rows contiguous in lo / hi) into rows of stride ld at dc / dr: mode 0 the box
    /// rule from (lo, hi); 1 the unclipped ball (c = x₀ = lo, r' = eps·(1 + ρ) + |x₀|·ρ); 2 the L2 ball rule's (x₀, |x₀|).
    /// </summary>
    private static void BoxRows(float* lo, float* hi, int h, int w, float* dc, float* dr, int ld, int mode, float rho, float re)
    {
        var half = Vector512.Create(0.5f); var op = Vector512.Create(1 + rho); var vr = Vector512.Create(rho); var vre = Vector512.Create(re);
        var tail = Mask(w % 16 == 0 ? 16 : w % 16);
        int full = w & ~15;
        for (int y = 0; y < h; y++, lo += w, hi += w, dc += ld, dr += ld)
        {
            for (int x = 0; x <= w - 16; x += 16)
            {
                var l = Vector512.Load(lo + x);
                if (mode == 0)
                {
                    var u = Vector512.Load(hi + x);
                    var cc = (l + u) * half;
                    Vector512.Store(cc, dc + x); Vector512.Store((u - l) * half * op + Vector512.Abs(cc) * vr, dr + x);
                }
                else
                {
                    Vector512.Store(l, dc + x);
                    Vector512.Store(mode == 1 ? vre + Vector512.Abs(l) * vr : Vector512.Abs(l), dr + x);
                }
            }
            if (full == w) continue;
            var lt = Load(lo + full, tail);
            if (mode == 0)
            {
                var ut = Load(hi + full, tail);
                var cc = (lt + ut) * half;
                Store(cc, dc + full, tail); Store((ut - lt) * half * op + Vector512.Abs(cc) * vr, dr + full, tail);
            }
            else
            {
                Store(lt, dc + full, tail);
                Store(mode == 1 ? vre + Vector512.Abs(lt) * vr : Vector512.Abs(lt), dr + full, tail);
            }
        }
    }

    // Masked loads and stores: one instruction with AVX-512; the element-wise fallbacks live in methods of their own so
    // that these stay small enough to inline into the vector loops.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load(float* p, Vector512<float> mask)
        => Avx512F.IsSupported ? Avx512F.MaskLoad(p, mask, Vector512<float>.Zero) : LoadSlow(p, mask);

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> v, float* p, Vector512<float> mask)
    {
        if (Avx512F.IsSupported) Avx512F.MaskStore(p, mask, v);
        else StoreSlow(v, p, mask);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Load(float* p, int n)
        => n == 16 ? Vector512.Load(p) : Avx512F.IsSupported ? Avx512F.MaskLoad(p, Mask(n), Vector512<float>.Zero) : LoadSlow(p, Mask(n));

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> v, float* p, int n)
    {
        if (n == 16) Vector512.Store(v, p);
        else if (Avx512F.IsSupported) Avx512F.MaskStore(p, Mask(n), v);
        else StoreSlow(v, p, Mask(n));
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static Vector512<float> LoadSlow(float* p, Vector512<float> mask)
    {
        var t = stackalloc float[16];
        for (int i = 0; i < 16; i++) t[i] = mask[i] != 0 ? p[i] : 0f;
        return Vector512.Load(t);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void StoreSlow(Vector512<float> v, float* p, Vector512<float> mask)
    {
        for (int i = 0; i < 16; i++) if (mask[i] != 0) p[i] = v[i];
    }

    /// <summary>A lane mask with the first n lanes set.</summary>
    private static Vector512<float> Mask(int n)
        => Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(n)).AsSingle();

    /// <summary>dst[i] = src[i·s + ph] for the elements of a padded row of length n (src holds zeros past n).</summary>
    private static void Deinterleave(float* src, float* dst, int s, int ph, int n)
    {
        int cnt = (n - ph + s - 1) / s;
        int i = 0;
        if (s == 2 && Avx512F.IsSupported)
        {
            // src is zero-padded to a multiple of 32 floats, so whole pairs of vectors can be read.
            var even = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30) + Vector512.Create(ph);
            for (; i < cnt; i += 16)
                Store(Avx512F.PermuteVar16x32x2(Vector512.Load(src + 2 * i), even, Vector512.Load(src + 2 * i + 16)), dst + i, Math.Min(16, cnt - i));
            return;
        }
        for (; i < cnt; i++) dst[i] = src[i * s + ph];
    }

    /// <summary>
    /// Direct convolution of one example on padded planes: center = conv(c, W), rad = conv(r, |W|) (no bias),
    /// vectorised over output channels, eight output pixels of a row at a time in registers (their inputs at
    /// constant offsets for a specialised stride), then transposed to [Cout, pixels].
    /// </summary>
    internal static void ConvPair<TS>(ConvLayer g, float* pc, float* pr, float* wt, float* wta, int cpad, float* center, float* rad, float* sc)
        where TS : struct, IConst
    {
        int cin = g.Cin, cout = g.Cout, ohn = g.OH, own = g.OW, khn = g.KH, kwn = g.KW;
        int sh = g.SH, sw = typeof(TS) == typeof(Any) ? g.SW : TS.Value, dh = g.DH, dw = g.DW;
        int hp = g.H + 2 * g.PH, wp = g.Wd + 2 * g.PW, opix = ohn * own, kk = khn * kwn;
        long plane = (long)hp * wp;
        float* accC = sc, accR = sc + (long)opix * cpad;
        // Every tap as one offset into the padded planes (relative to the block's first input), so the tap loop is flat.
        int taps = cin * kk;
        int* toff = stackalloc int[taps];
        for (int ci = 0, t = 0; ci < cin; ci++)
            for (int kh = 0; kh < khn; kh++)
                for (int kw = 0; kw < kwn; kw++, t++) toff[t] = (int)(ci * plane + (long)kh * dh * wp + kw * dw);
        for (int oh = 0; oh < ohn; oh++)
            for (int ow0 = 0; ow0 < own; ow0 += 8)
            {
                int nq = Math.Min(8, own - ow0);
                // A partial block (the row's end) with a specialised stride reads past the row (at most 7·2 floats,
                // inside the row below or the planes' slack) into lanes that are never stored.
                long x0 = (long)oh * sh * wp + ow0 * sw;
                bool partial = nq < 8 && typeof(TS) == typeof(Any);
                for (int v = 0; v < cpad; v += 16)
                {
                    var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0; var c6 = c0; var c7 = c0;
                    var r0 = c0; var r1 = c0; var r2 = c0; var r3 = c0; var r4 = c0; var r5 = c0; var r6 = c0; var r7 = c0;
                    float* bc = pc + x0, br = pr + x0, wk = wt + v, wka = wta + v;
                    if (!partial)
                        for (int t = 0; t < taps; t++, wk += cpad, wka += cpad)
                        {
                            var w0 = Vector512.Load(wk); var w1 = Vector512.Load(wka);
                            float* qc = bc + toff[t], qr = br + toff[t];
                            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[0]), w0, c0); r0 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[0]), w1, r0);
                            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[sw]), w0, c1); r1 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[sw]), w1, r1);
                            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[2 * sw]), w0, c2); r2 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[2 * sw]), w1, r2);
                            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[3 * sw]), w0, c3); r3 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[3 * sw]), w1, r3);
                            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[4 * sw]), w0, c4); r4 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[4 * sw]), w1, r4);
                            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[5 * sw]), w0, c5); r5 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[5 * sw]), w1, r5);
                            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[6 * sw]), w0, c6); r6 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[6 * sw]), w1, r6);
                            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[7 * sw]), w0, c7); r7 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[7 * sw]), w1, r7);
                        }
                    else
                        for (int t = 0; t < taps; t++, wk += cpad, wka += cpad)
                        {
                            var w0 = Vector512.Load(wk); var w1 = Vector512.Load(wka);
                            float* qc = bc + toff[t], qr = br + toff[t];
                            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[0]), w0, c0); r0 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[0]), w1, r0);
                            if (nq > 1) { c1 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[sw]), w0, c1); r1 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[sw]), w1, r1); }
                            if (nq > 2) { c2 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[2 * sw]), w0, c2); r2 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[2 * sw]), w1, r2); }
                            if (nq > 3) { c3 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[3 * sw]), w0, c3); r3 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[3 * sw]), w1, r3); }
                            if (nq > 4) { c4 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[4 * sw]), w0, c4); r4 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[4 * sw]), w1, r4); }
                            if (nq > 5) { c5 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[5 * sw]), w0, c5); r5 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[5 * sw]), w1, r5); }
                            if (nq > 6) { c6 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[6 * sw]), w0, c6); r6 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[6 * sw]), w1, r6); }
                        }
                    float* dc = accC + (long)(oh * own + ow0) * cpad + v, dr = accR + (long)(oh * own + ow0) * cpad + v;
                    Vector512.Store(c0, dc); Vector512.Store(r0, dr);
                    if (nq > 1) { Vector512.Store(c1, dc + cpad); Vector512.Store(r1, dr + cpad); }
                    if (nq > 2) { Vector512.Store(c2, dc + 2 * cpad); Vector512.Store(r2, dr + 2 * cpad); }
                    if (nq > 3) { Vector512.Store(c3, dc + 3 * cpad); Vector512.Store(r3, dr + 3 * cpad); }
                    if (nq > 4) { Vector512.Store(c4, dc + 4 * cpad); Vector512.Store(r4, dr + 4 * cpad); }
                    if (nq > 5) { Vector512.Store(c5, dc + 5 * cpad); Vector512.Store(r5, dr + 5 * cpad); }
                    if (nq > 6) { Vector512.Store(c6, dc + 6 * cpad); Vector512.Store(r6, dr + 6 * cpad); }
                    if (nq > 7) { Vector512.Store(c7, dc + 7 * cpad); Vector512.Store(r7, dr + 7 * cpad); }
                }
            }
        // [pixels, Cout] → [Cout, pixels]: eight pixels of a channel per gather.
        int p0 = 0;
        if (Avx2.IsSupported)
        {
            var idx = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * Vector256.Create(cpad);
            for (; p0 + 8 <= opix; p0 += 8)
                for (int co = 0; co < cout; co++)
                {
                    Vector256.Store(Avx2.GatherVector256(accC + (long)p0 * cpad + co, idx, 4), center + (long)co * opix + p0);
                    Vector256.Store(Avx2.GatherVector256(accR + (long)p0 * cpad + co, idx, 4), rad + (long)co * opix + p0);
                }
        }
        for (int co = 0; co < cout; co++)
            for (int p = p0; p < opix; p++)
            {
                center[(long)co * opix + p] = accC[(long)p * cpad + co];
                rad[(long)co * opix + p] = accR[(long)p * cpad + co];
            }
    }

    /// <summary>
    /// Direct convolution of one example vectorised over the output pixels of a row (16 at a time), blocked over
    /// eight output channels, on the stride phases of the padded input (the pixels of one tap are contiguous there).
    /// Same sums over the same taps as <see cref="ConvPair{TS}"/>.
    /// </summary>
    internal static void ConvPairRows(ConvLayer g, float* pc, float* pr, float* wt, float* wta, int cpad, float* center, float* rad)
    {
        int cin = g.Cin, cout = g.Cout, ohn = g.OH, own = g.OW, khn = g.KH, kwn = g.KW;
        int sh = g.SH, sw = g.SW, dh = g.DH, dw = g.DW;
        int hp = g.H + 2 * g.PH, wp = g.Wd + 2 * g.PW, pw = (wp + sw - 1) / sw + 16, opix = ohn * own, kk = khn * kwn;
        // Every tap as one offset into the phase planes (relative to the block's first output pixel).
        int taps = cin * kk;
        int* toff = stackalloc int[taps];
        for (int ci = 0, t = 0; ci < cin; ci++)
            for (int kh = 0; kh < khn; kh++)
                for (int kw = 0; kw < kwn; kw++, t++)
                    toff[t] = (int)((((long)ci * sw + kw * dw % sw) * hp + kh * dh) * pw + kw * dw / sw);
        for (int oh = 0; oh < ohn; oh++)
            for (int ow0 = 0; ow0 < own; ow0 += 16)
            {
                int nq = Math.Min(16, own - ow0);
                for (int co0 = 0; co0 < cout; co0 += 8)
                {
                    var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0; var c6 = c0; var c7 = c0;
                    var r0 = c0; var r1 = c0; var r2 = c0; var r3 = c0; var r4 = c0; var r5 = c0; var r6 = c0; var r7 = c0;
                    float* bc = pc + (long)oh * sh * pw + ow0, br = pr + (long)oh * sh * pw + ow0;
                    float* w0 = wt + co0, w1 = wta + co0;
                    for (int t = 0; t < taps; t++, w0 += cpad, w1 += cpad)
                    {
                                var xc = Vector512.Load(bc + toff[t]); var xr = Vector512.Load(br + toff[t]);
                                c0 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[0]), xc, c0); r0 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[0]), xr, r0);
                                c1 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[1]), xc, c1); r1 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[1]), xr, r1);
                                c2 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[2]), xc, c2); r2 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[2]), xr, r2);
                                c3 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[3]), xc, c3); r3 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[3]), xr, r3);
                                c4 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[4]), xc, c4); r4 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[4]), xr, r4);
                                c5 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[5]), xc, c5); r5 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[5]), xr, r5);
                                c6 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[6]), xc, c6); r6 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[6]), xr, r6);
                                c7 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[7]), xc, c7); r7 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[7]), xr, r7);
                    }
                    long o = (long)oh * own + ow0;
                    int nc = Math.Min(8, cout - co0);
                    Store(c0, center + (long)co0 * opix + o, nq); Store(r0, rad + (long)co0 * opix + o, nq);
                    if (nc > 1) { Store(c1, center + (long)(co0 + 1) * opix + o, nq); Store(r1, rad + (long)(co0 + 1) * opix + o, nq); }
                    if (nc > 2) { Store(c2, center + (long)(co0 + 2) * opix + o, nq); Store(r2, rad + (long)(co0 + 2) * opix + o, nq); }
                    if (nc > 3) { Store(c3, center + (long)(co0 + 3) * opix + o, nq); Store(r3, rad + (long)(co0 + 3) * opix + o, nq); }
                    if (nc > 4) { Store(c4, center + (long)(co0 + 4) * opix + o, nq); Store(r4, rad + (long)(co0 + 4) * opix + o, nq); }
                    if (nc > 5) { Store(c5, center + (long)(co0 + 5) * opix + o, nq); Store(r5, rad + (long)(co0 + 5) * opix + o, nq); }
                    if (nc > 6) { Store(c6, center + (long)(co0 + 6) * opix + o, nq); Store(r6, rad + (long)(co0 + 6) * opix + o, nq); }
                    if (nc > 7) { Store(c7, center + (long)(co0 + 7) * opix + o, nq); Store(r7, rad + (long)(co0 + 7) * opix + o, nq); }
                }
            }
    }
}
