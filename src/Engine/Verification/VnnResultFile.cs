using System.Globalization;
using System.Text;

namespace Engine.Verification;

/// <summary>
/// VNN-COMP result files: the first line is sat (violated), unsat (holds), timeout or unknown; a sat file then lists
/// the counterexample as one s-expression: ((X_0 v) (X_1 v) ... (Y_0 v) ...), one pair per line.
/// </summary>
public static class VnnResultFile
{
    /// <summary>The first-line status for a verdict.</summary>
    public static string Status(Verdict v) => v switch
    {
        Verdict.Violated => "sat",
        Verdict.Holds => "unsat",
        Verdict.Timeout => "timeout",
        _ => "unknown",
    };

    /// <summary>The file's text for a result (values written so that they read back to the same doubles).</summary>
    public static string Format(Verdict verdict, Counterexample? counterexample)
    {
        var sb = new StringBuilder().Append(Status(verdict)).Append('\n');
        if (verdict == Verdict.Violated)
        {
            ArgumentNullException.ThrowIfNull(counterexample);
            var pairs = counterexample.X.Select((v, i) => $"(X_{i} {v.ToString("R", CultureInfo.InvariantCulture)})")
                .Concat(counterexample.Y.Select((v, i) => $"(Y_{i} {v.ToString("R", CultureInfo.InvariantCulture)})")).ToArray();
            sb.Append('(').Append(string.Join("\n ", pairs)).Append(")\n");
        }
        return sb.ToString();
    }

    /// <summary>Reads a result file's text: its status and, for sat, the X and Y values in index order.</summary>
    public static (string Status, double[] X, double[] Y) Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var lines = text.Split('\n', 2);
        var status = lines[0].Trim();
        if (status is not ("sat" or "unsat" or "timeout" or "unknown" or "error"))
            throw new FormatException($"VNN-COMP result: unknown status '{status}'.");
        var x = new SortedDictionary<int, double>();
        var y = new SortedDictionary<int, double>();
        if (lines.Length > 1)
        {
            var body = lines[1].Replace("(", " ( ").Replace(")", " ) ");
            var tok = body.Split((char[])[' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries);
            for (int i = 0; i < tok.Length; i++)
            {
                if (!(tok[i].StartsWith("X_", StringComparison.Ordinal) || tok[i].StartsWith("Y_", StringComparison.Ordinal))) continue;
                if (i + 1 >= tok.Length || !int.TryParse(tok[i].AsSpan(2), CultureInfo.InvariantCulture, out int idx)
                    || !double.TryParse(tok[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                    throw new FormatException($"VNN-COMP result: bad pair near '{tok[i]}'.");
                (tok[i][0] == 'X' ? x : y)[idx] = v;
            }
        }
        static double[] Dense(SortedDictionary<int, double> d, char name)
        {
            var a = new double[d.Count];
            foreach (var (k, v) in d)
            {
                if (k < 0 || k >= a.Length) throw new FormatException($"VNN-COMP result: {name}_{k} is out of sequence.");
                a[k] = v;
            }
            return a;
        }
        return (status, Dense(x, 'X'), Dense(y, 'Y'));
    }
}
