using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// a / b elementwise with broadcasting (ONNX Div). Bound propagation supports a constant divisor (x / c is affine
/// in x); the ONNX importer keeps Div by a constant as this op, except where 1/c is exact in float32 (powers of
/// two), where it emits the identical <see cref="MulOp"/>.
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
