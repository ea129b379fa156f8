#if ENGINE_CUDA
using System.Diagnostics;
using Engine.Cuda;
using Engine.Cuda.Native;
using Engine.Tests.Cli;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

/// <summary>What the CUDA tests need from the machine, and the visible skip (or CI failure) when it is missing.</summary>
internal static class CudaTestEnv
{
    /// <summary>CI installs NVRTC and sets ENGINE_REQUIRE_NVRTC=1: there a missing NVRTC fails instead of skipping.</summary>
    public static bool NvrtcRequired => Environment.GetEnvironmentVariable("ENGINE_REQUIRE_NVRTC") is "1" or "true";

    /// <summary>Skips (or, when required, fails) unless libnvrtc loads.</summary>
    public static void RequireNvrtc()
    {
        if (NativeLibraries.TryLoad(CudaLibrary.Nvrtc, out string detail)) return;
        if (NvrtcRequired) Assert.Fail($"ENGINE_REQUIRE_NVRTC=1 but NVRTC is not available: {detail}");
        Assert.Ignore($"NVRTC is not available: {detail}");
    }

    /// <summary>
    /// cuda:0, or a skip naming why there is none (a failure under ENGINE_REQUIRE_CUDA=1, which `./build.sh test` sets
    /// for its second run, on the emulated device).
    /// </summary>
    public static CudaDevice RequireDevice()
    {
        if (!CudaBackend.Register())
        {
            if (Environment.GetEnvironmentVariable("ENGINE_REQUIRE_CUDA") is "1" or "true")
                Assert.Fail($"ENGINE_REQUIRE_CUDA=1 but there is no CUDA device: {CudaBackend.UnavailableReason}");
            Assert.Ignore($"no CUDA device: {CudaBackend.UnavailableReason}");
        }
        return (CudaDevice)Engine.Tensors.Device.Get("cuda");
    }

    /// <summary>The repository root (where Engine.sln is).</summary>
    public static string RepoRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return dir.FullName;
            throw new InvalidOperationException("The repository root (Engine.sln) was not found above the test directory.");
        }
    }

    /// <summary>The kernel modules in the repository's kernels/ directory (file names without .cu), sorted.</summary>
    public static string[] KernelFiles() => Directory.GetFiles(Path.Combine(RepoRoot, "kernels"), "*.cu")
        .Select(f => Path.GetFileNameWithoutExtension(f)).Order(StringComparer.Ordinal).ToArray();

    /// <summary>Runs the built `engine` with extra environment variables.</summary>
    public static CliRunner.Result RunCli(IDictionary<string, string> env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(CliRunner.Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("dotnet could not be started.");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"engine {string.Join(' ', args)} did not finish within 5 minutes.");
        }
        p.WaitForExit();
        return new CliRunner.Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
#endif
