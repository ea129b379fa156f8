using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class ConcatOp
{
    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        if (inputs.Length == 1) return inputs[0];
        int axis = ShapeUtil.NormalizeAxis(Axis, inputs[0].Shape.Length);
        if (axis == 0)
            throw new NotSupportedException("Concat: bounds need the batch dimension kept first; concatenating along axis 0 mixes examples.");
        // Joining boxes side by side is exact; a constant piece must have the batch size of the others.
        var batch = inputs.First(i => !i.IsConstant).Shape[0];
        foreach (var i in inputs)
            if (i.Shape[0] != batch)
                throw new NotSupportedException($"Concat: an input of shape {ShapeUtil.Format(i.Shape)} does not have the batch size {batch} of the perturbed inputs.");
        return new Interval(Tensor.Concat(inputs.Select(i => i.Lower).ToArray(), axis), Tensor.Concat(inputs.Select(i => i.Upper).ToArray(), axis));
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var ins = step.Inputs;
        if (ins.Count == 1) { step.SetInput(0, step.A); return; }
        int axis = ShapeUtil.NormalizeAxis(Axis, ins[0].Shape.Length);
        if (axis == 0) throw new NotSupportedException("Concat: bounds need the batch dimension kept first; concatenating along axis 0 mixes examples.");
        // A's slice for each input (A has the row dimension at 1, so the axis moves by one).
        int start = 0;
        for (int i = 0; i < ins.Count; i++)
        {
            int len = ins[i].Shape[axis];
            var slice = step.A.Narrow(axis + 1, start, len);
            if (ins[i].IsConstant) step.AddDot(slice, BackwardStep.AlignConstant(ins[i].Lower, step.A.Rank - 1));
            else step.SetInput(i, slice);
            start += len;
        }
    }
}
