using Engine.Attacks;
using Engine.Autograd;
using Engine.Tensors;
using NUnit.Framework;
using static Engine.Tests.Attacks.AttackModels;

namespace Engine.Tests.Attacks;

public class AttackArgumentTests
{
    private static readonly Tensor X = Tensor.Full([3, 4], 0.5f);
    private static readonly Tensor Y = Tensor.FromArray([0f, 1f, 2f], 3);

    private static void Throws(TestDelegate call, params string[] fragments)
    {
        var ex = Assert.Throws<ArgumentException>(call)!;
        foreach (var f in fragments) Assert.That(ex.Message, Does.Contain(f));
    }

    [Test]
    public void BadRadiiAndSettingsAreRejected()
    {
        Throws(() => Fgsm.Attack(Mlp, X, Y, -0.1f), "Fgsm.Attack", "eps", "-0.1");
        Throws(() => Fgsm.Attack(Mlp, X, Y, float.NaN), "Fgsm.Attack", "eps");
        Throws(() => Pgd.Attack(Mlp, X, Y, new PgdOptions { Eps = -1f }), "Pgd.Attack", "Eps");
        Throws(() => Pgd.Attack(Mlp, X, Y, new PgdOptions { Steps = 0 }), "Steps");
        Throws(() => Pgd.Attack(Mlp, X, Y, new PgdOptions { Restarts = 0 }), "Restarts");
        Throws(() => Pgd.Attack(Mlp, X, Y, new PgdOptions { StepSize = 0 }), "StepSize");
        Throws(() => Pgd.Attack(Mlp, X, Y, new PgdOptions { ClipLow = 1, ClipHigh = 0 }), "ClipLow");
        Throws(() => DeepFool.Attack(Mlp, X, Y, steps: 0), "DeepFool.Attack", "steps");
        Throws(() => DeepFool.Attack(Mlp, X, Y, overshoot: -1), "overshoot");
        Throws(() => Pgd.Minimize(Mlp, X, X, o => o.Sum(1), new BoxSearchOptions { RelativeStepSize = -1 }), "RelativeStepSize");
    }

    [Test]
    public void MismatchedShapesAndLabelsAreRejected()
    {
        Throws(() => Pgd.Attack(Mlp, X, Tensor.FromArray([0f, 1f], 2)), "labels", "[3, 4]", "[2]");
        Throws(() => Fgsm.Attack(Mlp, X, Tensor.FromArray([0f, 1f, 3f], 3), 0.1f), "label 2", "[0, 3)");
        Throws(() => DeepFool.Attack(Mlp, X, Tensor.FromArray([0f, 0.5f, 1f], 3)), "label 1");
        Throws(() => Pgd.Attack(Mlp, Tensor.Full([3, 5], 0.5f), Y), "[3, 5]");
        Throws(() => Pgd.Attack(AttackModel.FromFunc(t => t.Sum(1)), X, Y), "logits [3, C]", "[3]");
        Throws(() => Pgd.Attack(AttackModel.FromFunc(t => t.Sum(1, keepDim: true)), X, Y), "C >= 2", "[3, 1]");
        Throws(() => Pgd.Minimize(AttackModel.FromFunc(t => t.Sum()), X, X, o => o, new BoxSearchOptions()), "batch dimension");
        Throws(() => Pgd.Attack(Mlp, Tensor.Zeros(0, 4), Tensor.Zeros(0)), "non-empty");
    }

    [Test]
    public void InputsOutsideTheDomainAreRejected()
    {
        Throws(() => Pgd.Attack(Mlp, X * 3f, Y), "outside the domain", "[0, 1]");
        Throws(() => Fgsm.Attack(Mlp, X - 1f, Y, 0.1f), "outside the domain");
    }

    [Test]
    public void BadBoxesAndSpecsAreRejected()
    {
        var lo = Tensor.Zeros(3, 4); var hi = Tensor.Ones(3, 4);
        var c = Tensor.FromArray([1f, -1f, 0f], 1, 3); var d = Tensor.Zeros(1);
        Throws(() => Pgd.MinimizeSpec(Mlp, hi, lo, c, d), "lower 1 > upper 0");
        Throws(() => Pgd.MinimizeSpec(Mlp, lo, Tensor.Ones(3, 5), c, d), "[3, 4]", "[3, 5]");
        Throws(() => Pgd.MinimizeSpec(Mlp, lo, hi.Clone() * float.PositiveInfinity, c, d), "finite");
        Throws(() => Pgd.MinimizeSpec(Mlp, lo, hi, c, Tensor.Zeros(2)), "C [1, 3]", "d [2]");
        Throws(() => Pgd.MinimizeSpec(Mlp, lo, hi, Tensor.Zeros(2, 1, 3), Tensor.Zeros(1)), "C [2, 1, 3]");
        Throws(() => Pgd.MinimizeSpec(Mlp, lo, hi, Tensor.Zeros(1, 5), d), "[1, 5]", "model output [3, 3]");
        Throws(() => Pgd.Minimize(Mlp, lo, hi, o => o), "one value per sample", "[3, 3]");
    }

    [Test]
    public void AttacksNeedGradientMode()
    {
        var model = Affine([1f, 0f, 0f, 0f, 0f, 1f, 0f, 0f, 0f, 0f, 1f, 0f], [0f, 0f, 0f]);
        using var _ = new NoGrad();
        var ex = Assert.Throws<InvalidOperationException>(() => Pgd.Attack(model, X, Y))!;
        Assert.That(ex.Message, Does.Contain("NoGrad"));
    }
}
