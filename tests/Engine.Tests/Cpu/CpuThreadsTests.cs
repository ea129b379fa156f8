using Engine.Cpu;
using NUnit.Framework;

namespace Engine.Tests.Cpu;

public class CpuThreadsTests
{
    private int _saved;
    [SetUp] public void Save() { _saved = CpuThreads.Count; CpuThreads.Count = 2; }
    [TearDown] public void Restore() => CpuThreads.Count = _saved;

    [Test]
    public void ForCoversEveryIndexExactlyOnce()
    {
        for (int n = 1; n < 300; n += 37)
        {
            var hits = new int[n];
            CpuThreads.For(n, 1, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
            Assert.That(hits, Is.All.EqualTo(1), $"count {n}");
        }
        var each = new int[9];
        CpuThreads.ForEach(9, i => Interlocked.Increment(ref each[i]));
        Assert.That(each, Is.All.EqualTo(1));
    }

    [Test]
    public void ExceptionsInAPartReachTheCaller()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => CpuThreads.ForEach(8, i => { if (i == 5) throw new InvalidOperationException("part 5"); }));
        Assert.That(ex!.Message, Is.EqualTo("part 5"));
        int sum = 0;
        CpuThreads.ForEach(4, i => Interlocked.Add(ref sum, i));   // still usable afterwards
        Assert.That(sum, Is.EqualTo(6));
    }

    [Test]
    public void NestedCallsRunInlineAndConcurrentCallersBothFinish()
    {
        var results = new long[2];
        int outsideRegion = 0;
        var callers = Enumerable.Range(0, 2).Select(c => new Thread(() =>
        {
            for (int rep = 0; rep < 200; rep++)
                CpuThreads.ForEach(4, i =>
                {
                    if (!CpuThreads.InParallelRegion) Interlocked.Increment(ref outsideRegion);
                    CpuThreads.For(10, 1, (s, e) => Interlocked.Add(ref results[c], e - s));
                });
        })).ToList();
        callers.ForEach(t => t.Start());
        callers.ForEach(t => Assert.That(t.Join(TimeSpan.FromSeconds(60)), Is.True, "a caller hung"));
        Assert.That(results, Is.All.EqualTo(200L * 4 * 10));
        Assert.That(outsideRegion, Is.Zero, "parts must run inside a parallel region");
    }

    [Test]
    public void NeverUsesMoreThreadsThanCount()
    {
        CpuThreads.Count = 4;
        CpuThreads.ForEach(8, _ => Thread.SpinWait(10_000));   // starts three workers
        CpuThreads.Count = 2;
        for (int rep = 0; rep < 20; rep++)
        {
            var ids = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
            CpuThreads.ForEach(16, _ => { ids[Environment.CurrentManagedThreadId] = true; Thread.SpinWait(20_000); });
            Assert.That(ids.Count, Is.LessThanOrEqualTo(2), "a job ran on more threads than CpuThreads.Count");
        }
    }
}
