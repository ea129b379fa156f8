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
        bench.Subcommands.Add(Conv2d());
        bench.Subcommands.Add(Crown());
        return bench;
    }

    private static Command Gemm()
    {
        var n = new Option<int>("--n") { Description = "Matrix size: N×N times N×N (or the N of M×K×N)", DefaultValueFactory = _ => 512 };
        var m = new Option<int?>("--m") { Description = "Rows of A; with --m or --k the product is A[M,K]·B[N,K]ᵀ, as a Linear layer runs it" };
        var kOpt = new Option<int?>("--k") { Description = "Inner dimension (see --m)" };
        n.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--n must be at least 1."); });
        m.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--m must be at least 1."); });
        kOpt.Validators.Add(r => { if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--k must be at least 1."); });
        var cmd = new Command("gemm", "Time single-precision GEMM (C = A·B, N×N×N, or M×K×N with --m/--k) and print GFLOP/s") { n, m, kOpt };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            int cols = parse.GetValue(n);
            int? mArg = parse.GetValue(m), kArg = parse.GetValue(kOpt);
            bool linear = mArg != null || kArg != null;
            int rows = mArg ?? cols, inner = kArg ?? cols;
            var a = Tensor.Uniform([rows, inner], -1, 1, new Generator(1));
            var b = Tensor.Uniform(linear ? [cols, inner] : [inner, cols], -1, 1, new Generator(2));
            var c = Tensor.Empty([rows, cols]);
            var k = Device.Cpu.Kernels;
            int ldb = linear ? inner : cols;
            double seconds = MedianSeconds(() => k.Gemm(false, linear, 1, rows, cols, inner, 1f, a.Buf, inner, 0, b.Buf, ldb, 0, 0f, c.Buf, cols, 0));
            double gflops = 2.0 * rows * cols * inner / seconds / 1e9;
            string shape = linear ? $"\"m\":{rows},\"k\":{inner}," : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"op\":\"gemm\",{shape}\"n\":{cols},\"threads\":{CpuThreads.Count},\"gflops\":{gflops:0.###}}}"));
            return 0;
        }));
        return cmd;
    }

    private static Command Conv2d()
    {
        var cmd = new Command("conv2d", "Time conv2d on x[32,64,32,32], w[64,64,3,3], padding 1: forward, and forward+backward (dX, dW, db); print ms");
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            var g = new Generator(1);
            var x = Tensor.Uniform([32, 64, 32, 32], -1, 1, g);
            var w = Tensor.Uniform([64, 64, 3, 3], -0.05f, 0.05f, g);
            var bias = Tensor.Uniform([64], -0.05f, 0.05f, g);
            double fwd;
            using (new Engine.Autograd.NoGrad()) fwd = MedianSeconds(() => Tensor.Conv2d(x, w, bias, 1, 1));
            var xg = x.Detach().RequiresGrad_();
            var wg = w.Detach().RequiresGrad_();
            var bg = bias.Detach().RequiresGrad_();
            double both = MedianSeconds(() =>
            {
                xg.Grad = null; wg.Grad = null; bg.Grad = null;
                Tensor.Conv2d(xg, wg, bg, 1, 1).Sum().Backward();
            });
            const string shape = "32x64x32x32,k3p1,64";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"op\":\"conv2d_forward\",\"shape\":\"{shape}\",\"threads\":{CpuThreads.Count},\"ms\":{fwd * 1e3:0.###}}}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"op\":\"conv2d_forward_backward\",\"shape\":\"{shape}\",\"threads\":{CpuThreads.Count},\"ms\":{both * 1e3:0.###}}}"));
            return 0;
        }));
        return cmd;
    }

    private static Command Crown()
    {
        var model = new Option<string>("--model") { Description = "ONNX model", Required = true };
        var method = BoundsCommand.MethodOption("crown");
        var batch = new Option<int>("--batch") { Description = "Random inputs bounded at once", DefaultValueFactory = _ => 1 };
        var eps = new Option<float>("--eps") { Description = "L-inf radius", DefaultValueFactory = _ => 0.01f };
        batch.Validators.Add(r => { if (r.GetValueOrDefault<int>() < 1) r.AddError("--batch must be at least 1."); });
        var cmd = new Command("crown", "Time the margin-spec lower bound of an ONNX model on B random inputs in [0, 1] and print ms") { model, method, batch, eps };
        cmd.SetAction(EngineCli.Guard(parse =>
        {
            var m = BoundsCommand.Load(parse.GetValue(model)!);
            var shape = Engine.Verification.Verifier.ExampleShape(m.Inputs[0].Shape);
            int b = parse.GetValue(batch), classes = m.Outputs[0].Numel;
            string name = parse.GetValue(method)!;
            var g = new Generator(1);
            var x = Tensor.Uniform([b, .. shape], 0, 1, g);
            var labels = Enumerable.Range(0, b).Select(i => i % Math.Max(1, classes)).ToArray();
            var spec = Engine.Bounds.Spec.Margins(labels, classes);
            var pert = Engine.Bounds.Perturbation.LInf(parse.GetValue(eps));
            var opts = new Engine.Bounds.BoundOptions { ComputeUpper = false };
            var bm = BoundsCommand.ParseMethod(name);
            double seconds;
            using (new Engine.Autograd.NoGrad())
                seconds = MedianSeconds(() => Engine.Bounds.Bounds.Compute(m.Graph, x, pert, bm, spec, opts).Lower.ToArray());
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{{\"op\":\"crown\",\"method\":\"{name}\",\"batch\":{b},\"threads\":{CpuThreads.Count},\"ms\":{seconds * 1e3:0.###}}}"));
            return 0;
        }));
        return cmd;
    }

    private static Command Train()
    {
        var model = TrainCommand.ModelOption("mlp");
        var batch = new Option<int>("--batch") { Description = "Mini-batch size", DefaultValueFactory = _ => 128 };
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
