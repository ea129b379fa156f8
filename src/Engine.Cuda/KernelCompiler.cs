using System.Security.Cryptography;
using System.Text;
using Engine.Cuda.Native;

namespace Engine.Cuda;

/// <summary>The PTX of one module for one architecture, and how many kernels (.entry) it holds.</summary>
internal sealed record CompiledModule(string Module, string Arch, string Ptx, bool FromCache)
{
    /// <summary>Number of kernel entry points in the PTX.</summary>
    public int KernelCount => Ptx.Split('\n').Count(l => l.TrimStart().StartsWith(".visible .entry", StringComparison.Ordinal) || l.TrimStart().StartsWith(".entry", StringComparison.Ordinal));
}

/// <summary>
/// Compiles embedded kernel modules to PTX with NVRTC (no GPU needed), caching the PTX on disk. The cache key is the
/// SHA-256 of the source, every header, the options, the NVRTC version and the architecture, so any change to one
/// of them compiles afresh; files are written to a temporary name and renamed, so a reader never sees half a file
/// (two processes racing write the same bytes). Cache directory: ENGINE_CUDA_CACHE, else ~/.cache/engine/ptx, else
/// the temp directory; a cache that cannot be written is skipped (compiling costs time, not correctness).
/// </summary>
internal static class KernelCompiler
{
    /// <summary>
    /// NVRTC options besides the architecture. No --use_fast_math: results must match the CPU kernels within tight
    /// tolerances (exact IEEE division and square root, full-precision expf/logf, denormals kept).
    /// -default-device lets kernel files write small helpers without __device__ (as the repository's check script does).
    /// </summary>
    public static readonly string[] BaseOptions = ["-std=c++17", "-default-device"];

    /// <summary>"compute_XY" for a compute capability, clamped to the newest architecture this NVRTC supports
    /// (PTX for an older architecture is JIT-compiled forward by the driver).</summary>
    public static string ArchFor(int major, int minor)
    {
        int want = major * 10 + minor;
        int[] supported = Nvrtc.SupportedArchs();
        int pick = supported.Where(a => a <= want).DefaultIfEmpty(-1).Max();
        if (pick < 0) throw new CudaException("nvrtcGetSupportedArchs", $"this NVRTC supports compute_{supported.FirstOrDefault()} and newer; the device is compute_{want}");
        return $"compute_{pick}";
    }

    /// <summary>
    /// Compiles kernels/<paramref name="module"/>.cu for <paramref name="arch"/> ("compute_90"), or loads it from the
    /// PTX cache unless <paramref name="useCache"/> is false (a compile check must run NVRTC; it still refreshes the cache).
    /// </summary>
    public static CompiledModule Compile(string module, string arch, bool useCache = true)
    {
        if (!arch.StartsWith("compute_", StringComparison.Ordinal) || !int.TryParse(arch.AsSpan(8), out _))
            throw new ArgumentException($"Bad CUDA architecture '{arch}': expected compute_XY, e.g. compute_90.");
        string source = KernelSources.Source(module);
        var headers = KernelSources.Headers;
        string[] options = [$"--gpu-architecture={arch}", .. BaseOptions];
        string version = Nvrtc.VersionString();
        string key = CacheKey(source, headers, options, version, arch);
        string? file = CacheFile(module, arch, key);
        if (useCache && file != null && TryRead(file) is { } cached) return new CompiledModule(module, arch, cached, true);
        string ptx = RunNvrtc(module, source, headers, options);
        if (file != null) TryWrite(file, ptx);
        return new CompiledModule(module, arch, ptx, false);
    }

    /// <summary>Compiles arbitrary source (with the embedded headers and the standard options) without the cache: for tests.</summary>
    internal static string CompileSource(string name, string source, string arch)
        => RunNvrtc(name, source, KernelSources.Headers, [$"--gpu-architecture={arch}", .. BaseOptions]);

    internal static string CacheKey(string source, IReadOnlyList<(string Name, string Text)> headers, string[] options, string nvrtcVersion, string arch)
    {
        var sb = new StringBuilder();
        // Length-prefixed fields, so moving text between fields changes the key.
        void Add(string s) => sb.Append(s.Length).Append(':').Append(s).Append('\n');
        Add(source);
        foreach (var (n, t) in headers) { Add(n); Add(t); }
        foreach (var o in options) Add(o);
        Add(nvrtcVersion);
        Add(arch);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    /// <summary>The directory PTX is cached in, or null when no candidate is writable.</summary>
    internal static string? CacheDirectory()
    {
        var candidates = new List<string>();
        if (Environment.GetEnvironmentVariable("ENGINE_CUDA_CACHE") is { Length: > 0 } env) candidates.Add(env);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0) candidates.Add(Path.Combine(home, ".cache", "engine", "ptx"));
        candidates.Add(Path.Combine(Path.GetTempPath(), "engine-ptx"));
        foreach (var dir in candidates)
        {
            try
            {
                Directory.CreateDirectory(dir);
                return dir;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return null;
    }

    private static string? CacheFile(string module, string arch, string key)
        => CacheDirectory() is { } dir ? Path.Combine(dir, $"{module}.{arch}.{key[..32]}.ptx") : null;

    private static string? TryRead(string file)
    {
        try { return File.Exists(file) ? File.ReadAllText(file) : null; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    private static void TryWrite(string file, string ptx)
    {
        string tmp = $"{file}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllText(tmp, ptx);
            File.Move(tmp, file, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            try { File.Delete(tmp); } catch (Exception e2) when (e2 is IOException or UnauthorizedAccessException) { }
        }
    }

    private static unsafe string RunNvrtc(string module, string source, IReadOnlyList<(string Name, string Text)> headers, string[] options)
    {
        NativeLibraries.Require(CudaLibrary.Nvrtc);
        var owned = new List<nint>();
        byte* U(string s) { byte* p = Nvrtc.Utf8(s); owned.Add((nint)p); return p; }
        nint program = 0;
        try
        {
            byte** hBodies = stackalloc byte*[Math.Max(1, headers.Count)];
            byte** hNames = stackalloc byte*[Math.Max(1, headers.Count)];
            for (int i = 0; i < headers.Count; i++) { hBodies[i] = U(headers[i].Text); hNames[i] = U(headers[i].Name); }
            byte** opts = stackalloc byte*[options.Length];
            for (int i = 0; i < options.Length; i++) opts[i] = U(options[i]);
            Nvrtc.Check(Nvrtc.nvrtcCreateProgram(out program, U(source), U(module + ".cu"), headers.Count, hBodies, hNames), $"nvrtcCreateProgram({module}.cu)");
            int rc = Nvrtc.nvrtcCompileProgram(program, options.Length, opts);
            if (rc != 0)
                throw new CudaException($"nvrtcCompileProgram({module}.cu, {string.Join(' ', options)})", $"{Nvrtc.Describe(rc)}\n{Log(program)}", rc);
            Nvrtc.Check(Nvrtc.nvrtcGetPTXSize(program, out nuint size), "nvrtcGetPTXSize");
            var bytes = new byte[(int)size];
            fixed (byte* p = bytes) Nvrtc.Check(Nvrtc.nvrtcGetPTX(program, p), "nvrtcGetPTX");
            int len = Array.IndexOf(bytes, (byte)0);
            return Encoding.UTF8.GetString(bytes, 0, len < 0 ? bytes.Length : len);
        }
        finally
        {
            if (program != 0) Nvrtc.nvrtcDestroyProgram(ref program);
            foreach (var p in owned) System.Runtime.InteropServices.Marshal.FreeHGlobal(p);
        }
    }

    private static unsafe string Log(nint program)
    {
        if (Nvrtc.nvrtcGetProgramLogSize(program, out nuint size) != 0 || size <= 1) return "(NVRTC gave no log)";
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes) if (Nvrtc.nvrtcGetProgramLog(program, p) != 0) return "(NVRTC log unavailable)";
        return Encoding.UTF8.GetString(bytes, 0, (int)size - 1).TrimEnd();
    }
}
