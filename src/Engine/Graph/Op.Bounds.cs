using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

// Bound-propagation rules of an op (auto_LiRPA's per-operator bound classes): the interval forward (IBP) and the
// CROWN backward step. Each op type overrides them in its own Ops/<Op>.Bounds.cs file; an op without a rule fails
// with an error that names it, so an unsupported model is refused rather than bounded unsoundly.
public abstract partial class Op
{
    /// <summary>
    /// IBP: an interval that contains the op's output whenever every input lies in its interval. Inputs are in node
    /// order; constant inputs (weights) are point intervals (<see cref="Interval.IsConstant"/>). Perturbed values
    /// are batched ([B, ...]); constants are not.
    /// </summary>
    public virtual Interval IntervalForward(Interval[] inputs, BoundOptions options)
        => throw new NotSupportedException($"{Type}: no interval (IBP) rule; this op cannot be bounded yet.");

    /// <summary>
    /// CROWN: given <see cref="BackwardStep.A"/>, the coefficients of a linear function of this op's output whose
    /// lower bound is sought, sets the coefficients on each perturbed input and adds the constant term, so that
    /// A·out ≥ Σ A_i·in_i + bias holds for every input in its bounds.
    /// </summary>
    public virtual void BoundBackward(BackwardStep step)
        => throw new NotSupportedException($"{Type}: no linear-relaxation (CROWN) rule; this op cannot be bounded by CROWN yet.");

    /// <summary>True for nonlinear ops whose CROWN relaxation needs bounds on input 0 (the pre-activation bounds).</summary>
    public virtual bool NeedsInputBounds => false;

    /// <summary>
    /// Elements of input 0 whose relaxation depends on how tight their bounds are ([B, ...], 1 where it does); null
    /// means every element. For ReLU these are the unstable neurons (l &lt; 0 &lt; u); a stable one is relaxed exactly.
    /// </summary>
    public virtual Tensor? BoundSensitiveMask(Interval input) => null;

    /// <summary>
    /// For ops whose lower relaxation has a free slope (alpha-CROWN): the initial slope per element of input 0
    /// ([B, ...], in [0, 1]); null when the op has no optimisable slope.
    /// </summary>
    public virtual Tensor? InitialAlpha(Interval input) => null;

    /// <summary>
    /// True when the op is affine in its single perturbed input (the others constant), e.g. Linear, Conv, BatchNorm
    /// in evaluation, Add of a constant. Together with <see cref="IsShapeOnlyForBounds"/> it lets the first affine
    /// layer's bounds come from IBP, which is exact there.
    /// </summary>
    public virtual bool IsAffineForBounds => false;

    /// <summary>True when the op only moves elements (Flatten, Reshape, Identity, Dropout in evaluation).</summary>
    public virtual bool IsShapeOnlyForBounds => false;

    /// <summary>
    /// CROWN's start on selected output elements of an affine op, without materialising one-hot rows:
    /// code[b·rows + k] = ±(p + 1) asks for row k of example b to be ± output element p (flat per example), 0 for a
    /// zero row. Returns the coefficients on the perturbed input 0 ([B, rows, ...input shape]) and the constant term
    /// [B, rows] with its magnitude, or null when the op has no such shortcut (the caller then pushes one-hot rows).
    /// The constant term and magnitude must be new tensors that nothing else holds: the pass adds into them in place.
    /// <paramref name="code"/> is the caller's scratch array: read it before returning, never keep it.
    /// </summary>
    internal virtual (Tensor A, Tensor Bias, Tensor Mag)? SelectBackward(Interval[] inputs, int[] code, int batch, int rows) => null;

    /// <summary>
    /// The shape of the op's output for these (perturbed) input bounds, without computing anything, or null when the
    /// op does not say. It lets CROWN leave the IBP bounds of a value unmade until something reads them (the last
    /// layer's, which only give the output's shape there).
    /// </summary>
    internal virtual int[]? BoundOutputShape(Interval[] inputs) => null;
}
