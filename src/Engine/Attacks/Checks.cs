using Engine.Tensors;

namespace Engine.Attacks;

// Argument checks shared by the attacks; each message names the attack and the shapes or values at fault.
internal static class Checks
{
    public static void Batch(string op, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.Rank < 1 || x.Dims[0] < 1 || x.Numel == 0)
            throw new ArgumentException($"{op}: the input must be a non-empty batch [N, ...], got {ShapeUtil.Format(x.Dims)}.");
    }

    public static void Labels(string op, Tensor x, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        Tensor.CheckSameDevice(x, labels, op);
        if (labels.Rank != 1 || labels.Dims[0] != x.Dims[0])
            throw new ArgumentException($"{op}: labels must be [{x.Dims[0]}] class indices for input {ShapeUtil.Format(x.Dims)}, got {ShapeUtil.Format(labels.Dims)}.");
    }

    /// <summary>Checks the logits [N, C] (C ≥ 2) and that every label indexes a class; returns the one-hot [N, C].</summary>
    public static Tensor LogitsAndLabels(string op, Tensor logits, Tensor labels)
    {
        int n = labels.Dims[0];
        if (logits.Rank != 2 || logits.Dims[0] != n || logits.Dims[1] < 2)
            throw new ArgumentException($"{op}: the model must return logits [{n}, C] with C >= 2, got {ShapeUtil.Format(logits.Dims)}.");
        int c = logits.Dims[1];
        var t = labels.ToArray();
        for (int i = 0; i < t.Length; i++)
            if (!(t[i] >= 0 && t[i] < c) || t[i] != MathF.Floor(t[i]))
                throw new ArgumentException($"{op}: label {i} is {t[i]}, not a class index in [0, {c}).");
        return Tensor.OneHot(labels, c);
    }

    public static void Domain(string op, Tensor x, float clipLow, float clipHigh)
    {
        if (!(clipLow <= clipHigh)) throw new ArgumentException($"{op}: clipLow {clipLow} must be <= clipHigh {clipHigh}.");
        float lo = x.Min().Item(), hi = x.Max().Item();
        if (float.IsNaN(lo) || float.IsNaN(hi)) throw new ArgumentException($"{op}: the input contains NaN.");
        if (lo < clipLow || hi > clipHigh)
            throw new ArgumentException($"{op}: the input spans [{lo}, {hi}], outside the domain [{clipLow}, {clipHigh}]; pass the domain the data lives in.");
    }

    public static void Box(string op, Tensor lower, Tensor upper)
    {
        ArgumentNullException.ThrowIfNull(lower);
        ArgumentNullException.ThrowIfNull(upper);
        Batch(op, lower);
        Tensor.CheckSameDevice(lower, upper, op);
        if (!ShapeUtil.SameShape(lower.Dims, upper.Dims))
            throw new ArgumentException($"{op}: lower {ShapeUtil.Format(lower.Dims)} and upper {ShapeUtil.Format(upper.Dims)} must have the same shape.");
        var lo = lower.ToArray();
        var hi = upper.ToArray();
        for (int i = 0; i < lo.Length; i++)
        {
            if (!float.IsFinite(lo[i]) || !float.IsFinite(hi[i]))
                throw new ArgumentException($"{op}: box element {i} is [{lo[i]}, {hi[i]}]; bounds must be finite.");
            if (lo[i] > hi[i])
                throw new ArgumentException($"{op}: box element {i} has lower {lo[i]} > upper {hi[i]}.");
        }
    }
}
