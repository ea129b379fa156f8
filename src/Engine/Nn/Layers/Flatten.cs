using Engine.Graph;

namespace Engine.Nn;

/// <summary>Flattens dimensions [startDim, endDim] (default: all but the batch dimension), as torch.nn.Flatten.</summary>
public sealed class Flatten(int startDim = 1, int endDim = -1) : Module
{
    /// <summary>First dimension collapsed.</summary>
    public int StartDim { get; } = startDim;
    /// <summary>Last dimension collapsed.</summary>
    public int EndDim { get; } = endDim;

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(new FlattenOp(StartDim, EndDim), input);

    /// <inheritdoc/>
    protected override string ExtraRepr => $"start_dim={StartDim}, end_dim={EndDim}";
}

/// <summary>Passes its input through unchanged.</summary>
public sealed class Identity : Module
{
    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(new IdentityOp(), input);
}
