using Engine.Autograd;
using Engine.Bounds;
using Engine.Tensors;
using Engine.Tests.Shape;
using NUnit.Framework;

namespace Engine.Tests.BoundProp;

public class AbsWeightCacheTests
{
    private static Tensor Weight(int seed, int rows, int cols)
    {
        var rng = new Random(seed);
        var data = new float[rows * cols];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() - 0.5);
        data[3] = 0f;   // sign(0) = 0: no gradient through |w| there, cached or not
        return Tensor.FromArray(data, [rows, cols]).RequiresGrad_();
    }

    private static Tensor Input(int seed, int n, int cols)
    {
        var rng = new Random(seed);
        var data = new float[n * cols];
        for (int i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble();
        return Tensor.FromArray(data, [n, cols]);
    }

    // One "piece": a loss through both W and |W| (as the IBP centre and radius passes), backward.
    private static void Piece(Tensor w, Tensor abs, Tensor x)
    {
        var loss = (Tensor.Linear(x, w) * 0.5f + Tensor.Linear(x, abs).Square()).Sum();
        loss.Backward();
    }

    [Test]
    public void CachedAbsGivesThePlainGradientAndIsMadeOncePerCache()
    {
        var x1 = Input(2, 5, 7); var x2 = Input(3, 4, 7);
        var plain = Weight(1, 6, 7);
        Piece(plain, plain.Abs(), x1);
        Piece(plain, plain.Abs(), x2);

        var w = Weight(1, 6, 7);
        using (var cache = AbsWeightCache.Begin())
        {
            var a1 = AbsWeightCache.Abs(w);
            Piece(w, a1, x1);
            var a2 = AbsWeightCache.Abs(w);
            Assert.That(a2, Is.SameAs(a1), "one |W| per cache");
            Assert.That(a1.ToArray(), Is.EqualTo(w.Detach().Abs().ToArray()));
            Piece(w, a2, x2);
            // Until the cache ends, the |W| part of the gradient sits in |W|'s own buffer.
            Assert.That(a1.Grad!.ToArray().Any(v => v != 0f), Is.True);
            Assert.That(w.Grad!.ToArray(), Is.Not.EqualTo(plain.Grad!.ToArray()), "folded in before the cache ends");
        }
        TestData.Close(w.Grad!.ToArray(), plain.Grad!.ToArray(), 1e-5, 1e-6, "gradient with the cache vs without");
    }

    [Test]
    public void OnlyLeafWeightsThatNeedAGradientAreCachedAndOnlyInsideACache()
    {
        var w = Weight(4, 3, 5);
        Assert.That(AbsWeightCache.Abs(w), Is.Not.SameAs(AbsWeightCache.Abs(w)), "no cache: a fresh |w| each call");
        using var cache = AbsWeightCache.Begin();
        var frozen = w.Detach();
        Assert.That(AbsWeightCache.Abs(frozen), Is.Not.SameAs(AbsWeightCache.Abs(frozen)), "no gradient needed: not cached");
        var derived = w * 2f;
        Assert.That(AbsWeightCache.Abs(derived), Is.Not.SameAs(AbsWeightCache.Abs(derived)), "not a leaf: not cached");
        using (new NoGrad())
            Assert.That(AbsWeightCache.Abs(w), Is.Not.SameAs(AbsWeightCache.Abs(w)), "no-grad code: not cached");
        Assert.That(AbsWeightCache.Abs(w), Is.SameAs(AbsWeightCache.Abs(w)));
        var inner = AbsWeightCache.Begin();
        Assert.Throws<InvalidOperationException>(() => cache.Dispose(), "ending the outer cache first");
        inner.Dispose();
    }
}
