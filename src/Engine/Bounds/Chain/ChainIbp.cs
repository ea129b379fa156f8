using System.Runtime.Intrinsics;
using Engine.Cpu;

namespace Engine.Bounds;

/// <summary>
/// IBP of a compiled chain on raw buffers, batched ([B, n] row-major per value). Every layer follows the generic
/// rule (BoundRules.Affine and the op rules) operation for operation, with one exception at the first layer when
/// it is a Linear over an unclipped L∞ ball or an L2 ball: there the radius is the exact ball rule
/// eps·‖W_j‖ (‖·‖₁ for L∞, ‖·‖₂ for L2) plus the rounding margin ρ·(|W_j|·|x| + |b_j|). For batches above
/// <see cref="SmallBatch"/>, for IBP alone, the magnitude |W_j|·|x| is bounded by Cauchy–Schwarz, ‖W_j‖₂·‖x‖₂,
/// which costs one pass over W instead of a second matrix product as large as the layer itself; that margin is up
/// to ~1.3× the exact one (uniform inputs), i.e. the bound is looser by about 1e-4 of its scale. Small batches read
/// W once and get the exact magnitude for free, and CROWN (whose cost is elsewhere) always takes it exactly.
/// Batches above <see cref="SmallBatch"/> run the affine layers in lane layout (ChainLanes.cs); smaller ones per
/// example on [B, n] rows.
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
        // An activation fused into the layer before it is already done.
        if (run.ActFused[k]) return;
        int into = k + 1 < run.ActFused.Length && run.ActFused[k + 1] ? k + 1 : k;
        long held = (long)(run.LaneOut[k] ? LaneCount(b) : b) * nout;
        if (run.Centered[into] && run.Plan.Layers[run.Consumer[into]] is ConvLayer next)
            held = (long)next.Cin * (next.H + 2 * next.PH) * (next.Wd + 2 * next.PW) * LaneCount(b);
        float* olo = run.Lo[into].Get(held), ohi = run.Hi[into].Get(held);
        bool ball = k == 0 && run.Ball;
        switch (layer)
        {
            case ActLayer act:
            {
                // Element-wise: the same in either layout.
                long n = held;
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
            float* x0 = run.X0;
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
        float* w = Ptr(d.W);
        float* bias = d.B == null ? null : Ptr(d.B);
        float* ra = run.Tmp3.Get(nout);
        for (int j = 0; j < nout; j++) ra[j] = bias == null ? alpha : MathF.Abs(bias[j]) * rho + alpha;
        if (TakesLanes(run, k))
        {
            // Lane layout: the box of every input element for all examples, then W·c and |W|·r' in one lane pass.
            int lanes = LaneCount(bsz);
            float* lo = k == 0 ? run.BoxLo.Get(0) : run.Lo[k - 1].Get(0), hi = k == 0 ? run.BoxHi.Get(0) : run.Hi[k - 1].Get(0);
            float* xc, xr;
            // The layer before may have handed over the centre and radius already.
            if (k > 0 && run.Centered[k - 1]) { xc = lo; xr = hi; }
            else
            {
                xc = run.C.Get((long)nin * lanes); xr = run.R.Get((long)nin * lanes);
                if (k > 0 && run.LaneOut[k - 1]) BoxToCenterRadius(lo, hi, xc, xr, (long)nin * lanes, rho);
                else
                {
                    ToLanes(lo, nin, bsz, nin, xc, lanes);
                    ToLanes(hi, nin, bsz, nin, xr, lanes);
                    BoxToCenterRadius(xc, xr, xc, xr, (long)nin * lanes, rho);
                }
            }
            float* yc = run.Tmp.Get((long)nout * lanes), yr = run.Tmp2.Get((long)nout * lanes);
            bool lanesOut = OutEpilogue(run, k, olo, ohi, bias, ra, out var ep);
            int* toff = DenseOffsets(run, nin, lanes);
            if (!LanePair(xc, xr, toff, nin, null, 1, w, nin, nout, lanes, yc, yr, lanesOut ? &ep : null))
            {
                DenseLanes(run, w, nin, nout, xc, false, lanes, yc, 0);
                DenseLanes(run, w, nin, nout, xr, true, lanes, yr, 1);
                FinishLanes(yc, yr, bias, ra, nout, bsz, lanes, olo, ohi, lanesOut ? &ep : null);
            }
            else if (!lanesOut) FinishLanes(yc, yr, bias, ra, nout, bsz, lanes, olo, ohi);
            GC.KeepAlive(d);
            return;
        }
        float* c = run.C.Get((long)bsz * nin), r = run.R.Get((long)bsz * nin);
        CenterRadius(run, k, c, r);
        float* center = run.Tmp.Get((long)bsz * nout), rad = run.Tmp2.Get((long)bsz * nout);
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
        float* x0 = run.X0;
        float* w = Ptr(d.W);
        float* bias = d.B == null ? null : Ptr(d.B);
        float* center = run.Tmp.Get((long)bsz * nout);
        float* norms = run.Tmp2.Get(2L * nout + bsz);
        float* xn = norms + 2 * nout;
        for (int e = 0; e < bsz; e++) xn[e] = (float)Math.Sqrt(SumSquares(x0 + (long)e * nin, nin));
        float* exact = null;
        if (!TakesLanes(run, 0))
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
            int lanes = LaneCount(bsz);
            float* xc = run.C.Get((long)nin * lanes);
            ToLanes(x0, nin, bsz, nin, xc, lanes);
            float* yc = run.Tmp.Get((long)nout * lanes);
            double* dn = run.DAcc.Get(2L * nout * lanes + 2L * nout) + 2L * nout * lanes;
            DenseLanes(run, w, nin, nout, xc, false, lanes, yc, 0, dn);
            for (int j = 0; j < nout; j++)
            {
                double l1 = dn[j], sq = dn[nout + j];
                norms[j] = (float)(l2 ? Math.Sqrt(sq) : l1); norms[nout + j] = (float)Math.Sqrt(sq);
            }
            float* ye = null;
            if (run.ExactMargins)
            {
                // CROWN spends far more than this product elsewhere: take the exact magnitude |W|·|x₀| (as the generic path).
                float* xa = run.R.Get((long)nin * lanes);
                AbsCopy(xc, xa, (long)nin * lanes);
                ye = run.Tmp3.Get((long)nout * lanes);
                DenseLanes(run, w, nin, nout, xa, true, lanes, ye, 1);
            }
            float* xnl = run.WAbs.Get(lanes + 2L * nout);
            new Span<float>(xnl, lanes).Clear();
            for (int e = 0; e < bsz; e++) xnl[e] = xn[e];
            float* sp = xnl + lanes, ba = sp + nout;
            float erl = run.Eps * (1 + rho);
            for (int j = 0; j < nout; j++) { sp[j] = norms[j] * erl; ba[j] = bias == null ? 0f : MathF.Abs(bias[j]); }
            bool lanesOut = OutEpilogue(run, 0, olo, ohi, null, null, out var ep);
            FinishBallLanes(yc, ye, bias, sp, ba, norms + nout, xnl, rho, alpha, nout, bsz, lanes, olo, ohi, lanesOut ? &ep : null);
            GC.KeepAlive(d);
            return;
        }
        float er = run.Eps * (1 + rho);
        // Per output: spread = ‖W_j‖·eps·(1 + ρ) and |b_j| (zero without a bias), then per example and output
        // c + b ± (spread + (mag + |b|)·ρ + α) with mag = |W_j|·|x₀| (exact) or ‖W_j‖₂·‖x₀‖₂.
        float* spread = run.WAbs.Get((long)nout * nin + 2L * nout) + (long)nout * nin, babs = spread + nout;
        for (int j = 0; j < nout; j++) { spread[j] = norms[j] * er; babs[j] = bias == null ? 0f : MathF.Abs(bias[j]); }
        var vr = Vector512.Create(rho); var va = Vector512.Create(alpha);
        for (int e = 0; e < bsz; e++)
        {
            float* ce = center + (long)e * nout, me = exact == null ? null : exact + (long)e * nout, le = olo + (long)e * nout, he = ohi + (long)e * nout;
            var vx = Vector512.Create(xn[e]);
            int j = 0;
            for (; j + 16 <= nout; j += 16)
            {
                var mag = me != null ? Vector512.Load(me + j) : Vector512.Load(norms + nout + j) * vx;
                var cc = Vector512.Load(ce + j);
                if (bias != null) cc += Vector512.Load(bias + j);
                var rr = Vector512.Load(spread + j) + (mag + Vector512.Load(babs + j)) * vr + va;
                Vector512.Store(cc - rr, le + j); Vector512.Store(cc + rr, he + j);
            }
            for (; j < nout; j++)
            {
                float mag = me != null ? me[j] : norms[nout + j] * xn[e];
                float cc = bias == null ? ce[j] : ce[j] + bias[j];
                float rr = spread[j] + (mag + babs[j]) * rho + alpha;
                le[j] = cc - rr; he[j] = cc + rr;
            }
        }
        GC.KeepAlive(d);
    }

    /// <summary>
    /// The lane products of a Linear layer (rows of W, taps = inputs): y = W·x or |W|·x over all lanes; slot picks one
    /// of two disjoint halves of the double scratch so the centre and radius products can share it.
    /// </summary>
    private static void DenseLanes(ChainRun run, float* w, int nin, int nout, float* x, bool abs, int lanes, float* y, int slot, double* norms = null)
    {
        int* toff = DenseOffsets(run, nin, lanes);
        double* dacc = run.DAcc.Get(2L * nout * lanes) + (long)slot * nout * lanes;
        LaneAffine(x, toff, nin, null, 1, w, nin, nout, abs, lanes, y, dacc, norms);
    }

    /// <summary>The tap offsets of a Linear layer's lane product: input i at i·lanes.</summary>
    private static int* DenseOffsets(ChainRun run, int nin, int lanes)
    {
        int* toff = run.Offsets.Get(nin);
        for (int t = 0; t < nin; t++) toff[t] = t * lanes;
        return toff;
    }

    /// <summary>
    /// (lo, hi) → the generic box rule's c = (l + u)/2 and r' = ((u − l)/2)·(1 + ρ) + |c|·ρ (as <see cref="CenterRadius"/>);
    /// c and r may be lo and hi themselves.
    /// </summary>
    private static void BoxToCenterRadius(float* lo, float* hi, float* c, float* r, long n, float rho)
    {
        float onePlus = 1 + rho;
        var half = Vector512.Create(0.5f); var op = Vector512.Create(onePlus); var vr = Vector512.Create(rho);
        long i = 0;
        for (; i + 16 <= n; i += 16)
        {
            var l = Vector512.Load(lo + i); var u = Vector512.Load(hi + i);
            var cc = (l + u) * half;
            Vector512.Store(cc, c + i);
            Vector512.Store((u - l) * half * op + Vector512.Abs(cc) * vr, r + i);
        }
        for (; i < n; i++)
        {
            float l = lo[i], u = hi[i], cc = (l + u) * 0.5f;
            c[i] = cc;
            r[i] = (u - l) * 0.5f * onePlus + MathF.Abs(cc) * rho;
        }
    }

    /// <summary>
    /// <see cref="DenseBall"/>'s output from lane-layout centres: c + b ± (spread + (mag + |b|)·ρ + α) per output j and
    /// example, mag = the exact |W_j|·|x₀| (exact, lane layout) or ‖W_j‖₂·‖x₀‖₂ (n2[j]·xn[lane]); written as [batch, n]
    /// rows, or through the epilogue ep when given (its constants unused).
    /// </summary>
    private static void FinishBallLanes(float* c, float* exact, float* bias, float* spread, float* babs, float* n2, float* xn,
                                        float rho, float alpha, int n, int batch, int lanes, float* lo, float* hi, LaneEpilogue* ep)
    {
        float* tl = stackalloc float[512];
        float* th = tl + 256;
        var vr = Vector512.Create(rho); var va = Vector512.Create(alpha);
        for (int j0 = 0; j0 < n; j0 += 16)
        {
            int jr = Math.Min(16, n - j0);
            for (int g = 0; g < lanes; g += 16)
            {
                var vx = Vector512.Load(xn + g);
                for (int q = 0; q < jr; q++)
                {
                    int j = j0 + q;
                    long at = (long)j * lanes + g;
                    var mag = exact != null ? Vector512.Load(exact + at) : Vector512.Create(n2[j]) * vx;
                    var cc = Vector512.Load(c + at);
                    if (bias != null) cc += Vector512.Create(bias[j]);
                    var rr = Vector512.Create(spread[j]) + (mag + Vector512.Create(babs[j])) * vr + va;
                    if (ep != null) StoreOut(ep, cc - rr, cc + rr, j, g);
                    else { Vector512.Store(cc - rr, tl + q * 16); Vector512.Store(cc + rr, th + q * 16); }
                }
                if (ep != null) continue;
                int cols = Math.Min(16, batch - g);
                Transpose16(tl, 16, jr, cols, lo + (long)g * n + j0, n, jr);
                Transpose16(th, 16, jr, cols, hi + (long)g * n + j0, n, jr);
            }
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

    /// <summary>The activation layer whose output layer k writes (ChainRun.ActFused), or null.</summary>
    private static ActLayer? FusedAct(ChainRun run, int k)
        => k + 1 < run.ActFused.Length && run.ActFused[k + 1] ? (ActLayer)run.Plan.Layers[k + 1] : null;

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
