using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class LinearOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var w = BoundRules.Constant(inputs, 1, Type, "weight");
        var b = inputs.Length > 2 ? BoundRules.Constant(inputs, 2, Type, "bias") : null;
        var wAbs = AbsWeightCache.Abs(w);
        return BoundRules.Affine(inputs[0], x => Tensor.Linear(x, w, b), r => Tensor.Linear(r, wAbs), b,
                                 () => (w * w).Sum(1).Sqrt(), options);
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var w = BoundRules.Constant([.. step.Inputs], 1, Type, "weight");
        step.SetInput(0, Tensor.Matmul(step.A, w));
        if (step.Inputs.Count > 2) step.AddDot(step.A, BoundRules.Constant([.. step.Inputs], 2, Type, "bias"));
    }

    /// <inheritdoc/>
    internal override int[]? BoundOutputShape(Interval[] inputs)
    {
        var x = inputs[0].Shape;
        return inputs.Length < 2 || x.Length == 0 || inputs[1].Shape.Length != 2 ? null : [.. x[..^1], inputs[1].Shape[0]];
    }

    /// <summary>Rows of ±W and ±b (gathers).</summary>
    internal override (Tensor A, Tensor Bias, Tensor Mag)? SelectBackward(Interval[] inputs, int[] code, int batch, int rows)
    {
        if (inputs[0].IsConstant || inputs[0].Shape.Length != 2 || inputs.Skip(1).Any(i => !i.IsConstant)) return null;
        var w = inputs[1].Lower;
        int outF = w.Dims[0], inF = w.Dims[1];
        // The weight's rows, the bias's and its magnitude: two launches where no gradient flows into them (five before).
        var a = BoundRules.SignedRows(w.Reshape(outF, inF), code, 1, withAbs: false).Rows.Reshape(batch, rows, inF);
        if (inputs.Length < 3) return (a, Tensor.Zeros([batch, rows], w.Device), Tensor.Zeros([batch, rows], w.Device));
        var (bias, mag) = BoundRules.SignedRows(inputs[2].Lower.Reshape(outF, 1), code, 1, withAbs: true);
        return (a, bias.Reshape(batch, rows), mag!.Reshape(batch, rows));
    }
}

public sealed partial class MatMulOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        if (inputs[0].IsConstant && inputs[1].IsConstant) return Interval.Constant(Tensor.Matmul(inputs[0].Lower, inputs[1].Lower));
        if (!inputs[1].IsConstant && !inputs[0].IsConstant)
            throw new NotSupportedException("MatMul: bounds need one operand to be a constant; both depend on the perturbed input.");
        if (inputs[1].IsConstant)
        {
            var w = CheckMatrix(inputs[1].Lower);
            var wAbs = AbsWeightCache.Abs(w);
            return BoundRules.Affine(inputs[0], x => Tensor.Matmul(x, w), r => Tensor.Matmul(r, wAbs), null, () => (w * w).Sum(0).Sqrt(), options);
        }
        var wl = CheckMatrix(inputs[0].Lower);
        var wlAbs = AbsWeightCache.Abs(wl);
        return BoundRules.Affine(inputs[1], x => Tensor.Matmul(wl, x), r => Tensor.Matmul(wlAbs, r), null, () => (wl * wl).Sum(1, keepDim: true).Sqrt(), options);
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        if (step.Inputs[1].IsConstant)
        {
            var w = CheckMatrix(step.Inputs[1].Lower);
            step.SetInput(0, Tensor.Matmul(step.A, w.Transpose(0, 1)));
        }
        else if (step.Inputs[0].IsConstant)
        {
            var w = CheckMatrix(step.Inputs[0].Lower);
            step.SetInput(1, Tensor.Matmul(w.Transpose(0, 1), step.A));
        }
        else throw new NotSupportedException("MatMul: bounds need one operand to be a constant; both depend on the perturbed input.");
    }

    private static Tensor CheckMatrix(Tensor w)
        => w.Rank == 2 ? w : throw new NotSupportedException($"MatMul: bounds support a constant operand of rank 2 only, got {ShapeUtil.Format(w.Dims)}.");
}
