using Engine.Bounds;
using Engine.Graph;
using Engine.Tensors;
using Engine.Tests.BoundProp;
using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Verification;

[TestFixture]
public class RigorousGuardTests
{
    private static (double[] Lo, double[] Hi) RandomBox(Random r, int n, double width)
    {
        var lo = new double[n]; var hi = new double[n];
        for (int i = 0; i < n; i++) { double c = r.NextDouble() * 2 - 1; lo[i] = c - width * r.NextDouble(); hi[i] = c + width * r.NextDouble(); }
        return (lo, hi);
    }

    [TestCase(1, 4, 8, 3)]
    [TestCase(2, 6, 16, 5)]
    [TestCase(3, 3, 32, 2)]
    public void MlpBoundsContainSampledPointsAndCorners(int seed, int d, int h, int k)
    {
        var net = BoundTestNets.Mlp(seed, [d, h, h, k]);
        var g = RigorousNetwork.TryCreate(net.Graph, [d], out var why) ?? throw new AssertionException(why!);
        var rnd = new Random(seed);
        for (int trial = 0; trial < 5; trial++)
        {
            var (lo, hi) = RandomBox(rnd, d, 0.3);
            var box = g.Analyze(lo, hi);
            var c = Enumerable.Range(0, k).Select(_ => rnd.NextDouble() * 2 - 1).ToArray();
            double lb = box.LowerBound(c, out _);
            for (int s = 0; s < 300; s++)
            {
                var x = new double[d];
                for (int i = 0; i < d; i++)
                    x[i] = s < (1 << d) ? ((s >> i & 1) == 0 ? lo[i] : hi[i]) : lo[i] + (hi[i] - lo[i]) * rnd.NextDouble();
                var y = g.Evaluate(x);
                for (int j = 0; j < k; j++)
                    Assert.That(y[j], Is.InRange(box.OutputLower[j], box.OutputUpper[j]), $"output {j} at sample {s}");
                Assert.That(c.Zip(y, (a, b) => a * b).Sum(), Is.GreaterThanOrEqualTo(lb));
            }
        }
    }

    [Test]
    public void GuardMatchesFloat32CrownClosely()
    {
        // The float64 guard is CROWN with the same relaxation: its bound differs from the float32 CROWN bound
        // by rounding only (plus the guard's error terms), not by being looser in method.
        var net = BoundTestNets.Mlp(7, [5, 20, 20, 4]);
        var g = RigorousNetwork.TryCreate(net.Graph, [5], out _)!;
        var x = new float[] { 0.1f, -0.2f, 0.3f, 0f, 0.5f };
        const float eps = 0.05f;
        var lo = x.Select(v => (double)(v - eps)).ToArray();
        var hi = x.Select(v => (double)(v + eps)).ToArray();
        var f32 = Engine.Bounds.Bounds.Compute(net.Graph, Tensor.FromArray(x, 1, 5), Perturbation.LInf(eps), BoundMethod.Crown,
            options: new BoundOptions { SparseIntermediates = false });
        var box = g.Analyze(lo, hi);
        var l32 = f32.Lower.ToArray();
        for (int j = 0; j < 4; j++)
        {
            var c = new double[4]; c[j] = 1;
            double lb = box.LowerBound(c, out _);
            Assert.That(lb, Is.EqualTo(l32[j]).Within(1e-3 + 1e-3 * Math.Abs(l32[j])), $"output {j}");
        }
    }

    [Test]
    public void OneAffineLayerIsTightToRounding()
    {
        var b = new GraphBuilder();
        var x = b.Input();
        var w = b.Parameter("w", Tensor.FromArray([0.5f, -1.25f, 3f], 1, 3));
        var bias = b.Parameter("b", Tensor.FromArray([0.125f], 1));
        b.Output(b.Apply(new LinearOp(), x, w, bias));
        var g = RigorousNetwork.TryCreate(b.Build(), [3], out _)!;
        var box = g.Analyze([-1, 0, 1], [1, 2, 2]);
        // min = 0.5·(−1) − 1.25·2 + 3·1 + 0.125 = 0.125.
        double lb = box.LowerBound([1.0], out var coeffs);
        Assert.That(lb, Is.LessThanOrEqualTo(0.125));
        Assert.That(lb, Is.GreaterThan(0.125 - 1e-13));
        Assert.That(coeffs, Is.EqualTo(new[] { 0.5, -1.25, 3 }));
    }

    private static ComputeGraph Identity1()
    {
        var b = new GraphBuilder();
        var x = b.Input();
        var w = b.Parameter("w", Tensor.FromArray([1f], 1, 1));
        b.Output(b.Apply(new LinearOp(), x, w));
        return b.Build();
    }

    [Test]
    public void NearZeroMarginIsNotClaimedAsHolds()
    {
        // y = x on [1, 2]; unsafe: y <= 1 − 2⁻⁵². Over the reals min y = 1 > d, so the property holds, but by less
        // than the guard's resolution (it widens d for the decimal-to-double rounding): the verifier must not say holds.
        double d = Math.BitDecrement(1.0);
        var c = new VerificationCase([1.0], [2.0], [new UnsafeConjunction(new double[,] { { 1 } }, [d])]);
        var r = Verifier.Verify(Identity1(), [1], new VerificationProblem([c]), new VerifierOptions { Timeout = TimeSpan.FromSeconds(20) });
        Assert.That(r.Verdict, Is.Not.EqualTo(Verdict.Holds), r.Detail);
        Assert.That(r.Verdict, Is.Not.EqualTo(Verdict.Violated), r.Detail);
    }

    [Test]
    public void ZeroMarginTouchingPropertyIsViolatedNotHolds()
    {
        // y = x on [1, 2], unsafe y <= 1: x = 1 is a counterexample (the boundary counts).
        var c = new VerificationCase([1.0], [2.0], [new UnsafeConjunction(new double[,] { { 1 } }, [1.0])]);
        var r = Verifier.Verify(Identity1(), [1], new VerificationProblem([c]), new VerifierOptions { Timeout = TimeSpan.FromSeconds(20) });
        Assert.That(r.Verdict, Is.EqualTo(Verdict.Violated), r.Detail);
        Assert.That(r.Counterexample!.X[0], Is.EqualTo(1.0));
    }

    [Test]
    public void ClearMarginHolds()
    {
        var c = new VerificationCase([1.0], [2.0], [new UnsafeConjunction(new double[,] { { 1 } }, [0.999])]);
        var r = Verifier.Verify(Identity1(), [1], new VerificationProblem([c]), new VerifierOptions { Timeout = TimeSpan.FromSeconds(20) });
        Assert.That(r.Verdict, Is.EqualTo(Verdict.Holds), r.Detail);
    }

    [Test]
    public void UnsupportedGraphIsNeverHolds()
    {
        // LeakyRelu is outside the guard: even an obviously safe property stays unknown.
        var b = new GraphBuilder();
        var x = b.Input();
        var w = b.Parameter("w", Tensor.FromArray([1f], 1, 1));
        b.Output(b.Apply(new LeakyReluOp(0.1f), b.Apply(new LinearOp(), x, w)));
        var graph = b.Build();
        Assert.That(RigorousNetwork.TryCreate(graph, [1], out var why), Is.Null);
        Assert.That(why, Does.Contain("LeakyRelu"));
        var c = new VerificationCase([0.0], [1.0], [new UnsafeConjunction(new double[,] { { 1 } }, [-5])]);
        var r = Verifier.Verify(graph, [1], new VerificationProblem([c]), new VerifierOptions { Timeout = TimeSpan.FromSeconds(10) });
        Assert.That(r.Verdict, Is.EqualTo(Verdict.Unknown), r.Detail);
    }

    [Test]
    public void CancellationIsChargedNotIgnored()
    {
        // y = 1e8·x0 − 1e8·x1 + x2 with x0 = x1 (a point box): the exact value is x2, computed with cancellation of
        // huge terms. The rigorous bound must stay below the exact minimum.
        var b = new GraphBuilder();
        var x = b.Input();
        var w = b.Parameter("w", Tensor.FromArray([1e8f, -1e8f, 1f], 1, 3));
        b.Output(b.Apply(new LinearOp(), x, w));
        var g = RigorousNetwork.TryCreate(b.Build(), [3], out _)!;
        var box = g.Analyze([0.1, 0.1, 0.3], [0.1, 0.1, 0.3]);
        double exactMin = 1e8 * 0.1 - 1e8 * 0.1 + 0.3;
        Assert.That(box.LowerBound([1.0], out _), Is.LessThanOrEqualTo(exactMin));
        Assert.That(box.OutputUpper[0], Is.GreaterThanOrEqualTo(exactMin));
    }

    [Test]
    public void CnnConvIsReadExactly()
    {
        var net = BoundTestNets.Cnn(3);
        var g = RigorousNetwork.TryCreate(net.Graph, [1, 6, 6], out var why) ?? throw new AssertionException(why!);
        var rnd = new Random(3);
        var x = Enumerable.Range(0, 36).Select(_ => (float)rnd.NextDouble()).ToArray();
        float[] y32;
        using (new Engine.Autograd.NoGrad()) y32 = Executor.Forward(net.Graph, Tensor.FromArray(x, 1, 1, 6, 6)).ToArray();
        var y64 = g.Evaluate(x.Select(v => (double)v).ToArray());
        for (int j = 0; j < y32.Length; j++) Assert.That(y64[j], Is.EqualTo(y32[j]).Within(1e-4));
        var lo = x.Select(v => v - 0.01).ToArray();
        var hi = x.Select(v => v + 0.01).ToArray();
        var box = g.Analyze(lo, hi);
        for (int j = 0; j < y32.Length; j++) Assert.That(y64[j], Is.InRange(box.OutputLower[j], box.OutputUpper[j]));
    }
}
