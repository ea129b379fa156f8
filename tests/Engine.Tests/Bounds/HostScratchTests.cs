using Engine.Autograd;
using Engine.Bounds;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Bounds;

/// <summary>The reused host index arrays of bound propagation, and the tensor calls that make reusing them safe.</summary>
public class HostScratchTests
{
    /// <summary>Runs on a fresh thread: the cache is per thread, and other tests on this one may have filled it.</summary>
    private static void OnFreshThread(Action body)
    {
        Exception? error = null;
        var t = new Thread(() => { try { body(); } catch (Exception e) { error = e; } });
        t.Start();
        t.Join();
        if (error != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
    }

    [Test]
    public void ArraysHaveTheExactLengthAndAreReusedPerLength() => OnFreshThread(() =>
    {
        var a = HostScratch.Ints(70_001);
        Assert.That(a.Length, Is.EqualTo(70_001));
        HostScratch.Return(a);
        Assert.That(HostScratch.Ints(70_001), Is.SameAs(a), "a returned array of the same length comes back");
        Assert.That(HostScratch.Ints(70_001), Is.Not.SameAs(a), "and only once");
        var f = HostScratch.Floats(5);
        HostScratch.Return(f);
        Assert.That(HostScratch.Ints(5), Is.Not.SameAs(f));
        Assert.That(HostScratch.Floats(6), Is.Not.SameAs(f), "another length gets another array");
    });

    [Test]
    public void TheCacheIsCapped() => OnFreshThread(() =>
    {
        // 40 arrays of 1 MiB: only what fits under the cap is kept; the rest go to the GC.
        var arrays = Enumerable.Range(0, 40).Select(_ => HostScratch.Ints(1 << 18)).ToList();
        foreach (var x in arrays) HostScratch.Return(x);
        var back = Enumerable.Range(0, 40).Select(_ => HostScratch.Ints(1 << 18)).ToList();
        int reused = back.Count(b => arrays.Any(x => ReferenceEquals(x, b)));
        Assert.That(reused, Is.EqualTo(32), "32 MiB of 1 MiB arrays");
    });

    [Test]
    public void IndexSelectRecordingAGradientKeepsItsOwnIndices()
    {
        // Bound propagation hands its index arrays back right after the gather: a recorded backward must not read them.
        var x = Tensor.FromArray([1f, 2f, 3f, 4f], 4).RequiresGrad_();
        var idx = new[] { 3, 0, 3 };
        var y = x.IndexSelect(0, idx);
        Array.Fill(idx, 1);
        y.Sum().Backward();
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 4f, 1f, 4f }));
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 1f, 0f, 0f, 2f }));
        using (new NoGrad())
            Assert.That(x.IndexSelect(0, [2, 2]).ToArray(), Is.EqualTo(new[] { 3f, 3f }));
        Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(0, [0, 4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => x.IndexSelect(0, [-1]));
    }

    [Test]
    public void CopyToFillsASpanOfTheTensorsLength()
    {
        var m = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        var dst = new float[4];
        m.Narrow(1, 1, 2).CopyTo(dst);
        Assert.That(dst, Is.EqualTo(new[] { 2f, 3f, 5f, 6f }));
        var t = m.NarrowRows(1, 1);   // a view at an offset
        dst = new float[3];
        t.CopyTo(dst);
        Assert.That(dst, Is.EqualTo(new[] { 4f, 5f, 6f }));
        Assert.That(Assert.Throws<ArgumentException>(() => t.CopyTo(new float[5]))!.Message, Does.Contain("5 elements"));
        t.CopyTo(dst);
    }
}
