using Engine.Autograd;
using Engine.Bounds;
using Engine.Graph;
using Engine.Onnx;
using Engine.Tensors;
using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Onnx;

/// <summary>
/// Imported ONNX graphs on another device against the CPU: the hand-built operator models and the VNN-COMP samples,
/// moved with <see cref="ComputeGraph.To"/> as `engine bounds|certify|bench --device` do, then run forward and bounded
/// by every method. Shared by the emulated device's tests (CPU kernels behind a storage of its own: equal to the CPU
/// bit for bit where the same kernels run) and the CUDA tests (the real backend, on a GPU or the emulated one).
/// </summary>
internal static class OnnxDeviceCheck
{
    /// <summary>
    /// A model: its bytes, the batch its symbolic dimension takes, the import options, and whether it is boundable (one
    /// input, one output, and every bound method supports the graph).
    /// </summary>
    public sealed record Model(string Name, Func<byte[]> Bytes, int Batch = 2, OnnxImportOptions? Options = null, bool Boundable = true)
    {
        public override string ToString() => Name;
    }

    /// <summary>Every hand-built operator model, BatchNorm folded and not, and every VNN-COMP sample on this machine.</summary>
    public static IEnumerable<Model> Models()
    {
        yield return new("mlp-gemm-variants", () => OnnxOpModels.MlpWithGemmVariants().Bytes());
        // Its Transpose moves the batch dimension, which bounds refuse.
        yield return new("gemm-transposed-a", () => OnnxOpModels.GemmWithTransposedA().Bytes(), Boundable: false);
        yield return new("conv-batchnorm-pool-concat", () => OnnxOpModels.ConvBatchNormPoolConcat().Bytes(), Batch: 3);
        yield return new("batchnorm-folded", () => OnnxOpModels.BatchNorm(3).Bytes());
        yield return new("batchnorm-kept", () => OnnxOpModels.BatchNorm(3).Bytes(), Options: new OnnxImportOptions { FoldBatchNorm = false });
        yield return new("div-by-constant", () => OnnxOpModels.DivByConstant().Bytes(), Batch: 3);
        yield return new("layout-ops", () => OnnxOpModels.LayoutOps().Bytes(), Boundable: false);
        yield return new("arithmetic-between-values", () => OnnxOpModels.ArithmeticBetweenComputedValues().Bytes(), Boundable: false);
        yield return new("matmul-of-values", () => OnnxOpModels.MatMulOfComputedValues().Bytes(), Boundable: false);
        if (VnnCompData.Root is { } root)
            foreach (var f in VnnCompData.Files("*.onnx"))
                yield return new(Path.GetFileNameWithoutExtension(f), () => File.ReadAllBytes(Path.Combine(root, f)), Batch: 3);
    }

    /// <summary>The models' names (test case sources: the model type is internal).</summary>
    public static IEnumerable<string> Names() => Models().Select(m => m.Name);

    /// <summary>The names of the <see cref="Model.Boundable"/> models.</summary>
    public static IEnumerable<string> BoundableNames() => Models().Where(m => m.Boundable).Select(m => m.Name);

    /// <summary>The model named <paramref name="name"/>.</summary>
    public static Model Find(string name) => Models().Single(m => m.Name == name);

    /// <summary>The model imported twice: on the CPU and moved to <paramref name="device"/>, with seeded inputs of its declared shapes.</summary>
    /// <summary>
    /// The inputs are of the declared shapes with the symbolic dimension set to the model's batch or, for
    /// <paramref name="batched"/> (what bounds take), a fixed-shape model's input is one example
    /// (<see cref="Verifier.ExampleShape"/>, as `engine bounds` reads it) repeated over a leading batch dimension.
    /// </summary>
    private static (OnnxModel Cpu, OnnxModel Dev, Tensor[] Inputs) Load(Model model, Device device, bool batched = false)
    {
        var bytes = model.Bytes();
        var cpu = OnnxModel.Load(bytes, model.Options);
        var dev = OnnxModel.Load(bytes, model.Options);
        Assert.That(dev.Graph.To(device), Is.SameAs(dev.Graph));
        var inputs = cpu.Inputs.Select((info, k) =>
        {
            var shape = info.Shape.Contains(-1) || !batched
                ? info.Shape.Select(d => d < 0 ? model.Batch : d).ToArray()
                : [model.Batch, .. Verifier.ExampleShape(info.Shape)];
            return Tensor.FromArray(OrtOracle.RandomInput(ShapeUtil.Numel(shape), 11 + k), shape);
        }).ToArray();
        return (cpu, dev, inputs);
    }

    /// <summary>
    /// Forward passes on the device equal the CPU's: bit for bit when <paramref name="relative"/> is 0, else within
    /// that relative tolerance (another device's sums run in another order).
    /// </summary>
    public static void Forward(Model model, Device device, double relative)
    {
        var (cpu, dev, inputs) = Load(model, device);
        using var noGrad = new NoGrad();
        var expected = Executor.Run(cpu.Graph, ForwardContext.Eval, inputs);
        var actual = Executor.Run(dev.Graph, ForwardContext.Eval, inputs.Select(t => t.To(device)).ToArray());
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        for (int o = 0; o < expected.Length; o++)
        {
            Assert.That(actual[o].Device, Is.EqualTo(device), $"{model} output {o} stays on the device");
            Assert.That(actual[o].Shape, Is.EqualTo(expected[o].Shape), $"{model} output {o}");
            Compare(actual[o].ToArray(), expected[o].ToArray(), relative, $"{model} output {o}");
        }
    }

    /// <summary>
    /// Bounds of a <see cref="Model.Boundable"/> model by IBP, CROWN, CROWN-IBP and alpha-CROWN on the device (eps 0.05
    /// around seeded inputs): the CPU's within <paramref name="relative"/> (0: bit for bit; alpha-CROWN, an
    /// optimisation whose slopes may settle elsewhere, at least as tight as the CPU's CROWN instead), and sound: every
    /// output at 64 points of the box (16 of them corners) lies inside them.
    /// </summary>
    public static void Bounds(Model model, Device device, double relative)
    {
        Assert.That(model.Boundable, Is.True, model.Name);
        var (cpu, dev, inputs) = Load(model, device, batched: true);
        Assert.That(inputs, Has.Length.EqualTo(1), model.Name);
        Assert.That(cpu.Outputs, Has.Count.EqualTo(1), model.Name);
        var x = inputs[0];
        var eps = Perturbation.LInf(0.05f);
        float[]? crownLower = null;
        foreach (var method in new[] { BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.CrownIbp, BoundMethod.AlphaCrown })
        {
            var expected = Engine.Bounds.Bounds.Compute(cpu.Graph, x, eps, method);
            var actual = Engine.Bounds.Bounds.Compute(dev.Graph, x.To(device), eps, method);
            string what = $"{model} {method}";
            Assert.That(actual.Lower.Device, Is.EqualTo(device), $"{what}: bounds on the device");
            float[] lo = actual.Lower.ToArray(), hi = actual.Upper.ToArray();
            if (method == BoundMethod.AlphaCrown)
            {
                for (int i = 0; i < lo.Length; i++)
                    Assert.That(lo[i], Is.GreaterThanOrEqualTo(crownLower![i] - Tolerance(crownLower[i], Math.Max(relative, 1e-5))), $"{what} lower[{i}] vs CROWN's");
            }
            else
            {
                Compare(lo, expected.Lower.ToArray(), relative, what + " lower");
                Compare(hi, expected.Upper.ToArray(), relative, what + " upper");
            }
            if (method == BoundMethod.Crown) crownLower = expected.Lower.ToArray();
            AssertSound(cpu.Graph, x, 0.05f, lo, hi, what);
        }
    }

    private static void AssertSound(ComputeGraph graph, Tensor x, float eps, float[] lo, float[] hi, string what)
    {
        var rng = new Random(5);
        var xv = x.ToArray();
        using var noGrad = new NoGrad();
        for (int s = 0; s < 64; s++)
        {
            var p = new float[xv.Length];
            for (int i = 0; i < p.Length; i++)
                p[i] = xv[i] + (s < 16 ? (rng.Next(2) == 0 ? -eps : eps) : (float)(rng.NextDouble() * 2 - 1) * eps);
            var y = Executor.Run(graph, ForwardContext.Eval, [Tensor.FromArray(p, x.Shape)])[0].ToArray();
            for (int i = 0; i < y.Length; i++)
                Assert.That(y[i], Is.InRange(lo[i], hi[i]), $"{what}: output {i} at sample {s} outside its bounds");
        }
    }

    private static double Tolerance(double expected, double relative) => relative * Math.Max(Math.Abs(expected), 1e-2) + 1e-6;

    private static void Compare(float[] actual, float[] expected, double relative, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        for (int i = 0; i < actual.Length; i++)
        {
            if (relative == 0)
            {
                if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                    Assert.Fail($"{what}[{i}]: device {actual[i]:R}, CPU {expected[i]:R} (bit for bit expected)");
            }
            else if (!(Math.Abs(actual[i] - (double)expected[i]) <= Tolerance(expected[i], relative)))
                Assert.Fail($"{what}[{i}]: device {actual[i]:R}, CPU {expected[i]:R} (relative tolerance {relative})");
        }
    }
}
