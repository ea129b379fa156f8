using System.Text.Json;
using NUnit.Framework;

namespace Engine.Tests.Cli;

/// <summary>`engine certify` as a user runs it: the report lines, the JSON last line, the plot, and clean errors.</summary>
[TestFixture]
public class CertifyCliTests
{
    private string _tmp = null!;
    private string _weights = null!;

    [OneTimeSetUp]
    public void Setup()
    {
        _tmp = TempDir.Create("engine-certify-cli");
        _weights = Path.Combine(_tmp, "mlp.safetensors");
        var t = CliRunner.Run("train", "--model", "mlp", "--epochs", "1", "--batch", "128", "--out", _weights, "--threads", "2");
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
    }

    [OneTimeTearDown]
    public void TearDown() => TempDir.Delete(_tmp);

    private static JsonElement Json(CliRunner.Result r)
    {
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        return JsonDocument.Parse(r.LastLine).RootElement;
    }

    [Test]
    public void CertifyPrintsTheThreeAccuraciesAndTheJsonLastLineAndWritesAPng()
    {
        var png = Path.Combine(_tmp, "curve.png");
        var r = CliRunner.Run("certify", _weights, "--eps", "0.01", "--limit", "60", "--plot", png, "--threads", "2");
        var j = Json(r);
        Assert.That(j.EnumerateObject().Select(p => p.Name).ToArray(), Is.EqualTo(new[] { "clean", "pgd", "verified", "eps", "method" }));
        double clean = j.GetProperty("clean").GetDouble(), pgd = j.GetProperty("pgd").GetDouble(), verified = j.GetProperty("verified").GetDouble();
        Assert.That(verified, Is.LessThanOrEqualTo(pgd));
        Assert.That(pgd, Is.LessThanOrEqualTo(clean));
        Assert.That(clean, Is.GreaterThan(0.5), "one epoch of the MLP is far above chance");
        Assert.That(verified, Is.GreaterThan(0), "a trained MLP verifies some images at eps 0.01");
        Assert.That(j.GetProperty("eps").GetDouble(), Is.EqualTo(0.01).Within(1e-7));
        Assert.That(j.GetProperty("method").GetString(), Is.EqualTo("crown"));
        Assert.That(r.Stdout, Does.Contain("clean accuracy").And.Contain("PGD accuracy").And.Contain("PGD-20").And.Contain("verified accuracy"));

        var bytes = File.ReadAllBytes(png);
        Assert.That(bytes.Take(8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }), "PNG signature");
        Assert.That(bytes.Length, Is.GreaterThan(5000), "an 800x500 plot with two curves, axes and labels");
    }

    [TestCase("ibp", "inf")]
    [TestCase("alpha-crown", "inf")]
    [TestCase("crown", "2")]
    public void OtherMethodsAndNorms(string method, string norm)
    {
        var j = Json(CliRunner.Run("certify", _weights, "--eps", norm == "2" ? "0.3" : "0.01", "--norm", norm, "--method", method, "--limit", "20", "--pgd-steps", "5", "--threads", "2"));
        Assert.That(j.GetProperty("method").GetString(), Is.EqualTo(method));
        Assert.That(j.GetProperty("verified").GetDouble(), Is.LessThanOrEqualTo(j.GetProperty("pgd").GetDouble()));
    }

    [Test]
    public void BabReportsItsStagesAfterTheStandardKeys()
    {
        var r = CliRunner.Run("certify", _weights, "--eps", "0.02", "--method", "bab", "--bab-timeout", "0.5", "--limit", "30", "--pgd-steps", "5", "--threads", "2");
        var j = Json(r);
        Assert.That(j.EnumerateObject().Select(p => p.Name).ToArray(), Is.EqualTo(new[] { "clean", "pgd", "verified", "eps", "method", "stages" }));
        Assert.That(j.GetProperty("method").GetString(), Is.EqualTo("bab"));
        double verified = j.GetProperty("verified").GetDouble();
        Assert.That(verified, Is.LessThanOrEqualTo(j.GetProperty("pgd").GetDouble()));
        var s = j.GetProperty("stages");
        int Count(string name) => s.GetProperty(name).GetInt32();
        Assert.That(Count("ibp") + Count("crown") + Count("alpha_crown") + Count("bab_proved"), Is.EqualTo((int)Math.Round(verified * 30)), "the stages add up to the verified count");
        Assert.That(Count("bab_proved") + Count("bab_counterexamples") + Count("bab_timeouts") + Count("bab_unknown"), Is.EqualTo(Count("bab")));
        Assert.That(r.Stdout, Does.Contain("method bab").And.Contain("branch and bound (").And.Contain("+ CROWN"));
    }

    [Test]
    public void SmoothingReportsAbstentionsAfterTheStandardKeys()
    {
        var r = CliRunner.Run("certify", _weights, "--method", "smoothing", "--eps", "0.25", "--sigma", "0.25", "--n0", "10", "--n", "100",
                              "--alpha", "0.01", "--limit", "5", "--pgd-steps", "3", "--threads", "2");
        var j = Json(r);
        Assert.That(j.EnumerateObject().Select(p => p.Name).Take(6).ToArray(), Is.EqualTo(new[] { "clean", "pgd", "verified", "eps", "method", "abstain" }));
        Assert.That(j.GetProperty("method").GetString(), Is.EqualTo("smoothing"));
        Assert.That(j.GetProperty("abstain").GetInt32(), Is.InRange(0, 5));
        Assert.That(j.GetProperty("pgd").GetDouble(), Is.LessThanOrEqualTo(j.GetProperty("clean").GetDouble()));
    }

    /// <summary>A linear ONNX classifier of flattened images ([N, 784] -> 10), written to NAME.onnx in the test directory.</summary>
    private (string Path, byte[] Bytes) LinearOnnx(string name, int seed)
    {
        var bytes = new Onnx.OnnxTestModel(seed: seed).Input("x", -1, 784).Output("y").RandScaled("w", 0.05f, 784, 10).RandScaled("b", 0.1f, 10)
            .Node("MatMul", ["x", "w"], ["m"]).Node("Add", ["m", "b"], ["y"]).Bytes();
        var path = Path.Combine(_tmp, name + ".onnx");
        File.WriteAllBytes(path, bytes);
        return (path, bytes);
    }

    [Test]
    public void CertifiesAnOnnxClassifier()
    {
        // A linear classifier on flattened images: the CLI reshapes the test images to the model's [N, 784] input.
        var (onnx, _) = LinearOnnx("linear", seed: 3);
        var j = Json(CliRunner.Run("certify", onnx, "--eps", "0.001", "--limit", "30", "--pgd-steps", "5", "--threads", "2"));
        Assert.That(j.GetProperty("verified").GetDouble(), Is.LessThanOrEqualTo(j.GetProperty("pgd").GetDouble()));
        Assert.That(j.GetProperty("pgd").GetDouble(), Is.LessThanOrEqualTo(j.GetProperty("clean").GetDouble()));
        Assert.That(j.GetProperty("method").GetString(), Is.EqualTo("crown"));
    }

    [Test]
    public void EvaluatesAnOnnxClassifier()
    {
        // `engine eval` takes what `engine certify` takes: the accuracy of an ONNX classifier on flattened images.
        var (onnx, bytes) = LinearOnnx("eval-linear", seed: 4);
        var r = CliRunner.Run("eval", onnx);
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var j = JsonDocument.Parse(r.LastLine).RootElement;
        var test = Engine.Data.FashionMnist.LoadEmbedded().Test;
        var logits = Engine.Graph.Executor.Forward(Engine.Onnx.OnnxModel.Load(bytes).Graph, test.Inputs.Reshape(test.Count, 784));
        int correct = Engine.Nn.Accuracy.CountCorrect(logits, test.Targets);
        Assert.That(j.GetProperty("samples").GetInt32(), Is.EqualTo(test.Count));
        Assert.That(j.GetProperty("test_accuracy").GetDouble(), Is.EqualTo(Math.Round((double)correct / test.Count, 4)), r.ToString());
        Assert.That(j.GetProperty("model").GetString(), Is.EqualTo("eval-linear"));
    }

    [TestCase("missing", "--eps", "0.1")]
    [TestCase("weights", "--eps=-0.1")]
    [TestCase("weights", "--eps", "0.1", "--method", "smoothing", "--sigma", "0")]
    [TestCase("weights", "--eps", "0.1", "--method", "smoothing", "--n0", "0")]
    [TestCase("weights", "--eps", "0.1", "--method", "smoothing", "--n", "0")]
    [TestCase("weights", "--eps", "0.1", "--method", "smoothing", "--alpha", "1.5")]
    [TestCase("weights", "--eps", "0.1", "--method", "smoothing", "--alpha", "0")]
    [TestCase("weights", "--eps", "0.1", "--method", "smoothing", "--norm", "inf")]
    [TestCase("weights", "--eps", "0.1", "--plot", "curve.jpg")]
    [TestCase("weights", "--eps", "0.1", "--limit", "0")]
    [TestCase("weights", "--eps", "0.1", "--method", "bab", "--bab-timeout", "0")]
    [TestCase("weights", "--eps", "0.1", "--method", "bab", "--bab-timeout=-1")]
    [TestCase("weights", "--eps", "0.1", "--method", "bab", "--norm", "2")]
    public void BadInputsGiveOneErrorLine(string model, params string[] rest)
    {
        string path = model == "missing" ? Path.Combine(_tmp, "no-such.safetensors") : _weights;
        var r = CliRunner.Run(["certify", path, .. rest]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("error:"), r.ToString());
        Assert.That(r.Stderr, Does.Not.Contain("   at "), "a stack trace instead of a message");
    }
}
