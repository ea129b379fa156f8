using Engine.Tensors;

namespace Engine.Onnx.Import;

/// <summary>Import-time evaluation of layout and arithmetic ops on constants, exact for int64 shape arithmetic.</summary>
internal static class ConstOps
{
    /// <summary>Elementwise a op b with numpy broadcasting; integer when both are integers (division truncates, like ONNX Runtime).</summary>
    public static ConstTensor Binary(ConstTensor a, ConstTensor b, char op, string where)
    {
        int[] shape;
        try { shape = ShapeUtil.Broadcast(a.Dims, b.Dims); }
        catch (ArgumentException)
        {
            throw new InvalidDataException($"{where}: shapes {ShapeUtil.Format(a.Dims)} and {ShapeUtil.Format(b.Dims)} cannot be broadcast together.");
        }
        bool ints = a.Kind == ConstKind.Integer && b.Kind == ConstKind.Integer;
        var sa = ShapeUtil.BroadcastStrides(a.Dims, shape);
        var sb = ShapeUtil.BroadcastStrides(b.Dims, shape);
        int n = ShapeUtil.Numel(shape);
        var r = new double[n];
        var idx = new int[shape.Length];
        for (int i = 0; i < n; i++)
        {
            long ia = 0, ib = 0;
            for (int d = 0; d < shape.Length; d++) { ia += (long)idx[d] * sa[d]; ib += (long)idx[d] * sb[d]; }
            double x = a.Data[ia], y = b.Data[ib];
            double v = op switch
            {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                _ => ints ? (y == 0 ? throw new InvalidDataException($"{where}: integer division by zero.") : Math.Truncate(x / y)) : x / y,
            };
            // Real constants are float32 tensors: round as float32 arithmetic would.
            r[i] = ints ? v : (float)v;
            for (int d = shape.Length - 1; d >= 0 && ++idx[d] == shape[d]; d--) idx[d] = 0;
        }
        return new ConstTensor(shape, r, ints ? ConstKind.Integer : ConstKind.Real);
    }

    public static ConstTensor Map(ConstTensor a, Func<double, double> f)
        => new((int[])a.Dims.Clone(), a.Data.Select(v => a.Kind == ConstKind.Real ? (float)f(v) : f(v)).ToArray(), a.Kind);

    public static ConstTensor Transpose(ConstTensor a, int[] perm)
    {
        int r = a.Rank;
        var outDims = perm.Select(p => a.Dims[p]).ToArray();
        var inStrides = ShapeUtil.Strides(a.Dims);
        var data = new double[a.Numel];
        var idx = new int[r];
        for (int i = 0; i < data.Length; i++)
        {
            long src = 0;
            for (int d = 0; d < r; d++) src += (long)idx[d] * inStrides[perm[d]];
            data[i] = a.Data[src];
            for (int d = r - 1; d >= 0 && ++idx[d] == outDims[d]; d--) idx[d] = 0;
        }
        return new ConstTensor(outDims, data, a.Kind);
    }

    /// <summary>ONNX Gather: out = data.shape[:axis] + indices.shape + data.shape[axis+1:].</summary>
    public static ConstTensor Gather(ConstTensor data, ConstTensor indices, int axis, string where)
    {
        int size = data.Dims[axis];
        var idx = indices.ToLongs($"{where}: indices");
        int outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= data.Dims[d];
        for (int d = axis + 1; d < data.Rank; d++) inner *= data.Dims[d];
        var outDims = data.Dims.Take(axis).Concat(indices.Dims).Concat(data.Dims.Skip(axis + 1)).ToArray();
        var r = new double[(long)outer * idx.Length * inner];
        for (int o = 0; o < outer; o++)
            for (int k = 0; k < idx.Length; k++)
            {
                long j = idx[k] < 0 ? idx[k] + size : idx[k];
                if (j < 0 || j >= size) throw new InvalidDataException($"{where}: index {idx[k]} is out of range for axis {axis} of size {size}.");
                Array.Copy(data.Data, ((long)o * size + j) * inner, r, ((long)o * idx.Length + k) * inner, inner);
            }
        return new ConstTensor(outDims, r, data.Kind);
    }

    public static ConstTensor Concat(ConstTensor[] parts, int axis)
    {
        var first = parts[0];
        var dims = (int[])first.Dims.Clone();
        dims[axis] = parts.Sum(p => p.Dims[axis]);
        int outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= dims[d];
        for (int d = axis + 1; d < dims.Length; d++) inner *= dims[d];
        var r = new double[ShapeUtil.Numel(dims)];
        long pos = 0;
        for (int o = 0; o < outer; o++)
            foreach (var p in parts)
            {
                int len = p.Dims[axis] * inner;
                Array.Copy(p.Data, (long)o * len, r, pos, len);
                pos += len;
            }
        var kind = parts.All(p => p.Kind == ConstKind.Integer) ? ConstKind.Integer : ConstKind.Real;
        return new ConstTensor(dims, r, kind);
    }

    /// <summary>ONNX Slice with per-axis start, end and step already clamped (see OnnxImporter.Slice).</summary>
    public static ConstTensor Slice(ConstTensor a, long[] starts, long[] steps, int[] outDims)
    {
        var inStrides = ShapeUtil.Strides(a.Dims);
        var data = new double[ShapeUtil.Numel(outDims)];
        var idx = new int[outDims.Length];
        for (int i = 0; i < data.Length; i++)
        {
            long src = 0;
            for (int d = 0; d < idx.Length; d++) src += (starts[d] + idx[d] * steps[d]) * inStrides[d];
            data[i] = a.Data[src];
            for (int d = idx.Length - 1; d >= 0 && ++idx[d] == outDims[d]; d--) idx[d] = 0;
        }
        return new ConstTensor(outDims, data, a.Kind);
    }
}
