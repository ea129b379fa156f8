using Engine.Tensors;

namespace Engine.Onnx.Import;

/// <summary>Whether a folded constant holds integers (shapes, indices, axes) or reals.</summary>
internal enum ConstKind { Real, Integer }

/// <summary>
/// A tensor known at import time: an initializer, a Constant node or anything folded from them. Values are kept
/// as doubles so that int64 shape arithmetic is exact (integers up to 2^53) and float32 data round-trips; one
/// +, -, * or / of two float32 values computed in double and rounded back to float32 is the float32 result.
/// </summary>
internal sealed class ConstTensor
{
    public ConstTensor(int[] dims, double[] data, ConstKind kind, string? name = null)
    {
        if (ShapeUtil.Numel(dims) != data.Length)
            throw new InvalidDataException($"ONNX: tensor '{name}' has {data.Length} values for shape {ShapeUtil.Format(dims)}.");
        Dims = dims; Data = data; Kind = kind; Name = name;
    }

    public int[] Dims { get; }
    public double[] Data { get; }
    public ConstKind Kind { get; }

    /// <summary>The initializer's name when the tensor is one, unchanged; null for derived tensors.</summary>
    public string? Name { get; }

    public int Rank => Dims.Length;
    public int Numel => Data.Length;

    public static ConstTensor Ints(params long[] values) => new([values.Length], values.Select(v => (double)v).ToArray(), ConstKind.Integer);

    public static ConstTensor ScalarReal(double v) => new([], [v], ConstKind.Real);

    /// <summary>The float32 engine tensor with these values.</summary>
    public Tensor ToTensor()
    {
        var f = new float[Data.Length];
        for (int i = 0; i < f.Length; i++) f[i] = (float)Data[i];
        return Tensor.FromArray(f, (int[])Dims.Clone());
    }

    public static ConstTensor FromTensor(Tensor t, string? name = null)
        => new(t.Shape, t.ToArray().Select(v => (double)v).ToArray(), ConstKind.Real, name);

    /// <summary>The values as int64, for shapes, axes and indices; throws when one is not an integer.</summary>
    public long[] ToLongs(string what)
    {
        var r = new long[Data.Length];
        for (int i = 0; i < r.Length; i++)
        {
            double v = Data[i];
            if (v != Math.Floor(v) || Math.Abs(v) > 9.0e15)
                throw new InvalidDataException($"ONNX: {what} must hold integers, got {v}.");
            r[i] = (long)v;
        }
        return r;
    }

    public ConstTensor Reshaped(int[] dims) => new(dims, Data, Kind, null);

    /// <summary>The same values under a graph-value name (a layer weight derived from an initializer keeps its name).</summary>
    public ConstTensor Named(string? name) => new(Dims, Data, Kind, name);

    public ConstTensor WithKind(ConstKind kind)
    {
        if (kind == Kind) return this;
        return new ConstTensor(Dims, kind == ConstKind.Integer ? Data.Select(Math.Truncate).ToArray() : Data, kind);
    }
}
