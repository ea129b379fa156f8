using System.Globalization;
using System.Text.Json;
using Engine.Autograd;
using Engine.Graph;
using Engine.Onnx;
using Engine.Tensors;
using Engine.Tests.Onnx;
using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Cli;

/// <summary>
/// The `engine` command as a user runs it: exit codes, the documented last lines and JSON outputs, errors as one
/// "error:" line, and results that agree with the library (a bound that excludes the model's own output, or an
/// evaluation that disagrees with training, would fail here).
/// </summary>
[TestFixture]
public class CliTests
{
    private string _tmp = null!;

    [OneTimeSetUp]
    public void Setup() => _tmp = TempDir.Create("engine-cli-tests");

    [OneTimeTearDown]
    public void TearDown() => TempDir.Delete(_tmp);

    private static string Acas(string file) => Path.Combine(VnnCompData.RequireRoot(), "acasxu", file);

    private static string Test(string file) => Path.Combine(VnnCompData.RequireRoot(), "test", file);

    [Test]
    public void InfoListsCpuSimdThreadsAndCuda()
    {
        var r = CliRunner.Run("info", "--threads", "2");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var keys = r.Lines.Select(l => l.Split(' ', 2)[0]).ToArray();
        Assert.That(keys, Is.SupersetOf(new[] { "cpu", "simd", "threads", "runtime", "cuda" }), r.ToString());
        Assert.That(r.Lines.Single(l => l.StartsWith("threads", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], Is.EqualTo("2"));
    }

    [Test]
    public void BadThreadsAndUnknownCommandsFailWithAMessage()
    {
        var r = CliRunner.Run("info", "--threads", "0");
        Assert.That(r.ExitCode, Is.Not.EqualTo(0), r.ToString());
        Assert.That(r.Stderr + r.Stdout, Does.Contain("--threads must be at least 1"));
        var u = CliRunner.Run("no-such-command");
        Assert.That(u.ExitCode, Is.Not.EqualTo(0), u.ToString());
    }

    [Test]
    public void TrainThenEvalReportTheSameTestAccuracy()
    {
        var weights = Path.Combine(_tmp, "mlp.safetensors");
        var t = CliRunner.Run("train", "--model", "mlp", "--epochs", "1", "--batch", "128", "--out", weights, "--threads", "2");
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
        Assert.That(File.Exists(weights), Is.True);
        double trained = JsonDocument.Parse(t.LastLine).RootElement.GetProperty("test_accuracy").GetDouble();
        // One epoch of the MLP on the embedded 10k subset: far above chance (10%), so training really ran.
        Assert.That(trained, Is.GreaterThan(0.7), t.ToString());

        var e = CliRunner.Run("eval", weights, "--threads", "1");
        Assert.That(e.ExitCode, Is.EqualTo(0), e.ToString());
        var ej = JsonDocument.Parse(e.LastLine).RootElement;
        Assert.That(ej.GetProperty("model").GetString(), Is.EqualTo("mlp"));
        Assert.That(ej.GetProperty("test_accuracy").GetDouble(), Is.EqualTo(trained).Within(1e-4), "eval of the saved weights disagrees with training's own evaluation");
    }

    [Test]
    public void EvalOfACorruptFileIsAnError()
    {
        var bad = Path.Combine(_tmp, "corrupt.safetensors");
        File.WriteAllBytes(bad, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        var r = CliRunner.Run("eval", bad);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("error:"), r.ToString());
        Assert.That(r.Stderr, Does.Not.Contain("   at "), "a stack trace instead of a message");
    }

    [TestCase("ibp")]
    [TestCase("crown")]
    [TestCase("crown-ibp")]
    [TestCase("alpha-crown")]
    public void BoundsJsonContainsTheModelOutputsOnSampledPoints(string method)
    {
        string onnx = Acas("ACASXU_run2a_1_1_batch_2000.onnx");
        var m = OnnxModel.Load(onnx);
        int n = m.Inputs[0].Numel;
        var centre = Enumerable.Range(0, n).Select(i => 0.05f * (i - 2)).ToArray();
        var input = Path.Combine(_tmp, $"x-{method}.json");
        File.WriteAllText(input, "[" + string.Join(",", centre.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]");
        const float eps = 0.02f;
        var r = CliRunner.Run("bounds", onnx, "--input", input, "--eps", "0.02", "--method", method, "--json", "--threads", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var j = JsonDocument.Parse(r.LastLine).RootElement;
        var lo = j.GetProperty("lower").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var hi = j.GetProperty("upper").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.That(lo, Has.Length.EqualTo(m.Outputs[0].Numel));
        Assert.That(hi, Has.Length.EqualTo(lo.Length));

        var shape = Verifier.ExampleShape(m.Inputs[0].Shape);
        var g = new Generator(7);
        int samples = 256;
        var pts = Tensor.Uniform([samples, n], -1f, 1f, g).ToArray();
        for (int s = 0; s < samples; s++)
            for (int i = 0; i < n; i++)
                pts[s * n + i] = centre[i] + eps * (s < 2 ? (s == 0 ? -1 : 1) : pts[s * n + i]);
        float[] y;
        using (new NoGrad())
            y = Executor.Forward(m.Graph, Tensor.FromArray(pts, [samples, .. shape])).ToArray();
        int outs = lo.Length;
        for (int s = 0; s < samples; s++)
            for (int k = 0; k < outs; k++)
                Assert.That(y[s * outs + k], Is.InRange(lo[k], hi[k]), $"sample {s}, output {k} outside [{lo[k]}, {hi[k]}] ({method})");
    }

    [Test]
    public void BoundsWithMarginSpecAndL2()
    {
        string onnx = Acas("ACASXU_run2a_1_9_batch_2000.onnx");
        var input = Path.Combine(_tmp, "x-spec.json");
        File.WriteAllText(input, "[0.1,0,0,0.2,-0.1]");
        var r = CliRunner.Run("bounds", onnx, "--input", input, "--eps", "0.01", "--norm", "2", "--method", "crown", "--spec", "margins:0", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var j = JsonDocument.Parse(r.LastLine).RootElement;
        var lo = j.GetProperty("lower").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var hi = j.GetProperty("upper").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.That(lo, Has.Length.EqualTo(4), "margins y_0 - y_j for the 4 other outputs");
        var m = OnnxModel.Load(onnx);
        float[] y;
        using (new NoGrad())
            y = Executor.Forward(m.Graph, Tensor.FromArray(new[] { 0.1f, 0, 0, 0.2f, -0.1f }, [1, .. Verifier.ExampleShape(m.Inputs[0].Shape)])).ToArray();
        for (int k = 1; k < 5; k++)
            Assert.That(y[0] - y[k], Is.InRange(lo[k - 1], hi[k - 1]), $"margin against output {k}");
    }

    [Test]
    public void BoundsAndBenchTakeAModelWithASymbolicBatchDimension()
    {
        // PyTorch exports with dynamic axes declare the batch as a symbol ([N, 6]): it is the batch, not a size to refuse.
        var onnx = Path.Combine(_tmp, "symbolic-batch.onnx");
        File.WriteAllBytes(onnx, Onnx.OnnxOpModels.DivByConstant().Bytes());
        var m = OnnxModel.Load(onnx);
        Assert.That(m.Inputs[0].Shape, Is.EqualTo(new[] { -1, 6 }));
        var centre = new[] { 0.3f, -0.2f, 0.5f, 0.1f, -0.4f, 0.25f };
        var input = Path.Combine(_tmp, "x-symbolic.json");
        File.WriteAllText(input, "[" + string.Join(",", centre.Select(v => v.ToString("R", CultureInfo.InvariantCulture))) + "]");
        var r = CliRunner.Run("bounds", onnx, "--input", input, "--eps", "0.05", "--method", "crown", "--json", "--threads", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var j = JsonDocument.Parse(r.LastLine).RootElement;
        var lo = j.GetProperty("lower").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        var hi = j.GetProperty("upper").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        var expected = Engine.Bounds.Bounds.Compute(m.Graph, Tensor.FromArray(centre, 1, 6), Engine.Bounds.Perturbation.LInf(0.05f), Engine.Bounds.BoundMethod.Crown);
        Assert.That(lo, Is.EqualTo(expected.Lower.ToArray()));
        Assert.That(hi, Is.EqualTo(expected.Upper.ToArray()));

        var bench = CliRunner.Run("bench", "crown", "--model", onnx, "--method", "crown", "--batch", "3", "--threads", "1");
        Assert.That(bench.ExitCode, Is.EqualTo(0), bench.ToString());
        Assert.That(bench.LastLine, Does.StartWith("{\"op\":\"crown\""), bench.ToString());
    }

    [TestCase(new[] { -1, 1, 28, 28 }, new[] { 1, 28, 28 })]
    [TestCase(new[] { 0, 6 }, new[] { 6 })]
    [TestCase(new[] { 1, 1, 1, 5 }, new[] { 1, 1, 5 })]
    [TestCase(new[] { 1 }, new[] { 1 })]
    [TestCase(new[] { 4, 3 }, new[] { 4, 3 })]
    public void ExampleShapeDropsALeadingBatchDimension(int[] declared, int[] example)
        => Assert.That(Verifier.ExampleShape(declared), Is.EqualTo(example));

    [TestCase(new[] { -1 })]
    [TestCase(new[] { 1, -1, 3 })]
    [TestCase(new[] { -1, 3, -1 })]
    [TestCase(new int[0])]
    public void ExampleShapeRefusesOtherDynamicSizes(int[] declared)
        => Assert.That(() => Verifier.ExampleShape(declared), Throws.ArgumentException.With.Message.Contain("must be static"));

    [Test]
    public void BoundsRejectsAnInputOfTheWrongLength()
    {
        var input = Path.Combine(_tmp, "x-short.json");
        File.WriteAllText(input, "[0.1,0.2]");
        var r = CliRunner.Run("bounds", Acas("ACASXU_run2a_1_1_batch_2000.onnx"), "--input", input, "--eps", "0.01", "--json");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("error:").And.Contain("2 values"), r.ToString());
        var missing = CliRunner.Run("bounds", Path.Combine(_tmp, "nope.onnx"), "--input", input, "--eps", "0.01", "--json");
        Assert.That(missing.ExitCode, Is.EqualTo(1), missing.ToString());
        Assert.That(missing.Stderr, Does.StartWith("error:"), missing.ToString());
    }

    [Test]
    public void VerifyHoldsOnATrueProperty()
    {
        var r = CliRunner.Run("verify", Test("test_nano.onnx"), Test("test_nano.vnnlib"), "--timeout", "60");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.LastLine, Is.EqualTo("holds"), r.ToString());
    }

    [Test]
    public void VerifyViolatedWritesACounterexampleThatReallyViolates()
    {
        var outFile = Path.Combine(_tmp, "sat.txt");
        var r = CliRunner.Run("verify", Test("test_sat.onnx"), Test("test_prop.vnnlib"), "--timeout", "60", "--out", outFile);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        Assert.That(r.LastLine, Is.EqualTo("violated"), r.ToString());
        var (status, x, y) = VnnResultFile.Parse(File.ReadAllText(outFile));
        Assert.That(status, Is.EqualTo("sat"));
        // Re-check the written point independently: inside the input box, and the model's output there is unsafe.
        var m = OnnxModel.Load(Test("test_sat.onnx"));
        var prop = Engine.Onnx.Vnnlib.Parse(Test("test_prop.vnnlib"), m.Inputs[0].Numel, m.Outputs[0].Numel);
        float[] yy;
        using (new NoGrad())
            yy = Executor.Forward(m.Graph, Tensor.FromArray(x.Select(v => (float)v).ToArray(), [1, .. Verifier.ExampleShape(m.Inputs[0].Shape)])).ToArray();
        Assert.That(yy.Length, Is.EqualTo(y.Length));
        for (int k = 0; k < y.Length; k++) Assert.That(yy[k], Is.EqualTo(y[k]).Within(1e-5 * (1 + Math.Abs(y[k]))), "written Y is not the model's output at X");
        var problem = new VerificationProblem(prop.Cases.Select(c => new VerificationCase(c.InputLower, c.InputUpper, c.Unsafe.Select(u => new UnsafeConjunction(u.C, u.D)))));
        Assert.That(problem.Cases.Any(c => c.Contains(x) && c.IsUnsafe(yy.Select(v => (double)v).ToArray())), Is.True, "the counterexample does not violate the property");
    }

    [Test]
    public void VerifyInstanceListShardsPartitionTheList()
    {
        var root = Path.Combine(VnnCompData.RequireRoot(), "test");
        var csv = Path.Combine(_tmp, "list.csv");
        File.WriteAllLines(csv, ["test_nano.onnx,test_nano.vnnlib,60", "test_tiny.onnx,test_tiny.vnnlib,60", "test_sat.onnx,test_prop.vnnlib,60"]);
        var res0 = Path.Combine(_tmp, "shard0.csv");
        var res1 = Path.Combine(_tmp, "shard1.csv");
        var a = CliRunner.Run("verify", "--instances", csv, "--root", root, "--shard", "0/2", "--results", res0);
        var b = CliRunner.Run("verify", "--instances", csv, "--root", root, "--shard", "1/2", "--results", res1);
        Assert.That(a.ExitCode, Is.EqualTo(0), a.ToString());
        Assert.That(b.ExitCode, Is.EqualTo(0), b.ToString());
        var rows = File.ReadAllLines(res0).Concat(File.ReadAllLines(res1)).Where(l => l.Contains(".onnx", StringComparison.Ordinal)).ToArray();
        Assert.That(rows, Has.Length.EqualTo(3), string.Join("\n", rows));
        Assert.That(rows.Count(l => l.StartsWith("test_nano.onnx", StringComparison.Ordinal) && l.Contains("holds", StringComparison.Ordinal)), Is.EqualTo(1));
        Assert.That(rows.Count(l => l.StartsWith("test_sat.onnx", StringComparison.Ordinal) && l.Contains("violated", StringComparison.Ordinal)), Is.EqualTo(1));
    }

    [Test]
    public void VerifyOfAMissingModelIsAnErrorNotAVerdict()
    {
        var r = CliRunner.Run("verify", Path.Combine(_tmp, "nope.onnx"), Test("test_nano.vnnlib"));
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("error:"), r.ToString());
        Assert.That(r.Stdout, Does.Not.Contain("holds"));
    }

    [Test]
    public void BenchCrownPrintsOneJsonLine()
    {
        var r = CliRunner.Run("bench", "crown", "--model", Acas("ACASXU_run2a_1_1_batch_2000.onnx"), "--method", "crown", "--batch", "3", "--threads", "1");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var j = JsonDocument.Parse(r.LastLine).RootElement;
        Assert.That(j.GetProperty("op").GetString(), Is.EqualTo("crown"));
        Assert.That(j.GetProperty("method").GetString(), Is.EqualTo("crown"));
        Assert.That(j.GetProperty("batch").GetInt32(), Is.EqualTo(3));
        Assert.That(j.GetProperty("threads").GetInt32(), Is.EqualTo(1));
        Assert.That(j.GetProperty("ms").GetDouble(), Is.GreaterThan(0));
    }
}
