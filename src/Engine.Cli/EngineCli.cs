using System.CommandLine;
using Engine.Cpu;

namespace Engine.Cli;

/// <summary>The `engine` command tree and the plumbing every subcommand shares.</summary>
internal static class EngineCli
{
    /// <summary>--threads, accepted by every subcommand; sets <see cref="CpuThreads.Count"/>.</summary>
    public static readonly Option<int?> Threads = new("--threads")
    {
        Description = "CPU threads for the kernels (default: all logical processors)",
        Recursive = true,
    };

    static EngineCli()
    {
        Threads.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1) r.AddError("--threads must be at least 1.");
        });
    }

    public static RootCommand Build()
    {
        var root = new RootCommand("engine: a tensor and autodiff engine for robust deep learning (CPU SIMD, CUDA)");
        root.Options.Add(Threads);
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(TrainCommand.Create());
        root.Subcommands.Add(EvalCommand.Create());
        root.Subcommands.Add(CertifyCommand.Create());
        root.Subcommands.Add(BenchCommand.Create());
        root.Subcommands.Add(VerifyCommand.Create());
        root.Subcommands.Add(BoundsCommand.Create());
        root.Subcommands.Add(KernelsCommand.Create());
        root.Subcommands.Add(SelfTestCommand.Create());
        return root;
    }

    /// <summary>
    /// Wraps an action: applies --threads, and turns the expected failures (bad files, bad arguments, missing devices)
    /// into one "error:" line on stderr and exit code 1 instead of a stack trace.
    /// </summary>
    public static Func<ParseResult, int> Guard(Func<ParseResult, int> action) => parse =>
    {
        try
        {
            if (parse.GetValue(Threads) is int t) CpuThreads.Count = t;
            return action(parse);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or ArgumentException or InvalidOperationException or UnauthorizedAccessException or FormatException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    };
}
