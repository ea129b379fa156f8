using Engine.Bounds;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// The networks, inputs and perturbation of the bound benchmarks (issue 3): the MLP 784-256-256-10 and the CNN
/// 1x28x28 (conv 8 k4 s2 p1, ReLU, conv 16 k4 s2 p1, ReLU, fc 100, ReLU, fc 10) with fixed seeded weights, margin
/// specs and an L∞ ball whose radius leaves a realistic share (roughly 10-30%) of the ReLUs unstable.
/// benchmarks/peers/bounds_autolirpa.py builds the same shapes for auto_LiRPA.
/// </summary>
public static class BoundBenchNets
{
    /// <summary>The L∞ radius of the benchmark perturbation.</summary>
    public const float Eps = 0.01f;

    /// <summary>The network "mlp" or "cnn", seeded (the CLI's definition, so `engine bench crown --net` has the same weights).</summary>
    public static Module Make(string net, ulong seed = 1) => Engine.Cli.BenchNets.Make(net, seed);

    /// <summary>A seeded batch of inputs [batch, 1, 28, 28] in [0, 1].</summary>
    public static Tensor Input(int batch, ulong seed = 2) => Engine.Cli.BenchNets.Input(batch, seed);

    /// <summary>Margin specs for labels i mod 10.</summary>
    public static Spec Margins(int batch) => Spec.Margins(Enumerable.Range(0, batch).Select(i => i % 10).ToArray(), 10);

    /// <summary>"ibp", "crown" or "alpha-crown".</summary>
    public static BoundMethod Method(string method) => method switch
    {
        "ibp" => BoundMethod.Ibp,
        "crown" => BoundMethod.Crown,
        "alpha-crown" => BoundMethod.AlphaCrown,
        _ => throw new ArgumentException($"Unknown bound method '{method}' (ibp, crown or alpha-crown)."),
    };

    /// <summary>The lower bound of the margins (upper bounds not computed), as the auto_LiRPA timings.</summary>
    public static BoundOptions Options { get; } = new() { ComputeUpper = false, AlphaIterations = 20 };
}
