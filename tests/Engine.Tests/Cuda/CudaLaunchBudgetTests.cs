#if ENGINE_CUDA
using System.Runtime.InteropServices;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Cuda.Native;
using Engine.Tests.Devices;
using Engine.Tensors;
using NUnit.Framework;
using BoundsApi = Engine.Bounds.Bounds;

namespace Engine.Tests.Cuda;

/// <summary>
/// What one CROWN call asks of the driver through the real CUDA backend: kernel launches, cuBLAS calls, copies and
/// memsets (unless ENGINE_CUDA_POISON adds its own), and host waits that found work queued, read from the CUDA emulator's counters (so this runs in the
/// emulated test run, and is skipped on a real driver, which has no such counters). LaunchBudgetTests counts
/// kernel-interface calls on an emulated device; this sees what the backend makes of them (a reduction is two
/// launches, a GEMM a cuBLAS call, a zeroed tensor a memset).
/// </summary>
[TestFixture]
public class CudaLaunchBudgetTests
{
    private static unsafe ulong[] Counters()
    {
        string? lib = NativeLibraries.LoadedFrom(CudaLibrary.Driver);
        if (lib == null || !NativeLibrary.TryLoad(lib, out nint h) || !NativeLibrary.TryGetExport(h, "cuda_emu_stats", out nint f))
        {
            Assert.Ignore($"the driver ({lib ?? "none"}) is not the CUDA emulator, which alone counts launches");
            return null!;
        }
        var s = new ulong[7];
        fixed (ulong* p = s) ((delegate* unmanaged<ulong*, int, void>)f)(p, s.Length);
        return s;
    }

    // Seen (session 16, batch 8 and 16 alike): MLP 37 launches, 8 cuBLAS calls, 7 copies, 1 memset, 3 waits; CNN 73, 8, 11, 1, 4.
    [TestCase("mlp", 40, 8, 8, 2, 3)]
    [TestCase("cnn", 78, 8, 12, 2, 4)]
    public void CrownStaysWithinItsDriverBudget(string net, int maxLaunches, int maxBlas, int maxCopies, int maxMemsets, int maxWaits)
    {
        var dev = CudaTestEnv.RequireDevice();
        Counters();
        const int batch = 8;
        var xCpu = Tensor.Uniform([batch, 1, 28, 28], 0f, 1f, new Generator(2));
        var specCpu = new Spec(Spec.Margins(Enumerable.Range(0, batch).Select(i => i % 10).ToArray(), 10).C);
        var opts = new BoundOptions { ComputeUpper = false };
        var x = xCpu.To(dev);
        var graph = LaunchBudgetTests.Net(net).To(dev).Graph;
        var spec = new Spec(specCpu.C.To(dev));
        using var noGrad = new NoGrad();
        BoundsApi.Compute(graph, x, Perturbation.LInf(0.01f), BoundMethod.Crown, spec, opts).Lower.ToArray();   // modules load, caches fill
        var before = Counters();
        float[] lower;
        using (TensorScope.Begin())
            lower = BoundsApi.Compute(graph, x, Perturbation.LInf(0.01f), BoundMethod.Crown, spec, opts).Lower.ToArray();
        var after = Counters();
        ulong launches = after[1] - before[1], blas = after[2] - before[2], copies = after[3] - before[3], waits = after[4] - before[4],
            memsets = after[6] - before[6];
        string seen = $"CROWN on the {net}: {launches} launches, {blas} cuBLAS calls, {copies} copies, {memsets} memsets, {waits} waits";
        TestContext.Out.WriteLine(seen);
        Assert.That(launches, Is.LessThanOrEqualTo((ulong)maxLaunches), seen);
        Assert.That(blas, Is.LessThanOrEqualTo((ulong)maxBlas), seen);
        Assert.That(copies, Is.LessThanOrEqualTo((ulong)maxCopies), seen);
        if (!Engine.Cuda.CudaContext.Poison) Assert.That(memsets, Is.LessThanOrEqualTo((ulong)maxMemsets), seen);
        Assert.That(waits, Is.LessThanOrEqualTo((ulong)maxWaits), seen);
        var cpu = BoundsApi.Compute(LaunchBudgetTests.Net(net), xCpu, Perturbation.LInf(0.01f), BoundMethod.Crown, specCpu, new BoundOptions { ComputeUpper = false, FastPath = false }).Lower.ToArray();
        Assert.That(lower, Is.EqualTo(cpu).Within(1e-4f), "the counted call's bounds against the CPU's");
    }
}
#endif
