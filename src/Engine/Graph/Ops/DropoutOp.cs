using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// Inverted dropout: in training each element is zeroed with probability P and the survivors are scaled by
/// 1 / (1 - P); in evaluation it is the identity (ONNX Dropout).
/// </summary>
public sealed partial class DropoutOp : Op
{
    /// <summary>Creates the op; <paramref name="generator"/> (else the context's, else <see cref="Generator.Default"/>) draws the masks.</summary>
    public DropoutOp(float p = 0.5f, Generator? generator = null)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"Dropout: p must be in [0, 1], got {p}.");
        P = p; Generator = generator;
    }

    /// <summary>Probability of zeroing an element.</summary>
    public float P { get; }
    /// <summary>The op's own randomness (null: the context's).</summary>
    public Generator? Generator { get; }

    /// <inheritdoc/>
    public override string Type => "Dropout";
    /// <inheritdoc/>
    protected override string Attributes => $"p={P}";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        var x = inputs[0];
        if (!IsTraining(ctx) || P == 0) return x;
        if (P == 1) return x * 0f;
        var u = Tensor.Uniform(x.Shape, 0f, 1f, Generator ?? ctx.Generator, x.Device);
        // u is uniform in [0, 1), so u >= p keeps an element with probability 1 - p.
        var mask = Tensor.Ge(u, P) * (1f / (1f - P));
        return x * mask;
    }
}
