using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Engine.Cuda;

/// <summary>
/// Per-operation GPU time, for finding where a CUDA workload spends its time without an external profiler (the
/// GPU machines this project borrows have no Nsight). Off unless the environment variable ENGINE_CUDA_PROFILE is 1;
/// then every kernel launch, cuBLAS call, copy and memset is bracketed by stream synchronisations and timed on the
/// host (so the totals include launch latency and the workload runs slower), and a table of the operations by total
/// time, with the count of the host's own synchronisations (copies to and from the host), goes to stderr at exit.
/// </summary>
internal static class CudaProfiler
{
    private static readonly object s_gate = new();
    private static readonly Dictionary<string, Stat> s_ops = new(StringComparer.Ordinal);

    private sealed class Stat
    {
        public long Calls, Ticks, GapTicks, Min = long.MaxValue, Max;
        public void Add(long ticks, long gap)
        {
            Calls++; Ticks += ticks; GapTicks += gap;
            Min = Math.Min(Min, ticks); Max = Math.Max(Max, ticks);
        }
    }
    private static long s_first, s_last, s_hostSyncs;

    /// <summary>Whether timing is on (ENGINE_CUDA_PROFILE=1).</summary>
    public static readonly bool Enabled = Environment.GetEnvironmentVariable("ENGINE_CUDA_PROFILE") == "1";

    static CudaProfiler()
    {
        if (Enabled) AppDomain.CurrentDomain.ProcessExit += (_, _) => Console.Error.Write(Report());
    }

    /// <summary>Starts timing one operation: waits for the queued work, so that only this operation is measured.</summary>
    public static long Begin(CudaContext context)
    {
        context.SynchronizeUncounted();
        return Stopwatch.GetTimestamp();
    }

    /// <summary>
    /// Ends timing an operation: waits for it and returns the end time. Call <see cref="Record"/> with it after
    /// building the operation's name, so that the name's allocation (which may start a GC) stays out of the bracket.
    /// </summary>
    public static long Stop(CudaContext context)
    {
        context.SynchronizeUncounted();
        return Stopwatch.GetTimestamp();
    }

    /// <summary>Records the operation <paramref name="name"/> timed from <paramref name="start"/> to <paramref name="end"/>.</summary>
    public static void Record(string name, long start, long end)
    {
        lock (s_gate)
        {
            // The host's time since the previous operation ended (the device was idle then): building this operation.
            long gap = s_last == 0 ? 0 : start - s_last;
            if (s_first == 0) s_first = start;
            s_last = end;
            Get(name).Add(end - start, gap);
        }
    }

    /// <summary>Records host-side work that is not a GPU operation (a driver allocation, a garbage collection), untimed by the brackets.</summary>
    public static void Host(string name, long start)
    {
        long now = Stopwatch.GetTimestamp();
        lock (s_gate) Get(name).Add(now - start, 0);
    }

    private static Stat Get(string name)
    {
        if (!s_ops.TryGetValue(name, out var v)) s_ops[name] = v = new Stat();
        return v;
    }

    /// <summary>Counts a synchronisation the host asked for (a copy to or from host memory, an explicit wait).</summary>
    public static void HostSync()
    {
        if (Enabled) Interlocked.Increment(ref s_hostSyncs);
    }

    /// <summary>
    /// Forgets everything recorded so far: a benchmark calls it after its untimed first call, whose one-time work (module
    /// loads, cuBLAS initialisation, first allocations) would otherwise dominate the means of the few operations it
    /// precedes (the "host us before" column above all).
    /// </summary>
    public static void Reset()
    {
        lock (s_gate)
        {
            s_ops.Clear();
            s_first = s_last = 0;
            Interlocked.Exchange(ref s_hostSyncs, 0);
        }
    }

    /// <summary>The table: operations by total time, then the wall-clock span and the host synchronisations.</summary>
    public static string Report()
    {
        lock (s_gate)
        {
            var sb = new StringBuilder();
            double Ms(long ticks) => ticks * 1e3 / Stopwatch.Frequency;
            long total = s_ops.Values.Sum(v => v.Ticks);
            sb.AppendLine("# ENGINE_CUDA_PROFILE: GPU operations by total time (each bracketed by stream synchronisations)");
            sb.AppendLine("# (host us before: the host's mean time between the previous operation's end and this one's start)");
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"# {"operation",-62} {"calls",8} {"total ms",9} {"mean us",8} {"min us",8} {"max us",8} {"share",6} {"host us before",14}"));
            foreach (var (name, v) in s_ops.OrderByDescending(kv => kv.Value.Ticks + kv.Value.GapTicks).Take(45))
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"# {name,-62} {v.Calls,8} {Ms(v.Ticks),9:0.0} {Ms(v.Ticks) * 1e3 / v.Calls,8:0.0} {Ms(v.Min) * 1e3,8:0.0} {Ms(v.Max) * 1e3,8:0.0} {100.0 * v.Ticks / Math.Max(1, total),5:0.0}% {Ms(v.GapTicks) * 1e3 / v.Calls,14:0.0}"));
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"# {s_ops.Count} operations, {s_ops.Values.Sum(v => v.Calls)} calls, {Ms(total):0.0} ms timed of {Ms(s_last - s_first):0.0} ms wall between the first and the last; {s_hostSyncs} host synchronisations"));
            return sb.ToString();
        }
    }
}
