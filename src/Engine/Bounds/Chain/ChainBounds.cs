using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Autograd;
using Engine.Cpu;
using Engine.Graph;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// The fast path of <see cref="Bounds.Compute(ComputeGraph, Tensor, Perturbation, BoundMethod, Spec?, BoundOptions?)"/>
/// for IBP, CROWN and CROWN-IBP: a sequential graph (<see cref="ChainPlan"/>) bounded on raw float buffers with
/// preallocated scratch, the same algorithm as the generic graph path (same relaxations, same intermediate bounds,
/// same rounding margins; ChainIbp.cs describes the one place where a margin is formed differently), but
/// without tensor temporaries or autograd. It is taken only when no gradient can be asked for: the generic path
/// stays the differentiable one (certified training).
/// </summary>
internal static unsafe partial class ChainBounds
{
    /// <summary>Rows (each with its negation) per backward pass: keeps the coefficient buffers near the caches.</summary>
    internal const int MaxPairs = 64;

    [ThreadStatic] private static int _taken;

    /// <summary>How many computations the fast path has answered on this thread (tests check that it is taken).</summary>
    internal static int TakenOnThisThread => _taken;

    /// <summary>True when the fast path answers this call (the structure, device and gradient conditions).</summary>
    internal static bool Applies(ComputeGraph graph, Tensor x, BoundMethod method, Spec? spec, BoundOptions o, out ChainPlan? plan)
    {
        plan = null;
        if (!o.FastPath || method is not (BoundMethod.Ibp or BoundMethod.Crown or BoundMethod.CrownIbp)) return false;
        if (x.Storage is not CpuStorage || x.Rank < 2 || (spec != null && spec.C.Storage is not CpuStorage)) return false;
        plan = ChainPlan.For(graph, x.Dims);
        if (plan == null) return false;
        if (GradMode.IsEnabled)
        {
            if (x.RequiresGrad || (spec != null && spec.C.RequiresGrad)) return false;
            foreach (var t in plan.Constants) if (t.RequiresGrad) return false;
        }
        return true;
    }

    /// <summary>The bounds by the fast path, or null when it does not apply (or the input is invalid: the generic path then reports it).</summary>
    public static BoundResult? TryCompute(ComputeGraph graph, Tensor x, Perturbation perturbation, BoundMethod method, Spec? spec, BoundOptions o)
    {
        if (!Applies(graph, x, method, spec, o, out var plan)) return null;
        int nout = plan!.Layers[^1].OutSize, batch = x.Dims[0];
        if (spec != null && (spec.Outputs != nout || (spec.C.Rank == 3 && spec.C.Dims[0] != batch))) return null;
        var run = plan.Rent();
        try
        {
            // IBP over a ball into a Linear or convolution reads x₀ only: the box itself is not needed.
            if (!Prepare(run, x, perturbation, o, x0Only: method == BoundMethod.Ibp && plan.Layers[0] is DenseLayer or ConvLayer)) return null;
            run.ExactMargins = method != BoundMethod.Ibp;
            PlanLanes(run, method == BoundMethod.Ibp, spec);
            var result = method == BoundMethod.Ibp ? Ibp(run, spec) : Crown(run, spec, refine: method == BoundMethod.Crown);
            _taken++;
            return result;
        }
        finally
        {
            plan.Return(run);
            GC.KeepAlive(x); GC.KeepAlive(spec);
        }
    }

    /// <summary>
    /// Takes the input, checks it as <see cref="Perturbation.InputInterval"/> does (false: let the generic path throw) and
    /// forms the input box (not needed, and skipped, for a ball when only x₀ is read: <paramref name="x0Only"/>).
    /// </summary>
    private static bool Prepare(ChainRun run, Tensor x, Perturbation p, BoundOptions o, bool x0Only = false)
    {
        var plan = run.Plan;
        int b = x.Dims[0], n0 = plan.InputSize;
        long total = (long)b * n0;
        float* xs = Ptr(x);
        float eps = p.Eps;
        bool clip = p.ClipLow != null || p.ClipHigh != null;
        float cl = p.ClipLow ?? float.NegativeInfinity, ch = p.ClipHigh ?? float.PositiveInfinity;
        if (!InDomain(xs, total, cl, ch)) return false;
        run.Batch = b; run.Eps = eps; run.Norm = p.Norm; run.Options = o; run.CallId++;
        run.Rho = o.RoundingRelative; run.Alpha = o.RoundingAbsolute;
        run.Ball = p.Norm == PerturbationNorm.L2 || !clip;
        // x₀ is read in place: the caller keeps x alive for the whole call.
        run.X0 = xs;
        float* lo = run.BoxLo.Get(total), hi = run.BoxHi.Get(total);
        if (!(x0Only && run.Ball)) Box(xs, lo, hi, total, eps, cl, ch);
        if (!run.Ball)
        {
            float* bc = run.BoxC.Get(total), br = run.BoxR.Get(total);
            for (long i = 0; i < total; i++) { bc[i] = (lo[i] + hi[i]) * 0.5f; br[i] = (hi[i] - lo[i]) * 0.5f; }
        }
        for (int k = 0; k < plan.Layers.Length; k++)
            if (plan.Layers[k] is ElemLayer el)
            {
                int n = el.OutSize;
                el.Fill(new Span<float>(run.S[k].Get(n), n), new Span<float>(run.T[k].Get(n), n), out run.HasS[k], out run.HasT[k]);
            }
        return true;
    }

    /// <summary>
    /// Which values stay in lane layout between layers (ChainLanes.cs): for IBP alone on a batch above
    /// <see cref="SmallBatch"/>, an affine layer hands its output on in lanes when, past any activations, the next
    /// layer is a Linear or a convolution that reads lanes (the Linear a spec folds into reads rows); activations keep
    /// their input's layout. Everything else (CROWN's intermediate bounds, the output, element-wise layers) is rows.
    /// </summary>
    private static void PlanLanes(ChainRun run, bool ibp, Spec? spec)
    {
        var layers = run.Plan.Layers;
        int last = layers.Length - 1;
        bool hasSpec = spec != null && !FoldsInLanes(run, spec);
        Array.Clear(run.LaneOut);
        Array.Clear(run.ActFused);
        Array.Clear(run.Centered);
        if (!ibp || run.Batch <= SmallBatch) return;
        for (int k = 0; k < last; k++)
        {
            if (layers[k] is ActLayer) { run.LaneOut[k] = k > 0 && run.LaneOut[k - 1]; continue; }
            if (!TakesLanes(run, k)) continue;
            int j = k + 1;
            while (j <= last && layers[j] is ActLayer) j++;
            run.LaneOut[k] = j <= last && TakesLanes(run, j) && !(j == last && hasSpec);
            // The activation right after it is applied as the outputs are formed (its input is read by nobody else).
            if (run.LaneOut[k] && layers[k + 1] is ActLayer) run.ActFused[k + 1] = true;
            // Handed straight to the next affine layer: as that layer's box-rule centre and radius.
            int v = run.ActFused[k + 1] ? k + 1 : k;
            if (run.LaneOut[k] && v + 1 <= last && layers[v + 1] is DenseLayer or ConvLayer) { run.Centered[v] = true; run.Consumer[v] = v + 1; }
        }
    }

    /// <summary>
    /// The spec folds into the last Linear in lane layout (<see cref="FoldSpecLanes"/>): a Linear after another layer
    /// with at most 16 outputs (one vector holds a column of W) and rows short enough for float chunk totals.
    /// </summary>
    private static bool FoldsInLanes(ChainRun run, Spec spec)
    {
        var layers = run.Plan.Layers;
        return Avx512F.IsSupported && layers.Length > 1 && layers[^1] is DenseLayer d && d.OutSize <= 16 && run.Batch > SmallBatch
               && Chunks(d.InSize, out _, out _) && (long)d.InSize * LaneCount(run.Batch) <= int.MaxValue && spec.Outputs == d.OutSize;
    }

    /// <summary>Layer k is computed in lane layout (ChainLanes.cs) at this call's batch size.</summary>
    private static bool TakesLanes(ChainRun run, int k)
    {
        if (run.Batch <= SmallBatch) return false;
        var layer = run.Plan.Layers[k];
        long lanes = LaneCount(run.Batch);
        return layer switch
        {
            DenseLayer d => (long)d.InSize * lanes <= int.MaxValue,
            // The L2 ball at a first convolution keeps its own rule (per-example kernels); offsets are ints.
            ConvLayer g => !(k == 0 && run.Ball && run.Norm == PerturbationNorm.L2)
                           && (long)g.Cin * (g.H + 2 * g.PH) * (g.Wd + 2 * g.PW) * lanes <= int.MaxValue,
            _ => false,
        };
    }

    /// <summary>Every value finite and inside [lo, hi].</summary>
    private static bool InDomain(float* x, long n, float lo, float hi)
    {
        long i = 0;
        var vl = Vector512.Create(lo); var vh = Vector512.Create(hi); var bad = Vector512<float>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            var v = Vector512.Load(x + i);
            // v − v is NaN for NaN and ±∞; the comparisons catch the domain.
            bad |= ~Vector512.Equals(v - v, Vector512<float>.Zero) | Vector512.LessThan(v, vl) | Vector512.GreaterThan(v, vh);
        }
        if (bad != Vector512<float>.Zero) return false;
        for (; i < n; i++)
            if (!float.IsFinite(x[i]) || x[i] < lo || x[i] > hi) return false;
        return true;
    }

    /// <summary>The generic input box: max(x − eps, lo), min(x + eps, hi).</summary>
    private static void Box(float* x, float* l, float* h, long n, float eps, float lo, float hi)
    {
        long i = 0;
        var ve = Vector512.Create(eps); var vl = Vector512.Create(lo); var vh = Vector512.Create(hi);
        for (; i + 16 <= n; i += 16)
        {
            var v = Vector512.Load(x + i);
            Vector512.Store(Vector512.Max(v - ve, vl), l + i);
            Vector512.Store(Vector512.Min(v + ve, vh), h + i);
        }
        for (; i < n; i++) { l[i] = Math.Max(x[i] - eps, lo); h[i] = Math.Min(x[i] + eps, hi); }
    }

    private static BoundResult Ibp(ChainRun run, Spec? spec)
    {
        var layers = run.Plan.Layers;
        int last = layers.Length - 1, b = run.Batch, nout = layers[last].OutSize;
        bool fold = spec != null && layers[last] is DenseLayer;
        for (int k = 0; k < (fold ? last : last + 1); k++) IbpLayer(run, k);
        if (spec == null)
            return new BoundResult(Tensor.FromSpan(new ReadOnlySpan<float>(run.Lo[last].Get(0), b * nout), [b, nout], null),
                                   Tensor.FromSpan(new ReadOnlySpan<float>(run.Hi[last].Get(0), b * nout), [b, nout], null));
        int s = spec.Count;
        float* lower = run.OutLo.Get((long)b * s), upper = run.OutHi.Get((long)b * s);
        if (fold && last > 0 && run.LaneOut[last - 1]) FoldSpecLanes(run, (DenseLayer)layers[last], spec, lower, upper);
        else if (fold) FoldSpec(run, (DenseLayer)layers[last], spec, lower, upper);
        else SpecOnBox(run, spec, lower, upper);
        return new BoundResult(Tensor.FromSpan(new ReadOnlySpan<float>(lower, b * s), [b, s], null),
                               Tensor.FromSpan(new ReadOnlySpan<float>(upper, b * s), [b, s], null));
    }

    private static float* SpecRows(Spec spec, int example) => Ptr(spec.C) + (spec.C.Rank == 3 ? (long)example * spec.Count * spec.Outputs : 0);

    /// <summary>
    /// The generic IBP fold of the spec into the last Linear: (C·W) h + C·b over the box of h, radius
    /// |C·W| r' + (|C|·|b|)·ρ + α (for an L2 ball that is h itself, the ball rule with the rows' 2-norms).
    /// </summary>
    private static void FoldSpec(ChainRun run, DenseLayer d, Spec spec, float* lower, float* upper)
    {
        int b = run.Batch, s = spec.Count, nout = d.OutSize, nin = d.InSize, k = run.Plan.Layers.Length - 1;
        float rho = run.Rho, alpha = run.Alpha;
        bool l2Ball = k == 0 && run.Ball && run.Norm == PerturbationNorm.L2;
        float* c = run.C.Get((long)b * nin), r = run.R.Get((long)b * nin);
        if (l2Ball)
        {
            float* x0 = run.X0;
            for (long i = 0; i < (long)b * nin; i++) { c[i] = x0[i]; r[i] = MathF.Abs(x0[i]); }
        }
        else CenterRadius(run, k, c, r);
        float* w = Ptr(d.W);
        float* bias = d.B == null ? null : Ptr(d.B);
        // C·W depends on the example only through C: examples that share C (a shared spec, or margins of one label)
        // share the folded rows, formed once per call in one of MaxFolds slots.
        int ld = (nin + 15) & ~15;
        float* q = run.Tmp.Get((long)MaxFolds * s * ld);
        double* qb = run.DAcc.Get(MaxFolds * 3L * s + 2L * s);
        double* dots = qb + MaxFolds * 3L * s;
        float** keys = stackalloc float*[MaxFolds];
        float** nzw = (float**)run.Offsets.Get(2L * nout + 2);
        float* nzc = run.Tmp2.Get(nout);
        int used = 0, next = 0, cn = s * nout;
        for (int e = 0; e < b; e++)
        {
            float* ce = SpecRows(spec, e);
            int slot = -1;
            for (int u = 0; u < used && slot < 0; u++)
                if (keys[u] == ce || new ReadOnlySpan<int>(keys[u], cn).SequenceEqual(new ReadOnlySpan<int>(ce, cn))) slot = u;
            if (slot < 0)
            {
                slot = used < MaxFolds ? used++ : next++ % MaxFolds;
                keys[slot] = ce;
                FoldRows(ce, w, bias, nout, nin, s, l2Ball, q + (long)slot * s * ld, ld, qb + slot * 3L * s, nzw, nzc);
            }
            float* qs = q + (long)slot * s * ld;
            double* bs = qb + slot * 3L * s;
            FoldDots(qs, ld, s, c + (long)e * nin, r + (long)e * nin, nin, dots);
            for (int row = 0; row < s; row++)
            {
                double cb = bs[row], cba = bs[s + row], sq = bs[2 * s + row], rad = dots[s + row];
                double center = cb + dots[row];
                double radius = l2Ball ? Math.Sqrt(sq) * (run.Eps * (1 + rho)) + (rad + cba) * rho + alpha
                              : bias != null ? rad + (cba * rho + alpha) : rad + alpha;
                lower[(long)e * s + row] = (float)(center - radius);
                upper[(long)e * s + row] = (float)(center + radius);
            }
        }
        GC.KeepAlive(d); GC.KeepAlive(spec);
    }

    /// <summary>
    /// <see cref="FoldSpec"/> on a batch whose last hidden value is in lane layout (handed over as its box-rule centre
    /// and widened radius): every example's rows at once, one lane each. A column of W is one vector, so example e's
    /// folded coefficient q = Σ_j C_e[row, j]·W[j, i] is formed in lane e by permuting that column: fused multiply-adds
    /// over e's nonzero coefficients, j ascending, as the generic C·W (lanes with fewer nonzeros add exact zeros).
    /// The sums Σ q·c and Σ |q|·r' run in float chunks as the lane products (<see cref="Chunks"/>).
    /// </summary>
    private static void FoldSpecLanes(ChainRun run, DenseLayer d, Spec spec, float* lower, float* upper)
    {
        int b = run.Batch, lanes = LaneCount(b), s = spec.Count, nout = d.OutSize, nin = d.InSize, last = run.Plan.Layers.Length - 1;
        float rho = run.Rho, alpha = run.Alpha;
        float* c = run.Lo[last - 1].Get(0), r = run.Hi[last - 1].Get(0);
        if (!run.Centered[last - 1])
        {
            // (lo, hi) in lanes (activations left unfused before the Linear): the box rule's centre and radius first.
            float* bc = run.C.Get((long)nin * lanes), br = run.R.Get((long)nin * lanes);
            BoxToCenterRadius(c, r, bc, br, (long)nin * lanes, rho);
            c = bc; r = br;
        }
        float* w = Ptr(d.W);
        float* bias = d.B == null ? null : Ptr(d.B);
        // Columns of W as vectors: wt[16·i + j] = W[j, i] (zero past nout).
        float* wt = run.WAbs.Get(16L * nin + 16);
        for (int i0 = 0; i0 < nin; i0 += 16) Transpose16(w + i0, nin, nout, Math.Min(16, nin - i0), wt + 16L * i0, 16, 16);
        // Per row and k-th nonzero: each lane's output index and coefficient (padding lanes and missing ones: 0, 0).
        // Each row's nonzero coefficients as a bit mask over the outputs (nout ≤ 16), taken in ascending j.
        int* nzm = run.PixelOffsets.Get((long)b * s);
        int kmax = 1;
        var outs = Mask(nout);
        for (int e = 0; e < b; e++)
        {
            float* ce = SpecRows(spec, e);
            for (int row = 0; row < s; row++)
            {
                var v = Load(ce + (long)row * nout, outs);
                int m = (int)Vector512.ExtractMostSignificantBits(~Vector512.Equals(v, Vector512<float>.Zero) & outs.AsSingle());
                nzm[e * s + row] = m;
                kmax = Math.Max(kmax, BitOperations.PopCount((uint)m));
            }
        }
        long slots = (long)s * kmax * lanes;
        int* idx = run.Offsets.Get(slots);
        float* coef = run.Tmp.Get(slots);
        new Span<int>(idx, (int)slots).Clear(); new Span<float>(coef, (int)slots).Clear();
        double* bterms = run.DAcc.Get(2L * b * s);
        for (int e = 0; e < b; e++)
        {
            float* ce = SpecRows(spec, e);
            for (int row = 0; row < s; row++)
            {
                float* cr = ce + (long)row * nout;
                double cb = 0, cba = 0;
                long at = (long)row * kmax * lanes + e;
                for (uint m = (uint)nzm[e * s + row]; m != 0; m &= m - 1, at += lanes)
                {
                    int j = BitOperations.TrailingZeroCount(m);
                    idx[at] = j; coef[at] = cr[j];
                    if (bias != null) { cb += (double)cr[j] * bias[j]; cba += Math.Abs((double)cr[j]) * Math.Abs(bias[j]); }
                }
                bterms[(long)e * s + row] = cb; bterms[(long)(b + e) * s + row] = cba;
            }
        }
        float* sums = run.Tmp2.Get(2L * s * lanes);
        Chunks(nin, out int chunks, out int step);
        for (int row0 = 0; row0 < s; row0 += 4)
        {
            int rows = Math.Min(4, s - row0);
            for (int g = 0; g < lanes; g += 16)
                for (int ch = 0; ch < chunks; ch++)
                {
                    int t0 = ch * step, t1 = Math.Min(nin, t0 + step);
                    var z = Vector512<float>.Zero;
                    Vector512<float> a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
                    if (kmax <= 2)
                    {
                        // The common case (margins: two nonzeros per row), with each row's indices and coefficients in registers.
                        FoldDots2(wt, c, r, idx, coef, row0, rows, kmax, lanes, g, t0, t1, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3);
                        goto emit;
                    }
                    for (int i = t0; i < t1; i++)
                    {
                        var wv = Vector512.Load(wt + 16L * i);
                        var cv = Vector512.Load(c + (long)i * lanes + g); var rv = Vector512.Load(r + (long)i * lanes + g);
                        var q = Folded(wv, idx, coef, row0, kmax, lanes, g);
                        a0 = Vector512.FusedMultiplyAdd(q, cv, a0); b0 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, b0);
                        if (rows > 1)
                        {
                            q = Folded(wv, idx, coef, row0 + 1, kmax, lanes, g);
                            a1 = Vector512.FusedMultiplyAdd(q, cv, a1); b1 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, b1);
                        }
                        if (rows > 2)
                        {
                            q = Folded(wv, idx, coef, row0 + 2, kmax, lanes, g);
                            a2 = Vector512.FusedMultiplyAdd(q, cv, a2); b2 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, b2);
                        }
                        if (rows > 3)
                        {
                            q = Folded(wv, idx, coef, row0 + 3, kmax, lanes, g);
                            a3 = Vector512.FusedMultiplyAdd(q, cv, a3); b3 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, b3);
                        }
                    }
                    emit:
                    int emit = ch == 0 ? 0 : 4;
                    Emit(a0, sums + (long)row0 * lanes + g, null, emit); Emit(b0, sums + (long)(s + row0) * lanes + g, null, emit);
                    if (rows > 1) { Emit(a1, sums + (long)(row0 + 1) * lanes + g, null, emit); Emit(b1, sums + (long)(s + row0 + 1) * lanes + g, null, emit); }
                    if (rows > 2) { Emit(a2, sums + (long)(row0 + 2) * lanes + g, null, emit); Emit(b2, sums + (long)(s + row0 + 2) * lanes + g, null, emit); }
                    if (rows > 3) { Emit(a3, sums + (long)(row0 + 3) * lanes + g, null, emit); Emit(b3, sums + (long)(s + row0 + 3) * lanes + g, null, emit); }
                }
        }
        for (int e = 0; e < b; e++)
            for (int row = 0; row < s; row++)
            {
                double cb = bterms[(long)e * s + row], cba = bterms[(long)(b + e) * s + row];
                double center = cb + sums[(long)row * lanes + e], rad = sums[(long)(s + row) * lanes + e];
                double radius = bias != null ? rad + (cba * rho + alpha) : rad + alpha;
                lower[(long)e * s + row] = (float)(center - radius);
                upper[(long)e * s + row] = (float)(center + radius);
            }
        GC.KeepAlive(d); GC.KeepAlive(spec);
    }

    /// <summary>
    /// <see cref="FoldSpecLanes"/>'s sums for four rows with at most two nonzero coefficients per lane (kmax ≤ 2; a
    /// second coefficient of zero adds an exact zero), indices and coefficients held in registers across the inputs.
    /// </summary>
    private static void FoldDots2(float* wt, float* c, float* r, int* idx, float* coef, int row0, int rows, int kmax, int lanes, int g, int t0, int t1,
                                  ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3,
                                  ref Vector512<float> b0, ref Vector512<float> b1, ref Vector512<float> b2, ref Vector512<float> b3)
    {
        // Each row's slots (rows past the last repeat the first; their sums are not stored); a missing second
        // coefficient (kmax = 1) is read as the first times zero.
        long next = (long)kmax * lanes, k1 = kmax > 1 ? lanes : 0;
        long p0 = (long)row0 * next + g, p1 = rows > 1 ? p0 + next : p0, p2 = rows > 2 ? p0 + 2 * next : p0, p3 = rows > 3 ? p0 + 3 * next : p0;
        float second = kmax > 1 ? 1f : 0f;
        var i00 = Vector512.Load(idx + p0); var i01 = Vector512.Load(idx + p0 + k1);
        var c00 = Vector512.Load(coef + p0); var c01 = Vector512.Load(coef + p0 + k1) * second;
        var i10 = Vector512.Load(idx + p1); var i11 = Vector512.Load(idx + p1 + k1);
        var c10 = Vector512.Load(coef + p1); var c11 = Vector512.Load(coef + p1 + k1) * second;
        var i20 = Vector512.Load(idx + p2); var i21 = Vector512.Load(idx + p2 + k1);
        var c20 = Vector512.Load(coef + p2); var c21 = Vector512.Load(coef + p2 + k1) * second;
        var i30 = Vector512.Load(idx + p3); var i31 = Vector512.Load(idx + p3 + k1);
        var c30 = Vector512.Load(coef + p3); var c31 = Vector512.Load(coef + p3 + k1) * second;
        var z = Vector512<float>.Zero;
        // Local accumulators (the JIT keeps them in registers, not the caller's).
        Vector512<float> s0 = z, s1 = z, s2 = z, s3 = z, u0 = z, u1 = z, u2 = z, u3 = z;
        for (int i = t0; i < t1; i++)
        {
            var wv = Vector512.Load(wt + 16L * i);
            var cv = Vector512.Load(c + (long)i * lanes + g); var rv = Vector512.Load(r + (long)i * lanes + g);
            var q = Vector512.FusedMultiplyAdd(c01, Avx512F.PermuteVar16x32(wv, i01), Vector512.FusedMultiplyAdd(c00, Avx512F.PermuteVar16x32(wv, i00), z));
            s0 = Vector512.FusedMultiplyAdd(q, cv, s0); u0 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, u0);
            q = Vector512.FusedMultiplyAdd(c11, Avx512F.PermuteVar16x32(wv, i11), Vector512.FusedMultiplyAdd(c10, Avx512F.PermuteVar16x32(wv, i10), z));
            s1 = Vector512.FusedMultiplyAdd(q, cv, s1); u1 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, u1);
            q = Vector512.FusedMultiplyAdd(c21, Avx512F.PermuteVar16x32(wv, i21), Vector512.FusedMultiplyAdd(c20, Avx512F.PermuteVar16x32(wv, i20), z));
            s2 = Vector512.FusedMultiplyAdd(q, cv, s2); u2 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, u2);
            q = Vector512.FusedMultiplyAdd(c31, Avx512F.PermuteVar16x32(wv, i31), Vector512.FusedMultiplyAdd(c30, Avx512F.PermuteVar16x32(wv, i30), z));
            s3 = Vector512.FusedMultiplyAdd(q, cv, s3); u3 = Vector512.FusedMultiplyAdd(Vector512.Abs(q), rv, u3);
        }
        a0 = s0; a1 = s1; a2 = s2; a3 = s3; b0 = u0; b1 = u1; b2 = u2; b3 = u3;
    }

    /// <summary>Lane e of the result: Σ_k coef[row, k, e]·w[idx[row, k, e]] by fused multiply-adds from zero, k ascending.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Folded(Vector512<float> w, int* idx, float* coef, int row, int kmax, int lanes, int g)
    {
        var q = Vector512<float>.Zero;
        long at = (long)row * kmax * lanes + g;
        for (int k = 0; k < kmax; k++, at += lanes)
            q = Vector512.FusedMultiplyAdd(Vector512.Load(coef + at), Avx512F.PermuteVar16x32(w, Vector512.Load(idx + at)), q);
        return q;
    }

    /// <summary>Distinct spec matrices whose folded rows a call keeps at once.</summary>
    private const int MaxFolds = 16;

    /// <summary>
    /// The spec rows folded into the last Linear, as the generic C·W forms them: q_row = Σ_j C[row, j]·W_j by fused
    /// multiply-adds over the nonzero coefficients, j ascending (rows of stride ld, zero past nin); per row in bq the
    /// bias terms Σ C·b and Σ |C|·|b| (double) and, for the L2 ball, Σ q².
    /// </summary>
    private static void FoldRows(float* ce, float* w, float* bias, int nout, int nin, int s, bool squares, float* q, int ld, double* bq, float** nzw, float* nzc)
    {
        for (int row = 0; row < s; row++)
        {
            float* cr = ce + (long)row * nout, qr = q + (long)row * ld;
            double cb = 0, cba = 0;
            int nz = 0;
            for (int j = 0; j < nout; j++)
            {
                if (cr[j] == 0) continue;
                nzw[nz] = w + (long)j * nin; nzc[nz++] = cr[j];
                if (bias != null) { cb += (double)cr[j] * bias[j]; cba += Math.Abs((double)cr[j]) * Math.Abs(bias[j]); }
            }
            double sq = 0;
            var aq = Vector512<float>.Zero;
            for (int i = 0; i < nin; i += 16)
            {
                int n = Math.Min(16, nin - i);
                var v = Vector512<float>.Zero;
                for (int z = 0; z < nz; z++) v = Vector512.FusedMultiplyAdd(Vector512.Create(nzc[z]), Load(nzw[z] + i, n), v);
                Vector512.Store(v, qr + i);
                aq = Vector512.FusedMultiplyAdd(v, v, aq);
                // At most 64 float terms per lane before the total moves to double.
                if ((i & 1023) == 1008) { sq += Vector512.Sum(aq); aq = Vector512<float>.Zero; }
            }
            bq[row] = cb; bq[s + row] = cba; bq[2 * s + row] = squares ? sq + Vector512.Sum(aq) : 0;
        }
    }

    /// <summary>
    /// out[row] = Σ_i q_i·c_i and out[s + row] = Σ_i |q_i|·r_i for the folded rows q (stride ld, zero past n), four rows per
    /// pass over c and r; each lane sums at most 64 terms in float before its total moves to double.
    /// </summary>
    private static void FoldDots(float* q, int ld, int s, float* c, float* r, int n, double* dots)
    {
        for (int row0 = 0; row0 < s; row0 += 4)
        {
            int rows = Math.Min(4, s - row0);
            float* q0 = q + (long)row0 * ld, q1 = rows > 1 ? q0 + ld : q0, q2 = rows > 2 ? q0 + 2L * ld : q0, q3 = rows > 3 ? q0 + 3L * ld : q0;
            double d0 = 0, d1 = 0, d2 = 0, d3 = 0, e0 = 0, e1 = 0, e2 = 0, e3 = 0;
            for (int i0 = 0; i0 < n; i0 += 1024)
            {
                int i1 = Math.Min(n, i0 + 1024);
                var a0 = Vector512<float>.Zero; var a1 = a0; var a2 = a0; var a3 = a0; var b0 = a0; var b1 = a0; var b2 = a0; var b3 = a0;
                for (int i = i0; i < i1; i += 16)
                {
                    int m = Math.Min(16, i1 - i);
                    var cv = m == 16 ? Vector512.Load(c + i) : Load(c + i, m); var rv = m == 16 ? Vector512.Load(r + i) : Load(r + i, m);
                    var v0 = Vector512.Load(q0 + i); var v1 = Vector512.Load(q1 + i); var v2 = Vector512.Load(q2 + i); var v3 = Vector512.Load(q3 + i);
                    a0 = Vector512.FusedMultiplyAdd(v0, cv, a0); b0 = Vector512.FusedMultiplyAdd(Vector512.Abs(v0), rv, b0);
                    a1 = Vector512.FusedMultiplyAdd(v1, cv, a1); b1 = Vector512.FusedMultiplyAdd(Vector512.Abs(v1), rv, b1);
                    a2 = Vector512.FusedMultiplyAdd(v2, cv, a2); b2 = Vector512.FusedMultiplyAdd(Vector512.Abs(v2), rv, b2);
                    a3 = Vector512.FusedMultiplyAdd(v3, cv, a3); b3 = Vector512.FusedMultiplyAdd(Vector512.Abs(v3), rv, b3);
                }
                d0 += Vector512.Sum(a0); d1 += Vector512.Sum(a1); d2 += Vector512.Sum(a2); d3 += Vector512.Sum(a3);
                e0 += Vector512.Sum(b0); e1 += Vector512.Sum(b1); e2 += Vector512.Sum(b2); e3 += Vector512.Sum(b3);
            }
            dots[row0] = d0; dots[s + row0] = e0;
            if (rows > 1) { dots[row0 + 1] = d1; dots[s + row0 + 1] = e1; }
            if (rows > 2) { dots[row0 + 2] = d2; dots[s + row0 + 2] = e2; }
            if (rows > 3) { dots[row0 + 3] = d3; dots[s + row0 + 3] = e3; }
        }
    }

    /// <summary>The generic rule when the output is not produced by a Linear: C⁺l + C⁻u ∓ (ρ·|C|·max(|l|, |u|) + α).</summary>
    private static void SpecOnBox(ChainRun run, Spec spec, float* lower, float* upper)
    {
        int b = run.Batch, s = spec.Count, last = run.Plan.Layers.Length - 1, n = run.Plan.Layers[last].OutSize;
        float* lo = run.Lo[last].Get(0), hi = run.Hi[last].Get(0);
        for (int e = 0; e < b; e++)
        {
            float* ce = SpecRows(spec, e);
            for (int row = 0; row < s; row++)
            {
                double l = 0, u = 0, m = 0;
                for (int j = 0; j < n; j++)
                {
                    double cj = ce[(long)row * n + j], lj = lo[(long)e * n + j], hj = hi[(long)e * n + j];
                    if (cj >= 0) { l += cj * lj; u += cj * hj; } else { l += cj * hj; u += cj * lj; }
                    m += Math.Abs(cj) * Math.Max(Math.Abs(lj), Math.Abs(hj));
                }
                double mag = m * run.Rho + run.Alpha;
                lower[(long)e * s + row] = (float)(l - mag);
                upper[(long)e * s + row] = (float)(u + mag);
            }
        }
        GC.KeepAlive(spec);
    }

    private static BoundResult Crown(ChainRun run, Spec? spec, bool refine)
    {
        var plan = run.Plan;
        var layers = plan.Layers;
        var o = run.Options;
        // An activation on the input itself is relaxed over the input box (the generic path never refines the input).
        if (layers[0] is ActLayer) Relaxation(run, 0);
        if (refine) BuildTransfers(run);
        for (int k = 0; k < plan.LastAct; k++)
        {
            IbpLayer(run, k);
            if (layers[k + 1] is ActLayer act)
            {
                if (refine && act.RefineInput) RefineValue(run, k, o.SparseIntermediates);
                Relaxation(run, k + 1);
            }
        }
        int b = run.Batch, nout = layers[^1].OutSize, s = spec?.Count ?? nout;
        bool upper = o.ComputeUpper;
        float* identity = null;
        if (spec == null)
        {
            identity = run.C.Get((long)nout * nout);
            new Span<float>(identity, nout * nout).Clear();
            for (int i = 0; i < nout; i++) identity[(long)i * nout + i] = 1f;
        }
        float* lower = run.OutLo.Get((long)b * s), up = run.OutHi.Get((long)b * s);
        CpuThreads.For(b, 1, (e0, e1) =>
        {
            var w = run.RentWorker();
            try
            {
                float* plb = w.Scratch.Get(2 * MaxPairs);
                for (int e = e0; e < e1; e++)
                    {
                        float* rows = spec == null ? identity : SpecRows(spec, e);
                        for (int r0 = 0; r0 < s; r0 += MaxPairs)
                        {
                            int cnt = Math.Min(MaxPairs, s - r0);
                            w.Final(e, rows + (long)r0 * nout, cnt, upper, plb);
                            for (int r = 0; r < cnt; r++)
                            {
                                lower[(long)e * s + r0 + r] = plb[r];
                                up[(long)e * s + r0 + r] = upper ? -plb[cnt + r] : float.PositiveInfinity;
                            }
                        }
                    }
            }
            finally { run.ReturnWorker(w); }
        });
        GC.KeepAlive(spec);
        return new BoundResult(Tensor.FromSpan(new ReadOnlySpan<float>(lower, b * s), [b, s], null),
                               Tensor.FromSpan(new ReadOnlySpan<float>(up, b * s), [b, s], null));
    }

    /// <summary>
    /// The window-to-window matrices (from the live weights) of every convolution that rows starting at a
    /// convolution's neuron pass as windows (ChainBackward): a window stays one while the layer's input window is
    /// smaller than the image and the matrix is small; beyond that the rows continue as full rows.
    /// </summary>
    private static void BuildTransfers(ChainRun run)
    {
        // Entries persist across calls (the same windows every time); their values are rebuilt from the live weights.
        var layers = run.Plan.Layers;
        for (int a = 1; a < layers.Length; a++)
        {
            if (layers[a] is not ActLayer { RefineInput: true }) continue;
            int v = a - 1, k, wh, ww;
            if (layers[v] is ConvLayer g0) { k = v - 1; wh = (g0.KH - 1) * g0.DH + 1; ww = (g0.KW - 1) * g0.DW + 1; }
            else if (layers[v] is ElemLayer or ActLayer && layers[v].OutShape.Length == 3 && layers[v].OutShape[1] * layers[v].OutShape[2] > 1) { k = v; wh = ww = 1; }
            else continue;
            for (; k >= 0; k--)
            {
                if (layers[k] is DenseLayer) break;
                if (layers[k] is not ConvLayer g) continue;
                int wh2 = (wh - 1) * g.SH + (g.KH - 1) * g.DH + 1, ww2 = (ww - 1) * g.SW + (g.KW - 1) * g.DW + 1;
                if ((wh2 >= g.H && ww2 >= g.Wd) || (long)g.Cout * wh * ww * g.Cin * wh2 * ww2 > MaxTransfer) break;
                run.Transfer.TryGetValue((k, wh, ww), out var old);
                if (old.Call != run.CallId)
                    run.Transfer[(k, wh, ww)] = (ChainKernels.TransferMatrix(g, Ptr(g.W), wh, ww, old.M), run.CallId);
                GC.KeepAlive(g);
                wh = wh2; ww = ww2;
            }
        }
    }

    /// <summary>Largest window-to-window matrix (floats) worth forming; larger windows continue as full rows.</summary>
    private const long MaxTransfer = 1 << 22;

    /// <summary>CROWN bounds (intersected with IBP) for the neurons of value k that IBP leaves unstable (all with dense intermediates).</summary>
    private static void RefineValue(ChainRun run, int k, bool sparse)
    {
        int n = run.Plan.Layers[k].OutSize;
        float* lo = run.Lo[k].Get(0), hi = run.Hi[k].Get(0);
        CpuThreads.For(run.Batch, 1, (e0, e1) =>
        {
            var w = run.RentWorker();
            try
            {
                int* rows = w.Rows.Get(n);
                float* plb = w.Scratch.Get(2 * MaxPairs);
                for (int e = e0; e < e1; e++)
                    {
                        float* l = lo + (long)e * n, h = hi + (long)e * n;
                        int m = 0;
                        for (int i = 0; i < n; i++) if (!sparse || (l[i] < 0 && h[i] > 0)) rows[m++] = i;
                        for (int r0 = 0; r0 < m; r0 += MaxPairs)
                        {
                            int cnt = Math.Min(MaxPairs, m - r0);
                            w.Refine(e, k, rows + r0, cnt, plb, plb + MaxPairs);
                            for (int r = 0; r < cnt; r++)
                            {
                                int i = rows[r0 + r];
                                l[i] = Math.Max(plb[r], l[i]);
                                h[i] = Math.Min(-plb[MaxPairs + r], h[i]);
                            }
                        }
                    }
            }
            finally { run.ReturnWorker(w); }
        });
    }

    /// <summary>
    /// The relaxation of activation layer a for every example, from the bounds of its input (ActivationOps.Bounds.cs):
    /// class 0 (zero: dead ReLU), 1 (exact: stable, slope d), 2 (unstable: lower slope dl, chord du with intercept bu).
    /// </summary>
    private static void Relaxation(ChainRun run, int a)
    {
        var act = (ActLayer)run.Plan.Layers[a];
        int n = act.InSize;
        long total = (long)run.Batch * n;
        float* lo = a == 0 ? run.BoxLo.Get(0) : run.Lo[a - 1].Get(0), hi = a == 0 ? run.BoxHi.Get(0) : run.Hi[a - 1].Get(0);
        byte* cls = run.Cls[a].Get(total);
        float* dl = run.Dl[a].Get(total), du = run.Du[a].Get(total), bu = run.Bu[a].Get(total);
        int* alive = run.Alive[a].Get(total);
        if (run.AliveCount[a] == null || run.AliveCount[a].Length < run.Batch) { run.AliveCount[a] = new int[run.Batch]; run.ExactCount[a] = new int[run.Batch]; }
        float s = act.Slope;
        for (long i = 0; i < total; i++)
        {
            float l = lo[i], u = hi[i];
            if (l < 0 && u > 0)
            {
                float k, b;
                if (s == 0) { k = u / (u - l); b = -k * l; }
                else { k = (u - l * s) / (u - l); b = l * (s - k); }
                cls[i] = 2; du[i] = k; bu[i] = b;
                dl[i] = (u >= -l ? 1f : 0f) * (1f - s) + s;
            }
            else
            {
                float d = l >= 0 ? 1f : s;
                cls[i] = (byte)(d == 0 ? 0 : 1);
                dl[i] = du[i] = d; bu[i] = 0f;
            }
        }
        // The elements a relaxation keeps, exact ones first (each part ascending): the order every compacted row set uses.
        for (int e = 0; e < run.Batch; e++)
        {
            int m = 0;
            byte* ce = cls + (long)e * n;
            int* ae = alive + (long)e * n;
            for (int i = 0; i < n; i++) if (ce[i] == 1) ae[m++] = i;
            run.ExactCount[a][e] = m;
            for (int i = 0; i < n; i++) if (ce[i] == 2) ae[m++] = i;
            run.AliveCount[a][e] = m;
        }
    }
}
