using Engine.Bounds;
using Engine.Graph;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

/// <summary>Bounds of Div by a constant: soundness by sampling, exactness on affine graphs, refusal of what has no rule.</summary>
[TestFixture]
public class DivBoundTests
{
    private static readonly BoundMethod[] Methods = [BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.CrownIbp, BoundMethod.AlphaCrown];

    // Divisors with both signs and magnitudes far from 1, none a power of two (so x/c and x·(1/c) differ in float32).
    private static readonly float[] Divisors = [0.3f, -1.7f, 2.9f, -0.11f, 5.3f];

    // x [B, 4] -> Linear(4 -> 5) -> Div(c [5]) -> act -> Linear(5 -> 3) -> Div(-0.7, scalar) [-> Div(c [3]) after a
    // broadcast: the last Div divides an [B, 1] value by a [3] constant, so its output is larger than its input].
    private static ComputeGraph MlpWithDivs(int seed, bool sigmoid, bool broadcast)
    {
        var g = new Generator((ulong)seed);
        var b = new GraphBuilder();
        var x = b.Input();
        var h = b.Apply(new LinearOp(), x, b.Parameter("w1", Tensor.Uniform([5, 4], -1, 1, g)), b.Parameter("b1", Tensor.Uniform([5], -0.5f, 0.5f, g)));
        h = b.ApplyNamed("div1", new DivOp(), h, b.Constant("c1", Tensor.FromArray(Divisors, 5)));
        h = b.Apply(sigmoid ? new SigmoidOp() : new ReluOp(), h);
        h = b.Apply(new LinearOp(), h, b.Parameter("w2", Tensor.Uniform([broadcast ? 1 : 3, 5], -1, 1, g)));
        h = b.Apply(new DivOp(), h, b.Constant("c2", Tensor.Scalar(-0.7f)));
        if (broadcast)
        {
            h = b.Apply(new DivOp(), h, b.Constant("c3", Tensor.FromArray([3.1f, -0.45f, 1.3f], 3)));
            h = b.Apply(new LinearOp(), b.Apply(new ReluOp(), h), b.Parameter("w3", Tensor.Uniform([2, 3], -1, 1, g)));
        }
        b.Output(h);
        return b.Build();
    }

    // x [B, 2, 5, 5] -> Conv(2 -> 3, k3 p1) -> Div(c [3, 1, 1], per channel) -> ReLU -> Flatten -> Linear(75 -> 4).
    private static ComputeGraph ConvWithDiv(int seed)
    {
        var g = new Generator((ulong)seed);
        var b = new GraphBuilder();
        var x = b.Input();
        var h = b.Apply(new Conv2dOp(1, 1), x, b.Parameter("cw", Tensor.Uniform([3, 2, 3, 3], -0.5f, 0.5f, g)), b.Parameter("cb", Tensor.Uniform([3], -0.3f, 0.3f, g)));
        h = b.Apply(new DivOp(), h, b.Constant("c", Tensor.FromArray([0.7f, -2.3f, 0.19f], 3, 1, 1)));
        h = b.Apply(new FlattenOp(), b.Apply(new ReluOp(), h));
        b.Output(b.Apply(new LinearOp(), h, b.Parameter("w", Tensor.Uniform([4, 75], -0.3f, 0.3f, g))));
        return b.Build();
    }

    /// <summary>Every sampled point (uniform and box corners) of every example maps inside every method's bounds.</summary>
    private static void AssertSound(ComputeGraph graph, int[] shape, float eps, int seed)
    {
        var g = new Generator((ulong)seed + 100);
        var rng = new Random(seed);
        const int batch = 2;
        var x = Tensor.Uniform([batch, .. shape], -1, 1, g);
        var xs = x.ToArray();
        foreach (var m in Methods)
        {
            var r = B.Compute(graph, x, Perturbation.LInf(eps), m, null, new BoundOptions { AlphaIterations = 5 });
            var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
            for (int s = 0; s < 100; s++)
            {
                bool corner = s % 2 == 0;
                var p = xs.Select(v => corner ? v + (rng.Next(2) == 0 ? -eps : eps) : v + (float)(rng.NextDouble() * 2 - 1) * eps).ToArray();
                float[] y;
                using (new Engine.Autograd.NoGrad()) y = Executor.Forward(graph, Tensor.FromArray(p, [batch, .. shape])).ToArray();
                Assert.That(y, Has.Length.EqualTo(lo.Length));
                for (int j = 0; j < y.Length; j++)
                    if (!(y[j] >= lo[j] && y[j] <= hi[j]))
                        Assert.Fail($"{m}: output {j} of sample {s} is {y[j]:R}, outside [{lo[j]:R}, {hi[j]:R}] (seed {seed}).");
            }
        }
    }

    [Test]
    public void MlpWithDivisionsIsSound([Values] bool sigmoid, [Values] bool broadcast)
    {
        for (int seed = 0; seed < 4; seed++)
            AssertSound(MlpWithDivs(seed, sigmoid, broadcast), [4], 0.05f + 0.1f * seed, seed);
    }

    [Test]
    public void ConvWithPerChannelDivisionIsSound()
    {
        for (int seed = 0; seed < 3; seed++)
            AssertSound(ConvWithDiv(seed), [2, 5, 5], 0.03f + 0.05f * seed, seed);
    }

    [TestCase(BoundMethod.Ibp)]
    [TestCase(BoundMethod.Crown)]
    public void DivThenLinearIsExact(BoundMethod method)
    {
        // y = W (x / c) + b is affine, so both IBP (exact on the first affine layer, and Div is element-wise) and CROWN
        // give its exact range: W/c·x0 + b ∓ eps·Σ|W/c| (in double here, within float tolerance).
        var g = new Generator(21);
        float[] c = [0.3f, -1.7f, 2.9f, -0.11f];
        var w = Tensor.Uniform([3, 4], -1, 1, g);
        var bias = Tensor.Uniform([3], -0.5f, 0.5f, g);
        var b = new GraphBuilder();
        var x = b.Input();
        var h = b.Apply(new DivOp(), x, b.Constant("c", Tensor.FromArray(c, 4)));
        b.Output(b.Apply(new LinearOp(), h, b.Parameter("w", w), b.Parameter("b", bias)));
        var x0 = Tensor.Uniform([2, 4], -1, 1, g);
        const float eps = 0.07f;
        var r = B.Compute(b.Build(), x0, Perturbation.LInf(eps), method);
        var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
        var wv = w.ToArray(); var bv = bias.ToArray(); var xv = x0.ToArray();
        for (int e = 0; e < 2; e++)
            for (int o = 0; o < 3; o++)
            {
                double mid = bv[o], rad = 0;
                for (int j = 0; j < 4; j++) { double k = wv[o * 4 + j] / (double)c[j]; mid += k * xv[e * 4 + j]; rad += Math.Abs(k) * eps; }
                double tol = 1e-4 * (Math.Abs(mid) + rad + 1);
                Assert.That(lo[e * 3 + o], Is.EqualTo(mid - rad).Within(tol), $"{method} lower {e},{o}");
                Assert.That(hi[e * 3 + o], Is.EqualTo(mid + rad).Within(tol), $"{method} upper {e},{o}");
                Assert.That(lo[e * 3 + o], Is.LessThanOrEqualTo(mid - rad + 1e-12), "the margin widens outward");
            }
    }

    [Test]
    public void DivOfTheInputIsTheExactBox()
    {
        // IBP of x / c is [min, max] of the two divided ends, per element; negative divisors swap them.
        float[] c = [-3f, 7f, -0.3f], xs = [0.5f, -0.25f, 1f];
        float eps = 0.1f;
        var b = new GraphBuilder();
        var x = b.Input();
        b.Output(b.Apply(new DivOp(), x, b.Constant("c", Tensor.FromArray(c, 3))));
        var r = B.Compute(b.Build(), Tensor.FromArray(xs, 1, 3), Perturbation.LInf(eps), BoundMethod.Ibp);
        var lo = new float[3]; var hi = new float[3];
        for (int i = 0; i < 3; i++)
        {
            float a = (xs[i] - eps) / c[i], z = (xs[i] + eps) / c[i];
            (lo[i], hi[i]) = (Math.Min(a, z), Math.Max(a, z));
        }
        Assert.That(r.Lower.ToArray(), Is.EqualTo(lo));
        Assert.That(r.Upper.ToArray(), Is.EqualTo(hi));
    }

    [Test]
    public void ZeroDivisorAndPerturbedDivisorAreRefused()
    {
        var b = new GraphBuilder();
        var x = b.Input();
        b.Output(b.ApplyNamed("scale_down", new DivOp(), x, b.Constant("c", Tensor.FromArray([2f, 0f, 1f], 3))));
        var zero = b.Build();
        foreach (var m in new[] { BoundMethod.Ibp, BoundMethod.Crown })
        {
            var ex = Assert.Throws<NotSupportedException>(() => B.Compute(zero, Tensor.Zeros(1, 3), Perturbation.LInf(0.1f), m))!;
            Assert.That(ex.Message, Does.Contain("scale_down").And.Contain("zero").And.Contain("index 1"));
        }

        // 1 / x: the divisor depends on the perturbed input.
        var b2 = new GraphBuilder();
        var x2 = b2.Input();
        b2.Output(b2.ApplyNamed("inverse", new DivOp(), b2.Constant("one", Tensor.Scalar(1f)), x2));
        var ex2 = Assert.Throws<NotSupportedException>(() => B.Compute(b2.Build(), Tensor.Ones(1, 3), Perturbation.LInf(0.1f), BoundMethod.Ibp))!;
        Assert.That(ex2.Message, Does.Contain("inverse").And.Contain("divisor"));
    }
}
