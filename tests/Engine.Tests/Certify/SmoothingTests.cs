using Engine.Autograd;
using Engine.Certify;
using Engine.Data;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Certify;

/// <summary>Randomized smoothing end to end on base classifiers whose noisy behaviour is known in closed form.</summary>
public class SmoothingTests
{
    // logits = W·x + b on flattened 2×2 inputs, 3 classes.
    private static Module Linear4(float[] w, float[] b)
    {
        var lin = new Linear(4, 3);
        using (new NoGrad())
        {
            lin.Weight.CopyFrom(Tensor.FromArray(w, 3, 4));
            lin.Bias!.CopyFrom(Tensor.FromArray(b, 3));
        }
        var m = new Sequential(new Flatten(), lin);
        m.Eval();
        return m;
    }

    [Test]
    public void AConstantClassifierIsCertifiedWithTheClosedFormRadius()
    {
        // Zero weights: class 1 whatever the noise, so every count is n and pA = alpha^(1/n).
        var m = Linear4(new float[12], [0f, 5f, 0f]);
        var smoothed = new SmoothedClassifier(m, 0.5f);
        var p = smoothed.Certify(Tensor.Zeros(1, 1, 2, 2), n0: 10, n: 500, alpha: 0.01, batchSize: 128, new Generator(1));
        Assert.That(p.Class, Is.EqualTo(1));
        Assert.That(p.Count, Is.EqualTo(500));
        double pA = Math.Pow(0.01, 1.0 / 500);
        Assert.That(p.PALower, Is.EqualTo(pA).Within(1e-12));
        Assert.That(p.Radius, Is.EqualTo(0.5 * SmoothingStatistics.NormalQuantile(pA)).Within(1e-12));
    }

    [Test]
    public void ASignOfNoiseClassifierAbstains()
    {
        // Class 0 when the first pixel's noise is positive, class 2 otherwise: a fair coin, so pA < 1/2 and it abstains.
        var w = new float[12];
        w[0] = 1f; w[8] = -1f;
        var m = Linear4(w, [0f, -100f, 0f]);
        var counts = new SmoothedClassifier(m, 1f).Counts(Tensor.Zeros(1, 1, 2, 2), 4000, 1000, new Generator(2));
        Assert.That(counts[1], Is.EqualTo(0));
        Assert.That(counts[0] + counts[2], Is.EqualTo(4000));
        Assert.That(Math.Abs(counts[0] - 2000), Is.LessThan(200), "a fair coin over 4000 draws (6 standard deviations)");
        var p = new SmoothedClassifier(m, 1f).Certify(Tensor.Zeros(1, 1, 2, 2), 100, 2000, 0.001, 500, new Generator(3));
        Assert.That(p.Abstained, Is.True);
    }

    [Test]
    public void ALinearClassifierIsCertifiedWithinItsTrueRadius()
    {
        // Two classes separated by the hyperplane x0 = 0, input at x0 = 1: the smoothed classifier's true pA is Φ(1/σ)
        // and its exact robust radius is 1 (the distance to the hyperplane). CERTIFY must stay below both.
        var w = new float[12];
        w[0] = 1f; w[4] = -1f;
        var m = Linear4(w, [0f, 0f, -100f]);
        var x = Tensor.FromArray([1f, 0f, 0f, 0f], 1, 1, 2, 2);
        const float sigma = 0.5f;
        var p = new SmoothedClassifier(m, sigma).Certify(x, 100, 20000, 0.001, 5000, new Generator(4));
        double truePA = SmoothingStatistics.NormalCdf(1 / sigma);
        Assert.That(p.Class, Is.EqualTo(0));
        Assert.That(p.PALower, Is.LessThan(truePA));
        Assert.That(p.PALower, Is.GreaterThan(truePA - 0.01), "20000 samples pin pA within a percent");
        Assert.That(p.Radius, Is.LessThan(1.0).And.GreaterThan(0.8));
    }

    [Test]
    public void SmoothingReportCountsAbstentionsAndKeepsTheOrder()
    {
        var model = CertificationTestNets.TrainedMlp();
        var data = CertificationTestNets.Test(12);
        var options = new SmoothingOptions { Sigma = 0.25f, N0 = 20, N = 200, Alpha = 0.01, BatchSize = 200, PgdSteps = 5, PgdSamples = 4 };
        var reports = Smoothing.Sweep(model.Graph, data, options, [0f, 0.25f, 1.5f]);
        Assert.That(reports, Has.Count.EqualTo(3));
        foreach (var r in reports)
        {
            Assert.That(r.Pgd, Is.LessThanOrEqualTo(r.Clean));
            Assert.That(r.Verified, Is.LessThanOrEqualTo(r.Clean));
            Assert.That(r.Smoothing!.Abstained, Is.EqualTo(r.Examples.Count(e => e.Prediction < 0)));
            Assert.That(r.Clean, Is.EqualTo(reports[0].Clean), "CERTIFY at the clean input runs once for every radius");
            foreach (var e in r.Examples)
            {
                Assert.That(e.Clean, Is.EqualTo(e.Prediction == e.Label));
                Assert.That(e.Verified, Is.EqualTo(e.Clean && e.Radius >= r.Eps));
            }
            Assert.That(r.ToJson(), Does.StartWith("{\"clean\":").And.Contain("\"method\":\"smoothing\",\"abstain\":"));
        }
        // At eps 0 every non-abstained correct prediction is certified, and nothing is attacked.
        Assert.That(reports[0].Verified, Is.EqualTo(reports[0].Clean));
        Assert.That(reports[0].Pgd, Is.EqualTo(reports[0].Clean));
        Assert.That(reports[0].Clean, Is.GreaterThan(0));
        // n = 200 at alpha 0.01 caps pA at 0.01^(1/200), so the radius at 0.25·Φ⁻¹ of that: 1.5 is out of reach.
        Assert.That(reports[2].Verified, Is.EqualTo(0));
    }

    [Test]
    public void BadSmoothingOptionsAreClearErrors()
    {
        var g = CertificationTestNets.TrainedMlp().Graph;
        var data = CertificationTestNets.Test(2);
        Assert.That(Assert.Throws<ArgumentException>(() => Smoothing.Run(g, data, new SmoothingOptions { Sigma = 0 }))!.Message, Does.Contain("sigma"));
        Assert.That(Assert.Throws<ArgumentException>(() => Smoothing.Run(g, data, new SmoothingOptions { N0 = 0 }))!.Message, Does.Contain("n0"));
        Assert.That(Assert.Throws<ArgumentException>(() => Smoothing.Run(g, data, new SmoothingOptions { N = 0 }))!.Message, Does.Contain("n must"));
        Assert.That(Assert.Throws<ArgumentException>(() => Smoothing.Run(g, data, new SmoothingOptions { Alpha = 1 }))!.Message, Does.Contain("alpha"));
        Assert.That(Assert.Throws<ArgumentException>(() => Smoothing.Run(g, data, new SmoothingOptions { Eps = -0.5f }))!.Message, Does.Contain("eps"));
    }
}
