using System.Reflection;
using System.Runtime.InteropServices;

namespace Engine.Cuda.Native;

/// <summary>The three CUDA libraries the backend binds.</summary>
internal enum CudaLibrary { Driver, Nvrtc, Cublas }

/// <summary>
/// Finds libcuda / libnvrtc / libcublas at run time. The bindings name the logical libraries "cuda", "nvrtc" and
/// "cublas"; a DllImport resolver on this assembly (NativeAOT-compatible, unlike probing paths in a .deps.json) maps
/// them to the first candidate that loads. Toolkit libraries are versioned in their file names (libnvrtc.so.13,
/// .so.12, .so.11.2: the 11.x NVRTC ABI is named 11.2), so each major version is tried, newest first, in the
/// directories users and installers put them in, then by bare name through the system loader (ldconfig,
/// LD_LIBRARY_PATH). The driver (libcuda.so.1) must match the kernel module, so only ENGINE_CUDA_LIB directories and
/// the system loader are searched for it, never a toolkit directory. Last before the system loader come the lib
/// directories of pip's nvidia-* wheels (a PyTorch install), so a machine with PyTorch but no toolkit works too.
/// </summary>
internal static class NativeLibraries
{
    private static readonly object Gate = new();
    private static readonly Dictionary<CudaLibrary, (nint Handle, string Detail)> Loaded = new();
    private static int _resolverSet;

    /// <summary>The logical name the [LibraryImport] attributes use for a library.</summary>
    public static string LogicalName(CudaLibrary lib) => lib switch
    {
        CudaLibrary.Driver => "cuda",
        CudaLibrary.Nvrtc => "nvrtc",
        _ => "cublas",
    };

    /// <summary>File names tried for a library, in order.</summary>
    public static IReadOnlyList<string> FileNames(CudaLibrary lib) => lib switch
    {
        CudaLibrary.Driver => ["libcuda.so.1", "libcuda.so"],
        CudaLibrary.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        _ => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
    };

    /// <summary>
    /// Directories searched before the system loader: ENGINE_CUDA_LIB (colon-separated) first, then for toolkit
    /// libraries $CUDA_HOME/lib64, /usr/local/cuda/lib64 and /usr/local/cuda/targets/x86_64-linux/lib.
    /// </summary>
    public static IReadOnlyList<string> Directories(CudaLibrary lib, Func<string, string?> env)
    {
        var dirs = new List<string>();
        if (env("ENGINE_CUDA_LIB") is { Length: > 0 } extra)
            dirs.AddRange(extra.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (lib != CudaLibrary.Driver)
        {
            if (env("CUDA_HOME") is { Length: > 0 } home) dirs.Add(Path.Combine(home, "lib64"));
            dirs.Add("/usr/local/cuda/lib64");
            dirs.Add("/usr/local/cuda/targets/x86_64-linux/lib");
        }
        return dirs.Distinct().ToList();
    }

    /// <summary>
    /// Every path or bare name tried for a library, in order: each directory with each file name (an explicit
    /// directory wins over a newer version elsewhere), then each file name through the system loader, unless
    /// ENGINE_CUDA_LIB_STRICT=1 limits the search to the ENGINE_CUDA_LIB directories (to pin one toolkit).
    /// </summary>
    public static IReadOnlyList<string> Candidates(CudaLibrary lib, Func<string, string?> env, bool includePython = false)
    {
        var names = FileNames(lib);
        var list = new List<string>();
        bool strict = env("ENGINE_CUDA_LIB_STRICT") is "1" or "true";
        var dirs = strict
            ? (env("ENGINE_CUDA_LIB") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList()
            : Directories(lib, env);
        if (!strict && includePython && lib != CudaLibrary.Driver) dirs = [.. dirs, .. PythonDirectories(env)];
        foreach (var dir in dirs)
            foreach (var name in names) list.Add(Path.Combine(dir, name));
        if (!strict) list.AddRange(names);
        return list;
    }

    /// <summary>
    /// The lib directories of pip's NVIDIA wheels (nvidia/&lt;package&gt;/lib under a site-packages), where a PyTorch
    /// install keeps its own libnvrtc and libcublas: in $VIRTUAL_ENV, $CONDA_PREFIX, ~/.local, /usr/local, /usr, /opt/conda.
    /// </summary>
    public static IReadOnlyList<string> PythonDirectories(Func<string, string?> env)
    {
        var roots = new List<string>();
        foreach (var v in new[] { "VIRTUAL_ENV", "CONDA_PREFIX" })
            if (env(v) is { Length: > 0 } r) roots.Add(Path.Combine(r, "lib"));
        string home = env("HOME") ?? "";
        if (home.Length > 0) roots.Add(Path.Combine(home, ".local", "lib"));
        roots.AddRange(["/usr/local/lib", "/usr/lib", "/opt/conda/lib"]);
        var found = new List<string>();
        foreach (var root in roots)
        {
            try
            {
                if (!Directory.Exists(root)) continue;
                foreach (var py in Directory.EnumerateDirectories(root, "python3*").Order(StringComparer.Ordinal))
                    foreach (var pkgs in new[] { "site-packages", "dist-packages" })
                    {
                        string nvidia = Path.Combine(py, pkgs, "nvidia");
                        if (!Directory.Exists(nvidia)) continue;
                        // Newest layout first (nvidia/cu13/lib holds every CUDA 13 library), then per-library wheels.
                        foreach (var pkg in Directory.EnumerateDirectories(nvidia).OrderByDescending(d => Path.GetFileName(d).StartsWith("cu1", StringComparison.Ordinal)).ThenBy(d => d, StringComparer.Ordinal))
                            if (Directory.Exists(Path.Combine(pkg, "lib"))) found.Add(Path.Combine(pkg, "lib"));
                    }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return found.Distinct().ToList();
    }

    /// <summary>Loads a library (once); false with the list of what was tried when none loads.</summary>
    public static bool TryLoad(CudaLibrary lib, out string detail)
    {
        EnsureResolver();
        lock (Gate)
        {
            if (Loaded.TryGetValue(lib, out var done)) { detail = done.Detail; return done.Handle != 0; }
            var tried = new List<string>();
            foreach (var candidate in Candidates(lib, Environment.GetEnvironmentVariable, includePython: true))
            {
                tried.Add(candidate);
                // A path that does not exist is not worth a dlopen.
                if (candidate.Contains('/') && !File.Exists(candidate)) continue;
                if (NativeLibrary.TryLoad(candidate, out nint h))
                {
                    Loaded[lib] = (h, candidate);
                    detail = candidate;
                    return true;
                }
                // A file that exists but does not load (missing dependency, wrong architecture): keep the loader's reason.
                if (candidate.Contains('/'))
                {
                    try { NativeLibrary.Free(NativeLibrary.Load(candidate)); }
                    catch (DllNotFoundException e) { tried[^1] += $" [{e.Message}]"; }
                }
            }
            detail = $"{FileNames(lib)[0]} not found (tried {(tried.Count == 0 ? "nothing" : string.Join(", ", tried))}; set ENGINE_CUDA_LIB to the directory that holds it)";
            Loaded[lib] = (0, detail);
            return false;
        }
    }

    /// <summary>Loads a library or throws <see cref="CudaException"/> saying what was tried.</summary>
    public static void Require(CudaLibrary lib)
    {
        if (!TryLoad(lib, out var detail)) throw new CudaException($"loading {LogicalName(lib)}", detail);
    }

    /// <summary>The file a library was loaded from, or null.</summary>
    public static string? LoadedFrom(CudaLibrary lib)
    {
        lock (Gate) return Loaded.TryGetValue(lib, out var v) && v.Handle != 0 ? v.Detail : null;
    }

    /// <summary>Installs the resolver; the binding classes call this from their static constructors.</summary>
    public static void EnsureResolver()
    {
        if (Interlocked.Exchange(ref _resolverSet, 1) == 0)
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        CudaLibrary? lib = name switch { "cuda" => CudaLibrary.Driver, "nvrtc" => CudaLibrary.Nvrtc, "cublas" => CudaLibrary.Cublas, _ => null };
        if (lib is not { } l) return 0;
        if (!TryLoad(l, out var detail)) throw new DllNotFoundException(detail);
        lock (Gate) return Loaded[l].Handle;
    }
}
