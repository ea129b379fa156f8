using Engine.Tensors;

namespace Engine.Graph;

/// <summary>a + b with broadcasting (ONNX Add; residual connections).</summary>
public sealed partial class AddOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Add";
    /// <inheritdoc/>
    public override int MinInputs => 2;
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return Tensor.Add(inputs[0], inputs[1]); }
}

/// <summary>a - b with broadcasting (ONNX Sub).</summary>
public sealed partial class SubOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Sub";
    /// <inheritdoc/>
    public override int MinInputs => 2;
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return Tensor.Sub(inputs[0], inputs[1]); }
}

/// <summary>a * b elementwise with broadcasting (ONNX Mul).</summary>
public sealed partial class MulOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Mul";
    /// <inheritdoc/>
    public override int MinInputs => 2;
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return Tensor.Mul(inputs[0], inputs[1]); }
}
