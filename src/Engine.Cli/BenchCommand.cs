using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Engine.Cpu;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>`engine bench ...`: quick single-number benchmarks printed as one JSON line (BenchmarkDotNet lives in benchmarks/).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Micro-benchmarks that print one JSON line");
        bench.Subcommands.Add(Gemm());
        bench.Subcommands.Add(Train());
        return bench;
    }

    private static Command Gemm()
    {
        var n = new Option<int>("--n") { Description = "Matrix size: N×N times N×N", DefaultValueFactory = _ => 512 };
        n.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--n must be at least 1."); });
        var cmd = new Command("gemm", "Time single-precision GEMM (C = A·B, N×N×N) and print GFLOP/s") { n };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            int size = parse.GetValue(n);
            var a = Tensor.Uniform([size, size], -1, 1, new Generator(1));
            var b = Tensor.Uniform([size, size], -1, 1, new Generator(2));
            var c = Tensor.Empty([size, size]);
            var k = Device.Cpu.Kernels;
            double seconds = MedianSeconds(() => k.Gemm(false, false, 1, size, size, size, 1f, a.Buf, size, 0, b.Buf, size, 0, 0f, c.Buf, size, 0));
            double gflops = 2.0 * size * size * size / seconds / 1e9;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"op\":\"gemm\",\"n\":{size},\"threads\":{CpuThreads.Count},\"gflops\":{gflops:0.###}}}"));
            return 0;
        }));
        return cmd;
    }

    private static Command Train()
    {
        var model = TrainCommand.ModelOption("mlp");
        var batch = new Option<int>("--batch") { Description = "Mini-batch size", DefaultValueFactory = _ => 64 };
        batch.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--batch must be at least 1."); });
        var cmd = new Command("train", "Time one training step (forward, backward, SGD update) on random data and print ms/step") { model, batch };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            string name = parse.GetValue(model)!;
            int b = parse.GetValue(batch);
            Generator.ManualSeed(0);
            var net = ModelZoo.Create(name);
            var x = Tensor.Rand(b, 1, 28, 28);
            // Random class indices 0..9 as floats: floor of uniform [0, 10).
            var y = Tensor.FromArray(Tensor.Uniform([b], 0, 10).ToArray().Select(MathF.Floor).ToArray(), b);
            var sgd = new Sgd(net.Parameters(), 0.01f, momentum: 0.9f);
            double seconds = MedianSeconds(() => Training.Step(net, sgd, x, y, out _));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"op\":\"train\",\"model\":\"{name}\",\"batch\":{b},\"threads\":{CpuThreads.Count},\"ms_per_step\":{seconds * 1e3:0.###}}}"));
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// Median wall time of <paramref name="body"/>: warm-up (JIT tiers, caches) for at least two calls and ~0.3 s,
    /// then at least 5 and at most 100 timed calls, stopping after ~2 s.
    /// </summary>
    public static double MedianSeconds(Action body, double warmupSeconds = 0.3, double budgetSeconds = 2.0)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 2 || sw.Elapsed.TotalSeconds < warmupSeconds; i++) body();
        var times = new List<double>();
        sw.Restart();
        while (times.Count < 5 || (times.Count < 100 && sw.Elapsed.TotalSeconds < budgetSeconds))
        {
            long t0 = Stopwatch.GetTimestamp();
            body();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        times.Sort();
        int m = times.Count / 2;
        return times.Count % 2 == 1 ? times[m] : 0.5 * (times[m - 1] + times[m]);
    }
}
