using NUnit.Framework;
namespace Engine.Tests.Onnx;

/// <summary>Finds the VNN-COMP 2021 sample instances (shared/data/vnncomp2021 beside or above the repository).</summary>
internal static class VnnCompData
{
    public static string? Root
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("ENGINE_VNNCOMP2021");
            if (!string.IsNullOrEmpty(env) && Directory.Exists(env)) return env;
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "data", "vnncomp2021");
                if (Directory.Exists(candidate)) return candidate;
            }
            return null;
        }
    }

    /// <summary>The root, or the test is skipped (with the reason) when the samples are not on this machine.</summary>
    public static string RequireRoot()
    {
        var r = Root;
        if (r == null) Assert.Ignore("VNN-COMP 2021 samples not found (shared/data/vnncomp2021 above the test directory, or ENGINE_VNNCOMP2021).");
        return r!;
    }

    public static string[] Files(string pattern)
    {
        var root = Root;
        return root == null ? [] : Directory.GetFiles(root, pattern, SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)).OrderBy(f => f, StringComparer.Ordinal).ToArray();
    }
}
