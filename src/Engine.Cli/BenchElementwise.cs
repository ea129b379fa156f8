using System.CommandLine;
using System.Globalization;
using Engine.Autograd;
using Engine.Cpu;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>
/// `engine bench elementwise`: memory bandwidth of element-wise ops against the device's own copy. Each op reads its
/// inputs and writes a fresh output once, so its bytes are 4·n·(inputs + 1); the reference is the device's Copy
/// kernel into a preallocated buffer (on CUDA a device-to-device memcpy), 8·n bytes. One JSON line per op with GB/s
/// and the ratio to the copy's GB/s.
/// </summary>
internal static class BenchElementwise
{
    public static Command Create()
    {
        var n = new Option<int>("--n") { Description = "Elements per tensor (default 2^26 = 64 Mi floats, 256 MiB)", DefaultValueFactory = _ => 1 << 26 };
        n.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--n must be at least 1."); });
        var device = DeviceOption.Create();
        var cmd = new Command("elementwise", "Time relu, exp, add, mul and clone on N floats; print GB/s and the ratio to the device's copy bandwidth") { n, device };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            var dev = DeviceOption.Resolve(parse.GetValue(device)!);
            int count = parse.GetValue(n);
            var a = Tensor.Uniform([count], -1, 1, new Generator(1)).To(dev);
            var b = Tensor.Uniform([count], -1, 1, new Generator(2)).To(dev);
            var dst = Tensor.Empty([count], dev);
            var k = dev.Kernels;
            int reps = BenchTiming.Reps(dev, 8.0 * count / 2e12);

            double copySeconds = BenchTiming.MedianSeconds(() => k.Copy(a.Buf, dst.Buf, count), dev, reps);
            double copyGbps = 8.0 * count / copySeconds / 1e9;
            Print(dev, "copy", count, copySeconds, 8.0 * count, copyGbps);

            // Outputs of CUDA ops go back to the allocator at once (the next call reuses the block) rather than when the
            // GC finalizes them: at 256 MiB a call, waiting for the GC could exhaust device memory. CPU outputs are
            // left to the GC, whose finalizers hand their arrays back to the pool (how the recorded CPU figures ran).
            bool release = dev != Device.Cpu;
            void Run(string name, int inputs, Func<Tensor> op)
            {
                double s = BenchTiming.MedianSeconds(() =>
                {
                    var y = op();
                    if (release) y.Storage.Dispose();
                }, dev, reps);
                Print(dev, name, count, s, 4.0 * count * (inputs + 1), copyGbps);
            }

            using (new NoGrad())
            {
                Run("clone", 1, a.Clone);
                Run("relu", 1, a.Relu);
                Run("exp", 1, a.Exp);
                Run("add", 2, () => a + b);
                Run("mul", 2, () => a * b);
            }
            return 0;
        }));
        return cmd;
    }

    private static void Print(Device dev, string name, int n, double seconds, double bytes, double copyGbps)
    {
        double gbps = bytes / seconds / 1e9;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"op\":\"elementwise\",\"name\":\"{name}\",\"n\":{n},{BenchTiming.DeviceField(dev)}\"threads\":{CpuThreads.Count},\"ms\":{seconds * 1e3:G6},\"gbps\":{gbps:0.##},\"copy_gbps\":{copyGbps:0.##},\"ratio\":{gbps / copyGbps:0.####}}}"));
    }
}
