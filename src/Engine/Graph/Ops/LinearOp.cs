using Engine.Tensors;

namespace Engine.Graph;

/// <summary>y = x @ weight^T + bias; inputs (x [..., in], weight [out, in], optional bias [out]) — ONNX Gemm with transB.</summary>
public sealed partial class LinearOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Linear";
    /// <inheritdoc/>
    public override int MinInputs => 2;
    /// <inheritdoc/>
    public override int MaxInputs => 3;

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        return Tensor.Linear(inputs[0], inputs[1], inputs.Length > 2 ? inputs[2] : null);
    }
}

/// <summary>torch.matmul of its two inputs (ONNX MatMul).</summary>
public sealed partial class MatMulOp : Op
{
    /// <inheritdoc/>
    public override string Type => "MatMul";
    /// <inheritdoc/>
    public override int MinInputs => 2;

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        return Tensor.Matmul(inputs[0], inputs[1]);
    }
}
