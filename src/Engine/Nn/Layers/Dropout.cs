using Engine.Graph;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// Inverted dropout (torch.nn.Dropout): in training zeroes each element with probability p and scales the rest
/// by 1 / (1 - p); the identity in evaluation. Masks come from <paramref name="generator"/> when given, else
/// <see cref="Generator.Default"/> (reseed it with Generator.ManualSeed for reproducible runs).
/// </summary>
public sealed class Dropout(float p = 0.5f, Generator? generator = null) : Module
{
    private readonly DropoutOp _op = new(p, generator);

    /// <summary>Drop probability.</summary>
    public float P => _op.P;

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(_op, input);

    /// <inheritdoc/>
    protected override string ExtraRepr => $"p={P}";
}
