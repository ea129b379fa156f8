using Engine.Autograd;
using Engine.Bounds;
using Engine.Certify;
using Engine.Data;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using B = Engine.Bounds.Bounds;

namespace Engine.Tests.Certify;

/// <summary>
/// The certification report: verified ≤ PGD ≤ clean on every report, a certifier that claims too much is caught,
/// and the verified counts are exactly what the bounds say.
/// </summary>
public class CertificationTests
{
    private static void AssertOrdered(CertificationReport r)
    {
        Assert.That(r.Verified, Is.LessThanOrEqualTo(r.Pgd), "verified <= PGD");
        Assert.That(r.Pgd, Is.LessThanOrEqualTo(r.Clean), "PGD <= clean");
        foreach (var e in r.Examples)
        {
            if (e.Verified) Assert.That(e.Pgd && e.Clean && e.MarginLowerBound > 0, Is.True, $"example {e.Index}");
            if (e.Pgd) Assert.That(e.Clean && e.AttackMargin > 0, Is.True, $"example {e.Index}");
            Assert.That(e.Clean, Is.EqualTo(e.Prediction == e.Label), $"example {e.Index}: clean must mean the prediction is the label");
        }
    }

    private static IEnumerable<TestCaseData> Nets()
    {
        foreach (var method in new[] { BoundMethod.Ibp, BoundMethod.Crown })
        {
            yield return new TestCaseData("trained-mlp", method, PerturbationNorm.LInf, 0.02f);
            yield return new TestCaseData("trained-mlp", method, PerturbationNorm.L2, 0.5f);
            yield return new TestCaseData("random-mlp", method, PerturbationNorm.LInf, 0.005f);
            yield return new TestCaseData("random-cnn", method, PerturbationNorm.LInf, 0.002f);
        }
        yield return new TestCaseData("trained-mlp", BoundMethod.AlphaCrown, PerturbationNorm.LInf, 0.02f);
    }

    private static Module Net(string name) => name switch
    {
        "trained-mlp" => CertificationTestNets.TrainedMlp(),
        "random-mlp" => CertificationTestNets.RandomMlp(5),
        _ => CertificationTestNets.RandomCnn(7),
    };

    [TestCaseSource(nameof(Nets))]
    public void ReportsAreOrderedAndVerifiedCountsAreTheBounds(string net, BoundMethod method, PerturbationNorm norm, float eps)
    {
        var model = Net(net);
        var data = CertificationTestNets.Test(method == BoundMethod.AlphaCrown ? 40 : 120);
        var options = new CertificationOptions
        {
            Eps = eps, Norm = norm, Method = method, BatchSize = 50, PgdSteps = 10, RecheckBelow = 0,
            BoundOptions = method == BoundMethod.AlphaCrown ? new BoundOptions { AlphaIterations = 5, ComputeUpper = false } : null,
        };
        var r = Certification.Run(model, data, options);
        AssertOrdered(r);
        Assert.That(r.Total, Is.EqualTo(data.Count));
        Assert.That(r.Method, Is.EqualTo(BoundCertifier.MethodName(method)));

        // The verified set is exactly where the bounds, computed directly, put every margin above 0.
        var labels = data.Targets.ToArray().Select(v => (int)v).ToArray();
        bool[] direct;
        using (new NoGrad())
            direct = B.Compute(model, data.Inputs, options.Perturbation, method, Spec.Margins(labels, 10), options.BoundOptions).Verified();
        Assert.That(r.Examples.Select(e => e.Verified).ToArray(), Is.EqualTo(direct));

        // Clean accuracy is the model's own accuracy.
        using (new NoGrad())
        {
            var pred = model.Forward(data.Inputs).ArgMax(1).ToArray();
            Assert.That(r.Clean, Is.EqualTo(pred.Where((p, i) => (int)p == labels[i]).Count()));
        }
    }

    [Test]
    public void TrainedNetIsPartlyVerifiedAndPartlyBroken()
    {
        // A report where every count is trivial (0 verified, or PGD = clean) would not exercise the checks.
        var r = Certification.Run(CertificationTestNets.TrainedMlp(), CertificationTestNets.Test(200), new CertificationOptions { Eps = 0.02f, BatchSize = 64 });
        AssertOrdered(r);
        Assert.That(r.Verified, Is.GreaterThan(0));
        Assert.That(r.Pgd, Is.LessThan(r.Clean), "PGD should break some examples at eps 0.02");
        Assert.That(r.Clean, Is.GreaterThan(r.Total / 2));
    }

    [Test]
    public void AtEpsZeroPgdEqualsClean()
    {
        var r = Certification.Run(CertificationTestNets.TrainedMlp(), CertificationTestNets.Test(100), new CertificationOptions { Eps = 0, BatchSize = 30 });
        AssertOrdered(r);
        Assert.That(r.Pgd, Is.EqualTo(r.Clean));
        Assert.That(r.Verified, Is.GreaterThan(r.Clean * 9 / 10), "a point is verified unless its margin is within rounding of 0");
    }

    /// <summary>Claims every example (or every correctly classified one) robust.</summary>
    private sealed class LyingCertifier(ComputeGraph? cleanFrom) : IRobustnessCertifier
    {
        public string Name => "liar";

        public CertifierResult Certify(Tensor x, int[] labels, Perturbation perturbation)
        {
            var claim = new bool[labels.Length];
            if (cleanFrom == null) Array.Fill(claim, true);
            else
                using (new NoGrad())
                {
                    var pred = Executor.Forward(cleanFrom, x).ArgMax(1).ToArray();
                    for (int i = 0; i < claim.Length; i++) claim[i] = (int)pred[i] == labels[i];
                }
            return new CertifierResult(claim, claim.Select(_ => 1f).ToArray());
        }
    }

    [Test]
    public void ACertifierThatVerifiesMisclassifiedExamplesIsCaught()
    {
        var model = CertificationTestNets.TrainedMlp();
        var data = CertificationTestNets.Test(100);
        var e = Assert.Throws<CertificationSoundnessException>(() =>
            Certification.Run(model, data, new CertificationOptions { Eps = 0.01f, BatchSize = 25 }, new LyingCertifier(null)));
        // The first misclassified example is the one named.
        using (new NoGrad())
        {
            var pred = model.Forward(data.Inputs).ArgMax(1).ToArray();
            var labels = data.Targets.ToArray();
            int first = Enumerable.Range(0, 100).First(i => pred[i] != labels[i]);
            Assert.That(e!.Example, Is.EqualTo(first));
            Assert.That(e.Message, Does.Contain($"example {first}").And.Contain("misclassified"));
        }
    }

    [Test]
    public void ACertifierThatVerifiesAttackableExamplesIsCaught()
    {
        // Correct at the clean input, so only the attack can expose the lie: at eps 0.1 PGD breaks most examples.
        var model = CertificationTestNets.TrainedMlp();
        var e = Assert.Throws<CertificationSoundnessException>(() =>
            Certification.Run(model.Graph, CertificationTestNets.Test(100), new CertificationOptions { Eps = 0.1f, BatchSize = 25 }, new LyingCertifier(model.Graph)));
        Assert.That(e!.Message, Does.Contain($"example {e.Example}").And.Contain("PGD-20"));
    }

    /// <summary>A bound that is too high: the real bounds shifted up by a constant.</summary>
    private sealed class InflatedBounds(BoundCertifier inner, float shift) : IRobustnessCertifier
    {
        public string Name => "inflated";

        public CertifierResult Certify(Tensor x, int[] labels, Perturbation perturbation)
        {
            var r = inner.Certify(x, labels, perturbation);
            var lower = r.MarginLowerBound.Select(v => v + shift).ToArray();
            return new CertifierResult(lower.Select(v => v > 0).ToArray(), lower);
        }
    }

    [Test]
    public void AnUnsoundBoundIsCaughtByTheReportAndASoundOneIsNot()
    {
        var model = CertificationTestNets.TrainedMlp();
        var data = CertificationTestNets.Test(150);
        var options = new CertificationOptions { Eps = 0.05f, BatchSize = 50 };
        var honest = new BoundCertifier(model.Graph, BoundMethod.Crown, recheckBelow: 0);
        AssertOrdered(Certification.Run(model, data, options, new InflatedBounds(honest, 0f)));
        Assert.Throws<CertificationSoundnessException>(() => Certification.Run(model, data, options, new InflatedBounds(honest, 20f)));
    }

    [TestCase(BoundMethod.Crown)]
    [TestCase(BoundMethod.Ibp)]
    public void TheFloat64RecheckProvesWhatFloat32BoundsVerified(BoundMethod method)
    {
        // Re-check every verified example: the rigorous guard runs CROWN (and the folded IBP margin) in double, so it
        // must agree (a wrong box, spec row or label in the re-check would reject examples here).
        var model = CertificationTestNets.TrainedMlp();
        var data = CertificationTestNets.Test(60);
        var all = Certification.Run(model, data, new CertificationOptions { Eps = 0.01f, Method = method, BatchSize = 60, RecheckBelow = float.PositiveInfinity });
        var none = Certification.Run(model, data, new CertificationOptions { Eps = 0.01f, Method = method, BatchSize = 60, RecheckBelow = 0 });
        Assert.That(all.Rechecked, Is.EqualTo(none.Verified));
        Assert.That(none.Verified, Is.GreaterThan(10));
        Assert.That(all.RecheckRejected, Is.EqualTo(0));
        Assert.That(all.Verified, Is.EqualTo(none.Verified));
    }

    [Test]
    public void WhereTheGuardCannotReadTheGraphNearZeroBoundsAreNotCounted()
    {
        // LeakyReLU has bound rules but no float64 guard node: examples in the re-check band must be dropped, never kept.
        var g = new Generator(11);
        var model = new Sequential(new Flatten(), new Linear(784, 32, generator: g), new LeakyReLU(0.1f), new Linear(32, 10, generator: g));
        model.Eval();
        var data = CertificationTestNets.Test(60);
        var labels = data.Targets.ToArray().Select(v => (int)v).ToArray();
        var pert = Perturbation.LInf(0.001f, 0, 1);
        var plain = new BoundCertifier(model.Graph, BoundMethod.Crown, recheckBelow: 0).Certify(data.Inputs, labels, pert);
        var guarded = new BoundCertifier(model.Graph, BoundMethod.Crown, recheckBelow: float.PositiveInfinity);
        var r = guarded.Certify(data.Inputs, labels, pert);
        int claimed = plain.Verified.Count(v => v);
        Assert.That(claimed, Is.GreaterThan(0), "the random net should verify its few correct examples at a tiny eps");
        Assert.That(r.Rechecked, Is.EqualTo(claimed));
        Assert.That(r.RecheckRejected, Is.EqualTo(claimed));
        Assert.That(r.Verified.Count(v => v), Is.EqualTo(0));
        Assert.That(guarded.RecheckUnavailableReason, Is.Not.Null.And.Not.Empty);
        // The report says why (the CLI prints it), so a user sees the cause of a low verified count.
        var report = Certification.Run(model.Graph, data, new CertificationOptions { Eps = 0.001f, Method = BoundMethod.Crown, RecheckBelow = float.PositiveInfinity, PgdSteps = 2 });
        Assert.That(report.RecheckUnavailable, Does.Contain("LeakyRelu").IgnoreCase.Or.Contain("leaky").IgnoreCase);
        Assert.That(report.RecheckRejected, Is.EqualTo(report.Rechecked));
        var fine = Certification.Run(CertificationTestNets.TrainedMlp().Graph, data, new CertificationOptions { Eps = 0.001f, Method = BoundMethod.Crown, PgdSteps = 2 });
        Assert.That(fine.RecheckUnavailable, Is.Null);
    }

    [Test]
    public void BadOptionsAreClearErrors()
    {
        var model = CertificationTestNets.TrainedMlp();
        var data = CertificationTestNets.Test(4);
        Assert.That(Assert.Throws<ArgumentException>(() => Certification.Run(model, data, new CertificationOptions { Eps = -1 }))!.Message, Does.Contain("eps"));
        Assert.That(Assert.Throws<ArgumentException>(() => Certification.Run(model, data, new CertificationOptions { Eps = 0.1f, PgdSteps = 0 }))!.Message, Does.Contain("PGD steps"));
        var outside = new TensorDataset(data.Inputs * 3f, data.Targets);
        Assert.That(Assert.Throws<ArgumentException>(() => Certification.Run(model, outside, new CertificationOptions { Eps = 0.1f }))!.Message, Does.Contain("domain"));
    }

    [Test]
    public void SweepGivesOneReportPerRadiusAndVerifiedFallsWithEps()
    {
        var reports = Certification.Sweep(CertificationTestNets.TrainedMlp().Graph, CertificationTestNets.Test(80), new CertificationOptions { BatchSize = 80 },
                                          Certification.Radii(0.04f, 5));
        Assert.That(reports.Select(r => r.Eps), Is.EqualTo(new[] { 0f, 0.01f, 0.02f, 0.03f, 0.04f }));
        for (int i = 1; i < reports.Count; i++)
        {
            AssertOrdered(reports[i]);
            // Bounds over nested sets: a larger ball verifies no more examples.
            Assert.That(reports[i].Verified, Is.LessThanOrEqualTo(reports[i - 1].Verified));
            Assert.That(reports[i].Clean, Is.EqualTo(reports[0].Clean));
        }
    }

    [Test]
    public void JsonLineHasTheDocumentedKeysInOrder()
    {
        var r = Certification.Run(CertificationTestNets.TrainedMlp(), CertificationTestNets.Test(20), new CertificationOptions { Eps = 0.01f });
        var json = r.ToJson();
        Assert.That(json, Does.Match("^\\{\"clean\":[0-9.]+,\"pgd\":[0-9.]+,\"verified\":[0-9.]+,\"eps\":0\\.01,\"method\":\"crown\"\\}$"));
        var doc = System.Text.Json.JsonDocument.Parse(json).RootElement;
        Assert.That(doc.GetProperty("clean").GetDouble(), Is.EqualTo(r.CleanAccuracy).Within(1e-6));
        Assert.That(doc.GetProperty("verified").GetDouble(), Is.EqualTo(r.VerifiedAccuracy).Within(1e-6));
    }
}

/// <summary>The report on a non-CPU device (the emulated one): the same counts as on the CPU, so nothing assumes CPU tensors.</summary>
public class CertificationDeviceTests
{
    [Test]
    public void ReportOnTheEmulatedDeviceMatchesTheCpu()
    {
        var data = CertificationTestNets.Test(40);
        var options = new CertificationOptions { Eps = 0.01f, BatchSize = 20, PgdSteps = 5 };
        var cpu = Certification.Run(CertificationTestNets.RandomMlp(9), data, options);
        var onEmu = CertificationTestNets.RandomMlp(9).To(Devices.EmulatedDevice.Instance);
        var emu = Certification.Run(onEmu, data, options);
        Assert.That(emu.Examples.Select(e => e.Clean), Is.EqualTo(cpu.Examples.Select(e => e.Clean)));
        Assert.That(emu.Examples.Select(e => e.Verified), Is.EqualTo(cpu.Examples.Select(e => e.Verified)));
        Assert.That(emu.Pgd, Is.EqualTo(cpu.Pgd).Within(1), "the attack may differ by rounding on another device");

        var smooth = new SmoothingOptions { N0 = 10, N = 50, BatchSize = 50, Eps = 0.1f, PgdSteps = 2, PgdSamples = 2 };
        var s = Smoothing.Run(onEmu.Graph, CertificationTestNets.Test(3), smooth);
        Assert.That(s.Total, Is.EqualTo(3));
        Assert.That(s.Pgd, Is.LessThanOrEqualTo(s.Clean));
    }
}
