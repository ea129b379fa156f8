using Engine.Autograd;
using Engine.Bounds;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.BoundProp;

/// <summary>
/// The fused IBP spec fold (<see cref="IbpSpecFold"/>) against its formula in double and against the composition it
/// replaces in Bounds.Ibp (C·W, the batched affine rule, the combine): values to float rounding, the same gradients,
/// and sound end to end.
/// </summary>
[NonParallelizable]
public class IbpSpecFoldTests
{
    /// <summary>A spec [B, S, K]: margin rows e_y − e_j, or dense random rows (every class weighted).</summary>
    private static Tensor MakeSpec(int b, int k, bool margins, Generator g)
        => margins ? Spec.Margins(Enumerable.Range(0, b).Select(i => (i * 7 + 3) % k).ToArray(), k).C : Tensor.Uniform([b, k - 1, k], -1f, 1f, g);

    [Test]
    public void MatchesItsFormulaInDoubleAndTheCompositionsGradients([Values(true, false)] bool margins, [Values(true, false)] bool withBias,
                                                                   [Values(100, 7, 33)] int features)
    {
        var g = new Generator((ulong)(11 + features));
        int b = 6, k = 10;
        var c = Tensor.Uniform([b, features], -2f, 2f, g).RequiresGrad_();
        var m = Tensor.Uniform([b, features], 0f, 0.5f, g).RequiresGrad_();
        var w = Tensor.Uniform([k, features], -1f, 1f, g).RequiresGrad_();
        var bias = withBias ? Tensor.Uniform([k], -1f, 1f, g).RequiresGrad_() : null;
        var spec = MakeSpec(b, k, margins, g);
        // Margins far above the tolerance, so a dropped or misplaced margin term shows.
        float rho = 1e-3f, alpha = 1e-2f;
        Assert.That(IbpSpecFold.Applies(c, m, w, bias, spec), Is.True);
        var (lower, upper) = IbpSpecFold.Compute(c, m, w, bias, spec, rho, alpha);
        int s = spec.Dims[1];

        // The formula in double: d = C·W, center = d·c + C·bias, half = |d|·m + ρ·|C|·|bias| + α.
        float[] cv = c.ToArray(), mv = m.ToArray(), wv = w.ToArray(), sv = spec.ToArray(), bv = bias?.ToArray() ?? new float[k];
        float[] lo = lower.ToArray(), up = upper.ToArray();
        for (int i = 0; i < b; i++)
            for (int r = 0; r < s; r++)
            {
                double center = 0, half = 0, mag = 0, bm = 0;
                for (int f = 0; f < features; f++)
                {
                    double d = 0, dm = 0;
                    for (int q = 0; q < k; q++) { d += sv[(i * s + r) * k + q] * (double)wv[q * features + f]; dm += Math.Abs(sv[(i * s + r) * k + q] * (double)wv[q * features + f]); }
                    center += d * cv[i * features + f];
                    half += Math.Abs(d) * mv[i * features + f];
                    mag += dm * (Math.Abs(cv[i * features + f]) + mv[i * features + f]);
                }
                for (int q = 0; q < k; q++) { center += sv[(i * s + r) * k + q] * (double)bv[q]; bm += Math.Abs(sv[(i * s + r) * k + q] * (double)bv[q]); }
                half += withBias ? bm * rho + alpha : alpha;
                // Float sums of a few hundred terms: a few hundred units of roundoff of Σ|terms| at most.
                double tol = 1e-5 * (mag + bm) + 1e-6;
                Assert.That(lo[i * s + r], Is.EqualTo(center - half).Within(tol), $"lower [{i}, {r}]");
                Assert.That(up[i * s + r], Is.EqualTo(center + half).Within(tol), $"upper [{i}, {r}]");
            }

        // Gradients against the composition Bounds.Ibp runs without the fusion.
        var gl = Tensor.Uniform([b, s], -1f, 1f, g);
        var gu = Tensor.Uniform([b, s], -1f, 1f, g);
        Tensor[] leaves = bias == null ? [c, m, w] : [c, m, w, bias];
        (lower * gl + upper * gu).Sum().Backward();
        var fused = leaves.Select(t => t.Grad!.ToArray()).ToArray();
        foreach (var t in leaves) t.Grad = null;
        var cw = Tensor.Matmul(spec, w);
        var centerC = Tensor.Matmul(cw, c.Unsqueeze(-1)).Squeeze(-1);
        if (bias != null) centerC = centerC + Tensor.Matmul(spec, bias.Unsqueeze(-1)).Squeeze(-1);
        var rad = Tensor.Matmul(cw.Abs(), m.Unsqueeze(-1)).Squeeze(-1);
        var extra = bias == null ? Tensor.Full([b, s], alpha) : Tensor.Matmul(spec.Abs(), bias.Detach().Abs().Unsqueeze(-1)).Squeeze(-1) * rho + alpha;
        var half2 = rad + extra;
        ((centerC - half2) * gl + (centerC + half2) * gu).Sum().Backward();
        for (int i = 0; i < leaves.Length; i++)
        {
            var want = leaves[i].Grad!.ToArray();
            for (int j = 0; j < want.Length; j++)
                Assert.That(fused[i][j], Is.EqualTo(want[j]).Within(1e-4 * (1 + Math.Abs(want[j]))), $"gradient of input {i} [{j}]");
        }
    }

    [Test]
    public void OnlyTheLowerBoundUsed()
    {
        // Training reads the lower bound only: the upper bound's gradient is absent, not zero-filled by the caller.
        var g = new Generator(3);
        var c = Tensor.Uniform([4, 20], -1f, 1f, g).RequiresGrad_();
        var m = Tensor.Uniform([4, 20], 0f, 1f, g).RequiresGrad_();
        var w = Tensor.Uniform([5, 20], -1f, 1f, g).RequiresGrad_();
        var spec = Spec.Margins([0, 1, 2, 3], 5).C;
        var (lower, _) = IbpSpecFold.Compute(c, m, w, null, spec, 1e-5f, 0f);
        lower.Sum().Backward();
        // d lower / d m = −Σ_s |d_s| ≤ 0, and strictly below 0 where some d_s ≠ 0.
        Assert.That(m.Grad!.ToArray(), Is.All.LessThanOrEqualTo(0f));
        Assert.That(m.Grad!.ToArray().Any(v => v < 0f), Is.True);
        Assert.That(c.Grad, Is.Not.Null);
        Assert.That(w.Grad, Is.Not.Null);
    }

    [Test]
    public void BoundsComputeGivesTheCompositionsBoundsAndGradients([Values("mlp", "cnn")] string kind)
    {
        var g = new Generator(kind == "mlp" ? 21UL : 22UL);
        Engine.Nn.Module model = kind == "mlp"
            ? new Engine.Nn.Sequential(new Engine.Nn.Flatten(), new Engine.Nn.Linear(49, 30, generator: g), new Engine.Nn.ReLU(), new Engine.Nn.Linear(30, 10, generator: g))
            : new Engine.Nn.Sequential(new Engine.Nn.Conv2d(1, 4, 4, 2, 1, generator: g), new Engine.Nn.ReLU(), new Engine.Nn.Flatten(),
                                       new Engine.Nn.Linear(4 * 3 * 3, 24, generator: g), new Engine.Nn.ReLU(), new Engine.Nn.Linear(24, 10, generator: g));
        var x = Tensor.Uniform([7, 1, 7, 7], 0f, 1f, g);
        int[] labels = [0, 3, 5, 7, 9, 1, 2];
        var spec = Spec.Margins(labels, 10);
        var p = Perturbation.LInf(0.05f, 0f, 1f);
        (float[] Lower, float[] Upper, float[][] Grads) Run(bool fused, BoundOptions opts)
        {
            bool saved = Engine.Bounds.Bounds.UseFusedSpecFold;
            Engine.Bounds.Bounds.UseFusedSpecFold = fused;
            try
            {
                foreach (var t in model.Parameters()) t.Grad = null;
                var r = Engine.Bounds.Bounds.Compute(model, x, p, BoundMethod.Ibp, spec, opts);
                (-r.Lower).Exp().Sum().Backward();
                return (r.Lower.ToArray(), r.Upper.ToArray(), model.Parameters().Select(t => t.Grad!.ToArray()).ToArray());
            }
            finally { Engine.Bounds.Bounds.UseFusedSpecFold = saved; }
        }
        foreach (var opts in new[] { new BoundOptions { ComputeUpper = false }, new BoundOptions() })
        {
            var a = Run(true, opts);
            var b = Run(false, opts);
            for (int i = 0; i < a.Lower.Length; i++)
            {
                Assert.That(a.Lower[i], Is.EqualTo(b.Lower[i]).Within(1e-5 * (1 + Math.Abs(b.Lower[i]))), $"lower [{i}]");
                Assert.That(a.Upper[i], Is.EqualTo(b.Upper[i]).Within(1e-5 * (1 + Math.Abs(b.Upper[i]))), $"upper [{i}]");
            }
            for (int q = 0; q < a.Grads.Length; q++)
                for (int j = 0; j < a.Grads[q].Length; j++)
                    Assert.That(a.Grads[q][j], Is.EqualTo(b.Grads[q][j]).Within(1e-4 * (1 + Math.Abs(b.Grads[q][j]))), $"parameter {q} gradient [{j}]");
        }

        // Sound: the margins at random points of the box are above the fused lower bounds (and below the upper).
        float[] lo, up;
        using (new NoGrad())
        {
            var r = Engine.Bounds.Bounds.Compute(model, x, p, BoundMethod.Ibp, spec);
            (lo, up) = (r.Lower.ToArray(), r.Upper.ToArray());
            for (int trial = 0; trial < 30; trial++)
            {
                var xs = (x + Tensor.Uniform(x.Shape, -0.05f, 0.05f, g)).Clamp(0f, 1f);
                var z = model.Forward(xs).ToArray();
                for (int i = 0; i < labels.Length; i++)
                {
                    int row = 0;
                    for (int j = 0; j < 10; j++)
                    {
                        if (j == labels[i]) continue;
                        float margin = z[i * 10 + labels[i]] - z[i * 10 + j];
                        Assert.That(margin, Is.GreaterThanOrEqualTo(lo[i * 9 + row]), $"example {i}, margin against {j}");
                        Assert.That(margin, Is.LessThanOrEqualTo(up[i * 9 + row]), $"example {i}, margin against {j} (upper)");
                        row++;
                    }
                }
            }
        }
    }

    [Test]
    public void AppliesOnlyToMatchingShapes()
    {
        var c = Tensor.Zeros([3, 8]); var m = Tensor.Zeros([3, 8]); var w = Tensor.Zeros([4, 8]);
        var spec = Spec.Margins([0, 1, 2], 4).C;
        Assert.That(IbpSpecFold.Applies(c, m, w, Tensor.Zeros([4]), spec), Is.True);
        Assert.That(IbpSpecFold.Applies(c, m, w, Tensor.Zeros([5]), spec), Is.False, "bias length");
        Assert.That(IbpSpecFold.Applies(c, m, Tensor.Zeros([4, 9]), null, spec), Is.False, "weight width");
        Assert.That(IbpSpecFold.Applies(c, Tensor.Zeros([3, 9]), w, null, spec), Is.False, "radius shape");
        Assert.That(IbpSpecFold.Applies(c, m, w, null, Spec.Margins([0, 1], 4).C), Is.False, "spec batch");
        Assert.That(IbpSpecFold.Applies(c, m, w, null, Spec.Margins([0, 1, 2], 5).C), Is.False, "spec classes");
        Assert.That(IbpSpecFold.Applies(Tensor.Zeros([3, 8, 1]), m, w, null, spec), Is.False, "centre rank");
    }
}
