using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Serialization;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// <c>--export-bound-nets DIR [--threads T] [--no-time]</c>: the bound benchmark networks for a same-weights peer
/// (benchmarks/peers/crown_torch.py). Writes DIR/mlp.safetensors and DIR/cnn.safetensors (the modules' state dicts,
/// whose names are PyTorch's nn.Sequential ones: "1.weight", ...), DIR/inputs.safetensors ("x1" [1, 1, 28, 28] and
/// "x32" [32, 1, 28, 28]: <see cref="BoundBenchNets.Input"/>) and DIR/engine_bounds.json (the Engine's IBP and CROWN
/// lower bounds of the margin spec, labels i mod 10, L∞ eps <see cref="BoundBenchNets.Eps"/>, with
/// <see cref="BoundBenchNets.Options"/>, under "lower"; and the same without the float32 rounding margins under
/// "lower_no_margin", which isolates the algorithm from the margin in a comparison); then, unless --no-time, prints the Engine's timing of each as one JSON line
/// (median and min ms after warm-up, on T threads), in the format of the peers' lines.
/// </summary>
internal static class BoundNetExport
{
    private static readonly string[] Nets = ["mlp", "cnn"];
    private static readonly int[] Batches = [1, 32];
    private static readonly string[] Methods = ["ibp", "crown"];

    public static int Run(string[] args)
    {
        if (args.Length < 1 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine("usage: Engine.Benchmarks --export-bound-nets DIR [--threads T] [--no-time]");
            return 2;
        }
        string dir = args[0];
        int threads = 1;
        bool time = true;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length && int.TryParse(args[i + 1], out threads) && threads >= 1) i++;
            else if (args[i] == "--no-time") time = false;
            else
            {
                Console.Error.WriteLine($"--export-bound-nets: unexpected argument '{args[i]}' (--threads T with T >= 1, --no-time).");
                return 2;
            }
        }
        Directory.CreateDirectory(dir);
        int saved = CpuThreads.Count;
        CpuThreads.Count = threads;
        try
        {
            var inputs = Batches.ToDictionary(b => b, b => BoundBenchNets.Input(b));
            SafeTensors.Save(Path.Combine(dir, "inputs.safetensors"), Batches.Select(b => KeyValuePair.Create($"x{b}", inputs[b])));
            var bounds = new Dictionary<string, Dictionary<string, Dictionary<string, float[][]>>>();
            var bare = new Dictionary<string, Dictionary<string, Dictionary<string, float[][]>>>();
            var noMargin = new BoundOptions { ComputeUpper = false, RoundingRelative = 0f, RoundingAbsolute = 0f };
            var lines = new List<string>();
            foreach (var net in Nets)
            {
                var model = BoundBenchNets.Make(net);
                model.SaveWeights(Path.Combine(dir, $"{net}.safetensors"));
                bounds[net] = [];
                bare[net] = [];
                foreach (int b in Batches)
                {
                    var x = inputs[b];
                    var spec = BoundBenchNets.Margins(b);
                    var eps = Perturbation.LInf(BoundBenchNets.Eps);
                    string key = b.ToString(CultureInfo.InvariantCulture);
                    bounds[net][key] = [];
                    bare[net][key] = [];
                    foreach (var method in Methods)
                    {
                        var bm = BoundBenchNets.Method(method);
                        float[] Lower(BoundOptions options)
                        {
                            using var _ = new NoGrad();
                            return Bounds.Bounds.Compute(model, x, eps, bm, spec, options).Lower.ToArray();
                        }
                        float[][] PerExample(float[] lower) => Enumerable.Range(0, b).Select(i => lower.AsSpan(i * lower.Length / b, lower.Length / b).ToArray()).ToArray();
                        bounds[net][key][method] = PerExample(Lower(BoundBenchNets.Options));
                        bare[net][key][method] = PerExample(Lower(noMargin));
                        if (!time) continue;
                        var (median, min) = Time(() => Lower(BoundBenchNets.Options));
                        lines.Add(string.Create(CultureInfo.InvariantCulture,
                            $"{{\"op\":\"crown\",\"method\":\"{method}\",\"net\":\"{net}\",\"batch\":{b},\"threads\":{threads},\"ms\":{median:0.###},\"min_ms\":{min:0.###}}}"));
                        Console.WriteLine(lines[^1]);
                    }
                }
            }
            var doc = new Dictionary<string, object>
            {
                ["eps"] = BoundBenchNets.Eps,
                ["labels"] = "i mod 10",
                ["spec"] = "margins: row r of example i is y_label - y_j for the r-th j != label, j increasing",
                ["rounding_relative"] = BoundBenchNets.Options.RoundingRelative,
                ["rounding_absolute"] = BoundBenchNets.Options.RoundingAbsolute,
                ["lower"] = bounds,
                ["lower_no_margin"] = bare,
            };
            File.WriteAllText(Path.Combine(dir, "engine_bounds.json"), JsonSerializer.Serialize(doc));
            Console.Error.WriteLine($"# wrote {dir}/{{mlp,cnn,inputs}}.safetensors and engine_bounds.json");
            return 0;
        }
        finally
        {
            CpuThreads.Count = saved;
        }
    }

    /// <summary>Median and minimum milliseconds of <paramref name="body"/> after a warm-up (0.3 s, at least 2 calls), over 2 s or 100 calls.</summary>
    private static (double Median, double Min) Time(Action body)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 2 || sw.Elapsed.TotalSeconds < 0.3; i++) body();
        var times = new List<double>();
        sw.Restart();
        while (times.Count < 5 || (times.Count < 100 && sw.Elapsed.TotalSeconds < 2.0))
        {
            long t0 = Stopwatch.GetTimestamp();
            body();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
        }
        times.Sort();
        int m = times.Count / 2;
        return (times.Count % 2 == 1 ? times[m] : 0.5 * (times[m - 1] + times[m]), times[0]);
    }
}
