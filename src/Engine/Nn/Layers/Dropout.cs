using Engine.Graph;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// Inverted dropout (torch.nn.Dropout): in training zeroes each element with probability p and scales the rest
/// by 1 / (1 - p); the identity in evaluation. Masks come from the given generator, else
/// <see cref="Generator.Default"/> (reseed it with Generator.ManualSeed for reproducible runs).
/// </summary>
public sealed class Dropout : Module
{
    private readonly DropoutOp _op;

    /// <summary>Creates the layer.</summary>
    public Dropout(float p = 0.5f, Generator? generator = null) { _op = new DropoutOp(p, generator) { TrainingGate = () => Training }; }

    /// <summary>Drop probability.</summary>
    public float P => _op.P;

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(_op, input);

    /// <inheritdoc/>
    protected override string ExtraRepr => $"p={P}";
}
