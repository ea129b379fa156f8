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
        var wAbs = AbsWeightCache.Abs(w);
        int cout = w.Dims[0];
        // Every output pixel of channel co weighs at most the whole kernel, so its L2 norm bounds each row's.
        Tensor RowNorm() => (w * w).Sum([1, 2, 3]).Sqrt().Reshape(cout, 1, 1);
        return BoundRules.Affine(inputs[0],
            x => Tensor.Conv2d(x, w, b, Stride, Padding, Dilation, Groups),
            r => Tensor.Conv2d(r, wAbs, null, Stride, Padding, Dilation, Groups),
            b?.Reshape(cout, 1, 1), RowNorm, options);
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var w = BoundRules.Constant([.. step.Inputs], 1, Type, "weight");
        var inShape = step.Inputs[0].Shape; // [B, Cin, H, W]
        var a = step.A; // [B, R, Cout, OutH, OutW]
        int bsz = step.Batch, rows = step.Rows;
        var flat = a.Reshape(bsz * rows, a.Dims[2], a.Dims[3], a.Dims[4]);
        if (step.Inputs.Count > 2 && LinearAdjoints.ConvTransposeWithSums(flat, w, inShape[2], inShape[3], Stride, Padding, Dilation, Groups) is { } fused)
        {
            step.SetInput(0, fused.Back.Reshape(bsz, rows, inShape[1], inShape[2], inShape[3]));
            var bias = BoundRules.Constant([.. step.Inputs], 2, Type, "bias");
            step.AddDot(fused.Sums.Reshape(bsz, rows, a.Dims[2]), bias);
            return;
        }
        var back = LinearAdjoints.ConvTranspose(flat, w, inShape[2], inShape[3], Stride, Padding, Dilation, Groups);
        step.SetInput(0, back.Reshape(bsz, rows, inShape[1], inShape[2], inShape[3]));
        if (step.Inputs.Count > 2)
        {
            var bias = BoundRules.Constant([.. step.Inputs], 2, Type, "bias");
            step.AddDot(a.Sum([3, 4]), bias);
        }
    }

    /// <summary>Each selected output pixel's kernel laid over its window (<see cref="IKernels.BoundConvSelect"/>), and ±b.</summary>
    internal override (Tensor A, Tensor Bias, Tensor Mag)? SelectBackward(Interval[] inputs, int[] code, int batch, int rows)
    {
        if (inputs[0].IsConstant || inputs[0].Shape.Length != 4 || inputs.Skip(1).Any(i => !i.IsConstant)) return null;
        var w = inputs[1].Lower;
        // The kernel has no gradient rule: where the weights are being trained, push one-hot rows instead.
        if (Autograd.GradMode.IsEnabled && w.RequiresGrad) return null;
        var inShape = inputs[0].Shape;
        int count = batch * rows, cout = w.Dims[0];
        var geo = new Conv2dGeometry(count, inShape[1], inShape[2], inShape[3], cout, w.Dims[2], w.Dims[3], Stride.H, Stride.W,
                                     Padding.H, Padding.W, Dilation.H, Dilation.W, Groups);
        // The codes as floats (exact below 2^24) in one vectorised pass over a scratch array (on a GPU this host work
        // runs while the device waits).
        var asFloat = HostScratch.Floats(count);
        System.Numerics.Tensors.TensorPrimitives.ConvertTruncating<int, float>(code, asFloat);
        var codes = Tensor.FromSpan(asFloat, [count], w.Device);
        HostScratch.Return(asFloat);
        var a = w.NewEmpty([batch, rows, inShape[1], inShape[2], inShape[3]]);
        if (count > 0) w.K.BoundConvSelect(w.Buf, codes.Buf, a.Buf, count, geo);
        if (inputs.Length < 3) return (a, Tensor.Zeros([batch, rows], w.Device), Tensor.Zeros([batch, rows], w.Device));
        int outPix = geo.OutH * geo.OutW;
        // The bias by output channel (position / output pixels).
        var (bias, mag) = BoundRules.SignedRows(inputs[2].Lower.Reshape(cout, 1), code, outPix, withAbs: true);
        return (a, bias.Reshape(batch, rows), mag!.Reshape(batch, rows));
    }
}
