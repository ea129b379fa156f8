using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class AddOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
        => BinaryBounds.AddInterval(inputs[0], inputs[1], 1f, options);

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step) => BinaryBounds.AddBackward(step, 1f);
}

public sealed partial class SubOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
        => BinaryBounds.AddInterval(inputs[0], inputs[1], -1f, options);

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step) => BinaryBounds.AddBackward(step, -1f);
}

public sealed partial class MulOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var (x, k) = Split(inputs);
        if (x.IsConstant) return Interval.Constant(x.Lower * k);
        var kAbs = k.Abs();
        return BoundRules.Affine(x, v => v * k, r => r * kAbs, null, () => kAbs, options);
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var ins = step.Inputs.ToArray();
        var (_, k) = Split(ins);
        int xi = ins[0].IsConstant ? 1 : 0;
        var xShape = ins[xi].Shape;
        var kk = BackwardStep.AlignConstant(k, step.A.Rank - 1);
        step.SetInput(xi, (step.A * kk).SumToShape([step.Batch, step.Rows, .. xShape.AsSpan(1)]));
    }

    private static (Interval X, Tensor K) Split(Interval[] inputs)
    {
        if (inputs[1].IsConstant) return (inputs[0], inputs[1].Lower);
        if (inputs[0].IsConstant) return (inputs[1], inputs[0].Lower);
        throw new NotSupportedException("Mul: bounds need one factor to be a constant; both depend on the perturbed input.");
    }
}

/// <summary>Rules shared by Add and Sub (sign = +1 / −1 for the second operand).</summary>
internal static class BinaryBounds
{
    public static Interval AddInterval(Interval a, Interval b, float sign, BoundOptions o)
    {
        if (a.IsConstant && b.IsConstant) return Interval.Constant(sign > 0 ? a.Lower + b.Lower : a.Lower - b.Lower);
        if (b.IsConstant)
        {
            var k = b.Lower;
            return BoundRules.Affine(a, v => sign > 0 ? v + k : v - k, r => r, k, null, o);
        }
        if (a.IsConstant)
        {
            var k = a.Lower;
            // k + s·x: for s = −1 the bounds swap.
            return sign > 0 ? new Interval(k + b.Lower, k + b.Upper) : new Interval(k - b.Upper, k - b.Lower);
        }
        // Element-wise sums round monotonically, so the float sum of the bounds bounds the float sum of the values.
        return sign > 0 ? new Interval(a.Lower + b.Lower, a.Upper + b.Upper) : new Interval(a.Lower - b.Upper, a.Upper - b.Lower);
    }

    public static void AddBackward(BackwardStep step, float sign)
    {
        var a = step.A;
        for (int i = 0; i < 2; i++)
        {
            var input = step.Inputs[i];
            var coeff = i == 1 && sign < 0 ? -a : a;
            if (input.IsConstant)
                step.AddDot(coeff, BackwardStep.AlignConstant(input.Lower, a.Rank - 1));
            else
                step.SetInput(i, coeff.SumToShape([step.Batch, step.Rows, .. input.Shape.AsSpan(1)]));
        }
    }
}
