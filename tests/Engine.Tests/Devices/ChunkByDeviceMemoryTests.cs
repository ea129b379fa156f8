using Engine.Autograd;
using Engine.Bounds;
using Engine.Tensors;
using NUnit.Framework;
using BoundsApi = Engine.Bounds.Bounds;

namespace Engine.Tests.Devices;

/// <summary>
/// CROWN's intermediate-bound rows go to an accelerator in chunks capped by memory: 256 MiB a coefficient tensor,
/// and at most 1/32 of the device's memory where it says (<see cref="Device.TotalMemory"/>), so a small GPU gets
/// smaller chunks instead of running out of memory. Chunking changes the order of work only: the bounds stay the CPU's.
/// </summary>
[TestFixture]
public class ChunkByDeviceMemoryTests
{
    /// <summary>The emulated device with a stated memory size, recording its largest allocation.</summary>
    private sealed class SizedDevice(string name, long? total) : EmulatedDevice(name)
    {
        public override long? TotalMemory => total;
        public int Largest { get; private set; }

        public override Storage Allocate(int length, bool zero = false)
        {
            Largest = Math.Max(Largest, length);
            return base.Allocate(length, zero);
        }
    }

    private static (float[] Lower, int Largest) Crown(long? totalMemory)
    {
        var dev = new SizedDevice($"sized-{totalMemory}", totalMemory);
        Device.Register(dev.Name, _ => dev);
        const int batch = 24;   // 24 examples x 512 signed rows of the 256-wide second layer: 12,288 intermediate rows
        var x = Tensor.Uniform([batch, 1, 28, 28], 0f, 1f, new Generator(2));
        var spec = new Spec(Spec.Margins(Enumerable.Range(0, batch).Select(i => i % 10).ToArray(), 10).C);
        using var noGrad = new NoGrad();
        var r = BoundsApi.Compute(LaunchBudgetTests.Net("mlp").To(dev).Graph, x.To(dev), Perturbation.LInf(0.01f), BoundMethod.Crown,
            new Spec(spec.C.To(dev)), new BoundOptions { ComputeUpper = false });
        return (r.Lower.ToArray(), dev.Largest);
    }

    [Test]
    public void ASmallDeviceGetsSmallerChunksAndTheSameBounds()
    {
        var (roomy, roomyLargest) = Crown(null);
        var (small, smallLargest) = Crown(64L << 20);   // 2 MiB a coefficient tensor: the 4,096-row floor
        // One chunk of 12,288 rows x 784 inputs on the roomy device; 4,096-row chunks on the small one.
        Assert.That(roomyLargest, Is.GreaterThanOrEqualTo(12_288 * 784));
        Assert.That(smallLargest, Is.LessThanOrEqualTo(4_096 * 784));
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
