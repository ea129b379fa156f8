using System.CommandLine;
using System.Runtime.InteropServices;
using Engine.Cpu;

namespace Engine.Cli;

/// <summary>`engine info`: the hardware and backends the engine sees.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var cmd = new Command("info", "Show CPU, SIMD, threads and available backends");
        cmd.SetAction(EngineCli.Guard(_ =>
        {
            var (bits, isa) = SystemInfo.SimdInUse();
            Line("cpu", $"{SystemInfo.CpuModel()} ({Environment.ProcessorCount} logical processors)");
            Line("simd", $"{bits}-bit vectors ({isa}); extensions: {string.Join(' ', SystemInfo.Extensions())}");
            Line("threads", CpuThreads.Count.ToString());
            Line("runtime", $"{RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}");
            Line("native", "none: no native kernel library is built; all CPU kernels are managed (System.Runtime.Intrinsics)");
            Line("cuda", Cuda());
            return 0;
        }));
        return cmd;
    }

    private static string Cuda()
    {
#if ENGINE_CUDA
        return Engine.Cuda.CudaBackend.Describe();
#else
        return "not available: this build has no CUDA backend (built with --cpu-only)";
#endif
    }

    private static void Line(string key, string value) => Console.WriteLine($"{key,-8} {value}");
}
