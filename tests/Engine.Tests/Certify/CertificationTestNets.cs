using Engine.Data;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Tests.Certify;

/// <summary>Small classifiers and data for the certification tests: trained for a moment, or random.</summary>
internal static class CertificationTestNets
{
    private static Module? _trained;
    private static TrainTestSplit? _data;

    public static TrainTestSplit Data => _data ??= FashionMnist.LoadEmbedded();

    /// <summary>The first <paramref name="n"/> embedded test images.</summary>
    public static TensorDataset Test(int n) => new(Data.Test.Inputs.NarrowRows(0, n), Data.Test.Targets.NarrowRows(0, n));

    /// <summary>784-32-10 MLP trained for one epoch on 3,000 embedded images (about 75% accurate; cached).</summary>
    public static Module TrainedMlp()
    {
        if (_trained != null) return _trained;
        var g = new Generator(3);
        var m = new Sequential(new Flatten(), new Linear(784, 32, generator: g), new ReLU(), new Linear(32, 10, generator: g));
        var train = new TensorDataset(Data.Train.Inputs.NarrowRows(0, 3000), Data.Train.Targets.NarrowRows(0, 3000));
        var opt = new Adam(m.Parameters(), 3e-3f);
        foreach (var (x, y) in new DataLoader(train, 100, shuffle: true, seed: 1))
        {
            opt.ZeroGrad();
            Losses.CrossEntropy(m.Forward(x), y).Backward();
            opt.Step();
        }
        m.Eval();
        return _trained = m;
    }

    /// <summary>The small CNN of issue 5 (conv 8 k4 s2 p1, conv 16 k4 s2 p1, fc 100, fc 10) with random weights.</summary>
    public static Module RandomCnn(ulong seed)
    {
        var g = new Generator(seed);
        var m = new Sequential(new Conv2d(1, 8, 4, 2, 1, generator: g), new ReLU(), new Conv2d(8, 16, 4, 2, 1, generator: g), new ReLU(),
                               new Flatten(), new Linear(784, 100, generator: g), new ReLU(), new Linear(100, 10, generator: g));
        m.Eval();
        return m;
    }

    /// <summary>A random 784-24-10 MLP (about chance accuracy; its few correct examples are what can be verified).</summary>
    public static Module RandomMlp(ulong seed)
    {
        var g = new Generator(seed);
        var m = new Sequential(new Flatten(), new Linear(784, 24, generator: g), new ReLU(), new Linear(24, 10, generator: g));
        m.Eval();
        return m;
    }
}
