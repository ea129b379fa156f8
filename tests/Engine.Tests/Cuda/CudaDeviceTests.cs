#if ENGINE_CUDA
using Engine.Cuda;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>The CUDA runtime on a real GPU (skipped, with the reason, without one): copies, core kernels, cuBLAS GEMM, memory.</summary>
public class CudaDeviceTests
{
    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    [Test]
    public void HostRoundTripFillCopyAxpy()
    {
        var dev = CudaTestEnv.RequireDevice();
        var x = Random(1000, 1);
        var t = Tensor.FromSpan(x, [1000], dev);
        Assert.That(t.Device, Is.SameAs(dev));
        Assert.That(t.ToArray(), Is.EqualTo(x));
        var z = Tensor.Zeros([7], dev);
        Assert.That(z.ToArray(), Is.All.EqualTo(0f));
        float nan = BitConverter.Int32BitsToSingle(0x7fc01234);
        z.Fill_(nan);
        Assert.That(z.ToArray().Select(BitConverter.SingleToInt32Bits), Is.All.EqualTo(0x7fc01234), "Fill writes the exact bits");
        var c = t.Clone();
        Assert.That(c.ToArray(), Is.EqualTo(x));
        var y = Random(1000, 2);
        var ty = Tensor.FromSpan(y, [1000], dev);
        dev.Kernels.Axpy(-0.37f, t.Buf, ty.Buf, 1000);
        var cpu = Tensor.FromArray((float[])y.Clone(), 1000);
        Device.Cpu.Kernels.Axpy(-0.37f, Tensor.FromArray(x, 1000).Buf, cpu.Buf, 1000);
        Assert.That(ty.ToArray(), Is.EqualTo(cpu.ToArray()), "bit-identical to the CPU");
    }

    [TestCase(false, false, 1, 0L)]
    [TestCase(true, false, 1, 0L)]
    [TestCase(false, true, 3, 1L)]
    [TestCase(true, true, 4, 1L)]
    [TestCase(false, false, 5, 0L)]   // A broadcast over the batch (stride 0)
    public void GemmMatchesTheCpu(bool transA, bool transB, int batch, long aStrideOn)
    {
        var dev = CudaTestEnv.RequireDevice();
        int m = 37, n = 53, k = 29;
        long sa = aStrideOn * m * k, sb = (long)k * n, sc = (long)m * n;
        var a = Random((int)Math.Max(sa * batch, m * k), 3);
        var b = Random((int)(sb * batch), 4);
        var c0 = Enumerable.Repeat(float.NaN, (int)(sc * batch)).ToArray();   // beta = 0 must not read C
        int lda = transA ? m : k, ldb = transB ? k : n;
        var cpuC = Tensor.FromArray((float[])c0.Clone(), c0.Length);
        Device.Cpu.Kernels.Gemm(transA, transB, batch, m, n, k, 1.5f, Tensor.FromArray(a, a.Length).Buf, lda, sa, Tensor.FromArray(b, b.Length).Buf, ldb, sb, 0f, cpuC.Buf, n, sc);
        var gC = Tensor.FromSpan(c0, [c0.Length], dev);
        dev.Kernels.Gemm(transA, transB, batch, m, n, k, 1.5f, Tensor.FromSpan(a, [a.Length], dev).Buf, lda, sa, Tensor.FromSpan(b, [b.Length], dev).Buf, ldb, sb, 0f, gC.Buf, n, sc);
        var got = gC.ToArray(); var want = cpuC.ToArray();
        for (int i = 0; i < got.Length; i++) Assert.That(got[i], Is.EqualTo(want[i]).Within(1e-4f * k), $"element {i}");
        // beta = 1 accumulates.
        dev.Kernels.Gemm(transA, transB, batch, m, n, k, 1f, Tensor.FromSpan(a, [a.Length], dev).Buf, lda, sa, Tensor.FromSpan(b, [b.Length], dev).Buf, ldb, sb, 1f, gC.Buf, n, sc);
        var twice = gC.ToArray();
        for (int i = 0; i < got.Length; i++) Assert.That(twice[i], Is.EqualTo(want[i] * (1 + 1 / 1.5f)).Within(2e-4f * k), $"element {i}");
    }

    [Test]
    public void GemmRejectsOperandsThatRunPastTheirStorage()
    {
        var dev = CudaTestEnv.RequireDevice();
        var a = Tensor.Zeros([6], dev); var b = Tensor.Zeros([6], dev); var c = Tensor.Zeros([4], dev);
        var ex = Assert.Throws<ArgumentException>(() => dev.Kernels.Gemm(false, false, 1, 2, 2, 4, 1f, a.Buf, 4, 0, b.Buf, 2, 0, 0f, c.Buf, 2, 0));
        Assert.That(ex!.Message, Does.Contain("runs past its storage"));
    }

    [Test]
    public void MemoryStaysFlatAndScopesFreeDeterministically()
    {
        var dev = CudaTestEnv.RequireDevice();
        for (int i = 0; i < 3; i++) using (TensorScope.Begin()) { _ = Tensor.Ones([1000, 100], dev).Clone(); }
        var before = dev.MemoryStats!.Value;
        for (int i = 0; i < 200; i++)
        {
            using var scope = TensorScope.Begin();
            var t = Tensor.Ones([1000, 100], dev);
            _ = t.Clone();
        }
        Assert.That(dev.MemoryStats!.Value, Is.EqualTo(before), "scoped temporaries return their blocks; the cache serves the next step");
        Tensor gone;
        using (TensorScope.Begin()) gone = Tensor.Ones([10], dev);
        Assert.Throws<ObjectDisposedException>(() => gone.ToArray());
        Assert.Throws<ArgumentException>(() => dev.CopyFromHost(new float[3], Tensor.Zeros(3).Storage, 0), "a CPU storage is not this device's");
        dev.Synchronize();
    }

    [Test]
    public void EventsTimeQueuedWork()
    {
        var dev = CudaTestEnv.RequireDevice();
        var ctx = dev.Context;
        using var start = ctx.CreateEvent();
        using var end = ctx.CreateEvent();
        var t = Tensor.Zeros([1 << 20], dev);
        start.Record();
        for (int i = 0; i < 10; i++) dev.Kernels.Axpy(1f, t.Buf, t.Buf, t.Numel);
        end.Record();
        Assert.That(CudaEvent.ElapsedMs(start, end), Is.GreaterThanOrEqualTo(0f));
    }

    [Test]
    public void ManagedNullReferencesStillThrowWithTheDriverLoaded()
    {
        // The CUDA emulator installs a SIGSEGV handler (to name the kernel of an out-of-bounds access); a fault outside
        // a kernel must reach the runtime's handler, which turns a managed null dereference into an exception.
        var dev = CudaTestEnv.RequireDevice();
        var t = Tensor.Zeros([4], dev);
        int[]? none = Environment.TickCount64 > 0 ? null : [1];
        Assert.Throws<NullReferenceException>(() => _ = none![0]);
        Assert.That(t.ToArray(), Is.EqualTo(new float[4]));
    }

    [Test]
    public void PoisonFillsNewTensorsWithNaNButNotZeroedOnes()
    {
        var dev = CudaTestEnv.RequireDevice();
        if (!CudaContext.Poison) Assert.Ignore("ENGINE_CUDA_POISON is not set in this process (the emulated test run sets it).");
        for (int round = 0; round < 2; round++)   // the second round reuses cached blocks
        {
            var empty = Tensor.Empty([1000], dev);
            var zeros = Tensor.Zeros([1000], dev);
            Assert.That(empty.ToArray(), Has.All.NaN, $"round {round}");
            Assert.That(zeros.ToArray(), Has.All.EqualTo(0f), $"round {round}");
            empty.Storage.Dispose();
            zeros.Storage.Dispose();
        }
    }
}
#endif
