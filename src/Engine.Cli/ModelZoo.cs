using Engine.Nn;

namespace Engine.Cli;

/// <summary>The models the CLI trains, evaluates and benchmarks, defined once here.</summary>
internal static class ModelZoo
{
    public static readonly string[] Names = ["mlp", "cnn", "cnn-small", "cnn-4layer"];

    /// <summary>Builds a freshly initialised model for 1×28×28 inputs and 10 classes (init draws from Generator.Default).</summary>
    public static Module Create(string name) => name switch
    {
        // 784-256-256-10 with ReLU.
        "mlp" => new Sequential(
            new Flatten(),
            new Linear(784, 256), new ReLU(),
            new Linear(256, 256), new ReLU(),
            new Linear(256, 10)),
        // Two stride-2 convolutions (28 -> 14 -> 7), then a small classifier head.
        "cnn" => TwoConv(16, 32, 100),
        // The small CNN of the certified-training literature (auto_LiRPA's peer recipe; BenchNets "cnn").
        "cnn-small" => TwoConv(8, 16, 100),
        // auto_LiRPA's examples/vision cnn_4layer(in_ch=1, in_dim=28) with its defaults (width 2, linear_size 256): the
        // small CNN's convolutions with a 256-wide hidden layer.
        "cnn-4layer" => TwoConv(8, 16, 256),
        _ => throw new ArgumentException($"Unknown model '{name}'; choose one of: {string.Join(", ", Names)}."),
    };

    /// <summary>Conv(1→c1, 4x4, stride 2, pad 1), ReLU, Conv(c1→c2, same), ReLU, Linear(c2·7·7→hidden), ReLU, Linear(hidden→10).</summary>
    private static Sequential TwoConv(int c1, int c2, int hidden) => new(
        new Conv2d(1, c1, 4, stride: 2, padding: 1), new ReLU(),
        new Conv2d(c1, c2, 4, stride: 2, padding: 1), new ReLU(),
        new Flatten(),
        new Linear(c2 * 7 * 7, hidden), new ReLU(),
        new Linear(hidden, 10));
}
