#if ENGINE_CUDA
using System.Collections.Concurrent;
using Engine.Cuda;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

public class CachingAllocatorTests
{
    /// <summary>Device memory simulated on the host: a capacity, a live map, and a log of synchronise/free order.</summary>
    private sealed class FakeMemory(long capacity) : IRawDeviceMemory
    {
        private readonly object _gate = new();
        private ulong _next = 0x1000;
        public readonly Dictionary<ulong, long> Live = new();
        public long Used;
        public int Allocs, Frees, Syncs;
        public bool FreedWithoutSync;
        private bool _synced;

        public bool TryAlloc(long bytes, out ulong address)
        {
            lock (_gate)
            {
                address = 0;
                if (Used + bytes > capacity) return false;
                address = _next;
                _next += (ulong)bytes + 4096;
                Live[address] = bytes;
                Used += bytes;
                Allocs++;
                _synced = false;
                return true;
            }
        }

        public void Free(ulong address)
        {
            lock (_gate)
            {
                if (!_synced) FreedWithoutSync = true;
                Assert.That(Live.Remove(address, out long bytes), $"free of unknown block {address:x}");
                Used -= bytes;
                Frees++;
            }
        }

        public void Synchronize() { lock (_gate) { Syncs++; _synced = true; } }
        public (long Free, long Total) MemoryInfo() { lock (_gate) return (capacity - Used, capacity); }
    }

    [Test]
    public void SizesRoundUpToBinsWithBoundedWaste()
    {
        Assert.That(CachingAllocator.RoundSize(0), Is.EqualTo(512));
        Assert.That(CachingAllocator.RoundSize(1), Is.EqualTo(512));
        Assert.That(CachingAllocator.RoundSize(512), Is.EqualTo(512));
        Assert.That(CachingAllocator.RoundSize(513), Is.EqualTo(1024));
        Assert.That(CachingAllocator.RoundSize(1 << 20), Is.EqualTo(1 << 20));
        Assert.That(CachingAllocator.RoundSize((1 << 20) + 1), Is.EqualTo((1 << 20) + (1 << 17)));
        Assert.That(CachingAllocator.RoundSize(3L << 30), Is.EqualTo(3L << 30));
        Assert.Throws<ArgumentOutOfRangeException>(() => CachingAllocator.RoundSize(-1));
        var rng = new Random(1);
        long prev = 0;
        for (long b = 1; b < 64L << 20; b += 1 + rng.Next(1 << 14))
        {
            long r = CachingAllocator.RoundSize(b);
            Assert.That(r, Is.GreaterThanOrEqualTo(b));
            Assert.That(r, Is.GreaterThanOrEqualTo(prev), "bins are monotone");
            Assert.That(r % 512, Is.EqualTo(0), "every block keeps 512-byte alignment of sizes");
            if (b <= 1 << 20) Assert.That(r - b, Is.LessThan(512));
            else Assert.That((double)(r - b) / b, Is.LessThan(0.125));
            Assert.That(CachingAllocator.RoundSize(r), Is.EqualTo(r), "a bin size is its own bin");
            prev = r;
        }
    }

    [Test]
    public void FreedBlocksAreReusedForTheSameBinOnly()
    {
        var raw = new FakeMemory(1L << 30);
        var a = new CachingAllocator(raw);
        ulong x = a.Allocate(1000);
        a.Free(x, 1000);
        Assert.That(a.Allocate(900), Is.EqualTo(x), "900 and 1000 bytes share the 1024-byte bin");
        ulong y = a.Allocate(1000);
        Assert.That(y, Is.Not.EqualTo(x), "a live block is never handed out twice");
        ulong z = a.Allocate(2000);
        Assert.That(raw.Allocs, Is.EqualTo(3));
        a.Free(z, 2000);
        ulong w = a.Allocate(3000);
        Assert.That(w, Is.Not.EqualTo(z), "a 2048-byte block does not serve a 3072-byte request");
        Assert.That(a.Counters, Is.EqualTo((5L, 1L)));
    }

    [Test]
    public void StatsCountLiveAndCachedBytes()
    {
        var raw = new FakeMemory(1L << 30);
        var a = new CachingAllocator(raw);
        ulong x = a.Allocate(100), y = a.Allocate(3 << 20);
        Assert.That(a.Stats.AllocatedBytes, Is.EqualTo(512 + (3L << 20)));
        Assert.That(a.Stats.ReservedBytes, Is.EqualTo(a.Stats.AllocatedBytes));
        a.Free(y, 3 << 20);
        Assert.That(a.Stats.AllocatedBytes, Is.EqualTo(512));
        Assert.That(a.Stats.ReservedBytes, Is.EqualTo(512 + (3L << 20)));
        Assert.That(raw.Frees, Is.Zero, "Free makes no raw call (it must be safe on a finalizer thread)");
        a.EmptyCache();
        Assert.That(raw.Frees, Is.EqualTo(1));
        Assert.That(raw.FreedWithoutSync, Is.False, "EmptyCache waits for queued work before freeing");
        Assert.That(a.Stats, Is.EqualTo(new Engine.Tensors.DeviceMemoryStats(512, 512)));
        a.Free(x, 100);
        a.EmptyCache();
        Assert.That(raw.Used, Is.Zero);
        Assert.That(a.Stats, Is.EqualTo(new Engine.Tensors.DeviceMemoryStats(0, 0)));
    }

    [Test]
    public void OutOfMemoryEmptiesTheCacheThenRetriesThenNamesTheSize()
    {
        var raw = new FakeMemory(4 << 20);
        var a = new CachingAllocator(raw);
        ulong x = a.Allocate(2 << 20);
        a.Free(x, 2 << 20);                      // cached: 2 MiB reserved, nothing live
        ulong y = a.Allocate(3 << 20);           // does not fit beside the cached block: cache emptied, retry succeeds
        Assert.That(raw.Live.Keys, Is.EquivalentTo(new[] { y }));
        Assert.That(raw.FreedWithoutSync, Is.False);
        var ex = Assert.Throws<CudaException>(() => a.Allocate(2 << 20));
        Assert.That(ex!.Message, Does.Contain("OUT_OF_MEMORY").And.Contain("2.0 MiB").And.Contain("1.0 MiB free of 4.0 MiB"));
        Assert.That(a.Stats.AllocatedBytes, Is.EqualTo(3L << 20), "a failed allocation changes no counter");
    }

    /// <summary>A block that goes back only when its owner is finalized, as a tensor nobody disposes.</summary>
    private sealed class FinalizedBlock(CachingAllocator allocator, long bytes)
    {
        private readonly ulong _address = allocator.Allocate(bytes);
        ~FinalizedBlock() => allocator.Free(_address, bytes);
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void Garbage(CachingAllocator a, long bytes) => _ = new FinalizedBlock(a, bytes);

    [Test]
    public void BlocksReleasedOnlyByFinalizersKeepTheReservationBounded()
    {
        // 4 MiB per step, never disposed: without a collection on cache misses the reservation would reach 4 GiB.
        var raw = new FakeMemory(64L << 30);
        var a = new CachingAllocator(raw);
        const long block = 4L << 20;
        for (int step = 0; step < 1000; step++) Garbage(a, block);
        Assert.That(a.Collections, Is.GreaterThan(0), "cache misses past the slack run the GC");
        Assert.That(a.Stats.ReservedBytes, Is.LessThanOrEqualTo(2 * CachingAllocator.CollectSlack + block),
                    $"reserved {a.Stats.ReservedBytes} bytes after 1000 x 4 MiB of garbage");
    }

    [Test]
    public void SmallBlocksReleasedOnlyByFinalizersKeepTheBlockCountBounded()
    {
        // 40,000 blocks of 512 B (20 MB in all, far under the byte slack), never disposed: without a collection by
        // count every one would be a driver allocation of its own.
        var raw = new FakeMemory(64L << 30);
        var a = new CachingAllocator(raw);
        for (int i = 0; i < 40_000; i++) Garbage(a, 512);
        Assert.That(a.Collections, Is.GreaterThan(0), "cache misses past the block slack run the GC");
        Assert.That(raw.Allocs, Is.LessThan(4 * CachingAllocator.BlockSlack), $"{raw.Allocs} driver allocations for 40,000 blocks of garbage");
        Assert.That(a.ReservedBlocks, Is.LessThanOrEqualTo(2 * CachingAllocator.BlockSlack + 1));
        Assert.That(a.ReservedBlocks, Is.EqualTo(raw.Live.Count), "the count follows the driver's blocks");
    }

    [Test]
    public void ConcurrentAllocateAndFreeNeverShareABlock()
    {
        var raw = new FakeMemory(1L << 40);
        var a = new CachingAllocator(raw);
        var live = new ConcurrentDictionary<ulong, int>();
        int clashes = 0;   // counted, not asserted: an assertion on a worker thread would crash the test host
        int[] sizes = [4, 600, 4096, 70000, (1 << 20) + 5, 5 << 20];   // six different bins
        var liveBySize = new int[sizes.Length];
        var peakBySize = new int[sizes.Length];
        var threads = Enumerable.Range(0, 4).Select(t => new Thread(() =>
        {
            var rng = new Random(t);
            var mine = new List<(ulong, int)>();
            for (int i = 0; i < 20000; i++)
            {
                if (mine.Count > 0 && rng.Next(2) == 0)
                {
                    int j = rng.Next(mine.Count);
                    var (addr, s) = mine[j];
                    mine.RemoveAt(j);
                    if (!live.TryRemove(addr, out _)) Interlocked.Increment(ref clashes);
                    Interlocked.Decrement(ref liveBySize[s]);
                    a.Free(addr, sizes[s]);
                }
                else
                {
                    int s = rng.Next(sizes.Length);
                    int now = Interlocked.Increment(ref liveBySize[s]);
                    for (int p = Volatile.Read(ref peakBySize[s]); now > p; p = Volatile.Read(ref peakBySize[s]))
                        Interlocked.CompareExchange(ref peakBySize[s], now, p);
                    ulong addr = a.Allocate(sizes[s]);
                    if (!live.TryAdd(addr, t)) Interlocked.Increment(ref clashes);
                    mine.Add((addr, s));
                }
            }
            foreach (var (addr, s) in mine) { live.TryRemove(addr, out _); a.Free(addr, sizes[s]); }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.That(clashes, Is.Zero, "no block is handed out while live");
        Assert.That(a.Stats.AllocatedBytes, Is.Zero);
        Assert.That(a.Stats.ReservedBytes, Is.EqualTo(raw.Used), "reserved bytes are exactly what the driver holds");
        Assert.That(a.CachedBytes, Is.EqualTo(raw.Used));
        // A bin asks the driver for a block only when all its blocks are live, so it never holds more than its peak.
        Assert.That(raw.Allocs, Is.LessThanOrEqualTo(peakBySize.Sum()), "blocks are reused rather than allocated afresh");
        Assert.That(a.Counters.Allocations, Is.GreaterThan(10 * raw.Allocs));
    }
}
#endif
