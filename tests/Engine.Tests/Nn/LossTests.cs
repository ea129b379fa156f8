using Engine.Autograd;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

public class LossTests
{
    private static readonly float[] Logits = [1f, 2f, 3f, 1f, 0f, -1f, 0.5f, -0.5f, 2f];

    // -log softmax row by row, in double, straight from the definition.
    private static double[][] NegLogSoftmax(float[] logits, int n, int c)
        => Enumerable.Range(0, n).Select(i =>
        {
            var row = logits.Skip(i * c).Take(c).Select(v => (double)v).ToArray();
            double lse = Math.Log(row.Sum(Math.Exp));
            return row.Select(v => lse - v).ToArray();
        }).ToArray();

    [Test]
    public void CrossEntropyMatchesDefinitionWithAndWithoutSmoothing([Values(0f, 0.1f, 0.5f)] float eps)
    {
        var nls = NegLogSoftmax(Logits, 3, 3);
        int[] y = [2, 0, 1];
        // PyTorch: (1 - eps) * nll + eps * mean_c(-log p_c), averaged over the batch.
        double want = Enumerable.Range(0, 3).Select(i => (1 - eps) * nls[i][y[i]] + eps * nls[i].Average()).Average();
        var got = Losses.CrossEntropy(Tensor.FromArray(Logits, 3, 3), Tensor.FromArray([2f, 0f, 1f], 3), eps).Item();
        Assert.That(got, Is.EqualTo(want).Within(1e-5));
        Assert.That(new CrossEntropyLoss(eps).Forward(Tensor.FromArray(Logits, 3, 3), Tensor.FromArray([2f, 0f, 1f], 3)).Item(), Is.EqualTo(got));
    }

    [Test]
    public void CrossEntropyAcceptsProbabilityTargets()
    {
        var probs = new float[] { 0.2f, 0.3f, 0.5f, 1f, 0f, 0f, 0f, 0.5f, 0.5f };
        var nls = NegLogSoftmax(Logits, 3, 3);
        double want = Enumerable.Range(0, 3).Select(i => Enumerable.Range(0, 3).Sum(j => probs[i * 3 + j] * nls[i][j])).Average();
        Assert.That(Losses.CrossEntropy(Tensor.FromArray(Logits, 3, 3), Tensor.FromArray(probs, 3, 3)).Item(), Is.EqualTo(want).Within(1e-5));
    }

    [Test]
    public void MultiMarginMatchesThePyTorchDocExample()
    {
        // torch.nn.MultiMarginLoss docs: x = [[0.1, 0.2, 0.4, 0.8]], y = [3] -> 0.3250.
        var x = Tensor.FromArray([0.1f, 0.2f, 0.4f, 0.8f], 1, 4);
        Assert.That(Losses.MultiMargin(x, Tensor.FromArray([3f], 1)).Item(), Is.EqualTo(0.325f).Within(1e-6));
        Assert.That(new MultiMarginLoss(p: 2).Forward(x, Tensor.FromArray([3f], 1)).Item(), Is.EqualTo((0.09 + 0.16 + 0.36) / 4).Within(1e-6));
        Assert.That(Losses.MultiMargin(x, Tensor.FromArray([0f], 1), margin: 0.05f).Item(), Is.EqualTo((0.15 + 0.35 + 0.75) / 4).Within(1e-6));
    }

    [Test]
    public void MseIsTheMeanSquaredDifference()
    {
        var p = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2);
        var t = Tensor.FromArray([1.5f, 2f, 1f, 4f], 2, 2);
        Assert.That(Losses.Mse(p, t).Item(), Is.EqualTo((0.25 + 4) / 4).Within(1e-6));
        Assert.That(new MseLoss().Forward(p, t).Item(), Is.EqualTo((0.25 + 4) / 4).Within(1e-6));
    }

    [Test]
    public void LossGradientsMatchFiniteDifferences()
    {
        var logits = Tensor.Uniform([4, 5], -2, 2, new Generator(1));
        var y = Tensor.FromArray([0f, 3f, 4f, 1f], 4);
        GradCheck.Assert(xs => Losses.CrossEntropy(xs[0], y), [logits]);
        GradCheck.Assert(xs => Losses.CrossEntropy(xs[0], y, 0.2f), [logits]);
        var soft = Tensor.Uniform([4, 5], 0, 1, new Generator(2));
        GradCheck.Assert(xs => Losses.CrossEntropy(xs[0], xs[1]), [logits, soft]);
        GradCheck.Assert(xs => Losses.Mse(xs[0], xs[1]), [logits, soft]);
        // Hinge kinks at margin - x_y + x_j = 0: use logits on a coarse grid offset so no term is near zero.
        var grid = Tensor.FromArray([0.13f, 0.91f, -0.42f, 1.77f, 0.35f, -1.21f, 0.05f, 0.63f, 2.49f, -0.88f, 0.27f, 1.43f, -0.66f, 0.71f, 0.12f, 3.1f, -0.3f, 0.4f, 1.1f, -2.2f], 4, 5);
        GradCheck.Assert(xs => Losses.MultiMargin(xs[0], y), [grid], eps: 1e-3f);
        GradCheck.Assert(xs => Losses.MultiMargin(xs[0], y, 1, 2), [grid], eps: 1e-3f);
    }

    [Test]
    public void BadTargetsAreRejected()
    {
        var logits = Tensor.Zeros(2, 3);
        Assert.That(Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, Tensor.FromArray([0f, 3f], 2)))!.Message, Does.Contain("[0, 3)"));
        Assert.That(Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, Tensor.FromArray([0.5f, 1f], 2)))!.Message, Does.Contain("0.5"));
        Assert.That(Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(logits, Tensor.Zeros(3)))!.Message, Does.Contain("[3]").And.Contain("[2, 3]"));
        Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(Tensor.Zeros(3), Tensor.Zeros(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(logits, Tensor.Zeros(2), 1.5f));
        Assert.That(Assert.Throws<ArgumentException>(() => Losses.Mse(logits, Tensor.Zeros(3, 2)))!.Message, Does.Contain("[3, 2]"));
        Assert.Throws<ArgumentException>(() => Losses.MultiMargin(logits, Tensor.FromArray([-1f, 0f], 2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.MultiMargin(logits, Tensor.Zeros(2), p: 3));
    }
}
