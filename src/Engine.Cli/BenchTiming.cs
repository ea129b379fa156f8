using System.Diagnostics;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>How the `engine bench` commands time their work, on the CPU and on asynchronous devices (CUDA).</summary>
internal static class BenchTiming
{
    /// <summary>
    /// Median wall time of <paramref name="body"/>: warm-up (JIT tiers, caches) for at least two calls and ~0.3 s,
    /// then at least 5 and at most 100 timed calls, stopping after ~2 s.
    /// </summary>
    public static double MedianSeconds(Action body, double warmupSeconds = 0.3, double budgetSeconds = 2.0)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 2 || sw.Elapsed.TotalSeconds < warmupSeconds; i++) body();
        var times = new List<double>();
        sw.Restart();
        while (times.Count < 5 || (times.Count < 100 && sw.Elapsed.TotalSeconds < budgetSeconds))
        {
            long t0 = Stopwatch.GetTimestamp();
            body();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        times.Sort();
        int m = times.Count / 2;
        return times.Count % 2 == 1 ? times[m] : 0.5 * (times[m - 1] + times[m]);
    }

    /// <summary>
    /// Median seconds per call of <paramref name="body"/> on <paramref name="device"/>: each sample runs it
    /// <paramref name="reps"/> times and then waits for the device (<see cref="Device.Synchronize"/>), so queued
    /// asynchronous work is inside the sample it belongs to (the warm-up ends with a wait as well). Several calls per
    /// sample amortise the wait's own latency for short GPU kernels; on the CPU the wait is a no-op. A sample shorter
    /// than <see cref="MinSampleSeconds"/> (too short for the clock) doubles the calls per sample until it is not.
    /// </summary>
    public static double MedianSeconds(Action body, Device device, int reps = 1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(reps, 1);
        device.Synchronize();
        void Sample()
        {
            for (int r = 0; r < reps; r++) body();
            device.Synchronize();
        }
        Sample();
        while (reps < 1 << 20)
        {
            long t0 = Stopwatch.GetTimestamp();
            Sample();
            if (Stopwatch.GetElapsedTime(t0).TotalSeconds >= MinSampleSeconds) break;
            reps *= 2;
        }
        return MedianSeconds(Sample) / reps;
    }

    /// <summary>The shortest timed sample: 0.1 ms, far above the clock's resolution and a device wait's latency.</summary>
    public const double MinSampleSeconds = 1e-4;

    /// <summary>
    /// Calls per timing sample: 1 on the CPU (each call is long and synchronous); on an asynchronous device enough to
    /// make a sample about a millisecond, given a rough guess of one call's seconds, between 1 and 50.
    /// </summary>
    public static int Reps(Device device, double guessSeconds)
        => device == Device.Cpu ? 1 : (int)Math.Clamp(Math.Ceiling(1e-3 / Math.Max(guessSeconds, 1e-9)), 1, 50);

    /// <summary>
    /// <paramref name="body"/> inside a TensorScope: on CUDA the memory of what one call allocates goes back to the
    /// allocator's cache when the call ends (as PyTorch's reference counting does), instead of when the GC finalizes
    /// it, so that every timed call reuses cached blocks. State a call creates and a later call needs must be created
    /// before (an untimed first call outside the scope). Without the CUDA backend, the body itself.
    /// </summary>
    public static Action Scoped(Action body)
    {
#if ENGINE_CUDA
        return () =>
        {
            using var scope = TensorScope.Begin();
            body();
        };
#else
        return body;
#endif
    }

    /// <summary>The JSON field <c>"device":"cuda:0",</c> for a non-CPU device, and nothing on the CPU (the CPU lines keep their format).</summary>
    public static string DeviceField(Device device) => device == Device.Cpu ? "" : $"\"device\":\"{device.Name}\",";
}
