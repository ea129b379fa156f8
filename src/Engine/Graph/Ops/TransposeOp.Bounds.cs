using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class TransposeOp
{
    /// <inheritdoc/>
    public override bool IsShapeOnlyForBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var x = inputs[0];
        if (!x.IsConstant && _perm.Length > 0 && _perm[0] != 0)
            throw new NotSupportedException($"Transpose: bounds need the batch dimension kept first; perm {ShapeUtil.Format(_perm)} moves it.");
        // A permutation of elements maps the box (and the ball's centre) exactly.
        return x.MapShape(t => t.Permute(_perm));
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        if (_perm.Length == 0 || _perm[0] != 0)
            throw new NotSupportedException($"Transpose: bounds need the batch dimension kept first; perm {ShapeUtil.Format(_perm)} moves it.");
        // Output dimension i is input dimension perm[i]: coefficients go back through the inverse permutation,
        // shifted by one for the row dimension of A.
        var inv = new int[_perm.Length];
        for (int i = 0; i < _perm.Length; i++) inv[_perm[i]] = i;
        int[] dims = [0, 1, .. inv.Skip(1).Select(d => d + 1)];
        step.SetInput(0, step.A.Permute(dims));
    }
}
