using Engine.Cpu.Reference;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Elementwise;

/// <summary>Reductions, arg max / min and softmax against the scalar references, kernel-level and through the Tensor API.</summary>
public class ReduceKernelTests
{
    private static IKernels K => Device.Cpu.Kernels;

    // (outer, size, inner): rows (inner 1), column blocks with tails (inner 7, 257, 300, 513), size 1, empty
    // outer, and the segmented path (outer 1 or 2 with size·inner ≥ 128K).
    private static readonly (int outer, int size, int inner)[] Triples =
    [
        (1, 1, 1), (3, 7, 1), (2, 33, 1), (5, 4099, 1), (1, 17, 7), (4, 15, 16), (3, 5, 257), (2, 9, 300), (1, 3, 513),
        (7, 1, 33), (0, 5, 3), (1, 70000, 2), (2, 140000, 1), (1, 600, 300),
    ];

    /// <summary>Tolerance for a sum-like result: relative to the sum of magnitudes that fed it.</summary>
    private static void CheckReduce(float[] actual, float[] expect, ReduceOp op, float[] x, int outer, int size, int inner, string what)
    {
        var mag = ReduceReference.Reduce(ReduceOp.Sum, x.Select(MathF.Abs).ToArray(), outer, size, inner);
        for (int i = 0; i < expect.Length; i++)
        {
            double scale = op switch { ReduceOp.Sum => mag[i], ReduceOp.Mean => mag[i] / size, _ => Math.Abs(expect[i]) };
            double tol = 1e-6 + 2e-6 * scale;
            bool ok = float.IsNaN(expect[i]) ? float.IsNaN(actual[i]) : float.IsInfinity(expect[i]) ? actual[i] == expect[i] : Math.Abs(actual[i] - expect[i]) <= tol;
            if (!ok) Assert.Fail($"{what}: output {i} is {actual[i]:R}, expected {expect[i]:R}");
        }
    }

    [Test]
    public void ReduceMatchesReference([Values(512, 256, 0)] int bits)
    {
        Approx.WithSimd(bits, () =>
        {
            ulong seed = 1000;
            foreach (var (outer, size, inner) in Triples)
            {
                var x = Approx.Uniform(outer * size * inner, -3, 3, seed++);
                var xt = Tensor.FromArray(x, x.Length);
                foreach (ReduceOp op in Enum.GetValues<ReduceOp>())
                {
                    var y = Tensor.Empty([outer * inner]);
                    K.Reduce(op, xt.Buf, y.Buf, outer, size, inner);
                    CheckReduce(y.ToArray(), ReduceReference.Reduce(op, x, outer, size, inner), op, x, outer, size, inner, $"{op} ({outer}, {size}, {inner}) bits={bits}");
                }
            }
        });
    }

    [Test]
    public void ReduceOverAnEmptyAxisGivesTheIdentity()
    {
        var x = Tensor.Empty([0]);
        var y = Tensor.Empty([6]);
        float[] expect = [0f, float.NaN, float.NegativeInfinity, float.PositiveInfinity, float.NegativeInfinity];
        foreach (ReduceOp op in Enum.GetValues<ReduceOp>())
        {
            K.Reduce(op, x.Buf, y.Buf, 2, 0, 3);
            Assert.That(y.ToArray(), Is.All.EqualTo(expect[(int)op]), op.ToString());
        }
        Assert.That(Tensor.Zeros(2, 0).Sum(1).ToArray(), Is.EqualTo(new[] { 0f, 0f }));
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(2, 0).Max(1));
    }

    [Test]
    public void ReduceIsTheSameForEveryThreadCount()
    {
        var x = Tensor.FromArray(Approx.Uniform(1 << 20, -1, 1, 1100), 1 << 20);
        float[] one = [], four = [];
        Approx.WithThreads(1, () => one = [x.Sum().Item(), .. x.Reshape(1 << 18, 4).Sum(0).ToArray(), .. x.Reshape(512, 2048).Mean(1).ToArray()]);
        Approx.WithThreads(4, () => four = [x.Sum().Item(), .. x.Reshape(1 << 18, 4).Sum(0).ToArray(), .. x.Reshape(512, 2048).Mean(1).ToArray()]);
        Assert.That(four, Is.EqualTo(one));
    }

    [Test]
    public void ArgMaxAndArgMinMatchReference([Values(512, 0)] int bits)
    {
        Approx.WithSimd(bits, () =>
        {
            ulong seed = 1200;
            foreach (var (outer, size, inner) in Triples)
            {
                if (size * inner > 20000) continue;
                // A coarse grid makes ties common, so "first index wins" is exercised.
                var x = Approx.Uniform(outer * size * inner, -3, 3, seed++).Select(v => MathF.Round(v)).ToArray();
                if (x.Length > 3) x[x.Length / 3] = float.NaN;
                var xt = Tensor.FromArray(x, x.Length);
                foreach (bool max in new[] { true, false })
                {
                    var y = Tensor.Empty([outer * inner]);
                    if (max) K.ArgMax(xt.Buf, y.Buf, outer, size, inner);
                    else K.ArgMin(xt.Buf, y.Buf, outer, size, inner);
                    Assert.That(y.ToArray(), Is.EqualTo(ReduceReference.ArgBest(x, outer, size, inner, max)), $"{(max ? "ArgMax" : "ArgMin")} ({outer}, {size}, {inner})");
                }
            }
        });
    }

    [Test]
    public void SoftmaxForwardAndBackwardMatchReference([Values(512, 256, 0)] int bits)
    {
        Approx.WithSimd(bits, () =>
        {
            ulong seed = 1300;
            foreach (var (outer, size, inner) in Triples)
            {
                if (outer * size * inner > 200000) continue;
                int n = outer * size * inner;
                var x = Approx.Uniform(n, -8, 8, seed++);
                var dy = Approx.Uniform(n, -1, 1, seed++);
                foreach (bool log in new[] { false, true })
                {
                    var y = Tensor.Empty([n]);
                    var dx = Tensor.Empty([n]);
                    K.Softmax(Tensor.FromArray(x, n).Buf, y.Buf, outer, size, inner, log);
                    string what = $"{(log ? "LogSoftmax" : "Softmax")} ({outer}, {size}, {inner}) bits={bits}";
                    Approx.AreClose(y.ToArray(), ReduceReference.Softmax(x, outer, size, inner, log), 1e-5, 5e-7, what);   // atol: Σ e^(x-m) ≈ 1 carries float rounding
                    K.SoftmaxBackward(y.Buf, Tensor.FromArray(dy, n).Buf, dx.Buf, outer, size, inner, log);
                    Approx.AreClose(dx.ToArray(), ReduceReference.SoftmaxBackward(y.ToArray(), dy, outer, size, inner, log), 1e-4, 2e-6, what + " backward");
                }
            }
        });
    }

    [Test]
    public void EveryAxisSubsetOfRank3And4MatchesReference()
    {
        int[][] shapes = [[3, 5, 7], [2, 1, 17], [2, 3, 4, 5], [3, 1, 33, 2]];
        ulong seed = 1400;
        foreach (var shape in shapes)
        {
            int rank = shape.Length;
            var x = Approx.Uniform(ShapeUtil.Numel(shape), -2, 2, seed++);
            var xt = Tensor.FromSpan(x, shape, null);
            for (int mask = 0; mask < 1 << rank; mask++)
            {
                var axes = Enumerable.Range(0, rank).Where(d => (mask >> d & 1) != 0).ToArray();
                foreach (bool keep in new[] { false, true })
                    foreach (ReduceOp op in Enum.GetValues<ReduceOp>())
                    {
                        var (expect, eShape) = NaiveReduce(op, x, shape, axes, keep);
                        var y = op switch
                        {
                            ReduceOp.Sum => xt.Sum(axes, keep),
                            ReduceOp.Mean => xt.Mean(axes, keep),
                            ReduceOp.Max => xt.Max(axes, keep),
                            ReduceOp.Min => xt.Min(axes, keep),
                            _ => xt.LogSumExp(axes, keep),
                        };
                        string what = $"{op} of {ShapeUtil.Format(shape)} over [{string.Join(",", axes)}] keepDim={keep}";
                        Assert.That(y.Shape, Is.EqualTo(eShape), what);
                        Approx.AreClose(y.ToArray(), expect, 2e-6, 2e-5, what);
                    }
            }
            // null = every axis; negative axes count from the end.
            Assert.That(xt.Sum().Shape, Is.Empty);
            Approx.AreClose([xt.Sum().Item()], [(float)x.Sum(v => (double)v)], 1e-5, 1e-5, "Sum()");
            Assert.That(xt.Max(-1).ToArray(), Is.EqualTo(xt.Max(rank - 1).ToArray()));
        }
    }

    /// <summary>Multi-axis reduction by brute force over multi-indices (independent of the run-grouping logic).</summary>
    private static (float[] y, int[] shape) NaiveReduce(ReduceOp op, float[] x, int[] shape, int[] axes, bool keep)
    {
        int rank = shape.Length;
        var keepShape = shape.Select((d, i) => axes.Contains(i) ? 1 : d).ToArray();
        var outShape = keep ? keepShape : shape.Where((_, i) => !axes.Contains(i)).ToArray();
        var groups = new List<double>[ShapeUtil.Numel(keepShape)];
        for (int i = 0; i < groups.Length; i++) groups[i] = [];
        var idx = new int[rank];
        for (int i = 0; i < x.Length; i++)
        {
            ElementwiseReferenceUnravel(i, shape, idx);
            int o = 0;
            for (int d = 0; d < rank; d++) o = o * keepShape[d] + (axes.Contains(d) ? 0 : idx[d]);
            groups[o].Add(x[i]);
        }
        var y = groups.Select(g =>
        {
            double m = g.Max();
            return (float)(op switch
            {
                ReduceOp.Sum => g.Sum(),
                ReduceOp.Mean => g.Average(),
                ReduceOp.Max => m,
                ReduceOp.Min => g.Min(),
                _ => m + Math.Log(g.Sum(v => Math.Exp(v - m))),
            });
        }).ToArray();
        return (y, outShape);
    }

    private static void ElementwiseReferenceUnravel(int i, int[] shape, int[] idx)
    {
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = i % shape[d]; i /= shape[d]; }
    }

    [Test]
    public void LargeReductionsAndSoftmaxTakeTheThreadedPathAndMatch()
    {
        Approx.WithThreads(4, () =>
        {
            int n = 1 << 20;
            var x = Approx.Uniform(n, -1, 1, 1500);
            var xt = Tensor.FromArray(x, n);
            foreach (var (outer, size, inner) in new[] { (1, n, 1), (1024, 1024, 1), (1, 1024, 1024), (1, n / 2, 2), (64, 64, 256) })
                foreach (ReduceOp op in Enum.GetValues<ReduceOp>())
                {
                    var y = Tensor.Empty([outer * inner]);
                    K.Reduce(op, xt.Buf, y.Buf, outer, size, inner);
                    CheckReduce(y.ToArray(), ReduceReference.Reduce(op, x, outer, size, inner), op, x, outer, size, inner, $"threaded {op} ({outer}, {size}, {inner})");
                }
            var s = xt.Reshape(256, 4096).Softmax(1);
            Approx.AreClose(s.ToArray(), ReduceReference.Softmax(x, 256, 4096, 1, false), 1e-5, 1e-9, "threaded Softmax");
            var am = xt.Reshape(1024, 1024).ArgMax(0);
            Assert.That(am.ToArray(), Is.EqualTo(ReduceReference.ArgBest(x, 1, 1024, 1024, true)));
        });
    }
}
