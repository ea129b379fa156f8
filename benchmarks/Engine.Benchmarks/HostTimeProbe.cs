using System.Diagnostics;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Cli;
using Engine.Tensors;
using Engine.Tests.Devices;

namespace Engine.Benchmarks;

/// <summary>
/// `Engine.Benchmarks --host-time [mlp|cnn] [--calls N]`: what a GPU's host spends on one CROWN call of
/// `engine bench crown` (batch 128, margin spec, eps 0.01, lower bounds) outside its launches, measured without a GPU:
/// the call runs on the emulated device of the tests (CPU kernels behind a storage of its own), and the host's own time
/// between device events (kernel calls, allocations, copies; the events' own time is left out) is summed by the event
/// that ended each gap, with the three innermost Engine frames that made it. Prints the median over the calls of the
/// total and of each gap. This project runs without tiered compilation, as the NativeAOT binary on a GPU machine does.
/// <para>
/// With <c>--cuda-emu</c> the call runs on the real CUDA backend over the CUDA emulator (native/cuda-emu; ENGINE_CUDA_LIB,
/// default out/cuda-emu): the host's time is the call's wall time less the time the emulator spent running the queued
/// work (which a GPU runs beside the host) and in its own entry points (a driver's cost, not the engine's), so it includes what the backend itself costs (parameter packing, module and
/// function lookups, the caching allocator, the upload ring, the driver calls' bookkeeping), with the counts of
/// launches, cuBLAS calls, copies and host waits the emulator saw.
/// </para>
/// </summary>
internal static class HostTimeProbe
{
    public static int Run(string[] args)
    {
        string net = args.Length > 0 && !args[0].StartsWith("--", StringComparison.Ordinal) ? args[0] : "mlp";
        int calls = Array.IndexOf(args, "--calls") is int c and >= 0 && c + 1 < args.Length ? int.Parse(args[c + 1]) : 9;
        if (args.Contains("--cuda-emu"))
#if ENGINE_CUDA
            return RunOnCudaEmulator(net, calls);
#else
        {
            Console.Error.WriteLine("error: --cuda-emu needs the CUDA backend (a build without -p:CpuOnly=true)");
            return 1;
        }
#endif
        var dev = new TimingDevice("host-time");
        Device.Register("host-time", _ => dev);
        var crown = CrownCall(net, dev);
        using var noGrad = new NoGrad();
        crown();
        var gaps = new Dictionary<string, List<double>>();
        var totals = new List<double>();
        int events = 0;
        for (int call = 0; call < calls; call++)
        {
            dev.Reset();
            crown();
            totals.Add(Us(dev.Gaps.Values.Sum()));
            events = dev.Events;
            foreach (var kv in dev.Gaps) (gaps.TryGetValue(kv.Key, out var l) ? l : gaps[kv.Key] = []).Add(Us(kv.Value));
        }
        Console.WriteLine($"{net}: host {Median(totals):F0} us a call between {events} device events (median of {calls}; min {totals.Min():F0}, max {totals.Max():F0})");
        foreach (var kv in gaps.Where(k => k.Value.Count == calls).OrderByDescending(k => Median(k.Value)).Take(25))
            Console.WriteLine($"  {Median(kv.Value),8:F1} us before {kv.Key}");
        return 0;
    }

#if ENGINE_CUDA
    private static unsafe int RunOnCudaEmulator(string net, int calls)
    {
        if (Environment.GetEnvironmentVariable("ENGINE_CUDA_LIB") is not { Length: > 0 })
            Environment.SetEnvironmentVariable("ENGINE_CUDA_LIB", Path.GetFullPath(Path.Combine("out", "cuda-emu")));
        string dir = Environment.GetEnvironmentVariable("ENGINE_CUDA_LIB")!;
        if (!Engine.Cuda.CudaBackend.Register())
        {
            Console.Error.WriteLine($"error: CUDA is not available: {Engine.Cuda.CudaBackend.UnavailableReason}");
            return 1;
        }
        // The loaded driver library again (same handle): only the emulator has this export.
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad(Path.Combine(dir, "libcuda.so.1"), out nint lib)
            || !System.Runtime.InteropServices.NativeLibrary.TryGetExport(lib, "cuda_emu_stats", out nint export))
        {
            Console.Error.WriteLine($"error: {dir} does not hold the CUDA emulator (./build.sh emu builds out/cuda-emu)");
            return 1;
        }
        var stats = (delegate* unmanaged<ulong*, int, void>)export;
        var crown = CrownCall(net, Device.Get("cuda"));
        using var noGrad = new NoGrad();
        crown();
        // ENGINE_CUDA_EMU_PROFILE=1 prints the emulator's profile at exit: of the timed calls only.
        if (System.Runtime.InteropServices.NativeLibrary.TryGetExport(lib, "cuda_emu_profile_reset", out nint reset))
            ((delegate* unmanaged<void>)reset)();
        List<double> host = [], emu = [];
        int gc0 = GC.CollectionCount(0), gc1 = GC.CollectionCount(1), gc2 = GC.CollectionCount(2);
        var pause0 = GC.GetTotalPauseDuration();
        ulong* s0 = stackalloc ulong[6], s1 = stackalloc ulong[6];
        var counts = new ulong[4];
        for (int call = 0; call < calls; call++)
        {
            stats(s0, 6);
            long t0 = Stopwatch.GetTimestamp();
            // As `engine bench crown` times a call: its memory goes back to the allocator's cache when it ends.
            using (TensorScope.Begin())
                crown();
            long t1 = Stopwatch.GetTimestamp();
            stats(s1, 6);
            double api = (s1[5] - s0[5]) / 1e3;
            host.Add(Us(t1 - t0) - (s1[0] - s0[0]) / 1e3 - api);
            emu.Add(api);
            for (int i = 0; i < 4; i++) counts[i] = s1[i + 1] - s0[i + 1];
        }
        Console.WriteLine($"{net} on the CUDA backend over the emulator: host {Median(host):F0} us a call (median of {calls}; min {host.Min():F0}, max {host.Max():F0}; "
            + $"the emulator's entry points another {Median(emu):F0} us); {counts[0]} launches, {counts[1]} cuBLAS calls, {counts[2]} copies, {counts[3]} host waits");
        Console.WriteLine($"  garbage collections in the {calls} calls: gen0 {GC.CollectionCount(0) - gc0}, gen1 {GC.CollectionCount(1) - gc1}, gen2 {GC.CollectionCount(2) - gc2}, "
            + $"pauses {(GC.GetTotalPauseDuration() - pause0).TotalMilliseconds:F1} ms in all");
        return 0;
    }
#endif

    /// <summary>One `engine bench crown` call on <paramref name="dev"/>: the bench net at batch 128, margin spec, eps 0.01, lower bounds read.</summary>
    private static Func<float[]> CrownCall(string net, Device dev)
    {
        var x = BenchNets.Input(128).To(dev);
        var graph = BenchNets.Make(net).To(dev).Graph;
        var spec = new Spec(Spec.Margins(Enumerable.Range(0, 128).Select(i => i % 10).ToArray(), 10).C.To(dev));
        var opts = new BoundOptions { ComputeUpper = false };
        return () => Engine.Bounds.Bounds.Compute(graph, x, Perturbation.LInf(0.01f), BoundMethod.Crown, spec, opts).Lower.ToArray();
    }

    private static double Us(long ticks) => ticks * 1e6 / Stopwatch.Frequency;

    private static double Median(List<double> v) { v.Sort(); return v[v.Count / 2]; }

    /// <summary>The emulated device, timing the host's gaps between its events.</summary>
    private sealed class TimingDevice : EmulatedDevice
    {
        private readonly IKernels _timed;
        private long _lastEnd;

        public TimingDevice(string name) : base(name)
        {
            _timed = ObservedKernels.Create(EmuKernels, Begin, End);
        }

        public override IKernels Kernels => _timed;

        /// <summary>Stopwatch ticks of host time before each kind of event, by event and calling frames.</summary>
        public Dictionary<string, long> Gaps { get; } = [];

        /// <summary>Device events since the last <see cref="Reset"/>.</summary>
        public int Events { get; private set; }

        public void Reset() { Gaps.Clear(); Events = 0; _lastEnd = Stopwatch.GetTimestamp(); }

        /// <summary>Starts a device event: the gap before it is the host's; the event's own time (and this stack walk) is not.</summary>
        public void Begin(string what)
        {
            long start = Stopwatch.GetTimestamp();
            string key = what + " <- " + string.Join(" <- ", new StackTrace().GetFrames().Select(f => f.GetMethod())
                .Where(m => m?.DeclaringType?.Namespace is { } ns && ns.StartsWith("Engine.", StringComparison.Ordinal)
                            && !ns.StartsWith("Engine.Tests", StringComparison.Ordinal) && !ns.StartsWith("Engine.Benchmarks", StringComparison.Ordinal)
                            && !ns.StartsWith("Engine.Tensors", StringComparison.Ordinal) && !ns.StartsWith("Engine.Autograd", StringComparison.Ordinal))
                .Take(3).Select(m => m!.DeclaringType!.Name + "." + m.Name));
            Gaps[key] = Gaps.GetValueOrDefault(key) + (start - _lastEnd);
            Events++;
        }

        /// <summary>Ends the current device event.</summary>
        public void End() => _lastEnd = Stopwatch.GetTimestamp();

        public override Storage Allocate(int length, bool zero = false)
        {
            Begin(zero ? "AllocateZeroed" : "Allocate");
            try { return base.Allocate(length, zero); }
            finally { End(); }
        }

        public override void CopyFromHost(ReadOnlySpan<float> source, Storage destination, int destinationOffset)
        {
            Begin("FromHost");
            try { base.CopyFromHost(source, destination, destinationOffset); }
            finally { End(); }
        }

        public override void CopyToHost(Storage source, int sourceOffset, Span<float> destination)
        {
            Begin("ToHost");
            try { base.CopyToHost(source, sourceOffset, destination); }
            finally { End(); }
        }
    }
}
