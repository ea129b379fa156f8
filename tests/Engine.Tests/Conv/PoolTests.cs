using Engine.Autograd;
using Engine.Cpu;
using Engine.Cpu.Reference;
using Engine.Tensors;
using Engine.Tests.Shape;
using NUnit.Framework;

namespace Engine.Tests.Conv;

public class PoolTests
{
    private static readonly CpuKernels K = CpuKernels.Instance;

    // (planes, h, w, kh, kw, sh, sw, ph, pw): padding, stride != kernel, overlapping windows, odd sizes.
    private static readonly (int p, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw)[] Combos =
    [
        (3, 8, 8, 2, 2, 2, 2, 0, 0), (5, 7, 9, 3, 3, 2, 2, 1, 1), (2, 9, 7, 3, 2, 1, 3, 1, 1), (4, 5, 6, 4, 3, 3, 1, 2, 1),
        (1, 1, 1, 1, 1, 1, 1, 0, 0), (6, 11, 13, 5, 3, 2, 3, 2, 0), (2, 1, 2, 2, 2, 2, 2, 1, 1), (7, 6, 6, 3, 3, 1, 1, 0, 0),
    ];

    private static Pool2dGeometry Geo((int p, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw) t)
        => new(t.p, t.h, t.w, t.kh, t.kw, t.sh, t.sw, t.ph, t.pw);

    [Test]
    public void MaxPoolKernelsMatchReference()
    {
        var rng = new Random(50);
        foreach (var t in Combos)
        {
            var g = Geo(t);
            var x = TestData.Random(rng, g.Planes * g.Height * g.Width);
            if (x.Length > 3) { x[1] = x[2] = x[3]; x[0] = float.NaN; } // ties and NaN follow the reference rules
            int outN = g.Planes * g.OutH * g.OutW;
            var y = Tensor.Zeros(outN); var idx = Tensor.Zeros(outN);
            K.MaxPool2dForward(Tensor.FromArray(x).Buf, y.Buf, idx.Buf, g);
            var (ey, ei) = PoolReference.MaxPool2dForward(x, g);
            Assert.That(y.ToArray(), Is.EqualTo(ey), "max forward " + t);
            Assert.That(idx.ToArray(), Is.EqualTo(ei), "argmax " + t);

            var dy = TestData.Random(rng, outN);
            var dx = Tensor.Full([x.Length], float.NaN);
            K.MaxPool2dBackward(Tensor.FromArray(dy).Buf, idx.Buf, dx.Buf, g);
            TestData.Close(dx.ToArray(), PoolReference.MaxPool2dBackward(dy, ei, g), 1e-6, 1e-6, "max backward " + t);
        }
    }

    [Test]
    public void AvgPoolKernelsMatchReference([Values] bool countIncludePad)
    {
        var rng = new Random(51);
        foreach (var t in Combos)
        {
            var g = Geo(t);
            var x = TestData.Random(rng, g.Planes * g.Height * g.Width);
            int outN = g.Planes * g.OutH * g.OutW;
            var y = Tensor.Zeros(outN);
            K.AvgPool2dForward(Tensor.FromArray(x).Buf, y.Buf, g, countIncludePad);
            TestData.Close(y.ToArray(), PoolReference.AvgPool2dForward(x, g, countIncludePad), 1e-6, 1e-5, "avg forward " + t);
            var dy = TestData.Random(rng, outN);
            var dx = Tensor.Full([x.Length], float.NaN);
            K.AvgPool2dBackward(Tensor.FromArray(dy).Buf, dx.Buf, g, countIncludePad);
            TestData.Close(dx.ToArray(), PoolReference.AvgPool2dBackward(dy, g, countIncludePad), 1e-6, 1e-5, "avg backward " + t);
        }
    }

    [Test]
    public void PoolOpsHaveTheRightShapesAndValues()
    {
        var x = Tensor.Arange(16).Reshape(1, 1, 4, 4);
        Assert.That(Tensor.MaxPool2d(x, 2).ToArray(), Is.EqualTo(new float[] { 5, 7, 13, 15 }));
        Assert.That(Tensor.AvgPool2d(x, 2).ToArray(), Is.EqualTo(new float[] { 2.5f, 4.5f, 10.5f, 12.5f }));
        var p = Tensor.AvgPool2d(x, 3, stride: 2, padding: 1, countIncludePad: false);
        Assert.That(p.Shape, Is.EqualTo(new[] { 1, 1, 2, 2 }));
        Assert.That(p.ToArray()[0], Is.EqualTo((0 + 1 + 4 + 5) / 4f));
        Assert.That(Tensor.AvgPool2d(x, 3, stride: 2, padding: 1).ToArray()[0], Is.EqualTo((0 + 1 + 4 + 5) / 9f));
        Assert.That(Tensor.MaxPool2d(Tensor.Zeros(3, 5, 7), (2, 3), (1, 2)).Shape, Is.EqualTo(new[] { 3, 4, 3 }));
    }

    [Test]
    public void PoolGradCheck()
    {
        var rng = new Random(52);
        GradCheck.Assert(t => Tensor.MaxPool2d(t[0], 2), [TestData.Distinct(rng, 2, 2, 4, 5)], maxPerInput: 24);
        GradCheck.Assert(t => Tensor.MaxPool2d(t[0], 3, stride: 2, padding: 1), [TestData.Distinct(rng, 1, 2, 5, 6)], maxPerInput: 24);
        GradCheck.Assert(t => Tensor.MaxPool2d(t[0], (2, 3), (1, 2), (1, 1)), [TestData.Distinct(rng, 2, 4, 5)], maxPerInput: 24);
        GradCheck.Assert(t => Tensor.AvgPool2d(t[0], 3, stride: 2, padding: 1), [TestData.Tensor(rng, 2, 2, 5, 6)], maxPerInput: 24);
        GradCheck.Assert(t => Tensor.AvgPool2d(t[0], 3, stride: 1, padding: 1, countIncludePad: false), [TestData.Tensor(rng, 1, 2, 4, 5)], maxPerInput: 24);
        GradCheck.Assert(t => Tensor.AvgPool2d(t[0], (2, 2), (1, 2)), [TestData.Tensor(rng, 2, 3, 5)], maxPerInput: 24);
    }

    [Test]
    public void BadPoolArgumentsNameTheShape()
    {
        var x = Tensor.Zeros(2, 3, 4, 4);
        Assert.That(Assert.Throws<ArgumentException>(() => Tensor.MaxPool2d(x, 2, padding: 2))!.Message, Does.Contain("padding").And.Contain("[2, 3, 4, 4]"));
        Assert.That(Assert.Throws<ArgumentException>(() => Tensor.AvgPool2d(x, 7))!.Message, Does.Contain("larger").And.Contain("[2, 3, 4, 4]"));
        Assert.That(Assert.Throws<ArgumentException>(() => Tensor.MaxPool2d(Tensor.Zeros(4, 4), 2))!.Message, Does.Contain("[4, 4]"));
        Assert.That(Assert.Throws<ArgumentException>(() => Tensor.MaxPool2d(x, 2, stride: 0))!.Message, Does.Contain("stride"));
    }
}
