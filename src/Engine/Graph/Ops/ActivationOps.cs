using Engine.Tensors;

namespace Engine.Graph;

/// <summary>max(x, 0) (ONNX Relu).</summary>
public sealed partial class ReluOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Relu";
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return inputs[0].Relu(); }
}

/// <summary>x for x &gt;= 0, slope * x otherwise (ONNX LeakyRelu).</summary>
public sealed partial class LeakyReluOp(float negativeSlope = 0.01f) : Op
{
    /// <summary>Slope for negative inputs.</summary>
    public float NegativeSlope { get; } = negativeSlope;
    /// <inheritdoc/>
    public override string Type => "LeakyRelu";
    /// <inheritdoc/>
    protected override string Attributes => $"alpha={NegativeSlope}";
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return inputs[0].LeakyRelu(NegativeSlope); }
}

/// <summary>1 / (1 + e^-x) (ONNX Sigmoid).</summary>
public sealed partial class SigmoidOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Sigmoid";
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return inputs[0].Sigmoid(); }
}

/// <summary>tanh(x) (ONNX Tanh).</summary>
public sealed partial class TanhOp : Op
{
    /// <inheritdoc/>
    public override string Type => "Tanh";
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs) { CheckArity(inputs); return inputs[0].Tanh(); }
}
