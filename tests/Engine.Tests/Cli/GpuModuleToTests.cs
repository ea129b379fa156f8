using Engine.Autograd;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cli;

/// <summary>
/// Module.To / ComputeGraph.To, which `engine train|bench --device` use to put a model on a device: the move is in
/// place (same tensor objects, new storage), so the layers' properties, the cached graph and the values all follow.
/// A device that hands out fresh host storage stands in for a GPU: every move must allocate and copy.
/// </summary>
[TestFixture]
public class GpuModuleToTests
{
    /// <summary>Allocates through the CPU device (so the CPU kernels run on its storage) but is a different device object.</summary>
    private sealed class HostCopyDevice : Device
    {
        public int Allocations;
        public override string Name => "hostcopy";
        public override IKernels Kernels => Cpu.Kernels;
        public override Storage Allocate(int length, bool zero = false) { Allocations++; return Cpu.Allocate(length, zero); }
        public override void CopyFromHost(ReadOnlySpan<float> source, Storage destination, int destinationOffset) => Cpu.CopyFromHost(source, destination, destinationOffset);
        public override void CopyToHost(Storage source, int sourceOffset, Span<float> destination) => Cpu.CopyToHost(source, sourceOffset, destination);
    }

    private static Sequential Net(ulong seed)
    {
        var g = new Generator(seed);
        return new Sequential(new Flatten(), new Linear(12, 8, generator: g), new ReLU(), new Linear(8, 3, generator: g));
    }

    [Test]
    public void ModuleToMovesParametersInPlaceAndKeepsTheFunction()
    {
        var net = Net(3);
        var x = Tensor.Uniform([5, 1, 3, 4], -1, 1, new Generator(4));
        var before = net.Forward(x).ToArray();
        var pars = net.Parameters().ToArray();
        var storages = pars.Select(p => p.Storage).ToArray();
        var values = pars.Select(p => p.ToArray()).ToArray();
        net.Forward(x).Sum().Backward();
        Assert.That(pars.All(p => p.Grad != null), Is.True);

        var dev = new HostCopyDevice();
        Assert.That(net.To(dev), Is.SameAs(net));
        var after = net.Parameters().ToArray();
        Assert.That(dev.Allocations, Is.EqualTo(pars.Length), "one new storage per parameter");
        for (int i = 0; i < pars.Length; i++)
        {
            Assert.That(after[i], Is.SameAs(pars[i]), "the same tensor object, as layers and optimisers hold it");
            Assert.That(after[i].Storage, Is.Not.SameAs(storages[i]), "new storage");
            Assert.That(after[i].Offset, Is.EqualTo(0));
            Assert.That(after[i].ToArray(), Is.EqualTo(values[i]));
            Assert.That(after[i].Grad, Is.Null, "gradients are cleared by a move");
            Assert.That(after[i].RequiresGrad, Is.True);
        }
        var lin = (Linear)net.Children().ElementAt(1);
        Assert.That(lin.Weight.Storage, Is.SameAs(after[0].Storage), "the layer's property follows");
        Assert.That(net.Forward(x).ToArray(), Is.EqualTo(before), "the cached graph runs on the moved tensors");

        // Training after the move updates the moved storage (the optimiser is created after the move).
        var sgd = new Sgd(net.Parameters(), 0.1f);
        sgd.ZeroGrad();
        net.Forward(x).Sum().Backward();
        sgd.Step();
        Assert.That(lin.Weight.ToArray(), Is.Not.EqualTo(values[0]));
        Assert.That(((CpuStorage)storages[0]).Data.Take(values[0].Length).ToArray(), Is.EqualTo(values[0]), "the old storage is no longer written");
    }

    [Test]
    public void MovingToTheTensorsOwnDeviceIsANoOp()
    {
        var net = Net(5);
        var storages = net.Parameters().Select(p => p.Storage).ToArray();
        net.To(Device.Cpu);
        Assert.That(net.Parameters().Select(p => p.Storage), Is.EqualTo(storages).Using<Storage>((a, b) => ReferenceEquals(a, b)));
    }

    [Test]
    public void GraphToMovesEveryInitializer()
    {
        var net = Net(7);
        var graph = net.ToGraph();
        var x = Tensor.Uniform([2, 1, 3, 4], -1, 1, new Generator(8));
        float[] before;
        using (new NoGrad()) before = Executor.Forward(graph, x).ToArray();
        var inits = graph.Initializers.Select(v => (v.Data!, v.Data!.Storage)).ToArray();
        var dev = new HostCopyDevice();
        Assert.That(graph.To(dev), Is.SameAs(graph));
        Assert.That(dev.Allocations, Is.EqualTo(inits.Length));
        foreach (var (t, s) in inits) Assert.That(t.Storage, Is.Not.SameAs(s));
        float[] after;
        using (new NoGrad()) after = Executor.Forward(graph, x).ToArray();
        Assert.That(after, Is.EqualTo(before));
    }

    [Test]
    public void OnlyLeavesMoveInPlace()
    {
        var a = Tensor.Uniform([3], -1, 1, new Generator(1)).RequiresGrad_();
        var b = a * 2f;
        Assert.That(() => b.MoveDataTo(new HostCopyDevice()), Throws.InvalidOperationException.With.Message.Contains("leaf"));
        Assert.That(() => Net(1).To(null!), Throws.ArgumentNullException);
    }
}
