using Engine.Tensors;

namespace Engine.Nn;

/// <summary>Classification accuracy counts, shared by the trainers, the CLI and the benchmarks.</summary>
public static class Accuracy
{
    /// <summary>
    /// How many rows of <paramref name="logits"/> [B, C] have their largest value (the first one on ties) at the class
    /// index in <paramref name="targets"/> [B].
    /// </summary>
    public static int CountCorrect(Tensor logits, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        var l = logits.ToArray();
        var t = targets.ToArray();
        int rows = t.Length;
        if (rows == 0) return 0;
        if (l.Length % rows != 0)
            throw new ArgumentException($"Accuracy: logits {ShapeUtil.Format(logits.Dims)} do not have one row per target ({rows}).");
        int classes = l.Length / rows, correct = 0;
        for (int r = 0; r < rows; r++)
        {
            var row = l.AsSpan(r * classes, classes);
            int best = 0;
            for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
            if (best == (int)t[r]) correct++;
        }
        return correct;
    }
}
