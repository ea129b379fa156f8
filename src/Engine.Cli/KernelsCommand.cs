using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
#if ENGINE_CUDA
using Engine.Cuda;
using Engine.Cuda.Native;
#endif

namespace Engine.Cli;

/// <summary>
/// `engine kernels [--compile] [--arch compute_80,compute_90]`: lists the CUDA kernel files embedded in the engine,
/// or compiles each with NVRTC for each architecture (no GPU needed), printing one line per file and architecture
/// and finally "N kernels compiled" (N counts kernel entry points, once per file, not per architecture).
/// Exits non-zero, with NVRTC's log, if any compilation fails.
/// </summary>
internal static class KernelsCommand
{
    public static Command Create()
    {
        var compile = new Option<bool>("--compile") { Description = "Compile every kernel file with NVRTC (PTX only; no GPU needed)" };
        var arch = new Option<string>("--arch")
        {
            Description = "Comma-separated NVRTC targets for --compile",
            DefaultValueFactory = _ => "compute_80,compute_90",
        };
        var load = new Option<bool>("--load") { Description = "With --compile: also load every module into cuda:0 for its own architecture (needs a GPU)" };
        var cmd = new Command("kernels", "List the embedded CUDA kernel files, or compile them all with NVRTC (--compile)") { compile, arch, load };
        cmd.SetAction(EngineCli.Guard(parse => Run(parse.GetValue(compile), parse.GetValue(arch)!, parse.GetValue(load))));
        return cmd;
    }

    private static int Run(bool compile, string archList, bool load)
    {
#if ENGINE_CUDA
        var modules = KernelSources.Modules;
        if (!compile)
        {
            foreach (var m in modules) Console.WriteLine($"{m}.cu ({KernelSources.Source(m).Length} chars)");
            foreach (var (name, text) in KernelSources.Headers) Console.WriteLine($"{name} (header, {text.Length} chars)");
            Console.WriteLine($"{modules.Count} kernel files; compile them with --compile");
            return 0;
        }
        var archs = archList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (archs.Length == 0) throw new ArgumentException("--arch lists no architecture.");
        string version = Nvrtc.VersionString();   // throws (-> "error: ...") when NVRTC is missing
        int[] supported = Nvrtc.SupportedArchs();
        foreach (var a in archs)
        {
            if (!a.StartsWith("compute_", StringComparison.Ordinal) || !int.TryParse(a.AsSpan(8), out int sm))
                throw new ArgumentException($"--arch: '{a}' is not of the form compute_XY (e.g. compute_90).");
            if (!supported.Contains(sm))
                throw new ArgumentException($"--arch: NVRTC {version} cannot target {a} (it supports {string.Join(", ", supported.Select(s => $"compute_{s}"))}).");
        }
        Console.WriteLine($"NVRTC {version} ({NativeLibraries.LoadedFrom(CudaLibrary.Nvrtc)}), options {string.Join(' ', KernelCompiler.BaseOptions)}");
        int kernels = 0, failures = 0;
        foreach (var m in modules)
        {
            int entries = -1;
            foreach (var a in archs)
            {
                var sw = Stopwatch.StartNew();
                try
                {
                    var c = KernelCompiler.Compile(m, a, useCache: false);
                    entries = Math.Max(entries, c.KernelCount);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{m}.cu [{a}]: ok, {c.KernelCount} kernel(s), {c.Ptx.Length / 1024.0:F1} KiB PTX, {sw.Elapsed.TotalSeconds:F2} s"));
                }
                catch (CudaException e) when (e.Call.StartsWith("nvrtcCompileProgram", StringComparison.Ordinal))
                {
                    failures++;
                    Console.WriteLine($"{m}.cu [{a}]: FAILED ({e.Call})");
                    Console.WriteLine(e.Error);
                }
            }
            kernels += Math.Max(0, entries);
        }
        if (failures > 0)
        {
            Console.Error.WriteLine($"error: {failures} of {modules.Count * archs.Length} compilations failed (see NVRTC's log above)");
            return 1;
        }
        if (load)
        {
            // The driver JIT-compiles the PTX to the GPU's machine code: catches a PTX the driver rejects.
            var dev = (CudaDevice)Engine.Tensors.Device.Get("cuda");
            foreach (var m in modules)
            {
                var sw = Stopwatch.StartNew();
                dev.Context.Module(m);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{m}.cu loaded on {dev.Name} ({dev.Context.Name}, {dev.Context.Arch}), {sw.Elapsed.TotalSeconds:F2} s"));
            }
        }
        Console.WriteLine($"{kernels} kernels compiled ({modules.Count} files x {archs.Length} architectures: {string.Join(", ", archs)})");
        return 0;
#else
        _ = compile; _ = archList; _ = load;
        throw new InvalidOperationException("this build has no CUDA backend (built with --cpu-only), so it holds no kernels to compile.");
#endif
    }
}
