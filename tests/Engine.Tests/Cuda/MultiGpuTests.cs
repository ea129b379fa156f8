#if ENGINE_CUDA
using Engine.Autograd;
using Engine.Bounds;
using Engine.Cuda;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>
/// Two GPUs in one process ("cuda:0" and "cuda:1"): each has its own primary context, modules, caching allocator,
/// upload ring and cuBLAS handle, and CUDA binds the current context to the calling thread, so every entry point
/// must make its device's context current. Work on the second GPU, work alternating between the two, work from a
/// fresh thread, a copy between them, and an op given tensors of both (a clear exception, not a kernel reading the
/// other GPU's memory, which would fault and leave the context unusable). Skipped with fewer than two GPUs;
/// `./build.sh test` runs them on two emulated GPUs (ENGINE_CUDA_EMU_DEVICES=2), which enforce what a GPU does:
/// a context per thread, functions and streams of the current context only, no access to another device's memory.
/// </summary>
[TestFixture]
public class MultiGpuTests
{
    private static (Device A, Device B) TwoGpus()
    {
        CudaTestEnv.RequireDevice();
        if (CudaBackend.DeviceCount < 2)
            Assert.Ignore($"needs two CUDA devices, this machine has {CudaBackend.DeviceCount} (./build.sh test runs this on two emulated GPUs)");
        return (Device.Get("cuda:0"), Device.Get("cuda:1"));
    }

    private static float[] Rand(int n, int seed) => Tensor.Uniform([n], -1, 1, new Generator((ulong)seed)).ToArray();

    /// <summary>A few ops of each kind (cuBLAS, element-wise, reductions, softmax, layout) on <paramref name="d"/>, read back.</summary>
    private static float[] Work(Device d, float[] x, float[] w)
    {
        var xt = Tensor.FromArray(x, 6, 8).To(d);
        var wt = Tensor.FromArray(w, 5, 8).To(d);
        var h = Tensor.Linear(xt, wt).Exp().Softmax(1);
        var y = Tensor.Concat([h, h.Transpose(0, 1).Transpose(0, 1) * 2f], 1).Sum(0);
        Assert.That(y.Device, Is.SameAs(d));
        return y.ToArray();
    }

    [Test]
    public void TheSecondGpuComputesWhatTheCpuComputes()
    {
        var (_, b) = TwoGpus();
        float[] x = Rand(48, 1), w = Rand(40, 2);
        var cpu = Work(Device.Cpu, x, w);
        Assert.That(Work(b, x, w), Is.EqualTo(cpu).Within(1e-5));
    }

    [Test]
    public void WorkAlternatingBetweenTheGpusStaysOnEach()
    {
        var (a, b) = TwoGpus();
        for (int i = 0; i < 6; i++)
        {
            float[] x = Rand(48, 10 + i), w = Rand(40, 20 + i);
            var cpu = Work(Device.Cpu, x, w);
            Assert.That(Work(i % 2 == 0 ? a : b, x, w), Is.EqualTo(cpu).Within(1e-5), $"round {i}");
            Assert.That(Work(i % 2 == 0 ? b : a, x, w), Is.EqualTo(cpu).Within(1e-5), $"round {i}, the other GPU");
        }
        a.Synchronize();
        b.Synchronize();
    }

    [Test]
    public void AFreshThreadWorksOnBothGpus()
    {
        // CUDA's current context is per thread: a thread that never touched the GPU must still get the right one.
        var (a, b) = TwoGpus();
        float[] x = Rand(48, 3), w = Rand(40, 4);
        var cpu = Work(Device.Cpu, x, w);
        float[]? ya = null, yb = null;
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try { yb = Work(b, x, w); ya = Work(a, x, w); }
            catch (Exception e) { failure = e; }   // an exception escaping a thread would end the test host
        });
        t.Start();
        t.Join();
        Assert.That(failure, Is.Null, failure?.ToString());
        Assert.That(yb, Is.EqualTo(cpu).Within(1e-5));
        Assert.That(ya, Is.EqualTo(cpu).Within(1e-5));
    }

    [Test]
    public void TensorsMoveBetweenTheGpus()
    {
        var (a, b) = TwoGpus();
        var x = Rand(1000, 5);
        var onA = Tensor.FromArray(x, 10, 100).To(a);
        var onB = onA.To(b);
        Assert.That(onB.Device, Is.SameAs(b));
        Assert.That(onB.ToArray(), Is.EqualTo(x));
        Assert.That((onB * 2f).To(a).ToArray(), Is.EqualTo(x.Select(v => v * 2f).ToArray()));
    }

    [Test]
    public void AnOpGivenTensorsOfBothGpusIsRefusedAndBothStayUsable()
    {
        var (a, b) = TwoGpus();
        var x = Tensor.FromArray(Rand(12, 6), 3, 4).To(a);
        var y = Tensor.FromArray(Rand(12, 7), 3, 4).To(b);
        var w = Tensor.FromArray(Rand(20, 8), 5, 4).To(b);
        var idx = Tensor.FromArray([0f, 2f, 1f], 3).To(b);
        var cases = new (string Name, Func<Tensor> Op)[]
        {
            ("add", () => x + y),
            ("linear", () => Tensor.Linear(x, w)),
            ("matmul", () => Tensor.Matmul(x, w.Transpose(0, 1))),
            ("concat", () => Tensor.Concat([x, y], 0)),
            ("where", () => Tensor.Where(Tensor.Gt(x, 0f), x, y)),
            ("cross-entropy", () => Losses.CrossEntropy(x, idx)),
        };
        foreach (var (name, op) in cases)
        {
            var e = Assert.Catch<ArgumentException>(() => op(), name);
            Assert.That(e!.Message, Does.Contain("cuda:0").And.Contain("cuda:1"), name);
        }
        // No kernel ran with the other GPU's memory: both contexts are healthy.
        Assert.That((x + x).ToArray(), Is.EqualTo(x.ToArray().Select(v => v + v).ToArray()));
        Assert.That((y * 3f).ToArray(), Is.EqualTo(y.ToArray().Select(v => v * 3f).ToArray()));
        a.Synchronize();
        b.Synchronize();
    }

    [Test]
    public void TrainingAndBoundsOnTheSecondGpuFollowTheCpu()
    {
        var (_, b) = TwoGpus();
        Sequential Net() => new(new Linear(12, 16, generator: new Generator(9)), new ReLU(), new Linear(16, 4, generator: new Generator(10)));
        var xh = Rand(8 * 12, 11).Select(v => (v + 1) / 2).ToArray();
        float[] labels = [0, 1, 2, 3, 3, 2, 1, 0];
        float[] Step(Device d)
        {
            var net = Net().To(d);
            var opt = new Adam(net.Parameters().ToArray(), lr: 1e-2f);
            var loss = Losses.CrossEntropy(net.Forward(Tensor.FromArray(xh, 8, 12).To(d)), Tensor.FromArray(labels, 8).To(d));
            loss.Backward();
            opt.Step();
            return net.Parameters().SelectMany(p => p.ToArray()).ToArray();
        }
        Assert.That(Step(b), Is.EqualTo(Step(Device.Cpu)).Within(1e-5), "an Adam step");

        var cpuNet = Net();
        var gpuNet = Net().To(b);
        var x = Tensor.FromArray(xh, 8, 12);
        using var noGrad = new NoGrad();
        var eps = Perturbation.LInf(0.05f, 0f, 1f);
        var rc = Engine.Bounds.Bounds.Compute(cpuNet, x, eps, BoundMethod.Crown);
        var rd = Engine.Bounds.Bounds.Compute(gpuNet, x.To(b), eps, BoundMethod.Crown);
        Assert.That(rd.Lower.Device, Is.SameAs(b));
        Assert.That(rd.Lower.ToArray(), Is.EqualTo(rc.Lower.ToArray()).Within(1e-4));
        Assert.That(rd.Upper.ToArray(), Is.EqualTo(rc.Upper.ToArray()).Within(1e-4));
    }
}
#endif
