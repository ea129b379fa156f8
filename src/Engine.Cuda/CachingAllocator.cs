using Engine.Tensors;

namespace Engine.Cuda;

/// <summary>Raw device memory under the caching allocator: cuMemAlloc / cuMemFree in the backend, a fake in tests.</summary>
internal interface IRawDeviceMemory
{
    /// <summary>Allocates <paramref name="bytes"/>; false when the device is out of memory (other failures throw).</summary>
    bool TryAlloc(long bytes, out ulong address);
    /// <summary>Frees a block from <see cref="TryAlloc"/>.</summary>
    void Free(ulong address);
    /// <summary>Waits for queued work, so that freed blocks are no longer in use by a kernel.</summary>
    void Synchronize();
    /// <summary>Free and total device memory in bytes.</summary>
    (long Free, long Total) MemoryInfo();
}

/// <summary>
/// Caches device blocks by rounded size so a training loop, which allocates the same shapes every step, stops calling
/// cuMemAlloc / cuMemFree (each synchronises the device) after its first step.
/// <para>
/// Sizes are rounded up to bins and blocks are reused only for the same bin (no splitting, so no fragmentation
/// bookkeeping): up to 1 MiB in steps of 512 B (waste at most 512 B a block; 2048 small bins); above, in eight steps
/// per power of two (waste under 12.5%, and a size that grows or shrinks a little still hits the same bin).
/// </para>
/// <para>
/// <see cref="Free"/> only puts the block back on its bin's list: it makes no CUDA call, so finalizer threads may
/// call it. That is safe because all work runs on one stream: a kernel that later reuses the block is queued after
/// every kernel that used it before. Memory goes back to the driver only in <see cref="EmptyCache"/> (after a
/// synchronise), which also runs once before an out-of-memory error is reported.
/// </para>
/// Thread-safe (one lock; the work under it is a dictionary lookup).
/// </summary>
internal sealed class CachingAllocator
{
    internal const long SmallLimit = 1L << 20;
    internal const long SmallStep = 512;

    private readonly IRawDeviceMemory _raw;
    private readonly object _gate = new();
    private readonly Dictionary<long, Stack<ulong>> _free = new();
    private long _allocated, _reserved, _cached;
    private long _liveBlocks, _reservedBlocks;
    private long _allocs, _hits, _collections;
    // Reserved bytes above which a cache miss first runs the GC (see Allocate). Tensors nobody disposes come back
    // only through finalizers, and the GC cannot see device memory: without this, a training loop that relies on
    // finalizers grows its reservation without bound (5.4 GB after 10,000 MLP steps on an H100) while the live
    // bytes stay flat.
    private long _collectAbove = CollectSlack;
    internal const long CollectSlack = 256L << 20;
    // The same by count of blocks from the driver: small tensors nobody disposes (alpha-CROWN's per-step scalars and
    // slopes) never reach the byte slack, yet each is a cuMemAlloc of its own; tens of thousands of them cost the
    // driver (and exhausted the emulated device's memory mappings) before the GC ran.
    private long _collectAboveBlocks = BlockSlack;
    internal const long BlockSlack = 8192;

    public CachingAllocator(IRawDeviceMemory raw) { _raw = raw; }

    /// <summary>The size a request of <paramref name="bytes"/> occupies (its bin); at least <see cref="SmallStep"/>.</summary>
    public static long RoundSize(long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), $"Cannot allocate {bytes} bytes.");
        if (bytes <= SmallLimit) return Math.Max(SmallStep, (bytes + SmallStep - 1) / SmallStep * SmallStep);
        int log2 = 63 - (int)long.LeadingZeroCount(bytes - 1);   // 2^log2 < bytes <= 2^(log2+1)
        long step = 1L << (log2 - 3);                              // eight bins per power of two
        return (bytes + step - 1) / step * step;
    }

    /// <summary>A block of at least <paramref name="bytes"/> bytes; its size is <see cref="RoundSize"/>(bytes).</summary>
    public ulong Allocate(long bytes)
    {
        long size = RoundSize(bytes);
        lock (_gate)
        {
            _allocs++;
            if (_free.TryGetValue(size, out var list) && list.Count > 0)
            {
                _hits++;
                _cached -= size;
                _allocated += size;
                _liveBlocks++;
                return list.Pop();
            }
        }
        bool collect;
        lock (_gate) collect = OverThresholds(size);
        if (collect && TryCollectGarbage(size, out ulong reused)) return reused;
        // Outside the lock: cuMemAlloc may take milliseconds, and finalizers must not wait for it.
        if (!_raw.TryAlloc(size, out ulong address))
        {
            TryCollectGarbage(size, out _, reuse: false);
            EmptyCache();
            if (!_raw.TryAlloc(size, out address))
            {
                var (free, total) = _raw.MemoryInfo();
                DeviceMemoryStats s = Stats;
                throw new CudaException($"cuMemAlloc_v2({size} bytes)",
                    $"CUDA_ERROR_OUT_OF_MEMORY: could not allocate {Format(size)} (requested {bytes} bytes); the device has {Format(free)} free of {Format(total)}; " +
                    $"live tensors hold {Format(s.AllocatedBytes)} (the cache was emptied before this error). Dispose tensors or use a TensorScope.", 2);
            }
        }
        lock (_gate)
        {
            _allocated += size;
            _reserved += size;
            _liveBlocks++;
            _reservedBlocks++;
        }
        return address;
    }

    /// <summary>Whether one more block of <paramref name="size"/> from the driver passes either threshold (under the lock).</summary>
    private bool OverThresholds(long size) => _reserved + size > _collectAbove || _reservedBlocks + 1 > _collectAboveBlocks;

    /// <summary>
    /// Runs the GC and waits for finalizers, so that unreachable tensors hand their blocks back, then takes a cached
    /// block of <paramref name="size"/> if one came back. The threshold moves to the live bytes after the collection
    /// plus a slack (at least <see cref="CollectSlack"/>, or the live bytes again), so a steady loop collects once per
    /// slack's worth of garbage and a growing working set collects only each time it doubles; likewise by count of
    /// blocks (<see cref="BlockSlack"/>). When no block of this size came back and the cache alone would put the
    /// reservation past a threshold, the cache (blocks of other sizes) goes back to the driver.
    /// </summary>
    private bool TryCollectGarbage(long size, out ulong address, bool reuse = true)
    {
        long t0 = CudaProfiler.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        if (CudaProfiler.Enabled) CudaProfiler.Host("GC (allocator threshold)", t0);
        bool release;
        lock (_gate)
        {
            _collections++;
            _collectAbove = _allocated + size + Math.Max(CollectSlack, _allocated);
            _collectAboveBlocks = _liveBlocks + 1 + Math.Max(BlockSlack, _liveBlocks);
            if (reuse && _free.TryGetValue(size, out var list) && list.Count > 0)
            {
                _hits++;
                _cached -= size;
                _allocated += size;
                _liveBlocks++;
                address = list.Pop();
                return true;
            }
            release = OverThresholds(size);
        }
        if (release && reuse) EmptyCache();
        address = 0;
        return false;
    }

    /// <summary>Blocks held from the driver (live and cached).</summary>
    public long ReservedBlocks { get { lock (_gate) return _reservedBlocks; } }

    /// <summary>How many times a cache miss ran the GC to recover blocks of unreachable tensors.</summary>
    public long Collections { get { lock (_gate) return _collections; } }

    /// <summary>Returns a block of <paramref name="bytes"/> (the size it was allocated with) to the cache. No CUDA call.</summary>
    public void Free(ulong address, long bytes)
    {
        long size = RoundSize(bytes);
        lock (_gate)
        {
            if (!_free.TryGetValue(size, out var list)) _free[size] = list = new Stack<ulong>();
            list.Push(address);
            _allocated -= size;
            _cached += size;
            _liveBlocks--;
        }
    }

    /// <summary>Gives every cached block back to the driver (after waiting for queued work).</summary>
    public void EmptyCache()
    {
        List<ulong> release = [];
        lock (_gate)
        {
            foreach (var list in _free.Values) { release.AddRange(list); list.Clear(); }
            _reserved -= _cached;
            _cached = 0;
            _reservedBlocks -= release.Count;
        }
        if (release.Count == 0) return;
        _raw.Synchronize();
        foreach (var a in release) _raw.Free(a);
    }

    /// <summary>Bytes in live blocks, and reserved from the driver (live plus cached).</summary>
    public DeviceMemoryStats Stats { get { lock (_gate) return new DeviceMemoryStats(_allocated, _reserved); } }

    /// <summary>Bytes in cached (free) blocks.</summary>
    public long CachedBytes { get { lock (_gate) return _cached; } }

    /// <summary>Allocations served so far, and how many of them came from the cache.</summary>
    public (long Allocations, long CacheHits) Counters { get { lock (_gate) return (_allocs, _hits); } }

    internal static string Format(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F1} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };
}
