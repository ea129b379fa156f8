using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

// x / c for a constant divisor c (a scalar or a tensor that broadcasts, entries of either sign): affine in x.
// Division by a perturbed value is not affine and has no rule here.
public sealed partial class DivOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var c = Divisor(inputs);
        var x = inputs[0];
        // Element-wise and monotone in x (increasing for c > 0, decreasing for c < 0), and IEEE division rounds
        // monotonically, so fl(l/c) and fl(u/c) bound fl(x/c) for every x in [l, u] with no margin: the forward
        // itself is one correctly rounded division per element, and so is each end here.
        var lo = Tensor.Div(x.Lower, c);
        var hi = Tensor.Div(x.Upper, c);
        return new Interval(Tensor.Minimum(lo, hi), Tensor.Maximum(lo, hi));
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var ins = step.Inputs.ToArray();
        var c = Divisor(ins);
        // A·(x/c) = (A/c)·x. The coefficient A/c is rounded once per element (divided directly rather than
        // multiplied by a rounded 1/c), and the network's x/c is rounded once too; both are relative errors of one
        // unit roundoff on a term of A·out, and every such term reaches the margin ρ·M through the magnitude of the
        // concretisation (|A/c|·|x| at the input, or the |coefficient|·|bias| terms of the relaxations in between),
        // as for Mul by a constant.
        var cc = BackwardStep.AlignConstant(c, step.A.Rank - 1);
        step.SetInput(0, Tensor.Div(step.A, cc).SumToShape([step.Batch, step.Rows, .. ins[0].Shape.AsSpan(1)]));
    }

    /// <summary>The constant divisor, after checking that the dividend is the only perturbed input and c has no zero.</summary>
    private Tensor Divisor(Interval[] inputs)
    {
        if (!inputs[1].IsConstant)
            throw new NotSupportedException(
                "Div: bounds need the divisor (input 1) to be a constant; division by a value that depends on the perturbed input is not supported.");
        var c = inputs[1].Lower;
        var v = c.ToArray();
        for (int i = 0; i < v.Length; i++)
            if (v[i] == 0f || float.IsNaN(v[i]))
                throw new NotSupportedException(
                    $"Div: the constant divisor {ShapeUtil.Format(c.Dims)} has {(v[i] == 0f ? "a zero" : "a NaN")} at flat index {i}; x / c is unbounded there.");
        return c;
    }
}
