using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Element-wise bounds Lower ≤ v ≤ Upper on one graph value: batched ([B, ...]) for values that depend on the
/// perturbed input, unbatched for constants (weights), which are point intervals with Lower == Upper.
/// </summary>
public sealed class Interval
{
    /// <summary>Creates an interval; the tensors must have the same shape.</summary>
    public Interval(Tensor lower, Tensor upper)
    {
        ArgumentNullException.ThrowIfNull(lower);
        ArgumentNullException.ThrowIfNull(upper);
        if (!ShapeUtil.SameShape(lower.Dims, upper.Dims))
            throw new ArgumentException($"Interval: lower {ShapeUtil.Format(lower.Dims)} and upper {ShapeUtil.Format(upper.Dims)} differ in shape.");
        _lower = lower; _upper = upper;
        _dims = lower.Dims;
    }

    // Bounds made on first use (IBP-only computations: intermediate bounds that only the next fused rule needs, which
    // reads Prepared / CombinedFrom instead, are never written). Made inside the bound computation that created them.
    private Interval(int[] dims, Func<(Tensor Lower, Tensor Upper)> make)
    {
        _dims = dims;
        _make = make;
    }

    /// <summary>An interval of shape <paramref name="dims"/> whose bounds <paramref name="make"/> computes when first read.</summary>
    internal static Interval Lazy(int[] dims, Func<(Tensor Lower, Tensor Upper)> make, CombineSource? from = null, PreparedCenter? prepared = null)
        => new(dims, make) { CombinedFrom = from, Prepared = prepared };

    private Tensor? _lower, _upper;
    private Func<(Tensor Lower, Tensor Upper)>? _make;
    private readonly int[] _dims;

    /// <summary>A constant (not perturbed) value.</summary>
    public static Interval Constant(Tensor value) => new(value, value) { IsConstant = true };

    /// <summary>Lower bound.</summary>
    public Tensor Lower { get { Materialize(); return _lower!; } }

    /// <summary>Upper bound.</summary>
    public Tensor Upper { get { Materialize(); return _upper!; } }

    /// <summary>False while the bounds of a lazy interval have not been computed.</summary>
    internal bool IsMaterialized => _lower != null;

    /// <summary>A tensor on this interval's device, without computing lazy bounds.</summary>
    internal Tensor Probe => _lower ?? Prepared?.C ?? CombinedFrom?.Center ?? Lower;

    private void Materialize()
    {
        if (_lower != null) return;
        var (l, u) = _make!();
        if (!ShapeUtil.SameShape(l.Dims, _dims) || !ShapeUtil.SameShape(u.Dims, _dims))
            throw new InvalidOperationException($"Interval: lazily made bounds {ShapeUtil.Format(l.Dims)} / {ShapeUtil.Format(u.Dims)} do not have the shape {ShapeUtil.Format(_dims)}.");
        _lower = l; _upper = u; _make = null;
    }

    /// <summary>True for values that do not depend on the perturbed input (Lower and Upper are the same tensor).</summary>
    public bool IsConstant { get; private init; }

    /// <summary>
    /// Set when this interval is the box around the perturbed input itself (possibly reshaped): the perturbation and
    /// its centre, so that the first affine layer can use the exact norm rule (an L2 ball's box is loose).
    /// </summary>
    public Perturbation? Ball { get; init; }

    /// <summary>Centre of <see cref="Ball"/> (the clean input), shaped like this value.</summary>
    public Tensor? BallCenter { get; init; }

    /// <summary>
    /// The centre and rounding-widened radius of this interval for relative rounding <see cref="PreparedCenter.Rho"/>,
    /// when the rule that made it computed them in the same pass (<see cref="IbpFused.Relu"/>): the next affine rule
    /// uses them instead of reading the bounds again.
    /// </summary>
    internal PreparedCenter? Prepared { get; init; }

    /// <summary>
    /// Set by <see cref="IbpFused.Combine"/>: the centre and radius tensors this interval is center ∓ (rad + margin) of,
    /// so that <see cref="IbpFused.Relu"/> can send its gradient to them directly.
    /// </summary>
    internal CombineSource? CombinedFrom { get; init; }

    /// <summary>
    /// ReLU's relaxation of these bounds, made by the first backward pass that needed it without recording a gradient
    /// (bounds never change, so later passes reuse it).
    /// </summary>
    internal ReluRelaxationParts? ReluRelaxation { get; set; }

    /// <summary>
    /// Every tensor this interval holds: its bounds where made, the centre / margin, combine sources, ball centre and
    /// ReLU relaxation it caches. A refinement chunk's TensorScope keeps them (they belong to the whole computation).
    /// </summary>
    internal IEnumerable<Tensor> HeldTensors()
    {
        if (_lower != null) { yield return _lower; yield return _upper!; }
        if (Prepared is { } p) { yield return p.C; yield return p.M; }
        if (CombinedFrom is { } f) { yield return f.Center; yield return f.Rad; yield return f.Extra; }
        if (BallCenter is { } b) yield return b;
        if (ReluRelaxation is { } r)
        {
            yield return r.LowSlope; yield return r.UpSlope; yield return r.UpBias;
            if (r.Unstable is { } un) yield return un;
        }
    }

    /// <summary>The shape of the value (batch included for perturbed values).</summary>
    public int[] Shape => (int[])_dims.Clone();

    /// <summary>(Lower + Upper) / 2.</summary>
    public Tensor Center => IsConstant ? Lower : (Lower + Upper) * 0.5f;

    /// <summary>(Upper - Lower) / 2.</summary>
    public Tensor Radius => (Upper - Lower) * 0.5f;

    /// <summary>Applies a shape-only function (reshape, flatten, ...) to both bounds, keeping the ball information.</summary>
    public Interval MapShape(Func<Tensor, Tensor> f)
    {
        if (IsConstant) return Constant(f(Lower));
        if (!IsMaterialized && Prepared != null)
        {
            // Keep it lazy: the prepared centre gives the mapped shape (the bounds, if ever read, map the same way).
            var pc = new PreparedCenter(f(Prepared.C), f(Prepared.M), Prepared.Rho);
            return new Interval(pc.C.Dims, () => (f(Lower), f(Upper))) { Prepared = pc };
        }
        return new Interval(f(Lower), f(Upper))
        {
            Ball = Ball,
            BallCenter = BallCenter == null ? null : f(BallCenter),
            // Element-wise, so it commutes with any shape-only map (e.g. the Flatten between a ReLU and a Linear).
            Prepared = Prepared == null ? null : new PreparedCenter(f(Prepared.C), f(Prepared.M), Prepared.Rho),
        };
    }

    /// <summary>Applies a monotonically non-decreasing element-wise function to both bounds.</summary>
    public Interval MapMonotone(Func<Tensor, Tensor> f)
        => IsConstant ? Constant(f(Lower)) : new Interval(f(Lower), f(Upper));

    /// <inheritdoc/>
    public override string ToString() => $"Interval{ShapeUtil.Format(_dims)}{(IsConstant ? " (constant)" : "")}";
}

/// <summary>(l + u)/2 and (u − l)/2·(1 + ρ) + |c|·ρ of an interval, as <see cref="IbpFused.CenterMargin"/> computes them.</summary>
internal sealed record PreparedCenter(Tensor C, Tensor M, float Rho);

/// <summary>The centre, radius and (detached) margin an interval is center ∓ (rad + margin) of (<see cref="IbpFused.Combine"/>).</summary>
internal sealed record CombineSource(Tensor Center, Tensor Rad, Tensor Extra);
