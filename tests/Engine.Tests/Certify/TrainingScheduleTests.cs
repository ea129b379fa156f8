using Engine.Certify;
using NUnit.Framework;

namespace Engine.Tests.Certify;

/// <summary>The per-batch schedule against hand-computed values, and the option defaults and checks.</summary>
[TestFixture]
public class TrainingScheduleTests
{
    [Test]
    public void LinearRampAfterWarmUpWithKappaBetaAndStepDecay()
    {
        // 10 epochs of 5 batches: warm-up 2 epochs (steps 0-9), ramp 4 epochs (steps 10-29), decay at epoch 8 (max(6, round(7.5))).
        var o = new CertifiedTrainingOptions { Method = TrainMethod.CrownIbp, Eps = 0.1f, Epochs = 10, WarmupEpochs = 2, RampEpochs = 4, KappaEnd = 0.5f, LearningRate = 1e-3f };
        var s = new TrainingSchedule(o, 5);
        Assert.That(o.ResolvedLrDecayEpochs, Is.EqualTo(new[] { 8 }));
        foreach (int step in new[] { 0, 5, 9 })
        {
            var v = s.At(step);
            Assert.That((v.Eps, v.Kappa, v.Beta), Is.EqualTo((0f, 1f, 1f)), $"warm-up step {step}");
        }
        var first = s.At(10);
        Assert.That(first.Eps, Is.EqualTo(0.005f).Within(1e-7));
        Assert.That(first.Kappa, Is.EqualTo(0.975f).Within(1e-6));
        Assert.That(first.Beta, Is.EqualTo(0.95f).Within(1e-6));
        var mid = s.At(19); // 10 of 20 ramp batches
        Assert.That(mid.Eps, Is.EqualTo(0.05f).Within(1e-7));
        Assert.That(mid.Kappa, Is.EqualTo(0.75f).Within(1e-6));
        Assert.That(mid.Beta, Is.EqualTo(0.5f).Within(1e-6));
        foreach (int step in new[] { 29, 30, 49, 1000 })
        {
            var v = s.At(step);
            Assert.That((v.Eps, v.Kappa, v.Beta, v.Progress), Is.EqualTo((0.1f, 0.5f, 0f, 1f)), $"step {step}");
        }
        Assert.That(s.At(39).LearningRate, Is.EqualTo(1e-3f));
        Assert.That(s.At(40).LearningRate, Is.EqualTo(1e-4f).Within(1e-10));
        Assert.That(s.At(49).LearningRate, Is.EqualTo(1e-4f).Within(1e-10));
        Assert.That(s.At(23).Epoch, Is.EqualTo(4));
    }

    [Test]
    public void KappaStartSetsTheRampsFirstWeightButNotTheWarmUps()
    {
        // Warm-up 1 epoch (steps 0-4) stays standard training; the ramp (steps 5-14) goes kappa 0.8 -> 0.2.
        var o = new CertifiedTrainingOptions { Method = TrainMethod.MtlIbp, Eps = 0.1f, Epochs = 4, WarmupEpochs = 1, RampEpochs = 2, KappaStart = 0.8f, KappaEnd = 0.2f };
        var s = new TrainingSchedule(o, 5);
        Assert.That(s.At(4).Kappa, Is.EqualTo(1f));
        Assert.That(s.At(5).Kappa, Is.EqualTo(0.8f - 0.1f * 0.6f).Within(1e-6));
        Assert.That(s.At(9).Kappa, Is.EqualTo(0.5f).Within(1e-6));
        Assert.That(s.At(14).Kappa, Is.EqualTo(0.2f).Within(1e-6));
        Assert.That(s.At(19).Kappa, Is.EqualTo(0.2f).Within(1e-6));

        // Kappa 0 over the whole ramp: the loss has no clean term, so no clean logits are computed.
        var zero = new TrainingSchedule(o with { KappaStart = 0, KappaEnd = 0 }, 5);
        Assert.That(Enumerable.Range(5, 15).Select(i => zero.At(i).Kappa), Is.All.EqualTo(0f));
        Assert.That(zero.At(0).Kappa, Is.EqualTo(1f));
        var model = new Engine.Nn.Sequential(new Engine.Nn.Flatten(), new Engine.Nn.Linear(4, 3, generator: new Engine.Tensors.Generator(1)));
        var x = Engine.Tensors.Tensor.Uniform([2, 4], 0, 1, new Engine.Tensors.Generator(2));
        var y = Engine.Tensors.Tensor.FromArray(new float[] { 0, 2 }, 2);
        var r = CertifiedLosses.Compute(model, x, y, o with { KappaStart = 0, KappaEnd = 0, NumClasses = 3 }, zero.At(6));
        Assert.That(r.CleanLogits, Is.Null);
        Assert.That(r.RobustLoss, Is.Not.Null);
    }

    [Test]
    public void SmoothedRampFollowsAutoLirpasFormula()
    {
        // Ramp of 20 batches (4 epochs of 5, no warm-up): mid step 5, alpha = 1 / (15·4·5³ + 5·5³) = 1 / 8125.
        var o = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 1f, Epochs = 4, WarmupEpochs = 0, RampEpochs = 4, EpsRamp = EpsRamp.Smoothed };
        var s = new TrainingSchedule(o, 5);
        Assert.That(s.At(0).Eps, Is.EqualTo(1f / 8125).Within(1e-9));          // t = 1
        Assert.That(s.At(2).Eps, Is.EqualTo(81f / 8125).Within(1e-8));         // t = 3
        Assert.That(s.At(4).Eps, Is.EqualTo(625f / 8125).Within(1e-7));        // t = 5, the switch
        float midValue = 625f / 8125;
        Assert.That(s.At(9).Eps, Is.EqualTo(midValue + (1 - midValue) * 5 / 15).Within(1e-6)); // t = 10
        Assert.That(s.At(19).Eps, Is.EqualTo(1f));
        // Slopes match at the switch: 4·alpha·5³ = (1 − midValue) / 15.
        Assert.That(4.0 * 125 / 8125, Is.EqualTo((1 - 625.0 / 8125) / 15).Within(1e-12));
        float prev = 0;
        for (int i = 0; i < 25; i++)
        {
            Assert.That(s.At(i).Eps, Is.GreaterThanOrEqualTo(prev), $"step {i}");
            prev = s.At(i).Eps;
        }
    }

    [Test]
    public void CosineAndConstantLearningRates()
    {
        var cos = new TrainingSchedule(new CertifiedTrainingOptions { Method = TrainMethod.Standard, Epochs = 4, LearningRate = 2e-3f }, 10);
        Assert.That(cos.At(0).LearningRate, Is.EqualTo(2e-3f));
        Assert.That(cos.At(20).LearningRate, Is.EqualTo(1e-3f).Within(1e-9));
        Assert.That(cos.At(30).LearningRate, Is.EqualTo(2e-3 * (1 + Math.Cos(Math.PI * 0.75)) / 2).Within(1e-9));
        var constant = new TrainingSchedule(new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.1f, Epochs = 4, LrSchedule = LrSchedule.Constant }, 10);
        Assert.That(constant.At(39).LearningRate, Is.EqualTo(5e-4f));
        var decays = new TrainingSchedule(new CertifiedTrainingOptions { Method = TrainMethod.Pgd, Eps = 0.1f, Epochs = 6, LrDecayEpochs = [2, 4], LrDecayFactor = 0.5f, LearningRate = 1f }, 3);
        Assert.That(new[] { 0, 5, 6, 11, 12, 17 }.Select(i => decays.At(i).LearningRate), Is.EqualTo(new[] { 1f, 1f, 0.5f, 0.5f, 0.25f, 0.25f }));
    }

    [Test]
    public void MethodDefaults()
    {
        var ibp = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.1f };
        Assert.That((ibp.Epochs, ibp.BatchSize, ibp.LearningRate), Is.EqualTo((20, 256, 5e-4f)));
        Assert.That((ibp.ResolvedWarmupEpochs, ibp.ResolvedRampEpochs, ibp.ResolvedGradClipNorm, ibp.ResolvedLrSchedule), Is.EqualTo((1, 10, 10f, LrSchedule.Step)));
        Assert.That(ibp.ResolvedLrDecayEpochs, Is.EqualTo(new[] { 15 }));
        var one = ibp with { Epochs = 1 };
        Assert.That((one.ResolvedWarmupEpochs, one.ResolvedRampEpochs, one.ResolvedLrDecayEpochs.Count), Is.EqualTo((0, 1, 0)));
        var s = new TrainingSchedule(one, 4);
        Assert.That(s.At(0).Eps, Is.EqualTo(0.025f).Within(1e-7));
        Assert.That(s.At(3).Eps, Is.EqualTo(0.1f));
        var pgd = new CertifiedTrainingOptions { Method = TrainMethod.Pgd, Eps = 0.1f };
        Assert.That((pgd.ResolvedWarmupEpochs, pgd.ResolvedRampEpochs, pgd.ResolvedPgdSteps, pgd.ResolvedGradClipNorm), Is.EqualTo((0, 0, 10, 0f)));
        Assert.That(new TrainingSchedule(pgd, 3).At(0).Eps, Is.EqualTo(0.1f));
        var noise = new CertifiedTrainingOptions { Method = TrainMethod.Noise, Sigma = 0.25f };
        Assert.That(new TrainingSchedule(noise, 3).At(0).Sigma, Is.EqualTo(0.25f));
        Assert.That(new CertifiedTrainingOptions { Method = TrainMethod.Sabr, Eps = 0.1f }.ResolvedPgdSteps, Is.EqualTo(5));
        Assert.That(new CertifiedTrainingOptions { Method = TrainMethod.Standard }.ResolvedLrSchedule, Is.EqualTo(LrSchedule.Cosine));
    }

    [Test]
    public void MethodNamesRoundTrip()
    {
        foreach (var name in TrainMethods.Names) Assert.That(TrainMethods.Parse(name).Name(), Is.EqualTo(name));
        Assert.That(TrainMethods.Parse("CROWN-IBP"), Is.EqualTo(TrainMethod.CrownIbp));
        Assert.Throws<ArgumentException>(() => TrainMethods.Parse("ibp2"));
    }

    private static readonly (string Why, CertifiedTrainingOptions Options, string Message)[] Bad =
    [
        ("negative eps", new() { Method = TrainMethod.Ibp, Eps = -0.1f }, "eps"),
        ("NaN eps", new() { Method = TrainMethod.Ibp, Eps = float.NaN }, "eps"),
        ("ibp without eps", new() { Method = TrainMethod.Ibp }, "needs a radius"),
        ("pgd without eps", new() { Method = TrainMethod.Pgd }, "needs a radius"),
        ("noise without sigma", new() { Method = TrainMethod.Noise }, "sigma"),
        ("lambda 0", new() { Method = TrainMethod.Sabr, Eps = 0.1f, SabrLambda = 0 }, "lambda"),
        ("lambda > 1", new() { Method = TrainMethod.Sabr, Eps = 0.1f, SabrLambda = 1.5f }, "lambda"),
        ("alpha < 0", new() { Method = TrainMethod.CcIbp, Eps = 0.1f, Alpha = -0.1f }, "alpha"),
        ("alpha > 1", new() { Method = TrainMethod.MtlIbp, Eps = 0.1f, Alpha = 1.1f }, "alpha"),
        ("kappa end > 1", new() { Method = TrainMethod.Ibp, Eps = 0.1f, KappaEnd = 2 }, "kappa"),
        ("kappa start < 0", new() { Method = TrainMethod.MtlIbp, Eps = 0.1f, KappaStart = -0.5f }, "kappa start"),
        ("beta end < 0", new() { Method = TrainMethod.CrownIbp, Eps = 0.1f, BetaEnd = -1 }, "beta"),
        ("zero epochs", new() { Method = TrainMethod.Standard, Epochs = 0 }, "epochs"),
        ("ramp too long", new() { Method = TrainMethod.Ibp, Eps = 0.1f, Epochs = 5, WarmupEpochs = 1, RampEpochs = 5 }, "exceed"),
        ("warm-up only", new() { Method = TrainMethod.Ibp, Eps = 0.1f, Epochs = 2, WarmupEpochs = 2, RampEpochs = 0 }, "warm-up"),
        ("zero lr", new() { Method = TrainMethod.Standard, LearningRate = 0 }, "learning rate"),
        ("decay epoch out of range", new() { Method = TrainMethod.Pgd, Eps = 0.1f, Epochs = 5, LrDecayEpochs = [5] }, "decay epoch"),
        ("decay factor 0", new() { Method = TrainMethod.Pgd, Eps = 0.1f, LrDecayFactor = 0 }, "decay factor"),
        ("negative clip", new() { Method = TrainMethod.Ibp, Eps = 0.1f, GradClipNorm = -1 }, "clipping"),
        ("zero PGD steps", new() { Method = TrainMethod.Pgd, Eps = 0.1f, PgdSteps = 0 }, "PGD steps"),
        ("empty domain", new() { Method = TrainMethod.Pgd, Eps = 0.1f, ClipLow = 1, ClipHigh = 0 }, "domain"),
        ("batch 0", new() { Method = TrainMethod.Standard, BatchSize = 0 }, "batch size"),
    ];

    [Test]
    public void BadOptionsThrowNamingTheSetting([Range(0, 20)] int i)
    {
        var (why, options, message) = Bad[i];
        var e = Assert.Throws<ArgumentException>(options.Validate, why);
        Assert.That(e!.Message, Does.Contain(message), why);
        Assert.Throws<ArgumentException>(() => new TrainingSchedule(options, 3), why);
    }
}
