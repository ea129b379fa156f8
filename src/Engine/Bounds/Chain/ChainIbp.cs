using System.Runtime.Intrinsics;
using Engine.Cpu;

namespace Engine.Bounds;

/// <summary>
/// IBP of a compiled chain on raw buffers, batched ([B, n] row-major per value). Every layer follows the generic
/// rule (BoundRules.Affine and the op rules) operation for operation, with one exception at the first layer when
/// it is a Linear over an unclipped L∞ ball or an L2 ball: there the radius is the exact ball rule
/// eps·‖W_j‖ (‖·‖₁ for L∞, ‖·‖₂ for L2) plus the rounding margin ρ·(|W_j|·|x| + |b_j|). For batches above
/// <see cref="SmallBatch"/> the magnitude |W_j|·|x| is bounded by Cauchy–Schwarz, ‖W_j‖₂·‖x‖₂, which costs one
/// pass over W instead of a second matrix product as large as the layer itself; that margin is up to ~1.3× the
/// exact one (uniform inputs), i.e. the bound is looser by about 1e-4 of its scale. Small batches read W once
/// and get the exact magnitude for free.
/// </summary>
internal static unsafe partial class ChainBounds
{
    /// <summary>Batched IBP of layer k (value k from value k − 1).</summary>
    private static void IbpLayer(ChainRun run, int k)
    {
        var layer = run.Plan.Layers[k];
        int b = run.Batch, nin = layer.InSize, nout = layer.OutSize;
        float rho = run.Rho, alpha = run.Alpha;
        float* lo = k == 0 ? run.BoxLo.Get(0) : run.Lo[k - 1].Get(0);
        float* hi = k == 0 ? run.BoxHi.Get(0) : run.Hi[k - 1].Get(0);
        float* olo = run.Lo[k].Get((long)b * nout), ohi = run.Hi[k].Get((long)b * nout);
        bool ball = k == 0 && run.Ball;
        switch (layer)
        {
            case ActLayer act:
            {
                long n = (long)b * nout;
                Activate(lo, olo, n, act.Slope);
                Activate(hi, ohi, n, act.Slope);
                return;
            }
            case ElemLayer el:
            {
                float* s = run.S[k].Get(nout), t = run.T[k].Get(nout);
                bool hasS = run.HasS[k], hasT = run.HasT[k];
                if (el.Exact)
                {
                    // k + x: [k + l, k + u]; k − x: [k − u, k − l] (the generic rule, no margin).
                    for (int e = 0; e < b; e++)
                        for (int i = 0; i < nout; i++)
                        {
                            long q = (long)e * nout + i;
                            if (hasS) { olo[q] = t[i] - hi[q]; ohi[q] = t[i] - lo[q]; }
                            else { olo[q] = t[i] + lo[q]; ohi[q] = t[i] + hi[q]; }
                        }
                    return;
                }
                float* c = run.C.Get((long)b * nin), r = run.R.Get((long)b * nin);
                CenterRadius(run, k, c, r);
                // The generic rule: c·s + t ± (r'·|s| + |t|·ρ + α).
                float* sa = run.Tmp3.Get(2L * nout), ta = sa + nout;
                for (int i = 0; i < nout; i++)
                {
                    sa[i] = hasS ? MathF.Abs(s[i]) : 1f;
                    ta[i] = hasT ? MathF.Abs(t[i]) * rho + alpha : alpha;
                }
                for (int e = 0; e < b; e++)
                {
                    long q = (long)e * nout;
                    if (hasS) Mul(c + q, s, c + q, nout);
                    if (hasS) Mul(r + q, sa, r + q, nout);
                    Finish(c + q, hasT ? t : null, r + q, ta, olo + q, ohi + q, nout);
                }
                return;
            }
            case DenseLayer d:
                if (ball) DenseBall(run, d, olo, ohi);
                else DenseBox(run, k, d, olo, ohi);
                return;
            case ConvLayer cv:
                ConvIbp(run, k, cv, olo, ohi);
                return;
        }
    }

    /// <summary>
    /// Centre and widened radius of value k − 1 per element, as the generic box rule forms them: c = (l + u)/2,
    /// r' = ((u − l)/2)·(1 + ρ) + |c|·ρ. At the first layer over an unclipped ball the box is the ball's own:
    /// c = x₀, r = eps.
    /// </summary>
    private static void CenterRadius(ChainRun run, int k, float* c, float* r)
    {
        int n = run.Plan.Size(k - 1);
        long total = (long)run.Batch * n;
        float rho = run.Rho, onePlus = 1 + rho;
        if (k == 0 && run.Ball)
        {
            float* x0 = run.X0.Get(0);
            float re = run.Eps * onePlus;
            for (long i = 0; i < total; i++) { c[i] = x0[i]; r[i] = re + MathF.Abs(x0[i]) * rho; }
            return;
        }
        float* lo = k == 0 ? run.BoxLo.Get(0) : run.Lo[k - 1].Get(0);
        float* hi = k == 0 ? run.BoxHi.Get(0) : run.Hi[k - 1].Get(0);
        long i0 = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var half = Vector512.Create(0.5f); var op = Vector512.Create(onePlus); var vr = Vector512.Create(rho);
            for (; i0 + 16 <= total; i0 += 16)
            {
                var l = Vector512.Load(lo + i0); var u = Vector512.Load(hi + i0);
                var cc = (l + u) * half;
                Vector512.Store(cc, c + i0);
                Vector512.Store((u - l) * half * op + Vector512.Abs(cc) * vr, r + i0);
            }
        }
        for (long i = i0; i < total; i++)
        {
            float cc = (lo[i] + hi[i]) * 0.5f;
            c[i] = cc;
            r[i] = (hi[i] - lo[i]) * 0.5f * onePlus + MathF.Abs(cc) * rho;
        }
    }

    /// <summary>Linear layer, box rule: W c + b ± (|W| r' + |b|·ρ + α).</summary>
    private static void DenseBox(ChainRun run, int k, DenseLayer d, float* olo, float* ohi)
    {
        int bsz = run.Batch, nin = d.InSize, nout = d.OutSize;
        float rho = run.Rho, alpha = run.Alpha;
        float* c = run.C.Get((long)bsz * nin), r = run.R.Get((long)bsz * nin);
        CenterRadius(run, k, c, r);
        float* w = Ptr(d.W);
        float* bias = d.B == null ? null : Ptr(d.B);
        float* center = run.Tmp.Get((long)bsz * nout), rad = run.Tmp2.Get((long)bsz * nout);
        if (bsz <= SmallBatch)
        {
            for (int j = 0; j < nout; j++)
            {
                float* wr = w + (long)j * nin;
                for (int e = 0; e < bsz; e++)
                {
                    var (dc, dr) = DotAndAbsDot(wr, c + (long)e * nin, r + (long)e * nin, nin);
                    center[(long)e * nout + j] = (float)dc;
                    rad[(long)e * nout + j] = (float)dr;
                }
            }
        }
        else
        {
            float* wa = run.WAbs.Get((long)nout * nin);
            AbsCopy(w, wa, (long)nout * nin);
            Sgemm.Run(false, true, bsz, nout, nin, 1f, c, nin, w, nin, 0f, center, nout);
            Sgemm.Run(false, true, bsz, nout, nin, 1f, r, nin, wa, nin, 0f, rad, nout);
        }
        float* ra = run.Tmp3.Get(nout);
        for (int j = 0; j < nout; j++) ra[j] = bias == null ? alpha : MathF.Abs(bias[j]) * rho + alpha;
        for (int e = 0; e < bsz; e++)
            Finish(center + (long)e * nout, bias, rad + (long)e * nout, ra, olo + (long)e * nout, ohi + (long)e * nout, nout);
        GC.KeepAlive(d);
    }

    /// <summary>
    /// Linear layer on the input ball: W x₀ + b ± (‖W_j‖·eps·(1 + ρ) + (‖W_j‖₂‖x₀‖₂ + |b_j|)·ρ + α), with ‖·‖₁ for
    /// L∞ and ‖·‖₂ for L2 (the generic L2 ball rule's form; for L∞ it is the box rule with the exact box).
    /// </summary>
    private static void DenseBall(ChainRun run, DenseLayer d, float* olo, float* ohi)
    {
        int bsz = run.Batch, nin = d.InSize, nout = d.OutSize;
        float rho = run.Rho, alpha = run.Alpha;
        bool l2 = run.Norm == PerturbationNorm.L2;
        float* x0 = run.X0.Get(0);
        float* w = Ptr(d.W);
        float* bias = d.B == null ? null : Ptr(d.B);
        float* center = run.Tmp.Get((long)bsz * nout);
        float* norms = run.Tmp2.Get(2L * nout + bsz);
        float* xn = norms + 2 * nout;
        for (int e = 0; e < bsz; e++) xn[e] = (float)Math.Sqrt(SumSquares(x0 + (long)e * nin, nin));
        float* exact = null;
        if (bsz <= SmallBatch)
        {
            // Reading W once anyway: the magnitude |W|·|x₀| comes exactly, in the same pass.
            exact = run.Tmp3.Get((long)bsz * nout + (long)bsz * nin);
            float* ax = exact + (long)bsz * nout;
            for (long i = 0; i < (long)bsz * nin; i++) ax[i] = MathF.Abs(x0[i]);
            for (int j = 0; j < nout; j++)
            {
                float* wr = w + (long)j * nin;
                var (l1, sq) = Norms(wr, nin);
                norms[j] = (float)(l2 ? Math.Sqrt(sq) : l1); norms[nout + j] = (float)Math.Sqrt(sq);
                for (int e = 0; e < bsz; e++)
                {
                    var (dc, dm) = DotAndAbsDot(wr, x0 + (long)e * nin, ax + (long)e * nin, nin);
                    center[(long)e * nout + j] = (float)dc;
                    exact[(long)e * nout + j] = (float)dm;
                }
            }
        }
        else
        {
            for (int j = 0; j < nout; j++)
            {
                var (l1, sq) = Norms(w + (long)j * nin, nin);
                norms[j] = (float)(l2 ? Math.Sqrt(sq) : l1); norms[nout + j] = (float)Math.Sqrt(sq);
            }
            Sgemm.Run(false, true, bsz, nout, nin, 1f, x0, nin, w, nin, 0f, center, nout);
        }
        float er = run.Eps * (1 + rho);
        for (int e = 0; e < bsz; e++)
            for (int j = 0; j < nout; j++)
            {
                long q = (long)e * nout + j;
                float mag = exact != null ? exact[q] : norms[nout + j] * xn[e];
                float cc = center[q];
                if (bias != null) { cc += bias[j]; mag += MathF.Abs(bias[j]); }
                float rr = norms[j] * er + mag * rho + alpha;
                olo[q] = cc - rr; ohi[q] = cc + rr;
            }
        GC.KeepAlive(d);
    }

    /// <summary>Convolution: conv(c, W) + b ± (conv(r', |W|) + |b|·ρ + α); L2 ball at the input: ‖W_co‖₂·eps·(1 + ρ) + (conv(|x₀|, |W|) + |b|)·ρ + α.</summary>
    private static void ConvIbp(ChainRun run, int k, ConvLayer g, float* olo, float* ohi)
    {
        int bsz = run.Batch, nin = g.InSize, nout = g.OutSize, opix = g.OH * g.OW;
        float rho = run.Rho, alpha = run.Alpha;
        bool l2Ball = k == 0 && run.Ball && run.Norm == PerturbationNorm.L2;
        float* c = run.C.Get((long)bsz * nin), r = run.R.Get((long)bsz * nin);
        if (l2Ball)
        {
            float* x0 = run.X0.Get(0);
            for (long i = 0; i < (long)bsz * nin; i++) { c[i] = x0[i]; r[i] = MathF.Abs(x0[i]); }
        }
        else CenterRadius(run, k, c, r);
        float* w = Ptr(g.W);
        float* bias = g.B == null ? null : Ptr(g.B);
        int taps = g.Taps, cpad = (g.Cout + 15) & ~15;
        // Weights as [tap, Cout] rows (and their absolute values) so each tap is one vector over the output channels.
        float* wt = run.WAbs.Get(2L * taps * cpad);
        float* wta = wt + (long)taps * cpad;
        for (int t = 0; t < taps; t++)
            for (int co = 0; co < cpad; co++)
            {
                float v = co < g.Cout ? w[(long)co * taps + t] : 0f;
                wt[(long)t * cpad + co] = v; wta[(long)t * cpad + co] = MathF.Abs(v);
            }
        // Vectorise over output pixels of a row when that fills more lanes than the output channels do.
        bool byRows = ByRows(g);
        float* center = run.Tmp.Get((long)bsz * nout), rad = run.Tmp2.Get((long)bsz * nout);
        long tq0 = System.Diagnostics.Stopwatch.GetTimestamp();
        CpuThreads.For(bsz, 1, (s, e) =>
        {
            var scratch = ScratchPool.Rent(Math.Max(ConvScratch(g, cpad), RowsScratch(g)));
            try
            {
                float* sc = ScratchPool.Ptr(scratch);
                for (int ex = s; ex < e; ex++)
                {
                    if (byRows) ConvPairRows(g, c + (long)ex * nin, r + (long)ex * nin, wt, wta, cpad, center + (long)ex * nout, rad + (long)ex * nout, sc);
                    else ConvPair(g, c + (long)ex * nin, r + (long)ex * nin, wt, wta, cpad, center + (long)ex * nout, rad + (long)ex * nout, sc);
                }
            }
            finally { ScratchPool.Return(scratch); }
        });
        if (ChainBounds.Prof != null) ChainBounds.Prof[9 - k] = System.Diagnostics.Stopwatch.GetTimestamp() - tq0;
        float* rowNorm = null;
        if (l2Ball)
        {
            rowNorm = run.Tmp3.Get(g.Cout);
            for (int co = 0; co < g.Cout; co++) rowNorm[co] = (float)Math.Sqrt(SumSquares(w + (long)co * taps, taps));
        }
        float er = run.Eps * (1 + rho);
        float* addC = run.Tmp3.Get(g.Cout + 2L * nout) + g.Cout, addR = addC + nout;
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
                float ba = bias == null ? 0f : MathF.Abs(bias[co]), bc = bias == null ? 0f : bias[co];
                for (int p = 0; p < opix; p++)
                {
                    long i = q + co * opix + p;
                    float cc = bias == null ? center[i] : center[i] + bc;
                    float rr = rowNorm![co] * er + (bias == null ? rad[i] : rad[i] + ba) * rho + alpha;
                    olo[i] = cc - rr; ohi[i] = cc + rr;
                }
            }
        }
        GC.KeepAlive(g);
    }

    private static bool ByRows(ConvLayer g)
        => Math.Min(g.OW, 16) / 16.0 > g.Cout / (double)((g.Cout + 15) & ~15);

    /// <summary>Phase planes: per input channel, padded row and stride phase, the padded row's elements x·SW + phase (16 floats of slack).</summary>
    private static long RowsScratch(ConvLayer g)
    {
        int hp = g.H + 2 * g.PH, wp = g.Wd + 2 * g.PW, pw = (wp + g.SW - 1) / g.SW + 16;
        return 2L * g.Cin * g.SW * hp * pw + 64;
    }

    /// <summary>
    /// Direct convolution of one example vectorised over the output pixels of a row (16 at a time) and blocked over
    /// eight output channels: the input is split into stride phases so that the pixels of one tap are contiguous.
    /// Same sums as <see cref="ConvPair"/> (over the same taps, padding taps adding exact zeros).
    /// </summary>
    internal static void ConvPairRows(ConvLayer g, float* c, float* r, float* wt, float* wta, int cpad, float* center, float* rad, float* sc)
    {
        // Geometry in locals: field loads inside the loops would compete with the (load-bound) kernel.
        int cin = g.Cin, h = g.H, wd = g.Wd, cout = g.Cout, ohn = g.OH, own = g.OW, khn = g.KH, kwn = g.KW;
        int sh = g.SH, sw = g.SW, dh = g.DH, dw = g.DW, padH = g.PH, padW = g.PW;
        int hp = h + 2 * padH, wp = wd + 2 * padW, pw = (wp + sw - 1) / sw + 16, opix = ohn * own, kk = khn * kwn;
        long phases = (long)cin * sw * hp * pw;
        float* pc = sc, pr = sc + phases;
        ChainKernels.Clear(pc, 2 * phases);
        for (int ci = 0; ci < cin; ci++)
            for (int ph = 0; ph < sw; ph++)
            {
                // Padded column xp = x + padW lands in phase xp % sw at xp / sw.
                int x = ph - padW, q = 0;
                while (x < 0) { x += sw; q++; }
                for (int y = 0; y < h; y++)
                {
                    float* srcC = c + ((long)ci * h + y) * wd, srcR = r + ((long)ci * h + y) * wd;
                    long row = (((long)ci * sw + ph) * hp + y + padH) * pw;
                    for (int xx = x, qq = q; xx < wd; xx += sw, qq++) { pc[row + qq] = srcC[xx]; pr[row + qq] = srcR[xx]; }
                }
            }
        int* phase = stackalloc int[kwn], shift = stackalloc int[kwn];
        for (int kw = 0; kw < kwn; kw++) { phase[kw] = kw * dw % sw; shift[kw] = kw * dw / sw; }
        float* tmp = stackalloc float[16];
        for (int oh = 0; oh < ohn; oh++)
            for (int ow0 = 0; ow0 < own; ow0 += 16)
            {
                int nq = Math.Min(16, own - ow0);
                for (int co0 = 0; co0 < cout; co0 += 8)
                {
                    var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0; var c6 = c0; var c7 = c0;
                    var r0 = c0; var r1 = c0; var r2 = c0; var r3 = c0; var r4 = c0; var r5 = c0; var r6 = c0; var r7 = c0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int kh = 0; kh < khn; kh++)
                        {
                            int y = oh * sh + kh * dh;
                            float* w0 = wt + (long)(ci * kk + kh * kwn) * cpad + co0, w1 = wta + (long)(ci * kk + kh * kwn) * cpad + co0;
                            for (int kw = 0; kw < kwn; kw++, w0 += cpad, w1 += cpad)
                            {
                                long at = (((long)ci * sw + phase[kw]) * hp + y) * pw + ow0 + shift[kw];
                                var xc = Vector512.Load(pc + at); var xr = Vector512.Load(pr + at);
                                c0 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[0]), xc, c0); r0 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[0]), xr, r0);
                                c1 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[1]), xc, c1); r1 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[1]), xr, r1);
                                c2 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[2]), xc, c2); r2 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[2]), xr, r2);
                                c3 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[3]), xc, c3); r3 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[3]), xr, r3);
                                c4 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[4]), xc, c4); r4 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[4]), xr, r4);
                                c5 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[5]), xc, c5); r5 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[5]), xr, r5);
                                c6 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[6]), xc, c6); r6 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[6]), xr, r6);
                                c7 = Vector512.FusedMultiplyAdd(Vector512.Create(w0[7]), xc, c7); r7 = Vector512.FusedMultiplyAdd(Vector512.Create(w1[7]), xr, r7);
                            }
                        }
                    long o = (long)oh * own + ow0;
                    int nc = Math.Min(8, cout - co0);
                    StoreRow(c0, center + (long)co0 * opix + o, nq, tmp); StoreRow(r0, rad + (long)co0 * opix + o, nq, tmp);
                    if (nc > 1) { StoreRow(c1, center + (long)(co0 + 1) * opix + o, nq, tmp); StoreRow(r1, rad + (long)(co0 + 1) * opix + o, nq, tmp); }
                    if (nc > 2) { StoreRow(c2, center + (long)(co0 + 2) * opix + o, nq, tmp); StoreRow(r2, rad + (long)(co0 + 2) * opix + o, nq, tmp); }
                    if (nc > 3) { StoreRow(c3, center + (long)(co0 + 3) * opix + o, nq, tmp); StoreRow(r3, rad + (long)(co0 + 3) * opix + o, nq, tmp); }
                    if (nc > 4) { StoreRow(c4, center + (long)(co0 + 4) * opix + o, nq, tmp); StoreRow(r4, rad + (long)(co0 + 4) * opix + o, nq, tmp); }
                    if (nc > 5) { StoreRow(c5, center + (long)(co0 + 5) * opix + o, nq, tmp); StoreRow(r5, rad + (long)(co0 + 5) * opix + o, nq, tmp); }
                    if (nc > 6) { StoreRow(c6, center + (long)(co0 + 6) * opix + o, nq, tmp); StoreRow(r6, rad + (long)(co0 + 6) * opix + o, nq, tmp); }
                    if (nc > 7) { StoreRow(c7, center + (long)(co0 + 7) * opix + o, nq, tmp); StoreRow(r7, rad + (long)(co0 + 7) * opix + o, nq, tmp); }
                }
            }
    }

    private static void StoreRow(Vector512<float> v, float* dst, int n, float* tmp)
    {
        if (n == 16) { Vector512.Store(v, dst); return; }
        Vector512.Store(v, tmp);
        for (int i = 0; i < n; i++) dst[i] = tmp[i];
    }

    private static long ConvScratch(ConvLayer g, int cpad)
        => 2L * g.Cin * (g.H + 2 * g.PH) * (g.Wd + 2 * g.PW) + 2L * g.OH * g.OW * cpad + 64;

    /// <summary>
    /// Direct convolution of one example: center = conv(c, W), rad = conv(r, |W|) (no bias), vectorised over output
    /// channels (weights as [tap, Cout] rows), eight output pixels at a time in registers, on a zero-padded copy of
    /// the input (a padding tap adds an exact zero, as a skipped one would).
    /// </summary>
    internal static void ConvPair(ConvLayer g, float* c, float* r, float* wt, float* wta, int cpad, float* center, float* rad, float* sc)
    {
        int cin = g.Cin, h = g.H, wd = g.Wd, cout = g.Cout, ohn = g.OH, own = g.OW, khn = g.KH, kwn = g.KW;
        int sh = g.SH, sw = g.SW, dh = g.DH, dw = g.DW, padH = g.PH, padW = g.PW;
        int hp = h + 2 * padH, wp = wd + 2 * padW, opix = ohn * own, kk = khn * kwn;
        long plane = (long)hp * wp;
        float* pc = sc, pr = sc + cin * plane, accC = pr + cin * plane, accR = accC + (long)opix * cpad;
        ChainKernels.Clear(pc, 2 * cin * plane);
        for (int ci = 0; ci < cin; ci++)
            for (int y = 0; y < h; y++)
            {
                long src = ((long)ci * h + y) * wd, dst = ci * plane + (long)(y + padH) * wp + padW;
                for (int x = 0; x < wd; x++) { pc[dst + x] = c[src + x]; pr[dst + x] = r[src + x]; }
            }
        for (int oh = 0; oh < ohn; oh++)
            for (int ow0 = 0; ow0 < own; ow0 += 8)
            {
                int nq = Math.Min(8, own - ow0);
                // Pixels past the row's end read pixel ow0 (in range) and are not stored.
                int x0 = ow0 * sw;
                int x1 = (nq > 1 ? ow0 + 1 : ow0) * sw, x2 = (nq > 2 ? ow0 + 2 : ow0) * sw, x3 = (nq > 3 ? ow0 + 3 : ow0) * sw;
                int x4 = (nq > 4 ? ow0 + 4 : ow0) * sw, x5 = (nq > 5 ? ow0 + 5 : ow0) * sw, x6 = (nq > 6 ? ow0 + 6 : ow0) * sw;
                int x7 = (nq > 7 ? ow0 + 7 : ow0) * sw;
                for (int v = 0; v < cpad; v += 16)
                {
                    var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0; var c6 = c0; var c7 = c0;
                    var r0 = c0; var r1 = c0; var r2 = c0; var r3 = c0; var r4 = c0; var r5 = c0; var r6 = c0; var r7 = c0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int kh = 0; kh < khn; kh++)
                        {
                            long row = ci * plane + (long)(oh * sh + kh * dh) * wp;
                            float* rc = pc + row, rr = pr + row;
                            float* wk = wt + (long)(ci * kk + kh * kwn) * cpad + v, wka = wta + (long)(ci * kk + kh * kwn) * cpad + v;
                            for (int kw = 0; kw < kwn; kw++)
                            {
                                var w0 = Vector512.Load(wk + (long)kw * cpad);
                                var w1 = Vector512.Load(wka + (long)kw * cpad);
                                float* qc = rc + kw * dw, qr = rr + kw * dw;
                                c0 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x0]), w0, c0);
                                r0 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x0]), w1, r0);
                                c1 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x1]), w0, c1);
                                r1 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x1]), w1, r1);
                                c2 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x2]), w0, c2);
                                r2 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x2]), w1, r2);
                                c3 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x3]), w0, c3);
                                r3 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x3]), w1, r3);
                                c4 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x4]), w0, c4);
                                r4 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x4]), w1, r4);
                                c5 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x5]), w0, c5);
                                r5 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x5]), w1, r5);
                                c6 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x6]), w0, c6);
                                r6 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x6]), w1, r6);
                                c7 = Vector512.FusedMultiplyAdd(Vector512.Create(qc[x7]), w0, c7);
                                r7 = Vector512.FusedMultiplyAdd(Vector512.Create(qr[x7]), w1, r7);
                            }
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
        for (int co = 0; co < cout; co++)
        {
            float* dc = center + (long)co * opix, dr = rad + (long)co * opix;
            for (int p = 0; p < opix; p++) { dc[p] = accC[(long)p * cpad + co]; dr[p] = accR[(long)p * cpad + co]; }
        }
    }

    /// <summary>lo = (c + addC) − (r + addR), hi = (c + addC) + (r + addR) over n elements (addC may be null: none).</summary>
    private static void Finish(float* c, float* addC, float* r, float* addR, float* lo, float* hi, int n)
    {
        int i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var cc = Vector512.Load(c + i);
            if (addC != null) cc += Vector512.Load(addC + i);
            var rr = Vector512.Load(r + i) + Vector512.Load(addR + i);
            Vector512.Store(cc - rr, lo + i); Vector512.Store(cc + rr, hi + i);
        }
        for (; i < n; i++)
        {
            float cc = addC == null ? c[i] : c[i] + addC[i], rr = r[i] + addR[i];
            lo[i] = cc - rr; hi[i] = cc + rr;
        }
    }

    private static void Mul(float* a, float* b, float* y, int n)
    {
        int i = 0;
        for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(a + i) * Vector512.Load(b + i), y + i);
        for (; i < n; i++) y[i] = a[i] * b[i];
    }

    /// <summary>y = x for x ≥ 0, slope·x otherwise (ReLU: max(x, 0)).</summary>
    private static void Activate(float* x, float* y, long n, float slope)
    {
        long i = 0;
        var zero = Vector512<float>.Zero; var s = Vector512.Create(slope);
        for (; i + 16 <= n; i += 16)
        {
            var v = Vector512.Load(x + i);
            Vector512.Store(slope == 0 ? Vector512.Max(v, zero) : Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(v, zero), v, v * s), y + i);
        }
        for (; i < n; i++) y[i] = x[i] >= 0 ? x[i] : slope == 0 ? 0f : x[i] * slope;
    }

    /// <summary>Batches up to this size take the fused matrix-vector kernels (W read once), larger ones two GEMMs.</summary>
    private const int SmallBatch = 4;

    internal static float* Ptr(Engine.Tensors.Tensor t) => ((Engine.Tensors.CpuStorage)t.Storage).RawPointer + t.Offset;

    private static void AbsCopy(float* src, float* dst, long n)
    {
        long i = 0;
        for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Abs(Vector512.Load(src + i)), dst + i);
        for (; i < n; i++) dst[i] = MathF.Abs(src[i]);
    }

    /// <summary>(Σ w·x, Σ |w|·y) with float vector sums over blocks of 256 elements and double block sums.</summary>
    private static (double, double) DotAndAbsDot(float* w, float* x, float* y, int n)
    {
        double s0 = 0, s1 = 0;
        int i = 0;
        while (i + 16 <= n)
        {
            var a0 = Vector512<float>.Zero; var a1 = a0;
            int end = Math.Min(n - 16, i + 256 - 16);
            for (; i <= end; i += 16)
            {
                var wv = Vector512.Load(w + i);
                a0 = Vector512.FusedMultiplyAdd(wv, Vector512.Load(x + i), a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Abs(wv), Vector512.Load(y + i), a1);
            }
            s0 += Vector512.Sum(a0); s1 += Vector512.Sum(a1);
        }
        for (; i < n; i++) { s0 += w[i] * x[i]; s1 += MathF.Abs(w[i]) * y[i]; }
        return (s0, s1);
    }

    private static double Dot(float* w, float* x, int n)
    {
        double s0 = 0;
        int i = 0;
        while (i + 16 <= n)
        {
            var a0 = Vector512<float>.Zero;
            int end = Math.Min(n - 16, i + 256 - 16);
            for (; i <= end; i += 16) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(w + i), Vector512.Load(x + i), a0);
            s0 += Vector512.Sum(a0);
        }
        for (; i < n; i++) s0 += w[i] * x[i];
        return s0;
    }

    /// <summary>(Σ |w|, Σ w²).</summary>
    private static (double, double) Norms(float* w, int n)
    {
        double s0 = 0, s1 = 0;
        int i = 0;
        while (i + 16 <= n)
        {
            var a0 = Vector512<float>.Zero; var a1 = a0;
            int end = Math.Min(n - 16, i + 256 - 16);
            for (; i <= end; i += 16)
            {
                var wv = Vector512.Load(w + i);
                a0 += Vector512.Abs(wv);
                a1 = Vector512.FusedMultiplyAdd(wv, wv, a1);
            }
            s0 += Vector512.Sum(a0); s1 += Vector512.Sum(a1);
        }
        for (; i < n; i++) { s0 += MathF.Abs(w[i]); s1 += w[i] * w[i]; }
        return (s0, s1);
    }

    private static double SumSquares(float* x, int n) => Norms(x, n).Item2;
}
