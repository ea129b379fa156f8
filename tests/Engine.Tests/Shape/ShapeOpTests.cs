using Engine.Autograd;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Shape;

public class ShapeOpTests
{
    [Test]
    public void PermuteAndTransposeMoveElements()
    {
        var x = Tensor.Arange(24).Reshape(2, 3, 4);
        var p = x.Permute(2, 0, 1);
        Assert.That(p.Shape, Is.EqualTo(new[] { 4, 2, 3 }));
        var xa = x.ToArray(); var pa = p.ToArray();
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 4; c++)
                    Assert.That(pa[(c * 2 + a) * 3 + b], Is.EqualTo(xa[(a * 3 + b) * 4 + c]));
        var t = x.Transpose(-1, 0);
        Assert.That(t.Shape, Is.EqualTo(new[] { 4, 3, 2 }));
        Assert.That(t.ToArray()[1 * 6 + 2 * 2 + 1], Is.EqualTo(xa[(1 * 3 + 2) * 4 + 1]));
    }

    [Test]
    public void NarrowSliceAndIndexSelectPickTheRightElements()
    {
        var x = Tensor.Arange(30).Reshape(3, 10);
        Assert.That(x.Narrow(1, 2, 3).ToArray(), Is.EqualTo(new float[] { 2, 3, 4, 12, 13, 14, 22, 23, 24 }));
        Assert.That(x.Slice(1, 1, 8, 3).ToArray(), Is.EqualTo(new float[] { 1, 4, 7, 11, 14, 17, 21, 24, 27 }));
        Assert.That(x.Slice(1, -3, 100).ToArray(), Is.EqualTo(new float[] { 7, 8, 9, 17, 18, 19, 27, 28, 29 }));
        Assert.That(x.Slice(0, 2, 1).Shape, Is.EqualTo(new[] { 0, 10 }));
        Assert.That(x.IndexSelect(0, [2, 0, 2]).Reshape(3, 10).Narrow(1, 0, 1).ToArray(), Is.EqualTo(new float[] { 20, 0, 20 }));
    }

    [Test]
    public void ConcatAndStackJoinAlongTheDimension()
    {
        var a = Tensor.Arange(6).Reshape(2, 3);
        var b = Tensor.Arange(6, 10).Reshape(2, 2);
        var c = Tensor.Concat([a, b], 1);
        Assert.That(c.Shape, Is.EqualTo(new[] { 2, 5 }));
        Assert.That(c.ToArray(), Is.EqualTo(new float[] { 0, 1, 2, 6, 7, 3, 4, 5, 8, 9 }));
        var s = Tensor.Stack([a, a.Narrow(0, 0, 2)], -1);
        Assert.That(s.Shape, Is.EqualTo(new[] { 2, 3, 2 }));
        Assert.That(s.ToArray()[..4], Is.EqualTo(new float[] { 0, 0, 1, 1 }));
    }

    [Test]
    public void GradientsOfLayoutOps()
    {
        var rng = new Random(10);
        GradCheck.Assert(x => x[0].Permute(2, 0, 1), [TestData.Tensor(rng, 2, 3, 4)]);
        GradCheck.Assert(x => x[0].Permute(1, 3, 0, 2), [TestData.Tensor(rng, 2, 3, 1, 2)]);
        GradCheck.Assert(x => x[0].Transpose(0, 1), [TestData.Tensor(rng, 3, 5)]);
        GradCheck.Assert(x => x[0].Transpose(-1, 0), [TestData.Tensor(rng, 2, 3, 4)]);
        GradCheck.Assert(x => x[0].Narrow(1, 1, 2), [TestData.Tensor(rng, 2, 4, 3)]);
        GradCheck.Assert(x => x[0].Slice(2, -4, 5, 2), [TestData.Tensor(rng, 2, 2, 5)]);
        GradCheck.Assert(x => x[0].Slice(0, 1, 7, 3), [TestData.Tensor(rng, 7, 2)]);
        GradCheck.Assert(x => x[0].IndexSelect(1, [2, 0, 2, 2]), [TestData.Tensor(rng, 2, 3, 2)]);
        GradCheck.Assert(x => Tensor.Concat(x, 1), [TestData.Tensor(rng, 2, 1, 3), TestData.Tensor(rng, 2, 3, 3), TestData.Tensor(rng, 2, 2, 3)]);
        GradCheck.Assert(x => Tensor.Concat(x, 0), [TestData.Tensor(rng, 2, 3), TestData.Tensor(rng, 1, 3)]);
        GradCheck.Assert(x => Tensor.Stack(x, 1), [TestData.Tensor(rng, 2, 3), TestData.Tensor(rng, 2, 3)]);
    }

    [Test]
    public void ConcatGradientSkipsInputsThatNeedNone()
    {
        var a = Tensor.Ones(2, 2).RequiresGrad_();
        var b = Tensor.Ones(2, 1);
        var y = Tensor.Concat([a, b], 1);
        y.Backward(Tensor.Arange(6).Reshape(2, 3));
        Assert.That(a.Grad!.ToArray(), Is.EqualTo(new float[] { 0, 1, 3, 4 }));
        Assert.That(b.Grad, Is.Null);
    }

    [Test]
    public void BadArgumentsNameTheOpAndShape()
    {
        var x = Tensor.Zeros(2, 3, 4);
        Assert.That(Assert.Throws<ArgumentException>(() => x.Permute(0, 1))!.Message, Does.Contain("Permute").And.Contain("[2, 3, 4]"));
        Assert.That(Assert.Throws<ArgumentException>(() => x.Permute(0, 1, 1))!.Message, Does.Contain("not a permutation"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => x.Transpose(0, 3))!.Message, Does.Contain("Transpose").And.Contain("[2, 3, 4]"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => x.Narrow(1, 2, 2))!.Message, Does.Contain("Narrow").And.Contain("[2, 3, 4]"));
        Assert.That(Assert.Throws<ArgumentException>(() => x.Slice(0, 0, 2, 0))!.Message, Does.Contain("step"));
        Assert.That(Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(2, [0, 4]))!.Message, Does.Contain("index 4").And.Contain("[2, 3, 4]"));
        Assert.That(Assert.Throws<ArgumentException>(() => Tensor.Concat([x, Tensor.Zeros(2, 4, 4)], 2))!.Message,
                    Does.Contain("[2, 3, 4]").And.Contain("[2, 4, 4]"));
        Assert.That(Assert.Throws<ArgumentException>(() => Tensor.Stack([x, Tensor.Zeros(2, 3, 5)]))!.Message, Does.Contain("[2, 3, 5]"));
        Assert.Throws<ArgumentException>(() => Tensor.Concat([]));
    }
}
