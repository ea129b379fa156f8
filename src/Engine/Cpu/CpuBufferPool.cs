using System.Collections.Concurrent;

namespace Engine.Cpu;

/// <summary>
/// The caching allocator of CPU tensor storage: pinned float arrays bucketed by exact length, returned by the
/// finalizers of dead <see cref="Tensors.CpuStorage"/> objects and reused by the next allocation of that length
/// (training and bound loops allocate the same shapes every step). Small arrays are pooled only for storages a
/// <see cref="Tensors.TensorScope"/> will dispose; others would come back only through finalizers, which costs more
/// than the allocation. The pool holds at most <see cref="MaxPooledBytes"/>; beyond that returned arrays are left to
/// the GC.
/// </summary>
public static class CpuBufferPool
{
    /// <summary>Arrays shorter than this many floats are plain pinned allocations, unless a TensorScope will hand them back.</summary>
    public const int MinPooledLength = 4096;

    private static readonly ConcurrentDictionary<int, ConcurrentStack<float[]>> Buckets = new();
    private static long _pooledBytes;
    private static long _freshBytes;
    private static long _hits, _misses;
    // The finalizer thread (learnt from the arrays finalizers hand back): waiting for pending finalizers there would deadlock.
    private static int _finalizerThreadId = -1;

    /// <summary>Upper bound on the bytes kept for reuse (default 1 GiB or an eighth of the memory the GC may use, whichever is smaller).</summary>
    public static long MaxPooledBytes { get; set; } = Math.Min(1L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    /// <summary>
    /// Fresh bytes allocated after which a miss first runs a young-generation collection, so that the arrays of
    /// storages that died since are handed back instead of allocating more (and forcing a full GC later).
    /// </summary>
    public static long CollectAfterFreshBytes { get; set; } = 64L << 20;

    /// <summary>Bytes currently held for reuse.</summary>
    public static long PooledBytes => Interlocked.Read(ref _pooledBytes);

    /// <summary>Allocations served from the pool / freshly, since start (diagnostics).</summary>
    public static (long Hits, long Misses) Counts => (Interlocked.Read(ref _hits), Interlocked.Read(ref _misses));

    internal static float[] Rent(int length, bool zero, out bool pooled) => Rent(length, zero, scoped: false, out pooled);

    /// <summary>
    /// An array of exactly <paramref name="length"/> floats. Short ones come from the pool only when
    /// <paramref name="scoped"/> (a TensorScope hands them back when it ends): a fresh pinned array lives on the pinned
    /// heap, which only a full collection reclaims, so a training step's small tensors would otherwise take new pages
    /// (and page faults) every step.
    /// </summary>
    internal static float[] Rent(int length, bool zero, bool scoped, out bool pooled)
    {
        if (length < MinPooledLength && !(scoped && length > 0))
        {
            pooled = false;
            return zero ? GC.AllocateArray<float>(length, pinned: true) : GC.AllocateUninitializedArray<float>(length, pinned: true);
        }
        pooled = true;
        if (TryTake(length, zero, out var a)) return a;
        if (Interlocked.Read(ref _freshBytes) > CollectAfterFreshBytes && Environment.CurrentManagedThreadId != Volatile.Read(ref _finalizerThreadId))
        {
            Interlocked.Exchange(ref _freshBytes, 0);
            GC.Collect(1, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
            if (TryTake(length, zero, out a)) return a;
        }
        Interlocked.Increment(ref _misses);
        Interlocked.Add(ref _freshBytes, (long)length * sizeof(float));
        return zero ? GC.AllocateArray<float>(length, pinned: true) : GC.AllocateUninitializedArray<float>(length, pinned: true);
    }

    private static bool TryTake(int length, bool zero, out float[] array)
    {
        if (Buckets.TryGetValue(length, out var stack) && stack.TryPop(out array!))
        {
            Interlocked.Add(ref _pooledBytes, -(long)length * sizeof(float));
            Interlocked.Increment(ref _hits);
            if (zero) Array.Clear(array);
            return true;
        }
        array = null!;
        return false;
    }

    /// <summary>Takes an array back; <paramref name="fromFinalizer"/> when a finalizer hands it back (that thread is remembered).</summary>
    internal static void Return(float[] array, bool fromFinalizer)
    {
        // Only the finalizer thread is recorded: Dispose on any other thread would otherwise overwrite it, and a
        // finalizer that allocated could then wait for its own pending finalizers.
        if (fromFinalizer) Volatile.Write(ref _finalizerThreadId, Environment.CurrentManagedThreadId);
        long bytes = (long)array.Length * sizeof(float);
        if (Interlocked.Add(ref _pooledBytes, bytes) > MaxPooledBytes)
        {
            Interlocked.Add(ref _pooledBytes, -bytes);
            return;
        }
        Buckets.GetOrAdd(array.Length, _ => new ConcurrentStack<float[]>()).Push(array);
    }

    /// <summary>Drops every pooled array (their memory returns to the GC).</summary>
    public static void Clear()
    {
        foreach (var stack in Buckets.Values)
            while (stack.TryPop(out var a)) Interlocked.Add(ref _pooledBytes, -(long)a.Length * sizeof(float));
    }
}
