using System.Text.RegularExpressions;
using Engine.Diagnostics;
using Engine.Tensors;
using Engine.Tests.Cli;
using NUnit.Framework;

namespace Engine.Tests.Diagnostics;

/// <summary>`engine selftest` as a user runs it: one line per check, the final count, the exit code.</summary>
[TestFixture]
public class SelfTestCliTests
{
    [Test]
    public void CpuSelfTestRunsEveryCheckAndPasses()
    {
        var r = CliRunner.Run("selftest", "--device", "cpu", "--memory-steps", "120");
        Assert.That(r.ExitCode, Is.EqualTo(0), r.ToString());
        var lines = r.Lines;
        Assert.That(lines[0], Does.StartWith("selftest: cpu against the scalar reference"));
        var results = lines.Where(l => l.StartsWith("ok ", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal)).ToArray();
        int expected = new KernelSelfTest(Device.Cpu).CheckNames.Count + 1;   // + Memory/TrainLoop
        Assert.That(results, Has.Length.EqualTo(expected), r.ToString());
        Assert.That(results, Is.All.StartWith("ok "), r.ToString());
        foreach (var name in new[] { "Gemm", "Unary/Exp", "BoundConvTranspose", "E2E/Bounds/AlphaCrown", "E2E/Pgd", "Memory/TrainLoop" })
            Assert.That(results.Any(l => Regex.IsMatch(l, $@"^ok\s+{Regex.Escape(name)}\s+cases=\d+\s+maxabs=\S+ maxrel=\S+")), $"no line for {name}\n{r}");
        Assert.That(r.LastLine, Is.EqualTo($"{expected} passed, 0 failed"));
    }

    [Test]
    public void FilterSelectsChecksAndNoMatchFails()
    {
        var some = CliRunner.Run("selftest", "--device", "cpu", "--filter", "softmax");
        Assert.That(some.ExitCode, Is.EqualTo(0), some.ToString());
        Assert.That(some.LastLine, Is.EqualTo("4 passed, 0 failed"), some.ToString());
        var none = CliRunner.Run("selftest", "--filter", "no-such-op");
        Assert.That(none.ExitCode, Is.EqualTo(1), none.ToString());
        Assert.That(none.LastLine, Is.EqualTo("0 passed, 0 failed"));
        Assert.That(none.Stderr, Does.Contain("no check matches"));
    }

    [Test]
    public void UnknownDeviceIsAClearError()
    {
        var r = CliRunner.Run("selftest", "--device", "nosuch");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stderr, Does.StartWith("error: Device 'nosuch' is not available"));
        var bad = CliRunner.Run("selftest", "--memory-steps", "0");
        Assert.That(bad.ExitCode, Is.Not.EqualTo(0), bad.ToString());
        Assert.That(bad.Stderr + bad.Stdout, Does.Contain("--memory-steps must be at least 1"));
    }
}
