using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// Reusable pinned float arrays for kernel scratch space (im2col columns, per-thread partial sums), so a
/// convolution does not allocate per call or per image. A rented array is at least the requested length;
/// return it when done. Renting takes the smallest pooled array that fits, so small requests do not take
/// the large buffers that column matrices need; when nothing fits a new array is allocated, and when the
/// pool is full a returned array replaces the smallest pooled one if it is larger.
/// </summary>
internal static unsafe class ScratchPool
{
    private static readonly List<float[]> Free = [];
    // Enough for every thread of a batch-parallel kernel (a few buffers each) plus a few callers.
    private static int MaxPooled => 4 * CpuThreads.Count + 4;
    // Returned for empty requests; never written, never pooled.
    private static readonly float[] Empty = GC.AllocateUninitializedArray<float>(16, pinned: true);

    /// <summary>A pinned array of at least <paramref name="length"/> floats (contents undefined).</summary>
    public static float[] Rent(long length)
    {
        if (length <= 0) return Empty;
        if (length > Array.MaxLength) throw new ArgumentException($"Scratch buffer of {length} floats is too large.");
        lock (Free)
        {
            int best = -1;
            for (int i = 0; i < Free.Count; i++)
                if (Free[i].Length >= length && (best < 0 || Free[i].Length < Free[best].Length)) best = i;
            if (best >= 0)
            {
                var a = Free[best];
                Free[best] = Free[^1];
                Free.RemoveAt(Free.Count - 1);
                return a;
            }
        }
        return GC.AllocateUninitializedArray<float>((int)length, pinned: true);
    }

    /// <summary>Gives an array back for reuse.</summary>
    public static void Return(float[] array)
    {
        if (ReferenceEquals(array, Empty)) return;
        lock (Free)
        {
            if (Free.Count < MaxPooled) { Free.Add(array); return; }
            int smallest = 0;
            for (int i = 1; i < Free.Count; i++) if (Free[i].Length < Free[smallest].Length) smallest = i;
            if (Free[smallest].Length < array.Length) Free[smallest] = array;
        }
    }

    /// <summary>Pointer to element 0 of a rented (pinned) array.</summary>
    public static float* Ptr(float[] array) => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
}
