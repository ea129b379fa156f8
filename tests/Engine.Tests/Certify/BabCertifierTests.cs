using Engine.Autograd;
using Engine.Bounds;
using Engine.Certify;
using Engine.Data;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Certify;

/// <summary>
/// The bab certifier: it proves at least what IBP and CROWN prove (example by example), never more than the attack
/// leaves, joins the methods per margin, and refuses bad settings clearly.
/// </summary>
[TestFixture]
public class BabCertifierTests
{
    private static readonly BabOptions Quick = new() { Timeout = TimeSpan.FromSeconds(1), AttackSteps = 20, AttackRestarts = 1 };

    [Test]
    public void ProvesEveryExampleIbpOrCrownProvesAndNoneTheAttackBreaks()
    {
        var model = CertificationTestNets.TrainedMlp();
        var data = CertificationTestNets.Test(80);
        var o = new CertificationOptions { Eps = 0.03f, BatchSize = 40 };
        var ibp = Certification.Run(model, data, o with { Method = BoundMethod.Ibp });
        var crown = Certification.Run(model, data, o with { Method = BoundMethod.Crown });
        // Certification.Run throws if a verified example is misclassified or broken by its attack.
        var bab = Certification.Run(model, data, o, new BabCertifier(model.Graph, Quick));

        Assert.That(bab.Method, Is.EqualTo("bab"));
        for (int i = 0; i < data.Count; i++)
            if (ibp.Examples[i].Verified || crown.Examples[i].Verified)
                Assert.That(bab.Examples[i].Verified, Is.True, $"example {i}: ibp {ibp.Examples[i].Verified}, crown {crown.Examples[i].Verified}");
        Assert.That(bab.Verified, Is.GreaterThanOrEqualTo(Math.Max(ibp.Verified, crown.Verified)));
        Assert.That(bab.Verified, Is.LessThanOrEqualTo(bab.Pgd));
        Assert.That(crown.Verified, Is.LessThan(crown.Pgd), "the radius leaves CROWN something to miss");

        var s = bab.Bab!;
        Assert.That(s.Verified, Is.EqualTo(bab.Verified), "the stages account for every verified example");
        Assert.That(s.Ibp, Is.EqualTo(ibp.Verified), "IBP's own proofs are the first stage");
        Assert.That(s.Proved + s.Counterexamples + s.Timeouts + s.Unknown, Is.EqualTo(s.BranchAndBound));
        Assert.That(s.Ibp + s.Crown + s.AlphaCrown + s.Attacked + s.BranchAndBound, Is.LessThanOrEqualTo(bab.Clean));
        Assert.That(s.BranchAndBound, Is.GreaterThan(0), "some example reaches the complete verifier at this radius");

        var json = bab.ToJson();
        Assert.That(json, Does.StartWith("{\"clean\":").And.Contain("\"method\":\"bab\",\"stages\":{\"ibp\":" + s.Ibp + ",").And.Contain($"\"bab_proved\":{s.Proved},"));
    }

    [Test]
    public void ProvablyNonRobustExamplesAreNeverVerified()
    {
        // Two test images the model classifies differently: a box around the first that contains the second holds a
        // misclassified input, so no sound certifier can verify it, however weak the attack in front of it.
        var model = CertificationTestNets.TrainedMlp();
        var data = CertificationTestNets.Test(40);
        float[] preds;
        using (new NoGrad()) preds = Executor.Forward(model.Graph, data.Inputs).ArgMax(1).ToArray();
        var xs = data.Inputs.ToArray();
        int a = 0, b = Enumerable.Range(1, 39).First(i => preds[i] != preds[0]);
        float eps = 0;
        for (int k = 0; k < 784; k++) eps = Math.Max(eps, Math.Abs(xs[a * 784 + k] - xs[b * 784 + k]));
        var x = data.Inputs.NarrowRows(a, 1);
        var weak = Quick with { AttackSteps = 1 };
        var r = new BabCertifier(model.Graph, weak).Certify(x, [(int)preds[0]], Perturbation.LInf(eps * 1.01f, 0f, 1f));
        Assert.That(r.Verified[0], Is.False);
        Assert.That(r.Bab!.Proved, Is.Zero);
        // And through the report, at a radius where the attack breaks most examples.
        var report = Certification.Run(model, CertificationTestNets.Test(30), new CertificationOptions { Eps = 0.15f, PgdSteps = 5 }, new BabCertifier(model.Graph, weak));
        Assert.That(report.Verified, Is.LessThanOrEqualTo(report.Pgd));
        Assert.That(report.Pgd, Is.LessThan(report.Clean));
    }

    /// <summary>
    /// x in [−1, 2], h = relu(x, −x), outputs y0 = 0, y1 = h1 + h2 − 2.5, y2 = −h1 − 0.5. Margin y0 − y1 = 2.5 − h1 − h2
    /// is ≥ 0.5 (h1 + h2 ≤ 2), which CROWN's upper lines see and IBP (h1 + h2 ≤ 3) does not; margin y0 − y2 =
    /// h1 + 0.5 ≥ 0.5, which IBP sees and CROWN's lower line h1 ≥ x (slope 1, as u &gt; −l) does not.
    /// </summary>
    private static Module TwoMarginNet()
    {
        var first = new Linear(1, 2);
        var last = new Linear(2, 3);
        first.Weight.CopyFrom(Tensor.FromArray([1f, -1f], 2, 1));
        first.Bias!.CopyFrom(Tensor.Zeros(2));
        last.Weight.CopyFrom(Tensor.FromArray([0f, 0f, 1f, 1f, -1f, 0f], 3, 2));
        last.Bias!.CopyFrom(Tensor.FromArray([0f, -2.5f, -0.5f], 3));
        var m = new Sequential(first, new ReLU(), last);
        m.Eval();
        return m;
    }

    [Test]
    public void ThePerMarginMaximumProvesWhatNeitherMethodProvesAlone()
    {
        var model = TwoMarginNet();
        var x = Tensor.FromArray([0.5f], 1, 1);
        var p = Perturbation.LInf(1.5f);
        int[] label = [0];
        var ibp = new BoundCertifier(model.Graph, BoundMethod.Ibp).Certify(x, label, p);
        var crown = new BoundCertifier(model.Graph, BoundMethod.Crown).Certify(x, label, p);
        Assert.That(ibp.Verified[0], Is.False, $"IBP alone: {ibp.MarginLowerBound[0]}");
        Assert.That(crown.Verified[0], Is.False, $"CROWN alone: {crown.MarginLowerBound[0]}");

        var noAlpha = new BabOptions { AlphaCrown = false, Timeout = TimeSpan.FromSeconds(1) };
        var bab = new BabCertifier(model.Graph, noAlpha).Certify(x, label, p);
        Assert.That(bab.Verified[0], Is.True);
        Assert.That(bab.Bab!.Crown, Is.EqualTo(1), "proved by joining CROWN to IBP, before any later stage");
        Assert.That(bab.MarginLowerBound[0], Is.EqualTo(0.5f).Within(1e-3f), "min over margins of the per-margin max: 0.5 and 0.5");

        // The float64 re-check applies to the joined bound: it re-proves it (per margin the larger rigorous bound).
        var rechecked = new BabCertifier(model.Graph, noAlpha, recheckBelow: 1f).Certify(x, label, p);
        Assert.That(rechecked.Rechecked, Is.EqualTo(1));
        Assert.That(rechecked.RecheckRejected, Is.Zero);
        Assert.That(rechecked.Verified[0], Is.True);

        // Wider, the first margin is no longer provable (h1 + h2 reaches 2.5 at x = 2.5): nothing may claim it.
        var wide = new BabCertifier(model.Graph, noAlpha).Certify(x, label, Perturbation.LInf(2.1f));
        Assert.That(wide.Verified[0], Is.False);
        Assert.That(wide.Bab!.Attacked + wide.Bab.Counterexamples, Is.EqualTo(1), "the attack or the complete verifier finds the counterexample");
    }

    [Test]
    public void BadSettingsAreClearErrors()
    {
        var g = CertificationTestNets.RandomMlp(1).Graph;
        var e = Assert.Throws<ArgumentException>(() => new BabCertifier(g, new BabOptions { Timeout = TimeSpan.FromSeconds(-1) }))!;
        Assert.That(e.Message, Does.Contain("time limit").And.Contain("-1"));
        Assert.Throws<ArgumentException>(() => new BabCertifier(g, new BabOptions { Timeout = TimeSpan.Zero }));
        Assert.That(Assert.Throws<ArgumentException>(() => new BabCertifier(g, new BabOptions { AttackSteps = 0 }))!.Message, Does.Contain("step"));
        Assert.That(Assert.Throws<ArgumentException>(() => new BabCertifier(g, new BabOptions { AttackRestarts = 0 }))!.Message, Does.Contain("restart"));
        Assert.That(Assert.Throws<ArgumentException>(() => new BabCertifier(g, recheckBelow: -1))!.Message, Does.Contain("recheckBelow"));

        var c = new BabCertifier(g, Quick);
        var x = CertificationTestNets.Test(2).Inputs;
        Assert.That(Assert.Throws<ArgumentException>(() => c.Certify(x, [0, 1], Perturbation.L2(0.5f)))!.Message, Does.Contain("L∞"));
        Assert.That(Assert.Throws<ArgumentException>(() => c.Certify(x, [0], Perturbation.LInf(0.1f, 0, 1)))!.Message, Does.Contain("labels"));
        Assert.That(Assert.Throws<ArgumentException>(() => c.Certify(x, [0, 10], Perturbation.LInf(0.1f, 0, 1)))!.Message, Does.Contain("label 10"));
    }

    [Test]
    public void StatisticsAddUp()
    {
        var a = new BabStatistics { Ibp = 1, Crown = 2, AlphaCrown = 3, Proved = 4, BranchAndBound = 9, Timeouts = 5, BoundSeconds = 0.5 };
        var b = new BabStatistics { Ibp = 10, Proved = 1, BranchAndBound = 1, Counterexamples = 0, BranchAndBoundSeconds = 2 };
        var s = a + b;
        Assert.That(s.Verified, Is.EqualTo(21));
        Assert.That((s.BranchAndBound, s.Timeouts, s.BoundSeconds, s.BranchAndBoundSeconds), Is.EqualTo((10, 5, 0.5, 2.0)));
    }
}
