using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

/// <summary>
/// Expected trajectories are PyTorch's update rules evaluated by hand in double precision for a one-element
/// parameter starting at 1.0 with gradients 0.5, -0.2, 0.3 and lr 0.1 (see the formulas in each optimiser's docs).
/// </summary>
public class OptimizerTests
{
    private static readonly float[] Grads = [0.5f, -0.2f, 0.3f];

    private static float[] Run(Func<Tensor[], Optimizer> make, float start = 1f, float[]? grads = null)
    {
        var p = Tensor.FromArray([start], 1).RequiresGrad_();
        var opt = make([p]);
        var traj = new List<float>();
        foreach (var g in grads ?? Grads)
        {
            p.Grad = Tensor.FromArray([g], 1);
            opt.Step();
            traj.Add(p.Item());
        }
        return [.. traj];
    }

    private static void AssertTrajectory(float[] got, double[] want)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length));
        for (int i = 0; i < want.Length; i++)
            Assert.That(got[i], Is.EqualTo(want[i]).Within(2e-6 * (1 + Math.Abs(want[i]))), $"step {i + 1}");
    }

    [Test] public void SgdPlain() => AssertTrajectory(Run(ps => new Sgd(ps, 0.1f)), [0.95, 0.97, 0.94]);
    [Test] public void SgdMomentum() => AssertTrajectory(Run(ps => new Sgd(ps, 0.1f, momentum: 0.9f)), [0.95, 0.925, 0.8725]);
    [Test] public void SgdDampening() => AssertTrajectory(Run(ps => new Sgd(ps, 0.1f, momentum: 0.9f, dampening: 0.5f)), [0.95, 0.915, 0.8685]);
    [Test] public void SgdNesterov() => AssertTrajectory(Run(ps => new Sgd(ps, 0.1f, momentum: 0.9f, nesterov: true)), [0.905, 0.9025, 0.82525]);
    [Test] public void SgdWeightDecay() => AssertTrajectory(Run(ps => new Sgd(ps, 0.1f, momentum: 0.9f, weightDecay: 0.1f)), [0.94, 0.8966, 0.818574]);

    [Test] public void Adam() => AssertTrajectory(Run(ps => new Adam(ps, 0.1f)), [0.900000002, 0.8654394181165108, 0.8109953836811554]);
    [Test] public void AdamL2() => AssertTrajectory(Run(ps => new Adam(ps, 0.1f, weightDecay: 0.1f)), [0.9000000016666666, 0.8475190629593703, 0.7791121607663538]);
    [Test] public void AdamWDecoupled() => AssertTrajectory(Run(ps => new AdamW(ps, 0.1f, weightDecay: 0.1f)), [0.890000002, 0.8465394180965108, 0.7836299894801902]);

    [Test]
    public void AdamCustomBetasAndEps()
        => AssertTrajectory(Run(ps => new Adam(ps, 0.01f, beta1: 0.8f, beta2: 0.99f, eps: 1e-3f), -2f, [-1.5f, 0.25f, 4f]),
                            [-1.9900066622251833, -1.9850913032914226, -1.9904434847873442]);

    [Test]
    public void ParametersWithoutGradAreSkippedAndKeepTheirOwnStepCount()
    {
        var a = Tensor.FromArray([1f], 1).RequiresGrad_();
        var b = Tensor.FromArray([1f], 1).RequiresGrad_();
        var opt = new Adam([a, b], 0.1f);
        a.Grad = Tensor.FromArray([0.5f], 1);
        opt.Step();
        Assert.That(b.Item(), Is.EqualTo(1f));
        Assert.That(opt.ExpAvg(1), Is.Null);
        // b's first real update must be bias-corrected as step 1, like a fresh Adam.
        b.Grad = Tensor.FromArray([0.5f], 1);
        a.Grad = null;
        opt.Step();
        Assert.That(b.Item(), Is.EqualTo(0.900000002f).Within(1e-6));
        Assert.That(a.Item(), Is.EqualTo(0.900000002f).Within(1e-6));
    }

    [Test]
    public void ZeroGradClearsGradients()
    {
        var p = Tensor.Ones(3).RequiresGrad_();
        p.Grad = Tensor.Ones(3);
        var opt = new Sgd([p], 0.1f);
        opt.ZeroGrad();
        Assert.That(p.Grad, Is.Null);
    }

    [Test]
    public void BadArgumentsAreRejected()
    {
        var p = Tensor.Ones(2).RequiresGrad_();
        Assert.Throws<ArgumentException>(() => new Sgd([], 0.1f));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([p], -1f));
        Assert.Throws<ArgumentException>(() => new Sgd([p], 0.1f, nesterov: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([p], beta1: 1f));
        var q = Tensor.Ones(2).RequiresGrad_();
        q.Grad = Tensor.Ones(3);
        var ex = Assert.Throws<InvalidOperationException>(() => new Sgd([q], 0.1f).Step());
        Assert.That(ex!.Message, Does.Contain("[3]").And.Contain("[2]"));
    }

    [Test]
    public void UpdatesMatrixParametersElementwise()
    {
        // Every element follows the scalar trajectory independently (the fused kernel has no cross-element terms).
        var p = Tensor.Full([3, 5], 1f).RequiresGrad_();
        var opt = new AdamW([p], 0.1f, weightDecay: 0.1f);
        foreach (var g in Grads)
        {
            p.Grad = Tensor.Full([3, 5], g);
            opt.Step();
        }
        foreach (var v in p.ToArray()) Assert.That(v, Is.EqualTo(0.7836299894801902).Within(2e-6));
    }
}
