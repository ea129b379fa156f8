using System.Reflection;

namespace Engine.Cuda;

/// <summary>
/// The CUDA C++ sources embedded in this assembly (kernels/*.cu as modules, kernels/*.cuh as headers every module
/// may include). A module's name is its file name without ".cu".
/// </summary>
internal static class KernelSources
{
    private const string Prefix = "kernels/";
    private static readonly Lazy<Dictionary<string, string>> Files = new(Load);

    /// <summary>Module names (one per kernels/*.cu), sorted.</summary>
    public static IReadOnlyList<string> Modules => Files.Value.Keys.Where(k => k.EndsWith(".cu", StringComparison.Ordinal))
        .Select(k => k[..^3]).Order(StringComparer.Ordinal).ToList();

    /// <summary>Headers (file name, text), sorted by name.</summary>
    public static IReadOnlyList<(string Name, string Text)> Headers => Files.Value.Where(kv => kv.Key.EndsWith(".cuh", StringComparison.Ordinal))
        .OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)).ToList();

    /// <summary>The source of kernels/<paramref name="module"/>.cu, or an exception listing the modules that exist.</summary>
    public static string Source(string module)
    {
        if (Files.Value.TryGetValue(module + ".cu", out var text)) return text;
        throw new ArgumentException($"No CUDA kernel module '{module}': kernels/{module}.cu is not embedded in Engine.Cuda (modules: {string.Join(", ", Modules)}).");
    }

    private static Dictionary<string, string> Load()
    {
        var asm = typeof(KernelSources).Assembly;
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var res in asm.GetManifestResourceNames())
        {
            if (!res.StartsWith(Prefix, StringComparison.Ordinal)) continue;
            using var s = asm.GetManifestResourceStream(res) ?? throw new InvalidOperationException($"Embedded resource {res} cannot be read.");
            using var r = new StreamReader(s);
            d[res[Prefix.Length..]] = r.ReadToEnd();
        }
        return d;
    }
}
