using Engine.Graph;

namespace Engine.Nn;

/// <summary>max(x, 0).</summary>
public sealed class ReLU : Module
{
    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(new ReluOp(), input);
}

/// <summary>x for x &gt;= 0, negativeSlope * x otherwise.</summary>
public sealed class LeakyReLU(float negativeSlope = 0.01f) : Module
{
    /// <summary>Slope for negative inputs.</summary>
    public float NegativeSlope { get; } = negativeSlope;
    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(new LeakyReluOp(NegativeSlope), input);
    /// <inheritdoc/>
    protected override string ExtraRepr => $"negative_slope={NegativeSlope}";
}

/// <summary>1 / (1 + e^-x).</summary>
public sealed class Sigmoid : Module
{
    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(new SigmoidOp(), input);
}

/// <summary>tanh(x).</summary>
public sealed class Tanh : Module
{
    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(new TanhOp(), input);
}
