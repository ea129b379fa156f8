using System.Globalization;
using System.Text.Json;
using Engine.Autograd;
using Engine.Nn;
using Engine.Serialization;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cli;

/// <summary>
/// The `--device` option of `engine train | eval | bounds | certify` and `engine bench` (issue 4) as a user meets it without a GPU: a clean
/// "error:" line naming why CUDA is unavailable, and the CPU path unchanged; the GPU-run plumbing (`bench elementwise`,
/// `bench crown --net --export`, whose files the PyTorch peer reads) checked on the CPU; `bounds --input` parsing.
/// </summary>
[TestFixture]
public class GpuCliTests
{
    private string _tmp = null!;

    [OneTimeSetUp]
    public void Setup() => _tmp = TempDir.Create("engine-gpucli-tests");

    [OneTimeTearDown]
    public void TearDown() => TempDir.Delete(_tmp);

    private static bool CudaAvailable()
    {
        var r = CliRunner.Run("info");
        return r.Lines.Any(l => l.StartsWith("cuda", StringComparison.Ordinal) && !l.Contains("not available", StringComparison.Ordinal));
    }

    private static readonly string[][] CudaCommands =
    [
        ["bench", "gemm", "--n", "8"],
        ["bench", "train", "--batch", "2"],
        ["bench", "conv2d"],
        ["bench", "crown", "--net", "mlp"],
        ["bench", "elementwise", "--n", "8"],
        ["train", "--epochs", "1"],
        // The device is resolved before any file is read: the missing files are not what the error names.
        ["eval", "missing.safetensors"],
        ["bounds", "missing.onnx", "--input", "missing.json", "--eps", "0.1"],
        ["certify", "missing.onnx", "--eps", "0.1"],
    ];

    [Test]
    public void CudaWithoutAGpuIsOneErrorLineThatSaysWhy()
    {
        if (CudaAvailable()) Assert.Ignore("A CUDA device is available here; this test is about machines without one.");
        foreach (var cmd in CudaCommands)
        {
            foreach (var dev in new[] { "cuda", "cuda:1" })
            {
                var r = CliRunner.Run([.. cmd, "--device", dev]);
                string what = $"engine {string.Join(' ', cmd)} --device {dev}\n{r}";
                Assert.That(r.ExitCode, Is.EqualTo(1), what);
                var err = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
                Assert.That(err, Has.Length.EqualTo(1), what);
                Assert.That(err[0], Does.StartWith("error:").And.Contain(dev).And.Contain("not available"), what);
                Assert.That(r.Stderr, Does.Not.Contain(" at Engine."), "a stack trace: " + what);
                Assert.That(r.Stdout, Does.Not.Contain("{\"op\""), "a result without a device: " + what);
            }
        }
    }

    [TestCase("gpu")]
    [TestCase("cuda:")]
    [TestCase("cuda:-1")]
    [TestCase("CPU")]
    public void MalformedDeviceNamesAreRejected(string dev)
    {
        var r = CliRunner.Run("bench", "gemm", "--n", "8", "--device", dev);
        Assert.That(r.ExitCode, Is.Not.EqualTo(0), r.ToString());
        Assert.That(r.Stderr + r.Stdout, Does.Contain("--device must be cpu, cuda or cuda:N"), r.ToString());
    }

    [Test]
    public void BenchGemmAndTrainOnCpuKeepTheirJsonLines()
    {
        var g = CliRunner.Run("bench", "gemm", "--n", "24", "--device", "cpu", "--threads", "1");
        Assert.That(g.ExitCode, Is.EqualTo(0), g.ToString());
        var gj = JsonDocument.Parse(g.LastLine).RootElement;
        Assert.That(gj.GetProperty("op").GetString(), Is.EqualTo("gemm"));
        Assert.That(gj.GetProperty("n").GetInt32(), Is.EqualTo(24));
        Assert.That(gj.GetProperty("gflops").GetDouble(), Is.GreaterThan(0));
        // CPU lines keep their pre-CUDA format: no device field, no cuBLAS reference.
        Assert.That(gj.TryGetProperty("device", out _), Is.False, g.LastLine);
        Assert.That(gj.TryGetProperty("cublas_gflops", out _), Is.False, g.LastLine);

        var t = CliRunner.Run("bench", "train", "--model", "mlp", "--batch", "4", "--device", "cpu", "--threads", "1");
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
        var tj = JsonDocument.Parse(t.LastLine).RootElement;
        Assert.That(tj.GetProperty("op").GetString(), Is.EqualTo("train"));
        Assert.That(tj.GetProperty("batch").GetInt32(), Is.EqualTo(4));
        Assert.That(tj.GetProperty("ms_per_step").GetDouble(), Is.GreaterThan(0));
    }

    [Test]
    public void BenchElementwisePrintsEveryOpAgainstTheCopy()
    {
        const int n = 1000;
        var r = CliRunner.Run("bench", "elementwise", "--n", n.ToString(CultureInfo.InvariantCulture), "--device", "cpu", "--threads", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var rows = r.Lines.Where(l => l.StartsWith('{')).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.That(rows.Select(j => j.GetProperty("name").GetString()), Is.EqualTo(new[] { "copy", "clone", "relu", "exp", "add", "mul" }), r.ToString());
        double copy = rows[0].GetProperty("gbps").GetDouble();
        foreach (var j in rows)
        {
            Assert.That(j.GetProperty("op").GetString(), Is.EqualTo("elementwise"));
            Assert.That(j.GetProperty("n").GetInt32(), Is.EqualTo(n));
            Assert.That(j.GetProperty("copy_gbps").GetDouble(), Is.EqualTo(copy));
            double gbps = j.GetProperty("gbps").GetDouble(), ms = j.GetProperty("ms").GetDouble();
            Assert.That(gbps, Is.GreaterThan(0));
            Assert.That(j.GetProperty("ratio").GetDouble(), Is.EqualTo(gbps / copy).Within(1e-3 + 1e-3 * gbps / copy), j.ToString());
            // GB/s is the op's bytes over its time: 8n for unary ops and the copy, 12n for the binary ones.
            string name = j.GetProperty("name").GetString()!;
            double bytes = name is "add" or "mul" ? 12.0 * n : 8.0 * n;
            Assert.That(gbps, Is.EqualTo(bytes / (ms * 1e-3) / 1e9).Within(0.02 * gbps + 0.01), j.ToString());
        }
    }

    [Test]
    public void BenchCrownExportHoldsTheBenchNetAndSoundLowerBounds()
    {
        const int batch = 3;
        var dir = Path.Combine(_tmp, "export");
        var r = CliRunner.Run("bench", "crown", "--net", "mlp", "--batch", batch.ToString(CultureInfo.InvariantCulture), "--device", "cpu", "--export", dir, "--threads", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var line = JsonDocument.Parse(r.LastLine).RootElement;
        Assert.That(line.GetProperty("net").GetString(), Is.EqualTo("mlp"));
        Assert.That(line.GetProperty("batch").GetInt32(), Is.EqualTo(batch));

        // The exported weights load into the architecture gpu_torch.py builds (nn.Sequential names), the inputs are a
        // batch in [0, 1], and the exported lower bounds of y_label - y_j (labels i mod 10, eps 0.01) are below the
        // margins the network actually has at the centre and at the corners of the ball.
        var net = new Sequential(new Flatten(), new Linear(784, 256), new ReLU(), new Linear(256, 256), new ReLU(), new Linear(256, 10));
        net.LoadWeights(Path.Combine(dir, "mlp.safetensors"));
        net.Eval();
        var x = SafeTensors.Load(Path.Combine(dir, $"mlp_x{batch}.safetensors"))["x"];
        Assert.That(x.Shape, Is.EqualTo(new[] { batch, 1, 28, 28 }));
        Assert.That(x.ToArray(), Is.All.InRange(0f, 1f));
        var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, $"mlp_crown_b{batch}.json"))).RootElement;
        Assert.That(doc.GetProperty("device").GetString(), Is.EqualTo("cpu"));
        var lower = doc.GetProperty("lower").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.That(lower, Has.Length.EqualTo(batch * 9));
        var rng = new Random(5);
        var xs = x.ToArray();
        for (int trial = 0; trial < 4; trial++)
        {
            var pt = xs.Select(v => trial == 0 ? v : v + (rng.Next(2) * 2 - 1) * 0.01f).ToArray();
            float[] y;
            using (new NoGrad()) y = net.Forward(Tensor.FromArray(pt, batch, 1, 28, 28)).ToArray();
            for (int b = 0; b < batch; b++)
            {
                int label = b % 10, row = 0;
                for (int j = 0; j < 10; j++)
                {
                    if (j == label) continue;
                    double margin = y[b * 10 + label] - y[b * 10 + j];
                    Assert.That(lower[b * 9 + row], Is.LessThanOrEqualTo(margin), $"example {b}, j {j}, point {trial}");
                    row++;
                }
            }
        }
        // Not vacuous: CROWN is within a few units of the centre's margins.
        Assert.That(lower, Has.Some.GreaterThan(-5.0));
    }

    [Test]
    public void BenchCrownNeedsExactlyOneModelSource()
    {
        var both = CliRunner.Run("bench", "crown", "--net", "mlp", "--model", Path.Combine(_tmp, "x.onnx"));
        Assert.That(both.ExitCode, Is.EqualTo(1), both.ToString());
        Assert.That(both.Stderr, Does.StartWith("error:").And.Contain("exactly one"), both.ToString());
        var none = CliRunner.Run("bench", "crown");
        Assert.That(none.ExitCode, Is.EqualTo(1), none.ToString());
        var export = CliRunner.Run("bench", "crown", "--model", Path.Combine(_tmp, "x.onnx"), "--export", _tmp);
        Assert.That(export.Stderr, Does.StartWith("error:").And.Contain("--export needs --net"), export.ToString());
    }

    [TestCase("[0.1, \"a\"]", "element 1")]
    [TestCase("{\"x\": [0.1]}", "top level is Object")]
    [TestCase("[0.1, [0.2]]", "element 1")]
    [TestCase("[0.1, 1e60]", "element 1")]
    [TestCase("[0.1,", "not a flat JSON array")]
    public void BoundsInputMustBeAFlatArrayOfFiniteFloats(string json, string expected)
    {
        var input = Path.Combine(_tmp, $"bad-{Math.Abs(json.GetHashCode())}.json");
        File.WriteAllText(input, json);
        var r = CliRunner.Run("bounds", FuzzOnnx("test_small.onnx"), "--input", input, "--eps", "0.01");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("error: --input: not a flat JSON array of numbers").And.Contain(expected), r.ToString());
    }

    [Test]
    public void BoundsInputAcceptsExponentsAndIntegers()
    {
        var input = Path.Combine(_tmp, "x1.json");
        File.WriteAllText(input, "[ 3e-1 ]");
        var r = CliRunner.Run("bounds", FuzzOnnx("test_small.onnx"), "--input", input, "--eps", "0.01", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var j = JsonDocument.Parse(r.LastLine).RootElement;
        double lo = j.GetProperty("lower")[0].GetDouble(), hi = j.GetProperty("upper")[0].GetDouble();
        Assert.That(lo, Is.LessThanOrEqualTo(hi));
        File.WriteAllText(input, "[0]");
        var z = CliRunner.Run("bounds", FuzzOnnx("test_small.onnx"), "--input", input, "--eps", "0.01", "--json");
        Assert.That(z.ExitCode, Is.EqualTo(0), z.ToString());
    }

    private static string FuzzOnnx(string file)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, "tests", "fuzz", "corpus", "onnx", file);
            if (File.Exists(p)) return p;
        }
        Assert.Fail($"tests/fuzz/corpus/onnx/{file} not found above {AppContext.BaseDirectory}.");
        return null!;
    }
}
