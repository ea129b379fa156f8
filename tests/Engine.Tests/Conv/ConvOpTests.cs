using Engine.Autograd;
using Engine.Cpu.Reference;
using Engine.Tensors;
using Engine.Tests.Shape;
using NUnit.Framework;

namespace Engine.Tests.Conv;

public class ConvOpTests
{
    [Test]
    public void Conv2dAutogradMatchesReferenceKernels()
    {
        var rng = new Random(40);
        var x = TestData.Tensor(rng, 3, 4, 9, 8).RequiresGrad_();
        var w = TestData.Tensor(rng, 6, 2, 3, 3).RequiresGrad_();
        var b = TestData.Tensor(rng, 6).RequiresGrad_();
        var y = Tensor.Conv2d(x, w, b, stride: (2, 1), padding: (1, 2), dilation: (1, 2), groups: 2);
        var geo = new Conv2dGeometry(3, 4, 9, 8, 6, 3, 3, 2, 1, 1, 2, 1, 2, 2);
        Assert.That(y.Shape, Is.EqualTo(new[] { 3, 6, geo.OutH, geo.OutW }));
        TestData.Close(y.ToArray(), ConvReference.Conv2dForward(x.ToArray(), w.ToArray(), b.ToArray(), geo), what: "forward");
        var g = TestData.Tensor(rng, y.Shape);
        y.Backward(g);
        TestData.Close(x.Grad!.ToArray(), ConvReference.Conv2dBackwardInput(g.ToArray(), w.ToArray(), geo), what: "dx");
        TestData.Close(w.Grad!.ToArray(), ConvReference.Conv2dBackwardWeight(x.ToArray(), g.ToArray(), geo), what: "dw");
        TestData.Close(b.Grad!.ToArray(), ConvReference.BiasGrad(g.ToArray(), 3, 6, geo.OutPixels), what: "db");
    }

    [Test]
    public void Conv2dGradCheck()
    {
        var rng = new Random(41);
        GradCheck.Assert(t => Tensor.Conv2d(t[0], t[1], t[2], stride: 1, padding: 1),
                         [TestData.Tensor(rng, 2, 2, 4, 5), TestData.Tensor(rng, 3, 2, 3, 3), TestData.Tensor(rng, 3)], maxPerInput: 16);
        GradCheck.Assert(t => Tensor.Conv2d(t[0], t[1], null, stride: 2, padding: 2, dilation: 2, groups: 2),
                         [TestData.Tensor(rng, 1, 4, 5, 6), TestData.Tensor(rng, 2, 2, 3, 2)], maxPerInput: 16);
        GradCheck.Assert(t => Tensor.Conv2d(t[0], t[1], t[2], groups: 3),
                         [TestData.Tensor(rng, 3, 3, 3), TestData.Tensor(rng, 3, 1, 2, 2), TestData.Tensor(rng, 3)], maxPerInput: 16);
        GradCheck.Assert(t => Tensor.Conv2d(t[0], t[1]),
                         [TestData.Tensor(rng, 2, 3, 2, 3), TestData.Tensor(rng, 2, 3, 1, 1)], maxPerInput: 16);
    }

    [Test]
    public void Conv2dSkipsTheInputGradientWhenNotNeeded()
    {
        var rng = new Random(42);
        var x = TestData.Tensor(rng, 2, 1, 6, 6);
        var w = TestData.Tensor(rng, 4, 1, 4, 4).RequiresGrad_();
        var y = Tensor.Conv2d(x, w, null, stride: 2, padding: 1);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 4, 3, 3 }));
        var node = y.GradFn!;
        var grads = node.Backward(Tensor.OnesLike(y));
        Assert.That(grads[0], Is.Null);
        Assert.That(grads[1]!.Shape, Is.EqualTo(w.Shape));
    }

    [Test]
    public void UnbatchedInputGivesUnbatchedOutput()
    {
        var rng = new Random(43);
        var x = TestData.Tensor(rng, 2, 5, 5); var w = TestData.Tensor(rng, 3, 2, 3, 3);
        var y = Tensor.Conv2d(x, w, null, padding: 1);
        Assert.That(y.Shape, Is.EqualTo(new[] { 3, 5, 5 }));
        Assert.That(y.ToArray(), Is.EqualTo(Tensor.Conv2d(x.Reshape(1, 2, 5, 5), w, null, padding: 1).ToArray()));
    }

    [Test]
    public void BadShapesGiveMessagesNamingThem()
    {
        var x = Tensor.Zeros(2, 4, 5, 5);
        string Msg(TestDelegate d) => Assert.Throws<ArgumentException>(d)!.Message;
        Assert.That(Msg(() => Tensor.Conv2d(x, Tensor.Zeros(3, 3, 3, 3))), Does.Contain("channel mismatch").And.Contain("[2, 4, 5, 5]").And.Contain("[3, 3, 3, 3]"));
        Assert.That(Msg(() => Tensor.Conv2d(x, Tensor.Zeros(3, 4, 3, 3), groups: 3)), Does.Contain("groups").And.Contain("[3, 4, 3, 3]"));
        Assert.That(Msg(() => Tensor.Conv2d(x, Tensor.Zeros(4, 1, 3, 3), groups: 3)), Does.Contain("groups = 3"));
        Assert.That(Msg(() => Tensor.Conv2d(x, Tensor.Zeros(3, 4, 6, 6))), Does.Contain("larger than the padded input").And.Contain("[3, 4, 6, 6]"));
        Assert.That(Msg(() => Tensor.Conv2d(x, Tensor.Zeros(3, 4, 3, 3), dilation: 3)), Does.Contain("larger than the padded input"));
        Assert.That(Msg(() => Tensor.Conv2d(x, Tensor.Zeros(3, 4, 3, 3), Tensor.Zeros(4))), Does.Contain("bias").And.Contain("[4]"));
        Assert.That(Msg(() => Tensor.Conv2d(Tensor.Zeros(4, 5), Tensor.Zeros(3, 4, 3, 3))), Does.Contain("[4, 5]"));
        Assert.That(Msg(() => Tensor.Conv2d(x, Tensor.Zeros(3, 4, 3, 3), stride: 0)), Does.Contain("stride"));
    }
}
