using Engine.Autograd;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Shape;

public class MatmulTests
{
    /// <summary>torch.matmul written out: promote vectors, broadcast batches, multiply in double, squeeze.</summary>
    private static (float[] data, int[] shape) Reference(Tensor a, Tensor b)
    {
        var ad = a.Shape; var bd = b.Shape;
        var A = ad.Length == 1 ? new[] { 1, ad[0] } : ad;
        var B = bd.Length == 1 ? new[] { bd[0], 1 } : bd;
        int m = A[^2], k = A[^1], n = B[^1];
        var batch = ShapeUtil.Broadcast(A[..^2], B[..^2]);
        var sa = ShapeUtil.BroadcastStrides(A[..^2], batch);
        var sb = ShapeUtil.BroadcastStrides(B[..^2], batch);
        int nb = ShapeUtil.Numel(batch);
        var x = a.ToArray(); var y = b.ToArray();
        var c = new float[nb * m * n];
        for (int t = 0; t < nb; t++)
        {
            int rem = t, oa = 0, ob = 0;
            for (int d = batch.Length - 1; d >= 0; d--) { int i = rem % batch[d]; rem /= batch[d]; oa += i * sa[d]; ob += i * sb[d]; }
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++) s += (double)x[oa * m * k + i * k + p] * y[ob * k * n + p * n + j];
                    c[(t * m + i) * n + j] = (float)s;
                }
        }
        var shape = new List<int>(batch);
        if (ad.Length > 1) shape.Add(m);
        if (bd.Length > 1) shape.Add(n);
        return (c, [.. shape]);
    }

    private static readonly (int[] a, int[] b)[] Cases =
    [
        ([5], [5]), ([4], [4, 3]), ([3, 4], [4]), ([3, 4], [4, 5]), ([2, 3, 4], [4, 5]), ([3, 4], [2, 4, 5]),
        ([4], [2, 4, 3]), ([2, 3, 4], [4]), ([2, 3, 4], [2, 4, 5]), ([2, 1, 3, 4], [3, 4, 2]), ([3, 1, 2, 3], [1, 2, 3, 4]),
        ([1, 3, 4], [2, 4, 5]), ([2, 3, 2, 4], [4, 3]), ([2, 1, 3, 4], [1, 2, 4, 5]), ([0, 3], [3, 2]), ([2, 0], [0, 3]),
    ];

    [Test]
    public void ForwardMatchesReferenceForAllRankCombinations()
    {
        var rng = new Random(20);
        foreach (var (sa, sb) in Cases)
        {
            var a = TestData.Tensor(rng, sa); var b = TestData.Tensor(rng, sb);
            var c = Tensor.Matmul(a, b);
            var (expected, shape) = Reference(a, b);
            Assert.That(c.Shape, Is.EqualTo(shape), $"{ShapeUtil.Format(sa)} @ {ShapeUtil.Format(sb)}");
            TestData.Close(c.ToArray(), expected, 1e-5, 1e-5, $"{ShapeUtil.Format(sa)} @ {ShapeUtil.Format(sb)}");
        }
    }

    [Test]
    public void GradientsForAllRankCombinations()
    {
        var rng = new Random(21);
        foreach (var (sa, sb) in Cases)
        {
            if (ShapeUtil.Numel(sa) == 0 || ShapeUtil.Numel(sb) == 0) continue;
            GradCheck.Assert(x => Tensor.Matmul(x[0], x[1]), [TestData.Tensor(rng, sa), TestData.Tensor(rng, sb)], maxPerInput: 12);
        }
    }

    [Test]
    public void LinearMatchesMatmulPlusBiasAndHasGradients()
    {
        var rng = new Random(22);
        var x = TestData.Tensor(rng, 2, 3, 5); var w = TestData.Tensor(rng, 4, 5); var b = TestData.Tensor(rng, 4);
        var y = Tensor.Linear(x, w, b);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 3, 4 }));
        var (xw, _) = Reference(x, w.Transpose(0, 1));
        var bb = b.ToArray();
        TestData.Close(y.ToArray(), xw.Select((v, i) => v + bb[i % 4]).ToArray(), 1e-5, 1e-5, "Linear");
        GradCheck.Assert(t => Tensor.Linear(t[0], t[1], t[2]), [x, w, b], maxPerInput: 16);
        GradCheck.Assert(t => Tensor.Linear(t[0], t[1]), [TestData.Tensor(rng, 5), TestData.Tensor(rng, 3, 5)]);
        GradCheck.Assert(t => Tensor.Linear(t[0], t[1], t[2]), [TestData.Tensor(rng, 7, 3), TestData.Tensor(rng, 2, 3), TestData.Tensor(rng, 2)],
                         check: [false, true, true]);
    }

    [Test]
    public void ShapeErrorsNameBothShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => Tensor.Matmul(Tensor.Zeros(2, 3), Tensor.Zeros(4, 5)))!;
        Assert.That(ex.Message, Does.Contain("Matmul").And.Contain("[2, 3]").And.Contain("[4, 5]"));
        ex = Assert.Throws<ArgumentException>(() => Tensor.Matmul(Tensor.Zeros(2, 3, 4), Tensor.Zeros(3, 4, 5)))!;
        Assert.That(ex.Message, Does.Contain("broadcast").And.Contain("[2, 3, 4]").And.Contain("[3, 4, 5]"));
        Assert.Throws<ArgumentException>(() => Tensor.Matmul(Tensor.Scalar(1), Tensor.Zeros(3)));
        ex = Assert.Throws<ArgumentException>(() => Tensor.Linear(Tensor.Zeros(2, 3), Tensor.Zeros(4, 5)))!;
        Assert.That(ex.Message, Does.Contain("Linear").And.Contain("[2, 3]").And.Contain("[4, 5]"));
        ex = Assert.Throws<ArgumentException>(() => Tensor.Linear(Tensor.Zeros(2, 5), Tensor.Zeros(4, 5), Tensor.Zeros(3)))!;
        Assert.That(ex.Message, Does.Contain("bias").And.Contain("[3]"));
    }
}
