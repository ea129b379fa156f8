using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// a / b elementwise with broadcasting (ONNX Div between two computed values, or a constant divided by a value;
/// the importer turns division by a constant into <see cref="MulOp"/> by its reciprocal).
/// </summary>
public sealed partial class DivOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Div";
    /// <inheritdoc/>
    public override int MinInputs => 2;
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return Tensor.Div(inputs[0], inputs[1]); }
}
