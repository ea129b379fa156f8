using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// Reshapes to a fixed shape (a view). As in ONNX Reshape, 0 copies the input's size in that position and one
/// entry may be -1 (inferred), so a batch dimension can pass through as 0 or -1.
/// </summary>
public sealed partial class ReshapeOp : Op
{
    private readonly int[] _shape;

    /// <summary>Creates the op.</summary>
    public ReshapeOp(params int[] shape) { _shape = (int[])shape.Clone(); }

    /// <summary>The target shape (with 0 / -1 placeholders).</summary>
    public int[] TargetShape => (int[])_shape.Clone();

    /// <inheritdoc/>
    public override string Type => "Reshape";
    /// <inheritdoc/>
    protected override string Attributes => $"shape={ShapeUtil.Format(_shape)}";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        var x = inputs[0];
        var s = (int[])_shape.Clone();
        for (int i = 0; i < s.Length; i++)
            if (s[i] == 0)
            {
                if (i >= x.Rank) throw new ArgumentException($"Reshape: 0 at position {i} has no input dimension to copy (input {ShapeUtil.Format(x.Dims)}).");
                s[i] = x.Dims[i];
            }
        return x.Reshape(s);
    }
}
