using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

public class ScheduleAndClipTests
{
    private static Sgd Opt(float lr) => new([Tensor.Ones(1).RequiresGrad_()], lr);

    private static List<float> Trace(LrScheduler s, int steps)
    {
        var r = new List<float> { s.Optimizer.LearningRate };
        for (int i = 0; i < steps; i++) { s.Step(); r.Add(s.Optimizer.LearningRate); }
        return r;
    }

    [Test]
    public void StepLRDecaysEveryStepSize()
    {
        var lrs = Trace(new StepLR(Opt(1f), stepSize: 2, gamma: 0.5f), 5);
        Assert.That(lrs, Is.EqualTo(new[] { 1f, 1f, 0.5f, 0.5f, 0.25f, 0.25f }));
    }

    [Test]
    public void CosineAnnealingFollowsClosedForm()
    {
        var lrs = Trace(new CosineAnnealingLR(Opt(1f), tMax: 4, etaMin: 0.1f), 4);
        double[] want = [1, 0.1 + 0.9 * (1 + Math.Cos(Math.PI / 4)) / 2, 0.55, 0.1 + 0.9 * (1 + Math.Cos(3 * Math.PI / 4)) / 2, 0.1];
        for (int i = 0; i < want.Length; i++) Assert.That(lrs[i], Is.EqualTo(want[i]).Within(1e-6), $"step {i}");
    }

    [Test]
    public void LinearWarmupThenCosine()
    {
        var opt = Opt(0.9f);
        var s = new LinearWarmup(opt, warmupSteps: 3, then: new CosineAnnealingLR(opt, tMax: 2), startFactor: 1f / 3);
        var lrs = Trace(s, 6);
        double[] want = [0.3, 0.5, 0.7, 0.9, 0.45, 0, 0.45];
        for (int i = 0; i < want.Length; i++) Assert.That(lrs[i], Is.EqualTo(want[i]).Within(1e-6), $"step {i}");
        Assert.That(opt.InitialLearningRate, Is.EqualTo(0.9f));
    }

    [Test]
    public void WarmupWithoutInnerScheduleHoldsTheBaseRate()
    {
        var lrs = Trace(new LinearWarmup(Opt(1f), 2, startFactor: 0.5f), 4);
        Assert.That(lrs, Is.EqualTo(new[] { 0.5f, 0.75f, 1f, 1f, 1f }));
    }

    [Test]
    public void ScheduleDrivesTheOptimiserStep()
    {
        var p = Tensor.FromArray([0f], 1).RequiresGrad_();
        var opt = new Sgd([p], 1f);
        var s = new StepLR(opt, 1, 0.5f);
        for (int i = 0; i < 3; i++)
        {
            p.Grad = Tensor.Ones(1);
            opt.Step();
            s.Step();
        }
        Assert.That(p.Item(), Is.EqualTo(-1.75f));
    }

    [Test]
    public void ClipGradNormScalesAllGradientsJointly()
    {
        var a = Tensor.Zeros(2).RequiresGrad_(); a.Grad = Tensor.FromArray([3f, 0f], 2);
        var b = Tensor.Zeros(1).RequiresGrad_(); b.Grad = Tensor.FromArray([4f], 1);
        var c = Tensor.Zeros(1).RequiresGrad_();
        float norm = GradClip.ClipGradNorm([a, b, c], 1f);
        Assert.That(norm, Is.EqualTo(5f).Within(1e-6));
        float coef = 1f / (5f + 1e-6f);
        Assert.That(a.Grad!.ToArray()[0], Is.EqualTo(3f * coef).Within(1e-6));
        Assert.That(b.Grad!.Item(), Is.EqualTo(4f * coef).Within(1e-6));
        Assert.That(GradClip.GradNorm([a, b]), Is.EqualTo(1f).Within(1e-5));
        Assert.That(c.Grad, Is.Null);
    }

    [Test]
    public void ClipGradNormLeavesSmallGradientsAlone()
    {
        var a = Tensor.Zeros(2).RequiresGrad_(); a.Grad = Tensor.FromArray([0.3f, 0.4f], 2);
        Assert.That(GradClip.ClipGradNorm([a], 10f), Is.EqualTo(0.5f).Within(1e-6));
        Assert.That(a.Grad!.ToArray(), Is.EqualTo(new[] { 0.3f, 0.4f }));
    }

    [Test]
    public void ClipGradNormReportsNonFiniteWithoutScaling()
    {
        var a = Tensor.Zeros(2).RequiresGrad_(); a.Grad = Tensor.FromArray([float.NaN, 1f], 2);
        Assert.That(float.IsNaN(GradClip.ClipGradNorm([a], 1f)));
        Assert.That(a.Grad!.ToArray()[1], Is.EqualTo(1f));
    }
}
