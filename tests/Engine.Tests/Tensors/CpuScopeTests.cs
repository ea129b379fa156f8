using Engine.Cpu;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Tensors;

/// <summary>TensorScope(includeCpu: true): CPU storages made inside go back to the pool when it ends, and are unusable after.</summary>
public class CpuScopeTests
{
    private const int Big = CpuBufferPool.MinPooledLength * 2;

    [Test]
    public void ACpuScopeDisposesTheStoragesMadeInsideButNotKeptOnes()
    {
        var outside = Tensor.Ones([Big]);
        Tensor inside, kept, small;
        using (var scope = TensorScope.Begin(includeCpu: true))
        {
            inside = outside * 2f;
            kept = scope.Keep(outside + 1f);
            small = Tensor.Ones([8]) * 3f;
            Assert.That(inside.Sum().Item(), Is.EqualTo(2f * Big));
        }
        var ex = Assert.Throws<ObjectDisposedException>(() => inside.ToArray());
        Assert.That(ex!.Message, Does.Contain("TensorScope"));
        Assert.Throws<ObjectDisposedException>(() => _ = inside + 1f);
        // Small arrays too: inside a scope they come from the pool and go back to it.
        Assert.Throws<ObjectDisposedException>(() => small.ToArray());
        Assert.That(kept.ToArray(), Has.All.EqualTo(2f));
        Assert.That(outside.ToArray(), Has.All.EqualTo(1f));
    }

    [Test]
    public void SmallArraysArePooledOnlyInsideACpuScope()
    {
        const int n = 1237;
        // Earlier tests may have filled the pool to its cap, where returned arrays are dropped: start from an empty one.
        CpuBufferPool.Clear();
        var before = CpuBufferPool.Counts;
        for (int i = 0; i < 3; i++)
            using (TensorScope.Begin(includeCpu: true))
            {
                var t = Tensor.Full([n], 2f) * 3f;
                Assert.That(((CpuStorage)t.Storage).Pooled, Is.True, "a small array made in a CPU scope comes from the pool");
                Assert.That(t.Sum().Item(), Is.EqualTo(6f * n), "a recycled array holds only the new values");
            }
        var after = CpuBufferPool.Counts;
        // Three pooled arrays per scope (Full, the product, the sum): the second and third scopes reuse the first one's.
        Assert.That(after.Hits - before.Hits, Is.GreaterThanOrEqualTo(6));
        // Outside a scope a small tensor is a plain allocation: it stays valid and never enters the pool.
        var plain = Tensor.Full([n], 4f);
        Assert.That(((CpuStorage)plain.Storage).Pooled, Is.False);
        Assert.That(plain.ToArray(), Has.All.EqualTo(4f));
    }

    [Test]
    public void ADefaultScopeAndASuspendedSectionLeaveCpuStoragesAlone()
    {
        var x = Tensor.Ones([Big]);
        Tensor a, b;
        using (TensorScope.Begin())
            a = x * 2f;
        using (TensorScope.Begin(includeCpu: true))
        using (TensorScope.Suspend())
            b = x * 3f;
        Assert.That(a.ToArray(), Has.All.EqualTo(2f));
        Assert.That(b.ToArray(), Has.All.EqualTo(3f));
    }

    [Test]
    public void AnArrayHandedOutIsNeverRecycled()
    {
        float[] data;
        using (TensorScope.Begin(includeCpu: true))
        {
            var t = Tensor.Ones([Big]) * 5f;
            data = ((CpuStorage)t.Storage).Data;
        }
        // Allocations of the same length must not receive (and overwrite) the escaped array.
        using (TensorScope.Begin(includeCpu: true))
            for (int i = 0; i < 4; i++) _ = Tensor.Zeros([Big]) + 7f;
        Assert.That(data, Has.All.EqualTo(5f));
    }

    [Test]
    public void DisposedArraysAreReusedAndTrainingStepsInAScopeMatchUnscopedOnes()
    {
        // The same steps with and without the scope give the same weights, bit for bit: a recycled array never
        // leaks its old contents into a result.
        float[] Train(bool scoped)
        {
            var g = new Generator(3);
            var model = new Sequential(new Linear(64, 96, generator: g), new ReLU(), new Linear(96, 10, generator: g));
            var opt = new Adam(model.Parameters(), 1e-2f);
            var x = Tensor.Uniform([128, 64], -1f, 1f, new Generator(4));
            var y = Tensor.FromArray(Enumerable.Range(0, 128).Select(i => (float)(i % 10)).ToArray(), 128);
            for (int s = 0; s < 5; s++)
            {
                using var scope = scoped ? TensorScope.Begin(includeCpu: true) : null;
                opt.ZeroGrad();
                Losses.CrossEntropy(model.Forward(x), y).Backward();
                using (TensorScope.Suspend()) opt.Step();
            }
            return model.Parameters().SelectMany(p => p.ToArray()).ToArray();
        }
        var (hits0, _) = CpuBufferPool.Counts;
        var scopedWeights = Train(true);
        var (hits1, _) = CpuBufferPool.Counts;
        Assert.That(hits1, Is.GreaterThan(hits0), "the scope's arrays were handed back and reused");
        Assert.That(scopedWeights, Is.EqualTo(Train(false)));
    }
}
