using Engine.Tensors;

namespace Engine.Graph;

/// <summary>Returns its input (ONNX Identity; also what Dropout becomes in an exported inference graph).</summary>
public sealed partial class IdentityOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Identity";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        return inputs[0];
    }
}
