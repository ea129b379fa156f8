#if ENGINE_CUDA
using System.Text.RegularExpressions;
using Engine.Tests.Cli;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>`engine kernels --compile`: the by-hand form of the CI kernel check.</summary>
public class KernelsCommandTests
{
    [Test]
    public void CompileCompilesEveryFileForEachArchitectureAndCountsKernels()
    {
        CudaTestEnv.RequireNvrtc();
        var r = CliRunner.Run("kernels", "--compile", "--arch", "compute_80,compute_90");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var files = CudaTestEnv.KernelFiles();
        foreach (var f in files)
            foreach (var a in new[] { "compute_80", "compute_90" })
                Assert.That(r.Lines.Count(l => l.StartsWith($"{f}.cu [{a}]: ok", StringComparison.Ordinal)), Is.EqualTo(1), $"{f}.cu [{a}]\n{r}");
        var m = Regex.Match(r.LastLine, @"^(\d+) kernels compiled \((\d+) files x 2 architectures");
        Assert.That(m.Success, r.ToString());
        Assert.That(int.Parse(m.Groups[2].Value), Is.EqualTo(files.Length));
        int perFile = r.Lines.Where(l => l.Contains("[compute_80]: ok")).Sum(l => int.Parse(Regex.Match(l, @"ok, (\d+) kernel").Groups[1].Value));
        Assert.That(int.Parse(m.Groups[1].Value), Is.EqualTo(perFile), "N counts kernel entry points once per file");
        Assert.That(int.Parse(m.Groups[1].Value), Is.GreaterThanOrEqualTo(files.Length));
    }

    [Test]
    public void MissingNvrtcIsACleanError()
    {
        var r = CudaTestEnv.RunCli(new Dictionary<string, string> { ["ENGINE_CUDA_LIB"] = "/nonexistent-engine-cuda", ["ENGINE_CUDA_LIB_STRICT"] = "1" },
            "kernels", "--compile");
        Assert.That(r.ExitCode, Is.EqualTo(1), r.ToString());
        Assert.That(r.Stderr.Trim(), Does.StartWith("error: loading nvrtc failed: libnvrtc.so.13 not found").And.Contain("/nonexistent-engine-cuda/libnvrtc.so.11.2"));
        Assert.That(r.Stderr, Does.Not.Contain("   at "), "no stack trace");
    }

    [Test]
    public void ABadArchitectureIsRejected()
    {
        CudaTestEnv.RequireNvrtc();
        var r = CliRunner.Run("kernels", "--compile", "--arch", "sm_90");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("'sm_90' is not of the form compute_XY"));
        r = CliRunner.Run("kernels", "--compile", "--arch", "compute_999");
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Stderr, Does.Contain("cannot target compute_999"));
    }

    [Test]
    public void WithoutCompileItListsTheFiles()
    {
        var r = CliRunner.Run("kernels");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        foreach (var f in CudaTestEnv.KernelFiles()) Assert.That(r.Stdout, Does.Contain($"{f}.cu ("));
        Assert.That(r.LastLine, Does.StartWith($"{CudaTestEnv.KernelFiles().Length} kernel files"));
    }

    [Test]
    public void InfoShowsTheGpuOrWhyCudaIsUnavailable()
    {
        var r = CliRunner.Run("info");
        Assert.That(r.ExitCode, Is.Zero, r.ToString());
        var line = r.Lines.Single(l => l.StartsWith("cuda", StringComparison.Ordinal));
        Assert.That(line, Does.Match(@"^cuda\s+(not available: .+|cuda:0 .+compute capability \d+\.\d+.+driver CUDA .+)$"));
    }
}
#endif
