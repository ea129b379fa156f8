using System.Runtime.Intrinsics;
using Engine.Autograd;
using Engine.Cpu;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Fusions of the element-wise parts of the IBP affine rule (<see cref="BoundRules.Affine"/>): the step from an
/// interval to the centre and the rounding-widened radius (alone, or fused with the ReLU before it), and the step from
/// the two products back to an interval. Each is one pass (and one pass backward) instead of the eight and four tensor
/// ops they replace, and each computes the same float32 operations in the same order, so the bounds are bit-identical
/// to the composition. They run on every device through the kernel interface (<see cref="IKernels.IbpCenterMargin"/>,
/// <see cref="IKernels.IbpRelu"/>, <see cref="IKernels.IbpCombine"/> and their backward members); the lazy combine and
/// the ReLU of a combine (IBP-only computations) are the CPU's.
/// </summary>
internal static unsafe class IbpFused
{
    /// <summary>True when the fusions apply to these tensors.</summary>
    public static bool Applies(Tensor t) => t.Device == Device.Cpu;

    /// <summary>
    /// <see cref="Combine"/> with the bias's rounding margin, through the kernel interface on any device
    /// (<see cref="IKernels.IbpCombine"/>: |b|·ρ + abs per element, b signed or not, then center ∓ (rad + margin); backward
    /// <see cref="IKernels.IbpCombineBackward"/>): differentiable in center and rad (the margin is detached). Null when
    /// |b| does not broadcast over the output as one run of channels, or the operands do not fit (the caller composes).
    /// Bit-identical to the composition.
    /// </summary>
    public static Interval? CombineWithBias(Tensor center, Tensor rad, Tensor? bias, float rho, float abs)
    {
        if (!ShapeUtil.SameShape(center.Dims, rad.Dims) || center.Device != rad.Device
            || center.Rank < 1 || bias != null && bias.Device != center.Device) return null;
        int channels = 1, inner = 1;
        if (bias != null && !ChannelRun(bias.Dims, center.Dims[1..], out channels, out inner)) return null;
        var lo = center.NewEmpty(center.Dims);
        var hi = center.NewEmpty(center.Dims);
        int n = center.Numel;
        center.K.IbpCombine(center.Buf, rad.Buf, bias?.Buf ?? default, channels, inner, rho, abs, lo.Buf, hi.Buf, n);
        GradRecorder.RecordMulti([lo, hi], [center, rad], (g, ins) => CombineBackward(g[0], g[1], ins, n), "IbpCombine");
        return new Interval(lo, hi);
    }

    /// <summary>The gradients of center and rad from those of lower and upper (d/dcenter = gl + gh, d/drad = gh − gl).</summary>
    private static Tensor?[] CombineBackward(Tensor? gl, Tensor? gh, Tensor[] ins, int n)
    {
        if (gl == null) return [gh, gh];
        if (gh == null) return [gl, -gl];
        var gc = ins[0].RequiresGrad ? gl.NewEmpty(gl.Dims) : null;
        var gr = ins[1].RequiresGrad ? gl.NewEmpty(gl.Dims) : null;
        if (gc != null || gr != null) gl.K.IbpCombineBackward(gl.Buf, gh.Buf, gc?.Buf ?? default, gr?.Buf ?? default, n);
        return [gc, gr];
    }

    /// <summary>
    /// Whether a tensor of shape <paramref name="bias"/> broadcasts over <paramref name="perExample"/> (right-aligned)
    /// as one run of dimensions: its entry for an element is then (flat index / inner) mod channels.
    /// </summary>
    internal static bool ChannelRun(int[] bias, int[] perExample, out int channels, out int inner)
    {
        channels = 1; inner = 1;
        if (bias.Length > perExample.Length) return false;
        int shift = perExample.Length - bias.Length, first = -1, last = -1;
        for (int d = 0; d < bias.Length; d++)
        {
            if (bias[d] == 1) continue;
            if (bias[d] != perExample[d + shift] || first >= 0 && last != d + shift - 1) return false;
            if (first < 0) first = d + shift;
            last = d + shift;
        }
        if (first < 0) return true;
        for (int d = first; d <= last; d++) channels *= perExample[d];
        for (int d = last + 1; d < perExample.Length; d++) inner *= perExample[d];
        return true;
    }

    /// <summary>
    /// c = (l + u)·0.5 and m = r·(1 + ρ) + |c|·ρ with r = (u − l)·0.5. Differentiable in l and u through c and r
    /// (the |c|·ρ margin term is detached, as in the composition).
    /// </summary>
    public static (Tensor C, Tensor M) CenterMargin(Tensor l, Tensor u, float rho)
    {
        var c = l.NewEmpty(l.Dims);
        var m = l.NewEmpty(l.Dims);
        int n = l.Numel;
        l.K.IbpCenterMargin(l.Buf, u.Buf, c.Buf, m.Buf, n, rho);
        GradRecorder.RecordMulti([c, m], [l, u], (g, ins) =>
        {
            // dc/dl = dc/du = 0.5; dm/du = −dm/dl = 0.5·(1 + ρ).
            if ((g[0] ?? g[1]) is not { } any) return [null, null];
            var gl = ins[0].RequiresGrad ? ins[0].NewEmpty(ins[0].Dims) : null;
            var gu = ins[1].RequiresGrad ? ins[1].NewEmpty(ins[1].Dims) : null;
            if (gl != null || gu != null)
                any.K.IbpCenterMarginBackward(g[0]?.Buf ?? default, g[1]?.Buf ?? default, gl?.Buf ?? default, gu?.Buf ?? default, n, rho);
            return [gl, gu];
        }, "IbpCenterMargin");
        return (c, m);
    }

    /// <summary>
    /// The IBP ReLU rule (l, u) → (relu(l), relu(u)) fused with the step the next affine layer starts with,
    /// <see cref="CenterMargin"/> of the result: one pass writes all four, and the returned interval carries (c, m) for
    /// <see cref="BoundRules.Affine"/> to use instead of reading the bounds again. The bounds and (c, m) are
    /// bit-identical to relu followed by CenterMargin. Differentiable in l and u through all four outputs. With
    /// <paramref name="throughCombine"/> (the bounds serve IBP alone) and x made by <see cref="Combine"/> or
    /// <see cref="CombineLazy"/>, <see cref="ReluOfCombine"/> instead.
    /// </summary>
    public static Interval Relu(Interval x, float rho, bool throughCombine = false)
    {
        // Straight after Combine in an IBP-only computation: compute from its centre and radius, and send the gradient
        // back to them (any other use of the pre-activation bounds still goes through Combine's own node).
        if (throughCombine && x.CombinedFrom is { } source) return ReluOfCombine(source, rho, x);
        Tensor l = x.Lower, u = x.Upper;
        var lo = l.NewEmpty(l.Dims);
        var hi = l.NewEmpty(l.Dims);
        var c = l.NewEmpty(l.Dims);
        var m = l.NewEmpty(l.Dims);
        int n = l.Numel;
        l.K.IbpRelu(l.Buf, u.Buf, lo.Buf, hi.Buf, c.Buf, m.Buf, n, rho);
        GradRecorder.RecordMulti([lo, hi, c, m], [l, u], (g, ins) =>
        {
            if (g[0] == null && g[1] == null && g[2] == null && g[3] == null) return [null, null];
            var o0 = ins[0].RequiresGrad ? ins[0].NewEmpty(ins[0].Dims) : null;
            var o1 = ins[1].RequiresGrad ? ins[1].NewEmpty(ins[1].Dims) : null;
            if (o0 != null || o1 != null)
                ins[0].K.IbpReluBackward(ins[0].Detach().Buf, ins[1].Detach().Buf, g[0]?.Buf ?? default, g[1]?.Buf ?? default, g[2]?.Buf ?? default,
                                         g[3]?.Buf ?? default, o0?.Buf ?? default, o1?.Buf ?? default, n, rho);
            return [o0, o1];
        }, "IbpRelu");
        return new Interval(lo, hi) { Prepared = new PreparedCenter(c, m, rho) };
    }

    /// <summary>
    /// lower = center − (rad + extra), upper = center + (rad + extra), where extra (detached) repeats with period
    /// extra.Numel over the flat output. Differentiable in center and rad.
    /// </summary>
    public static Interval Combine(Tensor center, Tensor rad, Tensor extra)
    {
        if (!ShapeUtil.SameShape(center.Dims, rad.Dims) || center.Numel % Math.Max(1, extra.Numel) != 0 || extra.Numel == 0)
            throw new InvalidOperationException($"IbpFused.Combine: center {ShapeUtil.Format(center.Dims)}, radius {ShapeUtil.Format(rad.Dims)} and margin {ShapeUtil.Format(extra.Dims)} do not fit.");
        var lo = center.NewEmpty(center.Dims);
        var hi = center.NewEmpty(center.Dims);
        int n = center.Numel, period = extra.Numel;
        float* pc = Ptr(center), pr = Ptr(rad), pe = Ptr(extra), pl = Ptr(lo), ph = Ptr(hi);
        int rows = n / period;
        CpuThreads.For(rows, Math.Max(1, Simd.MinChunk / period), (s, e) =>
        {
            for (int row = s; row < e; row++)
            {
                long o = (long)row * period;
                float* c = pc + o, r = pr + o, l = pl + o, h = ph + o;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; j <= period - 16; j += 16)
                    {
                        var cc = Vector512.Load(c + j);
                        var rr = Vector512.Load(r + j) + Vector512.Load(pe + j);
                        (cc - rr).Store(l + j);
                        (cc + rr).Store(h + j);
                    }
                for (; j < period; j++)
                {
                    float rr = r[j] + pe[j];
                    l[j] = c[j] - rr;
                    h[j] = c[j] + rr;
                }
            }
        });
        GC.KeepAlive(center); GC.KeepAlive(rad); GC.KeepAlive(extra);
        GradRecorder.RecordMulti([lo, hi], [center, rad], (g, ins) => CombineBackward(g[0], g[1], ins, n), "IbpCombine");
        return new Interval(lo, hi) { CombinedFrom = new CombineSource(center, rad, extra) };
    }

    /// <summary>
    /// <see cref="Combine"/> whose bounds are made only when read (IBP-only computations): a following
    /// <see cref="Relu"/> computes from center, rad and extra directly.
    /// </summary>
    public static Interval CombineLazy(Tensor center, Tensor rad, Tensor extra)
    {
        if (!ShapeUtil.SameShape(center.Dims, rad.Dims) || center.Numel % Math.Max(1, extra.Numel) != 0 || extra.Numel == 0)
            throw new InvalidOperationException($"IbpFused.Combine: center {ShapeUtil.Format(center.Dims)}, radius {ShapeUtil.Format(rad.Dims)} and margin {ShapeUtil.Format(extra.Dims)} do not fit.");
        return Interval.Lazy(center.Dims, () => { var iv = Combine(center, rad, extra); return (iv.Lower, iv.Upper); }, new CombineSource(center, rad, extra));
    }

    /// <summary>
    /// <see cref="Relu"/> of <see cref="Combine"/>(center, rad, extra) without writing either's bounds: one pass from
    /// (center, rad, extra) to the next affine rule's (c, m), the same float operations in the same order (so the same
    /// bits), and one pass back to (center, rad). The ReLU's bounds are made only if read (from <paramref name="pre"/>'s).
    /// </summary>
    private static Interval ReluOfCombine(CombineSource source, float rho, Interval pre)
    {
        var (center, rad, extra) = (source.Center, source.Rad, source.Extra);
        var c = center.NewEmpty(center.Dims);
        var m = center.NewEmpty(center.Dims);
        int n = center.Numel, period = extra.Numel, rows = n / period;
        float* pc = Ptr(center), pr = Ptr(rad), pe = Ptr(extra), oc = Ptr(c), om = Ptr(m);
        float k = 1 + rho;
        CpuThreads.For(rows, Math.Max(1, Simd.MinChunk / period), (s, e) =>
        {
            var zero = Vector512<float>.Zero; var half = Vector512.Create(0.5f); var vk = Vector512.Create(k); var vr = Vector512.Create(rho);
            for (int row = s; row < e; row++)
            {
                long o = (long)row * period;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                    for (; j <= period - 16; j += 16)
                    {
                        var cc = Vector512.Load(pc + o + j);
                        var rr = Vector512.Load(pr + o + j) + Vector512.Load(pe + j);
                        var a = Vector512.Max(cc - rr, zero);
                        var b = Vector512.Max(cc + rr, zero);
                        var mid = (a + b) * half;
                        mid.Store(oc + o + j);
                        ((b - a) * half * vk + Vector512.Abs(mid) * vr).Store(om + o + j);
                    }
                for (; j < period; j++)
                {
                    float rr = pr[o + j] + pe[j];
                    float a = MathF.Max(pc[o + j] - rr, 0f), b = MathF.Max(pc[o + j] + rr, 0f);
                    float mid = (a + b) * 0.5f;
                    oc[o + j] = mid;
                    om[o + j] = (b - a) * 0.5f * k + MathF.Abs(mid) * rho;
                }
            }
        });
        GC.KeepAlive(center); GC.KeepAlive(rad); GC.KeepAlive(extra);
        GradRecorder.RecordMulti([c, m], [center, rad], (g, ins) =>
        {
            // d/dl = 0.5·gc − 0.5·(1 + ρ)·gm where l > 0, d/du likewise with +; then Combine's rule: center gets
            // d/dl + d/du, rad d/du − d/dl (l and u recomputed exactly as Combine computes them).
            var o0 = ins[0].RequiresGrad ? ins[0].NewEmpty(ins[0].Dims) : null;
            var o1 = ins[1].RequiresGrad ? ins[1].NewEmpty(ins[1].Dims) : null;
            float* gc = g[0] == null ? null : Ptr(g[0]!), gm = g[1] == null ? null : Ptr(g[1]!);
            float* p0 = o0 == null ? null : Ptr(o0), p1 = o1 == null ? null : Ptr(o1);
            float hk = 0.5f * k;
            CpuThreads.For(rows, Math.Max(1, Simd.MinChunk / period), (s, e) =>
            {
                var vh = Vector512.Create(0.5f); var vk = Vector512.Create(hk); var zero = Vector512<float>.Zero;
                for (int row = s; row < e; row++)
                {
                    long o = (long)row * period;
                    int j = 0;
                    if (Vector512.IsHardwareAccelerated && gc != null && gm != null && p0 != null && p1 != null)
                        for (; j <= period - 16; j += 16)
                        {
                            var cc = Vector512.Load(pc + o + j);
                            var rr = Vector512.Load(pr + o + j) + Vector512.Load(pe + j);
                            var a = Vector512.Load(gc + o + j) * vh; var b = Vector512.Load(gm + o + j) * vk;
                            var dlo = (a - b) & Vector512.GreaterThan(cc - rr, zero);
                            var dhi = (a + b) & Vector512.GreaterThan(cc + rr, zero);
                            (dlo + dhi).Store(p0 + o + j);
                            (dhi - dlo).Store(p1 + o + j);
                        }
                    for (; j < period; j++)
                    {
                        float rr = pr[o + j] + pe[j], cv = pc[o + j];
                        float a = gc == null ? 0f : gc[o + j] * 0.5f, b = gm == null ? 0f : gm[o + j] * hk;
                        float dlo = cv - rr > 0 ? a - b : 0f, dhi = cv + rr > 0 ? a + b : 0f;
                        if (p0 != null) p0[o + j] = dlo + dhi;
                        if (p1 != null) p1[o + j] = dhi - dlo;
                    }
                }
            });
            GC.KeepAlive(g); GC.KeepAlive(ins); GC.KeepAlive(extra);
            return [o0, o1];
        }, "IbpReluOfCombine");
        return Interval.Lazy(center.Dims, () => (pre.Lower.Relu(), pre.Upper.Relu()), prepared: new PreparedCenter(c, m, rho));
    }

    private static float* Ptr(Tensor t) => ((CpuStorage)t.Storage).RawPointer + t.Offset;
}
