using Engine.Autograd;
using Engine.Bounds;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.BoundProp;

/// <summary>
/// The CPU fusions of the certified-training path (IbpFused, the fused CROWN relaxation) against the tensor-op
/// compositions they replace: the same values bit for bit, and the same gradients.
/// </summary>
public class FusedTrainingTests
{
    private static void Bitwise(float[] got, float[] want, string what)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), what);
        for (int i = 0; i < got.Length; i++)
            Assert.That(BitConverter.SingleToInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(want[i])), $"{what} [{i}]: {got[i]} vs {want[i]}");
    }

    private static void Close(float[] got, float[] want, double tol, string what)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), what);
        for (int i = 0; i < got.Length; i++)
            Assert.That(got[i], Is.EqualTo(want[i]).Within(tol * (1 + Math.Abs(want[i]))), $"{what} [{i}]");
    }

    /// <summary>An interval [l, u] with l ≤ u, both leaves that require grad.</summary>
    private static (Tensor L, Tensor U) Box(int[] shape, Generator g)
    {
        var c = Tensor.Uniform(shape, -2f, 2f, g);
        var r = Tensor.Uniform(shape, 0f, 0.5f, g);
        return ((c - r).Detach().RequiresGrad_(), (c + r).Detach().RequiresGrad_());
    }

    [Test]
    public void CenterMarginMatchesTheComposition([Values(1, 37, 70000)] int n)
    {
        var g = new Generator(3);
        var (l, u) = Box([n], g);
        float rho = 1e-5f;
        var (c, m) = IbpFused.CenterMargin(l, u, rho);
        var cw = (l + u) * 0.5f;
        var mw = (u - l) * 0.5f * (1 + rho) + cw.Detach().Abs() * rho;
        Bitwise(c.ToArray(), cw.ToArray(), "center");
        Bitwise(m.ToArray(), mw.ToArray(), "margin radius");

        var wc = Tensor.Uniform([n], -1f, 1f, g); var wm = Tensor.Uniform([n], -1f, 1f, g);
        (c * wc + m * wm).Sum().Backward();
        var (gl, gu) = (l.Grad!.ToArray(), u.Grad!.ToArray());
        l.Grad = null; u.Grad = null;
        (cw * wc + mw * wm).Sum().Backward();
        Close(gl, l.Grad!.ToArray(), 1e-6, "d/dl");
        Close(gu, u.Grad!.ToArray(), 1e-6, "d/du");

        // Only one output used: the other's gradient is zero, not missing.
        l.Grad = null; u.Grad = null;
        var (c2, _) = IbpFused.CenterMargin(l, u, rho);
        c2.Sum().Backward();
        Assert.That(l.Grad!.ToArray(), Is.All.EqualTo(0.5f));
        Assert.That(u.Grad!.ToArray(), Is.All.EqualTo(0.5f));
    }

    [Test]
    public void ReluMatchesTheCompositionAndPreparesTheNextCenter([Values(1, 37, 70000)] int n)
    {
        // Boxes straddling 0, wholly below and wholly above: every relu case, and exact zeros (relu'(0) = 0).
        var g = new Generator(5);
        var (l0, u0) = Box([n], g);
        var (la, ua) = (l0.ToArray(), u0.ToArray());
        if (n > 2) { la[0] = 0f; ua[0] = 0f; la[1] = -1f; ua[1] = 0f; }
        var (l, u) = (Tensor.FromArray(la, n).RequiresGrad_(), Tensor.FromArray(ua, n).RequiresGrad_());
        float rho = 1e-5f;
        var iv = IbpFused.Relu(new Interval(l, u), rho);
        var lw = l.Relu(); var uw = u.Relu();
        var (cw, mw) = IbpFused.CenterMargin(lw, uw, rho);
        Bitwise(iv.Lower.ToArray(), lw.ToArray(), "relu(l)");
        Bitwise(iv.Upper.ToArray(), uw.ToArray(), "relu(u)");
        Assert.That(iv.Prepared, Is.Not.Null);
        Assert.That(iv.Prepared!.Rho, Is.EqualTo(rho));
        Bitwise(iv.Prepared.C.ToArray(), cw.ToArray(), "prepared center");
        Bitwise(iv.Prepared.M.ToArray(), mw.ToArray(), "prepared margin radius");

        // Gradients through the prepared (c, m) alone (the training path), and through the bounds as well.
        var wc = Tensor.Uniform([n], -1f, 1f, g); var wm = Tensor.Uniform([n], -1f, 1f, g); var wl = Tensor.Uniform([n], -1f, 1f, g);
        foreach (bool bounds in new[] { false, true })
        {
            l.Grad = null; u.Grad = null;
            var f = IbpFused.Relu(new Interval(l, u), rho);
            var loss = f.Prepared!.C * wc + f.Prepared.M * wm;
            (bounds ? loss + f.Lower * wl : loss).Sum().Backward();
            var (gl, gu) = (l.Grad!.ToArray(), u.Grad!.ToArray());
            l.Grad = null; u.Grad = null;
            var lr = l.Relu(); var ur = u.Relu();
            var (c2, m2) = IbpFused.CenterMargin(lr, ur, rho);
            var want = c2 * wc + m2 * wm;
            (bounds ? want + lr * wl : want).Sum().Backward();
            Close(gl, l.Grad!.ToArray(), 1e-6, $"d/dl (bounds used: {bounds})");
            Close(gu, u.Grad!.ToArray(), 1e-6, $"d/du (bounds used: {bounds})");
        }
    }

    [Test]
    public void ReluAfterCombineSendsItsGradientToCenterAndRadius([Values(false, true)] bool boundsUsedToo, [Values(false, true)] bool throughCombine,
                                                                 [Values(false, true)] bool lazy)
    {
        // Combine → Relu (an IBP affine layer then its ReLU): the ReLU's gradient goes straight to (center, rad); the
        // same values as through Combine's own rule, also when the pre-activation bounds have another use.
        var g = new Generator(7);
        int b = 3, ch = 4, pix = 37;
        var center = Tensor.Uniform([b, ch, pix], -1f, 1f, g).RequiresGrad_();
        var rad = Tensor.Uniform([b, ch, pix], 0f, 0.5f, g).RequiresGrad_();
        var extra = Tensor.Uniform([ch, pix], 0f, 1e-3f, g);
        var wc = Tensor.Uniform([b, ch, pix], -1f, 1f, g); var wm = Tensor.Uniform([b, ch, pix], -1f, 1f, g);
        var wl = Tensor.Uniform([b, ch, pix], -1f, 1f, g);
        float rho = 1e-5f;

        // lazy: the IBP-only affine output, whose bounds are made only when read; the ReLU then reads center and rad.
        var pre = lazy ? IbpFused.CombineLazy(center, rad, extra) : IbpFused.Combine(center, rad, extra);
        var iv = IbpFused.Relu(pre, rho, throughCombine);
        Assert.That(pre.IsMaterialized, Is.EqualTo(!lazy || !throughCombine), "pre-activation bounds written");
        var eager = IbpFused.Relu(IbpFused.Combine(center.Detach(), rad.Detach(), extra), rho);
        Bitwise(iv.Prepared!.C.ToArray(), eager.Prepared!.C.ToArray(), "prepared center");
        Bitwise(iv.Prepared.M.ToArray(), eager.Prepared.M.ToArray(), "prepared margin radius");
        var loss = iv.Prepared!.C * wc + iv.Prepared.M * wm;
        (boundsUsedToo ? loss + pre.Lower * wl : loss).Sum().Backward();
        var (gc, gr) = (center.Grad!.ToArray(), rad.Grad!.ToArray());
        // Read after the fact, the ReLU's bounds are those of the eager rule.
        Bitwise(iv.Lower.ToArray(), eager.Lower.ToArray(), "relu lower");
        Bitwise(iv.Upper.ToArray(), eager.Upper.ToArray(), "relu upper");

        center.Grad = null; rad.Grad = null;
        var r2 = rad + extra;
        var (lo, hi) = (center - r2, center + r2);
        var (c2, m2) = IbpFused.CenterMargin(lo.Relu(), hi.Relu(), rho);
        var want = c2 * wc + m2 * wm;
        (boundsUsedToo ? want + lo * wl : want).Sum().Backward();
        Close(gc, center.Grad!.ToArray(), 1e-6, "d/dcenter");
        Close(gr, rad.Grad!.ToArray(), 1e-6, "d/drad");
    }

    [Test]
    public void PreparedCenterFollowsShapeOnlyMaps()
    {
        // ReLU → Flatten → Linear: the flattened interval still carries (c, m), reshaped like its bounds.
        var g = new Generator(6);
        var (l, u) = Box([2, 3, 4], g);
        var iv = IbpFused.Relu(new Interval(l, u), 1e-5f).MapShape(t => t.Reshape(2, 12));
        Assert.That(iv.Prepared, Is.Not.Null);
        Assert.That(iv.Prepared!.C.Dims, Is.EqualTo(new[] { 2, 12 }));
        var (c, m) = IbpFused.CenterMargin(iv.Lower, iv.Upper, 1e-5f);
        Bitwise(iv.Prepared.C.ToArray(), c.ToArray(), "center after flatten");
        Bitwise(iv.Prepared.M.ToArray(), m.ToArray(), "margin radius after flatten");
    }

    [Test]
    public void CombineMatchesTheComposition([Values(false, true)] bool batchedMargin)
    {
        var g = new Generator(4);
        int b = 3, ch = 5, pix = 7;
        var center = Tensor.Uniform([b, ch, pix], -1f, 1f, g).RequiresGrad_();
        var rad = Tensor.Uniform([b, ch, pix], 0f, 1f, g).RequiresGrad_();
        var extra = batchedMargin ? Tensor.Uniform([b, ch, pix], 0f, 1e-3f, g) : Tensor.Uniform([ch, pix], 0f, 1e-3f, g);
        var iv = IbpFused.Combine(center, rad, extra);
        var r2 = rad + extra;
        Bitwise(iv.Lower.ToArray(), (center - r2).ToArray(), "lower");
        Bitwise(iv.Upper.ToArray(), (center + r2).ToArray(), "upper");

        var wl = Tensor.Uniform([b, ch, pix], -1f, 1f, g); var wu = Tensor.Uniform([b, ch, pix], -1f, 1f, g);
        (iv.Lower * wl + iv.Upper * wu).Sum().Backward();
        var (gc, gr) = (center.Grad!.ToArray(), rad.Grad!.ToArray());
        center.Grad = null; rad.Grad = null;
        ((center - r2) * wl + (center + r2) * wu).Sum().Backward();
        Close(gc, center.Grad!.ToArray(), 1e-6, "d/dcenter");
        Close(gr, rad.Grad!.ToArray(), 1e-6, "d/drad");

        // Lower only (ComputeUpper = false in training): d/drad = −d/dlower.
        center.Grad = null; rad.Grad = null;
        var lo = IbpFused.Combine(center, rad, extra).Lower;
        (lo * wl).Sum().Backward();
        Bitwise(rad.Grad!.ToArray(), (-wl).ToArray(), "lower only: d/drad");
        Bitwise(center.Grad!.ToArray(), wl.ToArray(), "lower only: d/dcenter");
    }

    [Test]
    public void MultiOutputNodeAccumulatesEveryUseOfEveryOutput()
    {
        // y0 = 2x, y1 = 3x as one node; loss uses y0 twice and y1 once through another op.
        var x = Tensor.FromArray([1f, -2f, 4f], 3).RequiresGrad_();
        var y0 = (x.Detach() * 2f); var y1 = (x.Detach() * 3f);
        int calls = 0;
        GradRecorder.RecordMulti([y0, y1], [x], (gs, ins) =>
        {
            calls++;
            var g = Tensor.Zeros([3]);
            if (gs[0] != null) g = g + gs[0]! * 2f;
            if (gs[1] != null) g = g + gs[1]! * 3f;
            return [g];
        }, "TwoOutputs");
        var w = Tensor.FromArray([1f, 2f, 3f], 3);
        (y0 * w + y0 + (y1 * y1).Sum() * 0.5f).Sum().Backward();
        Assert.That(calls, Is.EqualTo(1), "the node's rule runs once");
        // d/dx = 2(w + 1) + 3·y1 (from ½ Σ y1², times 3 elements of the broadcast sum) ... computed directly:
        var y1v = new[] { 3f, -6f, 12f };
        var want = new float[3];
        for (int i = 0; i < 3; i++) want[i] = 2f * (w.ToArray()[i] + 1f) + 3f * (3f * y1v[i]);
        Close(x.Grad!.ToArray(), want, 1e-6, "dx");
    }

    [Test]
    public void IbpTrainingGradientMatchesFiniteDifferences()
    {
        // The fused graph path's gradient of a loss on IBP margins, in one random direction of the first layer's
        // weights, against central differences (the emulated-device tests compare it with the unfused rule bitwise).
        var g = new Generator(7);
        var model = new Engine.Nn.Sequential(new Engine.Nn.Conv2d(1, 4, 4, 2, 1, generator: g), new Engine.Nn.ReLU(),
                                             new Engine.Nn.Flatten(), new Engine.Nn.Linear(4 * 7 * 7, 20, generator: g), new Engine.Nn.ReLU(),
                                             new Engine.Nn.Linear(20, 10, generator: g));
        var x = Tensor.Uniform([5, 1, 14, 14], 0f, 1f, g);
        var spec = Spec.Margins([0, 3, 5, 7, 9], 10);
        var opts = new BoundOptions { ComputeUpper = false };
        double Loss() => (-Engine.Bounds.Bounds.Compute(model, x, Perturbation.LInf(0.05f, 0f, 1f), BoundMethod.Ibp, spec, opts).Lower).Exp().Sum().Item();
        var w = model.Parameters().First();
        var loss = (-Engine.Bounds.Bounds.Compute(model, x, Perturbation.LInf(0.05f, 0f, 1f), BoundMethod.Ibp, spec, opts).Lower).Exp().Sum();
        loss.Backward();
        var grad = w.Grad!.ToArray();
        var dir = Tensor.Uniform(w.Shape, -1f, 1f, g);
        double analytic = 0; var dv = dir.ToArray();
        for (int i = 0; i < grad.Length; i++) analytic += grad[i] * dv[i];
        var w0 = w.Detach().Clone();
        double h = 1e-4;
        using (new NoGrad())
        {
            w.CopyFrom(w0 + dir * (float)h); double up = Loss();
            w.CopyFrom(w0 - dir * (float)h); double dn = Loss();
            w.CopyFrom(w0);
            double numeric = (up - dn) / (2 * h);
            Assert.That(analytic, Is.EqualTo(numeric).Within(2e-2 * (Math.Abs(numeric) + 1e-3)));
        }
    }

    [Test]
    public void RelaxAndDotGradientsMatchTheComposition([Values(false, true)] bool perRow)
    {
        var g = new Generator(9);
        int b = 3, r = 4, n = 37;
        var a = Tensor.Uniform([b, r, n], -1f, 1f, g).RequiresGrad_();
        int sr = perRow ? r : 1;
        var aL = Tensor.Uniform([b, sr, n], 0f, 1f, g).RequiresGrad_();
        var aU = Tensor.Uniform([b, 1, n], 0f, 1f, g).RequiresGrad_();
        var bU = Tensor.Uniform([b, sr, n], -1f, 1f, g).RequiresGrad_();
        var c = Tensor.Uniform([b, n], -1f, 1f, g);
        var wy = Tensor.Uniform([b, r, n], -1f, 1f, g); var wb = Tensor.Uniform([b, r], -1f, 1f, g);
        var fused = FusedBounds.Relax(a, aL, null, aU, bU)!.Value;
        var dot = FusedBounds.Dot(fused.Y, c, null, 0.3f)!.Value;
        ((fused.Y * wy).Sum() + (fused.Bias! * wb).Sum() + dot.Value.Sum()).Backward();
        var got = new[] { a, aL, aU, bU }.Select(t => t.Grad!.ToArray()).ToArray();
        foreach (var t in new[] { a, aL, aU, bU }) t.Grad = null;

        var pos = Tensor.Ge(a.Detach(), 0f);
        var y = a * Tensor.Where(pos, aL, aU);
        var bias = (a * Tensor.Where(pos, Tensor.Zeros([1]), bU)).Sum(2);
        var value = (y * c.Unsqueeze(1)).Sum(2) - y.Abs().Sum(2) * 0.3f;
        ((y * wy).Sum() + (bias * wb).Sum() + value.Sum()).Backward();
        var names = new[] { "a", "lower slope", "upper slope", "upper bias" };
        var want = new[] { a, aL, aU, bU };
        for (int i = 0; i < 4; i++) Close(got[i], want[i].Grad!.ToArray(), 1e-5, names[i]);
    }
}
