using Engine.Bounds;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.BoundProp.BoundTestNets;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

public class BoundSoundnessTests
{
    private static readonly BoundMethod[] Methods = [BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.CrownIbp, BoundMethod.AlphaCrown];
    private static readonly BoundOptions Fast = new() { AlphaIterations = 5 };

    /// <summary>Every sampled point's spec value lies inside every method's bounds, for every example of the batch.</summary>
    private static void CheckSound(Module net, int[] inShape, int batch, Perturbation p, int seed, int samples, bool margins, BoundOptions? options = null)
    {
        var rng = new Random(seed);
        int d = inShape.Aggregate(1, (a, v) => a * v);
        var xs = Enumerable.Range(0, batch * d).Select(_ => (float)rng.NextDouble()).ToArray();
        var x = Tensor.FromArray(xs, [batch, .. inShape]);
        int k;
        using (new Autograd.NoGrad()) k = Engine.Graph.Executor.Forward(net.Graph, x).Numel / batch;
        var labels = Enumerable.Range(0, batch).Select(i => i % k).ToArray();
        var spec = margins ? Spec.Margins(labels, k) : null;
        foreach (var m in Methods)
        {
            var r = B.Compute(net, x, p, m, spec, options ?? Fast);
            var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
            int rows = r.Lower.Size(1);
            for (int b = 0; b < batch; b++)
            {
                var center = xs.AsSpan(b * d, d).ToArray();
                List<float[]> pts;
                if (p.Norm == PerturbationNorm.L2) pts = BallPoints(center, p.Eps, samples, rng);
                else
                {
                    var l = center.Select(v => Math.Max(v - p.Eps, p.ClipLow ?? float.NegativeInfinity)).ToArray();
                    var h = center.Select(v => Math.Min(v + p.Eps, p.ClipHigh ?? float.PositiveInfinity)).ToArray();
                    pts = BoxPoints(l, h, samples, rng);
                }
                pts.Add(center);
                float[,]? c = null;
                if (margins)
                {
                    c = new float[k - 1, k];
                    var cs = spec!.C.ToArray();
                    for (int i = 0; i < k - 1; i++) for (int j = 0; j < k; j++) c[i, j] = cs[(b * (k - 1) + i) * k + j];
                }
                var vals = SpecValues(net, pts, inShape, c);
                foreach (var v in vals)
                    for (int i = 0; i < rows; i++)
                    {
                        float lb = lo[b * rows + i], ub = hi[b * rows + i];
                        if (!(v[i] >= lb && v[i] <= ub))
                            Assert.Fail($"{m}: row {i} of example {b}: value {v[i]} outside [{lb}, {ub}] (seed {seed}, {p}).");
                    }
            }
        }
    }

    [Test]
    public void MlpBoundsContainSampledOutputs([Values] Act act)
    {
        for (int seed = 0; seed < 20; seed++)
            CheckSound(Mlp(seed, [4, 12, 10, 3], act), [4], 3, Perturbation.LInf(0.05f + 0.1f * (seed % 4)), seed, 40, margins: seed % 2 == 0);
    }

    [Test]
    public void CnnBoundsContainSampledOutputs([Values("", "max", "avg")] string pool, [Values] bool batchNorm)
    {
        for (int seed = 0; seed < 8; seed++)
            CheckSound(Cnn(seed, seed % 2 == 0 ? Act.Relu : Act.Tanh, pool, batchNorm), [1, 6, 6], 2, Perturbation.LInf(0.02f + 0.04f * seed), seed, 40, margins: true);
    }

    [Test]
    public void CnnWithLeakyAndSigmoidIsSound([Values(Act.Leaky, Act.Sigmoid)] Act act)
    {
        for (int seed = 0; seed < 3; seed++)
            CheckSound(Cnn(seed + 10, act, seed == 1 ? "max" : "avg", seed == 2), [1, 6, 6], 2, Perturbation.LInf(0.1f), seed, 30, margins: false);
    }

    [Test]
    public void ResidualBoundsContainSampledOutputs([Values(Act.Relu, Act.Tanh)] Act act)
    {
        for (int seed = 0; seed < 12; seed++)
            CheckSound(Residual(seed, 3, 8, 4, act), [3], 2, Perturbation.LInf(0.1f + 0.05f * seed), seed, 40, margins: seed % 2 == 1);
    }

    [Test]
    public void L2BallBoundsContainSampledOutputs()
    {
        for (int seed = 0; seed < 6; seed++)
        {
            CheckSound(Mlp(seed, [5, 10, 10, 3]), [5], 2, Perturbation.L2(0.3f), seed, 60, margins: true);
            CheckSound(Cnn(seed, Act.Relu), [1, 6, 6], 1, Perturbation.L2(0.5f), seed, 40, margins: false);
        }
    }

    [Test]
    public void ClippedBoxIsRespectedAndSound()
    {
        for (int seed = 0; seed < 4; seed++)
            CheckSound(Mlp(seed, [4, 10, 3]), [4], 2, Perturbation.LInf(0.4f, 0f, 1f), seed, 40, margins: false);

        // One affine layer: the clipped bound is the exact minimum over the clipped box, which is above the unclipped one.
        var net = Mlp(1, [2, 1]);
        var w = net.Parameters().First().ToArray();
        var bias = net.Parameters().Last().Item();
        var x = Tensor.FromArray([0.1f, 0.95f], 1, 2);
        var clipped = B.Compute(net, x, Perturbation.LInf(0.3f, 0f, 1f), BoundMethod.Crown);
        var plain = B.Compute(net, x, Perturbation.LInf(0.3f), BoundMethod.Crown);
        double[] lo = [0, 0.65], hi = [0.4, 1];
        double exact = bias + Enumerable.Range(0, 2).Sum(j => Math.Min(w[j] * lo[j], w[j] * hi[j]));
        Assert.That(clipped.Lower.Item(), Is.EqualTo(exact).Within(1e-4));
        Assert.That(clipped.Lower.Item(), Is.GreaterThan(plain.Lower.Item() + 0.01));
    }

    [Test]
    public void AlphaCrownWithManyStepsIsSound()
    {
        var opts = new BoundOptions { AlphaIterations = 30, AlphaLearningRate = 0.3f };
        for (int seed = 0; seed < 3; seed++)
            CheckSound(Mlp(seed + 40, [3, 16, 16, 4]), [3], 2, Perturbation.LInf(0.3f), seed, 50, margins: true, opts);
    }
}
