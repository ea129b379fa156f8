namespace Engine.Bounds;

/// <summary>
/// Exact-length host arrays reused across calls on one thread, for the index lists bound propagation builds on every
/// call (tens of thousands of entries: over the large-object threshold). Fresh large arrays are slow where it matters:
/// each lands on newly mapped pages and brings gen-2 collections (measured on this project's VMs: a 65,536-entry
/// index built into a new array took 750 µs, into a reused one 42 µs; on a GPU the host's time is the critical path
/// of small-batch CROWN). Contents are not cleared: a caller overwrites what it reads. Thread-static, capped at
/// <see cref="MaxBytes"/> cached per thread.
/// </summary>
internal static class HostScratch
{
    private const long MaxBytes = 32L << 20;

    [ThreadStatic] private static Dictionary<int, Stack<int[]>>? t_ints;
    [ThreadStatic] private static Dictionary<int, Stack<float[]>>? t_floats;
    [ThreadStatic] private static long t_bytes;

    /// <summary>An int array of exactly <paramref name="length"/> entries, contents arbitrary.</summary>
    public static int[] Ints(int length) => Take(ref t_ints, length);

    /// <summary>A float array of exactly <paramref name="length"/> entries, contents arbitrary.</summary>
    public static float[] Floats(int length) => Take(ref t_floats, length);

    /// <summary>Hands an array from <see cref="Ints"/> back; the caller must not use it afterwards.</summary>
    public static void Return(int[] a) => Give(ref t_ints, a);

    /// <summary>Hands an array from <see cref="Floats"/> back; the caller must not use it afterwards.</summary>
    public static void Return(float[] a) => Give(ref t_floats, a);

    private static T[] Take<T>(ref Dictionary<int, Stack<T[]>>? cache, int length)
    {
        if (cache != null && cache.TryGetValue(length, out var s) && s.Count > 0)
        {
            t_bytes -= (long)length * 4;
            return s.Pop();
        }
        return new T[length];
    }

    private static void Give<T>(ref Dictionary<int, Stack<T[]>>? cache, T[] a)
    {
        long bytes = (long)a.Length * 4;
        if (t_bytes + bytes > MaxBytes) return;
        cache ??= new Dictionary<int, Stack<T[]>>();
        if (!cache.TryGetValue(a.Length, out var s)) cache[a.Length] = s = new Stack<T[]>();
        s.Push(a);
        t_bytes += bytes;
    }
}
