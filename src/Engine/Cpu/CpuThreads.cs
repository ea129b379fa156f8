namespace Engine.Cpu;

/// <summary>
/// The one work-partitioning helper of the CPU path: splits [0, count) into contiguous chunks over at most
/// <see cref="Count"/> threads. Every multi-threaded kernel goes through here, so the thread count is one setting.
/// </summary>
public static class CpuThreads
{
    private static int _count = Environment.ProcessorCount;

    // Set while a thread runs a chunk of For/ForEach: a kernel called from inside a parallel region (e.g. a
    // per-image GEMM in a batch-parallel convolution) then runs inline instead of oversubscribing the cores.
    [ThreadStatic] private static bool _inParallelRegion;

    /// <summary>True on a thread that is running a chunk of <see cref="For"/> or <see cref="ForEach"/>; nested calls run inline there.</summary>
    public static bool InParallelRegion => _inParallelRegion;

    /// <summary>Threads the CPU kernels may use (default: logical processors). Results are reproducible for a given count.</summary>
    public static int Count
    {
        get => _count;
        set
        {
            if (value < 1) throw new ArgumentOutOfRangeException(nameof(value), "Thread count must be at least 1.");
            _count = value;
        }
    }

    /// <summary>
    /// Runs body(start, end) over contiguous chunks covering [0, count). Chunks are at least <paramref name="minChunk"/>
    /// long, so small problems run inline on the calling thread with no scheduling cost. Inside another
    /// For/ForEach chunk the whole range runs inline (one level of parallelism, no oversubscription).
    /// </summary>
    public static void For(int count, int minChunk, Action<int, int> body)
    {
        if (count <= 0) return;
        int threads = Math.Min(_count, Math.Max(1, count / Math.Max(1, minChunk)));
        if (threads <= 1 || _inParallelRegion) { body(0, count); return; }
        int chunk = (count + threads - 1) / threads;
        int parts = (count + chunk - 1) / chunk;
        Run(parts, threads, p =>
        {
            int s = p * chunk;
            body(s, Math.Min(count, s + chunk));
        });
    }

    /// <summary>
    /// Runs body(i) for each i in [0, count) with one task per index (for a few large, equal work items).
    /// Inside another For/ForEach chunk the indices run inline, in order.
    /// </summary>
    public static void ForEach(int count, Action<int> body)
    {
        if (count <= 0) return;
        if (_count <= 1 || count == 1 || _inParallelRegion) { for (int i = 0; i < count; i++) body(i); return; }
        Run(count, Math.Min(_count, count), body);
    }

    /// <summary>Runs the parts on the caller and the persistent workers, each inside a parallel region.</summary>
    private static void Run(int parts, int threads, Action<int> body)
    {
        bool outer = _inParallelRegion;
        _inParallelRegion = true;
        try { CpuWorkers.Run(parts, threads, body); }
        finally { _inParallelRegion = outer; }
    }

    /// <summary>Worker threads are always inside a parallel region: kernels they call run inline.</summary>
    internal static void MarkWorker() => _inParallelRegion = true;
}
