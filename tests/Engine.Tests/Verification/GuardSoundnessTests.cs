using Engine.Graph;
using Engine.Tests.BoundProp;
using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Verification;

/// <summary>
/// The float64 guard's bounds with arbitrary ReLU slopes, row weights and ReLU sign cuts never exceed the true
/// minimum (approximated from above by dense sampling, so a bound above a sample is a definite error).
/// </summary>
[TestFixture]
public class GuardSoundnessTests
{
    internal static RigorousNetwork Guard(ComputeGraph g, int[] shape) => RigorousNetwork.TryCreate(g, shape, out var why) ?? throw new AssertionException(why!);

    /// <summary>A grid over a 2-d box or random points (corners first) over a larger one.</summary>
    internal static List<double[]> Points(Random rnd, double[] lo, double[] hi, int count)
    {
        int d = lo.Length;
        var pts = new List<double[]>();
        if (d == 2)
        {
            int side = (int)Math.Sqrt(count);
            for (int a = 0; a < side; a++)
                for (int b = 0; b < side; b++)
                    pts.Add([lo[0] + (hi[0] - lo[0]) * a / (side - 1), lo[1] + (hi[1] - lo[1]) * b / (side - 1)]);
            return pts;
        }
        for (int m = 0; m < 1 << d && d <= 8; m++) pts.Add(Enumerable.Range(0, d).Select(j => (m >> j & 1) == 0 ? lo[j] : hi[j]).ToArray());
        while (pts.Count < count) pts.Add(Enumerable.Range(0, d).Select(j => lo[j] + (hi[j] - lo[j]) * rnd.NextDouble()).ToArray());
        return pts;
    }

    internal static (double[] Lo, double[] Hi) Box(Random rnd, int d, double width)
    {
        var lo = new double[d]; var hi = new double[d];
        for (int i = 0; i < d; i++) { double c = rnd.NextDouble() * 2 - 1, w = width * (0.3 + 0.7 * rnd.NextDouble()); lo[i] = c - w / 2; hi[i] = c + w / 2; }
        return (lo, hi);
    }

    private static SpecRows RandomSpec(Random rnd, int rows, int outputs, out double[,] c, out double[] d)
    {
        c = new double[rows, outputs];
        d = new double[rows];
        var flat = new double[rows * outputs];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < outputs; j++) flat[r * outputs + j] = c[r, j] = Math.Round(rnd.NextDouble() * 4 - 2);
            d[r] = rnd.NextDouble() - 0.5;
        }
        return new SpecRows(flat, rows, (double[])d.Clone(), new bool[rows]);
    }

    private static double[]?[] RandomSlopes(Random rnd, RigorousNetwork net)
    {
        var a = new double[]?[net.Nodes.Length];
        for (int v = 0; v < a.Length; v++)
            if (net.Nodes[v] is ReluNode)
                a[v] = Enumerable.Range(0, net.Nodes[v].Size).Select(_ => rnd.Next(4) switch { 0 => 0.0, 1 => 1.0, _ => rnd.NextDouble() }).ToArray();
        return a;
    }

    private static double Tol(double v) => 1e-9 * (1 + Math.Abs(v));

    [TestCase(1, 2)]
    [TestCase(2, 3)]
    [TestCase(3, 2)]
    [TestCase(4, 4)]
    public void ArbitrarySlopesAndRowWeightsNeverExceedTheSampledMinimum(int seed, int d)
    {
        var net = Guard(BoundTestNets.Mlp(seed, [d, 10, 10, 4]).Graph, [d]);
        var rnd = new Random(seed);
        int finite = 0;
        for (int trial = 0; trial < 6; trial++)
        {
            var (lo, hi) = Box(rnd, d, trial % 2 == 0 ? 1.0 : 0.3);
            var ys = Points(rnd, lo, hi, 2500).Select(x => net.Evaluate(x)).ToArray();
            var spec = RandomSpec(rnd, 3, 4, out var c, out var dd);
            var rb = net.Analyze(lo, hi);
            double Row(double[] y, int r) => Enumerable.Range(0, 4).Sum(j => c[r, j] * y[j]) - dd[r];
            for (int k = 0; k < 12; k++)
            {
                var lambda = Enumerable.Range(0, 3).Select(_ => rnd.Next(3) == 0 ? 0 : rnd.NextDouble() * (k % 3 == 0 ? 5 : 1)).ToArray();
                var slopes = k == 0 ? null : RandomSlopes(rnd, net);
                double bound = rb.CombinedBound(spec, lambda, slopes);
                double min = ys.Min(y => Enumerable.Range(0, 3).Sum(r => lambda[r] * Row(y, r)));
                Assert.That(bound, Is.LessThanOrEqualTo(min + Tol(min)), $"trial {trial}, weights [{string.Join(", ", lambda)}]");
                if (double.IsFinite(bound)) finite++;
            }
            // The search's result (whatever slopes and weights it picked) bounds max_r of the rows.
            var res = rb.SpecBound(spec, new SpecSearch { Iterations = 8 }, null, null);
            double maxMin = ys.Min(y => Enumerable.Range(0, 3).Max(r => Row(y, r)));
            Assert.That(res.Bound, Is.LessThanOrEqualTo(maxMin + Tol(maxMin)), $"trial {trial}: search bound");
        }
        Assert.That(finite, Is.GreaterThan(0));
    }

    [Test]
    public void PublicSlopeOverloadIsSoundAndValidatesSlopes()
    {
        var net = Guard(BoundTestNets.Mlp(9, [3, 12, 12, 2]).Graph, [3]);
        var rnd = new Random(9);
        var (lo, hi) = Box(rnd, 3, 0.8);
        var ys = Points(rnd, lo, hi, 3000).Select(x => net.Evaluate(x)).ToArray();
        var rb = net.Analyze(lo, hi);
        int relus = net.Nodes.Count(n => n is ReluNode);
        for (int k = 0; k < 10; k++)
        {
            var slopes = RandomSlopes(rnd, net).Where(a => a != null).Select(a => a!).ToArray();
            Assert.That(slopes, Has.Length.EqualTo(relus));
            double[] c = [rnd.NextDouble() * 2 - 1, rnd.NextDouble() * 2 - 1];
            double lb = rb.LowerBound(c, slopes, out _);
            double min = ys.Min(y => c[0] * y[0] + c[1] * y[1]);
            Assert.That(lb, Is.LessThanOrEqualTo(min + Tol(min)));
        }
        var bad = RandomSlopes(rnd, net).Where(a => a != null).Select(a => a!).ToArray();
        bad[0][0] = 1.5;
        Assert.Throws<ArgumentException>(() => rb.LowerBound([1.0, 0], bad, out _));
        Assert.Throws<ArgumentException>(() => rb.LowerBound([1.0, 0], bad.Skip(1).ToArray(), out _));
    }

    [Test]
    public void TinyBoxesGiveTightBounds()
    {
        // Not vacuous: on a box too small for any ReLU to be unstable the bound is the exact minimum up to rounding.
        var net = Guard(BoundTestNets.Mlp(5, [3, 10, 10, 4]).Graph, [3]);
        var rnd = new Random(5);
        var (lo, hi) = Box(rnd, 3, 1e-7);
        var spec = RandomSpec(rnd, 2, 4, out var c, out var d);
        var rb = net.Analyze(lo, hi);
        var ys = Points(rnd, lo, hi, 200).Select(x => net.Evaluate(x)).ToArray();
        double min = ys.Min(y => Enumerable.Range(0, 4).Sum(j => (c[0, j] + c[1, j]) * y[j]) - d[0] - d[1]);
        double bound = rb.CombinedBound(spec, [1, 1], null);
        Assert.That(bound, Is.LessThanOrEqualTo(min + Tol(min)));
        Assert.That(bound, Is.GreaterThan(min - 1e-5));
    }

    [TestCase(11)]
    [TestCase(12)]
    [TestCase(13)]
    public void ReluSignCutsAreSoundAndEmptinessIsReal(int seed)
    {
        var net = Guard(BoundTestNets.Mlp(seed, [2, 8, 8, 3]).Graph, [2]);
        var rnd = new Random(seed);
        int cuts = 0, empty = 0;
        for (int trial = 0; trial < 8; trial++)
        {
            var (lo, hi) = Box(rnd, 2, 1.0);
            var xs = Points(rnd, lo, hi, 4900);
            var vals = xs.Select(x => net.EvaluateAll(x)).ToArray();
            var rb = net.Analyze(lo, hi);
            var spec = RandomSpec(rnd, 2, 3, out var c, out var d);
            // Every unstable ReLU input of this box, cut both ways.
            for (int v = 0; v < net.Nodes.Length; v++)
            {
                if (net.Nodes[v] is not ReluNode) continue;
                int u = net.Nodes[v].Inputs[0];
                for (int i = 0; i < net.Nodes[u].Size; i++)
                {
                    if (!(rb.Lo[u][i] < 0 && rb.Hi[u][i] > 0)) continue;
                    foreach (bool nonNeg in new[] { true, false })
                    {
                        var part = net.Analyze(lo, hi, rb.WithSign(u, i, nonNeg));
                        var inside = vals.Where(z => nonNeg ? z[u][i] >= 0 : z[u][i] <= 0).ToArray();
                        cuts++;
                        if (part.Infeasible) { empty++; Assert.That(inside, Is.Empty, "a part with inputs was called empty"); continue; }
                        double bound = part.CombinedBound(spec, [0.5, 1], RandomSlopes(rnd, net));
                        if (inside.Length == 0) continue;
                        double min = inside.Min(z => Enumerable.Range(0, 3).Sum(j => (0.5 * c[0, j] + c[1, j]) * z[^1][j]) - 0.5 * d[0] - d[1]);
                        Assert.That(bound, Is.LessThanOrEqualTo(min + Tol(min)), $"node {u} neuron {i} {(nonNeg ? ">= 0" : "<= 0")}");
                        // Its node bounds contain every value the part reaches.
                        foreach (var z in inside)
                            for (int w = 0; w < z.Length; w++)
                                for (int j = 0; j < z[w].Length; j++)
                                    Assert.That(z[w][j], Is.InRange(part.Lo[w][j] - Tol(z[w][j]), part.Hi[w][j] + Tol(z[w][j])));
                    }
                }
            }
        }
        Assert.That(cuts, Is.GreaterThan(10));
    }

    [TestCase(14)]
    [TestCase(15)]
    public void LagrangianTermsOfTwoCutsAreSoundForAnyMultipliers(int seed)
    {
        // Two nested ReLU cuts, as branch and bound makes them, with arbitrary β ≥ 0 (β-CROWN) and slopes: the bound
        // holds on the part of the box where both signs hold.
        var net = Guard(BoundTestNets.Mlp(seed, [2, 8, 8, 3]).Graph, [2]);
        var rnd = new Random(seed);
        int checkedParts = 0;
        for (int trial = 0; trial < 6; trial++)
        {
            var (lo, hi) = Box(rnd, 2, 1.0);
            var vals = Points(rnd, lo, hi, 4900).Select(x => net.EvaluateAll(x)).ToArray();
            var rb = net.Analyze(lo, hi);
            var spec = RandomSpec(rnd, 2, 3, out var c, out var d);
            var unstable = new List<(int, int)>();
            for (int v = 0; v < net.Nodes.Length; v++)
                if (net.Nodes[v] is ReluNode)
                {
                    int u = net.Nodes[v].Inputs[0];
                    for (int i = 0; i < net.Nodes[u].Size; i++) if (rb.Lo[u][i] < 0 && rb.Hi[u][i] > 0) unstable.Add((u, i));
                }
            if (unstable.Count < 2) continue;
            for (int k = 0; k < 6; k++)
            {
                var (u1, i1) = unstable[rnd.Next(unstable.Count)];
                var (u2, i2) = unstable[rnd.Next(unstable.Count)];
                bool s1 = rnd.Next(2) == 0, s2 = rnd.Next(2) == 0;
                var part1 = net.Analyze(lo, hi, rb.WithSign(u1, i1, s1));
                if (part1.Infeasible) continue;
                var part = net.Analyze(lo, hi, part1.WithSign(u2, i2, s2));
                bool In(double[][] z) => (s1 ? z[u1][i1] >= 0 : z[u1][i1] <= 0) && (s2 ? z[u2][i2] >= 0 : z[u2][i2] <= 0);
                var inside = vals.Where(In).ToArray();
                if (part.Infeasible) { Assert.That(inside, Is.Empty); continue; }
                SignCut[] cuts = [new(u1, i1, s1), new(u2, i2, s2)];
                for (int q = 0; q < 5; q++)
                {
                    double[] beta = [rnd.NextDouble() * (q + 1), q == 0 ? 0 : rnd.NextDouble() * 3];
                    double[] lambda = [rnd.NextDouble(), rnd.NextDouble()];
                    double bound = part.CombinedBound(spec, lambda, RandomSlopes(rnd, net), cuts, beta);
                    if (inside.Length == 0) continue;
                    double min = inside.Min(z => Enumerable.Range(0, 2).Sum(r => lambda[r] * (Enumerable.Range(0, 3).Sum(j => c[r, j] * z[^1][j]) - d[r])));
                    Assert.That(bound, Is.LessThanOrEqualTo(min + Tol(min)), $"cuts ({u1},{i1},{s1}) ({u2},{i2},{s2}), β [{beta[0]}, {beta[1]}]");
                    checkedParts++;
                }
            }
        }
        Assert.That(checkedParts, Is.GreaterThan(20));
    }

    [TestCase(0)]
    [TestCase(1)]
    public void SShapeLinesEncloseTheFunctionAndAreTight(int kindIndex)
    {
        var kind = (SShapeKind)kindIndex;
        var rnd = new Random(7);
        var intervals = new List<(double, double)> { (-3, -1), (1, 3), (-2, 2), (-0.1, 5), (-5, 0.1), (0, 1), (-1, 0), (-40, 40), (-700, -690), (30, 35), (2, 2), (-1e-9, 1e-9) };
        for (int k = 0; k < 200; k++)
        {
            double a = (rnd.NextDouble() * 2 - 1) * Math.Pow(10, rnd.Next(-2, 2)), b = a + rnd.NextDouble() * Math.Pow(10, rnd.Next(-3, 2));
            intervals.Add((a, b));
        }
        foreach (var (l, u) in intervals)
        {
            var (ls, lt) = SShapeLines.Lower(kind, l, u);
            var (us, ut) = SShapeLines.Upper(kind, l, u);
            for (int s = 0; s <= 400; s++)
            {
                double x = s == 400 ? u : l + (u - l) * s / 400;
                double f = SShapeLines.Eval(kind, x);
                double tol = 1e-15 * (1 + Math.Abs(f));
                Assert.That(ls * x + lt, Is.LessThanOrEqualTo(f + tol), $"lower line on [{l}, {u}] at {x}");
                Assert.That(us * x + ut, Is.GreaterThanOrEqualTo(f - tol), $"upper line on [{l}, {u}] at {x}");
            }
            // Tight: on an interval of width w the lines are within a small fraction of w of the function.
            if (u - l <= 0.1 && Math.Abs(l) < 10)
            {
                double x = 0.5 * (l + u), f = SShapeLines.Eval(kind, x);
                Assert.That(us * x + ut - f, Is.LessThan(0.01 * (u - l) + 1e-12), $"upper line on [{l}, {u}] is loose");
                Assert.That(f - (ls * x + lt), Is.LessThan(0.01 * (u - l) + 1e-12), $"lower line on [{l}, {u}] is loose");
            }
        }
    }

    [Test]
    public void PointEnclosuresContainTheFunction()
    {
        foreach (var kind in new[] { SShapeKind.Sigmoid, SShapeKind.Tanh })
            foreach (double x in new[] { -800, -40, -3, -1e-8, 0, 1e-8, 0.5, 3, 40, 800 })
            {
                // Reference values from the closed forms in a different arrangement (tanh via exp, sigmoid via tanh).
                double want = kind == SShapeKind.Sigmoid ? 0.5 * (1 + Math.Tanh(x / 2)) : (Math.Abs(x) > 20 ? Math.Sign(x) : (Math.Exp(2 * x) - 1) / (Math.Exp(2 * x) + 1));
                var (lo, hi) = SShapeLines.F(kind, x);
                Assert.That(want, Is.InRange(lo - 1e-15, hi + 1e-15), $"{kind}({x})");
                var (dl, dh) = SShapeLines.Derivative(kind, x);
                double dwant = kind == SShapeKind.Sigmoid ? want * (1 - want) : 1 - want * want;
                Assert.That(dwant, Is.InRange(dl - 1e-15, dh + 1e-15), $"{kind}'({x})");
            }
    }

    [TestCase(21)]
    [TestCase(22)]
    [TestCase(23)]
    [TestCase(24)]
    public void BranchAndBoundNeverContradictsDenseSampling(int seed)
    {
        // Random 2-input nets and "output 0 is the largest" properties, some true and some false: holds must never
        // be claimed where a grid point is unsafe, violated never where none is close to unsafe.
        var module = BoundTestNets.Mlp(seed, [2, 12, 12, 3]);
        var net = Guard(module.Graph, [2]);
        var rnd = new Random(seed);
        int decided = 0, holds = 0;
        for (int trial = 0; trial < 8; trial++)
        {
            var (lo, hi) = Box(rnd, 2, 0.6 + rnd.NextDouble());
            var ys = Points(rnd, lo, hi, 10000).Select(x => net.Evaluate(x)).ToArray();
            // Unsafe: y0 − y1 ≥ δ and y0 − y2 ≥ δ, written as (y1 − y0 ≤ −δ) ∧ (y2 − y0 ≤ −δ); δ around the sampled max of min_j (y0 − yj).
            double top = ys.Max(y => Math.Min(y[0] - y[1], y[0] - y[2]));
            double delta = top + (trial % 2 == 0 ? 0.05 : -0.05);
            var cs = new VerificationCase(lo, hi, [new UnsafeConjunction(new double[,] { { -1, 1, 0 }, { -1, 0, 1 } }, [-delta, -delta])]);
            var r = Verifier.Verify(module.Graph, [2], new VerificationProblem([cs]), new VerifierOptions { Timeout = TimeSpan.FromSeconds(10) });
            bool sampledUnsafe = top >= delta;
            if (r.Verdict == Verdict.Holds) { holds++; Assert.That(sampledUnsafe, Is.False, $"trial {trial}: holds, but a grid point is unsafe ({r.Detail})"); }
            if (r.Verdict == Verdict.Violated)
            {
                Assert.That(cs.Contains(r.Counterexample!.X) && cs.IsUnsafe(net.Evaluate(r.Counterexample.X)), Is.True);
                Assert.That(top, Is.GreaterThan(delta - 0.06), $"trial {trial}: violated, but no grid point is near unsafe");
            }
            if (r.Verdict is Verdict.Holds or Verdict.Violated) decided++;
        }
        Assert.That(decided, Is.GreaterThanOrEqualTo(6), "most of these small problems should be decided");
        Assert.That(holds, Is.GreaterThan(0));
    }

    [TestCase(31)]
    [TestCase(33)]
    public void ReluOnlyBranchAndBoundOnManyInputs(int seed)
    {
        // 12 inputs: too many to split, so branch and bound splits ReLUs only. A threshold just above a sampled value
        // must never be proven; one between the root bound and the sampled minimum should be.
        var module = BoundTestNets.Mlp(seed, [12, 16, 16, 2]);
        var net = Guard(module.Graph, [12]);
        var rnd = new Random(seed);
        var (lo, hi) = Box(rnd, 12, 0.5);
        double min = Points(rnd, lo, hi, 20000).Min(x => { var y = net.Evaluate(x); return y[0] - y[1]; });
        double lb = net.Analyze(lo, hi).LowerBound([1.0, -1.0], out _);
        Assert.That(lb, Is.LessThan(min));
        var options = new VerifierOptions { Timeout = TimeSpan.FromSeconds(10) };
        VerificationResult Run(double d) => Verifier.Verify(module.Graph, [12], new VerificationProblem([new VerificationCase(lo, hi, [new UnsafeConjunction(new double[,] { { 1, -1 } }, [d])])]), options);
        var above = Run(min + 1e-3);
        Assert.That(above.Verdict, Is.Not.EqualTo(Verdict.Holds), above.Detail);
        var between = Run(lb + 0.5 * (min - lb));
        TestContext.Out.WriteLine($"root bound {lb:g5}, sampled min {min:g5}: {between.VerdictText} ({between.Detail})");
        Assert.That(between.Verdict, Is.Not.EqualTo(Verdict.Violated), between.Detail);
        Assert.That(between.Verdict, Is.EqualTo(Verdict.Holds), between.Detail);
    }

    [Test]
    public void DirectedStepsMatchTheLibrary()
    {
        var rnd = new Random(1);
        var xs = new List<double> { 0.0, -0.0, double.Epsilon, -double.Epsilon, double.MaxValue, -double.MaxValue, double.PositiveInfinity,
            double.NegativeInfinity, double.NaN, -double.NaN, BitConverter.Int64BitsToDouble(unchecked((long)0xFFF0000000000001UL)), 1.0, -1.0, 2.2250738585072014E-308 };
        for (int i = 0; i < 1000; i++) xs.Add(BitConverter.Int64BitsToDouble(rnd.NextInt64()));
        foreach (var x in xs)
        {
            double up = Directed.Up(x), down = Directed.Down(x);
            if (double.IsNaN(x)) { Assert.That(double.IsNaN(up) && double.IsNaN(down), Is.True, $"{x}"); continue; }
            Assert.That(BitConverter.DoubleToInt64Bits(up), Is.EqualTo(BitConverter.DoubleToInt64Bits(Math.BitIncrement(x))), $"up {x:R}");
            Assert.That(BitConverter.DoubleToInt64Bits(down), Is.EqualTo(BitConverter.DoubleToInt64Bits(Math.BitDecrement(x))), $"down {x:R}");
        }
    }
}
