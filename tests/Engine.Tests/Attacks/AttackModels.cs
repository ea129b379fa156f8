using Engine.Autograd;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Tests.Attacks;

// Models the attack tests share: a hand-set affine classifier (where the optimal attacks are known in closed
// form) and a small MLP trained once on a synthetic 3-class problem in [0, 1]^4.
internal static class AttackModels
{
    public const int Features = 4, Classes = 3;

    /// <summary>y = W x + b with the given weights [classes, features] and bias.</summary>
    public static Sequential Affine(float[] weight, float[] bias)
    {
        int classes = bias.Length, features = weight.Length / classes;
        var layer = new Linear(features, classes);
        layer.Weight.CopyFrom(Tensor.FromArray(weight, classes, features));
        layer.Bias!.CopyFrom(Tensor.FromArray(bias, classes));
        return new Sequential(layer);
    }

    // Labels from a fixed linear rule on uniform inputs: argmax_k (A x + a)_k.
    private static readonly float[] RuleA = [2f, -1f, 0.5f, 1f, -1f, 2f, 1f, -0.5f, -1f, -1f, -1.5f, 0.5f];
    private static readonly float[] RuleB = [0f, 0f, 1f];

    public static (Tensor X, Tensor Y) Problem(int n, ulong seed)
    {
        var x = Tensor.Uniform([n, Features], 0f, 1f, new Generator(seed));
        var xs = x.ToArray();
        var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            int best = 0; float bestV = float.NegativeInfinity;
            for (int k = 0; k < Classes; k++)
            {
                float v = RuleB[k];
                for (int j = 0; j < Features; j++) v += RuleA[k * Features + j] * xs[i * Features + j];
                if (v > bestV) { bestV = v; best = k; }
            }
            y[i] = best;
        }
        return (x, Tensor.FromArray(y, n));
    }

    private static readonly Lazy<Sequential> Trained = new(TrainMlp);

    /// <summary>The trained MLP (shared; tests must not change its weights).</summary>
    public static Sequential Mlp => Trained.Value;

    private static Sequential TrainMlp()
    {
        var g = new Generator(7);
        var m = new Sequential(new Linear(Features, 32, generator: g), new ReLU(), new Linear(32, 32, generator: g), new ReLU(),
                               new Linear(32, Classes, generator: g));
        var (x, y) = Problem(600, 11);
        var opt = new Adam(m.Parameters(), lr: 0.01f);
        for (int s = 0; s < 400; s++)
        {
            int start = s * 60 % 600;
            opt.ZeroGrad();
            Losses.CrossEntropy(m.Forward(x.NarrowRows(start, 60)), y.NarrowRows(start, 60)).Backward();
            opt.Step();
        }
        m.ZeroGrad();
        return m;
    }

    public static float Accuracy(Module m, Tensor x, Tensor y)
    {
        float[] pred;
        using (new NoGrad()) pred = m.Forward(x).ArgMax(1).ToArray();
        var t = y.ToArray();
        return pred.Zip(t).Count(p => p.First == p.Second) / (float)t.Length;
    }

    /// <summary>Per-sample max |a − b| over the sample's elements.</summary>
    public static float[] LInfDist(Tensor a, Tensor b)
    {
        int n = a.Size(0), d = a.Numel / n;
        var x = a.ToArray(); var y = b.ToArray();
        return Enumerable.Range(0, n).Select(i => Enumerable.Range(0, d).Max(j => MathF.Abs(x[i * d + j] - y[i * d + j]))).ToArray();
    }

    /// <summary>Per-sample ‖a − b‖₂.</summary>
    public static float[] L2Dist(Tensor a, Tensor b)
    {
        int n = a.Size(0), d = a.Numel / n;
        var x = a.ToArray(); var y = b.ToArray();
        return Enumerable.Range(0, n).Select(i => MathF.Sqrt(Enumerable.Range(0, d).Sum(j => (x[i * d + j] - y[i * d + j]) * (x[i * d + j] - y[i * d + j])))).ToArray();
    }
}
