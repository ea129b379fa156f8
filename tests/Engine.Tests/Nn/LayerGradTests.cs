using Engine.Autograd;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

/// <summary>Finite-difference checks of every layer, through its op (input and parameter gradients) and through the module.</summary>
public class LayerGradTests
{
    private static readonly ForwardContext Train = new(true);

    private static Tensor Rand(ulong seed, params int[] shape) => Tensor.Uniform(shape, -1f, 1f, new Generator(seed));

    // Values bounded away from 0 (|v| in [0.2, 1]) so ReLU-like kinks sit outside the difference steps.
    private static Tensor AwayFromZero(ulong seed, params int[] shape)
    {
        var a = Rand(seed, shape).ToArray().Select(v => v >= 0 ? 0.2f + 0.8f * v : -0.2f + 0.8f * v).ToArray();
        return Tensor.FromArray(a, shape);
    }

    // Distinct, well-separated values so max pooling has no near-ties.
    private static Tensor Distinct(ulong seed, params int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        var g = new Generator(seed);
        var perm = Enumerable.Range(0, n).ToArray();
        for (int i = n - 1; i > 0; i--) { int j = g.NextInt(i + 1); (perm[i], perm[j]) = (perm[j], perm[i]); }
        return Tensor.FromArray(perm.Select(p => p * 0.1f).ToArray(), shape);
    }

    private static void Check(Op op, ForwardContext ctx, params Tensor[] inputs)
        => GradCheck.Assert(xs => op.Forward(ctx, xs), inputs, eps: 1e-2f, atol: 2e-3, rtol: 2e-2);

    [Test]
    public void AWeightUsedSeveralTimesAccumulatesInItsOwnGradient()
    {
        // Linear adds a parameter's gradient straight into its Grad (a beta-1 GEMM): three uses in one pass, one of
        // them through |W| (not a leaf: the ordinary path), then a second pass on top of the first.
        var x1 = Rand(20, 3, 4); var x2 = Rand(21, 2, 4);
        GradCheck.Assert(t => Tensor.Linear(x1, t[0]).Square().Sum() + Tensor.Linear(x2, t[0].Abs()).Sum() + Tensor.Linear(x1, t[0], t[1]).Sum(),
                         [AwayFromZero(22, 5, 4), Rand(23, 5)], eps: 1e-2f, atol: 2e-3, rtol: 2e-2);
        var w = AwayFromZero(24, 5, 4).RequiresGrad_();
        Tensor Loss() => Tensor.Linear(x1, w).Square().Sum() + Tensor.Linear(x2, w.Abs()).Sum() + Tensor.Linear(x2, w).Sum();
        Loss().Backward();
        var buffer = w.Grad!;
        var once = buffer.ToArray();
        Loss().Backward();
        Assert.That(w.Grad, Is.SameAs(buffer), "the second pass adds into the same buffer");
        Assert.That(w.Grad!.ToArray(), Is.EqualTo(once.Select(v => 2 * v).ToArray()).Within(1e-5f));
    }

    [Test] public void LinearOp() => Check(new LinearOp(), Train, Rand(1, 3, 4), Rand(2, 5, 4), Rand(3, 5));
    [Test] public void LinearOpBatchedNoBias() => Check(new LinearOp(), Train, Rand(1, 2, 3, 4), Rand(2, 5, 4));
    [Test] public void MatMulOp() => Check(new MatMulOp(), Train, Rand(1, 3, 4), Rand(2, 4, 2));
    [Test] public void Conv2dOp() => Check(new Conv2dOp(stride: 2, padding: 1), Train, Rand(4, 2, 3, 6, 5), Rand(5, 4, 3, 3, 3), Rand(6, 4));
    [Test] public void Conv2dOpGroupsDilation() => Check(new Conv2dOp((1, 2), (1, 0), (2, 1), groups: 2), Train, Rand(4, 1, 4, 7, 6), Rand(5, 4, 2, 2, 3));
    [Test] public void ReluOp() => Check(new ReluOp(), Train, AwayFromZero(7, 4, 5));
    [Test] public void LeakyReluOp() => Check(new LeakyReluOp(0.2f), Train, AwayFromZero(8, 4, 5));
    [Test] public void SigmoidOp() => Check(new SigmoidOp(), Train, Rand(9, 4, 5));
    [Test] public void TanhOp() => Check(new TanhOp(), Train, Rand(10, 4, 5));
    [Test] public void FlattenOp() => Check(new FlattenOp(), Train, Rand(11, 2, 3, 2));
    [Test] public void AddOpBroadcast() => Check(new AddOp(), Train, Rand(12, 2, 3), Rand(13, 3));
    [Test] public void MaxPoolOp() => Check(new MaxPool2dOp((2, 2), (2, 2), (1, 1)), Train, Distinct(14, 2, 2, 5, 5));
    [Test] public void AvgPoolOp() => Check(new AvgPool2dOp((3, 3), (2, 2), (1, 1), countIncludePad: false), Train, Rand(15, 2, 2, 5, 6));

    [Test]
    public void BatchNormOpTrainAndEval()
    {
        var op = new BatchNormOp();
        // Running statistics are buffers (updated, not differentiated), so only x, weight and bias are checked.
        var rm = Rand(16, 3); var rv = Tensor.Uniform([3], 0.5f, 2f, new Generator(17));
        var args = new[] { Rand(18, 4, 3, 2, 2), Rand(19, 3), Rand(20, 3), rm, rv };
        GradCheck.Assert(xs => op.Forward(Train, xs), args, eps: 1e-2f, atol: 2e-3, rtol: 3e-2, check: [true, true, true, false, false]);
        GradCheck.Assert(xs => op.Forward(ForwardContext.Eval, xs), args, eps: 1e-2f, atol: 2e-3, rtol: 2e-2, check: [true, true, true, false, false]);
        GradCheck.Assert(xs => op.Forward(Train, xs), [Rand(21, 5, 3), Rand(22, 3), Rand(23, 3)], eps: 1e-2f, atol: 2e-3, rtol: 3e-2);
    }

    [Test]
    public void DropoutOpWithAFixedMask()
    {
        var gen = new Generator(24);
        var op = new DropoutOp(0.4f, gen);
        GradCheck.Assert(xs => { gen.Reset(24); return op.Forward(Train, xs); }, [Rand(25, 6, 7)]);
    }

    private static void CheckModule(Module m, Tensor x, double rtol = 2e-2)
        => GradCheck.Assert(xs => m.Forward(xs[0]), [x], eps: 1e-2f, atol: 2e-3, rtol: rtol);

    [Test]
    public void ModulesPassInputGradients()
    {
        var g = new Generator(30);
        CheckModule(new Linear(4, 3, generator: g), Rand(31, 2, 4));
        CheckModule(new Conv2d(2, 3, 3, stride: 1, padding: 1, generator: g), Rand(32, 2, 2, 4, 4));
        CheckModule(new Sequential(new Linear(4, 6, generator: g), new Tanh(), new Linear(6, 2, generator: g), new Sigmoid()), Rand(33, 3, 4));
        CheckModule(new Sequential(new Flatten(), new LeakyReLU(0.1f)), AwayFromZero(34, 2, 2, 3));
        CheckModule(new Residual(new Sequential(new Linear(3, 3, generator: g), new Tanh())), Rand(35, 4, 3));
        CheckModule(new BatchNorm1d(3), Rand(36, 5, 3), 3e-2);
        CheckModule(new BatchNorm2d(2), Rand(37, 3, 2, 2, 2), 3e-2);
        CheckModule(new Sequential(new AvgPool2d(2), new MaxPool2d(2, 1)), Distinct(38, 1, 2, 6, 6));
        var relu = new Sequential(new ReLU());
        CheckModule(relu, AwayFromZero(39, 3, 4));
    }

    [Test]
    public void ModuleParameterGradientsMatchFiniteDifferences()
    {
        // Perturb each parameter in place and compare with the gradient autograd accumulated.
        var g = new Generator(40);
        var net = new Sequential(new Conv2d(1, 2, 3, padding: 1, generator: g), new BatchNorm2d(2), new Tanh(), new Flatten(), new Linear(2 * 4 * 4, 3, generator: g));
        var x = Rand(41, 2, 1, 4, 4);
        var w = Rand(42, 2, 3);
        Tensor Loss() => (net.Forward(x) * w).Sum();
        net.ZeroGrad();
        Loss().Backward();
        foreach (var (name, p) in net.NamedParameters())
        {
            var analytic = p.Grad!.ToArray();
            for (int i = 0; i < Math.Min(p.Numel, 6); i++)
            {
                float orig = p.AsSpan()[i];
                double f(float v)
                {
                    p.AsSpan()[i] = v;
                    using var _ = new NoGrad();
                    return Loss().Item();
                }
                double numeric = (f(orig + 1e-2f) - f(orig - 1e-2f)) / 2e-2;
                p.AsSpan()[i] = orig;
                Assert.That(analytic[i], Is.EqualTo(numeric).Within(3e-3 + 3e-2 * Math.Abs(numeric)), $"{name}[{i}]");
            }
        }
    }
}
