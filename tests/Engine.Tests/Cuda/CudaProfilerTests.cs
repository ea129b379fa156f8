#if ENGINE_CUDA
using Engine.Cuda;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>The profile table's bookkeeping (no GPU needed: operations are recorded with host timestamps).</summary>
public class CudaProfilerTests
{
    [Test]
    public void ResetForgetsTheWarmUpSoTheTableCoversWhatFollows()
    {
        CudaProfiler.Reset();
        CudaProfiler.Record("test.warmup_kernel", 100, 5_000_100);
        Assert.That(CudaProfiler.Report(), Does.Contain("test.warmup_kernel"));
        CudaProfiler.Reset();
        CudaProfiler.Record("test.timed_kernel", 200, 300);
        CudaProfiler.Record("test.timed_kernel", 400, 500);
        var report = CudaProfiler.Report();
        Assert.That(report, Does.Not.Contain("test.warmup_kernel"));
        Assert.That(report, Does.Contain("test.timed_kernel"));
        Assert.That(report, Does.Contain("1 operations, 2 calls"));
        CudaProfiler.Reset();
    }
}
#endif
