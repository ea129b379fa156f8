using System.Globalization;
using System.Text.Json;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu;
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
/// </summary>
internal static class CertifiedExport
{
    public static int Run(string[] args)
    {
        const string usage = "usage: Engine.Benchmarks --export-certified DIR [--threads T] [--images N]";
        if (args.Length < 1 || args[0].StartsWith("--", StringComparison.Ordinal))
        {
            Console.Error.WriteLine(usage);
            return 2;
        }
        string dir = args[0];
        int threads = 2, images = CertifyBenchmarks.Images;
        for (int i = 1; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length && int.TryParse(args[i + 1], out threads) && threads >= 1) i++;
            else if (args[i] == "--images" && i + 1 < args.Length && int.TryParse(args[i + 1], out images) && images >= 1) i++;
            else
            {
                Console.Error.WriteLine($"--export-certified: unexpected argument '{args[i]}' (--threads T with T >= 1, --images N with N >= 1).");
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
            return 0;
        }
        finally
        {
            CpuThreads.Count = saved;
        }
    }
}
