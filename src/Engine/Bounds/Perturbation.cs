using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>Which norm ball a <see cref="Perturbation"/> is.</summary>
public enum PerturbationNorm
{
    /// <summary>‖x' − x‖∞ ≤ eps (a box), optionally clipped to an input domain.</summary>
    LInf,
    /// <summary>‖x' − x‖₂ ≤ eps (per example, over all of its elements).</summary>
    L2,
}

/// <summary>
/// The set of inputs around each example of a batch that bounds are computed over: an L∞ box (optionally
/// intersected with the input domain [clipLow, clipHigh]) or an L2 ball. CROWN concretises a linear function
/// a·x' over the set exactly: a·c − |a|·r for a box with centre c and radius r, a·x − eps·‖a‖₂ for an L2 ball
/// (the dual norm).
/// </summary>
public sealed class Perturbation
{
    private Perturbation(PerturbationNorm norm, float eps, float? clipLow, float? clipHigh)
    {
        if (!(eps >= 0) || float.IsInfinity(eps))
            throw new ArgumentOutOfRangeException(nameof(eps), $"Perturbation: eps must be finite and >= 0, got {eps}.");
        if (clipLow is float lo && clipHigh is float hi && !(lo <= hi))
            throw new ArgumentException($"Perturbation: clip range [{lo}, {hi}] is empty.");
        if (clipLow is float l2 && float.IsNaN(l2) || clipHigh is float h2 && float.IsNaN(h2))
            throw new ArgumentException("Perturbation: clip bounds must not be NaN.");
        Norm = norm; Eps = eps; ClipLow = clipLow; ClipHigh = clipHigh;
    }

    /// <summary>The L∞ box of radius <paramref name="eps"/>, intersected with [clipLow, clipHigh] where given.</summary>
    public static Perturbation LInf(float eps, float? clipLow = null, float? clipHigh = null) => new(PerturbationNorm.LInf, eps, clipLow, clipHigh);

    /// <summary>The L2 ball of radius <paramref name="eps"/> (over all elements of one example).</summary>
    public static Perturbation L2(float eps) => new(PerturbationNorm.L2, eps, null, null);

    /// <summary>The norm.</summary>
    public PerturbationNorm Norm { get; }

    /// <summary>The radius.</summary>
    public float Eps { get; }

    /// <summary>Lower end of the input domain (L∞ only); null means unbounded.</summary>
    public float? ClipLow { get; }

    /// <summary>Upper end of the input domain (L∞ only); null means unbounded.</summary>
    public float? ClipHigh { get; }

    /// <summary>
    /// The smallest box containing the set around each example of <paramref name="x"/> ([B, ...]), as an interval
    /// that remembers the ball (so the first affine layer can use the norm rule).
    /// </summary>
    public Interval InputInterval(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank < 1) throw new ArgumentException($"Perturbation: the input must be batched ([B, ...]), got shape {ShapeUtil.Format(x.Dims)}.");
        if (x.Storage is CpuStorage cs)
        {
            // On the CPU the values are read in place: a copy of a training batch is a large-object allocation every
            // step, which forces full collections.
            foreach (var v in cs.RawData.AsSpan(x.Offset, x.Numel))
                if (!float.IsFinite(v) || ClipLow is float lo && v < lo || ClipHigh is float hi && v > hi) Check(v, v, x);
        }
        else if (x.Numel > 0)
        {
            // Elsewhere the device reduces: its minimum and maximum (NaN if any element is NaN) instead of a copy of the
            // whole batch to the host and a host loop (on a GPU, ~0.1 ms of a small-batch CROWN call).
            var (min, max) = x.MinMaxItems();
            Check(min, max, x);
        }
        var xd = x.Detach();
        // A clamp to an open end would be a copy (on a GPU, a launch).
        var lower = ClipLow is float low ? (xd - Eps).Clamp(low, null) : xd - Eps;
        var upper = ClipHigh is float high ? (xd + Eps).Clamp(null, high) : xd + Eps;
        return new Interval(lower, upper) { Ball = this, BallCenter = xd };
    }

    /// <summary>Throws unless every input value is finite and inside the domain, given the smallest and largest (NaN: some NaN).</summary>
    private void Check(float min, float max, Tensor x)
    {
        if (!float.IsFinite(min) || !float.IsFinite(max)) throw new ArgumentException($"Perturbation: the input {ShapeUtil.Format(x.Dims)} contains NaN or infinity.");
        if (ClipLow is float lo && min < lo) throw new ArgumentException($"Perturbation: input value {min} lies outside the domain [{ClipLow}, {ClipHigh}].");
        if (ClipHigh is float hi && max > hi) throw new ArgumentException($"Perturbation: input value {max} lies outside the domain [{ClipLow}, {ClipHigh}].");
    }

    /// <summary>
    /// min over the set of a·x' for every row: <paramref name="a"/> is [B, R, n], <paramref name="box"/> the
    /// input interval flattened to [B, n]. Returns the value [B, R] and a magnitude [B, R] (Σ|terms|, detached)
    /// that the rounding margin scales. With <paramref name="into"/> (see <see cref="FusedBounds.Dot"/>) they may be
    /// added into those tensors in place, which are then returned. <paramref name="boxCenterRadius"/>: the box's
    /// <see cref="Interval.Center"/> and <see cref="Interval.Radius"/>, when the caller keeps them.
    /// </summary>
    internal (Tensor Value, Tensor Magnitude) Concretize(Tensor a, Interval box, (Tensor Bias, Tensor Mag)? into = null,
                                                         (Tensor Center, Tensor Radius)? boxCenterRadius = null)
    {
        bool clipped = ClipLow != null || ClipHigh != null;
        var center = Norm == PerturbationNorm.L2 || !clipped ? box.BallCenter! : boxCenterRadius?.Center ?? box.Center;
        if (Norm == PerturbationNorm.LInf)
        {
            // One pass over a: a·c, |a|·|c| and the spread together.
            var radius = !clipped ? null : boxCenterRadius?.Radius ?? box.Radius;
            if (FusedBounds.Dot(a, center, radius, Eps, into) is { } dot) return (dot.Value, dot.Mag);
        }
        var c = center.Reshape(center.Size(0), center.Numel / Math.Max(1, center.Size(0)), 1);
        var ac = Tensor.Matmul(a, c).Squeeze(-1);
        var absA = a.Detach().Abs();
        var mag = Tensor.Matmul(absA, c.Abs()).Squeeze(-1);
        Tensor spread;
        if (Norm == PerturbationNorm.L2)
            spread = ((a * a).Sum(-1) + 1e-30f).Sqrt() * Eps;
        else if (ClipLow == null && ClipHigh == null)
            spread = a.Abs().Sum(-1) * Eps;
        else
        {
            var r = box.Radius;
            spread = Tensor.Matmul(a.Abs(), r.Reshape(r.Size(0), r.Numel / Math.Max(1, r.Size(0)), 1)).Squeeze(-1);
        }
        return (ac - spread, mag + spread.Detach());
    }

    /// <inheritdoc/>
    public override string ToString()
        => Norm == PerturbationNorm.L2 ? $"L2(eps={Eps})" : $"LInf(eps={Eps}{(ClipLow != null || ClipHigh != null ? $", clip=[{ClipLow}, {ClipHigh}]" : "")})";
}
