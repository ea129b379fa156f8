using Engine.Tensors;

namespace Engine.Graph;

/// <summary>Joins its inputs along <see cref="Axis"/> (ONNX Concat); all inputs have the same rank and sizes elsewhere.</summary>
public sealed partial class ConcatOp : Op
{
    /// <summary>Creates the op; a negative axis counts from the end.</summary>
    public ConcatOp(int axis) { Axis = axis; }

    /// <summary>The axis the inputs are joined along.</summary>
    public int Axis { get; }

    /// <inheritdoc/>
    public override string Type => "Concat";
    /// <inheritdoc/>
    public override int MinInputs => 1;
    /// <inheritdoc/>
    public override int MaxInputs => int.MaxValue;
    /// <inheritdoc/>
    protected override string Attributes => $"axis={Axis}";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        return inputs.Length == 1 ? inputs[0] : Tensor.Concat(inputs, Axis);
    }
}
