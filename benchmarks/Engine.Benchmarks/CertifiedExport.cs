using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Nn;
using Engine.Serialization;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// <c>--export-certified DIR [--threads T] [--images N]</c>: the work of <see cref="CertifiedTrainingBenchmarks"/> and
/// <see cref="CertifyBenchmarks"/> for the same-weights peer (benchmarks/peers/certified_torch.py --dir DIR). Writes
/// DIR/cnn.safetensors (<see cref="BoundBenchNets"/>' seeded "cnn", the training steps' start), DIR/cnn_trained.safetensors
/// (<see cref="CertifiedBench.TrainedCnn"/>, the verified network), DIR/batch.safetensors ("x" [256, 1, 28, 28], "y"
/// [256] labels as floats, and the Engine's margin lower bounds of the seeded network on that batch at eps 0.1
/// clipped to [0, 1], as its training steps compute them (graph path, gradients on): "ibp_lower" and
/// "crown_ibp_lower" (0.5·CROWN-IBP + 0.5·IBP), [256, 9]) and DIR/engine_certified.json (eps, the three steps' first
/// losses, and how many of the first N (default 1,000) test images IBP and CROWN verify for the trained network).
/// With --time, also times that work the way the peer does (a quicker, rougher alternative to BenchmarkDotNet for
/// benchmarks/certified_compare.sh --quick): each training step on a fresh network and optimiser (whole batch, and on
/// more than one thread also as one <see cref="DataParallel"/> shard per thread: "sharded": true), 6 s of warm-up steps,
/// then up to 50 steps within 10 s (at least 5); verification of the N images 3 times after a warm-up pass; one JSON
/// line each in the peer's format ({"op": "cert_train" | "cert_verify", ..., "ms": median, "min_ms": min}), on T threads.
/// </summary>
internal static class CertifiedExport
{
    public static int Run(string[] args)
    {
        const string usage = "usage: Engine.Benchmarks --export-certified DIR [--threads T] [--images N] [--time]";
        if (args.Length < 1 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine(usage);
            return 2;
        }
        string dir = args[0];
        int threads = 2, images = CertifyBenchmarks.Images;
        bool time = false;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length && int.TryParse(args[i + 1], out threads) && threads >= 1) i++;
            else if (args[i] == "--images" && i + 1 < args.Length && int.TryParse(args[i + 1], out images) && images >= 1) i++;
            else if (args[i] == "--time") time = true;
            else
            {
                Console.Error.WriteLine($"--export-certified: unexpected argument '{args[i]}' (--threads T with T >= 1, --images N with N >= 1, --time).");
                return 2;
            }
        }
        Directory.CreateDirectory(dir);
        int saved = CpuThreads.Count;
        CpuThreads.Count = threads;
        try
        {
            var model = BoundBenchNets.Make("cnn");
            model.SaveWeights(Path.Combine(dir, "cnn.safetensors"));
            var (x, y) = CertifiedBench.TrainingBatch();
            var spec = Spec.Margins(y, 10);
            var ibp = Bounds.Bounds.Compute(model, x, CertifiedBench.Ball(), BoundMethod.Ibp, spec, CertifiedBench.Options).Lower;
            var mixed = Bounds.Bounds.ComputeMixed(model.Graph, x, CertifiedBench.Ball(), 1 - CertifiedBench.Beta, spec, CertifiedBench.Options).Lower;
            SafeTensors.Save(Path.Combine(dir, "batch.safetensors"),
                [KeyValuePair.Create("x", x), KeyValuePair.Create("y", y), KeyValuePair.Create("ibp_lower", ibp.Detach()),
                 KeyValuePair.Create("crown_ibp_lower", mixed.Detach())]);
            var losses = new[] { "standard", "ibp", "crown-ibp" }.ToDictionary(m => m, m => CertifiedBench.Loss(model, x, y, spec, m).Item());

            var trained = CertifiedBench.TrainedCnn();
            trained.SaveWeights(Path.Combine(dir, "cnn_trained.safetensors"));
            var (tx, ty) = CertifiedBench.TestImages(images);
            var verified = new Dictionary<string, Dictionary<string, int>>
            {
                [images.ToString(CultureInfo.InvariantCulture)] = new()
                {
                    ["ibp"] = CertifiedBench.Verify(trained, tx, ty, BoundMethod.Ibp),
                    ["crown"] = CertifiedBench.Verify(trained, tx, ty, BoundMethod.Crown),
                },
            };
            var doc = new Dictionary<string, object>
            {
                ["eps"] = CertifiedBench.Eps,
                ["clip"] = new[] { 0f, 1f },
                ["kappa"] = CertifiedBench.Kappa,
                ["beta"] = CertifiedBench.Beta,
                ["labels"] = "i mod 10",
                ["loss"] = losses,
                ["verified"] = verified,
                ["rounding_relative"] = CertifiedBench.Options.RoundingRelative,
            };
            File.WriteAllText(Path.Combine(dir, "engine_certified.json"), JsonSerializer.Serialize(doc));
            Console.Error.WriteLine($"# wrote {dir}/{{cnn,cnn_trained,batch}}.safetensors and engine_certified.json " +
                                    $"(verified of {images}: IBP {verified.Values.First()["ibp"]}, CROWN {verified.Values.First()["crown"]})");
            if (time) Time(threads, trained, tx, ty);
            return 0;
        }
        finally
        {
            CpuThreads.Count = saved;
        }
    }

    private static void Time(int threads, Module trained, Tensor tx, Tensor ty)
    {
        var (x, y) = CertifiedBench.TrainingBatch();
        var spec = Spec.Margins(y, 10);
        foreach (var method in new[] { "standard", "ibp", "crown-ibp" })
            foreach (bool sharded in threads > 1 ? new[] { false, true } : new[] { false })
            {
                var model = BoundBenchNets.Make("cnn");
                model.Train();
                var opt = new Adam(model.Parameters(), 5e-4f);
                // Sharded: one DataParallel shard per thread, as CertifiedTrainer trains by default.
                var dp = sharded ? new DataParallel(model, threads) : null;
                // Warm-up by time: tiered JIT settles only after ~100 steps (a handful of warm-up calls overstated the median).
                var (median, min, n) = Measure(() =>
                {
                    opt.ZeroGrad();
                    if (dp != null) CertifiedBench.ShardedBackward(dp, x, y, method);
                    else CertifiedBench.Loss(model, x, y, spec, method).Backward();
                    opt.Step();
                }, warmup: 3, minRuns: 5, maxRuns: 50, budgetSeconds: 10, warmupSeconds: 6);
                string tag = sharded ? ",\"sharded\":true" : "";
                Emit($"{{\"op\":\"cert_train\",\"method\":\"{method}\",\"net\":\"cnn\",\"batch\":{CertifiedBench.Batch}{tag},\"threads\":{threads},\"ms\":{median:0.###},\"min_ms\":{min:0.###},\"steps\":{n}}}");
            }
        foreach (var (name, method) in new[] { ("ibp", BoundMethod.Ibp), ("crown", BoundMethod.Crown) })
        {
            var (median, min, n) = Measure(() => CertifiedBench.Verify(trained, tx, ty, method), warmup: 1, minRuns: 3, maxRuns: 3, budgetSeconds: 0);
            Emit($"{{\"op\":\"cert_verify\",\"method\":\"{name}\",\"net\":\"cnn\",\"images\":{tx.Size(0)},\"threads\":{threads},\"ms\":{median:0.###},\"min_ms\":{min:0.###},\"passes\":{n}}}");
        }
    }

    private static void Emit(FormattableString line) => Console.WriteLine(FormattableString.Invariant(line));

    /// <summary>Median and minimum milliseconds of <paramref name="body"/> after warm-up calls (at least <paramref name="warmup"/> and <paramref name="warmupSeconds"/>): at least minRuns, then up to maxRuns within the budget.</summary>
    private static (double Median, double Min, int Runs) Measure(Action body, int warmup, int minRuns, int maxRuns, double budgetSeconds, double warmupSeconds = 0)
    {
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < warmup || warm.Elapsed.TotalSeconds < warmupSeconds; i++) body();
        var times = new List<double>();
        var sw = Stopwatch.StartNew();
        while (times.Count < minRuns || (times.Count < maxRuns && sw.Elapsed.TotalSeconds < budgetSeconds))
        {
            long t0 = Stopwatch.GetTimestamp();
            body();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        times.Sort();
        int m = times.Count / 2;
        return (times.Count % 2 == 1 ? times[m] : 0.5 * (times[m - 1] + times[m]), times[0], times.Count);
    }
}
