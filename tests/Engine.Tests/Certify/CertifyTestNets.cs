using Engine.Certify;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Tests.Certify;

/// <summary>Tiny seeded classifiers and data for the certified-training tests (8×8 inputs in [0, 1], 10 classes).</summary>
internal static class CertifyTestNets
{
    /// <summary>Every training method, for tests that must cover each one (a new method joins them by itself).</summary>
    public static readonly TrainMethod[] AllMethods = Enum.GetValues<TrainMethod>();

    /// <summary>conv(1→4, k3 s2 p1), ReLU, flatten, linear(64→16), ReLU, linear(16→10).</summary>
    public static Module Net(int seed)
    {
        var g = new Generator((ulong)seed);
        return new Sequential(
            new Conv2d(1, 4, 3, 2, 1, generator: g), new ReLU(),
            new Flatten(),
            new Linear(64, 16, generator: g), new ReLU(),
            new Linear(16, 10, generator: g));
    }

    /// <summary>A batch [n, 1, 8, 8] in [0, 1] (some pixels exactly 0 or 1, so the domain clipping matters).</summary>
    public static Tensor Inputs(int n, int seed)
    {
        var x = Tensor.Uniform([n, 1, 8, 8], -0.2f, 1.2f, new Generator((ulong)seed));
        return x.Clamp(0f, 1f);
    }

    /// <summary>Labels a small network can learn: the argmax of a fixed random teacher on x.</summary>
    public static Tensor TeacherLabels(Tensor x)
    {
        using var _ = new Engine.Autograd.NoGrad();
        var logits = Net(999).Forward(x).ToArray();
        int n = x.Dims[0];
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            int best = 0;
            for (int c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
            y[i] = best;
        }
        return Tensor.FromArray(y, n);
    }

    /// <summary>Labels [n] in [0, 10).</summary>
    public static Tensor Labels(int n, int seed)
    {
        var g = new Generator((ulong)seed);
        var y = new float[n];
        for (int i = 0; i < n; i++) y[i] = g.NextInt(10);
        return Tensor.FromArray(y, n);
    }
}
