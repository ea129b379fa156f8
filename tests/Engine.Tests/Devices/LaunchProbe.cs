using Engine.Autograd;
using Engine.Bounds;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;
using BoundsApi = Engine.Bounds.Bounds;

namespace Engine.Tests.Devices;

[TestFixture, Explicit]
public class LaunchProbe
{
    [TestCase("mlp"), TestCase("cnn")]
    public void Probe(string net)
    {
        var dev = new CountingDevice("cnt");
        Device.Register("cnt", _ => dev);
        var g = new Generator(1);
        Module m = net == "mlp"
            ? new Sequential(new Flatten(), new Linear(784, 256, generator: g), new ReLU(), new Linear(256, 256, generator: g), new ReLU(), new Linear(256, 10, generator: g))
            : new Sequential(new Conv2d(1, 8, 4, 2, 1, generator: g), new ReLU(), new Conv2d(8, 16, 4, 2, 1, generator: g), new ReLU(),
                             new Flatten(), new Linear(784, 100, generator: g), new ReLU(), new Linear(100, 10, generator: g));
        m.Eval();
        int b = 128;
        var x = Tensor.Uniform([b, 1, 28, 28], 0f, 1f, new Generator(2)).To(dev);
        var graph = m.To(dev).Graph;
        var labels = Enumerable.Range(0, b).Select(i => i % 10).ToArray();
        var spec = new Spec(Spec.Margins(labels, 10).C.To(dev));
        var opts = new BoundOptions { ComputeUpper = false };
        using (new NoGrad())
        {
            BoundsApi.Compute(graph, x, Perturbation.LInf(0.01f), BoundMethod.Crown, spec, opts).Lower.ToArray();
            for (int w = 0; w < 20; w++) BoundsApi.Compute(graph, x, Perturbation.LInf(0.01f), BoundMethod.Crown, spec, opts).Lower.ToArray();
            var hosts = new List<double>();
            for (int rep = 0; rep < 30; rep++)
            {
                dev.Reset();
                long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                BoundsApi.Compute(graph, x, Perturbation.LInf(0.01f), BoundMethod.Crown, spec, opts).Lower.ToArray();
                long t = System.Diagnostics.Stopwatch.GetTimestamp() - t0;
                hosts.Add((t - dev.KernelTicks) * 1e6 / System.Diagnostics.Stopwatch.Frequency);
            }
            hosts.Sort();
            TestContext.Out.WriteLine($"{net}: host us per call median {hosts[15]:F0} (min {hosts[0]:F0})");
            dev.Reset();
            dev.Trace = Environment.GetEnvironmentVariable("PROBE_TRACE") == "1" ? [] : null;
            BoundsApi.Compute(graph, x, Perturbation.LInf(0.01f), BoundMethod.Crown, spec, opts).Lower.ToArray();
        }
        TestContext.Out.WriteLine($"{net}: launches {dev.Launches}, zero allocs {dev.ZeroAllocations}, to host {dev.CopiesToHost}, from host {dev.CopiesFromHost}");
        if (dev.Trace != null) foreach (var kv in dev.Trace.OrderByDescending(k => k.Value)) TestContext.Out.WriteLine($"  {kv.Value,4} {kv.Key}");
        foreach (var kv in dev.Calls.OrderByDescending(k => k.Value)) TestContext.Out.WriteLine($"  {kv.Key,-40} {kv.Value}");
    }
}
