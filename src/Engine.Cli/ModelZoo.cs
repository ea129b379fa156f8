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
        "cnn" => new Sequential(
            new Conv2d(1, 16, 4, stride: 2, padding: 1), new ReLU(),
            new Conv2d(16, 32, 4, stride: 2, padding: 1), new ReLU(),
            new Flatten(),
            new Linear(32 * 7 * 7, 100), new ReLU(),
            new Linear(100, 10)),
        // The small CNN of the certified-training literature (auto_LiRPA's peer recipe; BenchNets "cnn"): 28 -> 14 -> 7.
        "cnn-small" => new Sequential(
            new Conv2d(1, 8, 4, stride: 2, padding: 1), new ReLU(),
            new Conv2d(8, 16, 4, stride: 2, padding: 1), new ReLU(),
            new Flatten(),
            new Linear(16 * 7 * 7, 100), new ReLU(),
            new Linear(100, 10)),
        // auto_LiRPA's examples/vision cnn_4layer(in_ch=1, in_dim=28) with its defaults (width 2, linear_size 256): the
        // small CNN's convolutions with a 256-wide hidden layer.
        "cnn-4layer" => new Sequential(
            new Conv2d(1, 8, 4, stride: 2, padding: 1), new ReLU(),
            new Conv2d(8, 16, 4, stride: 2, padding: 1), new ReLU(),
            new Flatten(),
            new Linear(16 * 7 * 7, 256), new ReLU(),
            new Linear(256, 10)),
        _ => throw new ArgumentException($"Unknown model '{name}'; choose one of: {string.Join(", ", Names)}."),
    };
}
