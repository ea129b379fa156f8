using Engine.Attacks;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Certify;
using Engine.Data;
using Engine.Diagnostics;
using Engine.Graph;
using Engine.Nn;
using Engine.Serialization;
using Engine.Tensors;
using NUnit.Framework;
using BoundsApi = Engine.Bounds.Bounds;

namespace Engine.Tests.Devices;

/// <summary>
/// The tensor / autograd / Nn / bounds / attack stack on a device that is not the CPU. The emulated device runs the
/// CPU kernels behind a storage class of its own, so every result must equal the CPU's bit for bit: a difference
/// means some code took a different path for a non-CPU tensor, and an exception means it assumed CPU storage.
/// </summary>
[TestFixture]
public class EmulatedDeviceTests
{
    private static readonly Device Emu = EmulatedDevice.Instance;

    [OneTimeSetUp]
    public void Setup() => EmulatedDevice.Register();

    private static float[] Data(int n, int seed, float lo = -1f, float hi = 1f)
        => Tensor.Uniform([n], lo, hi, new Generator((ulong)seed)).ToArray();

    private static void AssertBitwise(float[] dev, float[] cpu, string what)
    {
        Assert.That(dev.Length, Is.EqualTo(cpu.Length), what);
        for (int i = 0; i < dev.Length; i++)
            if (BitConverter.SingleToInt32Bits(dev[i]) != BitConverter.SingleToInt32Bits(cpu[i]) && !(float.IsNaN(dev[i]) && float.IsNaN(cpu[i])))
                Assert.Fail($"{what}[{i}]: emu {dev[i]:R} vs cpu {cpu[i]:R}");
    }

    /// <summary>
    /// f on leaves of the given shapes on CPU and on the emulated device: the outputs and every input gradient
    /// (for a random upstream gradient) must be identical, and the device's results must stay on the device.
    /// </summary>
    private static void Same(string name, int[][] shapes, Func<Tensor[], Tensor> f, bool grad = true)
    {
        (Tensor Y, Tensor[] X) Run(Device d)
        {
            var xs = shapes.Select((s, i) => Tensor.FromSpan(Data(ShapeUtil.Numel(s), 100 + i), s, d).RequiresGrad_(grad)).ToArray();
            var y = f(xs);
            if (grad && y.RequiresGrad)
            {
                var g = Tensor.FromSpan(Data(y.Numel, 7), y.Shape, d);
                (y * g).Sum().Backward();
            }
            return (y, xs);
        }
        var (yc, xc) = Run(Device.Cpu);
        var (ye, xe) = Run(Emu);
        Assert.That(ye.Device, Is.SameAs(Emu), $"{name}: result on {ye.Device.Name}");
        Assert.That(ye.Shape, Is.EqualTo(yc.Shape), name);
        AssertBitwise(ye.ToArray(), yc.ToArray(), name);
        for (int i = 0; i < xc.Length; i++)
        {
            if (xc[i].Grad == null) { Assert.That(xe[i].Grad, Is.Null, $"{name}: grad {i}"); continue; }
            Assert.That(xe[i].Grad, Is.Not.Null, $"{name}: emu input {i} got no gradient");
            Assert.That(xe[i].Grad!.Device, Is.SameAs(Emu), $"{name}: grad {i} on {xe[i].Grad!.Device.Name}");
            AssertBitwise(xe[i].Grad!.ToArray(), xc[i].Grad!.ToArray(), $"{name} grad {i}");
        }
    }

    private static readonly int[] S35 = [3, 5], S435 = [4, 3, 5], S2 = [2, 3, 6, 5];

    [Test]
    public void ElementwiseOpsAndTheirGradients()
    {
        Same("add broadcast", [[4, 1, 5], [3, 5]], x => x[0] + x[1]);
        Same("sub", [S35, [5]], x => x[0] - x[1]);
        Same("mul", [S435, [4, 3, 1]], x => x[0] * x[1]);
        Same("div", [S35, S35], x => x[0] / (x[1].Abs() + 0.5f));
        Same("scalar ops", [S35], x => (2f - x[0] * 3f + 1f) / 2f);
        Same("reciprocal scalar", [S35], x => 3f / (x[0].Abs() + 1f));
        Same("unary chain", [S435], x => x[0].Neg().Abs().Sqrt() + x[0].Exp().Log() + x[0].Square() + x[0].Sign());
        Same("pow", [S35], x => (x[0].Abs() + 0.1f).Pow(1.5f) + x[0].Pow(3f));
        Same("clamp", [S35], x => x[0].Clamp(-0.2f, 0.3f) + x[0].Clamp(null, 0.1f));
        Same("activations", [S435], x => x[0].Relu() + x[0].LeakyRelu(0.2f) + x[0].Sigmoid() + x[0].Tanh() + x[0].Softplus(2f, 1f));
        Same("maximum / minimum", [S35, [5]], x => Tensor.Maximum(x[0], x[1]) - Tensor.Minimum(x[0], x[1]));
        Same("where", [S35, S35], x => Tensor.Where(Tensor.Gt(x[0], 0f), x[0], x[1]));
        Same("comparisons", [S35, S35], x => Tensor.Ge(x[0], x[1]) + Tensor.Lt(x[0], 0.1f) + Tensor.Eq(x[0], x[0]) + Tensor.Ne(x[0], x[1]), grad: false);
    }

    [Test]
    public void ReductionsSoftmaxAndOneHot()
    {
        Same("sum all", [S435], x => x[0].Sum());
        Same("sum axes keepdim", [S435], x => x[0].Sum([0, 2], keepDim: true));
        Same("mean", [S435], x => x[0].Mean(1));
        Same("max", [S435], x => x[0].Max(2));
        Same("min", [S435], x => x[0].Min([0]));
        Same("logsumexp", [S435], x => x[0].LogSumExp(-1));
        Same("argmax", [S435], x => x[0].ArgMax(1) + x[0].ArgMin(0, keepDim: true).Sum(), grad: false);
        Same("softmax", [S435], x => x[0].Softmax(1) + x[0].LogSoftmax(-1));
        Same("one-hot", [[6]], x => Tensor.OneHot((x[0].Abs() * 4f).Clamp(0f, 3f).Sign() * 2f, 4), grad: false);
        Same("expand / sum to shape", [[3, 1]], x => x[0].Expand(2, 3, 4).SumToShape([3, 4]));
    }

    [Test]
    public void ShapeOps()
    {
        Same("permute / transpose", [S2], x => x[0].Permute(3, 1, 0, 2).Transpose(0, 1));
        Same("narrow / slice", [S2], x => x[0].Narrow(2, 1, 4).Slice(3, 0, 5, 2));
        Same("concat / stack", [S35, S35], x => Tensor.Concat([x[0], x[1]], 1) + Tensor.Stack([x[0], x[1]], 0).Reshape(3, 10));
        Same("index select", [S435], x => x[0].IndexSelect(1, [2, 0, 2]));
        Same("views", [S2], x => x[0].Flatten(1).Unsqueeze(0).Squeeze(0).Reshape(12, 15).NarrowRows(1, 3).Clone());
        Same("to cpu and back", [S35], x => x[0].To(Device.Cpu).Exp().To(x[0].Device));
    }

    [Test]
    public void MatmulConvAndPooling()
    {
        Same("matmul 2d", [[5, 7], [7, 3]], x => Tensor.Matmul(x[0], x[1]));
        Same("matmul batched broadcast", [[2, 1, 4, 6], [3, 6, 5]], x => Tensor.Matmul(x[0], x[1]));
        Same("matmul vector", [[6], [6, 4]], x => Tensor.Matmul(x[0], x[1]));
        Same("linear", [[4, 6], [3, 6], [3]], x => Tensor.Linear(x[0], x[1], x[2]));
        Same("conv2d", [[2, 4, 7, 6], [6, 2, 3, 3], [6]], x => Tensor.Conv2d(x[0], x[1], x[2], stride: 2, padding: 1, groups: 2));
        Same("conv2d dilation no bias", [[1, 3, 9, 9], [2, 3, 3, 2]], x => Tensor.Conv2d(x[0], x[1], null, (1, 2), (2, 1), (2, 1)));
        Same("max pool", [[2, 3, 7, 7]], x => Tensor.MaxPool2d(x[0], 3, 2, 1));
        Same("avg pool", [[2, 3, 7, 7]], x => Tensor.AvgPool2d(x[0], 2, null, 1, countIncludePad: false) + 0f);
    }

    [Test]
    public void CreationAndHostAccess()
    {
        AssertBitwise(Tensor.Uniform([1001], -2f, 3f, new Generator(4), Emu).ToArray(), Tensor.Uniform([1001], -2f, 3f, new Generator(4)).ToArray(), "uniform");
        AssertBitwise(Tensor.Normal([999], 1f, 2f, new Generator(4), Emu).ToArray(), Tensor.Normal([999], 1f, 2f, new Generator(4)).ToArray(), "normal");
        AssertBitwise(Tensor.Arange(0, 5, 0.5f, Emu).ToArray(), Tensor.Arange(0, 5, 0.5f).ToArray(), "arange");
        var t = Tensor.Full([2, 3], 1.5f, Emu);
        Assert.That(t.Device, Is.SameAs(Emu));
        Assert.That(Tensor.Scalar(2.5f, Emu).Item(), Is.EqualTo(2.5f));
        Assert.That(t.ToString(), Does.Contain("device=emu").And.Contain("1.5"));
        t.Fill_(3f);
        var u = Tensor.Zeros([2, 3], Emu);
        u.CopyFrom(t);
        Assert.That(u.ToArray(), Is.All.EqualTo(3f));
        Assert.That(Tensor.OnesLike(u).Device, Is.SameAs(Emu));
        var ex = Assert.Throws<InvalidOperationException>(() => t.AsSpan());
        Assert.That(ex!.Message, Does.Contain("emu"));
        var mixed = Assert.Throws<ArgumentException>(() => _ = t + Tensor.Ones(2, 3));
        Assert.That(mixed!.Message, Does.Contain("different devices"));
    }

    private static Module Net(int seed)
    {
        var g = new Generator((ulong)seed);
        return new Sequential(
            new Conv2d(1, 4, 3, padding: 1, generator: g), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
            new Residual(new Sequential(new Conv2d(4, 4, 3, padding: 1, generator: g), new ReLU())),
            new AvgPool2d(2), new Flatten(), new Dropout(0.25f), new Linear(4 * 3 * 3, 16, generator: g), new BatchNorm1d(16), new Tanh(),
            new Linear(16, 10, generator: g));
    }

    private static ComputeGraph On(Device d, Module m) => KernelSelfTest.CopyGraph(m.Graph, d);

    [TestCase("sgd")]
    [TestCase("adam")]
    [TestCase("adamw")]
    public void TrainingLoopMatchesTheCpu(string optimizer)
    {
        var model = Net(3);
        var x = Data(8 * 144, 5, 0f, 1f);
        var y = Enumerable.Range(0, 8).Select(i => (float)(i * 3 % 10)).ToArray();
        (float[] Losses, ComputeGraph G) Train(Device d)
        {
            var g = On(d, model);
            var ps = g.Parameters.Select(v => v.Data!).ToArray();
            Optimizer opt = optimizer switch
            {
                "sgd" => new Sgd(ps, 0.05f, momentum: 0.9f, weightDecay: 1e-4f, nesterov: true),
                "adam" => new Adam(ps, 1e-2f),
                _ => new AdamW(ps, 1e-2f),
            };
            var sched = new CosineAnnealingLR(opt, 5);
            var xt = Tensor.FromSpan(x, [8, 1, 12, 12], d);
            var yt = Tensor.FromSpan(y, [8], d);
            var losses = new List<float>();
            for (int step = 0; step < 5; step++)
            {
                opt.ZeroGrad();
                var logits = Executor.Run(g, new ForwardContext(training: true, new Generator(77 + (ulong)step)), xt)[0];
                var loss = Losses.CrossEntropy(logits, yt, labelSmoothing: 0.1f) + Losses.MultiMargin(logits, yt) * 0.1f;
                loss.Backward();
                GradClip.ClipGradNorm(ps, 1f);
                opt.Step();
                sched.Step();
                losses.Add(loss.Item());
            }
            return (losses.ToArray(), g);
        }
        var (lc, gc) = Train(Device.Cpu);
        var (le, ge) = Train(Emu);
        AssertBitwise(le, lc, "losses");
        Assert.That(lc[^1], Is.LessThan(lc[0]), "training made no progress");
        var vc = gc.Initializers.ToArray(); var ve = ge.Initializers.ToArray();
        for (int i = 0; i < vc.Length; i++)
        {
            Assert.That(ve[i].Data!.Device, Is.SameAs(Emu), ve[i].Name);
            AssertBitwise(ve[i].Data!.ToArray(), vc[i].Data!.ToArray(), $"{ve[i].Name} after training");
        }
        // Evaluation mode (running statistics) and the MSE loss as well.
        var ec = Executor.Forward(gc, Tensor.FromSpan(x, [8, 1, 12, 12], Device.Cpu));
        var ee = Executor.Forward(ge, Tensor.FromSpan(x, [8, 1, 12, 12], Emu));
        AssertBitwise(ee.ToArray(), ec.ToArray(), "eval logits");
        AssertBitwise([Losses.Mse(ee, ee * 0.5f).Item()], [Losses.Mse(ec, ec * 0.5f).Item()], "mse");
    }

    private static Module BoundNet(int seed)
    {
        var g = new Generator((ulong)seed);
        return new Sequential(new Conv2d(1, 3, 3, stride: 2, padding: 1, generator: g), new ReLU(), new Flatten(),
                              new Linear(3 * 4 * 4, 12, generator: g), new LeakyReLU(0.1f), new Linear(12, 10, generator: g));
    }

    /// <summary>
    /// With and without gradient recording: the fused no-gradient passes (IbpCenterMargin, IbpCombine,
    /// ReluRelaxation) on the device must give the CPU's bits as the recorded composition does.
    /// </summary>
    [Test]
    public void BoundsMatchTheCpuForEveryMethod([Values] BoundMethod method, [Values] bool noGrad)
    {
        using var ng = noGrad ? new NoGrad() : null;
        var model = BoundNet(8);
        var x = Data(3 * 64, 9, 0f, 1f);
        var labels = new[] { 1, 4, 7 };
        var gc = On(Device.Cpu, model); var ge = On(Emu, model);
        // The CPU's chunking on both devices, so that the work (and its rounding) is the same.
        var opts = new BoundOptions { FastPath = false, AlphaIterations = 4, IntermediateChunkRows = 384 };
        foreach (var p in new[] { Perturbation.LInf(0.03f, 0f, 1f), Perturbation.L2(0.2f) })
        {
            var spec = Spec.Margins(labels, 10);
            var rc = BoundsApi.Compute(gc, Tensor.FromSpan(x, [3, 1, 8, 8], Device.Cpu), p, method, spec, opts);
            var re = BoundsApi.Compute(ge, Tensor.FromSpan(x, [3, 1, 8, 8], Emu), p, method, new Spec(spec.C.To(Emu)), opts);
            Assert.That(re.Lower.Device, Is.SameAs(Emu));
            AssertBitwise(re.Lower.ToArray(), rc.Lower.ToArray(), $"{method} {p.Norm} lower");
            AssertBitwise(re.Upper.ToArray(), rc.Upper.ToArray(), $"{method} {p.Norm} upper");
            // The CPU's default (fast path where it applies) gives the same bounds up to rounding.
            var fast = BoundsApi.Compute(gc, Tensor.FromSpan(x, [3, 1, 8, 8], Device.Cpu), p, method, spec, new BoundOptions { AlphaIterations = 4 });
            Assert.That(re.Lower.ToArray(), Is.EqualTo(fast.Lower.ToArray()).Within(1e-3f));
            // The accelerator's default chunking (all examples' rows together) gives the same bounds up to rounding.
            var big = BoundsApi.Compute(ge, Tensor.FromSpan(x, [3, 1, 8, 8], Emu), p, method, new Spec(spec.C.To(Emu)), new BoundOptions { FastPath = false, AlphaIterations = 4 });
            Assert.That(big.Lower.ToArray(), Is.EqualTo(re.Lower.ToArray()).Within(1e-4f), $"{method} {p.Norm}: default accelerator chunking");
            var one = BoundsApi.Compute(gc, Tensor.FromSpan(x, [3, 1, 8, 8], Device.Cpu), p, method, spec, new BoundOptions { FastPath = false, AlphaIterations = 4, IntermediateChunkRows = 1 });
            Assert.That(one.Lower.ToArray(), Is.EqualTo(rc.Lower.ToArray()).Within(1e-4f), $"{method} {p.Norm}: one example per chunk");
        }
    }

    /// <summary>
    /// A device input is checked on the device (its minimum and maximum) instead of on a host copy: NaN, infinity
    /// and values outside the domain are refused as on the CPU, naming the problem.
    /// </summary>
    [Test]
    public void DeviceInputsAreCheckedAsOnTheCpu([Values(float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1.5f, -0.25f)] float bad)
    {
        var model = On(Emu, BoundNet(3));
        var x = Data(2 * 64, 4, 0f, 1f);
        foreach (int at in new[] { 0, 77, 127 })
        {
            var xb = (float[])x.Clone();
            xb[at] = bad;
            foreach (var dev in new[] { Device.Cpu, Emu })
            {
                var graph = dev == Emu ? model : On(Device.Cpu, BoundNet(3));
                var ex = Assert.Throws<ArgumentException>(() => BoundsApi.Compute(graph, Tensor.FromSpan(xb, [2, 1, 8, 8], dev), Perturbation.LInf(0.03f, 0f, 1f), BoundMethod.Crown));
                Assert.That(ex!.Message, float.IsFinite(bad) ? Does.Contain("outside the domain").And.Contain(bad.ToString()) : Does.Contain("NaN or infinity"), $"{dev.Name}, value {bad} at {at}");
            }
        }
        // Valid inputs at the domain's ends pass on both.
        var edge = Enumerable.Range(0, 128).Select(i => i % 2 == 0 ? 0f : 1f).ToArray();
        Assert.DoesNotThrow(() => BoundsApi.Compute(model, Tensor.FromSpan(edge, [2, 1, 8, 8], Emu), Perturbation.LInf(0.03f, 0f, 1f), BoundMethod.Crown));
    }

    /// <summary>
    /// A NaN bound is refused on the device as on the CPU (there by one reduction of the lower and the upper bounds and
    /// one copy), naming which bound; +infinity upper bounds (none asked for) pass.
    /// </summary>
    [Test]
    public void NaNBoundsAreRefusedAsOnTheCpu([Values(BoundMethod.Ibp, BoundMethod.Crown)] BoundMethod method)
    {
        var x = Data(2 * 64, 5, 0f, 1f);
        var net = BoundNet(3);
        // A NaN in one output's bias: that output's bounds are NaN (lower and upper); with the spec's rows reading it
        // the margins' bounds are NaN.
        var last = net.Graph.Initializers.Last().Data!;
        var values = last.ToArray();
        values[2] = float.NaN;
        using (new NoGrad()) last.CopyFrom(Tensor.FromSpan(values, last.Shape, null));
        foreach (var dev in new[] { Device.Cpu, Emu })
        {
            var graph = On(dev, net);
            var xt = Tensor.FromSpan(x, [2, 1, 8, 8], dev);
            var ex = Assert.Throws<InvalidOperationException>(() => BoundsApi.Compute(graph, xt, Perturbation.LInf(0.03f, 0f, 1f), method,
                null, new BoundOptions { FastPath = false }))!;
            Assert.That(ex.Message, Does.Contain("lower bound is NaN"), dev.Name);
        }
        var clean = On(Emu, BoundNet(3));
        var r = BoundsApi.Compute(clean, Tensor.FromSpan(x, [2, 1, 8, 8], Emu), Perturbation.LInf(0.03f, 0f, 1f), BoundMethod.Crown, null,
                                  new BoundOptions { FastPath = false, ComputeUpper = false });
        Assert.That(r.Upper.ToArray(), Is.All.EqualTo(float.PositiveInfinity), "no upper bounds asked for: +infinity, not an error");
    }

    [Test]
    public void BoundsThroughOtherOpRulesMatchTheCpu([Values(BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.AlphaCrown)] BoundMethod method)
    {
        var g = new Generator(15);
        var model = new Sequential(new Conv2d(1, 2, 3, padding: 1, generator: g), new BatchNorm2d(2), new Sigmoid(), new MaxPool2d(2),
                                   new AvgPool2d(2), new Flatten(), new Linear(8, 6, generator: g), new Tanh(),
                                   new Residual(new Sequential(new Linear(6, 6, generator: g), new ReLU())), new Linear(6, 4, generator: g));
        model.Eval();
        var x = Data(2 * 64, 16, 0f, 1f);
        var opts = new BoundOptions { FastPath = false, AlphaIterations = 3 };
        var rc = BoundsApi.Compute(On(Device.Cpu, model), Tensor.FromSpan(x, [2, 1, 8, 8], Device.Cpu), Perturbation.LInf(0.05f), method, null, opts);
        var re = BoundsApi.Compute(On(Emu, model), Tensor.FromSpan(x, [2, 1, 8, 8], Emu), Perturbation.LInf(0.05f), method, null, opts);
        AssertBitwise(re.Lower.ToArray(), rc.Lower.ToArray(), "lower");
        AssertBitwise(re.Upper.ToArray(), rc.Upper.ToArray(), "upper");
    }

    [Test]
    public void CertifierFloat64RecheckReadsDeviceWeights([Values(BoundMethod.Ibp, BoundMethod.Crown)] BoundMethod method)
    {
        // The re-check of near-zero float32 bounds reads the graph's weights into the float64 guard: on a device the
        // verdicts and the re-check's counts must be the CPU's (it once failed every re-check on CUDA).
        var g = new Generator(8);
        var model = new Sequential(new Conv2d(1, 3, 3, stride: 2, padding: 1, generator: g), new ReLU(), new Flatten(),
                                   new Linear(3 * 4 * 4, 12, generator: g), new ReLU(), new Linear(12, 10, generator: g));
        var x = Data(6 * 64, 9, 0f, 1f);
        var logits = Executor.Forward(On(Device.Cpu, model), Tensor.FromSpan(x, [6, 1, 8, 8], Device.Cpu)).ToArray();
        int[] labels = [.. Enumerable.Range(0, 6).Select(i => Array.IndexOf(logits, logits.AsSpan(i * 10, 10).ToArray().Max(), i * 10) - i * 10)];
        var p = Perturbation.LInf(0.002f, 0f, 1f);
        var opts = new BoundOptions { FastPath = false, ComputeUpper = false };
        (CertifierResult R, string? Why) Run(Device d)
        {
            var certifier = new BoundCertifier(On(d, model), method, opts, recheckBelow: 1e9f);
            var xt = Tensor.FromSpan(x, [6, 1, 8, 8], d);
            return (certifier.Certify(xt, labels, p), certifier.RecheckUnavailableReason);
        }
        var (c, whyC) = Run(Device.Cpu); var (e, whyE) = Run(Emu);
        Assert.That(c.Rechecked, Is.GreaterThan(0), "nothing was re-checked: the test proves nothing");
        Assert.That(c.RecheckRejected, Is.LessThan(c.Rechecked), $"the CPU's guard proved nothing ({whyC})");
        Assert.That(e.Rechecked, Is.EqualTo(c.Rechecked));
        Assert.That(e.RecheckRejected, Is.EqualTo(c.RecheckRejected), $"the float64 re-check on device weights ({whyE})");
        Assert.That(e.Verified, Is.EqualTo(c.Verified));
        Assert.That(whyE, Is.Null, "the guard read the device model");
    }

    [Test]
    public void SpecOnTheCpuIsAcceptedForDeviceInputs()
    {
        var model = BoundNet(8);
        var x = Tensor.FromSpan(Data(2 * 64, 9, 0f, 1f), [2, 1, 8, 8], Emu);
        var r = BoundsApi.Compute(On(Emu, model), x, Perturbation.LInf(0.02f), BoundMethod.Crown, Spec.Margins([2, 3], 10));
        var c = BoundsApi.Compute(On(Device.Cpu, model), x.To(Device.Cpu), Perturbation.LInf(0.02f), BoundMethod.Crown, Spec.Margins([2, 3], 10),
                                  new BoundOptions { FastPath = false });
        Assert.That(r.Lower.Device, Is.SameAs(Emu));
        AssertBitwise(r.Lower.ToArray(), c.Lower.ToArray(), "lower");
    }

    [Test]
    public void CertifiedTrainingGradientsMatchTheCpu()
    {
        var model = BoundNet(10);
        var x = Data(4 * 64, 11, 0f, 1f);
        var labels = new[] { 0, 3, 5, 9 };
        float[][] Grads(Device d)
        {
            var g = On(d, model);
            var xt = Tensor.FromSpan(x, [4, 1, 8, 8], d);
            var spec = new Spec(Spec.Margins(labels, 10).C.To(d));
            var b = BoundsApi.ComputeMixed(g, xt, Perturbation.LInf(0.01f, 0f, 1f), 0.5f, spec);
            (-b.Lower).Relu().Mean().Backward();
            return g.Parameters.Select(v => v.Data!.Grad!.ToArray()).ToArray();
        }
        var gc = Grads(Device.Cpu); var ge = Grads(Emu);
        for (int i = 0; i < gc.Length; i++) AssertBitwise(ge[i], gc[i], $"grad {i}");
    }

    [Test]
    public void IbpTrainingBoundsAndGradientsMatchTheCpu()
    {
        // Pure IBP (Bounds.Compute with BoundMethod.Ibp), the certified-training path whose CPU rules are fused (the
        // ReLU writes the next centre / radius and sends its gradient past the pre-activation bounds): bit for bit the
        // device's tensor-op composition, bounds and parameter gradients.
        var model = BoundNet(14);
        var x = Data(4 * 64, 15, 0f, 1f);
        var labels = new[] { 1, 4, 6, 8 };
        (float[] Lower, float[][] Grads) Run(Device d)
        {
            var g = On(d, model);
            var xt = Tensor.FromSpan(x, [4, 1, 8, 8], d);
            var spec = new Spec(Spec.Margins(labels, 10).C.To(d));
            var b = BoundsApi.Compute(g, xt, Perturbation.LInf(0.02f, 0f, 1f), BoundMethod.Ibp, spec, new BoundOptions { ComputeUpper = false });
            (-b.Lower).Relu().Mean().Backward();
            return (b.Lower.ToArray(), g.Parameters.Select(v => v.Data!.Grad!.ToArray()).ToArray());
        }
        var c = Run(Device.Cpu); var e = Run(Emu);
        AssertBitwise(e.Lower, c.Lower, "lower");
        for (int i = 0; i < c.Grads.Length; i++) AssertBitwise(e.Grads[i], c.Grads[i], $"grad {i}");
    }

    [Test]
    public void AttacksMatchTheCpu()
    {
        var model = BoundNet(12);
        var x = Data(5 * 64, 13, 0f, 1f);
        var y = new float[] { 1, 2, 3, 4, 5 };
        AttackResult[] Run(Device d)
        {
            AttackModel m = On(d, model);
            var xt = Tensor.FromSpan(x, [5, 1, 8, 8], d); var yt = Tensor.FromSpan(y, [5], d);
            return
            [
                Pgd.Attack(m, xt, yt, new PgdOptions { Eps = 0.1f, Steps = 4, Restarts = 2, Seed = 5 }),
                Pgd.Attack(m, xt, yt, new PgdOptions { Norm = Norm.L2, Eps = 0.5f, Steps = 3, Loss = AttackLoss.Margin, Seed = 6 }),
                Fgsm.Attack(m, xt, yt, 0.1f),
                DeepFool.Attack(m, xt, yt, steps: 5),
            ];
        }
        var rc = Run(Device.Cpu); var re = Run(Emu);
        for (int i = 0; i < rc.Length; i++)
        {
            Assert.That(re[i].Adversarial.Device, Is.SameAs(Emu), $"attack {i}");
            AssertBitwise(re[i].Adversarial.ToArray(), rc[i].Adversarial.ToArray(), $"attack {i} adversarial");
            AssertBitwise(re[i].Margins, rc[i].Margins, $"attack {i} margins");
        }
        SearchResult Search(Device d)
            => Pgd.MinimizeSpec(On(d, model), Tensor.FromSpan(x, [5, 1, 8, 8], d) * 0.9f, Tensor.FromSpan(x, [5, 1, 8, 8], d) * 0.9f + 0.1f,
                                Tensor.FromSpan(Data(20, 3), [2, 10], d), Tensor.Zeros([2], d), new BoxSearchOptions { Steps = 4, Seed = 2 });
        var sc = Search(Device.Cpu); var se = Search(Emu);
        AssertBitwise(se.Point.ToArray(), sc.Point.ToArray(), "spec search point");
        AssertBitwise(se.Objective, sc.Objective, "spec search objective");
    }

    [Test]
    public void DataLoaderAndSerializationWorkWithDeviceTensors()
    {
        var inputs = Tensor.FromSpan(Data(10 * 6, 14), [10, 6], Emu);
        var targets = Tensor.FromSpan(Enumerable.Range(0, 10).Select(i => (float)(i % 3)).ToArray(), [10], Emu);
        var cpuLoader = new DataLoader(new TensorDataset(inputs.To(Device.Cpu), targets.To(Device.Cpu)), 4, shuffle: true, seed: 3, device: Emu);
        var emuLoader = new DataLoader(new TensorDataset(inputs, targets), 4, shuffle: true, seed: 3, device: Emu);
        var a = cpuLoader.ToList(); var b = emuLoader.ToList();
        Assert.That(b, Has.Count.EqualTo(a.Count));
        for (int i = 0; i < a.Count; i++)
        {
            Assert.That(b[i].Inputs.Device, Is.SameAs(Emu));
            AssertBitwise(b[i].Inputs.ToArray(), a[i].Inputs.ToArray(), $"batch {i} inputs");
            AssertBitwise(b[i].Targets.ToArray(), a[i].Targets.ToArray(), $"batch {i} targets");
        }
        using var ms = new MemoryStream();
        SafeTensors.Save(ms, [new("x", inputs)]);
        ms.Position = 0;
        var back = SafeTensors.Load(ms, Emu)["x"];
        Assert.That(back.Device, Is.SameAs(Emu));
        AssertBitwise(back.ToArray(), inputs.ToArray(), "safetensors round trip");
    }

    [Test]
    public void DisposedDeviceStorageIsNotReadAgain()
    {
        var t = Tensor.Ones([4], Emu);
        t.Storage.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ToArray());
        Assert.Throws<ObjectDisposedException>(() => _ = t.Exp());
    }
}
