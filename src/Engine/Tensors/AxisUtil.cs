namespace Engine.Tensors;

/// <summary>Axis bookkeeping of the reduction and softmax ops: validation and the [outer, size, inner] view.</summary>
internal static class AxisUtil
{
    /// <summary>Normalises a possibly negative axis; the ArgumentException names the op and the shape.</summary>
    public static int Check(int[] dims, int axis, string op)
    {
        int a = axis < 0 ? axis + dims.Length : axis;
        if (a < 0 || a >= dims.Length)
            throw new ArgumentException($"{op}: axis {axis} is out of range for shape {ShapeUtil.Format(dims)} (rank {dims.Length}).");
        return a;
    }

    /// <summary>A reduction mask with only <paramref name="axis"/> set.</summary>
    public static bool[] Only(int axis, int rank)
    {
        var m = new bool[rank];
        m[axis] = true;
        return m;
    }

    /// <summary>(outer, size, inner) for working along dims[first..last] of a row-major shape.</summary>
    public static (int outer, int size, int inner) OuterSizeInner(int[] dims, int first, int last)
    {
        int outer = 1, size = 1, inner = 1;
        for (int d = 0; d < first; d++) outer *= dims[d];
        for (int d = first; d <= last; d++) size *= dims[d];
        for (int d = last + 1; d < dims.Length; d++) inner *= dims[d];
        return (outer, size, inner);
    }

    /// <summary>The shape after reducing the masked axes: dropped, or kept as 1 with keepDim.</summary>
    public static int[] ReducedShape(int[] dims, bool[] reduced, bool keepDim)
    {
        var s = new List<int>(dims.Length);
        for (int d = 0; d < dims.Length; d++)
            if (!reduced[d]) s.Add(dims[d]);
            else if (keepDim) s.Add(1);
        return [.. s];
    }
}
