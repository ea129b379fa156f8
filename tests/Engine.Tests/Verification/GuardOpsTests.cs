using Engine.Graph;
using Engine.Onnx;
using Engine.Tensors;
using Engine.Tests.BoundProp;
using Engine.Tests.Onnx;
using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Verification;

/// <summary>
/// The float64 guard on residual connections, pooling, sigmoid / tanh, unfolded BatchNorm and division by a constant:
/// its node bounds contain every sampled value, its forward pass matches float32, and the verifier proves true and
/// refutes false properties of small models with each op.
/// </summary>
[TestFixture]
public class GuardOpsTests
{
    private static IEnumerable<TestCaseData> Nets()
    {
        yield return new TestCaseData("residual", (Func<ComputeGraph>)(() => BoundTestNets.Residual(1, 3, 6, 3).Graph), new[] { 3 });
        yield return new TestCaseData("residual tanh", (Func<ComputeGraph>)(() => BoundTestNets.Residual(2, 3, 6, 3, BoundTestNets.Act.Tanh).Graph), new[] { 3 });
        yield return new TestCaseData("sigmoid mlp", (Func<ComputeGraph>)(() => BoundTestNets.Mlp(3, [3, 8, 8, 3], BoundTestNets.Act.Sigmoid).Graph), new[] { 3 });
        yield return new TestCaseData("tanh mlp", (Func<ComputeGraph>)(() => BoundTestNets.Mlp(4, [3, 8, 8, 3], BoundTestNets.Act.Tanh).Graph), new[] { 3 });
        yield return new TestCaseData("cnn max pool", (Func<ComputeGraph>)(() => BoundTestNets.Cnn(5, pool: "max").Graph), new[] { 1, 6, 6 });
        yield return new TestCaseData("cnn avg pool", (Func<ComputeGraph>)(() => BoundTestNets.Cnn(6, pool: "avg").Graph), new[] { 1, 6, 6 });
        yield return new TestCaseData("cnn batchnorm", (Func<ComputeGraph>)(() => BoundTestNets.Cnn(7, batchNorm: true).Graph), new[] { 1, 6, 6 });
        yield return new TestCaseData("cnn sigmoid avg pool batchnorm", (Func<ComputeGraph>)(() => BoundTestNets.Cnn(8, BoundTestNets.Act.Sigmoid, "avg", true).Graph), new[] { 1, 6, 6 });
        yield return new TestCaseData("div", (Func<ComputeGraph>)(() => DivNet(9)), new[] { 3 });
        yield return new TestCaseData("overlapping pools", (Func<ComputeGraph>)(() => OverlappingPools(10)), new[] { 1, 5, 5 });
    }

    /// <summary>x → Linear → ÷ [3, −0.7, 10, 1e-3-ish] → Relu → Linear (a DivOp by a constant, as a graph may hold it).</summary>
    private static ComputeGraph DivNet(int seed)
    {
        var g = new Generator((ulong)seed);
        var b = new GraphBuilder();
        var x = b.Input();
        var h = b.Apply(new LinearOp(), x, b.Parameter("w1", Tensor.Uniform([4, 3], -1, 1, g)), b.Parameter("b1", Tensor.Uniform([4], -0.5f, 0.5f, g)));
        var q = b.Apply(new DivOp(), h, b.Constant("c", Tensor.FromArray([3f, -0.7f, 10f, 0.3f], 4)));
        b.Output(b.Apply(new LinearOp(), b.Apply(new ReluOp(), q), b.Parameter("w2", Tensor.Uniform([2, 4], -1, 1, g))));
        return b.Build();
    }

    /// <summary>x [1, 5, 5] → MaxPool 3×3 stride 1 pad 1 (overlapping windows, −∞ padding) → AvgPool 3×3 stride 2 pad 1 (count excludes padding) → Flatten → Linear.</summary>
    private static ComputeGraph OverlappingPools(int seed)
    {
        var g = new Generator((ulong)seed);
        var b = new GraphBuilder();
        var x = b.Input();
        var p = b.Apply(new MaxPool2dOp((3, 3), (1, 1), (1, 1)), x);
        var a = b.Apply(new AvgPool2dOp((3, 3), (2, 2), (1, 1), countIncludePad: false), b.Apply(new ReluOp(), p));
        b.Output(b.Apply(new LinearOp(), b.Apply(new FlattenOp(), a), b.Parameter("w", Tensor.Uniform([3, 9], -1, 1, g))));
        return b.Build();
    }

    [TestCaseSource(nameof(Nets))]
    public void BoundsContainEverySampledValue(string name, Func<ComputeGraph> make, int[] shape)
    {
        var graph = make();
        var net = GuardSoundnessTests.Guard(graph, shape);
        int n = ShapeUtil.Numel(shape);
        var rnd = new Random(name.Length);
        for (int trial = 0; trial < 4; trial++)
        {
            var (lo, hi) = GuardSoundnessTests.Box(rnd, n, trial < 2 ? 0.2 : 1.0);
            var rb = net.Analyze(lo, hi);
            Assert.That(rb.Failed, Is.False);
            var pts = GuardSoundnessTests.Points(rnd, lo, hi, 300);
            // The float64 forward pass is the float32 network's, up to float32 rounding.
            var x32 = pts.SelectMany(p => p.Select(v => (float)v)).ToArray();
            float[] y32;
            using (new Engine.Autograd.NoGrad()) y32 = Executor.Forward(graph, Tensor.FromArray(x32, [pts.Count, .. shape])).ToArray();
            int k = net.OutputSize;
            var c = Enumerable.Range(0, k).Select(_ => rnd.NextDouble() * 2 - 1).ToArray();
            double lb = rb.LowerBound(c, out _);
            for (int s = 0; s < pts.Count; s++)
            {
                var xf = pts[s].Select(v => (double)(float)v).ToArray();
                var z = net.EvaluateAll(xf);
                for (int j = 0; j < k; j++) Assert.That(z[^1][j], Is.EqualTo(y32[s * k + j]).Within(1e-4 + 1e-4 * Math.Abs(y32[s * k + j])), $"{name}: output {j}");
                // Every node's value lies in its bounds (xf is inside the box up to the float rounding of the input).
                var inside = xf.Select((v, i) => Math.Clamp(v, lo[i], hi[i])).ToArray();
                var zi = net.EvaluateAll(inside);
                for (int w = 0; w < zi.Length; w++)
                    for (int j = 0; j < zi[w].Length; j++)
                        Assert.That(zi[w][j], Is.InRange(rb.Lo[w][j] - 1e-12, rb.Hi[w][j] + 1e-12), $"{name}: node {w} ({net.Nodes[w].GetType().Name}) value {j}, trial {trial}");
                Assert.That(c.Zip(zi[^1], (a, b) => a * b).Sum(), Is.GreaterThanOrEqualTo(lb - 1e-12), $"{name}: CROWN bound");
            }
        }
        // Not vacuous: on a box 2e-7 wide the bound is the value at its centre up to a tiny slack.
        var x0 = Enumerable.Range(0, n).Select(_ => rnd.NextDouble() - 0.5).ToArray();
        var tiny = net.Analyze(x0.Select(v => v - 1e-7).ToArray(), x0.Select(v => v + 1e-7).ToArray());
        var y0 = net.Evaluate(x0);
        var c0 = Enumerable.Range(0, net.OutputSize).Select(_ => rnd.NextDouble() * 2 - 1).ToArray();
        double v0 = c0.Zip(y0, (a, b) => a * b).Sum();
        double lb0 = tiny.LowerBound(c0, out _);
        Assert.That(lb0, Is.LessThanOrEqualTo(v0 + 1e-12).And.GreaterThan(v0 - 1e-4), $"{name}: bound on a tiny box");
    }

    [Test]
    public void BatchNormAndDivCoefficientsAreIntervals()
    {
        // x / 0.3 and a BatchNorm scale are not doubles: the guard keeps intervals, and they contain the exact value.
        var net = GuardSoundnessTests.Guard(DivNet(9), [3]);
        var div = net.Nodes.OfType<DiagNode>().Single(d => d.ARad != null);
        double exact = 1 / (double)0.3f;
        Assert.That(exact, Is.InRange(div.A![3] - div.ARad![3], div.A[3] + div.ARad[3]));
        Assert.That(div.ARad[3], Is.GreaterThan(0).And.LessThan(1e-15));
        // 1/10 in float32 is not 0.1; 1/(float)10 = 0.1 exactly is what the graph divides by.
        Assert.That(0.1, Is.InRange(div.A[2] - div.ARad[2], div.A[2] + div.ARad[2]));
    }

    // ONNX models with each op, x [1, n] (or an image) → y [1, 2], and a small input box.
    private static byte[] Onnx(string op)
    {
        var m = new OnnxTestModel(seed: op.Length);
        switch (op)
        {
            case "residual":
                return m.Input("x", 1, 3).Output("y").Rand("w1", 6, 3).Rand("b1", 6).Rand("w2", 6, 6).Rand("w3", 2, 6)
                    .Node("Gemm", ["x", "w1", "b1"], ["h"], ("transB", 1L)).Node("Relu", "h", "r")
                    .Node("Gemm", ["r", "w2"], ["g"], ("transB", 1L)).Node("Relu", "g", "s")
                    .Node("Add", ["r", "s"], ["t"])
                    .Node("Gemm", ["t", "w3"], ["y"], ("transB", 1L)).Bytes();
            case "sigmoid":
            case "tanh":
                return m.Input("x", 1, 3).Output("y").Rand("w1", 6, 3).Rand("b1", 6).Rand("w2", 2, 6)
                    .Node("Gemm", ["x", "w1", "b1"], ["h"], ("transB", 1L)).Node(op == "sigmoid" ? "Sigmoid" : "Tanh", "h", "a")
                    .Node("Gemm", ["a", "w2"], ["y"], ("transB", 1L)).Bytes();
            case "maxpool":
            case "avgpool":
                return m.Input("x", 1, 1, 4, 4).Output("y").Rand("cw", 2, 1, 3, 3).Rand("cb", 2).Rand("fw", 2, 8).Ints("shape", 1, -1)
                    .Node("Conv", ["x", "cw", "cb"], ["c"], ("pads", new long[] { 1, 1, 1, 1 }))
                    .Node("Relu", "c", "r")
                    .Node(op == "maxpool" ? "MaxPool" : "AveragePool", ["r"], ["p"], ("kernel_shape", new long[] { 2, 2 }), ("strides", new long[] { 2, 2 }))
                    .Node("Reshape", ["p", "shape"], ["f"])
                    .Node("Gemm", ["f", "fw"], ["y"], ("transB", 1L)).Bytes();
            case "batchnorm":
                // BatchNorm first: there is no layer before it to fold into.
                return m.Input("x", 1, 2, 2, 2).Output("y").Rand("s", 2).Rand("bb", 2).Rand("mu", 2).RandRange("var", 0.5f, 2f, 2)
                    .Rand("fw", 2, 8).Ints("shape", 1, -1)
                    .Node("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n"])
                    .Node("Relu", "n", "r").Node("Reshape", ["r", "shape"], ["f"])
                    .Node("Gemm", ["f", "fw"], ["y"], ("transB", 1L)).Bytes();
            default: throw new ArgumentException(op);
        }
    }

    [TestCase("residual")]
    [TestCase("sigmoid")]
    [TestCase("tanh")]
    [TestCase("maxpool")]
    [TestCase("avgpool")]
    [TestCase("batchnorm")]
    public void VerifierProvesAndRefutesWithTheOp(string op)
    {
        var model = OnnxModel.Load(Onnx(op));
        var types = model.Graph.Nodes.Select(n => n.Op.Type).ToArray();
        Assert.That(types, Does.Contain(op switch { "residual" => "Add", "sigmoid" => "Sigmoid", "tanh" => "Tanh", "maxpool" => "MaxPool", "avgpool" => "AveragePool", _ => "BatchNormalization" }));
        var shape = Verifier.ExampleShape(model.Inputs[0].Shape);
        int n = ShapeUtil.Numel(shape);
        var net = GuardSoundnessTests.Guard(model.Graph, shape);
        var rnd = new Random(op.Length);
        var lo = Enumerable.Range(0, n).Select(_ => rnd.NextDouble() - 0.5).ToArray();
        var hi = lo.Select(v => v + 0.1).ToArray();
        // y0 − y1 over the box: its sampled minimum, and the guard's CROWN lower bound (a proof the verifier must find).
        var pts = GuardSoundnessTests.Points(rnd, lo, hi, 2000);
        double min = pts.Min(x => { var y = net.Evaluate(x); return y[0] - y[1]; });
        double lb = net.Analyze(lo, hi).LowerBound([1.0, -1.0], out _);
        Assert.That(lb, Is.LessThanOrEqualTo(min));
        var options = new VerifierOptions { Timeout = TimeSpan.FromSeconds(20) };
        // Unsafe y0 − y1 ≤ d: with d below the guard's bound the property holds; with d above a sampled value it is violated.
        var holds = new VerificationCase(lo, hi, [new UnsafeConjunction(new double[,] { { 1, -1 } }, [lb - 0.01])]);
        var r1 = Verifier.Verify(model.Graph, shape, new VerificationProblem([holds]), options);
        Assert.That(r1.Verdict, Is.EqualTo(Verdict.Holds), $"{op}: {r1.Detail}");
        var violated = new VerificationCase(lo, hi, [new UnsafeConjunction(new double[,] { { 1, -1 } }, [min + 0.05 * (1 + Math.Abs(min))])]);
        var r2 = Verifier.Verify(model.Graph, shape, new VerificationProblem([violated]), options);
        Assert.That(r2.Verdict, Is.EqualTo(Verdict.Violated), $"{op}: {r2.Detail}");
        Assert.That(violated.IsUnsafe(r2.Counterexample!.Y), Is.True);
    }

    [Test]
    public void UnfoldedBatchNormAfterAConvIsSupportedToo()
    {
        var bytes = new OnnxTestModel(seed: 3).Input("x", 1, 1, 3, 3).Output("y").Rand("cw", 2, 1, 2, 2)
            .Rand("s", 2).Rand("bb", 2).Rand("mu", 2).RandRange("var", 0.5f, 2f, 2).Rand("fw", 2, 8).Ints("shape", 1, -1)
            .Node("Conv", ["x", "cw"], ["c"]).Node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["n"])
            .Node("Relu", "n", "r").Node("Reshape", ["r", "shape"], ["f"]).Node("Gemm", ["f", "fw"], ["y"], ("transB", 1L)).Bytes();
        var model = OnnxModel.Load(bytes, new OnnxImportOptions { FoldBatchNorm = false });
        Assert.That(model.Graph.Nodes.Any(nd => nd.Op is BatchNormOp));
        var net = GuardSoundnessTests.Guard(model.Graph, [1, 3, 3]);
        var lo = new double[9]; var hi = Enumerable.Repeat(0.5, 9).ToArray();
        var rb = net.Analyze(lo, hi);
        var rnd = new Random(3);
        foreach (var x in GuardSoundnessTests.Points(rnd, lo, hi, 500))
        {
            var y = net.Evaluate(x);
            for (int j = 0; j < 2; j++) Assert.That(y[j], Is.InRange(rb.OutputLower[j], rb.OutputUpper[j]));
        }
    }
}
