using Engine.Cpu;
using Engine.Cpu.Reference;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Shape;

public class SliceKernelTests
{
    private static readonly CpuKernels K = CpuKernels.Instance;

    [Test]
    public void SliceCopyAndScatterMatchReference()
    {
        var rng = new Random(4);
        for (int trial = 0; trial < 60; trial++)
        {
            int outer = rng.Next(1, 6), dim = rng.Next(1, 12), inner = trial == 59 ? 4099 : rng.Next(1, 20);
            int step = rng.Next(1, 4), start = rng.Next(dim);
            int count = rng.Next(0, (dim - start + step - 1) / step + 1);
            var x = TestData.Random(rng, outer * dim * inner);
            var y = Tensor.Zeros(outer * count * inner);
            K.SliceCopy(Tensor.FromArray(x).Buf, y.Buf, outer, dim, inner, start, step, count);
            var expected = new float[outer * count * inner];
            ShapeReference.SliceCopy(x, expected, outer, dim, inner, start, step, count);
            Assert.That(y.ToArray(), Is.EqualTo(expected));

            var src = TestData.Random(rng, outer * count * inner);
            var dst0 = TestData.Random(rng, outer * dim * inner);
            var dst = Tensor.FromArray(dst0);
            K.SliceScatter(Tensor.FromArray(src).Buf, dst.Buf, outer, dim, inner, start, step, count);
            var expected2 = (float[])dst0.Clone();
            ShapeReference.SliceScatter(src, expected2, outer, dim, inner, start, step, count);
            Assert.That(dst.ToArray(), Is.EqualTo(expected2));
        }
    }

    [Test]
    public void IndexSelectAndIndexAddMatchReferenceWithRepeats()
    {
        var rng = new Random(5);
        for (int trial = 0; trial < 40; trial++)
        {
            int outer = rng.Next(1, 5), dim = rng.Next(1, 9), inner = rng.Next(1, 23);
            var idx = Enumerable.Range(0, rng.Next(0, 12)).Select(_ => rng.Next(dim)).ToArray();
            var x = TestData.Random(rng, outer * dim * inner);
            var y = Tensor.Zeros(outer * idx.Length * inner);
            K.IndexSelect(Tensor.FromArray(x).Buf, y.Buf, outer, dim, inner, idx);
            var expected = new float[y.Numel];
            ShapeReference.IndexSelect(x, expected, outer, dim, inner, idx);
            Assert.That(y.ToArray(), Is.EqualTo(expected));

            var g = TestData.Random(rng, outer * idx.Length * inner);
            var acc0 = TestData.Random(rng, outer * dim * inner);
            var acc = Tensor.FromArray(acc0);
            K.IndexAdd(Tensor.FromArray(g).Buf, acc.Buf, outer, dim, inner, idx);
            var expected2 = (float[])acc0.Clone();
            ShapeReference.IndexAdd(g, expected2, outer, dim, inner, idx);
            TestData.Close(acc.ToArray(), expected2, 1e-6, 1e-6, "IndexAdd");
        }
    }
}
