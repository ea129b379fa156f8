using Engine.Attacks;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.Attacks.AttackModels;

namespace Engine.Tests.Attacks;

public class FgsmDeepFoolTests
{
    private static readonly float[] W = [1f, -2f, 0.5f, 0.75f, -1f, 1.5f, -0.25f, 0.5f];
    private static readonly float[] B = [0.1f, -0.1f];

    [Test]
    public void FgsmStepsToTheLInfCornerOfALinearModel()
    {
        var model = Affine(W, B);
        var x = Tensor.FromArray([0.2f, 0.7f, 0.5f, 0.4f, 0.9f, 0.1f, 0.3f, 0.6f, 0.01f, 0.99f, 0.5f, 0.5f], 3, 4);
        var y = Tensor.FromArray([0f, 1f, 1f], 3);
        const float eps = 0.05f;
        var r = Fgsm.Attack(model, x, y, eps);
        var xs = x.ToArray(); var adv = r.Adversarial.ToArray(); var ys = y.ToArray();
        for (int i = 0; i < 3; i++)
        {
            int t = (int)ys[i], o = 1 - t;
            for (int j = 0; j < 4; j++)
            {
                float expected = Math.Clamp(xs[i * 4 + j] - eps * MathF.Sign(W[t * 4 + j] - W[o * 4 + j]), 0f, 1f);
                Assert.That(adv[i * 4 + j], Is.EqualTo(expected).Within(1e-6f), $"sample {i} element {j}");
            }
        }
        Assert.That(LInfDist(r.Adversarial, x), Has.All.LessThanOrEqualTo(eps + 1e-6f));
    }

    [Test]
    public void DeepFoolIsExactInOneStepOnAnAffineBinaryClassifier()
    {
        var model = Affine(W, B);
        var x = Tensor.FromArray([0.2f, 0.7f, 0.5f, 0.4f, 0.9f, 0.1f, 0.3f, 0.6f], 2, 4);
        var ys = Enumerable.Range(0, 2).Select(i =>
        {
            var xi = x.ToArray().Skip(i * 4).Take(4).ToArray();
            float f0 = B[0] + Enumerable.Range(0, 4).Sum(j => W[j] * xi[j]);
            float f1 = B[1] + Enumerable.Range(0, 4).Sum(j => W[4 + j] * xi[j]);
            return f0 > f1 ? 0f : 1f;
        }).ToArray();
        var y = Tensor.FromArray(ys, 2);
        const float overshoot = 0.02f;
        var r = DeepFool.Attack(model, x, y, steps: 50, overshoot: overshoot, clipLow: -10f, clipHigh: 10f);
        Assert.That(r.Success, Has.All.True);
        var xs = x.ToArray(); var adv = r.Adversarial.ToArray();
        for (int i = 0; i < 2; i++)
        {
            int t = (int)ys[i], o = 1 - t;
            var w = Enumerable.Range(0, 4).Select(j => W[o * 4 + j] - W[t * 4 + j]).ToArray();
            float f = B[o] - B[t] + Enumerable.Range(0, 4).Sum(j => w[j] * xs[i * 4 + j]);
            float wn2 = w.Sum(v => v * v);
            for (int j = 0; j < 4; j++)
            {
                float expected = xs[i * 4 + j] + (1 + overshoot) * (MathF.Abs(f) + 1e-4f) / wn2 * w[j];
                Assert.That(adv[i * 4 + j], Is.EqualTo(expected).Within(1e-5f), $"sample {i} element {j}");
            }
            // The minimal L2 distance to the boundary is |f| / ‖w‖; DeepFool overshoots it by exactly its factor.
            Assert.That(L2Dist(r.Adversarial, x)[i], Is.EqualTo((1 + overshoot) * MathF.Abs(f) / MathF.Sqrt(wn2)).Within(1e-4f));
            Assert.That(r.Margins[i], Is.LessThan(0f));
        }
    }

    [Test]
    public void DeepFoolFoolsTheMlpWithSmallPerturbationsInsideTheDomain()
    {
        var (x, y) = Problem(100, 707);
        var r = DeepFool.Attack(Mlp, x, y);
        Assert.That(r.Adversarial.ToArray(), Has.All.InRange(0f, 1f));
        Assert.That(r.SuccessRate, Is.GreaterThan(0.9f));
        // DeepFool seeks the nearest boundary: an L2 PGD with a radius a bit larger than DeepFool's perturbation
        // succeeds on about as many samples, and a much smaller radius on far fewer.
        var norms = L2Dist(r.Adversarial, x).Where((_, i) => r.Success[i]).OrderBy(v => v).ToArray();
        float median = norms[norms.Length / 2];
        var pgdSmall = Pgd.Attack(Mlp, x, y, new PgdOptions { Norm = Norm.L2, Eps = median * 0.25f, Steps = 30, Loss = AttackLoss.Margin });
        Assert.That(pgdSmall.SuccessRate, Is.LessThan(r.SuccessRate * 0.75f));
    }

    [Test]
    public void DeepFoolLeavesMisclassifiedSamplesAlone()
    {
        var (x, y) = Problem(50, 808);
        float[] pred;
        using (new Engine.Autograd.NoGrad()) pred = Mlp.Forward(x).ArgMax(1).ToArray();
        var wrong = Tensor.FromArray(pred.Select(p => (p + 1) % Classes).ToArray(), 50);
        var r = DeepFool.Attack(Mlp, x, wrong);
        Assert.That(r.Adversarial.ToArray(), Is.EqualTo(x.ToArray()));
        Assert.That(r.Success, Has.All.True);
    }
}
