using Engine.Autograd;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Elementwise;

/// <summary>Semantics of the public elementwise / reduction API: values, edge cases, NaN, stability, gradients at kinks, errors.</summary>
public class ElementwiseApiTests
{
    private static Tensor T(params float[] v) => Tensor.FromArray(v, v.Length);

    [Test]
    public void OperatorsComputeTheExpectedValues()
    {
        var a = T(1, 2, 3);
        var b = T(4, 5, 6);
        Assert.That((a + b).ToArray(), Is.EqualTo(new[] { 5f, 7, 9 }));
        Assert.That((a - b).ToArray(), Is.EqualTo(new[] { -3f, -3, -3 }));
        Assert.That((a * b).ToArray(), Is.EqualTo(new[] { 4f, 10, 18 }));
        Assert.That((b / a).ToArray(), Is.EqualTo(new[] { 4f, 2.5f, 2 }));
        Assert.That((-a).ToArray(), Is.EqualTo(new[] { -1f, -2, -3 }));
        Assert.That((a * 2f).ToArray(), Is.EqualTo(new[] { 2f, 4, 6 }));
        Assert.That((2f * a).ToArray(), Is.EqualTo(new[] { 2f, 4, 6 }));
        Assert.That((1f - a).ToArray(), Is.EqualTo(new[] { 0f, -1, -2 }));
        Assert.That((a - 1f).ToArray(), Is.EqualTo(new[] { 0f, 1, 2 }));
        Assert.That((a + 0.5f).ToArray(), Is.EqualTo(new[] { 1.5f, 2.5f, 3.5f }));
        Assert.That((a / 4f).ToArray(), Is.EqualTo(new[] { 0.25f, 0.5f, 0.75f }));
        Assert.That((6f / a).ToArray(), Is.EqualTo(new[] { 6f, 3, 2 }));
        var m = Tensor.FromArray([1f, 2, 3, 4, 5, 6], 2, 3);
        Assert.That((m + T(10, 20, 30)).ToArray(), Is.EqualTo(new[] { 11f, 22, 33, 14, 25, 36 }));
        Assert.That((m * Tensor.FromArray([10f, 100], 2, 1)).ToArray(), Is.EqualTo(new[] { 10f, 20, 30, 400, 500, 600 }));
        Assert.That((Tensor.Scalar(2f) + Tensor.Scalar(3f)).Item(), Is.EqualTo(5f));
    }

    [Test]
    public void ComparisonsGiveZeroOneAndNoGradient()
    {
        var a = T(1, 2, 3, float.NaN).RequiresGrad_();
        var b = T(2, 2, 2, 2);
        Assert.That(Tensor.Gt(a, b).ToArray(), Is.EqualTo(new[] { 0f, 0, 1, 0 }));
        Assert.That(Tensor.Ge(a, b).ToArray(), Is.EqualTo(new[] { 0f, 1, 1, 0 }));
        Assert.That(Tensor.Lt(a, b).ToArray(), Is.EqualTo(new[] { 1f, 0, 0, 0 }));
        Assert.That(Tensor.Le(a, b).ToArray(), Is.EqualTo(new[] { 1f, 1, 0, 0 }));
        Assert.That(Tensor.Eq(a, b).ToArray(), Is.EqualTo(new[] { 0f, 1, 0, 0 }));
        Assert.That(Tensor.Ne(a, b).ToArray(), Is.EqualTo(new[] { 1f, 0, 1, 1 }));
        Assert.That(Tensor.Gt(a, 1.5f).ToArray(), Is.EqualTo(new[] { 0f, 1, 1, 0 }));
        Assert.That(Tensor.Eq(a, 3f).ToArray(), Is.EqualTo(new[] { 0f, 0, 1, 0 }));
        Assert.That(Tensor.Gt(a, b).RequiresGrad, Is.False);
    }

    [Test]
    public void IncompatibleShapesNameTheOpAndBothShapes()
    {
        var a = Tensor.Zeros(2, 3);
        var b = Tensor.Zeros(4);
        foreach (var (name, f) in new (string, Func<Tensor>)[]
                 {
                     ("Add", () => a + b), ("Sub", () => a - b), ("Mul", () => a * b), ("Div", () => a / b),
                     ("Maximum", () => Tensor.Maximum(a, b)), ("Gt", () => Tensor.Gt(a, b)),
                 })
        {
            var ex = Assert.Throws<ArgumentException>(() => f(), name);
            Assert.That(ex!.Message, Does.Contain(name).And.Contain("[2, 3]").And.Contain("[4]"));
        }
        var w = Assert.Throws<ArgumentException>(() => Tensor.Where(Tensor.Zeros(5), a, a));
        Assert.That(w!.Message, Does.Contain("Where").And.Contain("[5]").And.Contain("[2, 3]"));
        var e = Assert.Throws<ArgumentException>(() => a.Expand(2, 4));
        Assert.That(e!.Message, Does.Contain("Expand").And.Contain("[2, 3]").And.Contain("[2, 4]"));
        var s = Assert.Throws<ArgumentException>(() => a.SumToShape([2]));
        Assert.That(s!.Message, Does.Contain("SumToShape").And.Contain("[2, 3]").And.Contain("[2]"));
    }

    [Test]
    public void BadAxesAreArgumentErrorsNamingTheShape()
    {
        var a = Tensor.Zeros(2, 3);
        foreach (var (name, f) in new (string, Func<Tensor>)[]
                 {
                     ("Sum", () => a.Sum(2)), ("Mean", () => a.Mean(-3)), ("Max", () => a.Max([0, 5])), ("LogSumExp", () => a.LogSumExp(7)),
                     ("ArgMax", () => a.ArgMax(2)), ("Softmax", () => a.Softmax(2)), ("LogSoftmax", () => a.LogSoftmax(-3)),
                 })
        {
            var ex = Assert.Throws<ArgumentException>(() => f(), name);
            Assert.That(ex!.Message, Does.Contain(name).And.Contain("[2, 3]"));
        }
        var dup = Assert.Throws<ArgumentException>(() => a.Sum([1, -1]));
        Assert.That(dup!.Message, Does.Contain("twice"));
        Assert.Throws<ArgumentException>(() => a.Clamp(float.NaN, 1));
        Assert.Throws<ArgumentException>(() => a.Softplus(beta: 0));
    }

    [Test]
    public void NaNPropagatesThroughReductionsAndMaxLikeOps()
    {
        var rows = Tensor.FromArray([1f, float.NaN, 3f, 4f, 5f, 6f], 2, 3);
        Assert.That(float.IsNaN(rows.Sum().Item()));
        Assert.That(float.IsNaN(rows.Max().Item()));
        Assert.That(float.IsNaN(rows.Min().Item()));
        Assert.That(float.IsNaN(rows.Mean().Item()));
        Assert.That(float.IsNaN(rows.LogSumExp().Item()));
        // Per row (contiguous path) and per column (vectorised column path).
        Assert.That(rows.Max(1).ToArray(), Is.EqualTo(new[] { float.NaN, 6f }));
        Assert.That(rows.Max(0).ToArray(), Is.EqualTo(new[] { 4f, float.NaN, 6f }));
        Assert.That(rows.Min(0).ToArray(), Is.EqualTo(new[] { 1f, float.NaN, 3f }));
        Assert.That(rows.Sum(0).ToArray(), Is.EqualTo(new[] { 5f, float.NaN, 9f }));
        Assert.That(rows.ArgMax(1).ToArray(), Is.EqualTo(new[] { 1f, 2f }));
        Assert.That(rows.ArgMin(0).ToArray(), Is.EqualTo(new[] { 0f, 0f, 0f }));
        var wide = Tensor.Ones(3, 40);
        wide.AsSpan()[45] = float.NaN;
        var colMax = wide.Max(0).ToArray();
        Assert.That(float.IsNaN(colMax[5]) && colMax.Count(float.IsNaN) == 1);
        var n = T(float.NaN, -1, 2);
        Assert.That(n.Relu().ToArray()[0], Is.NaN);
        Assert.That(n.Clamp(0, 1).ToArray()[0], Is.NaN);
        Assert.That(n.Sign().ToArray(), Is.EqualTo(new[] { float.NaN, -1f, 1f }));
        Assert.That(Tensor.Maximum(n, T(0, 0, 0)).ToArray(), Is.EqualTo(new[] { float.NaN, 0f, 2f }));
        Assert.That(Tensor.Minimum(T(0, 0, 0), n).ToArray(), Is.EqualTo(new[] { float.NaN, -1f, 0f }));
    }

    [Test]
    public void TranscendentalsAreStableAtTheExtremes()
    {
        var big = T(-1000, -100, -88, 0, 88, 100, 1000);
        var e = big.Exp().ToArray();
        Assert.That(e[0], Is.EqualTo(0f));
        Assert.That(e[1], Is.EqualTo((float)Math.Exp(-100)));   // a denormal, not flushed
        Assert.That(e[3], Is.EqualTo(1f));
        Assert.That(e[5], Is.EqualTo(float.PositiveInfinity));
        Assert.That(e.Any(float.IsNaN), Is.False);
        Assert.That(big.Sigmoid().ToArray(), Is.EqualTo(new[] { 0f, 0f, (float)(1 / (1 + Math.Exp(88))), 0.5f, 1f, 1f, 1f }).Within(1e-7f));
        Assert.That(big.Tanh().ToArray(), Is.EqualTo(new[] { -1f, -1, -1, 0, 1, 1, 1 }));
        var sp = T(-1000, -50, 0, 50, 1000).Softplus().ToArray();
        Assert.That(sp[0], Is.EqualTo(0f));
        Assert.That(sp[1], Is.EqualTo((float)Math.Exp(-50)).Within(1e-5 * Math.Exp(-50)));   // log1p keeps tiny values
        Assert.That(sp[2], Is.EqualTo(MathF.Log(2)).Within(1e-7f));
        Assert.That(sp[3], Is.EqualTo(50f));
        Assert.That(sp[4], Is.EqualTo(1000f));
        Assert.That(T(1000, 0).LogSoftmax(0).ToArray(), Is.EqualTo(new[] { 0f, -1000f }));
        Assert.That(T(1000, 1000).Softmax(0).ToArray(), Is.EqualTo(new[] { 0.5f, 0.5f }));
        Assert.That(T(1000, 1000).LogSumExp().Item(), Is.EqualTo(1000f + MathF.Log(2)).Within(1e-4f));
        Assert.That(T(-1000, -1000).LogSumExp().Item(), Is.EqualTo(-1000f + MathF.Log(2)).Within(1e-4f));
        Assert.That(T(float.NegativeInfinity, float.NegativeInfinity).LogSumExp().Item(), Is.EqualTo(float.NegativeInfinity));
        Assert.That(T(float.NegativeInfinity, 0).LogSumExp().Item(), Is.EqualTo(0f));
        Assert.That(T(-1, 2, 0).Log().ToArray(), Is.EqualTo(new[] { float.NaN, MathF.Log(2), float.NegativeInfinity }).Within(1e-7f));
    }

    [Test]
    public void PowFollowsIeeeSignRules()
    {
        var x = T(-2, -0.5f, 0, 2, float.NaN);
        Assert.That(x.Pow(3).ToArray(), Is.EqualTo(new[] { -8f, -0.125f, 0, 8, float.NaN }));
        Assert.That(x.Pow(2).ToArray(), Is.EqualTo(new[] { 4f, 0.25f, 0, 4, float.NaN }));
        Assert.That(x.Pow(0).ToArray(), Is.EqualTo(new[] { 1f, 1, 1, 1, 1 }));
        Assert.That(x.Pow(-1).ToArray(), Is.EqualTo(new[] { -0.5f, -2, float.PositiveInfinity, 0.5f, float.NaN }));
        var half = x.Pow(0.5f).ToArray();
        Assert.That(half[0], Is.NaN);
        Assert.That(half[3], Is.EqualTo(MathF.Sqrt(2)).Within(1e-6f));
        Assert.That(x.Pow(-2).ToArray()[2], Is.EqualTo(float.PositiveInfinity));
        Assert.That(T(-3).Pow(4).Item(), Is.EqualTo(81f).Within(1e-4f));
    }

    private static float[] GradOf(Tensor x, Func<Tensor, Tensor> f)
    {
        var leaf = x.Detach().RequiresGrad_();
        f(leaf).Sum().Backward();
        return leaf.Grad!.ToArray();
    }

    [Test]
    public void GradientsAtKinksFollowTheDocumentedConventions()
    {
        Assert.That(GradOf(T(0, 1, -1), t => t.Relu()), Is.EqualTo(new[] { 0f, 1, 0 }));
        Assert.That(GradOf(T(0, 1, -1), t => t.Abs()), Is.EqualTo(new[] { 0f, 1, -1 }));
        Assert.That(GradOf(T(-1, 0, 0.5f, 1, 2), t => t.Clamp(0, 1)), Is.EqualTo(new[] { 0f, 1, 1, 1, 0 }));
        Assert.That(GradOf(T(0, 2, -2), t => t.LeakyRelu(0.1f)), Is.EqualTo(new[] { 0.1f, 1, 0.1f }));
        // Max / Min reductions: ties share the gradient evenly.
        Assert.That(GradOf(T(1, 3, 3, 2), t => t.Max()), Is.EqualTo(new[] { 0f, 0.5f, 0.5f, 0 }));
        Assert.That(GradOf(Tensor.FromArray([1f, 1, 1, 5, 0, 5], 2, 3), t => t.Min(1)), Is.EqualTo(new[] { 1f / 3, 1f / 3, 1f / 3, 0, 1, 0 }));
        // Maximum / Minimum: ties split 0.5 / 0.5.
        var a = T(1, 2, 3).RequiresGrad_();
        var b = T(1, 3, 2).RequiresGrad_();
        Tensor.Maximum(a, b).Sum().Backward();
        Assert.That(a.Grad!.ToArray(), Is.EqualTo(new[] { 0.5f, 0, 1 }));
        Assert.That(b.Grad!.ToArray(), Is.EqualTo(new[] { 0.5f, 1, 0 }));
    }

    [Test]
    public void BroadcastGradientsSumBackToTheInputShape()
    {
        var x = Tensor.Ones(2, 3, 4).RequiresGrad_();
        var bias = Tensor.Zeros(3, 1).RequiresGrad_();
        var row = Tensor.Zeros(4).RequiresGrad_();
        (x + bias + row).Sum().Backward();
        Assert.That(bias.Grad!.Shape, Is.EqualTo(new[] { 3, 1 }));
        Assert.That(bias.Grad!.ToArray(), Is.All.EqualTo(8f));
        Assert.That(row.Grad!.ToArray(), Is.All.EqualTo(6f));
        Assert.That(x.Grad!.ToArray(), Is.All.EqualTo(1f));
    }

    [Test]
    public void WhereSelectsAndRoutesGradients()
    {
        var cond = T(1, 0, 1);
        var a = T(1, 2, 3).RequiresGrad_();
        var b = T(10, 20, 30).RequiresGrad_();
        var y = Tensor.Where(cond, a, b);
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 1f, 20, 3 }));
        y.Sum().Backward();
        Assert.That(a.Grad!.ToArray(), Is.EqualTo(new[] { 1f, 0, 1 }));
        Assert.That(b.Grad!.ToArray(), Is.EqualTo(new[] { 0f, 1, 0 }));
        Assert.That(Tensor.Where(cond, 7f, b).ToArray(), Is.EqualTo(new[] { 7f, 20, 7 }));
    }

    [Test]
    public void ReductionShapesAndValues()
    {
        var x = Tensor.Arange(24).Reshape(2, 3, 4);
        Assert.That(x.Sum(1).Shape, Is.EqualTo(new[] { 2, 4 }));
        Assert.That(x.Sum(1, keepDim: true).Shape, Is.EqualTo(new[] { 2, 1, 4 }));
        Assert.That(x.Sum([0, 2]).ToArray(), Is.EqualTo(new[] { 60f, 92, 124 }));
        Assert.That(x.Mean().Item(), Is.EqualTo(11.5f));
        Assert.That(x.Max([1, 2]).ToArray(), Is.EqualTo(new[] { 11f, 23 }));
        Assert.That(x.Min(-1).ToArray(), Is.EqualTo(new[] { 0f, 4, 8, 12, 16, 20 }));
        Assert.That(x.ArgMax(1).ToArray(), Is.EqualTo(new[] { 2f, 2, 2, 2, 2, 2, 2, 2 }));
        Assert.That(x.ArgMax(2, keepDim: true).Shape, Is.EqualTo(new[] { 2, 3, 1 }));
        Assert.That(x.Sum(Array.Empty<int>()).ToArray(), Is.EqualTo(x.ToArray()));
        var s = x.Softmax(1).Sum(1).ToArray();
        Assert.That(s, Is.All.EqualTo(1f).Within(1e-6f));
        Assert.That(Tensor.Scalar(3f).Sum().Item(), Is.EqualTo(3f));
    }

    [Test]
    public void ZeroSizeTensorsWork()
    {
        var e = Tensor.Zeros(0, 3);
        Assert.That((e + Tensor.Ones(3)).Shape, Is.EqualTo(new[] { 0, 3 }));
        Assert.That(e.Exp().Numel, Is.EqualTo(0));
        Assert.That(e.Sum().Item(), Is.EqualTo(0f));
        Assert.That(e.Sum(0).ToArray(), Is.EqualTo(new[] { 0f, 0, 0 }));
        Assert.That(e.Softmax(1).Numel, Is.EqualTo(0));
        Assert.That(e.Max(1).Shape, Is.EqualTo(new[] { 0 }));
    }

    [Test]
    public void NoGradScopesAndNonGradInputsRecordNothing()
    {
        var x = T(1, 2, 3).RequiresGrad_();
        using (new NoGrad())
        {
            Assert.That((x * 2f + x).Exp().Sum().RequiresGrad, Is.False);
        }
        Assert.That((T(1, 2) * T(3, 4)).Softmax(0).RequiresGrad, Is.False);
        Assert.That((x * x).Sum().GradFn!.Name, Is.EqualTo("Sum"));
    }
}
