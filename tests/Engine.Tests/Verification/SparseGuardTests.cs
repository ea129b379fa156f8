using Engine.Tests.Certify;
using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Verification;

/// <summary>
/// The float64 guard's sparse rows (a convolution read as a matrix, stored as runs of nonzero columns), its reuse of
/// the enclosing domain's bounds under a ReLU split, and its folded interval bound of an output spec: the same
/// bounds as the dense and recomputed paths, and every sampled value inside them.
/// </summary>
[TestFixture]
public class SparseGuardTests
{
    [Test]
    public void RunsHoldExactlyTheNonzerosOfTheMatrix()
    {
        var rnd = new Random(5);
        int rows = 9, cols = 23;
        var w = new double[rows * cols];
        for (int o = 0; o < rows; o++)
        {
            if (o == 3) continue; // an empty row
            for (int i = 0; i < cols; i++) if (rnd.Next(6) == 0 || o == 5 && i >= cols - 3) w[o * cols + i] = rnd.NextDouble() - 0.5;
        }
        var s = SparseRuns.TryCreate(w, rows, cols) ?? throw new AssertionException("a sixth of the entries are nonzero");
        var back = new double[rows * cols];
        for (int o = 0; o < rows; o++)
            for (int r = s.RunStart[o]; r < s.RunStart[o + 1]; r++)
            {
                Assert.That(s.RunLen[r], Is.GreaterThan(0));
                for (int k = 0; k < s.RunLen[r]; k++)
                {
                    int i = s.RunCol[r] + k;
                    Assert.That(back[o * cols + i], Is.Zero, "each entry in one run only");
                    back[o * cols + i] = s.Val[s.RunVal[r] + k];
                    Assert.That(s.AbsVal[s.RunVal[r] + k], Is.EqualTo(Math.Abs(back[o * cols + i])));
                }
            }
        Assert.That(back, Is.EqualTo(w));
        Assert.That(SparseRuns.TryCreate(Enumerable.Repeat(1.0, 40).ToArray(), 4, 10), Is.Null, "a dense matrix keeps the dense loops");
    }

    /// <summary>The guard of the small CNN of issue 5, and a copy whose dense nodes have no runs (the plain loops).</summary>
    private static (RigorousNetwork Sparse, RigorousNetwork Dense) Guards(ulong seed)
    {
        var g = CertificationTestNets.RandomCnn(seed).Graph;
        var sparse = GuardSoundnessTests.Guard(g, [1, 28, 28]);
        var dense = GuardSoundnessTests.Guard(g, [1, 28, 28]);
        for (int v = 0; v < dense.Nodes.Length; v++)
            if (dense.Nodes[v] is DenseNode d)
                dense.Nodes[v] = new DenseNode { Size = d.Size, In = d.In, W = d.W, B = d.B, AbsW = d.AbsW, ColAbs = d.ColAbs, Inputs = d.Inputs };
        return (sparse, dense);
    }

    private static (double[] Lo, double[] Hi, double[] X) Box(Random rnd, double eps)
    {
        var x = Enumerable.Range(0, 784).Select(_ => rnd.NextDouble()).ToArray();
        return (x.Select(v => Math.Max(0, v - eps)).ToArray(), x.Select(v => Math.Min(1, v + eps)).ToArray(), x);
    }

    [Test]
    public void SparseConvolutionRowsGiveTheDenseBoundsAndContainSamples()
    {
        var (sparse, dense) = Guards(7);
        Assert.That(sparse.Nodes.OfType<DenseNode>().Count(d => d.Runs != null), Is.EqualTo(2), "both convolutions are stored as runs");
        Assert.That(sparse.Nodes.OfType<DenseNode>().Count(d => d.Runs == null), Is.EqualTo(2), "the two dense layers are not");
        var rnd = new Random(7);
        var (lo, hi, x) = Box(rnd, 0.02);
        var a = sparse.Analyze(lo, hi);
        var b = dense.Analyze(lo, hi);
        Assert.That(a.UnstableCount, Is.GreaterThan(10), "the box leaves ReLUs unstable, so the CROWN refinement runs");
        for (int v = 0; v < sparse.Nodes.Length; v++)
            for (int i = 0; i < a.Lo[v].Length; i++)
            {
                // Only the summation order differs.
                Assert.That(a.Lo[v][i], Is.EqualTo(b.Lo[v][i]).Within(1e-9 * (1 + Math.Abs(b.Lo[v][i]))), $"node {v} neuron {i}");
                Assert.That(a.Hi[v][i], Is.EqualTo(b.Hi[v][i]).Within(1e-9 * (1 + Math.Abs(b.Hi[v][i]))), $"node {v} neuron {i}");
            }
        var c = new double[10];
        c[3] = 1; c[7] = -1;
        double la = a.LowerBound(c, out _), lb = b.LowerBound(c, out _);
        Assert.That(la, Is.EqualTo(lb).Within(1e-9 * (1 + Math.Abs(lb))));
        Assert.That(sparse.Evaluate(x), Is.EqualTo(dense.Evaluate(x)).Within(1e-9));
        for (int k = 0; k < 60; k++)
        {
            var p = lo.Select((l, i) => rnd.Next(3) switch { 0 => l, 1 => hi[i], _ => l + (hi[i] - l) * rnd.NextDouble() }).ToArray();
            var z = sparse.EvaluateAll(p);
            for (int v = 0; v < z.Length; v++)
                for (int i = 0; i < z[v].Length; i++)
                    Assert.That(z[v][i], Is.InRange(a.Lo[v][i] - 1e-9, a.Hi[v][i] + 1e-9), $"node {v} neuron {i}");
            Assert.That(z[^1][3] - z[^1][7], Is.GreaterThanOrEqualTo(la - 1e-9));
        }
    }

    [Test]
    public void AReluSplitReusesTheNodesBeforeItAndStaysSound()
    {
        var (net, _) = Guards(8);
        var rnd = new Random(8);
        var (lo, hi, _) = Box(rnd, 0.02);
        var rb = net.Analyze(lo, hi);
        int checkedCuts = 0;
        for (int v = 0; v < net.Nodes.Length && checkedCuts < 6; v++)
        {
            if (net.Nodes[v] is not ReluNode) continue;
            int u = net.Nodes[v].Inputs[0];
            var unstable = Enumerable.Range(0, net.Nodes[u].Size).Where(i => rb.Lo[u][i] < 0 && rb.Hi[u][i] > 0).Take(2).ToArray();
            foreach (int i in unstable)
                foreach (bool nonNeg in new[] { true, false })
                {
                    var part = net.Analyze(lo, hi, rb.WithSign(u, i, nonNeg));
                    if (part.Infeasible) continue;
                    checkedCuts++;
                    for (int w = 1; w < u; w++) Assert.That(part.Lo[w], Is.SameAs(rb.Lo[w]), "nodes before the cut are taken over");
                    Assert.That(nonNeg ? part.Lo[u][i] : part.Hi[u][i], Is.Zero, "the cut node takes the cut bounds");
                    // Every node's bounds are within the parent's (the part is inside it), and sampled points of the
                    // part lie inside them.
                    for (int w = u; w < net.Nodes.Length; w++)
                        for (int k = 0; k < part.Lo[w].Length; k++)
                            Assert.That(part.Lo[w][k] >= rb.Lo[w][k] - 1e-9 && part.Hi[w][k] <= rb.Hi[w][k] + 1e-9, $"node {w} neuron {k}");
                    int inside = 0;
                    for (int s = 0; s < 400 && inside < 30; s++)
                    {
                        var p = lo.Select((l, q) => l + (hi[q] - l) * rnd.NextDouble()).ToArray();
                        var z = net.EvaluateAll(p);
                        if (nonNeg ? z[u][i] < 0 : z[u][i] > 0) continue;
                        inside++;
                        for (int w = 0; w < z.Length; w++)
                            for (int k = 0; k < z[w].Length; k++)
                                Assert.That(z[w][k], Is.InRange(part.Lo[w][k] - 1e-9, part.Hi[w][k] + 1e-9), $"node {w} neuron {k}");
                    }
                }
        }
        Assert.That(checkedCuts, Is.GreaterThanOrEqualTo(4));
    }

    [Test]
    public void FoldedIntervalBoundIsSoundAndTighterThanTheOutputIntervals()
    {
        var (net, _) = Guards(9);
        var rnd = new Random(9);
        var (lo, hi, _) = Box(rnd, 0.03);
        var rb = net.Analyze(lo, hi);
        var samples = Enumerable.Range(0, 200).Select(_ => net.Evaluate(lo.Select((l, q) => rnd.Next(2) == 0 ? l : hi[q]).ToArray())).ToArray();
        for (int j = 1; j < 10; j++)
        {
            var c = new double[10];
            c[0] = 1; c[j] = -1;
            double folded = rb.FoldedIntervalDot(c), plain = RigorousBox.IntervalDot(c, rb.Lo[^1], rb.Hi[^1]);
            Assert.That(folded, Is.GreaterThanOrEqualTo(plain - 1e-9), "folding the margin into the last layer never loosens it");
            Assert.That(samples.Min(y => y[0] - y[j]), Is.GreaterThanOrEqualTo(folded), $"margin 0 - {j}");
        }
    }
}
