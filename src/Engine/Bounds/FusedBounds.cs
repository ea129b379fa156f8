using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Differentiable tensor-level wrappers of the fused CROWN kernels (<see cref="IKernels.BoundRelax"/>,
/// <see cref="IKernels.BoundDot"/>): each reads the coefficient tensor once instead of once per element-wise op, and so
/// do their gradient rules (<see cref="IKernels.BoundRelaxBackward"/>, <see cref="IKernels.BoundDotBackward"/>; they
/// run only for alpha-CROWN and certified training), on every device.
/// </summary>
internal static class FusedBounds
{
    /// <summary>
    /// A·relaxation: returns y = A ⊙ (A ≥ 0 ? aL : aU) ([B, R, ...] like A), and, when a bias is given, the constant
    /// term Σ A ⊙ (A ≥ 0 ? bL : bU) [B, R] with its magnitude (detached). Slopes and biases are [B, ...] (shared by the
    /// rows) or [B, R, ...]. Null when an operand has another shape (the caller then uses the element-wise ops).
    /// With <paramref name="into"/> (a running constant term [B, R] and its magnitude that the caller owns; only where no
    /// gradient is recorded) the bias and magnitude are added into those tensors in place, and they are returned.
    /// </summary>
    public static (Tensor Y, Tensor? Bias, Tensor? Mag)? Relax(Tensor a, Tensor aL, Tensor? bL, Tensor aU, Tensor? bU, (Tensor Bias, Tensor Mag)? into = null)
    {
        int b = a.Dims[0], r = a.Dims[1];
        if (b * r == 0) return null;
        int n = a.Numel / (b * r);
        int RowsOf(Tensor? t) => t == null ? 1 : t.Numel == b * n && t.Dims[0] == b ? 1 : t.Numel == a.Numel && t.Dims[0] == b && t.Dims[1] == r ? r : -1;
        int rl = RowsOf(aL), ru = RowsOf(aU), rbl = RowsOf(bL), rbu = RowsOf(bU);
        if (rl < 0 || ru < 0 || rbl < 0 || rbu < 0 || !SameDevice(a, aL, bL, aU, bU)) return null;
        var a3 = a.Reshape(b, r, n);
        var aL3 = aL.Reshape(b, rl, n); var aU3 = aU.Reshape(b, ru, n);
        var bL3 = bL?.Reshape(b, rbl, n); var bU3 = bU?.Reshape(b, rbu, n);
        bool withBias = bL != null || bU != null;
        var y = a.NewEmpty([b, r, n]);
        bool accumulate = withBias && Accumulates(into, a, b, r, a3, aL3, aU3, bL3, bU3);
        Tensor? bias = !withBias ? null : accumulate ? into!.Value.Bias : a.NewEmpty([b, r]);
        Tensor? mag = !withBias ? null : accumulate ? into!.Value.Mag : a.NewEmpty([b, r]);
        a.K.BoundRelax(a3.Buf, aL3.Buf, rl, bL3?.Buf ?? default, rbl, aU3.Buf, ru, bU3?.Buf ?? default, rbu, y.Buf,
                       bias?.Buf ?? default, mag?.Buf ?? default, b, r, n, accumulate);
        if (accumulate) return (y.Reshape(a.Dims), bias, mag);
        // One node for both outputs: its backward kernel reads a once for the gradients of y and of the bias. An absent
        // bias's stand-in (a shared scalar: no launch) is never read.
        var zero = Tensor.ScalarOperand(0f, a.Device);
        Tensor[] ins = [a3, aL3, aU3, bL3 ?? zero, bU3 ?? zero];
        bool hasLow = bL3 != null, hasUp = bU3 != null;
        if (bias != null)
            GradRecorder.RecordMulti([y, bias], ins, (g, xs) => RelaxBackward(g[0], g[1], xs, hasLow, hasUp, b, r, n), "BoundRelax");
        else
            GradRecorder.RecordMulti([y], ins, (g, xs) => RelaxBackward(g[0], null, xs, false, false, b, r, n), "BoundRelax");
        return (y.Reshape(a.Dims), bias, mag);
    }

    /// <summary>
    /// Backward of <see cref="Relax"/> (<see cref="IKernels.BoundRelaxBackward"/>) with gy [B, R, n] (gradient of y,
    /// or null) and gb [B, R] (of the bias, or null); ins = [a, lowSlope, upSlope, lowBias, upBias] ([B, 1 or R, n]; a
    /// bias absent when its flag is false). Returns gradients for the inputs that require them.
    /// </summary>
    private static Tensor?[] RelaxBackward(Tensor? gy, Tensor? gb, Tensor[] ins, bool hasLowBias, bool hasUpBias, int batch, int rows, int n)
    {
        var a = ins[0];
        var ga = a.RequiresGrad ? a.NewEmpty(a.Dims) : null;
        Tensor? Grad(int i, bool present, Tensor? from) => present && from != null && ins[i].RequiresGrad ? ins[i].NewEmpty(ins[i].Dims) : null;
        var gls = Grad(1, true, gy); var gus = Grad(2, true, gy);
        var glb = Grad(3, hasLowBias, gb); var gub = Grad(4, hasUpBias, gb);
        if (ga == null && gls == null && gus == null && glb == null && gub == null) return [null, null, null, null, null];
        a.K.BoundRelaxBackward(a.Buf, ins[1].Buf, ins[1].Dims[1], hasLowBias ? ins[3].Buf : default, hasLowBias ? ins[3].Dims[1] : 1,
                               ins[2].Buf, ins[2].Dims[1], hasUpBias ? ins[4].Buf : default, hasUpBias ? ins[4].Dims[1] : 1,
                               gy?.Buf ?? default, gb?.Buf ?? default, ga?.Buf ?? default, gls?.Buf ?? default, gus?.Buf ?? default,
                               glb?.Buf ?? default, gub?.Buf ?? default, batch, rows, n);
        return [ga, gls, gus, glb, gub];
    }

    /// <summary>
    /// Row dot products: value[b, r] = Σ A ⊙ c − spread, mag = Σ |A| ⊙ |c| + spread (detached), with spread =
    /// Σ |A| ⊙ radius or eps·Σ |A| (radius null). A is [B, R, ...]; c and radius are one tensor of A's per-row shape
    /// (shared by the batch) or [B, ...] / [B, 1, ...]. Null for other shapes. With <paramref name="into"/> (as for
    /// <see cref="Relax"/>) value and mag are added into those tensors in place, and they are returned.
    /// </summary>
    public static (Tensor Value, Tensor Mag)? Dot(Tensor a, Tensor c, Tensor? radius, float eps, (Tensor Bias, Tensor Mag)? into = null)
    {
        int b = a.Dims[0], r = a.Dims[1];
        if (b * r == 0) return null;
        int n = a.Numel / (b * r);
        int StrideOf(Tensor t) => t.Numel == n ? 0 : t.Numel == b * n && t.Dims[0] == b ? n : -1;
        int sc = StrideOf(c), sr = radius == null ? 0 : StrideOf(radius);
        if (sc < 0 || sr < 0 || !SameDevice(a, c, radius)) return null;
        var a3 = a.Reshape(b, r, n);
        var c3 = c.Reshape(sc == 0 ? 1 : b, 1, n);
        var r3 = radius?.Reshape(sr == 0 ? 1 : b, 1, n);
        bool accumulate = Accumulates(into, a, b, r, a3, c3, r3);
        var value = accumulate ? into!.Value.Bias : a.NewEmpty([b, r]);
        var mag = accumulate ? into!.Value.Mag : a.NewEmpty([b, r]);
        a.K.BoundDot(a3.Buf, c3.Buf, sc, r3?.Buf ?? default, sr, eps, value.Buf, mag.Buf, b, r, n, accumulate);
        if (accumulate) return (value, mag);
        Tensor[] ins = r3 == null ? [a3, c3] : [a3, c3, r3];
        value = GradRecorder.Record(value, ins, (g, xs) => DotBackward(g, xs, eps, b, r, n), "BoundDot");
        return (value, mag);
    }

    /// <summary>
    /// Backward of <see cref="Dot"/> for g [B, R]: d/da = g·(c − sign(a)·radius) (or sign(a)·eps) in one kernel
    /// (<see cref="IKernels.BoundDotBackward"/>); the gradients of c and radius (rarely needed: they are usually data)
    /// use the composition.
    /// </summary>
    private static Tensor?[] DotBackward(Tensor g, Tensor[] xs, float eps, int batch, int rows, int n)
    {
        var grads = new Tensor?[xs.Length];
        var av = xs[0].Detach();
        var g3 = g.Reshape(batch, rows, 1);
        if (xs[0].RequiresGrad)
        {
            var ga = av.NewEmpty(av.Dims);
            int cStride = xs[1].Dims[0] == 1 && batch > 1 ? 0 : n;
            bool withRadius = xs.Length > 2;
            int rStride = withRadius ? (xs[2].Dims[0] == 1 && batch > 1 ? 0 : n) : 0;
            av.K.BoundDotBackward(av.Buf, xs[1].Buf, cStride, withRadius ? xs[2].Buf : default, rStride, eps, g.Buf, ga.Buf, batch, rows, n);
            grads[0] = ga;
        }
        if (xs[1].RequiresGrad) grads[1] = (g3 * av).SumToShape(xs[1].Dims);
        if (xs.Length > 2 && xs[2].RequiresGrad) grads[2] = -(g3 * av.Abs()).SumToShape(xs[2].Dims);
        return grads;
    }

    /// <summary>
    /// ReLU's CROWN relaxation (lower slope, upper slope, upper intercept; each shaped like l) in one kernel
    /// (<see cref="IKernels.ReluRelaxation"/>), bit-identical to ReluOp's element-wise composition. Where a gradient
    /// flows into l or u (certified training) the upper slope and intercept record one backward kernel
    /// (<see cref="IKernels.ReluRelaxationBackward"/>; the lower slope is piecewise constant). Null when l and u do not
    /// fit (the caller composes).
    /// </summary>
    public static ReluRelaxationParts? ReluRelaxation(Tensor l, Tensor u)
    {
        if (l.Device != u.Device || !ShapeUtil.SameShape(l.Dims, u.Dims)) return null;
        var aL = l.NewEmpty(l.Dims); var aU = l.NewEmpty(l.Dims); var bU = l.NewEmpty(l.Dims);
        int n = l.Numel;
        l.K.ReluRelaxation(l.Buf, u.Buf, aL.Buf, aU.Buf, bU.Buf, n);
        GradRecorder.RecordMulti([aU, bU], [l, u], (g, ins) =>
        {
            if (g[0] == null && g[1] == null) return [null, null];
            var gl = ins[0].RequiresGrad ? ins[0].NewEmpty(ins[0].Dims) : null;
            var gu = ins[1].RequiresGrad ? ins[1].NewEmpty(ins[1].Dims) : null;
            var (lv, uv) = (ins[0].Detach(), ins[1].Detach());
            if (gl != null || gu != null)
                lv.K.ReluRelaxationBackward(lv.Buf, uv.Buf, g[0]?.Buf ?? default, g[1]?.Buf ?? default, gl?.Buf ?? default, gu?.Buf ?? default, n);
            return [gl, gu];
        }, "ReluRelaxation");
        return new ReluRelaxationParts(aL, aU, bU);
    }

    /// <summary>
    /// Whether results may be added in place into <paramref name="into"/>: given, [b, r] on a's device, and no gradient
    /// to record (an in-place add would hide the operands from autograd).
    /// </summary>
    private static bool Accumulates((Tensor Bias, Tensor Mag)? into, Tensor a, int b, int r, params Tensor?[] operands)
    {
        if (into is not { } t || GradMode.IsEnabled && (t.Bias.RequiresGrad || operands.Any(o => o is { RequiresGrad: true }))) return false;
        int[] want = [b, r];
        return t.Bias.Device == a.Device && t.Mag.Device == a.Device && ShapeUtil.SameShape(t.Bias.Dims, want) && ShapeUtil.SameShape(t.Mag.Dims, want);
    }

    /// <summary>
    /// CROWN's refined rows merged into IBP's bounds in one kernel (<see cref="IKernels.BoundMerge"/>; index: 2·numel
    /// entries, see there), where no gradient is recorded; null otherwise (the caller composes).
    /// </summary>
    public static Interval? Merge(Tensor ibpLower, Tensor ibpUpper, Tensor rows, int[] index)
    {
        if (GradRecorder.ShouldRecord(ibpLower, ibpUpper) || GradRecorder.ShouldRecord(rows) || !SameDevice(ibpLower, ibpUpper, rows)
            || !ShapeUtil.SameShape(ibpLower.Dims, ibpUpper.Dims)) return null;
        var lower = ibpLower.NewEmpty(ibpLower.Dims);
        var upper = ibpLower.NewEmpty(ibpLower.Dims);
        ibpLower.K.BoundMerge(ibpLower.Buf, ibpUpper.Buf, rows.Buf, rows.Numel, index, lower.Buf, upper.Buf, ibpLower.Numel);
        return new Interval(lower, upper);
    }

    /// <summary>
    /// Signed rows of x [xRows, cols] for codes ±(p + 1) (row p / <paramref name="divisor"/>, negated for a negative
    /// code; 0: a zero row) in one kernel (<see cref="IKernels.BoundSelectRows"/>): [code.Length, cols], and their
    /// absolute values when <paramref name="withAbs"/>. Null where a gradient must flow into x (the caller then
    /// composes, see <see cref="BoundRules.SignedGather"/>).
    /// </summary>
    public static (Tensor Rows, Tensor? Abs)? SelectRows(Tensor x, int[] code, int divisor, bool withAbs)
    {
        if (GradRecorder.ShouldRecord(x) || x.Rank != 2) return null;
        int cols = x.Dims[1];
        var y = x.NewEmpty([code.Length, cols]);
        var abs = withAbs ? x.NewEmpty([code.Length, cols]) : null;
        x.K.BoundSelectRows(x.Buf, x.Dims[0], cols, code, divisor, y.Buf, abs?.Buf ?? default);
        return (y, abs);
    }

    private static bool SameDevice(Tensor a, params Tensor?[] others)
    {
        foreach (var t in others)
            if (t != null && t.Device != a.Device) return false;
        return true;
    }
}

/// <summary>
/// ReLU's relaxation of one pre-activation interval (<see cref="FusedBounds.ReluRelaxation"/>), kept on the interval
/// (<see cref="Interval.ReluRelaxation"/>) for later backward passes over it; <see cref="Unstable"/> (l &lt; 0 &lt; u, as
/// 1 / 0) is made when alpha-CROWN first needs it.
/// </summary>
internal sealed class ReluRelaxationParts(Tensor lowSlope, Tensor upSlope, Tensor upBias)
{
    public Tensor LowSlope { get; } = lowSlope;
    public Tensor UpSlope { get; } = upSlope;
    public Tensor UpBias { get; } = upBias;
    public Tensor? Unstable { get; set; }
}
