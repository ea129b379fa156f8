using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class FlattenOp
{
    /// <inheritdoc/>
    public override bool IsShapeOnlyForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
        => inputs[0].MapShape(t => Forward(ForwardContext.Eval, [t]));

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step) => ShapeBounds.Reshape(step);
}

public sealed partial class ReshapeOp
{
    /// <inheritdoc/>
    public override bool IsShapeOnlyForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var x = inputs[0];
        var outShape = Forward(ForwardContext.Eval, [x.Lower]).Shape;
        if (!x.IsConstant && (outShape.Length == 0 || outShape[0] != x.Shape[0]))
            throw new NotSupportedException($"Reshape: bounds need the batch dimension kept first; {ShapeUtil.Format(x.Shape)} -> {ShapeUtil.Format(outShape)} mixes examples.");
        return x.MapShape(t => t.Reshape(outShape));
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step) => ShapeBounds.Reshape(step);
}

public sealed partial class IdentityOp
{
    /// <inheritdoc/>
    public override bool IsShapeOnlyForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options) => inputs[0];

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step) => step.SetInput(0, step.A);
}

public sealed partial class DropoutOp
{
    /// <inheritdoc/>
    public override bool IsShapeOnlyForBounds => true;

    /// <summary>Bounds are always of the evaluation-mode network, where dropout is the identity.</summary>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options) => inputs[0];

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step) => step.SetInput(0, step.A);
}

internal static class ShapeBounds
{
    /// <summary>Coefficients on a reshaped value are the same numbers in the input's layout.</summary>
    public static void Reshape(BackwardStep step)
    {
        var inShape = step.Inputs[0].Shape;
        if (inShape.Length == 0 || inShape[0] != step.Batch)
            throw new NotSupportedException($"Reshape: bounds need the batch dimension kept first; input {ShapeUtil.Format(inShape)}.");
        step.SetInput(0, step.A.Reshape([step.Batch, step.Rows, .. inShape.AsSpan(1)]));
    }
}
