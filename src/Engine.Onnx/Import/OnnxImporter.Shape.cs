using Engine.Graph;
using Engine.Onnx.Protobuf;
using Engine.Tensors;
using DataType = Engine.Onnx.Protobuf.TensorProto.Types.DataType;

namespace Engine.Onnx.Import;

// Layout and shape operators. On constants they fold; on graph values they become Flatten / Reshape / Transpose /
// Concat nodes with static shapes, where a leading dimension that passes through unchanged is written as 0 ("copy
// the input's") so that an imported graph also runs on other batch sizes.
internal sealed partial class OnnxImporter
{
    private void Flatten(OnnxAttributes a)
    {
        var x = In(0);
        int r = x.Rank;
        long axis = a.Int("axis", 1);
        if (axis < -r || axis > r) throw new InvalidDataException($"{_where}: axis {axis} is out of range for input {ShapeUtil.Format(x.Shape)}.");
        if (axis < 0) axis += r;
        int rows = 1, cols = 1;
        for (int d = 0; d < r; d++) { if (d < axis) rows *= x.Shape[d]; else cols *= x.Shape[d]; }
        if (!x.IsConst && axis == 1 && r >= 2)
        {
            SetOut(Emit(Out, new FlattenOp(1, -1), [x]));
            return;
        }
        SetOut(ReshapeSym(Out, x, [rows, cols]));
    }

    private void Reshape(OnnxAttributes a)
    {
        var x = In(0);
        var target = ConstIn(1, "shape").ToLongs($"{_where}: shape");
        bool allowZero = a.Int("allowzero", 0) != 0;
        var inShape = x.Shape;
        var outShape = new int[target.Length];
        int infer = -1;
        long known = 1;
        for (int i = 0; i < target.Length; i++)
        {
            long t = target[i];
            if (t == 0 && !allowZero)
            {
                if (i >= inShape.Length) throw new InvalidDataException($"{_where}: shape {OnnxTensors.FormatDims(target)} copies dimension {i}, but the input {ShapeUtil.Format(inShape)} has none.");
                t = inShape[i];
            }
            if (t == -1)
            {
                if (infer >= 0) throw new InvalidDataException($"{_where}: shape {OnnxTensors.FormatDims(target)} has more than one -1.");
                infer = i;
                continue;
            }
            if (t < 0 || t > int.MaxValue) throw new InvalidDataException($"{_where}: shape {OnnxTensors.FormatDims(target)} has an invalid entry {target[i]}.");
            outShape[i] = (int)t;
            known *= t;
        }
        long n = ShapeUtil.Numel(inShape);
        if (infer >= 0)
        {
            if (known == 0 || n % known != 0)
                throw new InvalidDataException($"{_where}: cannot reshape {ShapeUtil.Format(inShape)} to {OnnxTensors.FormatDims(target)}.");
            outShape[infer] = (int)(n / known);
        }
        else if (known != n)
            throw new InvalidDataException($"{_where}: cannot reshape {ShapeUtil.Format(inShape)} ({n} elements) to {OnnxTensors.FormatDims(target)}.");
        SetOut(ReshapeSym(Out, x, outShape));
    }

    /// <summary>x reshaped to <paramref name="shape"/> (folded for constants).</summary>
    private Sym ReshapeSym(string name, Sym x, int[] shape)
    {
        if (x.Const is { } c) return Sym.Of(c.Reshaped(shape));
        var inShape = x.Shape;
        if (inShape.SequenceEqual(shape)) return x;
        var target = (int[])shape.Clone();
        if (target.Length > 0 && inShape.Length > 0 && target[0] == inShape[0]) target[0] = 0;
        return Emit(name, new ReshapeOp(target), [x]);
    }

    private Sym TransposeSym(string name, Sym x, int[] perm)
    {
        if (x.Const is { } c) return Sym.Of(ConstOps.Transpose(c, perm));
        var shape = x.Shape;
        // A permutation that only moves size-1 dimensions keeps the memory order: a reshape, which is cheaper and
        // which every graph interpretation already handles.
        var moved = perm.Where(p => shape[p] != 1).ToArray();
        bool sameOrder = moved.Zip(moved.Skip(1)).All(t => t.First < t.Second);
        if (sameOrder) return ReshapeSym(name, x, perm.Select(p => shape[p]).ToArray());
        return Emit(name, new TransposeOp(perm), [x]);
    }

    private void Transpose(OnnxAttributes a)
    {
        var x = In(0);
        int r = x.Rank;
        var perm = a.Ints("perm") ?? Enumerable.Range(0, r).Reverse().Select(i => (long)i).ToArray();
        var seen = new bool[r];
        if (perm.Length != r || perm.Any(p => p < 0 || p >= r || seen[p] || !(seen[p] = true)))
            throw new InvalidDataException($"{_where}: perm {OnnxTensors.FormatDims(perm)} is not a permutation of the dimensions of {ShapeUtil.Format(x.Shape)}.");
        SetOut(TransposeSym(Out, x, perm.Select(p => (int)p).ToArray()));
    }

    /// <summary>Axes from the attribute (before opset 13) or from input 1 (opset 13 on); null when neither is given.</summary>
    private long[]? AxesArgument(OnnxAttributes a)
    {
        if (a.Ints("axes") is { } attr) return attr;
        return OptIn(1) is { } s ? (s.Const ?? throw new NotSupportedException($"{_where}: axes must be a constant.")).ToLongs($"{_where}: axes") : null;
    }

    private void Unsqueeze(OnnxAttributes a)
    {
        var x = In(0);
        var axes = AxesArgument(a) ?? throw new InvalidDataException($"{_where}: axes are required.");
        int outRank = x.Rank + axes.Length;
        var inserted = new bool[outRank];
        foreach (var ax in axes)
        {
            long d = ax < 0 ? ax + outRank : ax;
            if (d < 0 || d >= outRank || inserted[d])
                throw new InvalidDataException($"{_where}: axes {OnnxTensors.FormatDims(axes)} are invalid for input {ShapeUtil.Format(x.Shape)}.");
            inserted[d] = true;
        }
        var shape = new int[outRank];
        for (int d = 0, k = 0; d < outRank; d++) shape[d] = inserted[d] ? 1 : x.Shape[k++];
        SetOut(ReshapeSym(Out, x, shape));
    }

    private void Squeeze(OnnxAttributes a)
    {
        var x = In(0);
        var shape = x.Shape;
        var axes = AxesArgument(a);
        var drop = new bool[shape.Length];
        if (axes == null)
            for (int d = 0; d < shape.Length; d++) drop[d] = shape[d] == 1;
        else
            foreach (var ax in axes)
            {
                long d = ax < 0 ? ax + shape.Length : ax;
                if (d < 0 || d >= shape.Length || shape[d] != 1)
                    throw new InvalidDataException($"{_where}: cannot squeeze axis {ax} of input {ShapeUtil.Format(shape)}.");
                drop[d] = true;
            }
        SetOut(ReshapeSym(Out, x, shape.Where((_, d) => !drop[d]).ToArray()));
    }

    private void Gather(OnnxAttributes a)
    {
        var data = In(0);
        var indices = ConstIn(1, "indices");
        if (data.Const is not { } dc)
            throw new NotSupportedException($"{_where}: Gather is only supported on constant data (e.g. a folded Shape).");
        long axis = a.Int("axis", 0);
        if (axis < -dc.Rank || axis >= dc.Rank) throw new InvalidDataException($"{_where}: axis {axis} is out of range for data {ShapeUtil.Format(dc.Dims)}.");
        if (axis < 0) axis += dc.Rank;
        SetOut(Sym.Of(ConstOps.Gather(dc, indices, (int)axis, _where)));
    }

    private void Concat(OnnxAttributes a)
    {
        if (_node.Input.Count == 0) throw new InvalidDataException($"{_where}: no inputs.");
        var parts = Enumerable.Range(0, _node.Input.Count).Select(In).ToArray();
        if (!a.Has("axis")) throw new InvalidDataException($"{_where}: attribute axis is required.");
        long axis = a.Int("axis", 0);
        int r = parts[0].Rank;
        if (axis < -r || axis >= r) throw new InvalidDataException($"{_where}: axis {axis} is out of range for rank {r}.");
        if (axis < 0) axis += r;
        foreach (var p in parts)
        {
            bool ok = p.Rank == r;
            for (int d = 0; ok && d < r; d++) ok = d == axis || p.Shape[d] == parts[0].Shape[d];
            if (!ok)
                throw new InvalidDataException($"{_where}: shapes {string.Join(", ", parts.Select(q => ShapeUtil.Format(q.Shape)))} do not match outside axis {axis}.");
        }
        if (parts.All(p => p.IsConst))
        {
            SetOut(Sym.Of(ConstOps.Concat(parts.Select(p => p.Const!).ToArray(), (int)axis)));
            return;
        }
        SetOut(Emit(Out, new ConcatOp((int)axis), parts));
    }

    private void Shape(OnnxAttributes a)
    {
        var shape = In(0).Shape;
        int r = shape.Length;
        long start = a.Int("start", 0), end = a.Int("end", r);
        if (start < 0) start += r;
        if (end < 0) end += r;
        start = Math.Clamp(start, 0, r);
        end = Math.Clamp(end, start, r);
        SetOut(Sym.Of(ConstTensor.Ints(shape.Skip((int)start).Take((int)(end - start)).Select(d => (long)d).ToArray())));
    }

    private void Constant(OnnxAttributes a)
    {
        var which = a.OneOf("value", "value_float", "value_floats", "value_int", "value_ints", "sparse_value", "value_string", "value_strings")
            ?? throw new InvalidDataException($"{_where}: Constant has no value attribute.");
        ConstTensor c = which switch
        {
            "value" => OnnxTensors.Decode(a.Tensor("value")!, Out),
            "value_float" => ConstTensor.ScalarReal(a.Float("value_float", 0)),
            "value_floats" => new ConstTensor([a.Floats("value_floats")!.Length], a.Floats("value_floats")!.Select(v => (double)v).ToArray(), ConstKind.Real),
            "value_int" => new ConstTensor([], [a.Int("value_int", 0)], ConstKind.Integer),
            "value_ints" => ConstTensor.Ints(a.Ints("value_ints")!),
            _ => throw new NotSupportedException($"{_where}: Constant with {which} is not supported."),
        };
        // A Constant node's tensor is a derived constant, not a named initializer.
        SetOut(Sym.Of(new ConstTensor(c.Dims, c.Data, c.Kind)));
    }

    private void ConstantOfShape(OnnxAttributes a)
    {
        var dims = OnnxTensors.Dims(ConstIn(0, "shape").ToLongs($"{_where}: shape"), $"{_where} output");
        var value = a.Tensor("value") is { } t ? OnnxTensors.Decode(t, Out) : ConstTensor.ScalarReal(0);
        if (value.Numel != 1) throw new InvalidDataException($"{_where}: value must hold one element, got {value.Numel}.");
        var data = new double[ShapeUtil.Numel(dims)];
        Array.Fill(data, value.Data[0]);
        SetOut(Sym.Of(new ConstTensor(dims, data, value.Kind)));
    }

    private void Cast(OnnxAttributes a)
    {
        var x = In(0);
        long to = a.Int("to", 0);
        var type = (DataType)to;
        bool real = type is DataType.Float or DataType.Double or DataType.Float16 or DataType.Bfloat16;
        bool integer = type is DataType.Int8 or DataType.Uint8 or DataType.Int16 or DataType.Uint16 or DataType.Int32
            or DataType.Uint32 or DataType.Int64 or DataType.Uint64 or DataType.Bool;
        if (!real && !integer) throw new NotSupportedException($"{_where}: Cast to {OnnxTensors.DescribeType((int)to)} is not supported.");
        if (x.Const is { } c)
        {
            var r = type == DataType.Bool ? ConstOps.Map(c, v => v != 0 ? 1 : 0).WithKind(ConstKind.Integer) : c.WithKind(real ? ConstKind.Real : ConstKind.Integer);
            SetOut(Sym.Of(r));
            return;
        }
        // Graph values are float32 throughout; a cast to another real type is the identity here.
        if (!real) throw new NotSupportedException($"{_where}: Cast of a computed value to {type.ToString().ToUpperInvariant()} is not supported.");
        SetOut(x);
    }

    private void Slice(OnnxAttributes a)
    {
        var x = In(0);
        if (x.Const is not { } c) throw new NotSupportedException($"{_where}: Slice is only supported on constant data.");
        long[] starts, ends;
        long[]? axes, steps;
        if (_opset < 10)
        {
            starts = a.Ints("starts") ?? throw new InvalidDataException($"{_where}: starts are required.");
            ends = a.Ints("ends") ?? throw new InvalidDataException($"{_where}: ends are required.");
            axes = a.Ints("axes");
            steps = null;
        }
        else
        {
            starts = ConstIn(1, "starts").ToLongs($"{_where}: starts");
            ends = ConstIn(2, "ends").ToLongs($"{_where}: ends");
            axes = OptIn(3) is { } ax ? (ax.Const ?? throw new NotSupportedException($"{_where}: axes must be constant.")).ToLongs($"{_where}: axes") : null;
            steps = OptIn(4) is { } st ? (st.Const ?? throw new NotSupportedException($"{_where}: steps must be constant.")).ToLongs($"{_where}: steps") : null;
        }
        int r = c.Rank;
        axes ??= Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
        steps ??= Enumerable.Repeat(1L, starts.Length).ToArray();
        if (ends.Length != starts.Length || axes.Length != starts.Length || steps.Length != starts.Length)
            throw new InvalidDataException($"{_where}: starts, ends, axes and steps differ in length.");
        var st0 = new long[r];
        var step = Enumerable.Repeat(1L, r).ToArray();
        var outDims = (int[])c.Dims.Clone();
        var done = new bool[r];
        for (int i = 0; i < starts.Length; i++)
        {
            long ax = axes[i] < 0 ? axes[i] + r : axes[i];
            if (ax < 0 || ax >= r || done[ax]) throw new InvalidDataException($"{_where}: axes {OnnxTensors.FormatDims(axes)} are invalid for rank {r}.");
            done[ax] = true;
            long dim = c.Dims[ax], s = steps[i];
            if (s == 0) throw new InvalidDataException($"{_where}: a step is 0.");
            long b = starts[i] < 0 ? starts[i] + dim : starts[i];
            long e = ends[i] < 0 ? ends[i] + dim : ends[i];
            if (s > 0) { b = Math.Clamp(b, 0, dim); e = Math.Clamp(e, 0, dim); }
            else { b = Math.Clamp(b, 0, dim - 1); e = Math.Clamp(e, -1, dim - 1); }
            long len = s > 0 ? Math.Max(0, (e - b + s - 1) / s) : Math.Max(0, (b - e + (-s) - 1) / (-s));
            st0[ax] = b; step[ax] = s; outDims[ax] = (int)len;
        }
        SetOut(Sym.Of(ConstOps.Slice(c, st0, step, outDims)));
    }
}
