using Engine.Nn;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>
/// The bound benchmark networks (benchmarks/Engine.Benchmarks compiles this file too, so BoundBenchNets has the same
/// layers, seeds and weights), for `engine bench crown --net`: the CLI is what runs on a GPU machine without
/// .NET, and its `--export` writes these weights for the PyTorch peer (benchmarks/peers/gpu_torch.py).
/// </summary>
internal static class BenchNets
{
    public static readonly string[] Names = ["mlp", "cnn"];

    /// <summary>BoundBenchNets.Make(net): MLP 784-256-256-10 or CNN (conv 8 k4 s2 p1, conv 16 k4 s2 p1, fc 100, fc 10), seed 1, eval mode.</summary>
    public static Module Make(string net, ulong seed = 1)
    {
        var g = new Generator(seed);
        Module m = net switch
        {
            "mlp" => new Sequential(new Flatten(), new Linear(784, 256, generator: g), new ReLU(), new Linear(256, 256, generator: g), new ReLU(),
                                    new Linear(256, 10, generator: g)),
            "cnn" => new Sequential(new Conv2d(1, 8, 4, 2, 1, generator: g), new ReLU(), new Conv2d(8, 16, 4, 2, 1, generator: g), new ReLU(),
                                    new Flatten(), new Linear(784, 100, generator: g), new ReLU(), new Linear(100, 10, generator: g)),
            _ => throw new ArgumentException($"Unknown bound benchmark net '{net}' (mlp or cnn)."),
        };
        m.Eval();
        return m;
    }

    /// <summary>BoundBenchNets.Input: a seeded batch [batch, 1, 28, 28] in [0, 1].</summary>
    public static Tensor Input(int batch, ulong seed = 2) => Tensor.Uniform([batch, 1, 28, 28], 0f, 1f, new Generator(seed));
}
