using Engine.Nn;
using Engine.Tensors;

namespace Engine.Tests.BoundProp;

/// <summary>Seeded random networks and sampling helpers for the bound tests.</summary>
public static class BoundTestNets
{
    public enum Act { Relu, Leaky, Sigmoid, Tanh }

    internal static Module Activation(Act a) => a switch
    {
        Act.Relu => new ReLU(),
        Act.Leaky => new LeakyReLU(0.1f),
        Act.Sigmoid => new Sigmoid(),
        _ => new Tanh(),
    };

    internal static Module Mlp(int seed, int[] sizes, Act act = Act.Relu)
    {
        var g = new Generator((ulong)seed);
        var layers = new List<Module>();
        for (int i = 0; i + 1 < sizes.Length; i++)
        {
            layers.Add(new Linear(sizes[i], sizes[i + 1], generator: g));
            if (i + 2 < sizes.Length) layers.Add(Activation(act));
        }
        return Finish(new Sequential([.. layers]), g);
    }

    /// <summary>Input [1, 6, 6]: conv(1→3, k3 s1 p1), act, [pool], conv(3→4, k3 s2 p1), [batchnorm], act, flatten, linear → 5.</summary>
    internal static Module Cnn(int seed, Act act = Act.Relu, string pool = "", bool batchNorm = false)
    {
        var g = new Generator((ulong)seed);
        var layers = new List<Module> { new Conv2d(1, 3, 3, 1, 1, generator: g), Activation(act) };
        int side = 6;
        if (pool == "max") { layers.Add(new MaxPool2d(2)); side = 3; }
        if (pool == "avg") { layers.Add(new AvgPool2d(2)); side = 3; }
        layers.Add(new Conv2d(3, 4, 3, 2, 1, generator: g));
        side = (side + 2 - 3) / 2 + 1;
        if (batchNorm) layers.Add(new BatchNorm2d(4));
        layers.Add(Activation(act));
        layers.Add(new Flatten());
        layers.Add(new Linear(4 * side * side, 5, generator: g));
        return Finish(new Sequential([.. layers]), g);
    }

    /// <summary>linear(d→h), relu, x + (linear, relu, linear)(x), relu, linear(h→k).</summary>
    internal static Module Residual(int seed, int d, int h, int k, Act act = Act.Relu)
    {
        var g = new Generator((ulong)seed);
        var net = new Sequential(
            new Linear(d, h, generator: g), Activation(act),
            new Residual(new Sequential(new Linear(h, h, generator: g), Activation(act), new Linear(h, h, generator: g))),
            Activation(act),
            new Linear(h, k, generator: g));
        return Finish(net, g);
    }

    /// <summary>Random biases (so ReLUs are not all centred) and random running statistics; evaluation mode.</summary>
    internal static Module Finish(Module m, Generator g)
    {
        foreach (var (name, t) in m.NamedParameters())
            if (name.EndsWith("bias")) t.CopyFrom(Tensor.Uniform(t.Shape, -0.5f, 0.5f, g));
            else if (name.EndsWith("weight") && t.Rank == 1) t.CopyFrom(Tensor.Uniform(t.Shape, 0.5f, 1.5f, g));
        foreach (var (name, t) in m.NamedBuffers())
            if (name.EndsWith("running_mean")) t.CopyFrom(Tensor.Uniform(t.Shape, -0.3f, 0.3f, g));
            else if (name.EndsWith("running_var")) t.CopyFrom(Tensor.Uniform(t.Shape, 0.5f, 2f, g));
        m.Eval();
        return m;
    }

    /// <summary>Points of the L∞ box [lo, hi] around each example: corners when few dims, else uniform samples plus random corners.</summary>
    internal static List<float[]> BoxPoints(float[] lo, float[] hi, int samples, Random rng)
    {
        int d = lo.Length;
        var pts = new List<float[]>();
        if (d <= 6)
            for (int m = 0; m < 1 << d; m++)
                pts.Add(Enumerable.Range(0, d).Select(j => ((m >> j) & 1) == 0 ? lo[j] : hi[j]).ToArray());
        for (int s = 0; s < samples; s++)
        {
            bool corner = s % 2 == 0;
            pts.Add(Enumerable.Range(0, d).Select(j => corner ? (rng.Next(2) == 0 ? lo[j] : hi[j]) : lo[j] + (float)rng.NextDouble() * (hi[j] - lo[j])).ToArray());
        }
        return pts;
    }

    /// <summary>Points of the L2 ball of radius eps around x (on the sphere and inside).</summary>
    internal static List<float[]> BallPoints(float[] x, float eps, int samples, Random rng)
    {
        var pts = new List<float[]>();
        for (int s = 0; s < samples; s++)
        {
            var dir = x.Select(_ => Gauss(rng)).ToArray();
            double norm = Math.Sqrt(dir.Sum(v => v * v));
            double radius = eps * (s % 2 == 0 ? 0.999 : rng.NextDouble());
            pts.Add(x.Select((v, j) => (float)(v + dir[j] / norm * radius)).ToArray());
        }
        return pts;
    }

    private static double Gauss(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>C·f(p) for each point p (as one batch) — [points, rows].</summary>
    internal static float[][] SpecValues(Module m, List<float[]> points, int[] inShape, float[,]? c)
    {
        int n = points.Count, d = points[0].Length;
        var flat = points.SelectMany(p => p).ToArray();
        float[] y;
        using (new Autograd.NoGrad())
            y = Engine.Graph.Executor.Forward(m.Graph, Tensor.FromArray(flat, [n, .. inShape])).ToArray();
        int k = y.Length / n;
        var res = new float[n][];
        for (int i = 0; i < n; i++)
        {
            if (c == null) { res[i] = y.AsSpan(i * k, k).ToArray(); continue; }
            int rows = c.GetLength(0);
            res[i] = new float[rows];
            for (int r = 0; r < rows; r++)
            {
                double s = 0;
                for (int j = 0; j < k; j++) s += c[r, j] * y[i * k + j];
                res[i][r] = (float)s;
            }
        }
        return res;
    }
}
