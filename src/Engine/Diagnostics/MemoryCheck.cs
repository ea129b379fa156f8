using System.Globalization;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Diagnostics;

/// <summary>
/// A long training loop on one device that checks device memory stays flat: a small MLP trained with Adam for a
/// number of steps; <see cref="Device.MemoryStats"/> is read after step 100 (by then every optimiser state exists)
/// and at the end, each time after a full garbage collection so that tensors already unreachable are released by
/// their finalizers. Memory allocated at the end above the step-100 figure means something leaks per step.
/// </summary>
public static class MemoryCheck
{
    /// <summary>Reserved bytes allowed above twice the baseline reservation (a caching allocator's collection slack).</summary>
    public const long ReservedSlack = 512L << 20;

    /// <summary>The step after which the baseline is read (or the last step, for shorter runs).</summary>
    public const int BaselineStep = 100;

    /// <summary>
    /// Runs <paramref name="steps"/> training steps on <paramref name="device"/>; <paramref name="log"/> receives one line
    /// per checkpoint. Passes when allocated memory did not grow between the baseline and the end (and trivially,
    /// with a note, on a device that does not track memory).
    /// </summary>
    public static SelfTestResult Run(Device device, int steps, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), $"MemoryCheck: steps must be >= 1, got {steps}.");
        const string name = "Memory/TrainLoop";
        try
        {
            var g = new Generator(21);
            var model = new Sequential(new Linear(64, 128, generator: g), new ReLU(), new Linear(128, 64, generator: g), new ReLU(), new Linear(64, 10, generator: g));
            var graph = KernelSelfTest.CopyGraph(model.Graph, device);
            var ps = graph.Parameters.Select(v => v.Data!).ToArray();
            var opt = new Adam(ps, lr: 1e-3f);
            var x = Tensor.Uniform([128, 64], -1f, 1f, new Generator(22), device);
            var y = Tensor.FromSpan(Enumerable.Range(0, 128).Select(i => (float)(i * 7 % 10)).ToArray(), [128], device);
            var ctx = new ForwardContext(training: true);
            DeviceMemoryStats? baseline = null, end = null;
            float firstLoss = float.NaN, lastLoss = float.NaN;
            int baseStep = Math.Min(BaselineStep, steps);
            for (int step = 1; step <= steps; step++)
            {
                opt.ZeroGrad();
                var loss = Losses.CrossEntropy(Executor.Run(graph, ctx, x)[0], y);
                loss.Backward();
                opt.Step();
                if (step == 1) firstLoss = loss.Item();
                if (step == baseStep) baseline = Settle(device, step, log);
                if (step == steps) { lastLoss = loss.Item(); end = Settle(device, step, log); }
            }
            string losses = string.Create(CultureInfo.InvariantCulture, $"loss {firstLoss:G4} -> {lastLoss:G4}");
            if (!float.IsFinite(lastLoss) || !(lastLoss < firstLoss))
                return new SelfTestResult(name, steps, 0, 0, false, $"training did not make progress ({losses})");
            if (baseline is not { } b || end is not { } e)
                return new SelfTestResult(name, steps, 0, 0, true, $"{device.Name} does not track memory; {losses}");
            long grew = e.AllocatedBytes - b.AllocatedBytes;
            string detail = $"allocated {Mib(b.AllocatedBytes)} at step {baseStep} -> {Mib(e.AllocatedBytes)} at step {steps}, reserved {Mib(b.ReservedBytes)} -> {Mib(e.ReservedBytes)}; {losses}";
            // Reserved memory (live plus the allocator's cache) may grow by the cache's slack while finalizers catch up,
            // but not without bound: a cache that never reuses blocks fails here even when live bytes stay flat.
            long reservedLimit = 2 * b.ReservedBytes + ReservedSlack;
            if (grew > 0) return new SelfTestResult(name, steps, 0, 0, false, $"allocated memory grew by {grew} bytes: {detail}");
            if (e.ReservedBytes > reservedLimit)
                return new SelfTestResult(name, steps, 0, 0, false, $"reserved memory grew past {Mib(reservedLimit)} (2x the step-{baseStep} reservation + {Mib(ReservedSlack)}): {detail}");
            return new SelfTestResult(name, steps, 0, 0, true, detail);
        }
        catch (Exception ex)
        {
            return new SelfTestResult(name, 0, 0, 0, false, $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    private static DeviceMemoryStats? Settle(Device device, int step, Action<string>? log)
    {
        for (int i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
        device.Synchronize();
        var s = device.MemoryStats;
        log?.Invoke(s is { } m ? $"step {step}: allocated {Mib(m.AllocatedBytes)}, reserved {Mib(m.ReservedBytes)}" : $"step {step}: {device.Name} does not track memory");
        return s;
    }

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.###} MiB");
}
