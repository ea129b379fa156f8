using Engine.Attacks;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.Attacks.AttackModels;

namespace Engine.Tests.Attacks;

public class PgdTests
{
    // Two classes over five inputs; dw = w_0 − w_1 has no zero entry, so the optimal LInf step is unique.
    private static readonly float[] W2 = [0.5f, -1f, 2f, 0.25f, -0.75f, -0.5f, 1f, -1f, 0.5f, 0.25f];
    private static readonly float[] B2 = [0.3f, -0.2f];
    private const float Wide = 10f;

    private static (Tensor x, Tensor y) LinearBatch()
    {
        var x = Tensor.Uniform([6, 5], -1f, 1f, new Generator(3));
        return (x, Tensor.FromArray([0f, 1f, 0f, 1f, 1f, 0f], 6));
    }

    // For y = W x + b: the direction w_y − w_other and the clean margin per sample.
    private static (float[][] dw, float[] margin) LinearTruth(Tensor x, Tensor y)
    {
        int n = x.Size(0);
        var xs = x.ToArray(); var ys = y.ToArray();
        var dw = new float[n][]; var m = new float[n];
        for (int i = 0; i < n; i++)
        {
            int t = (int)ys[i], o = 1 - t;
            dw[i] = Enumerable.Range(0, 5).Select(j => W2[t * 5 + j] - W2[o * 5 + j]).ToArray();
            m[i] = B2[t] - B2[o] + Enumerable.Range(0, 5).Sum(j => dw[i][j] * xs[i * 5 + j]);
        }
        return (dw, m);
    }

    [TestCase(AttackLoss.Margin)]
    [TestCase(AttackLoss.CrossEntropy)]
    public void LInfFindsTheClosedFormOptimumOfALinearModel(AttackLoss loss)
    {
        var model = Affine(W2, B2);
        var (x, y) = LinearBatch();
        const float eps = 0.1f;
        var r = Pgd.Attack(model, x, y, new PgdOptions { Eps = eps, Steps = 20, Loss = loss, ClipLow = -Wide, ClipHigh = Wide, Seed = 1 });
        var (dw, m) = LinearTruth(x, y);
        var xs = x.ToArray(); var adv = r.Adversarial.ToArray();
        for (int i = 0; i < 6; i++)
        {
            for (int j = 0; j < 5; j++)
                Assert.That(adv[i * 5 + j], Is.EqualTo(xs[i * 5 + j] - eps * MathF.Sign(dw[i][j])).Within(1e-6f), $"sample {i} element {j}");
            Assert.That(r.Margins[i], Is.EqualTo(m[i] - eps * dw[i].Sum(MathF.Abs)).Within(1e-4f), $"sample {i}");
        }
    }

    [Test]
    public void L2FindsTheClosedFormOptimumOfALinearModel()
    {
        var model = Affine(W2, B2);
        var (x, y) = LinearBatch();
        const float eps = 0.3f;
        var (dw, m) = LinearTruth(x, y);
        var xs = x.ToArray();
        foreach (bool random in new[] { false, true })
        {
            var r = Pgd.Attack(model, x, y, new PgdOptions
            {
                Norm = Norm.L2, Eps = eps, Steps = 30, Loss = AttackLoss.Margin, RandomStart = random, ClipLow = -Wide, ClipHigh = Wide,
            });
            var adv = r.Adversarial.ToArray();
            for (int i = 0; i < 6; i++)
            {
                float norm = MathF.Sqrt(dw[i].Sum(v => v * v));
                float optimum = m[i] - eps * norm;
                // Nothing in the ball beats the optimum; from a random start the orthogonal part of the start
                // decays only geometrically, so the search gets close rather than exact.
                Assert.That(r.Margins[i], Is.GreaterThanOrEqualTo(optimum - 1e-4f), $"sample {i}");
                if (random)
                    Assert.That(r.Margins[i], Is.LessThan(m[i] - 0.97f * eps * norm), $"sample {i}");
                else
                {
                    Assert.That(r.Margins[i], Is.EqualTo(optimum).Within(1e-4f), $"sample {i}");
                    for (int j = 0; j < 5; j++)
                        Assert.That(adv[i * 5 + j], Is.EqualTo(xs[i * 5 + j] - eps * dw[i][j] / norm).Within(1e-5f));
                }
            }
        }
    }

    [TestCase(Norm.LInf, 0.12f)]
    [TestCase(Norm.L2, 0.2f)]
    public void EveryIterateStaysInTheBallAndTheDomain(Norm norm, float eps)
    {
        var (x, y) = Problem(40, 101);
        var seen = new List<Tensor>();
        var mlp = Mlp;
        var recorder = AttackModel.FromFunc(t => { seen.Add(t.Detach().Clone()); return Executor.Forward(mlp.Graph, t); });
        var r = Pgd.Attack(recorder, x, y, new PgdOptions { Norm = norm, Eps = eps, Steps = 10, Restarts = 2, Loss = AttackLoss.Margin, Seed = 4 });
        mlp.ZeroGrad();
        Assert.That(seen, Has.Count.EqualTo(2 * 11));
        foreach (var p in seen.Append(r.Adversarial))
        {
            var d = norm == Norm.LInf ? LInfDist(p, x) : L2Dist(p, x);
            Assert.That(d, Has.All.LessThanOrEqualTo(eps * (1 + 1e-5f) + 1e-6f));
            Assert.That(p.ToArray(), Has.All.InRange(0f, 1f));
        }
        // Points at the ball's surface are where the loss is best: the search must reach it, not idle inside.
        var final = norm == Norm.LInf ? LInfDist(r.Adversarial, x) : L2Dist(r.Adversarial, x);
        Assert.That(final.Max(), Is.GreaterThan(eps * 0.9f));
    }

    [Test]
    public void ImageBatchesAreMeasuredPerSampleOverAllTheirElements()
    {
        var g = new Generator(31);
        var model = new Sequential(new Conv2d(2, 4, 3, padding: 1, generator: g), new ReLU(), new Flatten(), new Linear(4 * 5 * 5, 3, generator: g));
        var x = Tensor.Uniform([6, 2, 5, 5], 0f, 1f, new Generator(32));
        var y = Tensor.FromArray([0f, 1f, 2f, 0f, 1f, 2f], 6);
        foreach (var norm in new[] { Norm.LInf, Norm.L2 })
        {
            float eps = norm == Norm.LInf ? 0.05f : 0.5f;
            var r = Pgd.Attack(model, x, y, new PgdOptions { Norm = norm, Eps = eps, Steps = 8, Seed = 2 });
            Assert.That(r.Adversarial.Shape, Is.EqualTo(x.Shape));
            var d = norm == Norm.LInf ? LInfDist(r.Adversarial, x) : L2Dist(r.Adversarial, x);
            Assert.That(d, Has.All.LessThanOrEqualTo(eps * (1 + 1e-5f) + 1e-6f), $"{norm}");
            Assert.That(d, Has.All.GreaterThan(eps * 0.5f), $"{norm}: each sample moves on its own budget");
        }
    }

    [Test]
    public void PgdSucceedsAtLeastAsOftenAsFgsm()
    {
        var (x, y) = Problem(200, 202);
        var mlp = Mlp;
        Assert.That(Accuracy(mlp, x, y), Is.GreaterThan(0.9f), "the MLP should have learned the rule");
        foreach (var loss in new[] { AttackLoss.CrossEntropy, AttackLoss.Margin })
        {
            var fgsm = Fgsm.Attack(mlp, x, y, 0.08f, loss: loss);
            var pgd = Pgd.Attack(mlp, x, y, new PgdOptions { Eps = 0.08f, Steps = 20, Loss = loss, Seed = 9 });
            Assert.That(pgd.SuccessRate, Is.GreaterThanOrEqualTo(fgsm.SuccessRate), $"{loss}");
            Assert.That(pgd.SuccessRate, Is.GreaterThan(1 - Accuracy(mlp, x, y) + 0.05f), $"{loss}: the attack should flip some correct predictions");
        }
    }

    [TestCase(Norm.LInf)]
    [TestCase(Norm.L2)]
    public void MoreRestartsNeverMakeTheResultWorse(Norm norm)
    {
        var (x, y) = Problem(60, 303);
        var o = new PgdOptions { Norm = norm, Eps = norm == Norm.LInf ? 0.05f : 0.1f, Steps = 5, Seed = 12 };
        var one = Pgd.Attack(Mlp, x, y, o);
        var four = Pgd.Attack(Mlp, x, y, o with { Restarts = 4 });
        for (int i = 0; i < 60; i++) Assert.That(four.Margins[i], Is.LessThanOrEqualTo(one.Margins[i]), $"sample {i}");
        Assert.That(four.SuccessCount, Is.GreaterThanOrEqualTo(one.SuccessCount));
    }

    [Test]
    public void TheSameSeedGivesTheSameResult()
    {
        var (x, y) = Problem(30, 404);
        var o = new PgdOptions { Norm = Norm.L2, Eps = 0.2f, Steps = 3, Restarts = 2, Seed = 77 };
        var a = Pgd.Attack(Mlp, x, y, o);
        var b = Pgd.Attack(Mlp, x, y, o);
        var c = Pgd.Attack(Mlp, x, y, o with { Seed = 78 });
        Assert.That(b.Adversarial.ToArray(), Is.EqualTo(a.Adversarial.ToArray()));
        Assert.That(b.Margins, Is.EqualTo(a.Margins));
        Assert.That(c.Adversarial.ToArray(), Is.Not.EqualTo(a.Adversarial.ToArray()));
    }

    [Test]
    public void RunsTheModelInEvaluationModeAndLeavesItsStateAlone()
    {
        var g = new Generator(21);
        var model = new Sequential(new Linear(4, 16, generator: g), new ReLU(), new Dropout(0.5f, g), new Linear(16, 3, generator: g));
        var (x, y) = Problem(20, 505);
        var o = new PgdOptions { Eps = 0.1f, Steps = 5, Seed = 3 };
        var training = Pgd.Attack(model, x, y, o);
        Assert.That(model.Training, Is.True);
        var again = Pgd.Attack(model, x, y, o);
        model.Eval();
        var evaluating = Pgd.Attack(model, x, y, o);
        // Dropout active would draw fresh masks each forward, so the three runs would differ.
        Assert.That(again.Adversarial.ToArray(), Is.EqualTo(training.Adversarial.ToArray()));
        Assert.That(evaluating.Adversarial.ToArray(), Is.EqualTo(training.Adversarial.ToArray()));
        Fgsm.Attack(model, x, y, 0.1f);
        DeepFool.Attack(model, x, y, steps: 3);
        foreach (var p in model.Parameters())
        {
            Assert.That(p.Grad, Is.Null);
            Assert.That(p.RequiresGrad, Is.True);
        }
    }

    [TestCase(AttackLoss.Margin)]
    [TestCase(AttackLoss.CrossEntropy)]
    public void TrainingPointOfOneLongStepIsTheClosedFormCornerOfALinearModel(AttackLoss loss)
    {
        // From any start, one sign step of 2.5·eps projected onto the box lands on the corner x − eps·sign(dw).
        var model = Affine(W2, B2);
        var (x, y) = LinearBatch();
        const float eps = 0.1f;
        var adv = Pgd.TrainingPoint(model, x, y, new PgdOptions { Eps = eps, Steps = 1, Loss = loss, ClipLow = -Wide, ClipHigh = Wide, Seed = 5 }).ToArray();
        var (dw, _) = LinearTruth(x, y);
        var xs = x.ToArray();
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 5; j++)
                Assert.That(adv[i * 5 + j], Is.EqualTo(xs[i * 5 + j] - eps * MathF.Sign(dw[i][j])).Within(1e-6f), $"sample {i} element {j}");
    }

    [Test]
    public void TrainingPointIsTheLastIterateInsideTheDomainAndLeavesTheParametersAlone()
    {
        var (x, y) = Problem(40, 101);
        var mlp = Mlp;
        var seen = new List<Tensor>();
        var recorder = AttackModel.FromFunc(t => { seen.Add(t.Detach().Clone()); return Executor.Forward(mlp.Graph, t); });
        var o = new PgdOptions { Eps = 0.12f, Steps = 4, Seed = 8 };
        var p = Pgd.TrainingPoint(recorder, x, y, o);
        mlp.ZeroGrad();
        // One forward per step and none to score the iterates; the result is the step after the last one seen.
        Assert.That(seen, Has.Count.EqualTo(4));
        Assert.That(p.RequiresGrad, Is.False);
        Assert.That(LInfDist(p, x), Has.All.LessThanOrEqualTo(0.12f * (1 + 1e-5f) + 1e-6f));
        Assert.That(p.ToArray(), Has.All.InRange(0f, 1f));
        Assert.That(p.ToArray(), Is.Not.EqualTo(seen[^1].ToArray()));
        // A module's parameters keep their gradients as they were, and the same seed gives the same point.
        var before = mlp.Parameters().Select(q => q.Grad?.ToArray()).ToList();
        var a = Pgd.TrainingPoint(mlp, x, y, o);
        var ps = mlp.Parameters().ToList();
        for (int k = 0; k < ps.Count; k++)
        {
            Assert.That(ps[k].Grad?.ToArray(), Is.EqualTo(before[k]));
            Assert.That(ps[k].RequiresGrad, Is.True);
        }
        Assert.That(Pgd.TrainingPoint(mlp, x, y, o).ToArray(), Is.EqualTo(a.ToArray()));
        // Its cross-entropy is above the clean one: the steps ascend the loss.
        Assert.That(Losses.CrossEntropy(mlp.Forward(a), y).Item(), Is.GreaterThan(Losses.CrossEntropy(mlp.Forward(x), y).Item()));
    }

    [Test]
    public void AGraphIsAttackedLikeItsModule()
    {
        var (x, y) = Problem(25, 606);
        var o = new PgdOptions { Eps = 0.1f, Steps = 5, Seed = 8 };
        var viaModule = Pgd.Attack(Mlp, x, y, o);
        var viaGraph = Pgd.Attack(Mlp.ToGraph(), x, y, o);
        Assert.That(viaGraph.Adversarial.ToArray(), Is.EqualTo(viaModule.Adversarial.ToArray()));
        Assert.That(Mlp.Parameters().Select(p => p.Grad), Has.All.Null, "the graph's initializers are the module's live parameters");
    }

    [Test]
    public void EarlyStopEndsOnceEverySampleIsFooled()
    {
        var model = Affine(W2, B2);
        var (x, y) = LinearBatch();
        int calls = 0;
        var counted = AttackModel.FromFunc(t => { calls++; return Executor.Forward(model.Graph, t); });
        var o = new PgdOptions { Eps = 5f, Steps = 10, Restarts = 3, Loss = AttackLoss.Margin, ClipLow = -Wide, ClipHigh = Wide, Seed = 2 };
        var full = Pgd.Attack(counted, x, y, o);
        Assert.That(calls, Is.EqualTo(3 * 11));
        calls = 0;
        var early = Pgd.Attack(counted, x, y, o with { EarlyStop = true });
        Assert.That(full.Success, Has.All.True);
        Assert.That(early.Success, Has.All.True);
        Assert.That(calls, Is.LessThan(11));
        model.ZeroGrad();
    }
}
