using Engine.Attacks;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Certify;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.Certify.CertifyTestNets;
using BoundsApi = Engine.Bounds.Bounds;

namespace Engine.Tests.Certify;

/// <summary>
/// The training losses against their definitions: IBP's worst-case CE is the clean CE at eps 0 and an upper bound of
/// the CE anywhere in the ball (so of PGD's), the limiting cases of every mixing parameter reproduce the method they
/// reduce to, and the gradients reach every parameter.
/// </summary>
[TestFixture]
public class CertifiedLossTests
{
    private static CertifiedTrainingOptions Opts(TrainMethod m, float eps = 0.05f) => new()
    {
        Method = m, Eps = m.UsesEps() ? eps : 0, Sigma = m == TrainMethod.Noise ? 0.1f : 0, PgdSteps = 4,
    };

    private static ScheduleValues At(float eps, float kappa = 0, float beta = 0, float sigma = 0)
        => new() { Eps = eps, Kappa = kappa, Beta = beta, Sigma = sigma, LearningRate = 1e-3f, Progress = 1 };

    private static float Loss(Module net, Tensor x, Tensor y, CertifiedTrainingOptions o, ScheduleValues at, ulong seed = 3)
        => CertifiedLosses.Compute(net, x, y, o, at, seed).Loss.Item();

    private static float[] CePerExample(Module net, Tensor x, Tensor y)
    {
        using var _ = new NoGrad();
        var logp = net.Forward(x).LogSoftmax(1);
        return (-(logp * Tensor.OneHot(y, 10)).Sum(1)).ToArray();
    }

    [Test]
    public void WorstCaseCrossEntropyOfExactMarginsIsTheCrossEntropy()
    {
        var net = Net(1);
        var x = Inputs(8, 2); var y = Labels(8, 3);
        var logits = net.Forward(x);
        var m = CertifiedLosses.Margins(logits, CertifiedLosses.MarginMatrix(y, 10, x.Device));
        Assert.That(CertifiedLosses.WorstCaseCrossEntropy(m).Item(), Is.EqualTo(Losses.CrossEntropy(logits, y).Item()).Within(1e-5));
    }

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    public void IbpLossAtEpsZeroIsTheCleanCrossEntropy(int seed)
    {
        var net = Net(seed);
        var x = Inputs(16, seed + 10); var y = Labels(16, seed + 20);
        float ce = Losses.CrossEntropy(net.Forward(x), y).Item();
        float ibp = CertifiedLosses.IbpLoss(net, x, y, Perturbation.LInf(0f, 0f, 1f)).Item();
        // Only the float32 rounding margin (1e-5 relative) separates them.
        Assert.That(ibp, Is.EqualTo(ce).Within(1e-4 * (1 + ce)));
        Assert.That(ibp, Is.GreaterThanOrEqualTo(ce - 1e-6f));
        // The trainer's path at eps 0 with kappa 0 computes the same bound.
        Assert.That(Loss(net, x, y, Opts(TrainMethod.Ibp), At(0f)), Is.EqualTo(ibp).Within(1e-6));
    }

    [TestCase(PerturbationNorm.LInf, 0.001f)]
    [TestCase(PerturbationNorm.LInf, 0.02f)]
    [TestCase(PerturbationNorm.LInf, 0.1f)]
    [TestCase(PerturbationNorm.L2, 0.05f)]
    [TestCase(PerturbationNorm.L2, 0.5f)]
    public void IbpAndCrownIbpLossesBoundTheCrossEntropyAtPgdPoints(PerturbationNorm norm, float eps)
    {
        for (int seed = 1; seed <= 3; seed++)
        {
            var net = Net(seed);
            var x = Inputs(16, seed + 30); var y = Labels(16, seed + 40);
            var pert = norm == PerturbationNorm.L2 ? Perturbation.L2(eps) : Perturbation.LInf(eps, 0f, 1f);
            var spec = Spec.Margins(y, 10);
            float[] ibp = CertifiedLosses.WorstCaseCrossEntropyPerExample(BoundsApi.Compute(net, x, pert, BoundMethod.Ibp, spec).Lower).ToArray();
            float[] crown = CertifiedLosses.WorstCaseCrossEntropyPerExample(BoundsApi.ComputeMixed(net.Graph, x, pert, 0.3f, spec).Lower).ToArray();
            var adv = Pgd.Attack(net, x, y, new PgdOptions { Norm = norm == PerturbationNorm.L2 ? Norm.L2 : Norm.LInf, Eps = eps, Steps = 20, Restarts = 2, Seed = (ulong)seed });
            float[] atPgd = CePerExample(net, adv.Adversarial, y);
            float[] clean = CePerExample(net, x, y);
            for (int i = 0; i < ibp.Length; i++)
            {
                float tol = 1e-5f * (1 + atPgd[i]);
                Assert.That(ibp[i], Is.GreaterThanOrEqualTo(atPgd[i] - tol), $"IBP, seed {seed}, example {i}");
                Assert.That(crown[i], Is.GreaterThanOrEqualTo(atPgd[i] - tol), $"CROWN-IBP mix, seed {seed}, example {i}");
                Assert.That(ibp[i], Is.GreaterThanOrEqualTo(clean[i] - tol), $"IBP vs clean, seed {seed}, example {i}");
            }
            // Same through the method's own loss (kappa 0).
            var o = Opts(TrainMethod.Ibp, eps) with { Norm = norm };
            Assert.That(Loss(net, x, y, o, At(eps)), Is.EqualTo(ibp.Average()).Within(1e-4 * (1 + ibp.Average())));
        }
    }

    [Test]
    public void CrownIbpWithBetaZeroIsIbpAndWithBetaOneIsCrownIbp()
    {
        var net = Net(4);
        var x = Inputs(12, 5); var y = Labels(12, 6);
        const float eps = 0.03f;
        float ibp = Loss(net, x, y, Opts(TrainMethod.Ibp, eps), At(eps));
        Assert.That(Loss(net, x, y, Opts(TrainMethod.CrownIbp, eps), At(eps, beta: 0)), Is.EqualTo(ibp));
        var crownIbp = BoundsApi.Compute(net, x, Perturbation.LInf(eps, 0f, 1f), BoundMethod.CrownIbp, Spec.Margins(y, 10),
                                         new BoundOptions { FastPath = false });
        float expected = CertifiedLosses.WorstCaseCrossEntropy(crownIbp.Lower).Item();
        Assert.That(Loss(net, x, y, Opts(TrainMethod.CrownIbp, eps), At(eps, beta: 1)), Is.EqualTo(expected).Within(1e-4 * (1 + expected)));
        Assert.That(expected, Is.Not.EqualTo(ibp).Within(1e-4), "the test net must tell CROWN-IBP from IBP");
        // Kappa mixes in the clean cross-entropy linearly.
        float ce = Losses.CrossEntropy(net.Forward(x), y).Item();
        float half = Loss(net, x, y, Opts(TrainMethod.CrownIbp, eps), At(eps, kappa: 0.25f, beta: 1));
        Assert.That(half, Is.EqualTo(0.25f * ce + 0.75f * expected).Within(1e-4 * (1 + expected)));
    }

    [TestCase(PerturbationNorm.LInf)]
    [TestCase(PerturbationNorm.L2)]
    public void SabrWithLambdaOneIsIbp(PerturbationNorm norm)
    {
        var net = Net(5);
        var x = Inputs(12, 7); var y = Labels(12, 8);
        float eps = norm == PerturbationNorm.L2 ? 0.3f : 0.05f;
        var ibp = Opts(TrainMethod.Ibp, eps) with { Norm = norm };
        var sabr = Opts(TrainMethod.Sabr, eps) with { Norm = norm, SabrLambda = 1f };
        foreach (float kappa in new[] { 0f, 0.4f })
            Assert.That(Loss(net, x, y, sabr, At(eps, kappa)), Is.EqualTo(Loss(net, x, y, ibp, At(eps, kappa))), $"kappa {kappa}");
    }

    [Test]
    public void SabrSmallBoxLiesInsideTheBallAndItsLossIsBetweenPgdAndIbp()
    {
        var net = Net(6);
        var x = Inputs(16, 9); var y = Labels(16, 10);
        const float eps = 0.08f, lambda = 0.4f, tau = lambda * eps;
        var o = Opts(TrainMethod.Sabr, eps) with { SabrLambda = lambda };
        var r = CertifiedLosses.Compute(net, x, y, o, At(eps), seed: 11);
        Assert.That(r.AttackPoint, Is.Not.Null);
        var c = r.AttackPoint!.ToArray(); var xs = x.ToArray();
        for (int i = 0; i < c.Length; i++)
        {
            // B(c, tau) ⊂ B(x, eps) ∩ [0, 1] after clipping: c within eps − tau of x, and inside the domain.
            Assert.That(Math.Abs(c[i] - xs[i]), Is.LessThanOrEqualTo(eps - tau + 1e-6f), $"element {i}");
            Assert.That(c[i], Is.InRange(0f, 1f));
        }
        // The small box is inside the full one: IBP over it is no looser (interval arithmetic is inclusion-monotone),
        // and it bounds the CE at its centre.
        var spec = Spec.Margins(y, 10);
        var small = CertifiedLosses.WorstCaseCrossEntropyPerExample(BoundsApi.Compute(net, r.AttackPoint, Perturbation.LInf(tau, 0f, 1f), BoundMethod.Ibp, spec).Lower).ToArray();
        var full = CertifiedLosses.WorstCaseCrossEntropyPerExample(BoundsApi.Compute(net, x, Perturbation.LInf(eps, 0f, 1f), BoundMethod.Ibp, spec).Lower).ToArray();
        var centre = CePerExample(net, r.AttackPoint, y);
        for (int i = 0; i < small.Length; i++)
        {
            Assert.That(small[i], Is.LessThanOrEqualTo(full[i] + 1e-4f * (1 + full[i])), $"example {i}");
            Assert.That(small[i], Is.GreaterThanOrEqualTo(centre[i] - 1e-5f * (1 + centre[i])), $"example {i}");
        }
        Assert.That(r.Loss.Item(), Is.EqualTo(small.Average()).Within(1e-4 * (1 + small.Average())));
    }

    [TestCase(TrainMethod.CcIbp)]
    [TestCase(TrainMethod.MtlIbp)]
    public void ExpressiveLossesReduceToIbpAtAlphaOneAndToTheAdversarialLossAtAlphaZero(TrainMethod method)
    {
        var net = Net(7);
        var x = Inputs(12, 11); var y = Labels(12, 12);
        const float eps = 0.05f;
        float ibp = Loss(net, x, y, Opts(TrainMethod.Ibp, eps), At(eps));
        Assert.That(Loss(net, x, y, Opts(method, eps) with { Alpha = 1 }, At(eps)), Is.EqualTo(ibp).Within(1e-6));

        var r = CertifiedLosses.Compute(net, x, y, Opts(method, eps) with { Alpha = 0 }, At(eps), seed: 5);
        Assert.That(r.AttackPoint, Is.Not.Null);
        var adv = Losses.CrossEntropy(net.Forward(r.AttackPoint!), y).Item();
        Assert.That(r.Loss.Item(), Is.EqualTo(adv).Within(1e-5 * (1 + adv)));
        // The attack is the seeded PGD of the ball: the same seed gives the same point, and the point is adversarial
        // (its CE is at least the clean one on this untrained net).
        var again = CertifiedLosses.Compute(net, x, y, Opts(method, eps) with { Alpha = 0 }, At(eps), seed: 5);
        Assert.That(again.AttackPoint!.ToArray(), Is.EqualTo(r.AttackPoint!.ToArray()));
        Assert.That(adv, Is.GreaterThan(Losses.CrossEntropy(net.Forward(x), y).Item()));
    }

    [Test]
    public void CcIbpIsAtMostMtlIbpAndMtlIbpIsTheConvexCombination()
    {
        var net = Net(8);
        var x = Inputs(12, 13); var y = Labels(12, 14);
        const float eps = 0.05f, alpha = 0.3f;
        var mtl = CertifiedLosses.Compute(net, x, y, Opts(TrainMethod.MtlIbp, eps) with { Alpha = alpha }, At(eps), seed: 9);
        var cc = CertifiedLosses.Compute(net, x, y, Opts(TrainMethod.CcIbp, eps) with { Alpha = alpha }, At(eps), seed: 9);
        float adv = Losses.CrossEntropy(net.Forward(mtl.AttackPoint!), y).Item();
        float ibp = Loss(net, x, y, Opts(TrainMethod.Ibp, eps), At(eps));
        Assert.That(mtl.Loss.Item(), Is.EqualTo((1 - alpha) * adv + alpha * ibp).Within(1e-4 * (1 + ibp)));
        // CE is convex in the logit differences: CE of the combination <= combination of the CEs.
        Assert.That(cc.Loss.Item(), Is.LessThanOrEqualTo(mtl.Loss.Item() + 1e-5f));
        Assert.That(cc.Loss.Item(), Is.GreaterThanOrEqualTo(adv - 1e-5f), "the IBP margins are below the adversarial ones");
    }

    [Test]
    public void NoiseWithTinySigmaIsStandardAndItsNoiseHasTheRequestedScale()
    {
        var net = Net(9);
        var x = Inputs(32, 15); var y = Labels(32, 16);
        float ce = Loss(net, x, y, Opts(TrainMethod.Standard), At(0f));
        Assert.That(ce, Is.EqualTo(Losses.CrossEntropy(net.Forward(x), y).Item()));
        Assert.That(Loss(net, x, y, Opts(TrainMethod.Noise), At(0f, sigma: 1e-5f)), Is.EqualTo(ce).Within(1e-3));
        var r = CertifiedLosses.Compute(net, x, y, Opts(TrainMethod.Noise), At(0f, sigma: 0.5f), seed: 4);
        var d = (r.AttackPoint! - x).ToArray();
        double mean = d.Average(), std = Math.Sqrt(d.Select(v => (v - mean) * (v - mean)).Average());
        Assert.That(mean, Is.EqualTo(0).Within(0.03));
        Assert.That(std, Is.EqualTo(0.5).Within(0.03));
        Assert.That(r.Loss.Item(), Is.Not.EqualTo(ce).Within(1e-3));
    }

    [Test]
    public void PgdLossIsTheCrossEntropyAtItsAttackPointInsideTheBall()
    {
        var net = Net(10);
        var x = Inputs(12, 17); var y = Labels(12, 18);
        const float eps = 0.05f;
        var r = CertifiedLosses.Compute(net, x, y, Opts(TrainMethod.Pgd, eps), At(eps), seed: 2);
        var a = r.AttackPoint!.ToArray(); var xs = x.ToArray();
        for (int i = 0; i < a.Length; i++)
        {
            Assert.That(Math.Abs(a[i] - xs[i]), Is.LessThanOrEqualTo(eps + 1e-6f));
            Assert.That(a[i], Is.InRange(0f, 1f));
        }
        Assert.That(r.Loss.Item(), Is.EqualTo(Losses.CrossEntropy(net.Forward(r.AttackPoint!), y).Item()).Within(1e-6));
        Assert.That(r.Loss.Item(), Is.GreaterThan(Losses.CrossEntropy(net.Forward(x), y).Item()));
    }

    [Test]
    public void WarmUpComputesOnlyTheCleanLoss()
    {
        var net = Net(11);
        var x = Inputs(8, 19); var y = Labels(8, 20);
        float ce = Losses.CrossEntropy(net.Forward(x), y).Item();
        foreach (var m in new[] { TrainMethod.Ibp, TrainMethod.CrownIbp, TrainMethod.Sabr, TrainMethod.CcIbp, TrainMethod.MtlIbp })
        {
            var r = CertifiedLosses.Compute(net, x, y, Opts(m), At(0f, kappa: 1, beta: 1));
            Assert.That(r.Loss.Item(), Is.EqualTo(ce), m.ToString());
            Assert.That(r.RobustLoss, Is.Null, m.ToString());
        }
    }

    [TestCaseSource(typeof(CertifyTestNets), nameof(CertifyTestNets.AllMethods))]
    public void GradientsReachEveryParameter(TrainMethod method)
    {
        var net = Net(12);
        var x = Inputs(16, 21); var y = Labels(16, 22);
        // kappa 0: the certified methods' gradient comes from the robust term alone, i.e. through the bounds.
        var r = CertifiedLosses.Compute(net, x, y, Opts(method) with { Alpha = 0.5f }, At(0.05f, kappa: 0, beta: 0.5f, sigma: 0.1f), seed: 1);
        net.ZeroGrad();
        r.Loss.Backward();
        foreach (var (name, p) in net.NamedParameters())
        {
            Assert.That(p.Grad, Is.Not.Null, $"{method}: {name} has no gradient");
            Assert.That(p.Grad!.ToArray().Any(v => v != 0), Is.True, $"{method}: {name}'s gradient is zero");
            Assert.That(p.Grad!.ToArray().All(float.IsFinite), Is.True, $"{method}: {name}'s gradient is not finite");
        }
    }

    [Test]
    public void IbpGradientMatchesAFiniteDifference()
    {
        var net = Net(13);
        var x = Inputs(8, 23); var y = Labels(8, 24);
        var pert = Perturbation.LInf(0.03f, 0f, 1f);
        net.ZeroGrad();
        CertifiedLosses.IbpLoss(net, x, y, pert).Backward();
        var w = net.Parameters().ElementAt(2); // the first linear layer's weight
        var g = new Generator(99);
        var dir = Tensor.Normal(w.Dims, 0f, 1f, g);
        double analytic = (w.Grad! * dir).Sum().Item();
        float Eval(float h)
        {
            using var _ = new NoGrad();
            var saved = w.Clone();
            w.CopyFrom(w + dir * h);
            float v = CertifiedLosses.IbpLoss(net, x, y, pert).Item();
            w.CopyFrom(saved);
            return v;
        }
        const float step = 1e-3f;
        double numeric = (Eval(step) - Eval(-step)) / (2.0 * step);
        Assert.That(numeric, Is.EqualTo(analytic).Within(0.05 * Math.Abs(analytic) + 1e-3));
    }
}
