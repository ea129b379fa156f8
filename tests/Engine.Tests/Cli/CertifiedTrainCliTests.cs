using System.Text.Json;
using Engine.Serialization;
using NUnit.Framework;

namespace Engine.Tests.Cli;

/// <summary>
/// `engine train --method ...`: a short certified run prints the schedule per epoch, records the method and radius in
/// the saved weights and agrees with `engine eval`; bad values end with one clear error line.
/// </summary>
[TestFixture]
public class CertifiedTrainCliTests
{
    private string _tmp = null!;

    [OneTimeSetUp]
    public void Setup() => _tmp = TempDir.Create("engine-certtrain-cli");

    [OneTimeTearDown]
    public void TearDown() => TempDir.Delete(_tmp);

    [Test]
    public void SabrRunShowsTheScheduleAndRecordsTheMethod()
    {
        var weights = Path.Combine(_tmp, "sabr.safetensors");
        var t = CliRunner.Run("train", "--method", "sabr", "--eps", "0.1", "--epochs", "2", "--limit", "512", "--batch", "128",
                              "--pgd-steps", "2", "--out", weights, "--threads", "2");
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
        var epochs = t.Lines.Where(l => l.StartsWith("epoch", StringComparison.Ordinal)).ToArray();
        Assert.That(epochs, Has.Length.EqualTo(2), t.ToString());
        // Default schedule for 2 epochs: 1 warm-up epoch (eps 0, kappa 1), then a 1-epoch ramp ending at eps 0.1, kappa 0.
        Assert.That(epochs[0], Does.Contain("eps 0.0000").And.Contain("kappa 1.000"), t.ToString());
        Assert.That(epochs[1], Does.Contain("eps 0.1000").And.Contain("kappa 0.000"), t.ToString());
        Assert.That(t.Lines.Any(l => l.StartsWith("method sabr", StringComparison.Ordinal) && l.Contains("lambda 0.4", StringComparison.Ordinal)), t.ToString());
        double acc = JsonDocument.Parse(t.LastLine).RootElement.GetProperty("test_accuracy").GetDouble();
        Assert.That(acc, Is.InRange(0.0, 1.0));

        var (_, meta) = SafeTensors.LoadWithMetadata(weights);
        Assert.That(meta["model"], Is.EqualTo("cnn-small"));
        Assert.That(meta["method"], Is.EqualTo("sabr"));
        Assert.That(meta["eps"], Is.EqualTo("0.1"));
        Assert.That(meta["norm"], Is.EqualTo("inf"));
        Assert.That(meta["sabr_lambda"], Is.EqualTo("0.4"));

        var e = CliRunner.Run("eval", weights, "--threads", "2");
        Assert.That(e.ExitCode, Is.EqualTo(0), e.ToString());
        Assert.That(JsonDocument.Parse(e.LastLine).RootElement.GetProperty("test_accuracy").GetDouble(), Is.EqualTo(acc).Within(1e-4));
    }

    [Test]
    public void Cnn4LayerMtlIbpRunWithKappaStartZero()
    {
        // auto_LiRPA's cnn_4layer (8/16 channels, 256 hidden): 136 + 2,064 + 200,960 + 2,570 parameters. With
        // --kappa-start 0 the ramp epoch has no clean term (kappa 0 from its first batch), the warm-up stays kappa 1.
        var weights = Path.Combine(_tmp, "c4l.safetensors");
        var t = CliRunner.Run("train", "--model", "cnn-4layer", "--method", "mtlibp", "--eps", "0.1", "--epochs", "2", "--limit", "256",
                              "--batch", "128", "--pgd-steps", "1", "--kappa-start", "0", "--out", weights, "--threads", "2");
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
        Assert.That(t.Lines.Any(l => l.Contains("cnn-4layer (205,730 parameters)", StringComparison.Ordinal)), t.ToString());
        // Two threads and 128-example batches: one 64-example shard per thread, each on its own replica, run as two
        // micro-batches of 32 (the default).
        Assert.That(t.Lines.Any(l => l.StartsWith("train ", StringComparison.Ordinal) && l.EndsWith("2 threads (data parallel: 2 shards per batch, each in 2 micro-batches)", StringComparison.Ordinal)), t.ToString());
        Assert.That(t.Lines.Any(l => l.StartsWith("method mtlibp", StringComparison.Ordinal) && l.Contains("kappa 0 -> 0", StringComparison.Ordinal)), t.ToString());
        var epochs = t.Lines.Where(l => l.StartsWith("epoch", StringComparison.Ordinal)).ToArray();
        Assert.That(epochs, Has.Length.EqualTo(2), t.ToString());
        Assert.That(epochs[0], Does.Contain("kappa 1.000"), t.ToString());
        Assert.That(epochs[1], Does.Contain("kappa 0.000").And.Not.Contain("train acc"), t.ToString());
        var (_, meta) = SafeTensors.LoadWithMetadata(weights);
        Assert.That(meta["model"], Is.EqualTo("cnn-4layer"));
        double acc = JsonDocument.Parse(t.LastLine).RootElement.GetProperty("test_accuracy").GetDouble();
        var e = CliRunner.Run("eval", weights, "--threads", "2");
        Assert.That(e.ExitCode, Is.EqualTo(0), e.ToString());
        Assert.That(JsonDocument.Parse(e.LastLine).RootElement.GetProperty("test_accuracy").GetDouble(), Is.EqualTo(acc).Within(1e-4));
    }

    [Test]
    public void MicroBatchOptionCutsShardsOrNot()
    {
        string Header(params string[] extra)
        {
            var t = CliRunner.Run(["train", "--model", "cnn-small", "--method", "ibp", "--eps", "0.05", "--epochs", "1", "--limit", "128",
                                   "--batch", "128", "--out", Path.Combine(_tmp, "mb.safetensors"), "--threads", "2", .. extra]);
            Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
            return t.Lines.First(l => l.StartsWith("train ", StringComparison.Ordinal));
        }
        Assert.That(Header("--micro-batch", "0"), Does.EndWith("(data parallel: 2 shards per batch)"));
        Assert.That(Header("--micro-batch", "16"), Does.EndWith("(data parallel: 2 shards per batch, each in 4 micro-batches)"));
        var bad = CliRunner.Run("train", "--method", "ibp", "--eps", "0.1", "--micro-batch", "-1");
        Assert.That(bad.ExitCode, Is.Not.EqualTo(0));
        Assert.That(bad.ToString(), Does.Contain("--micro-batch"));
    }

    [Test]
    public void NoiseRunRecordsSigma()
    {
        var weights = Path.Combine(_tmp, "noise.safetensors");
        var t = CliRunner.Run("train", "--method", "noise", "--sigma", "0.25", "--model", "mlp", "--epochs", "1", "--limit", "1024",
                              "--out", weights, "--threads", "2", "--data-parallel", "off");
        Assert.That(t.ExitCode, Is.EqualTo(0), t.ToString());
        Assert.That(t.Lines.Any(l => l.StartsWith("train ", StringComparison.Ordinal) && l.EndsWith("2 threads", StringComparison.Ordinal)), t.ToString());
        Assert.That(t.Lines.Single(l => l.StartsWith("epoch", StringComparison.Ordinal)), Does.Contain("sigma 0.250"));
        var (_, meta) = SafeTensors.LoadWithMetadata(weights);
        Assert.That((meta["method"], meta["sigma"], meta["model"]), Is.EqualTo(("noise", "0.25", "mlp")));
        Assert.That(meta.ContainsKey("eps"), Is.False);
    }

    [TestCase("--method ibp", "--method ibp needs --eps")]
    [TestCase("--method pgd --eps -0.1", "--eps must be finite and >= 0")]
    [TestCase("--method noise", "--method noise needs --sigma")]
    [TestCase("--method sabr --eps 0.1 --sabr-lambda 1.5", "--sabr-lambda must be in (0, 1]")]
    [TestCase("--method ccibp --eps 0.1 --alpha 2", "--alpha must be in [0, 1]")]
    [TestCase("--method ibp --eps 0.1 --alpha 0.5", "--alpha applies to --method ccibp|mtlibp only")]
    [TestCase("--method ibp --eps 0.1 --epochs 4 --warmup-epochs 2 --ramp-epochs 3", "exceed the 4 epochs")]
    [TestCase("--method standard --eps 0.1", "--eps applies to")]
    [TestCase("--method ibp --eps 0.1 --optimizer sgd", "--optimizer sgd applies to --method standard only")]
    [TestCase("--method pgd --eps 0.1 --lr-decay-epochs 3,x", "--lr-decay-epochs must be comma-separated")]
    [TestCase("--method ibp --eps 0.1 --data-parallel maybe", "--data-parallel")]
    public void BadValuesGiveOneErrorLine(string args, string message)
    {
        var r = CliRunner.Run(["train", .. args.Split(' '), "--out", Path.Combine(_tmp, "never.safetensors")]);
        Assert.That(r.ExitCode, Is.Not.EqualTo(0), r.ToString());
        Assert.That(r.Stderr + r.Stdout, Does.Contain(message), r.ToString());
        Assert.That(r.Stderr, Does.Not.Contain("   at "), "a stack trace instead of a message");
        Assert.That(File.Exists(Path.Combine(_tmp, "never.safetensors")), Is.False);
    }
}
