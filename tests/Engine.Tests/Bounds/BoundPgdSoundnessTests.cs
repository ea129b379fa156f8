using Engine.Attacks;
using Engine.Bounds;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.BoundProp.BoundTestNets;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

/// <summary>
/// Soundness against an adversary: PGD minimisers and maximisers of every spec row over the L∞ box (clipped to the
/// domain where the test has one) never leave any method's bounds, and PGD is at least as extreme as random sampling
/// on aggregate, so a bound that is too tight only at non-random points would be caught.
/// </summary>
public class BoundPgdSoundnessTests
{
    private static readonly BoundMethod[] Methods = [BoundMethod.Ibp, BoundMethod.Crown, BoundMethod.CrownIbp, BoundMethod.AlphaCrown];
    private static readonly BoundOptions Fast = new() { AlphaIterations = 5 };
    private static readonly BoxSearchOptions Search = new() { Steps = 30, Restarts = 5, RandomStart = false, Seed = 7 };

    /// <summary>Sum over rows of the distance of the extremum to the bound, for PGD and for random samples.</summary>
    private sealed class Gaps { public double Pgd, Random; public int Rows, PgdAtLeastAsExtreme; }

    private static void CheckPgd(Module net, int[] inShape, int batch, Perturbation p, int seed, bool margins, Gaps gaps, int samples = 40)
    {
        var rng = new Random(seed);
        int d = inShape.Aggregate(1, (a, v) => a * v);
        var xs = Enumerable.Range(0, batch * d).Select(_ => (float)rng.NextDouble()).ToArray();
        var x = Tensor.FromArray(xs, [batch, .. inShape]);
        int k;
        using (new Autograd.NoGrad()) k = Engine.Graph.Executor.Forward(net.Graph, x).Numel / batch;
        var labels = Enumerable.Range(0, batch).Select(i => i % k).ToArray();
        var spec = margins ? Spec.Margins(labels, k) : null;
        int rows = margins ? k - 1 : k;

        // Per example the spec matrix [rows, k] and the box (same float arithmetic as the sampling tests).
        var cs = new float[batch][,];
        var los = new float[batch][]; var his = new float[batch][];
        var specC = spec?.C.ToArray();
        for (int b = 0; b < batch; b++)
        {
            var c = new float[rows, k];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < k; j++)
                    c[i, j] = specC != null ? specC[(b * rows + i) * k + j] : (i == j ? 1f : 0f);
            cs[b] = c;
            var center = xs.AsSpan(b * d, d).ToArray();
            los[b] = center.Select(v => Math.Max(v - p.Eps, p.ClipLow ?? float.NegativeInfinity)).ToArray();
            his[b] = center.Select(v => Math.Min(v + p.Eps, p.ClipHigh ?? float.PositiveInfinity)).ToArray();
        }

        // One PGD batch: sample (b, i, s) minimises s·(C_b f)_i over example b's box; s = +1 probes the lower bound, −1 the upper.
        int n = batch * rows * 2;
        var w = new float[n * k];
        var lo = new float[n * d]; var hi = new float[n * d];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < rows; i++)
                for (int s = 0; s < 2; s++)
                {
                    int q = (b * rows + i) * 2 + s;
                    for (int j = 0; j < k; j++) w[q * k + j] = (s == 0 ? 1f : -1f) * cs[b][i, j];
                    los[b].CopyTo(lo, q * d); his[b].CopyTo(hi, q * d);
                }
        var wt = Tensor.FromArray(w, n, k);
        var found = Pgd.Minimize(net, Tensor.FromArray(lo, [n, .. inShape]), Tensor.FromArray(hi, [n, .. inShape]),
                                 output => (output.Reshape(n, -1) * wt).Sum(1), Search with { Seed = (ulong)seed });
        var points = found.Point.ToArray();
        for (int q = 0; q < n; q++)
            for (int j = 0; j < d; j++)
                Assert.That(points[q * d + j], Is.InRange(lo[q * d + j], hi[q * d + j]), "PGD left its box.");

        // Spec values at the PGD points (evaluated as the sampling tests do) and the random extremes per example.
        var pgdMin = new float[batch, rows]; var pgdMax = new float[batch, rows];
        var rndMin = new float[batch, rows]; var rndMax = new float[batch, rows];
        for (int b = 0; b < batch; b++)
        {
            var own = Enumerable.Range(0, rows * 2).Select(t => points.AsSpan(((b * rows) * 2 + t) * d, d).ToArray()).ToList();
            var vals = SpecValues(net, own, inShape, cs[b]);
            for (int i = 0; i < rows; i++) { pgdMin[b, i] = vals[i * 2][i]; pgdMax[b, i] = vals[i * 2 + 1][i]; }
            var rnd = SpecValues(net, BoxPoints(los[b], his[b], samples, rng), inShape, cs[b]);
            for (int i = 0; i < rows; i++) { rndMin[b, i] = rnd.Min(v => v[i]); rndMax[b, i] = rnd.Max(v => v[i]); }
        }

        foreach (var m in Methods)
        {
            var r = B.Compute(net, x, p, m, spec, Fast);
            Assert.That(r.Lower.Size(1), Is.EqualTo(rows));
            var lb = r.Lower.ToArray(); var ub = r.Upper.ToArray();
            for (int b = 0; b < batch; b++)
                for (int i = 0; i < rows; i++)
                {
                    float l = lb[b * rows + i], u = ub[b * rows + i];
                    if (!(pgdMin[b, i] >= l))
                        Assert.Fail($"{m}: row {i} of example {b}: PGD minimiser value {pgdMin[b, i]} below lower bound {l} (seed {seed}, {p}).");
                    if (!(pgdMax[b, i] <= u))
                        Assert.Fail($"{m}: row {i} of example {b}: PGD maximiser value {pgdMax[b, i]} above upper bound {u} (seed {seed}, {p}).");
                    gaps.Pgd += (pgdMin[b, i] - l) + (u - pgdMax[b, i]);
                    gaps.Random += (rndMin[b, i] - l) + (u - rndMax[b, i]);
                    gaps.Rows += 2;
                    if (pgdMin[b, i] <= rndMin[b, i] + 1e-5f) gaps.PgdAtLeastAsExtreme++;
                    if (pgdMax[b, i] >= rndMax[b, i] - 1e-5f) gaps.PgdAtLeastAsExtreme++;
                }
        }
    }

    /// <summary>PGD must be a meaningful adversary: on aggregate at least as close to the bounds as random sampling.</summary>
    private static void CheckStrength(Gaps g)
    {
        Assert.That(g.Rows, Is.GreaterThan(0));
        TestContext.Out.WriteLine($"gap pgd {g.Pgd:G6} random {g.Random:G6}; pgd at least as extreme on {g.PgdAtLeastAsExtreme}/{g.Rows}");
        Assert.That(g.Pgd, Is.LessThanOrEqualTo(g.Random), $"PGD total gap {g.Pgd} vs random {g.Random}.");
        Assert.That(g.PgdAtLeastAsExtreme, Is.GreaterThanOrEqualTo((int)(0.85 * g.Rows)),
                    $"PGD at least as extreme as random sampling on only {g.PgdAtLeastAsExtreme} of {g.Rows} row-directions.");
    }

    [Test]
    public void MlpBoundsContainPgdExtrema([Values(Act.Relu, Act.Tanh)] Act act)
    {
        var g = new Gaps();
        for (int seed = 0; seed < 8; seed++)
            CheckPgd(Mlp(seed, [4, 12, 10, 3], act), [4], 2, Perturbation.LInf(0.05f + 0.1f * (seed % 4)), seed, margins: seed % 2 == 0, g);
        CheckStrength(g);
    }

    [Test]
    public void CnnBoundsContainPgdExtrema()
    {
        var g = new Gaps();
        for (int seed = 0; seed < 4; seed++)
            CheckPgd(Cnn(seed, seed % 2 == 0 ? Act.Relu : Act.Tanh, seed == 1 ? "max" : seed == 2 ? "avg" : "", batchNorm: seed == 3),
                     [1, 6, 6], 2, Perturbation.LInf(0.02f + 0.04f * seed), seed, margins: true, g);
        CheckStrength(g);
    }

    [Test]
    public void ResidualBoundsContainPgdExtrema([Values(Act.Relu, Act.Tanh)] Act act)
    {
        var g = new Gaps();
        for (int seed = 0; seed < 6; seed++)
            CheckPgd(Residual(seed, 3, 8, 4, act), [3], 2, Perturbation.LInf(0.1f + 0.05f * seed), seed, margins: seed % 2 == 1, g);
        CheckStrength(g);
    }

    [Test]
    public void ClippedBoxBoundsContainPgdExtrema()
    {
        var g = new Gaps();
        for (int seed = 0; seed < 4; seed++)
            CheckPgd(Mlp(seed, [4, 10, 3]), [4], 2, Perturbation.LInf(0.4f, 0f, 1f), seed, margins: seed % 2 == 1, g);
        CheckStrength(g);
    }
}
