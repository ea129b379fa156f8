using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class BatchNormOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <summary>Evaluation-mode BatchNorm as y = x·scale + shift, both shaped [C, 1, ...] for input rank <paramref name="rank"/>.</summary>
    private (Tensor Scale, Tensor Shift) EvalAffine(Interval[] inputs, int rank)
    {
        if (inputs.Length < 5)
            throw new NotSupportedException("BatchNormalization: bounds need running statistics (evaluation mode); without them the op normalises with batch statistics, which is not an affine map of one example.");
        for (int i = 1; i < inputs.Length; i++) BoundRules.Constant(inputs, i, Type, "parameter");
        var shape = new int[rank - 1];
        Array.Fill(shape, 1);
        shape[0] = inputs[1].Lower.Numel;
        var scale = inputs[1].Lower / (inputs[4].Lower + Eps).Sqrt();
        var shift = inputs[2].Lower - inputs[3].Lower * scale;
        return (scale.Reshape(shape), shift.Reshape(shape));
    }

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var (scale, shift) = EvalAffine(inputs, inputs[0].Shape.Length);
        var sAbs = scale.Abs();
        return BoundRules.Affine(inputs[0], x => x * scale + shift, r => r * sAbs, shift, () => sAbs, options);
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var (scale, shift) = EvalAffine([.. step.Inputs], step.Inputs[0].Shape.Length);
        step.SetInput(0, step.A * scale);
        step.AddDot(step.A, shift);
    }
}
