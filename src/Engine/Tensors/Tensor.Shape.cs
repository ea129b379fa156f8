using Engine.Autograd;

namespace Engine.Tensors;

// Layout ops. Each one copies into a new contiguous tensor (only Reshape and NarrowRows are views) and
// records a backward rule built from the inverse layout kernel.
public sealed partial class Tensor
{
    /// <summary>
    /// Reorders dimensions: result dimension i is this tensor's dimension dims[i] (negative counts from the end),
    /// like torch.permute, but as a contiguous copy. Differentiable.
    /// </summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank)
            throw new ArgumentException($"Permute: {dims.Length} dimensions ({ShapeUtil.Format(dims)}) given for a tensor of shape {ShapeUtil.Format(Dims)}.");
        var perm = new int[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = dims[i] < 0 ? dims[i] + Rank : dims[i];
            if (d < 0 || d >= Rank || seen[d])
                throw new ArgumentException($"Permute: {ShapeUtil.Format(dims)} is not a permutation of the dimensions of shape {ShapeUtil.Format(Dims)}.");
            seen[d] = true; perm[i] = d;
        }
        var outShape = new int[Rank];
        for (int i = 0; i < Rank; i++) outShape[i] = Dims[perm[i]];
        var r = NewEmpty(outShape);
        K.Permute(Buf, Dims, perm, r.Buf);
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++) inverse[perm[i]] = i;
        return GradRecorder.Record(r, this, (g, _) => [g.Permute(inverse)]);
    }

    /// <summary>Swaps two dimensions (a contiguous copy, like torch.transpose(...).contiguous()). Differentiable.</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        int a = CheckDim(dim0, "Transpose"), b = CheckDim(dim1, "Transpose");
        var perm = new int[Rank];
        for (int i = 0; i < Rank; i++) perm[i] = i;
        perm[a] = b; perm[b] = a;
        return Permute(perm);
    }

    /// <summary>
    /// Elements [start, start+length) along <paramref name="dim"/>, as a copy (<see cref="NarrowRows"/> is the
    /// no-copy view along dimension 0). Differentiable.
    /// </summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        int d = CheckDim(dim, "Narrow");
        if (start < 0 || length < 0 || (long)start + length > Dims[d])
            throw new ArgumentOutOfRangeException(nameof(start), $"Narrow: range [{start}, {(long)start + length}) is outside dimension {d} of shape {ShapeUtil.Format(Dims)}.");
        return SliceCore(d, start, 1, length, nameof(Narrow));
    }

    /// <summary>
    /// Python-style slice start:end:step along <paramref name="dim"/> (negative start/end count from the end and
    /// out-of-range bounds are clamped, as in x[start:end:step]); step must be positive. A copy. Differentiable.
    /// </summary>
    public Tensor Slice(int dim, int start, int end, int step = 1)
    {
        int d = CheckDim(dim, "Slice");
        if (step < 1) throw new ArgumentException($"Slice: step must be positive, got {step} (shape {ShapeUtil.Format(Dims)}).");
        int size = Dims[d];
        long s = start < 0 ? (long)start + size : start, e = end < 0 ? (long)end + size : end;
        s = Math.Clamp(s, 0, size); e = Math.Clamp(e, 0, size);
        int count = e > s ? (int)((e - s + step - 1) / step) : 0;
        return SliceCore(d, (int)s, step, count, nameof(Slice));
    }

    private Tensor SliceCore(int d, int start, int step, int count, string op)
    {
        var (outer, dimIn, inner) = SplitAt(Dims, d);
        var shape = Shape; shape[d] = count;
        var r = NewEmpty(shape);
        K.SliceCopy(Buf, r.Buf, outer, dimIn, inner, start, step, count);
        return GradRecorder.Record(r, this, (g, x) =>
        {
            var dx = Zeros(x.Dims, x.Device);
            dx.K.SliceScatter(g.Buf, dx.Buf, outer, dimIn, inner, start, step, count);
            return [dx];
        }, op);
    }

    /// <summary>
    /// Joins tensors along an existing dimension; all must have the same rank, device and sizes except along
    /// <paramref name="dim"/>. Differentiable.
    /// </summary>
    public static Tensor Concat(Tensor[] tensors, int dim = 0)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length == 0) throw new ArgumentException("Concat: needs at least one tensor.");
        var first = tensors[0];
        if (first.Rank == 0) throw new ArgumentException("Concat: zero-dimensional tensors cannot be concatenated; use Stack.");
        int d = first.CheckDim(dim, "Concat");
        int total = 0;
        foreach (var t in tensors)
        {
            CheckSameDevice(first, t, "Concat");
            bool ok = t.Rank == first.Rank;
            for (int i = 0; ok && i < first.Rank; i++) ok = i == d || t.Dims[i] == first.Dims[i];
            if (!ok)
                throw new ArgumentException($"Concat: shapes {string.Join(", ", tensors.Select(x => ShapeUtil.Format(x.Dims)))} do not match outside dimension {d}.");
            total += t.Dims[d];
        }
        var shape = first.Shape; shape[d] = total;
        var r = first.NewEmpty(shape);
        var (outer, _, inner) = SplitAt(shape, d);
        var offsets = new int[tensors.Length];
        for (int i = 0, off = 0; i < tensors.Length; i++)
        {
            offsets[i] = off;
            r.K.SliceScatter(tensors[i].Buf, r.Buf, outer, total, inner, off, 1, tensors[i].Dims[d]);
            off += tensors[i].Dims[d];
        }
        return GradRecorder.Record(r, tensors, (g, ins) =>
        {
            var grads = new Tensor?[ins.Length];
            for (int i = 0; i < ins.Length; i++)
            {
                if (!ins[i].RequiresGrad) continue;
                var gi = g.NewEmpty(ins[i].Dims);
                g.K.SliceCopy(g.Buf, gi.Buf, outer, total, inner, offsets[i], 1, ins[i].Dims[d]);
                grads[i] = gi;
            }
            return grads;
        });
    }

    /// <summary>Joins same-shaped tensors along a new dimension <paramref name="dim"/> (in [-(rank+1), rank]). Differentiable.</summary>
    public static Tensor Stack(Tensor[] tensors, int dim = 0)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length == 0) throw new ArgumentException("Stack: needs at least one tensor.");
        var first = tensors[0];
        foreach (var t in tensors)
            if (!ShapeUtil.SameShape(t.Dims, first.Dims))
                throw new ArgumentException($"Stack: all tensors need the same shape, got {string.Join(", ", tensors.Select(x => ShapeUtil.Format(x.Dims)))}.");
        int r = first.Rank + 1;
        int d = dim < 0 ? dim + r : dim;
        if (d < 0 || d >= r) throw new ArgumentOutOfRangeException(nameof(dim), $"Stack: dimension {dim} is out of range for stacking tensors of shape {ShapeUtil.Format(first.Dims)}.");
        return Concat([.. tensors.Select(t => t.Unsqueeze(d))], d);
    }

    /// <summary>
    /// The slices at <paramref name="indices"/> along <paramref name="dim"/>, in that order (repeats allowed), as a
    /// copy; e.g. a mini-batch of rows. Differentiable (repeated indices accumulate their gradients).
    /// </summary>
    public Tensor IndexSelect(int dim, int[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int d = CheckDim(dim, "IndexSelect");
        // The backward pass keeps the indices: a private copy then, so that the caller may reuse its array.
        var idx = Autograd.GradRecorder.ShouldRecord(this) ? (int[])indices.Clone() : indices;
        // Vectorised range check (bound propagation gathers tens of thousands of rows a call); the loop only names the culprit.
        if (idx.Length > 0 && (System.Numerics.Tensors.TensorPrimitives.Min<int>(idx) < 0 || System.Numerics.Tensors.TensorPrimitives.Max<int>(idx) >= Dims[d]))
            foreach (int i in idx)
                if (i < 0 || i >= Dims[d])
                    throw new ArgumentOutOfRangeException(nameof(indices), $"IndexSelect: index {i} is out of range for dimension {d} of shape {ShapeUtil.Format(Dims)}.");
        var (outer, dimIn, inner) = SplitAt(Dims, d);
        var shape = Shape; shape[d] = idx.Length;
        var r = NewEmpty(shape);
        K.IndexSelect(Buf, r.Buf, outer, dimIn, inner, idx);
        return GradRecorder.Record(r, this, (g, x) =>
        {
            var dx = Zeros(x.Dims, x.Device);
            dx.K.IndexAdd(g.Buf, dx.Buf, outer, dimIn, inner, idx);
            return [dx];
        });
    }

    /// <summary>Normalises a dimension index, naming the op and shape when it is out of range.</summary>
    private int CheckDim(int dim, string op)
    {
        int d = dim < 0 ? dim + Rank : dim;
        if (d < 0 || d >= Rank)
            throw new ArgumentOutOfRangeException(nameof(dim), $"{op}: dimension {dim} is out of range for shape {ShapeUtil.Format(Dims)}.");
        return d;
    }

    /// <summary>Views a shape as [outer, shape[d], inner] around dimension d.</summary>
    private static (int outer, int dim, int inner) SplitAt(int[] shape, int d)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < d; i++) outer *= shape[i];
        for (int i = d + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, shape[d], inner);
    }
}
