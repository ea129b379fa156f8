using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>TensorScope with a counting storage (no GPU needed): what is disposed, kept, handed up, and when.</summary>
public class TensorScopeTests
{
    private sealed class CountingStorage(int length) : Storage
    {
        public int Disposals;
        public override int Length => length;
        public override Device Device => Device.Cpu;
        public override void Dispose() { Disposals++; base.Dispose(); }
    }

    /// <summary>A tensor on a fresh storage that registers itself, as a device backend does in Allocate.</summary>
    private static (Tensor, CountingStorage) NewTensor()
    {
        var s = new CountingStorage(4);
        TensorScope.Register(s);
        return (new Tensor(s, 0, [4]), s);
    }

    [Test]
    public void DisposesWhatWasCreatedInsideExceptKeptTensors()
    {
        var (outside, sOutside) = NewTensor();
        CountingStorage a, b;
        Tensor kept;
        using (var scope = TensorScope.Begin())
        {
            Assert.That(TensorScope.Current, Is.SameAs(scope));
            (_, a) = NewTensor();
            (kept, b) = NewTensor();
            Assert.That(scope.Keep(kept.Reshape(2, 2)), Is.Not.Null, "keeping a view keeps its storage");
            Assert.That(scope.Count, Is.EqualTo(1));
        }
        Assert.That(a.Disposals, Is.EqualTo(1));
        Assert.That(b.Disposals, Is.Zero);
        Assert.That(sOutside.Disposals, Is.Zero, "created before the scope");
        Assert.That(TensorScope.Current, Is.Null);
        GC.KeepAlive(outside);
    }

    [Test]
    public void NestedScopesHandKeptStoragesToTheEnclosingScope()
    {
        CountingStorage inner, keptOnce, keptTwice;
        using (var outer = TensorScope.Begin())
        {
            using (var scope = TensorScope.Begin())
            {
                (_, inner) = NewTensor();
                var (t1, s1) = NewTensor(); keptOnce = s1; scope.Keep(t1);
                var (t2, s2) = NewTensor(); keptTwice = s2; scope.Keep(t2);
                outer.Keep(t2);
            }
            Assert.That(inner.Disposals, Is.EqualTo(1));
            Assert.That(keptOnce.Disposals + keptTwice.Disposals, Is.Zero);
            Assert.That(outer.Count, Is.EqualTo(1), "the kept storage moved up; the doubly kept one is kept there too");
        }
        Assert.That(keptOnce.Disposals, Is.EqualTo(1), "kept by the inner scope only: the outer one disposes it");
        Assert.That(keptTwice.Disposals, Is.Zero);
    }

    [Test]
    public void SuspendLetsStateOutliveTheScope()
    {
        CountingStorage state, temp;
        using (TensorScope.Begin())
        {
            using (TensorScope.Suspend()) (_, state) = NewTensor();
            (_, temp) = NewTensor();
        }
        Assert.That(state.Disposals, Is.Zero);
        Assert.That(temp.Disposals, Is.EqualTo(1));
    }

    [Test]
    public void OutOfOrderEndIsAnErrorAndDoubleDisposeIsHarmless()
    {
        var outer = TensorScope.Begin();
        var inner = TensorScope.Begin();
        var ex = Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        Assert.That(ex!.Message, Does.Contain("out of order"));
        inner.Dispose();
        inner.Dispose();
        outer.Dispose();
        Assert.That(TensorScope.Current, Is.Null);
        Assert.Throws<ObjectDisposedException>(() => outer.Keep(Tensor.Zeros(1)));
    }

    [Test]
    public void ScopesArePerThreadAndTheCpuDoesNotRegister()
    {
        using var scope = TensorScope.Begin();
        var cpu = Tensor.Ones(3);
        Assert.That(scope.Count, Is.Zero, "CPU storages are recycled by their finalizers, not scoped");
        CountingStorage? other = null;
        var t = new Thread(() => { Assert.That(TensorScope.Current, Is.Null); (_, other) = NewTensor(); });
        t.Start(); t.Join();
        Assert.That(scope.Count, Is.Zero, "a storage made on another thread is not this thread's scope's");
        Assert.That(cpu.ToArray(), Is.EqualTo(new[] { 1f, 1f, 1f }));
        Assert.That(other, Is.Not.Null);
    }
}
