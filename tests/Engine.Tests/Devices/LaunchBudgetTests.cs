using Engine.Autograd;
using Engine.Bounds;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using BoundsApi = Engine.Bounds.Bounds;

namespace Engine.Tests.Devices;

/// <summary>
/// What one CROWN call costs a GPU's host: kernel launches and copies to the host, counted on an emulated device
/// (<see cref="CountingDevice"/>) for the networks of `engine bench crown` (issue 4's MLP and CNN). On an H200 the
/// MLP's call was host-bound at ~190 launches (3.05 ms against PyTorch's 2.66 ms); the budgets keep the fused passes
/// from quietly coming undone. The counts do not depend on the batch (one accelerator chunk), so a small one runs here.
/// </summary>
[TestFixture]
public class LaunchBudgetTests
{
    private static CountingDevice? _device;

    private static CountingDevice Counting()
    {
        if (_device != null) return _device;
        _device = new CountingDevice("count");
        Device.Register("count", _ => _device);
        return _device;
    }

    /// <summary>The bench nets' shapes (`engine bench crown`: the MLP, the CNN) with seeded weights, in eval mode.</summary>
    internal static Module Net(string net)
    {
        var g = new Generator(1);
        Module m = net == "mlp"
            ? new Sequential(new Flatten(), new Linear(784, 256, generator: g), new ReLU(), new Linear(256, 256, generator: g), new ReLU(), new Linear(256, 10, generator: g))
            : new Sequential(new Conv2d(1, 8, 4, 2, 1, generator: g), new ReLU(), new Conv2d(8, 16, 4, 2, 1, generator: g), new ReLU(),
                             new Flatten(), new Linear(784, 100, generator: g), new ReLU(), new Linear(100, 10, generator: g));
        m.Eval();
        return m;
    }

    /// <summary>One counted CROWN margin-bound call (after a first, uncounted one) and its lower bounds.</summary>
    private static float[] CountedCrown(CountingDevice dev, string net, int batch, BoundMethod method = BoundMethod.Crown, Perturbation? perturbation = null)
    {
        var pert = perturbation ?? Perturbation.LInf(0.01f);
        var x = Tensor.Uniform([batch, 1, 28, 28], 0f, 1f, new Generator(2)).To(dev);
        var graph = Net(net).To(dev).Graph;
        var labels = Enumerable.Range(0, batch).Select(i => i % 10).ToArray();
        var spec = new Spec(Spec.Margins(labels, 10).C.To(dev));
        var opts = new BoundOptions { ComputeUpper = false };
        using var noGrad = new NoGrad();
        BoundsApi.Compute(graph, x, pert, method, spec, opts).Lower.ToArray();
        dev.Reset();
        var lower = BoundsApi.Compute(graph, x, pert, method, spec, opts).Lower.ToArray();
        return lower;
    }

    // Counted: MLP 46 launches / 4 copies to the host, CNN 110 / 5 (from 190 / 5 and 387 / 6; 51 / 5 and 121 / 6 before
    // the fused row selection, the signed biases and the one-copy input and NaN checks).
    [TestCase("mlp", 52, 4)]
    [TestCase("cnn", 120, 5)]
    public void CrownStaysWithinItsLaunchBudget(string net, int maxLaunches, int maxCopiesToHost)
    {
        var dev = Counting();
        var lower = CountedCrown(dev, net, 16);
        int launches = dev.Launches;
        string detail = string.Join(", ", dev.Calls.OrderByDescending(k => k.Value).Select(k => $"{k.Key} {k.Value}"));
        Assert.That(launches, Is.LessThanOrEqualTo(maxLaunches), $"CROWN on the {net}: {launches} kernel launches ({detail})");
        Assert.That(dev.CopiesToHost, Is.LessThanOrEqualTo(maxCopiesToHost), $"CROWN on the {net}: {dev.CopiesToHost} copies to the host (each a stream synchronisation)");
        // The counted call computes the CPU's bounds (the emulated device runs the CPU kernels).
        using (new NoGrad())
        {
            var x = Tensor.Uniform([16, 1, 28, 28], 0f, 1f, new Generator(2));
            var cpu = BoundsApi.Compute(Net(net), x, Perturbation.LInf(0.01f), BoundMethod.Crown,
                new Spec(Spec.Margins(Enumerable.Range(0, 16).Select(i => i % 10).ToArray(), 10).C), new BoundOptions { ComputeUpper = false, FastPath = false }).Lower.ToArray();
            Assert.That(lower, Is.EqualTo(cpu).Within(1e-4f), "bounds on the counting device against the CPU's");
        }
    }

    /// <summary>
    /// Without gradient recording the backward pass adds its terms into its own running tensors in place: every input
    /// (weights, the input, the spec) must be left as it was, a second call must give the same bits, and the bounds
    /// must equal those computed with recording on (up to the order of a few float adds), for every op rule.
    /// </summary>
    [TestCase(BoundMethod.Crown), TestCase(BoundMethod.CrownIbp), TestCase(BoundMethod.AlphaCrown)]
    public void InPlaceAddsLeaveTheInputsAlone(BoundMethod method)
    {
        var g = new Generator(15);
        var model = new Sequential(new Conv2d(1, 2, 3, padding: 1, generator: g), new BatchNorm2d(2), new Sigmoid(), new MaxPool2d(2),
                                   new AvgPool2d(2), new Flatten(), new Linear(8, 6, generator: g), new Tanh(),
                                   new Residual(new Sequential(new Linear(6, 6, generator: g), new ReLU())), new Linear(6, 4, generator: g));
        model.Eval();
        var x = Tensor.Uniform([3, 1, 8, 8], 0f, 1f, new Generator(16));
        var spec = new Spec(Spec.Margins([0, 1, 3], 4).C);
        var opts = new BoundOptions { FastPath = false, AlphaIterations = 3 };
        var before = model.Graph.Initializers.Select(v => v.Data!.ToArray()).ToArray();
        var (x0, c0) = (x.ToArray(), spec.C.ToArray());
        var recorded = BoundsApi.Compute(model, x, Perturbation.LInf(0.05f, 0f, 1f), method, spec, opts);
        BoundResult first, second;
        using (new NoGrad())
        {
            first = BoundsApi.Compute(model, x, Perturbation.LInf(0.05f, 0f, 1f), method, spec, opts);
            second = BoundsApi.Compute(model, x, Perturbation.LInf(0.05f, 0f, 1f), method, spec, opts);
        }
        var after = model.Graph.Initializers.Select(v => v.Data!.ToArray()).ToArray();
        for (int i = 0; i < before.Length; i++) Assert.That(after[i], Is.EqualTo(before[i]), $"initializer {i} changed");
        Assert.That(x.ToArray(), Is.EqualTo(x0), "input changed");
        Assert.That(spec.C.ToArray(), Is.EqualTo(c0), "spec changed");
        Assert.That(second.Lower.ToArray(), Is.EqualTo(first.Lower.ToArray()), "a second call differs");
        Assert.That(second.Upper.ToArray(), Is.EqualTo(first.Upper.ToArray()), "a second call differs (upper)");
        Assert.That(first.Lower.ToArray(), Is.EqualTo(recorded.Lower.Detach().ToArray()).Within(1e-5f), "no-gradient bounds against recorded ones");
        Assert.That(first.Upper.ToArray(), Is.EqualTo(recorded.Upper.Detach().ToArray()).Within(1e-5f), "no-gradient bounds against recorded ones (upper)");
    }

    /// <summary>
    /// A clipped box (what `engine certify` bounds) and alpha-CROWN (21 backward passes): the box's centre and radius are
    /// made once per computation, not once per pass. Counted: CROWN 53, alpha-CROWN 1,070 (1,930 before its ReLU relaxations were kept and its
    /// passes' gradients, recorded for the slopes, ran as kernels instead of element-wise compositions).
    /// </summary>
    [TestCase(BoundMethod.Crown, 58), TestCase(BoundMethod.AlphaCrown, 1100)]
    public void ClippedBoxesAndAlphaCrownStayWithinTheirBudgets(BoundMethod method, int maxLaunches)
    {
        var dev = Counting();
        CountedCrown(dev, "mlp", 16, method, Perturbation.LInf(0.05f, 0f, 1f));
        int launches = dev.Launches;
        string detail = string.Join(", ", dev.Calls.OrderByDescending(k => k.Value).Select(k => $"{k.Key} {k.Value}"));
        Assert.That(launches, Is.LessThanOrEqualTo(maxLaunches), $"{method} on the mlp, clipped box: {launches} kernel launches ({detail})");
    }

    /// <summary>A diagnostic, run by hand: launches by kernel and by calling rule.</summary>
    [Explicit, TestCase("mlp"), TestCase("cnn"), TestCase("mlp", BoundMethod.AlphaCrown, true)]
    public void PrintLaunches(string net, BoundMethod method = BoundMethod.Crown, bool clipped = false)
    {
        var dev = Counting();
        dev.Trace = [];
        CountedCrown(dev, net, 128, method, clipped ? Perturbation.LInf(0.05f, 0f, 1f) : null);
        foreach (var kv in dev.Trace.OrderByDescending(k => k.Value)) TestContext.Out.WriteLine($"  {kv.Value,4} {kv.Key}");
        dev.Trace = null;
        TestContext.Out.WriteLine($"{net}: {dev.Launches} calls, {dev.CopiesToHost} copies to the host, {dev.CopiesFromHost} from the host");
    }

    /// <summary>One counted certified-training step (the loss, its backward pass and an Adam step; after an uncounted one) of the CNN (cnn-small's shape) at batch 64.</summary>
    private static void CountedTrainingStep(CountingDevice dev, Engine.Certify.TrainMethod method)
    {
        var model = Net("cnn");
        model.Train();
        model.To(dev);
        var opt = new Engine.Nn.Adam(model.Parameters(), 1e-3f);
        var x = Tensor.Uniform([64, 1, 28, 28], 0f, 1f, new Generator(2)).To(dev);
        var y = Tensor.FromSpan(Enumerable.Range(0, 64).Select(i => (float)(i % 10)).ToArray(), [64], null).To(dev);
        var options = new Engine.Certify.CertifiedTrainingOptions { Method = method, Eps = method == Engine.Certify.TrainMethod.Standard ? 0f : 0.05f };
        var at = new Engine.Certify.ScheduleValues { Eps = 0.05f, Kappa = 0.5f, Beta = 0.5f, LearningRate = 1e-3f };
        void Step()
        {
            opt.ZeroGrad();
            Engine.Certify.CertifiedLosses.Compute(model, x, y, options, at).Loss.Backward();
            opt.Step();
        }
        Step();
        dev.Reset();
        Step();
    }

    /// <summary>
    /// Certified training on a GPU is launch-bound for small networks: IBP's centre / margin and combine steps run as
    /// one kernel each forward and backward on every device (the ReLU's IBP with the next layer's centre / margin), and
    /// so do ReLU's CROWN relaxation and the fused CROWN passes' gradients. Counted: IBP 156 launches / 4 copies to the
    /// host (235 / 6 before), CROWN-IBP 245 / 3 (464 / 4).
    /// </summary>
    [TestCase(Engine.Certify.TrainMethod.Ibp, 165, 4), TestCase(Engine.Certify.TrainMethod.CrownIbp, 260, 3)]
    public void CertifiedTrainingStepStaysWithinItsBudget(Engine.Certify.TrainMethod method, int maxLaunches, int maxCopiesToHost)
    {
        var dev = Counting();
        CountedTrainingStep(dev, method);
        string detail = string.Join(", ", dev.Calls.OrderByDescending(k => k.Value).Select(k => $"{k.Key} {k.Value}"));
        Assert.That(dev.Launches, Is.LessThanOrEqualTo(maxLaunches), $"{method} step: {dev.Launches} launches ({detail})");
        Assert.That(dev.CopiesToHost, Is.LessThanOrEqualTo(maxCopiesToHost), $"{method} step: copies to the host");
    }

    /// <summary>A diagnostic, run by hand: launches of one certified-training step by kernel and by calling rule.</summary>
    [Explicit, TestCase(Engine.Certify.TrainMethod.Ibp), TestCase(Engine.Certify.TrainMethod.CrownIbp), TestCase(Engine.Certify.TrainMethod.Standard)]
    public void PrintTrainingStepLaunches(Engine.Certify.TrainMethod method)
    {
        var dev = Counting();
        dev.Trace = [];
        CountedTrainingStep(dev, method);
        foreach (var kv in dev.Trace.OrderByDescending(k => k.Value).Take(60)) TestContext.Out.WriteLine($"  {kv.Value,4} {kv.Key}");
        dev.Trace = null;
        TestContext.Out.WriteLine($"{method}: {dev.Launches} launches, {dev.CopiesToHost} copies to the host, {dev.CopiesFromHost} from the host");
        TestContext.Out.WriteLine(string.Join(", ", dev.Calls.OrderByDescending(k => k.Value).Select(k => $"{k.Key} {k.Value}")));
    }
}
