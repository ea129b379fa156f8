namespace Engine.Tensors;

/// <summary>Shape arithmetic shared by every op: element counts, strides, broadcasting, axis normalisation.</summary>
public static class ShapeUtil
{
    /// <summary>Number of elements of a shape; throws on negative dimensions or overflow past int.MaxValue.</summary>
    public static int Numel(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape {Format(shape)}.");
            n *= d;
            if (n > int.MaxValue) throw new ArgumentException($"Shape {Format(shape)} has more than {int.MaxValue} elements.");
        }
        return (int)n;
    }

    /// <summary>Row-major (C order) strides in elements.</summary>
    public static int[] Strides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= shape[i]; }
        return s;
    }

    /// <summary>"[2, 3, 4]".</summary>
    public static string Format(ReadOnlySpan<int> shape)
    {
        var parts = new string[shape.Length];
        for (int i = 0; i < shape.Length; i++) parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "[" + string.Join(", ", parts) + "]";
    }

    /// <summary>Maps a possibly negative axis into [0, rank); throws naming the rank if out of range.</summary>
    public static int NormalizeAxis(int axis, int rank)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw new ArgumentOutOfRangeException(nameof(axis), $"Axis {axis} is out of range for a tensor of rank {rank}.");
        return a;
    }

    /// <summary>NumPy broadcasting of two shapes; throws naming both shapes when incompatible.</summary>
    public static int[] Broadcast(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var r = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i - (rank - a.Length) >= 0 ? a[i - (rank - a.Length)] : 1;
            int db = i - (rank - b.Length) >= 0 ? b[i - (rank - b.Length)] : 1;
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"Shapes {Format(a)} and {Format(b)} cannot be broadcast together (dimension {i}: {da} vs {db}).");
            r[i] = da == 1 ? db : da;
        }
        return r;
    }

    /// <summary>Strides of <paramref name="shape"/> viewed as <paramref name="target"/> under broadcasting (0 where broadcast).</summary>
    public static int[] BroadcastStrides(ReadOnlySpan<int> shape, ReadOnlySpan<int> target)
    {
        var strides = Strides(shape);
        var r = new int[target.Length];
        int off = target.Length - shape.Length;
        if (off < 0) throw new ArgumentException($"Cannot broadcast shape {Format(shape)} to {Format(target)}.");
        for (int i = 0; i < target.Length; i++)
        {
            if (i < off) { r[i] = 0; continue; }
            int d = shape[i - off];
            if (d == target[i]) r[i] = d == 1 ? 0 : strides[i - off];
            else if (d == 1) r[i] = 0;
            else throw new ArgumentException($"Cannot broadcast shape {Format(shape)} to {Format(target)}.");
        }
        return r;
    }

    /// <summary>Resolves one -1 entry of a reshape target and checks the element count.</summary>
    public static int[] ResolveReshape(ReadOnlySpan<int> from, ReadOnlySpan<int> to)
    {
        var r = to.ToArray();
        int infer = -1; long known = 1;
        for (int i = 0; i < r.Length; i++)
        {
            if (r[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"Reshape target {Format(to)} has more than one -1.");
                infer = i;
            }
            else if (r[i] < 0) throw new ArgumentException($"Reshape target {Format(to)} has a negative dimension.");
            else known *= r[i];
        }
        int n = Numel(from);
        if (infer >= 0)
        {
            if (known == 0 || n % known != 0) throw new ArgumentException($"Cannot reshape {Format(from)} ({n} elements) to {Format(to)}.");
            r[infer] = (int)(n / known);
        }
        else if (known != n) throw new ArgumentException($"Cannot reshape {Format(from)} ({n} elements) to {Format(to)} ({known} elements).");
        return r;
    }

    /// <summary>True when both shapes have the same rank and dimensions.</summary>
    public static bool SameShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    /// <summary>
    /// Simplifies a permutation without changing its effect: drops size-1 dimensions and merges input dimensions
    /// that stay adjacent and in order in the output, so e.g. [N, C, H, W] -> [N, H, W, C] becomes [N, C, HW] -> [N, HW, C].
    /// </summary>
    internal static (int[] dims, int[] perm) CoalescePermutation(int[] shape, int[] perm)
    {
        int rank = shape.Length;
        var newIndex = new int[rank];
        int kept = 0;
        for (int d = 0; d < rank; d++) newIndex[d] = shape[d] == 1 ? -1 : kept++;
        var pf = new List<int>(kept);
        foreach (int d in perm) if (newIndex[d] >= 0) pf.Add(newIndex[d]);
        var dimsF = new int[kept];
        for (int d = 0; d < rank; d++) if (newIndex[d] >= 0) dimsF[newIndex[d]] = shape[d];

        var runStart = new List<int>(); var runLen = new List<int>();
        foreach (int d in pf)
        {
            if (runStart.Count > 0 && runStart[^1] + runLen[^1] == d) runLen[^1]++;
            else { runStart.Add(d); runLen.Add(1); }
        }
        int rr = runStart.Count;
        var order = Enumerable.Range(0, rr).OrderBy(i => runStart[i]).ToArray();
        var rank2 = new int[rr];
        for (int i = 0; i < rr; i++) rank2[order[i]] = i;
        var dims = new int[rr]; var p = new int[rr];
        for (int k = 0; k < rr; k++)
        {
            int size = 1;
            for (int d = runStart[k]; d < runStart[k] + runLen[k]; d++) size *= dimsF[d];
            dims[rank2[k]] = size;
            p[k] = rank2[k];
        }
        return (dims, p);
    }
}
