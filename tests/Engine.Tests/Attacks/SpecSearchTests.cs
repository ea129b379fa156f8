using Engine.Attacks;
using Engine.Autograd;
using Engine.Graph;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.Attacks.AttackModels;

namespace Engine.Tests.Attacks;

public class SpecSearchTests
{
    // Three outputs over four inputs.
    private static readonly float[] W = [1f, -2f, 0.5f, 0.75f, -1f, 1.5f, -0.25f, 0.5f, 0.3f, 0.2f, -0.6f, 1.1f];
    private static readonly float[] B = [0.1f, -0.1f, 0.2f];

    // Exact min over the box of d − c·(W x + b) for one row c: an affine function is minimised at a corner.
    private static float BoxMinimum(float[] c, float d, float[] lo, float[] hi)
    {
        float v = d - Enumerable.Range(0, 3).Sum(k => c[k] * B[k]);
        for (int j = 0; j < 4; j++)
        {
            float a = Enumerable.Range(0, 3).Sum(k => c[k] * W[k * 4 + j]);
            v -= Math.Max(a * lo[j], a * hi[j]);
        }
        return v;
    }

    [Test]
    public void FindsTheExactMinimumOfAnAffineSpecOverABox()
    {
        var model = Affine(W, B);
        float[] lo = [-1f, 0f, 0.5f, -2f, 0f, 0f, 0f, 0f];
        float[] hi = [1f, 0.5f, 0.75f, 2f, 0.1f, 0.2f, 0.1f, 0.3f];
        var lower = Tensor.FromArray(lo, 2, 4); var upper = Tensor.FromArray(hi, 2, 4);
        float[] c = [1f, -1f, 0f];
        foreach (float d in new[] { 0f, 6f })
        {
            var r = Pgd.MinimizeSpec(model, lower, upper, Tensor.FromArray(c, 1, 3), Tensor.FromArray([d], 1),
                                     new BoxSearchOptions { Steps = 20, Seed = 5 });
            for (int i = 0; i < 2; i++)
            {
                float truth = BoxMinimum(c, d, lo[(i * 4)..(i * 4 + 4)], hi[(i * 4)..(i * 4 + 4)]);
                Assert.That(r.Objective[i], Is.EqualTo(truth).Within(1e-4f), $"d {d}, box {i}");
                Assert.That(r.Violated[i], Is.EqualTo(truth < 0));
            }
            AssertInside(r.Point, lo, hi);
        }
    }

    [Test]
    public void PerSampleSpecsPickTheirOwnRows()
    {
        var model = Affine(W, B);
        float[] lo = [0f, 0f, 0f, 0f, 0.5f, 0.5f, 0.5f, 0.5f];
        float[] hi = [0.2f, 0.2f, 0.2f, 0.2f, 0.6f, 0.6f, 0.6f, 0.6f];
        // Sample 0: y0 − y2 ≤ 1; sample 1: y1 ≤ 0.
        var c = Tensor.FromArray([1f, 0f, -1f, 0f, 1f, 0f], 2, 1, 3);
        var d = Tensor.FromArray([1f, 0f], 2, 1);
        var r = Pgd.MinimizeSpec(model, Tensor.FromArray(lo, 2, 4), Tensor.FromArray(hi, 2, 4), c, d, new BoxSearchOptions { Steps = 20 });
        Assert.That(r.Objective[0], Is.EqualTo(BoxMinimum([1f, 0f, -1f], 1f, lo[..4], hi[..4])).Within(1e-4f));
        Assert.That(r.Objective[1], Is.EqualTo(BoxMinimum([0f, 1f, 0f], 0f, lo[4..], hi[4..])).Within(1e-4f));
    }

    [Test]
    public void FindsCounterexamplesOfTheMlpInsideTheBox()
    {
        var (x, y) = Problem(60, 909);
        var mlp = Mlp;
        const float eps = 0.08f;
        var lower = (x - eps).Clamp(0f, 1f); var upper = (x + eps).Clamp(0f, 1f);
        var spec = MarginSpec(y);
        var r = Pgd.MinimizeSpec(mlp, lower, upper, spec.c, spec.d, new BoxSearchOptions { Steps = 30, Restarts = 2, Seed = 1 });
        AssertInside(r.Point, lower.ToArray(), upper.ToArray());
        Assert.That(r.AnyViolated, Is.True);
        float[] pred, output;
        using (new NoGrad()) { var o = mlp.Forward(r.Point); pred = o.ArgMax(1).ToArray(); output = o.ToArray(); }
        Assert.That(r.Output.ToArray(), Is.EqualTo(output).Within(1e-6f));
        var ys = y.ToArray();
        for (int i = 0; i < 60; i++)
            if (r.Violated[i]) Assert.That(pred[i], Is.Not.EqualTo(ys[i]), $"sample {i}: a counterexample must be misclassified");
        // The margin spec is the attack's margin: the ball search agrees with the classification attack.
        var attack = Pgd.Attack(mlp, x, y, new PgdOptions { Eps = eps, Steps = 30, Restarts = 2, Loss = AttackLoss.Margin, Seed = 1 });
        var ball = Pgd.MinimizeSpec(mlp, x, spec.c, spec.d, new PgdOptions { Eps = eps, Steps = 30, Restarts = 2, Seed = 1 });
        Assert.That(ball.Objective, Is.EqualTo(attack.Margins).Within(1e-5f));
        Assert.That(ball.Point.ToArray(), Is.EqualTo(attack.Adversarial.ToArray()));
        Assert.That(ball.Violated.Count(v => v), Is.EqualTo(r.Violated.Count(v => v)).Within(3), "box and ball searches of the same set");
    }

    [Test]
    public void AnArbitraryObjectiveIsMinimised()
    {
        var model = Affine(W, B);
        float[] lo = [0f, 0f, 0f, 0f]; float[] hi = [1f, 1f, 1f, 1f];
        // 0.5 − y0, the spec row c = e0, d = 0.5 written by hand.
        Func<Tensor, Tensor> objective = o => 0.5f - o.Narrow(1, 0, 1).Reshape(o.Size(0));
        var r = Pgd.Minimize(model, Tensor.FromArray(lo, 1, 4), Tensor.FromArray(hi, 1, 4), objective, new BoxSearchOptions { RandomStart = false });
        Assert.That(r.Objective[0], Is.EqualTo(BoxMinimum([1f, 0f, 0f], 0.5f, lo, hi)).Within(1e-4f));
        Assert.That(r.Point.ToArray(), Is.EqualTo(new[] { 1f, 0f, 1f, 1f }));
    }

    [Test]
    public void MoreRestartsNeverMakeTheBoxSearchWorse()
    {
        var (x, y) = Problem(40, 1010);
        var lower = (x - 0.03f).Clamp(0f, 1f); var upper = (x + 0.03f).Clamp(0f, 1f);
        var spec = MarginSpec(y);
        var o = new BoxSearchOptions { Steps = 4, Seed = 6 };
        var one = Pgd.MinimizeSpec(Mlp, lower, upper, spec.c, spec.d, o);
        var three = Pgd.MinimizeSpec(Mlp, lower, upper, spec.c, spec.d, o with { Restarts = 3 });
        var again = Pgd.MinimizeSpec(Mlp, lower, upper, spec.c, spec.d, o with { Restarts = 3 });
        for (int i = 0; i < 40; i++) Assert.That(three.Objective[i], Is.LessThanOrEqualTo(one.Objective[i]));
        Assert.That(again.Point.ToArray(), Is.EqualTo(three.Point.ToArray()));
    }

    [Test]
    public void EarlyStopReturnsAtTheFirstViolatingStart()
    {
        var model = Affine(W, B);
        int calls = 0;
        var counted = AttackModel.FromFunc(t => { calls++; return Executor.Forward(model.Graph, t); });
        // y0 ≤ −100 is violated everywhere in the box.
        var r = Pgd.MinimizeSpec(counted, Tensor.Zeros(3, 4), Tensor.Ones(3, 4), Tensor.FromArray([1f, 0f, 0f], 1, 3), Tensor.FromArray([-100f], 1),
                                 new BoxSearchOptions { Steps = 10, Restarts = 5, EarlyStop = true });
        Assert.That(r.Violated, Has.All.True);
        Assert.That(calls, Is.EqualTo(1));
        model.ZeroGrad();
    }

    // Margin spec per sample: rows e_j − e_y for j ≠ y, d = 0, so min over rows of d − C·f = f_y − max_{j≠y} f_j.
    private static (Tensor c, Tensor d) MarginSpec(Tensor y)
    {
        var ys = y.ToArray();
        int n = ys.Length;
        var c = new float[n * (Classes - 1) * Classes];
        for (int i = 0; i < n; i++)
        {
            int row = 0;
            for (int j = 0; j < Classes; j++)
            {
                if (j == (int)ys[i]) continue;
                int baseIdx = (i * (Classes - 1) + row++) * Classes;
                c[baseIdx + j] = 1f;
                c[baseIdx + (int)ys[i]] = -1f;
            }
        }
        return (Tensor.FromArray(c, n, Classes - 1, Classes), Tensor.Zeros(n, Classes - 1));
    }

    private static void AssertInside(Tensor point, float[] lo, float[] hi)
    {
        var p = point.ToArray();
        for (int i = 0; i < p.Length; i++)
            Assert.That(p[i], Is.InRange(lo[i], hi[i]), $"element {i}");
    }
}
