using System.Runtime.Intrinsics;
using Engine.Cpu;

namespace Engine.Bounds;

/// <summary>
/// IBP of a compiled chain on raw buffers, batched ([B, n] row-major per value). Every layer follows the generic
/// rule (BoundRules.Affine and the op rules) operation for operation, with one exception at the first layer when
/// it is a Linear over an unclipped L∞ ball or an L2 ball: there the radius is the exact ball rule
/// eps·‖W_j‖ (‖·‖₁ for L∞, ‖·‖₂ for L2) and the rounding magnitude |W_j|·|x| is bounded by Cauchy–Schwarz,
/// ‖W_j‖₂·‖x‖₂, which costs one pass over W instead of a second matrix product (the product |W|·|x| would double
/// the cost of the layer).
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
                float s = act.Slope;
                long n = (long)b * nout;
                for (long i = 0; i < n; i++)
                {
                    float l = lo[i], h = hi[i];
                    olo[i] = l >= 0 ? l : l * s;
                    ohi[i] = h >= 0 ? h : h * s;
                }
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
                for (int e = 0; e < b; e++)
                    for (int i = 0; i < nout; i++)
                    {
                        long q = (long)e * nout + i;
                        float ci = c[q];
                        float rr = r[q];
                        float center = hasS ? ci * s[i] : ci;
                        if (hasT) center += t[i];
                        float rad = hasS ? rr * MathF.Abs(s[i]) : rr;
                        rad = hasT ? rad + (MathF.Abs(t[i]) * rho + alpha) : rad + alpha;
                        olo[q] = center - rad; ohi[q] = center + rad;
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
        for (int e = 0; e < bsz; e++)
            for (int j = 0; j < nout; j++)
            {
                long q = (long)e * nout + j;
                float cc = bias == null ? center[q] : center[q] + bias[j];
                float rr = bias == null ? rad[q] + alpha : rad[q] + (MathF.Abs(bias[j]) * rho + alpha);
                olo[q] = cc - rr; ohi[q] = cc + rr;
            }
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
        if (bsz <= SmallBatch)
        {
            for (int j = 0; j < nout; j++)
            {
                float* wr = w + (long)j * nin;
                var (l1, sq) = Norms(wr, nin);
                norms[j] = (float)(l2 ? Math.Sqrt(sq) : l1); norms[nout + j] = (float)Math.Sqrt(sq);
                for (int e = 0; e < bsz; e++) center[(long)e * nout + j] = (float)Dot(wr, x0 + (long)e * nin, nin);
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
                float mag = norms[nout + j] * xn[e];
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
        float* center = run.Tmp.Get((long)bsz * nout), rad = run.Tmp2.Get((long)bsz * nout);
        CpuThreads.For(bsz, 1, (s, e) =>
        {
            var scratch = new float[2 * (opix * cpad + 16)];
            fixed (float* sc = scratch)
                for (int ex = s; ex < e; ex++)
                    ConvPair(g, c + (long)ex * nin, r + (long)ex * nin, wt, wta, cpad, center + (long)ex * nout, rad + (long)ex * nout, sc);
        });
        float* rowNorm = null;
        if (l2Ball)
        {
            rowNorm = run.Tmp3.Get(g.Cout);
            for (int co = 0; co < g.Cout; co++) rowNorm[co] = (float)Math.Sqrt(SumSquares(w + (long)co * taps, taps));
        }
        float er = run.Eps * (1 + rho);
        for (int e = 0; e < bsz; e++)
            for (int co = 0; co < g.Cout; co++)
            {
                float bc = bias == null ? 0f : bias[co];
                float ba = MathF.Abs(bc);
                for (int p = 0; p < opix; p++)
                {
                    long q = (long)e * nout + co * opix + p;
                    float cc = bias == null ? center[q] : center[q] + bc;
                    float rr;
                    if (l2Ball) rr = rowNorm![co] * er + (bias == null ? rad[q] : rad[q] + ba) * rho + alpha;
                    else rr = bias == null ? rad[q] + alpha : rad[q] + (ba * rho + alpha);
                    olo[q] = cc - rr; ohi[q] = cc + rr;
                }
            }
        GC.KeepAlive(g);
    }

    /// <summary>Direct convolution of one example: center = conv(c, W), rad = conv(r, |W|) (no bias), vectorised over output channels.</summary>
    private static void ConvPair(ConvLayer g, float* c, float* r, float* wt, float* wta, int cpad, float* center, float* rad, float* sc)
    {
        int opix = g.OH * g.OW, kk = g.KH * g.KW;
        float* accC = sc, accR = sc + (long)opix * cpad;
        for (int oh = 0; oh < g.OH; oh++)
            for (int ow = 0; ow < g.OW; ow++)
            {
                float* dc = accC + (long)(oh * g.OW + ow) * cpad, dr = accR + (long)(oh * g.OW + ow) * cpad;
                for (int v = 0; v < cpad; v += 16) { Vector512.Store(Vector512<float>.Zero, dc + v); Vector512.Store(Vector512<float>.Zero, dr + v); }
                for (int kh = 0; kh < g.KH; kh++)
                {
                    int ih = oh * g.SH - g.PH + kh * g.DH;
                    if ((uint)ih >= (uint)g.H) continue;
                    for (int kw = 0; kw < g.KW; kw++)
                    {
                        int iw = ow * g.SW - g.PW + kw * g.DW;
                        if ((uint)iw >= (uint)g.Wd) continue;
                        for (int ci = 0; ci < g.Cin; ci++)
                        {
                            long src = ((long)ci * g.H + ih) * g.Wd + iw;
                            var xc = Vector512.Create(c[src]); var xr = Vector512.Create(r[src]);
                            int t = ci * kk + kh * g.KW + kw;
                            float* w0 = wt + (long)t * cpad, w1 = wta + (long)t * cpad;
                            for (int v = 0; v < cpad; v += 16)
                            {
                                Vector512.Store(Vector512.FusedMultiplyAdd(xc, Vector512.Load(w0 + v), Vector512.Load(dc + v)), dc + v);
                                Vector512.Store(Vector512.FusedMultiplyAdd(xr, Vector512.Load(w1 + v), Vector512.Load(dr + v)), dr + v);
                            }
                        }
                    }
                }
            }
        for (int p = 0; p < opix; p++)
            for (int co = 0; co < g.Cout; co++)
            {
                center[(long)co * opix + p] = accC[(long)p * cpad + co];
                rad[(long)co * opix + p] = accR[(long)p * cpad + co];
            }
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
