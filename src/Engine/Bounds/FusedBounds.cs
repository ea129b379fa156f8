using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Differentiable tensor-level wrappers of the fused CROWN kernels (<see cref="IKernels.BoundRelax"/>,
/// <see cref="IKernels.BoundDot"/>): each reads the coefficient tensor once instead of once per element-wise op.
/// The gradient rules are written with tensor ops (they run only for alpha-CROWN and certified training).
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
        if (a.Device == Device.Cpu && bias != null)
        {
            // One node for both outputs: its backward reads a once for the gradients of y and of the bias.
            var zero0 = Tensor.Zeros([1, 1, 1], a.Device);
            GradRecorder.RecordMulti([y, bias], [a3, aL3, aU3, bL3 ?? zero0, bU3 ?? zero0],
                (g, ins) => FusedBoundsCpu.RelaxBackward(g[0], g[1], ins, bL3 != null, bU3 != null, b, r, n), "BoundRelax");
            return (y.Reshape(a.Dims), bias, mag);
        }
        if (a.Device == Device.Cpu)
        {
            GradRecorder.RecordMulti([y], [a3, aL3, aU3, Tensor.Zeros([1, 1, 1], a.Device), Tensor.Zeros([1, 1, 1], a.Device)],
                (g, ins) => FusedBoundsCpu.RelaxBackward(g[0], null, ins, false, false, b, r, n), "BoundRelax");
            return (y.Reshape(a.Dims), bias, mag);
        }
        y = GradRecorder.Record(y, [a3, aL3, aU3], (g, ins) =>
        {
            var (av, lo, up) = (ins[0].Detach(), ins[1].Detach(), ins[2].Detach());
            var pos = Tensor.Ge(av, 0f);
            return [ins[0].RequiresGrad ? g * Tensor.Where(pos, lo, up) : null,
                    ins[1].RequiresGrad ? (g * av * pos).SumToShape(lo.Dims) : null,
                    ins[2].RequiresGrad ? (g * av * (1f - pos)).SumToShape(up.Dims) : null];
        }, "BoundRelax");
        // The zero stand-in for a missing bias is made only when a gradient is recorded (on a GPU it is a launch).
        if (bias != null && GradMode.IsEnabled && (a3.RequiresGrad || bL3 is { RequiresGrad: true } || bU3 is { RequiresGrad: true }))
        {
            var zero = Tensor.Zeros([1, 1, 1], a.Device);
            Tensor[] ins = [a3, bL3 ?? zero, bU3 ?? zero];
            bias = GradRecorder.Record(bias, ins, (g, xs) =>
            {
                var av = xs[0].Detach();
                var pos = Tensor.Ge(av, 0f);
                var g3 = g.Reshape(b, r, 1);
                return [xs[0].RequiresGrad ? g3 * Tensor.Where(pos, xs[1].Detach(), xs[2].Detach()) : null,
                        xs[1].RequiresGrad ? (g3 * av * pos).SumToShape(xs[1].Dims) : null,
                        xs[2].RequiresGrad ? (g3 * av * (1f - pos)).SumToShape(xs[2].Dims) : null];
            }, "BoundRelaxBias");
        }
        return (y.Reshape(a.Dims), bias, mag);
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
        value = GradRecorder.Record(value, ins, (g, xs) =>
        {
            if (xs[0].Device == Device.Cpu) return FusedBoundsCpu.DotBackward(g, xs, eps, b, r, n);
            var av = xs[0].Detach();
            var g3 = g.Reshape(b, r, 1);
            var grads = new Tensor?[xs.Length];
            if (xs[0].RequiresGrad)
            {
                var spread = xs.Length > 2 ? av.Sign() * xs[2].Detach() : av.Sign() * eps;
                grads[0] = g3 * (xs[1].Detach() - spread);
            }
            if (xs[1].RequiresGrad) grads[1] = (g3 * av).SumToShape(xs[1].Dims);
            if (xs.Length > 2 && xs[2].RequiresGrad) grads[2] = -(g3 * av.Abs()).SumToShape(xs[2].Dims);
            return grads;
        }, "BoundDot");
        return (value, mag);
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
