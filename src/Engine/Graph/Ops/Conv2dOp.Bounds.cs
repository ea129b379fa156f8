using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class Conv2dOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var w = BoundRules.Constant(inputs, 1, Type, "weight");
        var b = inputs.Length > 2 ? BoundRules.Constant(inputs, 2, Type, "bias") : null;
        if (inputs[0].Shape.Length != 4)
            throw new NotSupportedException($"Conv: bounds need batched [N, C, H, W] input, got {ShapeUtil.Format(inputs[0].Shape)}.");
        var wAbs = w.Abs();
        int cout = w.Dims[0];
        // Every output pixel of channel co weighs at most the whole kernel, so its L2 norm bounds each row's.
        var rowNorm = (w * w).Sum([1, 2, 3]).Sqrt().Reshape(cout, 1, 1);
        return BoundRules.Affine(inputs[0],
            x => Tensor.Conv2d(x, w, b, Stride, Padding, Dilation, Groups),
            r => Tensor.Conv2d(r, wAbs, null, Stride, Padding, Dilation, Groups),
            b?.Abs().Reshape(cout, 1, 1), rowNorm, options);
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var w = BoundRules.Constant([.. step.Inputs], 1, Type, "weight");
        var inShape = step.Inputs[0].Shape; // [B, Cin, H, W]
        var a = step.A; // [B, R, Cout, OutH, OutW]
        int bsz = step.Batch, rows = step.Rows;
        var flat = a.Reshape(bsz * rows, a.Dims[2], a.Dims[3], a.Dims[4]);
        var back = LinearAdjoints.ConvTranspose(flat, w, inShape[2], inShape[3], Stride, Padding, Dilation, Groups);
        step.SetInput(0, back.Reshape(bsz, rows, inShape[1], inShape[2], inShape[3]));
        if (step.Inputs.Count > 2)
        {
            var bias = BoundRules.Constant([.. step.Inputs], 2, Type, "bias");
            step.AddDot(a.Sum([3, 4]), bias);
        }
    }
}
