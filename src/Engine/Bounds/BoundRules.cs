using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>Shared pieces of the per-op bound rules (Graph/Ops/*.Bounds.cs).</summary>
internal static class BoundRules
{
    /// <summary>The constant tensor of input <paramref name="i"/>; an error naming the op when it is perturbed.</summary>
    public static Tensor Constant(Interval[] inputs, int i, string op, string what)
    {
        if (!inputs[i].IsConstant)
            throw new NotSupportedException($"{op}: bounds need the {what} (input {i}) to be a constant, but it depends on the perturbed input.");
        return inputs[i].Lower;
    }

    /// <summary>Throws unless only input 0 is perturbed.</summary>
    public static void OnlyFirstPerturbed(Interval[] inputs, string op)
    {
        for (int i = 1; i < inputs.Length; i++)
            if (!inputs[i].IsConstant)
                throw new NotSupportedException($"{op}: bounds need inputs after the first to be constants; input {i} depends on the perturbed input.");
    }

    /// <summary>
    /// IBP of an affine map y = f(x) = M x + b (center/radius form): f(c) ± (|M| r). The radius is widened by the
    /// rounding margin ρ·(|M|(|c| + r) + |b|) + abs, folded into the one |M| product. When x is the perturbed input's
    /// own L2 ball, the radius is eps·‖row of M‖₂ instead (exact for the ball), if <paramref name="l2RowNorm"/> is given
    /// (called only then: for boxes it would be work thrown away, e.g. a square of the whole weight per training step).
    /// </summary>
    /// <param name="x">The input interval.</param>
    /// <param name="apply">x ↦ f(x) (with the bias).</param>
    /// <param name="applyAbs">r ↦ |M| r (no bias).</param>
    /// <param name="bias">b (only |b| is read: the margin's; a tensor of magnitudes will do), broadcastable to the output;
    /// null when there is none. Signed is cheaper on a GPU, where the combine kernel takes |b| itself.</param>
    /// <param name="l2RowNorm">Makes ‖row of M‖₂, broadcastable to the output; null to use the box rule for L2 balls too.</param>
    /// <param name="o">Options (rounding margin).</param>
    public static Interval Affine(Interval x, Func<Tensor, Tensor> apply, Func<Tensor, Tensor> applyAbs, Tensor? bias, Func<Tensor>? l2RowNorm, BoundOptions o)
    {
        if (x.IsConstant) return Interval.Constant(apply(x.Lower));
        float rho = o.RoundingRelative;
        Tensor center, radius;
        if (x.Ball is { Norm: PerturbationNorm.L2 } ball && x.BallCenter is { } x0 && l2RowNorm != null)
        {
            center = apply(x0);
            var mag = applyAbs(x0.Detach().Abs());
            if (bias != null) mag = mag + bias.Detach().Abs();
            radius = l2RowNorm() * (ball.Eps * (1 + rho)) + mag * rho + o.RoundingAbsolute;
        }
        else
        {
            // The centre / margin step (or the preceding fused ReLU's) and the combine in one kernel each, forward and
            // backward, on every device: the same float operations as the composition they replace.
            var (c, m) = x.Prepared is { } p && p.Rho == rho ? (p.C, p.M) : IbpFused.CenterMargin(x.Lower, x.Upper, rho);
            center = apply(c);
            radius = applyAbs(m);
            if (IbpFused.Applies(x.Probe))
            {
                // The CPU's combine: with IBP alone the bounds are made only if something reads them (a following ReLU
                // reads center and rad).
                var extra = Margin(bias?.Detach().Abs(), center, o);
                return o.IbpOnly ? IbpFused.CombineLazy(center, radius, extra) : IbpFused.Combine(center, radius, extra);
            }
            if (IbpFused.CombineWithBias(center, radius, bias?.Detach(), rho, o.RoundingAbsolute) is { } combined) return combined;
            radius = bias != null ? radius + (bias.Detach().Abs() * rho + o.RoundingAbsolute) : radius + o.RoundingAbsolute;
        }
        return new Interval(center - radius, center + radius);
    }

    /// <summary>
    /// |b|·ρ + abs (detached) as one period of the output's flat layout for <see cref="IbpFused.Combine"/>: the
    /// per-example pattern, or the whole output when |b| is batched (as many dimensions as the output).
    /// </summary>
    private static Tensor Margin(Tensor? biasAbs, Tensor output, BoundOptions o)
    {
        if (biasAbs == null) return Tensor.Full([1], o.RoundingAbsolute, output.Device);
        var m = biasAbs.Detach() * o.RoundingRelative + o.RoundingAbsolute;
        int[] shape = m.Rank >= output.Rank ? output.Dims : output.Dims[1..];
        return m.Expand(shape);
    }

    /// <summary>
    /// Signed rows of m [n, k] for codes ±(p + 1) (row p / <paramref name="divisor"/>, negated for a negative code; 0: a
    /// zero row) and, with <paramref name="withAbs"/>, their absolute values (detached): one kernel each
    /// (<see cref="FusedBounds.SelectRows"/>), or, where a gradient must flow into m, <see cref="SignedGather"/>.
    /// </summary>
    public static (Tensor Rows, Tensor? Abs) SignedRows(Tensor m, int[] code, int divisor, bool withAbs)
    {
        if (FusedBounds.SelectRows(m, code, divisor, withAbs) is { } fused) return fused;
        var byRow = divisor == 1 ? code : code.Select(c => c == 0 ? 0 : Math.Sign(c) * ((Math.Abs(c) - 1) / divisor + 1)).ToArray();
        var rows = SignedGather(m, byRow);
        return (rows, withAbs ? rows.Detach().Abs() : null);
    }

    /// <summary>
    /// Rows of m [n, k] with signs, for codes ±(p + 1) (row p, negated for a negative code) and 0 (a zero row): one
    /// gather and one multiply by the codes' signs (on a GPU three launches, where stacking [M; −M; 0] took six).
    /// </summary>
    public static Tensor SignedGather(Tensor m, int[] code)
    {
        // Scratch arrays (see HostScratch): the gather and the upload have read them when they return.
        var index = HostScratch.Ints(code.Length);
        var sign = HostScratch.Floats(code.Length);
        for (int q = 0; q < code.Length; q++)
        {
            int c = code[q];
            index[q] = c > 0 ? c - 1 : c < 0 ? -c - 1 : 0;
            sign[q] = c > 0 ? 1f : c < 0 ? -1f : 0f;
        }
        var signs = Tensor.FromSpan(sign, [code.Length, 1], m.Device);
        var rows = m.IndexSelect(0, index);
        HostScratch.Return(index);
        HostScratch.Return(sign);
        return rows * signs;
    }
}
