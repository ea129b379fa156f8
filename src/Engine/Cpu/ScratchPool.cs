using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// Reusable pinned float arrays for kernel scratch space (im2col columns, per-thread partial sums), so a
/// convolution does not allocate per call or per image. A rented array is at least the requested length;
/// return it when done. Arrays that are too small are dropped and replaced by larger ones, so the pool
/// settles at the largest sizes a workload needs.
/// </summary>
internal static unsafe class ScratchPool
{
    private static readonly ConcurrentBag<float[]> Free = new();
    // Enough for every thread of a batch-parallel kernel plus a few callers; beyond that, returns are dropped.
    private static int MaxPooled => 2 * CpuThreads.Count + 4;

    /// <summary>A pinned array of at least <paramref name="length"/> floats (contents undefined).</summary>
    public static float[] Rent(long length)
    {
        if (length > Array.MaxLength) throw new ArgumentException($"Scratch buffer of {length} floats is too large.");
        int n = (int)Math.Max(1, length);
        // Take a few candidates at most; a too-small one is discarded so the pool grows towards what is used.
        for (int tries = 0; tries < 4 && Free.TryTake(out var a); tries++)
            if (a.Length >= n) return a;
        return GC.AllocateUninitializedArray<float>(n, pinned: true);
    }

    /// <summary>Gives an array back for reuse.</summary>
    public static void Return(float[] array)
    {
        if (Free.Count < MaxPooled) Free.Add(array);
    }

    /// <summary>Pointer to element 0 of a rented (pinned) array.</summary>
    public static float* Ptr(float[] array) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
}
