using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.BoundProp.BoundTestNets;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

/// <summary>
/// The compiled chain fast path (ChainBounds) against the generic graph path on seeded random networks: the same
/// bounds up to float rounding, sound on sampled points, taken exactly when it should be.
/// </summary>
[NonParallelizable]
public partial class FastBoundsTests
{
    private static readonly BoundMethod[] Methods = [BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.CrownIbp];

    /// <summary>Random biases and BatchNorm statistics (so ReLUs are not centred), evaluation mode.</summary>
    private static Module Ready(Module m, int seed)
    {
        var g = new Generator((ulong)(seed + 1000));
        foreach (var (name, t) in m.NamedParameters())
            if (name.EndsWith("bias")) t.CopyFrom(Tensor.Uniform(t.Shape, -0.5f, 0.5f, g));
            else if (name.EndsWith("weight") && t.Rank == 1) t.CopyFrom(Tensor.Uniform(t.Shape, 0.5f, 1.5f, g));
        foreach (var (name, t) in m.NamedBuffers())
            if (name.EndsWith("running_mean")) t.CopyFrom(Tensor.Uniform(t.Shape, -0.3f, 0.3f, g));
            else if (name.EndsWith("running_var")) t.CopyFrom(Tensor.Uniform(t.Shape, 0.5f, 2f, g));
        m.Eval();
        return m;
    }

    private static Module MlpNet(int seed, bool leaky, bool bias)
    {
        var g = new Generator((ulong)seed);
        Module Act() => leaky ? new LeakyReLU(0.1f) : new ReLU();
        return Ready(new Sequential(new Flatten(), new Linear(12, 17, bias, g), Act(), new Dropout(0.3f), new Linear(17, 13, bias, g), Act(),
                                    new Linear(13, 11, bias, g), Act(), new Linear(11, 5, bias, g)), seed);
    }

    /// <summary>[2, 9, 7]: stride 1 and 2, padding 0/1/2, dilation 2, BatchNorm after a convolution, a convolution without bias.</summary>
    private static Module CnnA(int seed)
    {
        var g = new Generator((ulong)seed);
        return Ready(new Sequential(
            new Conv2d(2, 4, 3, 1, 1, generator: g), new BatchNorm2d(4), new ReLU(),
            new Conv2d(4, 5, 3, 2, 0, bias: false, generator: g), new ReLU(),
            new Conv2d(5, 3, (2, 3), (1, 1), (1, 2), (1, 2), generator: g), new LeakyReLU(0.2f),
            new Flatten(), new Linear(3 * 5 * 3, 6, generator: g), new ReLU(), new Linear(6, 4, generator: g)), seed);
    }

    /// <summary>[1, 11, 11]: the benchmark's k4 s2 p1 convolutions on odd sizes, then k3 s1 and k3 s2.</summary>
    private static Module CnnB(int seed)
    {
        var g = new Generator((ulong)seed);
        return Ready(new Sequential(
            new Conv2d(1, 3, 4, 2, 1, generator: g), new ReLU(),
            new Conv2d(3, 4, 3, 1, 1, generator: g), new ReLU(),
            new Conv2d(4, 2, 3, 2, 1, generator: g), new ReLU(),
            new Flatten(), new Linear(2 * 3 * 3, 7, generator: g), new ReLU(), new Linear(7, 3, generator: g)), seed);
    }

    /// <summary>Element-wise constants around a convolution: (x − m)·s, conv, relu, k + ., k − ., identity, relu, linear.</summary>
    private static ComputeGraph ElemGraph(int seed)
    {
        var g = new Generator((ulong)seed);
        var b = new GraphBuilder();
        var x = b.Input("x");
        var mean = b.Constant("mean", Tensor.Uniform([2, 1, 1], 0.2f, 0.6f, g));
        var scale = b.Constant("scale", Tensor.Uniform([2, 1, 1], 0.8f, 2f, g));
        var w = b.Constant("w", Tensor.Uniform([3, 2, 3, 3], -0.5f, 0.5f, g));
        var bias = b.Constant("b", Tensor.Uniform([3], -0.3f, 0.3f, g));
        var shift = b.Constant("shift", Tensor.Uniform([3, 5, 4], -0.4f, 0.4f, g));
        var mirror = b.Constant("mirror", Tensor.Uniform([1, 3, 5, 4], -0.2f, 0.2f, g));
        var lw = b.Constant("lw", Tensor.Uniform([4, 60], -0.3f, 0.3f, g));
        var h = b.Apply(new SubOp(), x, mean);
        h = b.Apply(new MulOp(), h, scale);
        h = b.Apply(new Conv2dOp(1, 1), h, w, bias);
        h = b.Apply(new ReluOp(), h);
        h = b.Apply(new AddOp(), shift, h);
        h = b.Apply(new IdentityOp(), h);
        h = b.Apply(new SubOp(), mirror, h);
        h = b.Apply(new ReluOp(), h);
        h = b.Apply(new FlattenOp(), h);
        b.Output(b.Apply(new LinearOp(), h, lw));
        return b.Build();
    }

    private static Module ReluFirst(int seed)
    {
        var g = new Generator((ulong)seed);
        return Ready(new Sequential(new ReLU(), new Linear(6, 9, generator: g), new ReLU(), new Linear(9, 4, generator: g)), seed);
    }

    private static Module EndsInConv(int seed)
    {
        var g = new Generator((ulong)seed);
        return Ready(new Sequential(new Conv2d(1, 3, 3, 1, 1, generator: g), new ReLU(), new Conv2d(3, 2, 3, 2, 1, generator: g), new ReLU(),
                                    new Conv2d(2, 2, 2, 1, 0, generator: g)), seed);
    }

    private static Module OneLinear(int seed) => Ready(new Sequential(new Linear(8, 5, generator: new Generator((ulong)seed))), seed);

    private sealed record Case(string Name, ComputeGraph Graph, int[] InShape, float Eps);

    private static IEnumerable<Case> Cases(int seed)
    {
        yield return new Case("mlp", MlpNet(seed, false, true).Graph, [3, 4], 0.08f);
        yield return new Case("mlp-leaky-nobias", MlpNet(seed, true, false).Graph, [3, 4], 0.08f);
        yield return new Case("cnn-a", CnnA(seed).Graph, [2, 9, 7], 0.04f);
        yield return new Case("cnn-b", CnnB(seed).Graph, [1, 11, 11], 0.05f);
        yield return new Case("elementwise", ElemGraph(seed), [2, 5, 4], 0.05f);
        yield return new Case("relu-first", ReluFirst(seed).Graph, [6], 0.2f);
        yield return new Case("ends-in-conv", EndsInConv(seed).Graph, [1, 6, 5], 0.08f);
        yield return new Case("one-linear", OneLinear(seed).Graph, [8], 0.1f);
    }

    private static Perturbation Scaled(Perturbation p, float eps) => p.Norm == PerturbationNorm.L2
        ? Perturbation.L2(eps * 4) : Perturbation.LInf(eps, p.ClipLow, p.ClipHigh);

    private static readonly Perturbation[] Sets = [Perturbation.LInf(1), Perturbation.LInf(1, 0f, 1f), Perturbation.L2(1)];

    private static Tensor Input(int[] shape, int batch, int seed)
        => Tensor.Uniform([batch, .. shape], 0f, 1f, new Generator((ulong)(seed + 77)));

    private static int Outputs(ComputeGraph g, Tensor x)
    {
        using (new NoGrad()) return Executor.Forward(g, x).Numel / x.Dims[0];
    }

    /// <summary>
    /// The fast bound agrees with the generic one to 1e-4 of the bounds' scale and is never looser than it by more
    /// than 2e-5 of that scale (about two units of the relative rounding margin): the two differ in float rounding only.
    /// </summary>
    private static void AssertSame(BoundResult fast, BoundResult generic, string what)
    {
        var fl = fast.Lower.ToArray(); var gl = generic.Lower.ToArray();
        var fu = fast.Upper.ToArray(); var gu = generic.Upper.ToArray();
        Assert.That(fast.Lower.Shape, Is.EqualTo(generic.Lower.Shape), what);
        double scale = 1e-3;
        for (int i = 0; i < gl.Length; i++)
        {
            scale = Math.Max(scale, Math.Abs(gl[i]));
            if (!float.IsInfinity(gu[i])) scale = Math.Max(scale, Math.Abs(gu[i]));
        }
        for (int i = 0; i < gl.Length; i++)
        {
            Assert.That(Math.Abs(fl[i] - gl[i]), Is.LessThanOrEqualTo(1e-4 * scale), $"{what}: lower[{i}] fast {fl[i]} generic {gl[i]}");
            Assert.That(gl[i] - fl[i], Is.LessThanOrEqualTo(2e-5 * scale), $"{what}: lower[{i}] looser: fast {fl[i]} generic {gl[i]}");
            if (float.IsPositiveInfinity(gu[i])) { Assert.That(fu[i], Is.EqualTo(float.PositiveInfinity), $"{what}: upper[{i}]"); continue; }
            Assert.That(Math.Abs(fu[i] - gu[i]), Is.LessThanOrEqualTo(1e-4 * scale), $"{what}: upper[{i}] fast {fu[i]} generic {gu[i]}");
            Assert.That(fu[i] - gu[i], Is.LessThanOrEqualTo(2e-5 * scale), $"{what}: upper[{i}] looser: fast {fu[i]} generic {gu[i]}");
        }
    }

    private static BoundResult Fast(ComputeGraph g, Tensor x, Perturbation p, BoundMethod m, Spec? spec, BoundOptions o, string what)
    {
        int before = ChainBounds.TakenOnThisThread;
        var r = B.Compute(g, x, p, m, spec, o);
        Assert.That(ChainBounds.TakenOnThisThread, Is.EqualTo(before + 1), $"{what}: the fast path was not taken");
        return r;
    }

    private static Spec SpecFor(int variant, ComputeGraph g, Tensor x, int seed)
    {
        int k = Outputs(g, x), b = x.Dims[0];
        if (variant == 0) return Spec.Margins(Enumerable.Range(0, b).Select(i => i % k).ToArray(), k);
        // A shared [S, outputs] matrix with arbitrary coefficients.
        return new Spec(Tensor.Uniform([3, k], -1f, 1f, new Generator((ulong)seed)));
    }

    [Test]
    public void FastPathMatchesTheGenericPath([Values(0, 1)] int seed, [Values(1, 3)] int batch)
    {
        using var _ = new NoGrad();
        foreach (var c in Cases(seed))
            foreach (var set in Sets)
            {
                var p = Scaled(set, c.Eps);
                var x = Input(c.InShape, batch, seed);
                foreach (var m in Methods)
                    for (int variant = 0; variant < 3; variant++)
                        foreach (bool upper in new[] { true, false })
                        {
                            var spec = variant == 2 ? null : SpecFor(variant, c.Graph, x, seed);
                            string what = $"{c.Name} seed {seed} batch {batch} {p} {m} spec {variant} upper {upper}";
                            var fast = Fast(c.Graph, x, p, m, spec, new BoundOptions { ComputeUpper = upper }, what);
                            var generic = B.Compute(c.Graph, x, p, m, spec, new BoundOptions { ComputeUpper = upper, FastPath = false });
                            AssertSame(fast, generic, what);
                        }
            }
    }

    /// <summary>
    /// Above four examples IBP's first Linear layer over a ball bounds its rounding magnitude |W|·|x| by
    /// Cauchy–Schwarz (ChainIbp.cs): still sound, looser than the generic margin by less than 1e-3 of the bounds'
    /// scale, and never tighter than the same examples bounded one at a time.
    /// </summary>
    [Test]
    public void LargeBatchesStayCloseAndSound()
    {
        using var _ = new NoGrad();
        var net = MlpNet(2, false, true);
        var x = Input([3, 4], 6, 2);
        foreach (var p in new[] { Perturbation.LInf(0.08f), Perturbation.L2(0.3f) })
            foreach (var m in Methods)
            {
                var fast = Fast(net.Graph, x, p, m, null, BoundOptions.Default, $"{p} {m}");
                var generic = B.Compute(net.Graph, x, p, m, null, new BoundOptions { FastPath = false });
                // CROWN forms the first layer's magnitude exactly at any batch size.
                if (m != BoundMethod.Ibp) AssertSame(fast, generic, $"{p} {m}");
                var fl = fast.Lower.ToArray(); var gl = generic.Lower.ToArray(); var fu = fast.Upper.ToArray(); var gu = generic.Upper.ToArray();
                double scale = gl.Concat(gu).Max(v => Math.Abs(v));
                for (int i = 0; i < fl.Length; i++)
                {
                    Assert.That(Math.Abs(fl[i] - gl[i]), Is.LessThanOrEqualTo(1e-3 * scale), $"{p} {m} lower[{i}]");
                    Assert.That(Math.Abs(fu[i] - gu[i]), Is.LessThanOrEqualTo(1e-3 * scale), $"{p} {m} upper[{i}]");
                }
                // The same examples one by one: the exact margin, never tighter than the batched bound.
                for (int b = 0; b < 6; b++)
                {
                    var one = B.Compute(net.Graph, x.NarrowRows(b, 1), p, m);
                    for (int i = 0; i < 5; i++)
                    {
                        Assert.That(one.Lower.ToArray()[i], Is.GreaterThanOrEqualTo(fl[b * 5 + i] - 1e-6f), $"{p} {m} example {b}");
                        Assert.That(one.Upper.ToArray()[i], Is.LessThanOrEqualTo(fu[b * 5 + i] + 1e-6f), $"{p} {m} example {b}");
                    }
                }
            }
    }

    [Test]
    public void DenseIntermediatesMatchTheGenericPath()
    {
        using var _ = new NoGrad();
        var o = new BoundOptions { SparseIntermediates = false };
        foreach (var c in Cases(3))
        {
            var x = Input(c.InShape, 2, 3);
            var p = Perturbation.LInf(c.Eps);
            var fast = Fast(c.Graph, x, p, BoundMethod.Crown, null, o, c.Name);
            AssertSame(fast, B.Compute(c.Graph, x, p, BoundMethod.Crown, null, new BoundOptions { SparseIntermediates = false, FastPath = false }), c.Name);
        }
    }

    [Test]
    public void ManyRowsAreSplitIntoChunksWithTheSameBounds()
    {
        // 150 hidden neurons, most unstable: intermediate rows and identity rows run in several chunks.
        var g = new Generator(9);
        var net = Ready(new Sequential(new Linear(10, 150, generator: g), new ReLU(), new Linear(150, 150, generator: g), new ReLU(),
                                       new Linear(150, 130, generator: g)), 9);
        var x = Input([10], 2, 9);
        using var _ = new NoGrad();
        foreach (var m in Methods)
        {
            var fast = Fast(net.Graph, x, Perturbation.LInf(0.3f), m, null, BoundOptions.Default, $"{m}");
            AssertSame(fast, B.Compute(net.Graph, x, Perturbation.LInf(0.3f), m, null, new BoundOptions { FastPath = false }), $"{m}");
        }
    }

    /// <summary>Every sampled point and box corner's spec value lies inside the fast bounds.</summary>
    [Test]
    public void FastBoundsContainSampledOutputs([Values(0, 1)] int seed)
    {
        using var _ = new NoGrad();
        var rng = new Random(seed);
        foreach (var c in Cases(seed))
            foreach (var set in Sets)
            {
                var p = Scaled(set, c.Eps);
                int batch = 2, d = c.InShape.Aggregate(1, (a, v) => a * v);
                var x = Input(c.InShape, batch, seed);
                var xs = x.ToArray();
                int k = Outputs(c.Graph, x);
                foreach (var m in Methods)
                {
                    var r = Fast(c.Graph, x, p, m, null, BoundOptions.Default, $"{c.Name} {p} {m}");
                    var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
                    for (int b = 0; b < batch; b++)
                    {
                        var center = xs.AsSpan(b * d, d).ToArray();
                        List<float[]> pts;
                        if (p.Norm == PerturbationNorm.L2) pts = BallPoints(center, p.Eps, 30, rng);
                        else
                        {
                            var l = center.Select(v => Math.Max(v - p.Eps, p.ClipLow ?? float.NegativeInfinity)).ToArray();
                            var h = center.Select(v => Math.Min(v + p.Eps, p.ClipHigh ?? float.PositiveInfinity)).ToArray();
                            pts = BoxPoints(l, h, 30, rng);
                        }
                        pts.Add(center);
                        var flat = pts.SelectMany(v => v).ToArray();
                        var y = Executor.Forward(c.Graph, Tensor.FromArray(flat, [pts.Count, .. c.InShape])).ToArray();
                        for (int s = 0; s < pts.Count; s++)
                            for (int i = 0; i < k; i++)
                            {
                                float v = y[s * k + i];
                                if (!(v >= lo[b * k + i] && v <= hi[b * k + i]))
                                    Assert.Fail($"{c.Name} {p} {m}: output {i} of example {b} at a sample is {v}, outside [{lo[b * k + i]}, {hi[b * k + i]}].");
                            }
                    }
                }
            }
    }

    [Test]
    public void BenchmarkNetsTakeTheFastPath()
    {
        var g = new Generator(1);
        var mlp = new Sequential(new Flatten(), new Linear(784, 256, generator: g), new ReLU(), new Linear(256, 256, generator: g), new ReLU(),
                                 new Linear(256, 10, generator: g));
        var cnn = new Sequential(new Conv2d(1, 8, 4, 2, 1, generator: g), new ReLU(), new Conv2d(8, 16, 4, 2, 1, generator: g), new ReLU(),
                                 new Flatten(), new Linear(784, 100, generator: g), new ReLU(), new Linear(100, 10, generator: g));
        var x = Tensor.Uniform([2, 1, 28, 28], 0f, 1f, new Generator(2));
        var spec = Spec.Margins([3, 7], 10);
        using var _ = new NoGrad();
        foreach (var net in new Module[] { mlp, cnn })
        {
            net.Eval();
            foreach (var m in Methods)
            {
                var fast = Fast(net.Graph, x, Perturbation.LInf(0.01f), m, spec, new BoundOptions { ComputeUpper = false }, $"{m}");
                var generic = B.Compute(net.Graph, x, Perturbation.LInf(0.01f), m, spec, new BoundOptions { ComputeUpper = false, FastPath = false });
                AssertSame(fast, generic, $"{m}");
            }
        }
    }

    [Test]
    public void GradientsTakeTheGenericPath()
    {
        var net = CnnB(4);
        var x = Input([1, 11, 11], 2, 4);
        var spec = Spec.Margins([0, 2], 3);
        int before = ChainBounds.TakenOnThisThread;
        // Parameters require gradients and grad mode is on: the differentiable generic path runs.
        var r = B.Compute(net, x, Perturbation.LInf(0.05f), BoundMethod.CrownIbp, spec);
        Assert.That(ChainBounds.TakenOnThisThread, Is.EqualTo(before), "the fast path must not answer when gradients can be asked for");
        net.ZeroGrad();
        (-r.Lower).Sum().Backward();
        Assert.That(net.Parameters().All(t => t.Grad != null), Is.True);
        // An input that requires grad also keeps the generic path, even for a graph of constants.
        var xg = Input([2, 5, 4], 1, 4).RequiresGrad_();
        B.Compute(ElemGraph(4), xg, Perturbation.LInf(0.05f), BoundMethod.Ibp);
        Assert.That(ChainBounds.TakenOnThisThread, Is.EqualTo(before));
        // The same graph of constants with a plain input needs no gradient: the fast path answers even in grad mode.
        B.Compute(ElemGraph(4), xg.Detach(), Perturbation.LInf(0.05f), BoundMethod.Ibp);
        Assert.That(ChainBounds.TakenOnThisThread, Is.EqualTo(before + 1));
    }

    [Test]
    public void UnsupportedGraphsTakeTheGenericPath()
    {
        using var _ = new NoGrad();
        int before = ChainBounds.TakenOnThisThread;
        var residual = Residual(1, 5, 8, 3);
        var x = Tensor.Uniform([2, 5], 0f, 1f, new Generator(3));
        var r = B.Compute(residual, x, Perturbation.LInf(0.1f), BoundMethod.Crown);
        var sig = Mlp(2, [5, 7, 3], Act.Sigmoid);
        B.Compute(sig, x, Perturbation.LInf(0.1f), BoundMethod.Crown);
        B.Compute(Mlp(2, [5, 7, 3]), x, Perturbation.LInf(0.1f), BoundMethod.AlphaCrown, null, new BoundOptions { AlphaIterations = 2 });
        Assert.That(ChainBounds.TakenOnThisThread, Is.EqualTo(before));
        Assert.That(r.Lower.ToArray().All(float.IsFinite), Is.True);
    }

    [Test]
    public void WeightUpdatesBetweenCallsAreSeen()
    {
        using var _ = new NoGrad();
        var net = CnnA(5);
        var x = Input([2, 9, 7], 2, 5);
        var p = Perturbation.LInf(0.04f);
        var before = Fast(net.Graph, x, p, BoundMethod.Crown, null, BoundOptions.Default, "before");
        foreach (var t in net.Parameters()) t.CopyFrom(t * 0.9f + 0.01f);
        foreach (var (_, t) in net.NamedBuffers()) if (t.Rank == 1) t.CopyFrom(t * 1.1f);
        var after = Fast(net.Graph, x, p, BoundMethod.Crown, null, BoundOptions.Default, "after");
        Assert.That(after.Lower.ToArray(), Is.Not.EqualTo(before.Lower.ToArray()));
        AssertSame(after, B.Compute(net.Graph, x, p, BoundMethod.Crown, null, new BoundOptions { FastPath = false }), "after the update");
    }

    [Test]
    public void OneAndTwoThreadsGiveIdenticalBounds()
    {
        using var _ = new NoGrad();
        int saved = CpuThreads.Count;
        try
        {
            foreach (var c in Cases(6))
            {
                var x = Input(c.InShape, 5, 6);
                foreach (var m in Methods)
                {
                    CpuThreads.Count = 1;
                    var one = B.Compute(c.Graph, x, Perturbation.LInf(c.Eps), m);
                    CpuThreads.Count = 2;
                    var two = B.Compute(c.Graph, x, Perturbation.LInf(c.Eps), m);
                    Assert.That(two.Lower.ToArray(), Is.EqualTo(one.Lower.ToArray()), $"{c.Name} {m} lower");
                    Assert.That(two.Upper.ToArray(), Is.EqualTo(one.Upper.ToArray()), $"{c.Name} {m} upper");
                }
            }
        }
        finally { CpuThreads.Count = saved; }
    }

    [Test]
    public void InvalidInputsFailAsOnTheGenericPath()
    {
        using var _ = new NoGrad();
        var net = MlpNet(1, false, true);
        var bad = Tensor.FromArray(Enumerable.Range(0, 12).Select(i => i == 5 ? float.NaN : 0.5f).ToArray(), 1, 3, 4);
        var ex = Assert.Throws<ArgumentException>(() => B.Compute(net, bad, Perturbation.LInf(0.1f), BoundMethod.Crown));
        Assert.That(ex!.Message, Does.Contain("NaN"));
        var outside = Tensor.FromArray(Enumerable.Repeat(1.5f, 12).ToArray(), 1, 3, 4);
        Assert.Throws<ArgumentException>(() => B.Compute(net, outside, Perturbation.LInf(0.1f, 0f, 1f), BoundMethod.Ibp));
        var x = Input([3, 4], 2, 1);
        Assert.Throws<ArgumentException>(() => B.Compute(net, x, Perturbation.LInf(0.1f), BoundMethod.Crown, Spec.Margins([0, 1], 7)));
    }
}
