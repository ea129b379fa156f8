using Engine.Graph;

namespace Engine.Nn;

/// <summary>x + inner(x): a residual connection (an Add node joining the skip path); the child is named "inner".</summary>
public sealed class Residual : Module
{
    /// <summary>Wraps <paramref name="inner"/>, whose output must have the input's shape (or broadcast to it).</summary>
    public Residual(Module inner) { Inner = RegisterModule("inner", inner); }

    /// <summary>The residual branch.</summary>
    public Module Inner { get; }

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(new AddOp(), input, Inner.Build(builder, input));
}
