using Engine.Autograd;
using Engine.Bounds;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.BoundProp.BoundTestNets;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

public class BoundExactnessTests
{
    /// <summary>Exact min and max of w·x + b over the box, in double.</summary>
    private static (double Lo, double Hi) AffineRange(float[] w, float b, float[] lo, float[] hi)
    {
        double l = b, h = b;
        for (int j = 0; j < w.Length; j++)
        {
            double p = (double)w[j] * lo[j], q = (double)w[j] * hi[j];
            l += Math.Min(p, q); h += Math.Max(p, q);
        }
        return (l, h);
    }

    [Test]
    public void IbpAndCrownAreExactForOneAffineLayer([Values(BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.CrownIbp, BoundMethod.AlphaCrown)] BoundMethod method)
    {
        var net = Mlp(3, [7, 5]);
        var w = net.Parameters().First().ToArray();
        var bias = net.Parameters().Last().ToArray();
        var rng = new Random(1);
        var xs = Enumerable.Range(0, 14).Select(_ => (float)rng.NextDouble()).ToArray();
        float eps = 0.2f;
        var r = B.Compute(net, Tensor.FromArray(xs, 2, 7), Perturbation.LInf(eps), method);
        var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 5; i++)
            {
                var (el, eh) = AffineRange(w.AsSpan(i * 7, 7).ToArray(), bias[i],
                    xs.AsSpan(b * 7, 7).ToArray().Select(v => v - eps).ToArray(), xs.AsSpan(b * 7, 7).ToArray().Select(v => v + eps).ToArray());
                Assert.That(lo[b * 5 + i], Is.LessThanOrEqualTo(el));
                Assert.That(hi[b * 5 + i], Is.GreaterThanOrEqualTo(eh));
                Assert.That(lo[b * 5 + i], Is.EqualTo(el).Within(1e-4));
                Assert.That(hi[b * 5 + i], Is.EqualTo(eh).Within(1e-4));
            }
    }

    [Test]
    public void CrownIsExactWhenNoReluIsUnstable()
    {
        int checkedNets = 0;
        for (int seed = 0; seed < 6; seed++)
        {
            var net = seed % 2 == 0 ? Mlp(seed, [6, 10, 10, 4]) : Cnn(seed);
            int[] inShape = seed % 2 == 0 ? [6] : [1, 6, 6];
            int d = inShape.Aggregate(1, (a, v) => a * v);
            var rng = new Random(seed);
            var xs = Enumerable.Range(0, d).Select(_ => (float)rng.NextDouble()).ToArray();
            var x = Tensor.FromArray(xs, [1, .. inShape]);
            float eps = 1e-3f;
            var crown = B.Compute(net, x, Perturbation.LInf(eps), BoundMethod.Crown);
            // Skip the (rare) net with a neuron IBP finds unstable at this radius; the check needs a fixed pattern.
            if (AnyUnstable(net, x, eps)) continue;
            checkedNets++;
            int k = crown.Lower.Size(1);
            for (int i = 0; i < k; i++)
            {
                // f is affine on the box: its exact range follows from the gradient at the centre.
                var xg = x.Clone().RequiresGrad_();
                var y = Executor.Forward(net.Graph, xg);
                var sel = new float[k]; sel[i] = 1;
                (y * Tensor.FromArray(sel, 1, k)).Sum().Backward();
                var g = xg.Grad!.ToArray();
                double f0 = y.ToArray()[i], lo = f0, hi = f0;
                for (int j = 0; j < d; j++) { lo -= Math.Abs(g[j]) * eps; hi += Math.Abs(g[j]) * eps; }
                Assert.That(crown.Lower.ToArray()[i], Is.EqualTo(lo).Within(2e-4), $"seed {seed} row {i}");
                Assert.That(crown.Upper.ToArray()[i], Is.EqualTo(hi).Within(2e-4), $"seed {seed} row {i}");
            }
        }
        Assert.That(checkedNets, Is.GreaterThanOrEqualTo(4));
    }

    private static bool AnyUnstable(Module net, Tensor x, float eps)
    {
        var g = net.Graph;
        var p = new BoundPropagator(g, Perturbation.LInf(eps), BoundOptions.Default);
        p.Forward(x, refine: false);
        foreach (var n in g.Nodes)
        {
            if (n.Op is not ReluOp) continue;
            var iv = p.Bounds(n.Inputs[0]);
            var l = iv.Lower.ToArray(); var u = iv.Upper.ToArray();
            for (int i = 0; i < l.Length; i++) if (l[i] < 0 && u[i] > 0) return true;
        }
        return false;
    }

    [Test]
    public void AlphaCrownIsNeverLooserThanCrownAndCrownBeatsIbpOnAggregate()
    {
        double ibpWidth = 0, crownWidth = 0;
        int alphaStrictlyBetter = 0;
        for (int seed = 0; seed < 8; seed++)
        {
            var net = seed % 2 == 0 ? Mlp(seed, [5, 16, 16, 4]) : Cnn(seed, pool: seed % 4 == 1 ? "avg" : "");
            int[] inShape = seed % 2 == 0 ? [5] : [1, 6, 6];
            int d = inShape.Aggregate(1, (a, v) => a * v);
            var rng = new Random(seed);
            var x = Tensor.FromArray(Enumerable.Range(0, 2 * d).Select(_ => (float)rng.NextDouble()).ToArray(), [2, .. inShape]);
            var p = Perturbation.LInf(seed % 2 == 0 ? 0.15f : 0.05f);
            var spec = Spec.Margins([0, 1], seed % 2 == 0 ? 4 : 5);
            var ibp = B.Compute(net, x, p, BoundMethod.Ibp, spec);
            var crown = B.Compute(net, x, p, BoundMethod.Crown, spec);
            var alpha = B.Compute(net, x, p, BoundMethod.AlphaCrown, spec);
            var cl = crown.Lower.ToArray(); var al = alpha.Lower.ToArray();
            var cu = crown.Upper.ToArray(); var au = alpha.Upper.ToArray();
            for (int i = 0; i < cl.Length; i++)
            {
                Assert.That(al[i], Is.GreaterThanOrEqualTo(cl[i] - 1e-5 * (1 + Math.Abs(cl[i]))), $"seed {seed}");
                Assert.That(au[i], Is.LessThanOrEqualTo(cu[i] + 1e-5 * (1 + Math.Abs(cu[i]))), $"seed {seed}");
                if (al[i] > cl[i] + 1e-4) alphaStrictlyBetter++;
            }
            ibpWidth += (ibp.Upper - ibp.Lower).Sum().Item();
            crownWidth += (crown.Upper - crown.Lower).Sum().Item();
        }
        Assert.That(crownWidth, Is.LessThan(ibpWidth * 0.9));
        Assert.That(alphaStrictlyBetter, Is.GreaterThan(0));
    }

    [Test]
    public void BatchedCrownEqualsEachExampleAlone([Values("mlp", "cnn")] string kind)
    {
        // Examples with different numbers of unstable neurons run in separate chunks of intermediate rows (up to
        // 2 x 600 rows per example here, more than one chunk holds); each must get the bounds it gets alone.
        var net = kind == "mlp" ? Mlp(8, [6, 600, 600, 4]) : Cnn(8);
        int[] inShape = kind == "mlp" ? [6] : [1, 6, 6];
        int d = inShape.Aggregate(1, (a, v) => a * v), n = 4;
        var g = new Generator(21);
        var x = Tensor.Uniform([n, .. inShape], -1, 1, g);
        var p = Perturbation.LInf(0.08f);
        var spec = Spec.Margins([0, 1, 2, 3], kind == "mlp" ? 4 : 5);
        using var _ = new NoGrad();
        foreach (var opt in new[] { BoundOptions.Default, new BoundOptions { SparseIntermediates = false } })
        {
            var all = B.Compute(net, x, p, BoundMethod.Crown, spec, opt);
            for (int i = 0; i < n; i++)
            {
                var xi = x.Reshape(n, d).Narrow(0, i, 1).Reshape([1, .. inShape]);
                var one = B.Compute(net, xi, p, BoundMethod.Crown, new Spec(spec.C.Narrow(0, i, 1)), opt);
                var (lo, hi) = (one.Lower.ToArray(), one.Upper.ToArray());
                var (blo, bhi) = (all.Lower.Reshape(n, -1).Narrow(0, i, 1).ToArray(), all.Upper.Reshape(n, -1).Narrow(0, i, 1).ToArray());
                for (int j = 0; j < lo.Length; j++)
                {
                    Assert.That(blo[j], Is.EqualTo(lo[j]).Within(1e-4 * (1 + Math.Abs(lo[j]))), $"{kind} example {i} lower {j}");
                    Assert.That(bhi[j], Is.EqualTo(hi[j]).Within(1e-4 * (1 + Math.Abs(hi[j]))), $"{kind} example {i} upper {j}");
                }
            }
        }
    }

    [Test]
    public void TextbookAndSparseCrownAreBothSoundAndClose()
    {
        var net = Mlp(5, [4, 20, 20, 3]);
        var x = Tensor.FromArray([0.2f, 0.4f, 0.6f, 0.8f], 1, 4);
        var p = Perturbation.LInf(0.1f);
        var sparse = B.Compute(net, x, p, BoundMethod.Crown);
        var full = B.Compute(net, x, p, BoundMethod.Crown, options: new BoundOptions { SparseIntermediates = false });
        var ibp = B.Compute(net, x, p, BoundMethod.Ibp);
        var s = sparse.Lower.ToArray(); var f = full.Lower.ToArray(); var ib = ibp.Lower.ToArray();
        for (int i = 0; i < s.Length; i++)
        {
            Assert.That(s[i], Is.GreaterThanOrEqualTo(f[i] - 0.05 * (1 + Math.Abs(f[i]))));
            Assert.That(f[i], Is.GreaterThanOrEqualTo(ib[i] - 1e-4));
        }
    }

    [Test]
    public void MarginSpecEqualsCTimesOutputAtZeroRadius([Values(BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.CrownIbp, BoundMethod.AlphaCrown)] BoundMethod method)
    {
        var net = Cnn(2, Act.Relu, "max", batchNorm: true);
        var rng = new Random(3);
        var x = Tensor.FromArray(Enumerable.Range(0, 72).Select(_ => (float)rng.NextDouble()).ToArray(), 2, 1, 6, 6);
        var y = Executor.Forward(net.Graph, x).ToArray();
        var spec = Spec.Margins([3, 0], 5);
        var r = B.Compute(net, x, Perturbation.LInf(0f), method, spec, new BoundOptions { AlphaIterations = 2 });
        Assert.That(r.Lower.Shape, Is.EqualTo(new[] { 2, 4 }));
        var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
        int[] labels = [3, 0];
        for (int b = 0; b < 2; b++)
        {
            int row = 0;
            for (int j = 0; j < 5; j++)
            {
                if (j == labels[b]) continue;
                double m = y[b * 5 + labels[b]] - y[b * 5 + j];
                Assert.That(lo[b * 4 + row], Is.EqualTo(m).Within(1e-4).And.LessThanOrEqualTo(m));
                Assert.That(hi[b * 4 + row], Is.EqualTo(m).Within(1e-4).And.GreaterThanOrEqualTo(m));
                row++;
            }
        }
    }

    [Test]
    public void SpecMarginsLayout()
    {
        var s = Spec.Margins([2, 0], 3);
        Assert.That(s.C.Shape, Is.EqualTo(new[] { 2, 2, 3 }));
        Assert.That(s.C.ToArray(), Is.EqualTo(new float[] { -1, 0, 1, 0, -1, 1, 1, -1, 0, 1, 0, -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Spec.Margins([3], 3));
        Assert.Throws<ArgumentException>(() => Spec.Margins(Tensor.FromArray([0.5f], 1), 3));
    }

    [Test]
    public void SharedSpecMatrixMatchesBatchedOne()
    {
        var net = Mlp(9, [3, 8, 4]);
        var x = Tensor.FromArray([0.1f, 0.5f, 0.9f, 0.3f, 0.3f, 0.3f], 2, 3);
        var c = Tensor.FromArray([1, -1, 0, 0, 0, 0.5f, 0.5f, -1], 2, 4);
        var shared = B.Compute(net, x, Perturbation.LInf(0.1f), BoundMethod.Crown, new Spec(c));
        var batched = B.Compute(net, x, Perturbation.LInf(0.1f), BoundMethod.Crown, new Spec(c.Unsqueeze(0).Expand(2, 2, 4)));
        Assert.That(shared.Lower.ToArray(), Is.EqualTo(batched.Lower.ToArray()).Within(1e-6));
        Assert.That(shared.Upper.ToArray(), Is.EqualTo(batched.Upper.ToArray()).Within(1e-6));
    }

    [Test]
    public void SShapeRelaxationLinesEncloseTheFunction()
    {
        var rng = new Random(11);
        var ls = new List<float>(); var us = new List<float>();
        for (int i = 0; i < 400; i++)
        {
            double scale = Math.Pow(10, rng.NextDouble() * 3 - 2); // widths from 0.01 to 10
            double l = (rng.NextDouble() * 2 - 1) * 8, w = scale * rng.NextDouble();
            if (i % 10 == 0) w = 1e-5;   // nearly point intervals
            ls.Add((float)l); us.Add((float)(l + w));
        }
        var lt = Tensor.FromArray([.. ls], ls.Count); var ut = Tensor.FromArray([.. us], us.Count);
        foreach (var (fn, exact) in new[] { (SShapeRelaxation.Sigmoid, (Func<double, double>)(v => 1 / (1 + Math.Exp(-v)))), (SShapeRelaxation.Tanh, Math.Tanh) })
        {
            var (aL, bL, aU, bU) = SShapeRelaxation.Relax(fn, lt, ut);
            var al = aL.ToArray(); var bl = bL.ToArray(); var au = aU.ToArray(); var bu = bU.ToArray();
            for (int i = 0; i < ls.Count; i++)
                for (int s = 0; s <= 64; s++)
                {
                    float xv = ls[i] + (us[i] - ls[i]) * s / 64f;
                    var fx = fn.F(Tensor.FromArray([xv], 1)).Item();
                    double lower = (double)al[i] * xv + bl[i], upper = (double)au[i] * xv + bu[i];
                    Assert.That(lower, Is.LessThanOrEqualTo(Math.Min(fx, exact(xv))), $"lower at {xv} on [{ls[i]}, {us[i]}]");
                    Assert.That(upper, Is.GreaterThanOrEqualTo(Math.Max(fx, exact(xv))), $"upper at {xv} on [{ls[i]}, {us[i]}]");
                }
        }
    }
}
