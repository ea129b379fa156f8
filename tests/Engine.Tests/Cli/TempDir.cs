namespace Engine.Tests.Cli;

/// <summary>A per-process scratch directory for a test fixture's files (weights, exports, plots).</summary>
internal static class TempDir
{
    /// <summary>Creates (or reuses) $TMP/<paramref name="prefix"/>-PID and returns its path.</summary>
    public static string Create(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), prefix + "-" + Environment.ProcessId);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Deletes it with everything in it; a file another process still holds is left behind.</summary>
    public static void Delete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
