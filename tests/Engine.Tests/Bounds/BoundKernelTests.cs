using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu.Reference;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.BoundProp;

public class BoundKernelTests
{
    /// <summary>Uniform in ±[0.2, 1]: away from 0, where the relaxation switches lines (a kink).</summary>
    private static Tensor AwayFromZero(int[] shape, Generator g)
    {
        var m = Tensor.Uniform(shape, 0.2f, 1f, g);
        var s = Tensor.Uniform(shape, -1f, 1f, g).Sign();
        return m * s;
    }

    private static void Close(float[] got, float[] want, float[] scale, double rel, string what)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), what);
        for (int i = 0; i < got.Length; i++)
            Assert.That(got[i], Is.EqualTo(want[i]).Within(rel * (Math.Abs(scale[i]) + 1e-6)), $"{what} [{i}]");
    }

    /// <summary>
    /// The fused ReLU relaxation against ReluOp's element-wise composition (which it replaces when no gradient is
    /// recorded) and the scalar reference, bit for bit: unstable, active and dead neurons, bounds at ±0, the tie
    /// u = −l, NaN bounds, and lengths that leave vector tails.
    /// </summary>
    [Test]
    public void ReluRelaxationIsTheCompositionBitForBit()
    {
        var g = new Generator(5);
        foreach (int n in new[] { 1, 15, 16, 17, 100, 1001 })
        {
            var lo = Tensor.Uniform([n], -1, 1, g).ToArray();
            var width = Tensor.Uniform([n], 0, 1.5f, g).ToArray();
            var hi = new float[n];
            for (int i = 0; i < n; i++) hi[i] = i % 7 == 3 ? -lo[i] : i % 11 == 5 ? 0f : lo[i] + width[i];
            for (int i = 0; i < n; i++) if (i % 13 == 6) lo[i] = i % 2 == 0 ? 0f : -0f;
            for (int i = 0; i < n; i++) if (hi[i] < lo[i]) hi[i] = lo[i];
            if (n > 50) { lo[40] = float.NaN; hi[41] = float.NaN; }
            var l = Tensor.FromSpan(lo, [n], null); var u = Tensor.FromSpan(hi, [n], null);
            var unstable = Tensor.Lt(l, 0f) * Tensor.Gt(u, 0f);
            var active = Tensor.Ge(l, 0f);
            var aU = Tensor.Where(unstable, u / Tensor.Where(unstable, u - l, 1f), active);
            var bU = Tensor.Where(unstable, -aU * l, 0f);
            var aL = Tensor.Where(unstable, Tensor.Ge(u, -l), active);
            var fused = FusedBounds.ReluRelaxation(l, u)!;
            var (rL, rU, rB) = BoundsReference.ReluRelaxation(lo, hi);
            foreach (var (got, want, refr, what) in new[] { (fused.LowSlope, aL, rL, "lowSlope"), (fused.UpSlope, aU, rU, "upSlope"), (fused.UpBias, bU, rB, "upBias") })
            {
                var gv = got.ToArray(); var wv = want.ToArray();
                for (int i = 0; i < n; i++)
                {
                    Assert.That(BitConverter.SingleToInt32Bits(gv[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(wv[i])), $"{what}[{i}] n={n}: fused {gv[i]:R}, composition {wv[i]:R} (l {lo[i]:R}, u {hi[i]:R})");
                    Assert.That(BitConverter.SingleToInt32Bits(refr[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(wv[i])), $"{what}[{i}] n={n}: reference {refr[i]:R}, composition {wv[i]:R}");
                }
            }
        }
    }

    /// <summary>How a bias broadcasts over an output, for IbpCombine: one run of dimensions or the composition.</summary>
    [TestCase(new[] { 256 }, new[] { 256 }, true, 256, 1)]
    [TestCase(new[] { 8, 1, 1 }, new[] { 8, 7, 7 }, true, 8, 49)]
    [TestCase(new[] { 1, 8, 1, 1 }, new[] { 8, 7, 7 }, false, 0, 0)]
    [TestCase(new[] { 8, 7, 7 }, new[] { 8, 7, 7 }, true, 392, 1)]
    [TestCase(new[] { 7, 1 }, new[] { 8, 7, 7 }, true, 7, 7)]
    [TestCase(new[] { 8, 1, 7 }, new[] { 8, 7, 7 }, false, 0, 0)]
    [TestCase(new[] { 1 }, new[] { 10 }, true, 1, 1)]
    [TestCase(new[] { 5 }, new[] { 10 }, false, 0, 0)]
    public void ChannelRunOfABias(int[] bias, int[] perExample, bool ok, int channels, int inner)
    {
        Assert.That(IbpFused.ChannelRun(bias, perExample, out int c, out int i), Is.EqualTo(ok));
        if (ok) Assert.That((c, i), Is.EqualTo((channels, inner)));
    }

    /// <summary>
    /// Where a gradient must reach the bounds (certified training), the fused relaxation records one backward kernel:
    /// the gradients of l and u through the upper slope and intercept equal those of ReluOp's element-wise composition
    /// (up to the order of a few float operations), and are zero for stable neurons.
    /// </summary>
    [Test]
    public void ReluRelaxationGradientsMatchTheComposition()
    {
        var g = new Generator(25);
        foreach (int n in new[] { 1, 17, 300 })
        {
            var lo = Tensor.Uniform([n], -1f, 1f, g).ToArray();
            var width = Tensor.Uniform([n], 0f, 1.5f, g).ToArray();
            var hi = lo.Select((v, i) => i % 5 == 2 ? -v : v + width[i]).Select((v, i) => Math.Max(v, lo[i])).ToArray();
            var wS = Tensor.Uniform([n], -2f, 2f, g); var wB = Tensor.Uniform([n], -2f, 2f, g);
            (float[] Gl, float[] Gu) Grads(bool fused)
            {
                var l = Tensor.FromSpan(lo, [n], null).RequiresGrad_();
                var u = Tensor.FromSpan(hi, [n], null).RequiresGrad_();
                Tensor aU, bU;
                if (fused)
                {
                    var parts = FusedBounds.ReluRelaxation(l, u)!;
                    (aU, bU) = (parts.UpSlope, parts.UpBias);
                }
                else
                {
                    var unstable = Tensor.Lt(l, 0f) * Tensor.Gt(u, 0f);
                    aU = Tensor.Where(unstable, u / Tensor.Where(unstable, u - l, 1f), Tensor.Ge(l, 0f));
                    bU = Tensor.Where(unstable, -aU * l, 0f);
                }
                ((aU * wS).Sum() + (bU * wB).Sum()).Backward();
                return (l.Grad!.ToArray(), u.Grad!.ToArray());
            }
            var (fl, fu) = Grads(true);
            var (cl, cu) = Grads(false);
            for (int i = 0; i < n; i++)
            {
                Assert.That(fl[i], Is.EqualTo(cl[i]).Within(1e-5f * (Math.Abs(cl[i]) + 1f)), $"n {n}: d/dl [{i}] (l {lo[i]}, u {hi[i]})");
                Assert.That(fu[i], Is.EqualTo(cu[i]).Within(1e-5f * (Math.Abs(cu[i]) + 1f)), $"n {n}: d/du [{i}] (l {lo[i]}, u {hi[i]})");
                if (!(lo[i] < 0 && hi[i] > 0)) Assert.That((fl[i], fu[i]), Is.EqualTo((0f, 0f)), "a stable neuron's relaxation is constant");
            }
        }
    }

    /// <summary>
    /// The fused signed row selection (CROWN's start on an affine layer's selected neurons) against the gather-and-sign
    /// composition it replaces and the scalar reference, bit for bit: both signs, zero codes, a channel divisor (a
    /// convolution's bias by output position), rows of one and of many columns; and it steps aside where the weights
    /// need a gradient.
    /// </summary>
    [Test]
    public void SelectRowsIsTheSignedGatherBitForBit()
    {
        var g = new Generator(22);
        foreach (var (xRows, cols, count, divisor) in new[] { (1, 1, 3, 1), (10, 37, 41, 1), (256, 1, 600, 1), (8, 1, 300, 49) })
        {
            var x = Tensor.Uniform([xRows, cols], -2f, 2f, g);
            var code = new int[count];
            for (int i = 0; i < count; i++)
            {
                int p = (i * 31 + 7) % (xRows * divisor);
                code[i] = i % 7 == 3 ? 0 : i % 2 == 0 ? p + 1 : -(p + 1);
            }
            (Tensor Rows, Tensor? Abs) fused;
            using (new NoGrad()) fused = FusedBounds.SelectRows(x, code, divisor, withAbs: true)!.Value;
            var channel = code.Select(c => c == 0 ? 0 : Math.Sign(c) * ((Math.Abs(c) - 1) / divisor + 1)).ToArray();
            var composed = BoundRules.SignedGather(x, channel).ToArray();
            var got = fused.Rows.ToArray();
            var (refRows, refAbs) = BoundsReference.SelectRows(x.ToArray(), cols, code, divisor);
            Assert.That(fused.Rows.Shape, Is.EqualTo(new[] { count, cols }));
            for (int i = 0; i < got.Length; i++)
            {
                string at = $"x {xRows}x{cols} divisor {divisor}, element {i} (code {code[i / cols]})";
                Assert.That(BitConverter.SingleToInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(refRows[i])), at + " against the reference");
                // A zero code gives +0; the composition's 0·x is a zero of x's sign.
                if (code[i / cols] == 0) Assert.That(got[i], Is.EqualTo(0f), at);
                else Assert.That(BitConverter.SingleToInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(composed[i])), at + " against the composition");
            }
            Assert.That(fused.Abs!.ToArray(), Is.EqualTo(refAbs), "abs");
            // Where the rows need a gradient, SignedRows composes (the same codes and divisor) and records it.
            var xg = x.Detach().RequiresGrad_();
            var (rows, abs) = BoundRules.SignedRows(xg, code, divisor, withAbs: true);
            Assert.That(rows.RequiresGrad, Is.True, "the composition records the gradient");
            Assert.That(rows.Detach().ToArray(), Is.EqualTo(got), $"x {xRows}x{cols} divisor {divisor}: composed rows");
            Assert.That(abs!.ToArray(), Is.EqualTo(refAbs), $"x {xRows}x{cols} divisor {divisor}: composed magnitudes");
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => { using (new NoGrad()) FusedBounds.SelectRows(Tensor.Zeros([3, 2]), [4], 1, false); },
            "a code past the rows");
        var w = Tensor.Zeros([3, 2]).RequiresGrad_();
        Assert.That(FusedBounds.SelectRows(w, [1, -2], 1, false), Is.Null, "weights that need a gradient take the composition");
    }

    /// <summary>
    /// The host-side range checks of the row codes and merge indices (vectorised minimum / maximum) accept exactly the
    /// valid range, ends included, and name the offending entry.
    /// </summary>
    [Test]
    public void RowCodesAndMergeIndicesAreRangeChecked()
    {
        using var noGrad = new NoGrad();
        var x = Tensor.Uniform([3, 2], -1f, 1f, new Generator(23));
        Assert.That(FusedBounds.SelectRows(x, [3, -3, 0, 1, -1], 1, false), Is.Not.Null);
        Assert.That(FusedBounds.SelectRows(x, [6, -6, 5], 2, false), Is.Not.Null, "divisor 2: codes up to ±6 select rows 0..2");
        foreach (var (code, divisor) in new[] { (4, 1), (-4, 1), (int.MinValue, 1), (7, 2), (-7, 2) })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => FusedBounds.SelectRows(x, [1, code, 2], divisor, false), $"code {code}, divisor {divisor}");
            Assert.That(e!.Message, Does.Contain(code.ToString()), "the message names the code");
        }
        var ibp = Tensor.Zeros([4]);
        var rows = Tensor.Uniform([3], -1f, 1f, new Generator(24));
        Assert.That(FusedBounds.Merge(ibp, ibp + 1f, rows, [-1, 0, 2, 1, 2, -1, 0, 1]), Is.Not.Null);
        Assert.Throws<ArgumentOutOfRangeException>(() => FusedBounds.Merge(ibp, ibp + 1f, rows, [-1, 0, 3, 1, 2, -1, 0, 1]), "index = row count");
        Assert.Throws<ArgumentOutOfRangeException>(() => FusedBounds.Merge(ibp, ibp + 1f, rows, [-1, 0, 2, 1, 2, -2, 0, 1]), "index -2");
    }

    /// <summary>
    /// The refinement's mask compaction (a vector compare per eight entries, then one step per selected entry) lists
    /// exactly the nonzero and NaN entries in order, for lengths with and without a tail and masks dense and sparse.
    /// </summary>
    [Test]
    public void MaskCompactionListsTheNonzeroEntriesInOrder()
    {
        var rng = new Random(26);
        foreach (int n in new[] { 0, 1, 7, 8, 9, 64, 100, 1571 })
            foreach (double density in new[] { 0.0, 0.03, 0.5, 1.0 })
            {
                var m = new float[n];
                for (int j = 0; j < n; j++) m[j] = rng.NextDouble() < density ? (j % 17 == 3 ? float.NaN : 1f) : (j % 5 == 1 ? -0f : 0f);
                var want = Enumerable.Range(0, n).Where(j => m[j] != 0f || float.IsNaN(m[j])).ToArray();
                var pos = new int[n];
                int k = BoundPropagator.Compact(m, pos);
                Assert.That(pos[..k], Is.EqualTo(want), $"n {n}, density {density}");
            }
    }

    /// <summary>
    /// With accumulate, both row kernels add their results into what the outputs hold: exactly the float sum of the
    /// held values and the results of a plain (overwriting) call, as the tensor add they replace would round.
    /// </summary>
    [Test]
    public void RowKernelsAccumulateAsOneFloatAdd()
    {
        var g = new Generator(21);
        foreach (var (b, r, n) in new[] { (1, 1, 1), (2, 3, 17), (3, 5, 300) })
        {
            var a = Tensor.Uniform([b, r, n], -1, 1, g);
            var ls = Tensor.Uniform([b, 1, n], 0, 1, g); var us = Tensor.Uniform([b, 1, n], 0, 1, g);
            var ub = Tensor.Uniform([b, 1, n], -1, 1, g);
            var c = Tensor.Uniform([b, n], -1, 1, g); var rad = Tensor.Uniform([b, n], 0, 0.2f, g);
            var held1 = Tensor.Uniform([b, r], -5, 5, g); var held2 = Tensor.Uniform([b, r], 0, 5, g);
            // Plain calls give the results alone.
            var y = Tensor.Empty([b, r, n]); var bias = Tensor.Empty([b, r]); var mag = Tensor.Empty([b, r]);
            a.K.BoundRelax(a.Buf, ls.Buf, 1, default, 1, us.Buf, 1, ub.Buf, 1, y.Buf, bias.Buf, mag.Buf, b, r, n, false);
            var value = Tensor.Empty([b, r]); var dmag = Tensor.Empty([b, r]);
            a.K.BoundDot(a.Buf, c.Buf, n, rad.Buf, n, 0f, value.Buf, dmag.Buf, b, r, n, false);
            // Accumulating calls into copies of the held values.
            var accB = held1.Clone(); var accM = held2.Clone();
            a.K.BoundRelax(a.Buf, ls.Buf, 1, default, 1, us.Buf, 1, ub.Buf, 1, y.Buf, accB.Buf, accM.Buf, b, r, n, true);
            var accV = held1.Clone(); var accDm = held2.Clone();
            a.K.BoundDot(a.Buf, c.Buf, n, rad.Buf, n, 0f, accV.Buf, accDm.Buf, b, r, n, true);
            foreach (var (got, want, what) in new[] { (accB, held1 + bias, "relax bias"), (accM, held2 + mag, "relax mag"), (accV, held1 + value, "dot value"), (accDm, held2 + dmag, "dot mag") })
                Assert.That(got.ToArray(), Is.EqualTo(want.ToArray()), $"{what} ({b}, {r}, {n})");
        }
    }

    [Test]
    public void RelaxMatchesReference()
    {
        var g = new Generator(11);
        foreach (var (b, r, n) in new[] { (1, 1, 1), (2, 3, 15), (1, 5, 17), (3, 2, 300), (2, 4, 531) })
            foreach (bool perRow in new[] { false, true })
                foreach (bool withBias in new[] { false, true })
                {
                    var a = Tensor.Uniform([b, r, n], -1, 1, g);
                    int sr = perRow ? r : 1;
                    var ls = Tensor.Uniform([b, sr, n], 0, 1, g); var us = Tensor.Uniform([b, 1, n], 0, 1, g);
                    var lb = withBias ? Tensor.Uniform([b, 1, n], -1, 1, g) : null;
                    var ub = withBias ? Tensor.Uniform([b, sr, n], -1, 1, g) : null;
                    var y = Tensor.Empty([b, r, n]); var bias = Tensor.Empty([b, r]); var mag = Tensor.Empty([b, r]);
                    a.K.BoundRelax(a.Buf, ls.Buf, sr, lb?.Buf ?? default, 1, us.Buf, 1, ub?.Buf ?? default, sr, y.Buf,
                                   withBias ? bias.Buf : default, withBias ? mag.Buf : default, b, r, n, false);
                    var want = BoundsReference.Relax(a.ToArray(), ls.ToArray(), sr, lb?.ToArray(), 1, us.ToArray(), 1, ub?.ToArray(), sr, b, r, n);
                    string what = $"relax b={b} r={r} n={n} perRow={perRow} bias={withBias}";
                    Close(y.ToArray(), want.Y, want.Y, 1e-6, what + " y");
                    if (!withBias) continue;
                    Close(bias.ToArray(), want.Bias, want.Mag, 1e-6, what + " bias");
                    Close(mag.ToArray(), want.Mag, want.Mag, 1e-6, what + " mag");
                }
    }

    [Test]
    public void DotMatchesReference()
    {
        var g = new Generator(12);
        foreach (var (b, r, n) in new[] { (1, 1, 1), (2, 3, 15), (1, 5, 17), (3, 2, 300), (2, 4, 1031) })
            foreach (bool sharedC in new[] { false, true })
                foreach (bool withRadius in new[] { false, true })
                {
                    var a = Tensor.Uniform([b, r, n], -1, 1, g);
                    var c = Tensor.Uniform([sharedC ? 1 : b, n], -2, 2, g);
                    var rad = withRadius ? Tensor.Uniform([b, n], 0, 0.1f, g) : null;
                    var value = Tensor.Empty([b, r]); var mag = Tensor.Empty([b, r]);
                    a.K.BoundDot(a.Buf, c.Buf, sharedC ? 0 : n, rad?.Buf ?? default, n, 0.03f, value.Buf, mag.Buf, b, r, n, false);
                    var want = BoundsReference.Dot(a.ToArray(), c.ToArray(), sharedC ? 0 : n, rad?.ToArray(), n, 0.03f, b, r, n);
                    string what = $"dot b={b} r={r} n={n} shared={sharedC} radius={withRadius}";
                    Close(value.ToArray(), want.Value, want.Mag, 1e-6, what + " value");
                    Close(mag.ToArray(), want.Mag, want.Mag, 1e-6, what + " mag");
                }
    }

    [Test]
    public void FusedRelaxIsDifferentiable()
    {
        var g = new Generator(13);
        int b = 2, r = 3;
        var a = AwayFromZero([b, r, 2, 3], g);
        var aL = Tensor.Uniform([b, r, 2, 3], 0, 1, g);
        var aU = Tensor.Uniform([b, 2, 3], 0, 1, g);
        var bL = Tensor.Uniform([b, 2, 3], -1, 1, g);
        var bU = Tensor.Uniform([b, r, 2, 3], -1, 1, g);
        var w = Tensor.Uniform([b, r, 2, 3], -1, 1, g);
        GradCheck.Assert(t =>
        {
            var f = FusedBounds.Relax(t[0], t[1], t[3], t[2], t[4])!.Value;
            return (f.Y * w).Sum() + (f.Bias! * Tensor.Arange(1f, 1f + b * r).Reshape(b, r)).Sum();
        }, [a, aL, aU, bL, bU]);
        var plain = FusedBounds.Relax(a, aL, null, aU, null)!.Value;
        Assert.That(plain.Bias, Is.Null);
        var pos = Tensor.Ge(a, 0f);
        Assert.That((plain.Y - a * Tensor.Where(pos, aL, aU.Unsqueeze(1))).Abs().Max().Item(), Is.EqualTo(0f));
    }

    [Test]
    public void FusedDotIsDifferentiable()
    {
        var g = new Generator(14);
        int b = 2, r = 3;
        var a = AwayFromZero([b, r, 7], g);
        var c = Tensor.Uniform([b, 7], -1, 1, g);
        var shared = Tensor.Uniform([7], -1, 1, g);
        var rad = Tensor.Uniform([b, 7], 0.1f, 0.5f, g);
        GradCheck.Assert(t => FusedBounds.Dot(t[0], t[1], t[2], 0f)!.Value.Value.Sum(), [a, c, rad]);
        GradCheck.Assert(t => FusedBounds.Dot(t[0], t[1], null, 0.25f)!.Value.Value.Sum(), [a, shared]);
        Assert.That(FusedBounds.Dot(a, Tensor.Zeros(5), null, 0f), Is.Null);
    }

    [Test]
    public void ConvSelectMatchesReference()
    {
        var g = new Generator(15);
        foreach (var (cin, cout, h, w, k, stride, pad, dil, groups) in new[] { (1, 3, 6, 6, 3, 1, 1, 1, 1), (4, 6, 7, 5, 4, 2, 1, 1, 2), (2, 2, 9, 8, 3, 2, 2, 2, 1) })
        {
            var geo = new Conv2dGeometry(1, cin, h, w, cout, k, k, stride, stride, pad, pad, dil, dil, groups);
            int outN = cout * geo.OutH * geo.OutW, count = 9;
            var wt = Tensor.Uniform([cout, cin / groups, k, k], -1, 1, g);
            var rng = new Random(3);
            var code = Enumerable.Range(0, count).Select(i => i % 4 == 3 ? 0f : (rng.Next(2) * 2 - 1) * (rng.Next(outN) + 1f)).ToArray();
            code[0] = outN; code[1] = -1;
            var y = Tensor.Empty([count, cin, h, w]);
            var batchGeo = new Conv2dGeometry(count, cin, h, w, cout, k, k, stride, stride, pad, pad, dil, dil, groups);
            y.K.BoundConvSelect(wt.Buf, Tensor.FromArray(code, count).Buf, y.Buf, count, batchGeo);
            Assert.That(y.ToArray(), Is.EqualTo(BoundsReference.ConvSelect(wt.ToArray(), code, count, batchGeo)), $"conv select {cin}->{cout} k{k} s{stride} p{pad} d{dil} g{groups}");
        }
    }

    [Test]
    public void ConvTransposeMatchesReference()
    {
        var g = new Generator(16);
        foreach (var (n, cin, cout, h, w, k, stride, pad, dil, groups) in new[]
                 { (17, 1, 3, 6, 6, 3, 1, 1, 1, 1), (33, 4, 6, 7, 5, 4, 2, 1, 1, 2), (5, 2, 2, 9, 8, 3, 2, 2, 2, 1), (16, 3, 2, 5, 5, 1, 1, 0, 1, 1) })
        {
            var geo = new Conv2dGeometry(n, cin, h, w, cout, k, k, stride, stride, pad, pad, dil, dil, groups);
            var a = Tensor.Uniform([n, cout, geo.OutH, geo.OutW], -1, 1, g);
            // Zero images and zero pixels exercise the skipped all-zero lanes.
            a = a * Tensor.Gt(Tensor.Uniform(a.Shape, 0, 1, g), 0.3f);
            var wt = Tensor.Uniform([cout, cin / groups, k, k], -1, 1, g);
            var dx = Tensor.Empty([n, cin, h, w]);
            dx.K.BoundConvTranspose(a.Buf, wt.Buf, dx.Buf, geo);
            var want = ConvReference.Conv2dBackwardInput(a.ToArray(), wt.ToArray(), geo);
            var got = dx.ToArray();
            for (int i = 0; i < want.Length; i++)
                Assert.That(got[i], Is.EqualTo(want[i]).Within(1e-5 * (1 + Math.Abs(want[i]))), $"conv transpose n={n} {cin}->{cout} k{k} s{stride} g{groups} [{i}]");
        }
    }
}
