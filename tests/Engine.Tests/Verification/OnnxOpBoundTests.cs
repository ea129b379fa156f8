using Engine.Bounds;
using Engine.Graph;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Verification;

/// <summary>Bound rules of the ONNX-only ops Transpose and Concat (soundness by sampling, exactness on affine graphs).</summary>
[TestFixture]
public class OnnxOpBoundTests
{
    // x [B, 2, 3] -> Transpose(0, 2, 1) -> Flatten -> Linear(6 -> 4) [-> Relu -> Linear(4 -> 3)].
    private static ComputeGraph TransposeNet(bool relu)
    {
        var g = new Generator(11);
        var b = new GraphBuilder();
        var x = b.Input();
        var t = b.Apply(new FlattenOp(), b.Apply(new TransposeOp(0, 2, 1), x));
        var h = b.Apply(new LinearOp(), t, b.Parameter("w1", Tensor.Uniform([4, 6], -1, 1, g)), b.Parameter("b1", Tensor.Uniform([4], -0.5f, 0.5f, g)));
        if (relu) h = b.Apply(new LinearOp(), b.Apply(new ReluOp(), h), b.Parameter("w2", Tensor.Uniform([3, 4], -1, 1, g)));
        b.Output(h);
        return b.Build();
    }

    // x [B, 3] -> Concat(x, relu(W x)) on axis 1 -> Linear(6 -> 2).
    private static ComputeGraph ConcatNet()
    {
        var g = new Generator(12);
        var b = new GraphBuilder();
        var x = b.Input();
        var r = b.Apply(new ReluOp(), b.Apply(new LinearOp(), x, b.Parameter("w0", Tensor.Uniform([3, 3], -1, 1, g))));
        var c = b.Apply(new ConcatOp(1), x, r);
        b.Output(b.Apply(new LinearOp(), c, b.Parameter("w1", Tensor.Uniform([2, 6], -1, 1, g))));
        return b.Build();
    }

    private static void AssertSound(ComputeGraph graph, int[] shape, float eps, BoundMethod method)
    {
        var g = new Generator(5);
        var x = Tensor.Uniform([2, .. shape], -1, 1, g);
        var r = Engine.Bounds.Bounds.Compute(graph, x, Perturbation.LInf(eps), method);
        var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
        int n = ShapeUtil.Numel(shape), k = lo.Length / 2;
        var xs = x.ToArray();
        for (int s = 0; s < 200; s++)
        {
            var noise = Tensor.Uniform([2, .. shape], -eps, eps, g).ToArray();
            var p = xs.Zip(noise, (a, e) => a + e).ToArray();
            float[] y;
            using (new Engine.Autograd.NoGrad()) y = Executor.Forward(graph, Tensor.FromArray(p, [2, .. shape])).ToArray();
            for (int j = 0; j < y.Length; j++) Assert.That(y[j], Is.InRange(lo[j], hi[j]), $"{method} output {j} sample {s}");
        }
        Assert.That(n * k, Is.GreaterThan(0));
    }

    [TestCase(BoundMethod.Ibp)]
    [TestCase(BoundMethod.Crown)]
    [TestCase(BoundMethod.AlphaCrown)]
    public void TransposeIsSound(BoundMethod m) => AssertSound(TransposeNet(relu: true), [2, 3], 0.2f, m);

    [TestCase(BoundMethod.Ibp)]
    [TestCase(BoundMethod.Crown)]
    [TestCase(BoundMethod.CrownIbp)]
    public void ConcatIsSound(BoundMethod m) => AssertSound(ConcatNet(), [3], 0.3f, m);

    [Test]
    public void TransposeOfAnAffineNetIsExactUnderCrown()
    {
        // Affine in x: CROWN's bound is the exact minimum w·x0 − eps·|w|₁, the same as the equivalent
        // network with the transposition folded into the weight.
        var graph = TransposeNet(relu: false);
        var x = Tensor.Uniform([1, 2, 3], -1, 1, new Generator(3));
        var crown = Engine.Bounds.Bounds.Compute(graph, x, Perturbation.LInf(0.1f), BoundMethod.Crown).Lower.ToArray();
        var w = graph.Parameters.First(v => v.Name == "w1").Data!.ToArray();
        var bias = graph.Parameters.First(v => v.Name == "b1").Data!.ToArray();
        var xv = x.ToArray();
        for (int o = 0; o < 4; o++)
        {
            double s = bias[o], l1 = 0;
            // Transposed flat index t = j*2 + i reads x[i, j] = xv[i*3 + j].
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++) { double wt = w[o * 6 + j * 2 + i]; s += wt * xv[i * 3 + j]; l1 += Math.Abs(wt); }
            Assert.That(crown[o], Is.EqualTo(s - 0.1 * l1).Within(1e-4), $"output {o}");
        }
    }

    [Test]
    public void TransposeMovingTheBatchIsRefused()
    {
        var b = new GraphBuilder();
        var x = b.Input();
        b.Output(b.Apply(new TransposeOp(1, 0), x));
        var ex = Assert.Throws<NotSupportedException>(() => Engine.Bounds.Bounds.Compute(b.Build(), Tensor.Zeros(2, 3), Perturbation.LInf(0.1f), BoundMethod.Ibp));
        Assert.That(ex!.Message, Does.Contain("Transpose"));
    }
}
