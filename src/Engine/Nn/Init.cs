using Engine.Tensors;

namespace Engine.Nn;

/// <summary>Fan computation for <see cref="Init"/>, as torch.nn.init.</summary>
public enum FanMode
{
    /// <summary>Inputs per output (preserves activation variance in the forward pass).</summary>
    FanIn,
    /// <summary>Outputs per input (preserves gradient variance in the backward pass).</summary>
    FanOut,
}

/// <summary>
/// In-place weight initialisers with torch.nn.init semantics. Each writes fresh values into the tensor (not
/// recorded by autograd) from the given <see cref="Generator"/> (default: <see cref="Generator.Default"/>) and
/// returns it.
/// </summary>
public static class Init
{
    /// <summary>(fan_in, fan_out) of a weight: dim 1 and dim 0 times the receptive field (product of dims 2..).</summary>
    public static (int FanIn, int FanOut) CalculateFans(Tensor weight)
    {
        if (weight.Rank < 2) throw new ArgumentException($"Fan in/out needs a weight of rank >= 2, got shape {ShapeUtil.Format(weight.Dims)}.");
        int receptive = 1;
        for (int i = 2; i < weight.Rank; i++) receptive *= weight.Dims[i];
        return (weight.Dims[1] * receptive, weight.Dims[0] * receptive);
    }

    /// <summary>
    /// Recommended gain for a nonlinearity ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"),
    /// as torch.nn.init.calculate_gain; <paramref name="param"/> is the negative slope of leaky_relu (default 0.01).
    /// </summary>
    public static float CalculateGain(string nonlinearity, float? param = null) => nonlinearity switch
    {
        "linear" or "conv1d" or "conv2d" or "conv3d" or "sigmoid" => 1f,
        "tanh" => 5f / 3,
        "relu" => MathF.Sqrt(2f),
        "leaky_relu" => MathF.Sqrt(2f / (1 + (param ?? 0.01f) * (param ?? 0.01f))),
        "selu" => 3f / 4,
        _ => throw new ArgumentException($"CalculateGain: unknown nonlinearity '{nonlinearity}'."),
    };

    /// <summary>Uniform in [low, high).</summary>
    public static Tensor Uniform(Tensor t, float low, float high, Generator? generator = null)
    {
        t.CopyFrom(Tensor.Uniform(t.Shape, low, high, generator, t.Device));
        return t;
    }

    /// <summary>Normal(mean, std).</summary>
    public static Tensor Normal(Tensor t, float mean = 0, float std = 1, Generator? generator = null)
    {
        t.CopyFrom(Tensor.Normal(t.Shape, mean, std, generator, t.Device));
        return t;
    }

    /// <summary>Fills with a constant.</summary>
    public static Tensor Constant(Tensor t, float value) { t.Fill_(value); return t; }

    /// <summary>Fills with zeros.</summary>
    public static Tensor Zeros(Tensor t) => Constant(t, 0);

    /// <summary>Fills with ones.</summary>
    public static Tensor Ones(Tensor t) => Constant(t, 1);

    /// <summary>
    /// He / Kaiming uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = CalculateGain(nonlinearity, a).
    /// PyTorch's default Linear and Conv weight init is this with a = sqrt(5) (b = 1 / sqrt(fan_in)).
    /// </summary>
    public static Tensor KaimingUniform(Tensor t, float a = 0, FanMode mode = FanMode.FanIn, string nonlinearity = "leaky_relu", Generator? generator = null)
    {
        float bound = CalculateGain(nonlinearity, a) * MathF.Sqrt(3f / Fan(t, mode));
        return Uniform(t, -bound, bound, generator);
    }

    /// <summary>He / Kaiming normal: N(0, std²) with std = gain / sqrt(fan).</summary>
    public static Tensor KaimingNormal(Tensor t, float a = 0, FanMode mode = FanMode.FanIn, string nonlinearity = "leaky_relu", Generator? generator = null)
        => Normal(t, 0, CalculateGain(nonlinearity, a) / MathF.Sqrt(Fan(t, mode)), generator);

    /// <summary>Glorot / Xavier uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).</summary>
    public static Tensor XavierUniform(Tensor t, float gain = 1, Generator? generator = null)
    {
        var (fi, fo) = CalculateFans(t);
        float bound = gain * MathF.Sqrt(6f / (fi + fo));
        return Uniform(t, -bound, bound, generator);
    }

    /// <summary>Glorot / Xavier normal: N(0, std²) with std = gain * sqrt(2 / (fan_in + fan_out)).</summary>
    public static Tensor XavierNormal(Tensor t, float gain = 1, Generator? generator = null)
    {
        var (fi, fo) = CalculateFans(t);
        return Normal(t, 0, gain * MathF.Sqrt(2f / (fi + fo)), generator);
    }

    private static int Fan(Tensor t, FanMode mode)
    {
        var (fi, fo) = CalculateFans(t);
        int fan = mode == FanMode.FanIn ? fi : fo;
        if (fan == 0) throw new ArgumentException($"Kaiming init: zero fan for shape {ShapeUtil.Format(t.Dims)}.");
        return fan;
    }
}
