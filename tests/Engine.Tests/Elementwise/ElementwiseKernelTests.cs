using Engine.Cpu.Reference;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Elementwise;

/// <summary>The elementwise kernels against the scalar reference: every op, odd lengths and tails, every vector width.</summary>
public class ElementwiseKernelTests
{
    private static readonly int[] Lengths = [1, 7, 15, 16, 17, 33, 1000, 4099];
    private static IKernels K => Device.Cpu.Kernels;

    // (op, alpha, beta, input range): ranges keep Log / Sqrt / non-integer Pow on their domain where the reference
    // is defined, and push Exp / Sigmoid / Softplus / Tanh far enough to reach overflow, underflow and saturation.
    private static readonly (UnaryOp op, float alpha, float beta, float lo, float hi)[] UnaryCases =
    [
        (UnaryOp.Neg, 0, 0, -5, 5), (UnaryOp.Abs, 0, 0, -5, 5), (UnaryOp.Sign, 0, 0, -2, 2),
        (UnaryOp.Exp, 0, 0, -120, 95), (UnaryOp.Exp, 0, 0, -2, 2), (UnaryOp.Log, 0, 0, 1e-3f, 50), (UnaryOp.Sqrt, 0, 0, 0, 50),
        (UnaryOp.Square, 0, 0, -5, 5), (UnaryOp.Pow, 3, 0, -4, 4), (UnaryOp.Pow, -2, 0, -4, 4), (UnaryOp.Pow, 2.5f, 0, -4, 4),
        (UnaryOp.Pow, -0.5f, 0, 0.01f, 9), (UnaryOp.Pow, 0.5f, 0, 0, 9), (UnaryOp.Pow, 2, 0, -3, 3), (UnaryOp.Pow, 1, 0, -3, 3),
        (UnaryOp.Pow, 0, 0, -3, 3), (UnaryOp.Pow, -1, 0, -3, 3), (UnaryOp.Clamp, -0.5f, 1.5f, -3, 3),
        (UnaryOp.Clamp, float.NegativeInfinity, 0.25f, -3, 3), (UnaryOp.Relu, 0, 0, -3, 3), (UnaryOp.LeakyRelu, 0.1f, 0, -3, 3),
        (UnaryOp.Sigmoid, 0, 0, -100, 100), (UnaryOp.Sigmoid, 0, 0, -3, 3), (UnaryOp.Tanh, 0, 0, -12, 12), (UnaryOp.Tanh, 0, 0, -0.2f, 0.2f),
        (UnaryOp.Softplus, 1, 20, -120, 40), (UnaryOp.Softplus, 2, 5, -4, 4), (UnaryOp.Affine, 2.5f, -1.25f, -4, 4),
        (UnaryOp.Reciprocal, 3, 0, -4, 4),
    ];

    [Test]
    public void UnaryMatchesReference([Values(512, 256, 0)] int bits)
    {
        Approx.WithSimd(bits, () =>
        {
            ulong seed = 1;
            foreach (var (op, alpha, beta, lo, hi) in UnaryCases)
                foreach (int n in Lengths)
                {
                    var x = Approx.Uniform(n, lo, hi, seed++);
                    var xt = Tensor.FromArray(x, n);
                    var y = Tensor.Empty([n]);
                    K.Unary(op, xt.Buf, y.Buf, n, alpha, beta);
                    var expect = x.Select(v => (float)ElementwiseReference.Unary(op, v, alpha, beta)).ToArray();
                    Approx.AreClose(y.ToArray(), expect, 4e-6, 1e-6, $"{op}({alpha}, {beta}) n={n} bits={bits}");
                }
        });
    }

    [Test]
    public void UnaryBackwardMatchesReference([Values(512, 256, 0)] int bits)
    {
        Approx.WithSimd(bits, () =>
        {
            ulong seed = 100;
            foreach (var (op, alpha, beta, lo, hi0) in UnaryCases)
                foreach (int n in Lengths)
                {
                    // exp(x)·dy is representable past x = 88.7 but the saved float output is not.
                    float hi = op == UnaryOp.Exp ? Math.Min(hi0, 80f) : hi0;
                    var x = Approx.Uniform(n, lo, hi, seed++);
                    var dy = Approx.Uniform(n, -2, 2, seed++);
                    var xt = Tensor.FromArray(x, n);
                    var y = Tensor.Empty([n]);
                    var dx = Tensor.Empty([n]);
                    K.Unary(op, xt.Buf, y.Buf, n, alpha, beta);
                    K.UnaryBackward(op, xt.Buf, y.Buf, Tensor.FromArray(dy, n).Buf, dx.Buf, n, alpha, beta);
                    var expect = x.Select((v, i) => (float)ElementwiseReference.UnaryGrad(op, v, dy[i], alpha, beta)).ToArray();
                    // Gradients that read the float output y (sigmoid, tanh) inherit its rounding: looser atol.
                    Approx.AreClose(dx.ToArray(), expect, 2e-5, 2e-6, $"d{op}({alpha}, {beta}) n={n} bits={bits}");
                }
        });
    }

    [Test]
    public void NaNInputsGiveNaNForEveryUnaryOp([Values(512, 256, 0)] int bits)
    {
        // 37 elements: NaNs in the Vector512 body (3, 20) and in the scalar tail (35).
        var x = Approx.Uniform(37, -2, 2, 77);
        x[3] = x[20] = x[35] = float.NaN;
        var xt = Tensor.FromArray(x, 37);
        Approx.WithSimd(bits, () =>
        {
            foreach (var (op, alpha, beta, _, _) in UnaryCases)
            {
                if (op == UnaryOp.Pow && alpha == 0) continue;   // pow(NaN, 0) == 1 by IEEE
                var y = Tensor.Empty([37]);
                K.Unary(op, xt.Buf, y.Buf, 37, alpha, beta);
                var v = y.ToArray();
                Assert.That(new[] { v[3], v[20], v[35] }, Is.All.NaN, $"{op}({alpha}, {beta}) bits={bits}");
            }
        });
    }

    [Test]
    public void UnaryMayRunInPlace()
    {
        var x = Approx.Uniform(1000, -3, 3, 9);
        var t = Tensor.FromArray(x, 1000);
        K.Unary(UnaryOp.Tanh, t.Buf, t.Buf, 1000, 0, 0);
        Approx.AreClose(t.ToArray(), x.Select(v => (float)Math.Tanh(v)).ToArray(), 4e-6, 1e-6, "in-place tanh");
    }

    internal static readonly (int[] a, int[] b)[] BroadcastPatterns =
    [
        ([7], [7]), ([4099], [4099]), ([3, 5], [5]), ([5], [3, 5]), ([3, 1], [1, 5]), ([2, 3, 4], [3, 1]),
        ([2, 1, 4], [1, 3, 1]), ([2, 3, 4, 5], [3, 1, 1]), ([1], [17]), ([], [33]), ([33], []), ([], []),
        ([2, 3, 16, 17], [1, 3, 1, 1]), ([4, 1, 33], [4, 7, 1]), ([1, 1, 1], [2, 1, 3]), ([2, 0, 3], [3]),
        ([6, 1, 5, 1], [1, 4, 1, 3]), ([32, 2], [32, 1]), ([9, 40], [40]), ([3, 300], [3, 1]), ([1, 17, 1], [17, 1]),
        ([2, 3, 1, 1], [2, 3, 5, 7]), ([5, 1, 1, 19], [1, 3, 2, 1]),
    ];

    /// <summary>Values on a 0.5 grid so that comparisons see ties, plus exact zeros for Div.</summary>
    private static float[] Grid(int n, ulong seed) => Approx.Uniform(n, -3, 3, seed).Select(v => MathF.Round(v * 2) / 2).ToArray();

    [Test]
    public void BinaryMatchesReferenceForBroadcastPatterns([Values(512, 256, 0)] int bits)
    {
        Approx.WithSimd(bits, () =>
        {
            ulong seed = 200;
            foreach (var (aShape, bShape) in BroadcastPatterns)
            {
                var a = Grid(ShapeUtil.Numel(aShape), seed++);
                var b = Grid(ShapeUtil.Numel(bShape), seed++);
                var at = Tensor.FromSpan(a, aShape, null);
                var bt = Tensor.FromSpan(b, bShape, null);
                foreach (BinaryOp op in Enum.GetValues<BinaryOp>())
                {
                    var (expect, shape) = ElementwiseReference.Binary(op, a, aShape, b, bShape);
                    var y = Tensor.Empty(shape);
                    K.Binary(op, at.Buf, ShapeUtil.BroadcastStrides(aShape, shape), bt.Buf, ShapeUtil.BroadcastStrides(bShape, shape), y.Buf, shape);
                    Approx.AreClose(y.ToArray(), expect, 1e-6, 0, $"{op} {ShapeUtil.Format(aShape)} vs {ShapeUtil.Format(bShape)} bits={bits}");
                }
            }
        });
    }

    [Test]
    public void BinaryHandlesGeneralStrides()
    {
        // a is a transposed [5, 7] view of a [7, 5] array: inner stride 5, outer stride 1.
        var raw = Approx.Uniform(35, -2, 2, 300);
        var b = Approx.Uniform(35, -2, 2, 301);
        var at = Tensor.FromArray(raw, 7, 5);
        var y = Tensor.Empty([5, 7]);
        K.Binary(BinaryOp.Sub, at.Buf, [1, 5], Tensor.FromArray(b, 5, 7).Buf, [7, 1], y.Buf, [5, 7]);
        var expect = new float[35];
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 7; j++) expect[i * 7 + j] = raw[j * 5 + i] - b[i * 7 + j];
        Approx.AreClose(y.ToArray(), expect, 0, 0, "strided Sub");
    }

    [Test]
    public void WhereMatchesReference([Values(512, 0)] int bits)
    {
        (int[] c, int[] a, int[] b)[] patterns =
        [
            ([17], [17], [17]), ([4099], [4099], []), ([3, 1], [1, 33], [33]), ([2, 3, 4], [4], [3, 1]), ([], [5, 5], [5, 1]),
            ([2, 1, 40], [2, 3, 40], [1]), ([1, 6], [5, 1], [5, 6]),
        ];
        Approx.WithSimd(bits, () =>
        {
            ulong seed = 400;
            foreach (var (cs, as_, bs) in patterns)
            {
                var c = Approx.Uniform(ShapeUtil.Numel(cs), 0, 1, seed++).Select(v => v < 0.4f ? 0f : v < 0.9f ? 1f : float.NaN).ToArray();
                var a = Approx.Uniform(ShapeUtil.Numel(as_), -1, 1, seed++);
                var b = Approx.Uniform(ShapeUtil.Numel(bs), 5, 6, seed++);
                var (expect, shape) = ElementwiseReference.Where(c, cs, a, as_, b, bs);
                var y = Tensor.Where(Tensor.FromSpan(c, cs, null), Tensor.FromSpan(a, as_, null), Tensor.FromSpan(b, bs, null));
                Assert.That(y.Shape, Is.EqualTo(shape));
                Approx.AreClose(y.ToArray(), expect, 0, 0, $"Where {ShapeUtil.Format(cs)} {ShapeUtil.Format(as_)} {ShapeUtil.Format(bs)}");
            }
        });
    }

    [Test]
    public void ExpandMatchesReference()
    {
        (int[] from, int[] to)[] cases = [([3, 1], [3, 17]), ([17], [4, 17]), ([], [2, 3]), ([2, 1, 3], [5, 2, 4, 3]), ([1, 1], [1, 1]), ([4099], [4099])];
        ulong seed = 500;
        foreach (var (from, to) in cases)
        {
            var x = Approx.Uniform(ShapeUtil.Numel(from), -1, 1, seed++);
            var y = Tensor.FromSpan(x, from, null).Expand(to);
            Assert.That(y.Shape, Is.EqualTo(to));
            Approx.AreClose(y.ToArray(), ElementwiseReference.Expand(x, from, to), 0, 0, $"Expand {ShapeUtil.Format(from)} -> {ShapeUtil.Format(to)}");
        }
        Assert.That(Tensor.FromArray([1f, 2f], 2, 1).Expand(-1, 3).ToArray(), Is.EqualTo(new[] { 1f, 1f, 1f, 2f, 2f, 2f }));
    }

    [Test]
    public void OneHotEncodesAndRejectsBadLabels()
    {
        var y = Tensor.OneHot(Tensor.FromArray([2f, 0f, 1f, 2f], 2, 2), 3);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 2, 3 }));
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 0f, 0f, 1f, 1f, 0f, 0f, 0f, 1f, 0f, 0f, 0f, 1f }));
        foreach (float bad in new[] { 3f, -1f, 0.5f, float.NaN })
        {
            var ex = Assert.Throws<ArgumentException>(() => Tensor.OneHot(Tensor.FromArray([0f, bad], 2), 3));
            Assert.That(ex!.Message, Does.Contain("OneHot").And.Contain("index 1"));
        }
    }

    [Test]
    public void LargeInputsTakeTheThreadedPathAndMatch()
    {
        Approx.WithThreads(4, () =>
        {
            int n = 1 << 20;
            var x = Approx.Uniform(n, -4, 4, 600);
            var xt = Tensor.FromArray(x, n);
            Approx.AreClose(xt.Exp().ToArray(), x.Select(v => (float)Math.Exp(v)).ToArray(), 4e-6, 0, "threaded Exp");

            var dy = Approx.Uniform(n, -1, 1, 601);
            var dx = Tensor.Empty([n]);
            var y = xt.Sigmoid();
            K.UnaryBackward(UnaryOp.Sigmoid, xt.Buf, y.Buf, Tensor.FromArray(dy, n).Buf, dx.Buf, n, 0, 0);
            Approx.AreClose(dx.ToArray(), x.Select((v, i) => (float)ElementwiseReference.UnaryGrad(UnaryOp.Sigmoid, v, dy[i], 0, 0)).ToArray(), 2e-5, 2e-6, "threaded dSigmoid");

            var b = Approx.Uniform(1024, -1, 1, 602);
            var (expect, _) = ElementwiseReference.Binary(BinaryOp.Mul, x, [1024, 1024], b, [1024]);
            Approx.AreClose((xt.Reshape(1024, 1024) * Tensor.FromArray(b, 1024)).ToArray(), expect, 0, 0, "threaded row broadcast");
            var (expect2, _) = ElementwiseReference.Binary(BinaryOp.Add, x, [n], x, [n]);
            Approx.AreClose((xt + xt).ToArray(), expect2, 0, 0, "threaded contiguous");
            var col = Approx.Uniform(1024, -1, 1, 603);
            var (expect3, _) = ElementwiseReference.Binary(BinaryOp.Sub, x, [1024, 1024], col, [1024, 1]);
            Approx.AreClose((xt.Reshape(1024, 1024) - Tensor.FromArray(col, 1024, 1)).ToArray(), expect3, 0, 0, "threaded column broadcast");
        });
    }
}
