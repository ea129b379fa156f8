using Engine.Graph;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// y = x @ W^T + b with W [out, in] (torch.nn.Linear). PyTorch's default init: W ~ kaiming_uniform(a = sqrt 5),
/// i.e. U(±1/sqrt(in)), and b ~ U(±1/sqrt(in)).
/// </summary>
public sealed class Linear : Module
{
    /// <summary>Creates the layer, drawing initial weights from <paramref name="generator"/> (default: <see cref="Generator.Default"/>).</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, Generator? generator = null)
    {
        if (inFeatures < 1 || outFeatures < 1) throw new ArgumentOutOfRangeException(nameof(inFeatures), $"Linear: features must be >= 1, got in={inFeatures}, out={outFeatures}.");
        InFeatures = inFeatures; OutFeatures = outFeatures;
        Weight = RegisterParameter("weight", Init.KaimingUniform(Tensor.Empty([outFeatures, inFeatures]), MathF.Sqrt(5), generator: generator));
        if (bias)
        {
            float bound = 1f / MathF.Sqrt(inFeatures);
            Bias = RegisterParameter("bias", Init.Uniform(Tensor.Empty([outFeatures]), -bound, bound, generator));
        }
    }

    /// <summary>Input features.</summary>
    public int InFeatures { get; }
    /// <summary>Output features.</summary>
    public int OutFeatures { get; }
    /// <summary>Weight [out, in].</summary>
    public Tensor Weight { get; }
    /// <summary>Bias [out], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input)
    {
        var w = builder.Parameter("weight", Weight);
        return Bias == null ? builder.Apply(new LinearOp(), input, w) : builder.Apply(new LinearOp(), input, w, builder.Parameter("bias", Bias));
    }

    /// <inheritdoc/>
    protected override string ExtraRepr => $"in_features={InFeatures}, out_features={OutFeatures}, bias={Bias != null}";
}
