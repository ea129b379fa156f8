using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Graph;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

/// <summary>
/// The lane-layout IBP kernels of the fast path (ChainLanes.cs, taken above four examples): the register-blocked
/// product against a scalar reference (exact on integer data, inside the stated rounding bound on real data), the
/// layout transposes, and whole networks against IBP computed in double precision, which every float32 bound with
/// its rounding margins must contain.
/// </summary>
[NonParallelizable]
public unsafe class FastBoundsLaneTests
{
    private const double Unit = 1.0 / (1 << 24);

    /// <summary>y[(r·P + p)·lanes + e] = Σ_t op(W[r, t])·x[pbase[p] + toff[t] + e], in double.</summary>
    private static double[] Reference(float[] x, int[] toff, int[]? pbase, int pixels, float[] w, int m, int taps, bool abs, int lanes, out double[] mag)
    {
        var y = new double[(long)m * pixels * lanes];
        mag = new double[y.Length];
        for (int r = 0; r < m; r++)
            for (int p = 0; p < pixels; p++)
                for (int e = 0; e < lanes; e++)
                {
                    double s = 0, a = 0;
                    for (int t = 0; t < taps; t++)
                    {
                        double wv = w[r * taps + t];
                        if (abs) wv = Math.Abs(wv);
                        double term = wv * x[(pbase == null ? 0 : pbase[p]) + toff[t] + e];
                        s += term; a += Math.Abs(term);
                    }
                    y[((long)r * pixels + p) * lanes + e] = s;
                    mag[((long)r * pixels + p) * lanes + e] = a;
                }
        return y;
    }

    private static float[] LaneAffine(float[] x, int[] toff, int[]? pbase, int pixels, float[] w, int m, int taps, bool abs, int lanes)
    {
        var y = new float[(long)m * pixels * lanes];
        var d = new double[y.Length];
        fixed (float* px = x, pw = w, py = y)
        fixed (double* pd = d)
        fixed (int* pt = toff, pb = pbase)
            ChainBounds.LaneAffine(px, pt, taps, pbase == null ? null : pb, pixels, pw, taps, m, abs, lanes, py, pd);
        return y;
    }

    private static IEnumerable<(int M, int Taps, int Lanes, int Pixels)> Shapes()
    {
        foreach (int m in new[] { 1, 2, 5, 11, 12, 13, 25 })
            foreach (int taps in new[] { 1, 7, 128, 129, 300 })
                yield return (m, taps, m % 2 == 0 ? 32 : m % 3 == 0 ? 16 : 48, 1);
        // Several pixels at offsets of their own (a convolution's output positions).
        yield return (3, 18, 16, 7);
        yield return (16, 128, 32, 5);
        yield return (9, 200, 48, 3);
        // Rows too long for float chunk totals (their chunks are totalled in double).
        yield return (2, 5000, 16, 1);
    }

    /// <summary>
    /// On small integers every product and sum is exact in float32, so the kernel must reproduce the reference exactly:
    /// any indexing slip (row blocks, lane groups, chunks, pixel offsets, |W|) shows up as a difference.
    /// </summary>
    [Test]
    public void LaneAffineIsExactOnIntegers([Values(false, true)] bool abs)
    {
        var rng = new Random(5);
        foreach (var (m, taps, lanes, pixels) in Shapes())
        {
            var (x, toff, pbase) = Inputs(rng, taps, lanes, pixels, integers: true);
            var w = Enumerable.Range(0, m * taps).Select(_ => (float)rng.Next(-3, 4)).ToArray();
            var want = Reference(x, toff, pbase, pixels, w, m, taps, abs, lanes, out _);
            var got = LaneAffine(x, toff, pbase, pixels, w, m, taps, abs, lanes);
            for (int i = 0; i < want.Length; i++)
                Assert.That(got[i], Is.EqualTo((float)want[i]), $"m {m} taps {taps} lanes {lanes} pixels {pixels} abs {abs}: element {i}");
        }
    }

    /// <summary>
    /// On real data the error stays inside the bound the IBP margin relies on: (LaneChunk + 1) units of roundoff
    /// times the sum of the terms' magnitudes (ChainLanes.cs), with taps past one chunk summed in double.
    /// </summary>
    [Test]
    public void LaneAffineErrorIsInsideTheRoundingBound()
    {
        var rng = new Random(6);
        foreach (var (m, taps, lanes, pixels) in Shapes())
            foreach (bool abs in new[] { false, true })
            {
                var (x, toff, pbase) = Inputs(rng, taps, lanes, pixels, integers: false);
                var w = Enumerable.Range(0, m * taps).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
                var want = Reference(x, toff, pbase, pixels, w, m, taps, abs, lanes, out var mag);
                var got = LaneAffine(x, toff, pbase, pixels, w, m, taps, abs, lanes);
                for (int i = 0; i < want.Length; i++)
                    Assert.That(Math.Abs(got[i] - want[i]), Is.LessThanOrEqualTo((ChainBounds.LaneChunk + 1) * Unit * mag[i] + 1e-30),
                        $"m {m} taps {taps} lanes {lanes} abs {abs}: element {i}");
            }
    }

    /// <summary>
    /// The centre-and-radius kernel forms each sum exactly as the single products do (same terms, same order), so
    /// both of its outputs equal W·xc and |W|·xr bit for bit; rows that need double chunk totals are declined.
    /// </summary>
    [Test]
    public void LanePairEqualsTheTwoSingleProducts()
    {
        var rng = new Random(10);
        foreach (var (m, taps, lanes, pixels) in Shapes())
        {
            var (xc, toff, pbase) = Inputs(rng, taps, lanes, pixels, integers: false);
            var xr = xc.Select(v => Math.Abs(v) * 0.5f).ToArray();
            var w = Enumerable.Range(0, m * taps).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
            var yc = new float[(long)m * pixels * lanes]; var yr = new float[yc.Length];
            bool done;
            fixed (float* pc = xc, pr = xr, pw = w, pyc = yc, pyr = yr)
            fixed (int* pt = toff, pb = pbase)
                done = ChainBounds.LanePair(pc, pr, pt, taps, pbase == null ? null : pb, pixels, pw, taps, m, lanes, pyc, pyr, null);
            Assert.That(done, Is.EqualTo(ChainBounds.Chunks(taps, out _, out _)), $"taps {taps}");
            if (!done) continue;
            Assert.That(yc, Is.EqualTo(LaneAffine(xc, toff, pbase, pixels, w, m, taps, false, lanes)), $"m {m} taps {taps} lanes {lanes}: centre");
            Assert.That(yr, Is.EqualTo(LaneAffine(xr, toff, pbase, pixels, w, m, taps, true, lanes)), $"m {m} taps {taps} lanes {lanes}: radius");
        }
    }

    [Test]
    public void LaneAffineDoesNotDependOnTheThreadCount()
    {
        var rng = new Random(7);
        int saved = CpuThreads.Count;
        try
        {
            foreach (var (m, taps, lanes, pixels) in new[] { (256, 784, 32, 1), (16, 128, 48, 49) })
            {
                var (x, toff, pbase) = Inputs(rng, taps, lanes, pixels, integers: false);
                var w = Enumerable.Range(0, m * taps).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
                CpuThreads.Count = 1;
                var one = LaneAffine(x, toff, pbase, pixels, w, m, taps, true, lanes);
                CpuThreads.Count = 2;
                var two = LaneAffine(x, toff, pbase, pixels, w, m, taps, true, lanes);
                Assert.That(two, Is.EqualTo(one), $"m {m} taps {taps}");
            }
        }
        finally { CpuThreads.Count = saved; }
    }

    /// <summary>Input lanes with tap offsets in a scrambled order and, for several pixels, pixel offsets of their own.</summary>
    private static (float[] X, int[] Toff, int[]? Pbase) Inputs(Random rng, int taps, int lanes, int pixels, bool integers)
    {
        int slots = taps + 3 * pixels;
        var x = Enumerable.Range(0, slots * lanes).Select(_ => integers ? (float)rng.Next(-4, 5) : (float)(rng.NextDouble() * 4 - 2)).ToArray();
        var order = Enumerable.Range(0, taps).OrderBy(_ => rng.Next()).ToArray();
        var toff = order.Select(s => s * lanes).ToArray();
        int[]? pbase = pixels == 1 ? null : Enumerable.Range(0, pixels).Select(p => 3 * p * lanes).ToArray();
        return (x, toff, pbase);
    }

    [Test]
    public void ToLanesTransposesAndZeroesThePaddingLanes()
    {
        var rng = new Random(8);
        foreach (int batch in new[] { 1, 5, 15, 16, 17, 31, 33 })
            foreach (int n in new[] { 1, 3, 15, 16, 17, 40 })
            {
                int lanes = ChainBounds.LaneCount(batch), ld = n + 2;
                var src = Enumerable.Range(0, batch * ld).Select(_ => (float)rng.NextDouble()).ToArray();
                var dst = Enumerable.Repeat(float.NaN, n * lanes + 16).ToArray();
                fixed (float* ps = src, pd = dst) ChainBounds.ToLanes(ps, ld, batch, n, pd, lanes);
                for (int j = 0; j < n; j++)
                    for (int e = 0; e < lanes; e++)
                        Assert.That(dst[j * lanes + e], Is.EqualTo(e < batch ? src[e * ld + j] : 0f), $"batch {batch} n {n}: element {j}, lane {e}");
                Assert.That(dst[n * lanes], Is.NaN, "nothing is written past the last element");
            }
    }

    /// <summary>FinishLanes: the box rule's arithmetic, back to rows (nothing written outside them) or kept in lanes with an activation.</summary>
    [Test]
    public void FinishLanesFormsTheBoxRule()
    {
        var rng = new Random(9);
        foreach (int batch in new[] { 1, 6, 16, 17, 33 })
            foreach (int n in new[] { 1, 15, 17, 40 })
                foreach (bool bias in new[] { false, true })
                {
                    int lanes = ChainBounds.LaneCount(batch);
                    float[] R(int k) => Enumerable.Range(0, k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
                    var c = R(n * lanes); var r = R(n * lanes).Select(Math.Abs).ToArray(); var addC = R(n); var addR = R(n).Select(Math.Abs).ToArray();
                    var lo = Enumerable.Repeat(float.NaN, batch * n + 8).ToArray(); var hi = (float[])lo.Clone();
                    var ll = new float[n * lanes]; var lh = new float[n * lanes];
                    var lc = new float[n * lanes]; var lr = new float[n * lanes];
                    fixed (float* pc = c, pr = r, pa = addC, pb = addR, pl = lo, ph = hi, pll = ll, plh = lh, plc = lc, plr = lr)
                    {
                        ChainBounds.FinishLanes(pc, pr, bias ? pa : null, pb, n, batch, lanes, pl, ph);
                        // Kept in lanes with a leaky activation, then as the next layer's centre and radius.
                        var ep = new ChainBounds.LaneEpilogue { OutA = pll, OutB = plh, Lanes = lanes, Act = true, Slope = 0.25f };
                        ChainBounds.FinishLanes(pc, pr, bias ? pa : null, pb, n, batch, lanes, null, null, &ep);
                        var ec = new ChainBounds.LaneEpilogue { OutA = plc, OutB = plr, Lanes = lanes, Act = true, Slope = 0.25f, Center = true, Rho = 1e-5f };
                        ChainBounds.FinishLanes(pc, pr, bias ? pa : null, pb, n, batch, lanes, null, null, &ec);
                    }
                    for (int e = 0; e < batch; e++)
                        for (int j = 0; j < n; j++)
                        {
                            float cc = bias ? c[j * lanes + e] + addC[j] : c[j * lanes + e], rr = r[j * lanes + e] + addR[j];
                            Assert.That(lo[e * n + j], Is.EqualTo(cc - rr), $"batch {batch} n {n}: lower of ({e}, {j})");
                            Assert.That(hi[e * n + j], Is.EqualTo(cc + rr), $"batch {batch} n {n}: upper of ({e}, {j})");
                            float Act(float v) => v >= 0 ? v : v * 0.25f;
                            float l = Act(cc - rr), h = Act(cc + rr);
                            Assert.That(ll[j * lanes + e], Is.EqualTo(l));
                            Assert.That(lh[j * lanes + e], Is.EqualTo(h));
                            // The box rule's centre and widened radius (ChainBounds.CenterRadius).
                            float mid = (l + h) * 0.5f;
                            Assert.That(lc[j * lanes + e], Is.EqualTo(mid));
                            Assert.That(lr[j * lanes + e], Is.EqualTo((h - l) * 0.5f * (1 + 1e-5f) + MathF.Abs(mid) * 1e-5f));
                        }
                    Assert.That(lo[batch * n], Is.NaN, "nothing is written past the rows");
                }
    }

    // ----- whole networks against IBP in double precision -----

    private abstract record Layer;
    private sealed record Lin(int In, int Out, float[] W, float[] Bias) : Layer;
    private sealed record Conv(int Cin, int H, int Wd, int Cout, int K, int S, int P, int D, float[] W, float[] Bias) : Layer
    {
        public int OH => (H + 2 * P - D * (K - 1) - 1) / S + 1;
        public int OW => (Wd + 2 * P - D * (K - 1) - 1) / S + 1;
    }
    private sealed record Relu(float Slope) : Layer;

    private sealed class Net(int[] inShape, List<Layer> layers)
    {
        public readonly int[] InShape = inShape;
        public readonly List<Layer> Layers = layers;

        public ComputeGraph Graph()
        {
            var b = new GraphBuilder();
            var h = b.Input("x");
            bool flat = InShape.Length == 1;
            int i = 0;
            foreach (var l in Layers)
            {
                i++;
                switch (l)
                {
                    case Lin lin:
                        if (!flat) { h = b.Apply(new FlattenOp(), h); flat = true; }
                        h = b.Apply(new LinearOp(), h, b.Constant($"w{i}", Tensor.FromArray(lin.W, lin.Out, lin.In)), b.Constant($"b{i}", Tensor.FromArray(lin.Bias, lin.Out)));
                        break;
                    case Conv cv:
                        h = b.Apply(new Conv2dOp(cv.S, cv.P, cv.D), h, b.Constant($"w{i}", Tensor.FromArray(cv.W, cv.Cout, cv.Cin, cv.K, cv.K)),
                                    b.Constant($"b{i}", Tensor.FromArray(cv.Bias, cv.Cout)));
                        break;
                    case Relu a:
                        h = b.Apply(a.Slope == 0 ? new ReluOp() : new LeakyReluOp(a.Slope), h);
                        break;
                }
            }
            b.Output(h);
            return b.Build();
        }

        /// <summary>IBP of one example in double precision (no rounding margins): the tightest box rule, layer by layer.</summary>
        public (double[] Lo, double[] Hi) Ibp(double[] lo, double[] hi, double[]? x0 = null, double l2Eps = 0, double[,]? spec = null)
        {
            for (int k = 0; k < Layers.Count; k++)
            {
                bool first = k == 0 && x0 != null;
                switch (Layers[k])
                {
                    case Lin lin:
                    {
                        bool fold = spec != null && k == Layers.Count - 1;
                        // With a spec folded into the last Linear: rows C·W and bias C·b.
                        int rows = fold ? spec!.GetLength(0) : lin.Out;
                        double Wt(int j, int i) => fold ? Enumerable.Range(0, lin.Out).Sum(o => spec![j, o] * lin.W[o * lin.In + i]) : lin.W[j * lin.In + i];
                        double Bt(int j) => fold ? Enumerable.Range(0, lin.Out).Sum(o => spec![j, o] * lin.Bias[o]) : lin.Bias[j];
                        var nl = new double[rows]; var nh = new double[rows];
                        for (int j = 0; j < rows; j++)
                        {
                            double c = Bt(j), r = 0, sq = 0;
                            for (int i = 0; i < lin.In; i++)
                            {
                                double w = Wt(j, i);
                                c += w * (first ? x0![i] : (lo[i] + hi[i]) / 2);
                                r += Math.Abs(w) * (hi[i] - lo[i]) / 2;
                                sq += w * w;
                            }
                            if (first && l2Eps > 0) r = l2Eps * Math.Sqrt(sq);
                            nl[j] = c - r; nh[j] = c + r;
                        }
                        lo = nl; hi = nh;
                        break;
                    }
                    case Conv cv:
                    {
                        int oh = cv.OH, ow = cv.OW;
                        var nl = new double[cv.Cout * oh * ow]; var nh = new double[nl.Length];
                        for (int co = 0; co < cv.Cout; co++)
                            for (int y = 0; y < oh; y++)
                                for (int xx = 0; xx < ow; xx++)
                                {
                                    double c = cv.Bias[co], r = 0, sq = 0;
                                    for (int ci = 0; ci < cv.Cin; ci++)
                                        for (int kh = 0; kh < cv.K; kh++)
                                            for (int kw = 0; kw < cv.K; kw++)
                                            {
                                                int iy = y * cv.S - cv.P + kh * cv.D, ix = xx * cv.S - cv.P + kw * cv.D;
                                                double w = cv.W[((co * cv.Cin + ci) * cv.K + kh) * cv.K + kw];
                                                // The L2 ball rule takes the whole kernel's norm (as the generic rule), padding taps included.
                                                sq += w * w;
                                                if (iy < 0 || iy >= cv.H || ix < 0 || ix >= cv.Wd) continue;
                                                int q = (ci * cv.H + iy) * cv.Wd + ix;
                                                c += w * (first ? x0![q] : (lo[q] + hi[q]) / 2);
                                                r += Math.Abs(w) * (hi[q] - lo[q]) / 2;
                                            }
                                    if (first && l2Eps > 0) r = l2Eps * Math.Sqrt(sq);
                                    int o = (co * oh + y) * ow + xx;
                                    nl[o] = c - r; nh[o] = c + r;
                                }
                        lo = nl; hi = nh;
                        break;
                    }
                    case Relu a:
                        lo = lo.Select(v => v >= 0 ? v : v * a.Slope).ToArray();
                        hi = hi.Select(v => v >= 0 ? v : v * a.Slope).ToArray();
                        break;
                }
            }
            if (spec != null && Layers[^1] is not Lin)
            {
                // The spec on the output box: C⁺·l + C⁻·u and C⁺·u + C⁻·l.
                int rows = spec.GetLength(0);
                var sl = new double[rows]; var sh = new double[rows];
                for (int j = 0; j < rows; j++)
                    for (int o = 0; o < lo.Length; o++)
                    {
                        double cj = spec[j, o];
                        sl[j] += cj >= 0 ? cj * lo[o] : cj * hi[o];
                        sh[j] += cj >= 0 ? cj * hi[o] : cj * lo[o];
                    }
                return (sl, sh);
            }
            return (lo, hi);
        }
    }

    private static float[] Rand(Random rng, int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();

    private static Lin MakeLin(Random rng, int i, int o) => new(i, o, Rand(rng, i * o, 1.5 / Math.Sqrt(i)), Rand(rng, o, 0.3));

    private static Conv MakeConv(Random rng, int cin, int h, int w, int cout, int k, int s, int p, int d)
        => new(cin, h, w, cout, k, s, p, d, Rand(rng, cout * cin * k * k, 1.5 / Math.Sqrt(cin * k * k)), Rand(rng, cout, 0.3));

    /// <summary>Channel and feature counts off the vector width, strides 1 and 2, paddings 0 to 2, dilation 2, long rows.</summary>
    private static IEnumerable<(string Name, Net Net)> Nets()
    {
        var rng = new Random(11);
        yield return ("mlp", new Net([37], [MakeLin(rng, 37, 150), new Relu(0), MakeLin(rng, 150, 13), new Relu(0.1f), MakeLin(rng, 13, 29), new Relu(0), MakeLin(rng, 29, 7)]));
        var c1 = MakeConv(rng, 3, 11, 9, 5, 3, 1, 1, 1);
        var c2 = MakeConv(rng, 5, c1.OH, c1.OW, 13, 4, 2, 2, 1);
        var c3 = MakeConv(rng, 13, c2.OH, c2.OW, 4, 3, 1, 0, 2);
        yield return ("cnn", new Net([3, 11, 9], [c1, new Relu(0), c2, new Relu(0.2f), c3, new Relu(0), MakeLin(rng, 4 * c3.OH * c3.OW, 6)]));
        // The benchmark's geometry on a smaller image, then a Linear with more inputs than one chunk of the lane product.
        var b1 = MakeConv(rng, 1, 14, 14, 8, 4, 2, 1, 1);
        var b2 = MakeConv(rng, 8, b1.OH, b1.OW, 20, 4, 2, 1, 1);
        yield return ("cnn-bench", new Net([1, 14, 14], [b1, new Relu(0), b2, new Relu(0), MakeLin(rng, 20 * b2.OH * b2.OW, 33), new Relu(0), MakeLin(rng, 33, 10)]));
        // Two activations in a row (the second is not fused into the layer before), before a Linear and before the fold.
        yield return ("double-act", new Net([23], [MakeLin(rng, 23, 40), new Relu(0), new Relu(0.1f), MakeLin(rng, 40, 19), new Relu(0.3f), new Relu(0),
                                                   MakeLin(rng, 19, 5)]));
        // A convolution last: its output leaves in rows.
        var e1 = MakeConv(rng, 2, 7, 6, 3, 3, 1, 1, 1);
        yield return ("ends-in-conv", new Net([2, 7, 6], [e1, new Relu(0), MakeConv(rng, 3, e1.OH, e1.OW, 2, 2, 1, 0, 1)]));
    }

    private static readonly (string Name, Perturbation P)[] Sets =
        [("linf", Perturbation.LInf(0.05f)), ("linf-clipped", Perturbation.LInf(0.05f, 0f, 1f)), ("l2", Perturbation.L2(0.2f))];

    /// <summary>
    /// Batched IBP (the lane path from five examples up) contains IBP computed in double precision for every example:
    /// the float32 rounding margins cover the lane products' rounding. It stays within 1e-3 of that bound's scale.
    /// </summary>
    [Test]
    public void LaneIbpContainsIbpInDoublePrecision([Values(5, 16, 17, 33)] int batch)
    {
        using var _ = new NoGrad();
        foreach (var (name, net) in Nets())
            foreach (var (setName, p) in Sets)
                foreach (int specKind in new[] { 0, 1, 2, 3 })
                    AssertContainsExactIbp(name, net, batch, setName, p, specKind);
    }

    /// <summary>Every batch size from 1 to 33 (the per-example path up to four, then one, two and three lane groups).</summary>
    [Test]
    public void EveryBatchSizeContainsIbpInDoublePrecision()
    {
        using var _ = new NoGrad();
        var (name, net) = Nets().First(n => n.Name == "cnn");
        for (int batch = 1; batch <= 33; batch++)
        {
            AssertContainsExactIbp(name, net, batch, "linf", Sets[0].P, 1);
            AssertContainsExactIbp(name, net, batch, "linf-clipped", Sets[1].P, 0);
        }
    }

    private static void AssertContainsExactIbp(string name, Net net, int batch, string setName, Perturbation p, int specKind)
    {
        var graph = net.Graph();
        int d = net.InShape.Aggregate(1, (a, v) => a * v);
        var x = Tensor.Uniform([batch, .. net.InShape], 0f, 1f, new Generator((ulong)(batch + 3)));
        var xs = x.ToArray();
        int k = ShapeOut(graph, x);
        var spec = SpecOf(specKind, batch, k);
        string what = $"{name} batch {batch} {setName} spec {specKind}";
        int before = ChainBounds.TakenOnThisThread;
        var r = B.Compute(graph, x, p, BoundMethod.Ibp, spec);
        Assert.That(ChainBounds.TakenOnThisThread, Is.EqualTo(before + 1), $"{what}: the fast path was not taken");
        var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
        int outs = lo.Length / batch;
        for (int e = 0; e < batch; e++)
        {
            var x0 = xs.AsSpan(e * d, d).ToArray().Select(v => (double)v).ToArray();
            double eps = p.Eps;
            bool l2 = p.Norm == PerturbationNorm.L2, clip = p.ClipLow != null;
            var l = x0.Select(v => clip ? Math.Max(v - eps, 0) : v - eps).ToArray();
            var h = x0.Select(v => clip ? Math.Min(v + eps, 1) : v + eps).ToArray();
            double[,]? c = null;
            if (spec != null)
            {
                var cs = spec.C.ToArray();
                c = new double[outs, k];
                for (int row = 0; row < outs; row++)
                    for (int j = 0; j < k; j++) c[row, j] = cs[(e * outs + row) * k + j];
            }
            var (rl, rh) = net.Ibp(l, h, clip ? null : x0, l2 ? eps : 0, c);
            double scale = Math.Max(1e-3, rl.Concat(rh).Max(Math.Abs));
            for (int i = 0; i < outs; i++)
            {
                double fl = lo[e * outs + i], fh = hi[e * outs + i];
                Assert.That(fl, Is.LessThanOrEqualTo(rl[i] + 1e-12 * scale), $"{what}: example {e} lower[{i}] {fl} above the exact IBP {rl[i]}");
                Assert.That(fh, Is.GreaterThanOrEqualTo(rh[i] - 1e-12 * scale), $"{what}: example {e} upper[{i}] {fh} below the exact IBP {rh[i]}");
                Assert.That(rl[i] - fl, Is.LessThanOrEqualTo(1e-3 * scale), $"{what}: example {e} lower[{i}] far below the exact IBP");
                Assert.That(fh - rh[i], Is.LessThanOrEqualTo(1e-3 * scale), $"{what}: example {e} upper[{i}] far above the exact IBP");
            }
        }
    }

    /// <summary>
    /// 0: none; 1: margins (two nonzeros a row); 2: dense random rows per example; 3: one scaled output per row (one
    /// nonzero a row, some rows of an example with none in a lane's place).
    /// </summary>
    private static Spec? SpecOf(int kind, int batch, int k)
    {
        var g = new Generator((ulong)(kind * 100 + batch));
        switch (kind)
        {
            case 1: return Spec.Margins(Enumerable.Range(0, batch).Select(i => i % k).ToArray(), k);
            case 2: return new Spec(Tensor.Uniform([batch, 3, k], -1f, 1f, g));
            case 3:
            {
                var c = new float[batch * 2 * k];
                var rng = new Random(kind + batch);
                for (int e = 0; e < batch; e++)
                    for (int row = 0; row < 2; row++) c[(e * 2 + row) * k + rng.Next(k)] = (float)(rng.NextDouble() * 4 - 2);
                return new Spec(Tensor.FromArray(c, batch, 2, k));
            }
            default: return null;
        }
    }

    /// <summary>
    /// More distinct spec matrices than the fold keeps at once (per-example random rows), and one spec shared by the
    /// batch: the folded bounds of every example equal those of the example bounded alone with its own rows.
    /// </summary>
    [Test]
    public void SpecFoldingDoesNotMixExamples()
    {
        using var _ = new NoGrad();
        var (_, net) = Nets().First(n => n.Name == "mlp");
        var graph = net.Graph();
        int batch = 21;
        var x = Tensor.Uniform([batch, 37], 0f, 1f, new Generator(4));
        var perExample = new Spec(Tensor.Uniform([batch, 3, 7], -1f, 1f, new Generator(5)));
        var shared = new Spec(Tensor.Uniform([4, 7], -1f, 1f, new Generator(6)));
        foreach (var spec in new[] { perExample, shared })
        {
            var all = B.Compute(graph, x, Perturbation.LInf(0.05f, 0f, 1f), BoundMethod.Ibp, spec);
            int s = spec.Count;
            // The same examples, each repeated to fill a batch of its own (the same lane path, the same folded rows).
            for (int e = 0; e < batch; e += 5)
            {
                var xe = Tensor.Concat(Enumerable.Repeat(x.NarrowRows(e, 1), 6).ToArray(), 0);
                var se = spec.C.Rank == 3 ? new Spec(Tensor.Concat(Enumerable.Repeat(spec.C.NarrowRows(e, 1), 6).ToArray(), 0)) : spec;
                var one = B.Compute(graph, xe, Perturbation.LInf(0.05f, 0f, 1f), BoundMethod.Ibp, se);
                Assert.That(one.Lower.ToArray().Take(s), Is.EqualTo(all.Lower.ToArray().Skip(e * s).Take(s)), $"example {e} lower, spec rank {spec.C.Rank}");
                Assert.That(one.Upper.ToArray().Take(s), Is.EqualTo(all.Upper.ToArray().Skip(e * s).Take(s)), $"example {e} upper, spec rank {spec.C.Rank}");
            }
        }
    }

    [Test]
    public void LaneIbpDoesNotDependOnTheThreadCount()
    {
        using var _ = new NoGrad();
        int saved = CpuThreads.Count;
        try
        {
            foreach (var (name, net) in Nets())
            {
                var graph = net.Graph();
                var x = Tensor.Uniform([33, .. net.InShape], 0f, 1f, new Generator(12));
                CpuThreads.Count = 1;
                var one = B.Compute(graph, x, Perturbation.LInf(0.05f), BoundMethod.Ibp);
                CpuThreads.Count = 2;
                var two = B.Compute(graph, x, Perturbation.LInf(0.05f), BoundMethod.Ibp);
                Assert.That(two.Lower.ToArray(), Is.EqualTo(one.Lower.ToArray()), name);
                Assert.That(two.Upper.ToArray(), Is.EqualTo(one.Upper.ToArray()), name);
            }
        }
        finally { CpuThreads.Count = saved; }
    }

    private static int ShapeOut(ComputeGraph g, Tensor x)
    {
        using (new NoGrad()) return Executor.Forward(g, x).Numel / x.Dims[0];
    }
}
