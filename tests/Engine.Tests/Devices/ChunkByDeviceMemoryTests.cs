using Engine.Autograd;
using Engine.Bounds;
using Engine.Tensors;
using NUnit.Framework;
using BoundsApi = Engine.Bounds.Bounds;

namespace Engine.Tests.Devices;

/// <summary>
/// CROWN's intermediate-bound rows go to an accelerator in chunks capped by memory: 256 MiB a coefficient tensor,
/// and at most 1/32 of the device's memory where it says (<see cref="Device.TotalMemory"/>), and each chunk's
/// temporaries are freed when it is done, so a small GPU gets smaller chunks and a smaller peak instead of running out
/// of memory. Chunking changes the order of work only: the bounds stay the CPU's.
/// </summary>
[TestFixture]
public class ChunkByDeviceMemoryTests
{
    /// <summary>The emulated device with a stated memory size, recording its largest allocation and its peak of live bytes.</summary>
    private sealed class SizedDevice(string name, long? total) : EmulatedDevice(name)
    {
        public override long? TotalMemory => total;
        public int Largest { get; private set; }
        public long PeakLive { get; private set; }

        public override Storage Allocate(int length, bool zero = false)
        {
            Largest = Math.Max(Largest, length);
            var s = base.Allocate(length, zero);   // in TensorScopes, as CUDA's storages
            PeakLive = Math.Max(PeakLive, MemoryStats!.Value.AllocatedBytes);
            return s;
        }
    }

    private static int _devices;

    /// <summary>CROWN on the bench MLP inside a TensorScope (as `engine bench` times it), on a device of that memory.</summary>
    private static (float[] Lower, int Largest, long PeakLive) Crown(long? totalMemory)
    {
        var dev = new SizedDevice($"sized-{Interlocked.Increment(ref _devices)}", totalMemory);
        Device.Register(dev.Name, _ => dev);
        const int batch = 24;   // 24 examples x 512 signed rows of the 256-wide second layer: 12,288 intermediate rows
        var x = Tensor.Uniform([batch, 1, 28, 28], 0f, 1f, new Generator(2));
        var spec = new Spec(Spec.Margins(Enumerable.Range(0, batch).Select(i => i % 10).ToArray(), 10).C);
        var graph = LaunchBudgetTests.Net("mlp").To(dev).Graph;
        var (xd, cd) = (x.To(dev), spec.C.To(dev));
        using var noGrad = new NoGrad();
        using var scope = TensorScope.Begin();
        var r = BoundsApi.Compute(graph, xd, Perturbation.LInf(0.01f), BoundMethod.Crown, new Spec(cd), new BoundOptions { ComputeUpper = false });
        return (r.Lower.ToArray(), dev.Largest, dev.PeakLive);
    }

    [Test]
    public void ASmallDeviceGetsSmallerChunksAndTheSameBounds()
    {
        var (roomy, roomyLargest, roomyPeak) = Crown(null);
        var (small, smallLargest, smallPeak) = Crown(64L << 20);   // 2 MiB a coefficient tensor: the 4,096-row floor
        TestContext.Out.WriteLine($"largest allocation {roomyLargest} / {smallLargest} floats, peak live {roomyPeak >> 20} / {smallPeak >> 20} MiB");
        // One chunk of 12,288 rows x 784 inputs on the roomy device; 4,096-row chunks on the small one, each chunk's
        // temporaries freed when it is done, though an enclosing TensorScope would hold them to its end.
        Assert.That(roomyLargest, Is.GreaterThanOrEqualTo(12_288 * 784));
        Assert.That(smallLargest, Is.LessThanOrEqualTo(4_096 * 784));
        Assert.That(smallPeak, Is.LessThan(roomyPeak / 2), "the small device's peak is about one chunk's, not three");
        Assert.That(small, Is.EqualTo(roomy).Within(1e-4f), "chunking changes the order of work, not the bounds");
        using (new NoGrad())
        {
            var x = Tensor.Uniform([24, 1, 28, 28], 0f, 1f, new Generator(2));
            var cpu = BoundsApi.Compute(LaunchBudgetTests.Net("mlp"), x, Perturbation.LInf(0.01f), BoundMethod.Crown,
                new Spec(Spec.Margins(Enumerable.Range(0, 24).Select(i => i % 10).ToArray(), 10).C), new BoundOptions { ComputeUpper = false }).Lower.ToArray();
            Assert.That(small, Is.EqualTo(cpu).Within(1e-4f));
        }
    }
}
