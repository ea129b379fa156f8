using System.Runtime.CompilerServices;
using Engine.Cpu;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cpu;

public class CpuBufferPoolTests
{
    private const int N = CpuBufferPool.MinPooledLength * 2 + 13;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference<float[]> DropTensorKeepArray()
    {
        var t = Tensor.Full([N], 3f);
        // A reference to the array without escaping the storage: through a kernel-style internal accessor.
        return new WeakReference<float[]>(((CpuStorage)t.Storage).RawData, trackResurrection: true);
    }

    private static void CollectAll()
    {
        for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
    }

    [Test]
    public void ArraysOfDeadTensorsAreReused()
    {
        CpuBufferPool.Clear();
        var weak = DropTensorKeepArray();
        CollectAll();
        Assert.That(weak.TryGetTarget(out var old), Is.True, "the finalizer should have handed the array to the pool, keeping it alive");
        bool reused = false;
        var keep = new List<Tensor>();
        for (int i = 0; i < 4 && !reused; i++)
        {
            var t = Tensor.Zeros(N);
            keep.Add(t);
            reused |= ReferenceEquals(((CpuStorage)t.Storage).RawData, old);
            Assert.That(t.ToArray().All(v => v == 0f), "a recycled array must be cleared when zeros are asked for");
        }
        Assert.That(reused, Is.True, "a new tensor of the same length should reuse the pooled array");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float[] EscapedArrayOfDeadTensor()
    {
        var t = Tensor.Full([N], 5f);
        return ((CpuStorage)t.Storage).Data;   // public access: the array may outlive the tensor, so it must never be recycled
    }

    [Test]
    public void EscapedArraysAreNeverRecycled()
    {
        CpuBufferPool.Clear();
        var escaped = EscapedArrayOfDeadTensor();
        CollectAll();
        var live = Enumerable.Range(0, 8).Select(_ => Tensor.Full([N], -1f)).ToList();
        Assert.That(live.Any(t => ReferenceEquals(((CpuStorage)t.Storage).RawData, escaped)), Is.False);
        Assert.That(escaped.All(v => v == 5f), Is.True, "data handed out through CpuStorage.Data was overwritten");
    }

    [Test]
    public void SpansFromAsSpanStayValidAfterTheTensorDies()
    {
        CpuBufferPool.Clear();
        var span = SpanOfTemporary();
        CollectAll();
        var live = Enumerable.Range(0, 8).Select(_ => Tensor.Full([N], -2f)).ToList();
        Assert.That(span.ToArray().All(v => v == 9f), Is.True, "AsSpan's array must not be recycled while the span may be used");
        GC.KeepAlive(live);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static Span<float> SpanOfTemporary() => Tensor.Full([N], 9f).AsSpan();

    [Test]
    public void TrainingStyleLoopServesMostAllocationsFromThePool()
    {
        CpuBufferPool.Clear();
        var (hits0, misses0) = CpuBufferPool.Counts;
        var x = Tensor.Rand(64, 300);
        for (int i = 0; i < 200; i++)
        {
            var y = (x * 2f).Relu().Exp();
            Assert.That(y.Numel, Is.EqualTo(64 * 300));
            if (i % 20 == 19) CollectAll();
        }
        var (hits, misses) = CpuBufferPool.Counts;
        Assert.That(hits - hits0, Is.GreaterThan(misses - misses0), "most same-shape allocations should come from the pool");
    }
}
