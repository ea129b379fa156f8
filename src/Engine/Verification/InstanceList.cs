using System.Globalization;

namespace Engine.Verification;

/// <summary>One VNN-COMP instance: model, property, time limit and (optionally) the known answer.</summary>
/// <param name="Onnx">Model path, as written in the list (relative to its root).</param>
/// <param name="Vnnlib">Property path, as written in the list.</param>
/// <param name="TimeoutSeconds">Time limit in seconds.</param>
/// <param name="Expected">The known verdict (holds / violated / ...) or null.</param>
/// <param name="Index">Position in the whole list (0-based), so shards can be merged back in order.</param>
public sealed record VerificationInstance(string Onnx, string Vnnlib, double TimeoutSeconds, string? Expected, int Index);

/// <summary>VNN-COMP instance lists (CSV: onnx,vnnlib,timeout_s[,expected]; an optional header line) and shards of them.</summary>
public static class InstanceList
{
    /// <summary>Reads the list; a first line whose third field is not a number is a header.</summary>
    public static IReadOnlyList<VerificationInstance> Parse(IEnumerable<string> lines, string sourceName = "instances")
    {
        ArgumentNullException.ThrowIfNull(lines);
        var list = new List<VerificationInstance>();
        int lineNo = 0;
        foreach (var raw in lines)
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var f = line.Split(',').Select(s => s.Trim()).ToArray();
            bool numeric = f.Length >= 3 && double.TryParse(f[2], NumberStyles.Float, CultureInfo.InvariantCulture, out _);
            if (list.Count == 0 && lineNo == 1 && !numeric) continue;
            if (f.Length < 3 || !numeric || f[0].Length == 0 || f[1].Length == 0)
                throw new FormatException($"{sourceName}:{lineNo}: expected onnx,vnnlib,timeout_s[,expected], got '{line}'.");
            double t = double.Parse(f[2], NumberStyles.Float, CultureInfo.InvariantCulture);
            if (!(t > 0) || double.IsInfinity(t)) throw new FormatException($"{sourceName}:{lineNo}: the timeout must be a positive number of seconds, got '{f[2]}'.");
            string? expected = f.Length > 3 && f[3].Length > 0 ? f[3].ToLowerInvariant() : null;
            list.Add(new VerificationInstance(f[0], f[1], t, expected, list.Count));
        }
        return list;
    }

    /// <summary>Shard <paramref name="index"/> of <paramref name="count"/>: every count-th instance starting at index (0-based).</summary>
    public static IReadOnlyList<VerificationInstance> Shard(IReadOnlyList<VerificationInstance> all, int index, int count)
    {
        ArgumentNullException.ThrowIfNull(all);
        if (count < 1 || index < 0 || index >= count) throw new ArgumentOutOfRangeException(nameof(index), $"InstanceList.Shard: shard {index}/{count} needs 0 <= I < N.");
        return all.Where((_, i) => i % count == index).ToArray();
    }

    /// <summary>Parses "I/N" (0-based I).</summary>
    public static (int Index, int Count) ParseShard(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var p = text.Split('/');
        if (p.Length != 2 || !int.TryParse(p[0], CultureInfo.InvariantCulture, out int i) || !int.TryParse(p[1], CultureInfo.InvariantCulture, out int n) || n < 1 || i < 0 || i >= n)
            throw new ArgumentException($"--shard must be I/N with 0 <= I < N, got '{text}'.");
        return (i, n);
    }
}
