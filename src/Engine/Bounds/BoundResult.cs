using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>Lower and upper bounds, [batch, specs] (or [batch, outputs] without a spec), on C·f(x) over the set.</summary>
public sealed class BoundResult
{
    /// <summary>Wraps the bound tensors.</summary>
    public BoundResult(Tensor lower, Tensor upper)
    {
        ArgumentNullException.ThrowIfNull(lower);
        ArgumentNullException.ThrowIfNull(upper);
        if (!ShapeUtil.SameShape(lower.Dims, upper.Dims))
            throw new ArgumentException($"BoundResult: lower {ShapeUtil.Format(lower.Dims)} and upper {ShapeUtil.Format(upper.Dims)} differ in shape.");
        Lower = lower; Upper = upper;
    }

    /// <summary>Lower bounds [batch, rows].</summary>
    public Tensor Lower { get; }

    /// <summary>Upper bounds [batch, rows] (+infinity where not computed).</summary>
    public Tensor Upper { get; }

    /// <summary>Per example: true when every row's lower bound is above <paramref name="threshold"/> (e.g. all margins &gt; 0).</summary>
    public bool[] Verified(float threshold = 0f)
    {
        var l = Lower.ToArray();
        int b = Lower.Size(0), r = Lower.Numel / Math.Max(1, b);
        var ok = new bool[b];
        for (int i = 0; i < b; i++)
        {
            ok[i] = true;
            for (int j = 0; j < r; j++) ok[i] &= l[i * r + j] > threshold;
        }
        return ok;
    }
}
