using System.Diagnostics;
using NUnit.Framework;

namespace Engine.Tests.Cli;

/// <summary>
/// Runs the built `engine` command (src/Engine.Cli, built before the tests through a project reference) as a child
/// process, the way a user or a benchmark harness does: exit code, stdout and stderr as they would see them.
/// </summary>
internal static class CliRunner
{
#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    public sealed record Result(int ExitCode, string Stdout, string Stderr)
    {
        public string[] Lines => Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        public string LastLine => Lines.Length == 0 ? "" : Lines[^1];
        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
    }

    /// <summary>Engine.Cli.dll of the same configuration as the tests.</summary>
    public static string Dll
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                if (!File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) continue;
                var dll = Path.Combine(dir.FullName, "src", "Engine.Cli", "bin", Configuration, "net10.0", "Engine.Cli.dll");
                if (File.Exists(dll)) return dll;
                Assert.Fail($"Engine.Cli is not built at {dll}.");
            }
            Assert.Fail("The repository root (Engine.sln) was not found above the test directory.");
            return null!;
        }
    }

    public static Result Run(params string[] args) => Run(TimeSpan.FromMinutes(3), args);

    public static Result Run(TimeSpan limit, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("dotnet could not be started.");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"engine {string.Join(' ', args)} did not finish within {limit.TotalSeconds} s.");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.Result, stderr.Result);
    }
}
