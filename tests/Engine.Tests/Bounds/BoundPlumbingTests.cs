using Engine.Autograd;
using Engine.Bounds;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.BoundProp.BoundTestNets;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

public class BoundPlumbingTests
{
    [Test]
    public void ConvTransposeIsTheAdjointOfConvAndDifferentiable()
    {
        var g = new Generator(5);
        var w = Tensor.Uniform([4, 2, 3, 3], -1, 1, g);
        var x = Tensor.Uniform([3, 2, 7, 6], -1, 1, g);
        var y = Tensor.Conv2d(x, w, null, (2, 1), (1, 1), (1, 1), 2 / 2);
        var a = Tensor.Uniform(y.Shape, -1, 1, g);
        var at = LinearAdjoints.ConvTranspose(a, w, 7, 6, (2, 1), (1, 1), (1, 1), 1);
        Assert.That((x * at).Sum().Item(), Is.EqualTo((y * a).Sum().Item()).Within(1e-3));
        GradCheck.Assert(t => LinearAdjoints.ConvTranspose(t[0], t[1], 7, 6, (2, 1), (1, 1), (1, 1), 1), [a, w]);
    }

    [Test]
    public void PoolAdjointsAreAdjointsAndDifferentiable()
    {
        var g = new Generator(6);
        var geo = new Pool2dGeometry(3, 5, 6, 2, 3, 2, 2, 1, 1);
        var x = Tensor.Uniform([3, 5, 6], -1, 1, g);
        var a = Tensor.Uniform([3, geo.OutH, geo.OutW], -1, 1, g);
        var avg = Tensor.AvgPool2d(x.Unsqueeze(0), (2, 3), (2, 2), (1, 1)).Squeeze(0);
        Assert.That((x * LinearAdjoints.AvgPoolTranspose(a, geo, true)).Sum().Item(), Is.EqualTo((avg * a).Sum().Item()).Within(1e-4));
        GradCheck.Assert(t => LinearAdjoints.AvgPoolTranspose(t[0], geo, false), [a]);
        var idx = LinearAdjoints.ArgMaxWindows(x, geo);
        var max = Tensor.MaxPool2d(x.Unsqueeze(0), (2, 3), (2, 2), (1, 1)).Squeeze(0);
        Assert.That((x * LinearAdjoints.Scatter(a, idx, geo)).Sum().Item(), Is.EqualTo((max * a).Sum().Item()).Within(1e-4));
        GradCheck.Assert(t => LinearAdjoints.Scatter(t[0], idx, geo), [a]);
    }

    [Test]
    public void IbpAndCrownIbpBoundsTrainTheWeights()
    {
        var net = Cnn(1, Act.Relu, "avg", batchNorm: true);
        var x = Tensor.Uniform([2, 1, 6, 6], 0, 1, new Generator(2));
        var spec = Spec.Margins([1, 2], 5);
        var mixed = B.ComputeMixed(net.Graph, x, Perturbation.LInf(0.05f), 0.5f, spec);
        net.ZeroGrad();
        (-mixed.Lower).Relu().Sum().Backward();
        foreach (var (name, p) in net.NamedParameters())
        {
            Assert.That(p.Grad, Is.Not.Null, name);
            Assert.That(p.Grad!.Abs().Sum().Item(), Is.GreaterThan(0), name);
        }
        var ibp = B.Compute(net, x, Perturbation.LInf(0.05f), BoundMethod.Ibp, spec);
        var crownIbp = B.Compute(net, x, Perturbation.LInf(0.05f), BoundMethod.CrownIbp, spec);
        Assert.That(mixed.Lower.ToArray(), Is.EqualTo(B.Mix(ibp, crownIbp, 0.5f).Lower.ToArray()).Within(1e-5));
    }

    [Test]
    public void IbpGradientMatchesFiniteDifferences()
    {
        // A smooth network (tanh), so the interval bounds are differentiable in the weights.
        var g = new Generator(3);
        var w1 = Tensor.Uniform([6, 4], -1, 1, g); var w2 = Tensor.Uniform([3, 6], -1, 1, g);
        var x = Tensor.Uniform([2, 4], 0, 1, g);
        Tensor F(Tensor[] t)
        {
            var b = new GraphBuilder();
            var i = b.Input();
            var h = b.Apply(new TanhOp(), b.Apply(new LinearOp(), i, b.Parameter("w1", t[0])));
            b.Output(b.Apply(new LinearOp(), h, b.Parameter("w2", t[1])));
            var r = B.Compute(b.Build(), x, Perturbation.LInf(0.1f), BoundMethod.Ibp);
            return r.Lower + r.Upper * 0.5f;
        }
        GradCheck.Assert(F, [w1, w2], eps: 1e-2f, atol: 2e-3, rtol: 2e-2);
    }

    [Test]
    public void RoundingMarginKeepsBoundsBelowTheExactMinimumOfIllConditionedLayers()
    {
        // Large, nearly cancelling weights and inputs: float32 sums lose several digits here.
        var rng = new Random(4);
        int violationsWithoutMargin = 0;
        for (int t = 0; t < 20; t++)
        {
            int d = 64;
            var w = Enumerable.Range(0, d).Select(j => (float)((j % 2 == 0 ? 1 : -1) * (1000 + rng.NextDouble()))).ToArray();
            var xs = Enumerable.Range(0, d).Select(_ => (float)(100 + rng.NextDouble())).ToArray();
            var b = new GraphBuilder();
            var i = b.Input();
            b.Output(b.Apply(new LinearOp(), i, b.Constant("w", Tensor.FromArray(w, 1, d))));
            var graph = b.Build();
            float eps = 1e-3f;
            double exact = 0;
            for (int j = 0; j < d; j++) exact += Math.Min((double)w[j] * ((double)xs[j] - eps), (double)w[j] * ((double)xs[j] + eps));
            var x = Tensor.FromArray(xs, 1, d);
            foreach (var m in new[] { BoundMethod.Ibp, BoundMethod.Crown })
                Assert.That(B.Compute(graph, x, Perturbation.LInf(eps), m).Lower.Item(), Is.LessThanOrEqualTo(exact), $"trial {t} {m}");
            var noMargin = new BoundOptions { RoundingRelative = 0, RoundingAbsolute = 0 };
            if (B.Compute(graph, x, Perturbation.LInf(eps), BoundMethod.Crown, options: noMargin).Lower.Item() > exact) violationsWithoutMargin++;
        }
        // The margin is not decorative: without it float32 rounding does cross the exact bound in some trials.
        Assert.That(violationsWithoutMargin, Is.GreaterThan(0));
    }

    [Test]
    public void UpperCanBeSkipped()
    {
        var net = Mlp(2, [3, 6, 4]);
        var x = Tensor.FromArray([0.1f, 0.2f, 0.3f], 1, 3);
        var both = B.Compute(net, x, Perturbation.LInf(0.1f), BoundMethod.Crown);
        var lowerOnly = B.Compute(net, x, Perturbation.LInf(0.1f), BoundMethod.Crown, options: new BoundOptions { ComputeUpper = false });
        Assert.That(lowerOnly.Lower.ToArray(), Is.EqualTo(both.Lower.ToArray()).Within(1e-5));
        Assert.That(lowerOnly.Upper.ToArray().All(float.IsPositiveInfinity));
    }

    [Test]
    public void BadInputsGiveClearErrors()
    {
        var net = Mlp(2, [3, 6, 4]);
        var x = Tensor.FromArray([0.1f, 0.2f, 0.3f], 1, 3);
        var ex = Assert.Throws<ArgumentException>(() => B.Compute(net, x, Perturbation.LInf(0.1f), BoundMethod.Crown, Spec.Margins([0], 3)));
        Assert.That(ex!.Message, Does.Contain("3 output columns"));
        Assert.Throws<ArgumentException>(() => B.Compute(net, Tensor.FromArray([float.NaN, 0, 0], 1, 3), Perturbation.LInf(0.1f), BoundMethod.Ibp));
        Assert.Throws<ArgumentException>(() => B.Compute(net, Tensor.FromArray([2f, 0, 0], 1, 3), Perturbation.LInf(0.1f, 0, 1), BoundMethod.Ibp));
        Assert.Throws<ArgumentOutOfRangeException>(() => Perturbation.LInf(-1));
        Assert.Throws<ArgumentException>(() => Perturbation.LInf(0.1f, 1, 0));

        // x · x: both operands perturbed, which no bound rule covers.
        var b = new GraphBuilder();
        var i = b.Input();
        b.Output(b.Apply(new MulOp(), i, i));
        var nse = Assert.Throws<NotSupportedException>(() => B.Compute(b.Build(), x, Perturbation.LInf(0.1f), BoundMethod.Ibp));
        Assert.That(nse!.Message, Does.Contain("Mul"));

        var bn = new BatchNorm1d(3, trackRunningStats: false);
        bn.Eval();
        var bnEx = Assert.Throws<NotSupportedException>(() => B.Compute(bn, x, Perturbation.LInf(0.1f), BoundMethod.Crown));
        Assert.That(bnEx!.Message, Does.Contain("running statistics"));
    }
}
