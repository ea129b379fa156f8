using NUnit.Framework;
using Engine.Autograd;
using Engine.Graph;
using Engine.Tensors;

namespace Engine.Tests.Onnx;

/// <summary>The graph ops added for ONNX import (Transpose, Concat, Div): forward, gradients and bad input.</summary>
[TestFixture]
public class ImportOpsTests
{
    private static Tensor Run(Op op, params Tensor[] inputs) => op.Forward(ForwardContext.Eval, inputs);

    [Test]
    public void TransposeForwardGradientAndErrors()
    {
        var x = Tensor.FromArray([.. Enumerable.Range(0, 24).Select(i => (float)i)], 2, 3, 4);
        var y = Run(new TransposeOp(2, 0, 1), x);
        Assert.That(y.Shape, Is.EqualTo(new[] { 4, 2, 3 }));
        Assert.That(y.ToArray()[..4], Is.EqualTo(new[] { 0f, 4f, 8f, 12f }));
        GradCheck.Assert(t => Run(new TransposeOp(1, 2, 0), t[0]) * Tensor.Arange(12).Reshape(3, 2, 2), [Tensor.Randn(2, 3, 2)]);
        Assert.Throws<ArgumentException>(() => new TransposeOp(0, 0, 1));
        var ex = Assert.Throws<ArgumentException>(() => Run(new TransposeOp(1, 0), x))!;
        Assert.That(ex.Message, Does.Contain("[2, 3, 4]"));
    }

    [Test]
    public void ConcatForwardGradientAndErrors()
    {
        var a = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2);
        var b = Tensor.FromArray([5f, 6f], 2, 1);
        var y = Run(new ConcatOp(-1), a, b);
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 1f, 2f, 5f, 3f, 4f, 6f }));
        GradCheck.Assert(t => Run(new ConcatOp(1), t[0], t[1]) * Tensor.Arange(10).Reshape(2, 5), [Tensor.Randn(2, 2), Tensor.Randn(2, 3)]);
        Assert.Throws<ArgumentException>(() => Run(new ConcatOp(0), a, b));
    }

    [Test]
    public void DivForwardGradientAndErrors()
    {
        var y = Run(new DivOp(), Tensor.FromArray([1f, 4f], 2), Tensor.FromArray([2f], 1));
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 0.5f, 2f }));
        var den = Tensor.Rand(3, 2) + 1f;
        GradCheck.Assert(t => Run(new DivOp(), t[0], t[1]), [Tensor.Randn(3, 2), den]);
        Assert.Throws<ArgumentException>(() => Run(new DivOp(), Tensor.Zeros(2, 3), Tensor.Ones(4)));
    }
}
