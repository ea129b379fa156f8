using Engine.Autograd;

namespace Engine.Tensors;

// Reductions (Sum, Mean, Max, Min, LogSumExp, ArgMax, ArgMin) and the broadcast pair Expand / SumToShape.
// A reduction over several axes runs as few kernel calls as possible: axes that are adjacent once size-1
// dimensions are ignored merge into one [outer, size, inner] pass; separate runs reduce one after another,
// largest first. Every reduction of one run at a time is exact for Sum/Max/Min and mathematically exact for
// Mean (equal counts) and LogSumExp (lse of lse), so results do not depend on the grouping.
public sealed partial class Tensor
{
    /// <summary>Sum over <paramref name="axes"/> (null: all axes; an empty array: none). 0 over an empty axis.</summary>
    public Tensor Sum(int[]? axes = null, bool keepDim = false) => ReduceAxes(ReduceOp.Sum, axes, keepDim, "Sum");
    /// <summary>Sum over one axis.</summary>
    public Tensor Sum(int axis, bool keepDim = false) => Sum([axis], keepDim);

    /// <summary>Mean over <paramref name="axes"/> (null: all axes). NaN over an empty axis.</summary>
    public Tensor Mean(int[]? axes = null, bool keepDim = false) => ReduceAxes(ReduceOp.Mean, axes, keepDim, "Mean");
    /// <summary>Mean over one axis.</summary>
    public Tensor Mean(int axis, bool keepDim = false) => Mean([axis], keepDim);

    /// <summary>
    /// Maximum over <paramref name="axes"/> (null: all axes); NaN if any reduced element is NaN. The gradient is
    /// split evenly among the elements equal to the maximum (ties share it).
    /// </summary>
    public Tensor Max(int[]? axes = null, bool keepDim = false) => ReduceAxes(ReduceOp.Max, axes, keepDim, "Max");
    /// <summary>Maximum over one axis.</summary>
    public Tensor Max(int axis, bool keepDim = false) => Max([axis], keepDim);

    /// <summary>Minimum over <paramref name="axes"/>; NaN propagates; ties share the gradient evenly.</summary>
    public Tensor Min(int[]? axes = null, bool keepDim = false) => ReduceAxes(ReduceOp.Min, axes, keepDim, "Min");
    /// <summary>Minimum over one axis.</summary>
    public Tensor Min(int axis, bool keepDim = false) => Min([axis], keepDim);

    /// <summary>log Σ e^x over <paramref name="axes"/>, max-shifted so it neither overflows nor underflows.</summary>
    public Tensor LogSumExp(int[]? axes = null, bool keepDim = false) => ReduceAxes(ReduceOp.LogSumExp, axes, keepDim, "LogSumExp");
    /// <summary>log Σ e^x over one axis.</summary>
    public Tensor LogSumExp(int axis, bool keepDim = false) => LogSumExp([axis], keepDim);

    /// <summary>Index of the first maximum along <paramref name="axis"/>, as floats (a NaN counts as the maximum). No gradient.</summary>
    public Tensor ArgMax(int axis, bool keepDim = false) => ArgBest(axis, keepDim, max: true);
    /// <summary>Index of the first minimum along <paramref name="axis"/>, as floats (a NaN counts as the minimum). No gradient.</summary>
    public Tensor ArgMin(int axis, bool keepDim = false) => ArgBest(axis, keepDim, max: false);

    private Tensor ArgBest(int axis, bool keepDim, bool max)
    {
        string name = max ? "ArgMax" : "ArgMin";
        int ax = AxisUtil.Check(Dims, axis, name);
        if (Dims[ax] == 0) throw new ArgumentException($"{name}: axis {axis} of shape {ShapeUtil.Format(Dims)} is empty.");
        var (outer, size, inner) = AxisUtil.OuterSizeInner(Dims, ax, ax);
        var r = NewEmpty(AxisUtil.ReducedShape(Dims, AxisUtil.Only(ax, Rank), keepDim));
        if (max) K.ArgMax(Buf, r.Buf, outer, size, inner);
        else K.ArgMin(Buf, r.Buf, outer, size, inner);
        return r;
    }

    // ---------------------------------------------------------------- the reduction driver

    /// <summary>
    /// The smallest and the largest element (NaN when any element is NaN), read in one copy to the host: on a GPU one
    /// synchronisation instead of the two of Min().Item() and Max().Item(). Not recorded; the tensor must not be empty.
    /// </summary>
    internal (float Min, float Max) MinMaxItems()
    {
        if (Numel == 0) throw new ArgumentException($"MinMax: the tensor {ShapeUtil.Format(Dims)} is empty.");
        var r = NewEmpty([2]);
        K.Reduce(ReduceOp.Min, Buf, r.Buf, 1, Numel, 1);
        K.Reduce(ReduceOp.Max, Buf, r.Buf.At(1), 1, Numel, 1);
        Span<float> h = stackalloc float[2];
        r.CopyTo(h);
        return (h[0], h[1]);
    }

    private Tensor ReduceAxes(ReduceOp op, int[]? axes, bool keepDim, string name)
    {
        var reduced = new bool[Rank];
        if (axes == null) Array.Fill(reduced, true);
        else
            foreach (int a in axes)
            {
                int ax = AxisUtil.Check(Dims, a, name);
                if (reduced[ax]) throw new ArgumentException($"{name}: axis {a} is listed twice (shape {ShapeUtil.Format(Dims)}).");
                reduced[ax] = true;
            }
        if (op is ReduceOp.Max or ReduceOp.Min)
            for (int d = 0; d < Rank; d++)
                if (reduced[d] && Dims[d] == 0)
                    throw new ArgumentException($"{name}: cannot reduce over axis {d} of size 0 (shape {ShapeUtil.Format(Dims)}).");

        var keepShape = AxisUtil.ReducedShape(Dims, reduced, true);
        var r = ReduceRaw(op, reduced);
        var outShape = AxisUtil.ReducedShape(Dims, reduced, keepDim);
        var result = new Tensor(r.Storage, r.Offset, outShape);
        if (!GradRecorder.ShouldRecord(this)) return result;

        var inShape = Dims;
        var yKeep = new Tensor(r.Storage, r.Offset, keepShape);   // the output, detached, in broadcastable form
        int count = 1;
        for (int d = 0; d < Rank; d++) if (reduced[d]) count *= Dims[d];
        var axesArr = Enumerable.Range(0, Rank).Where(d => reduced[d]).ToArray();
        return GradRecorder.Record(result, this, op switch
        {
            ReduceOp.Sum => (g, _) => [g.Reshape(keepShape).Expand(inShape)],
            ReduceOp.Mean => (g, _) => [g.Reshape(keepShape).Expand(inShape).Affine(1f / count, 0f)],
            ReduceOp.LogSumExp => (g, x) => [Mul(g.Reshape(keepShape), Sub(x, yKeep).Exp())],
            // Max / Min: the elements equal to the result share the gradient evenly.
            _ => (g, x) =>
            {
                var hit = Eq(x, yKeep);
                var share = Div(hit, hit.Sum(axesArr, keepDim: true));
                return [Mul(g.Reshape(keepShape), share)];
            },
        }, name);
    }

    /// <summary>Runs the kernels for a reduction mask; the result has the keep-dim shape. Not recorded.</summary>
    private Tensor ReduceRaw(ReduceOp op, bool[] reduced)
    {
        // Runs of axes that are reduced or of size 1 (reducing a size-1 axis is the identity, so it may join
        // a neighbouring run) and contain at least one real reduced axis.
        var runs = new List<(int start, int end, long size)>();
        for (int d = 0; d < Rank;)
        {
            if (!(reduced[d] || Dims[d] == 1)) { d++; continue; }
            int s = d;
            bool real = false;
            long size = 1;
            while (d < Rank && (reduced[d] || Dims[d] == 1)) { real |= reduced[d] && Dims[d] != 1; size *= Dims[d]; d++; }
            if (real) runs.Add((s, d - 1, size));
        }
        var keepShape = AxisUtil.ReducedShape(Dims, reduced, true);
        if (runs.Count == 0)
        {
            var copy = NewEmpty(keepShape);
            K.Copy(Buf, copy.Buf, Numel);
            return copy;
        }
        runs.Sort((p, q) => q.size.CompareTo(p.size));
        var cur = this;
        var dims = (int[])Dims.Clone();
        foreach (var (s, e, _) in runs)
        {
            var (outer, size, inner) = AxisUtil.OuterSizeInner(dims, s, e);
            for (int d = s; d <= e; d++) dims[d] = 1;
            var next = NewEmpty(dims);
            K.Reduce(op, cur.Buf, next.Buf, outer, size, inner);
            cur = next;
        }
        return new Tensor(cur.Storage, cur.Offset, keepShape);
    }

    // ---------------------------------------------------------------- expand / sum-to-shape

    /// <summary>
    /// A broadcast copy to <paramref name="shape"/> (NumPy rules: size-1 dimensions stretch, new dimensions are
    /// prepended; -1 keeps a dimension). Always a new contiguous tensor. The gradient sums back with
    /// <see cref="SumToShape"/>.
    /// </summary>
    public Tensor Expand(params int[] shape)
    {
        var target = (int[])shape.Clone();
        int off = target.Length - Rank;
        if (off < 0) throw new ArgumentException($"Expand: cannot expand shape {ShapeUtil.Format(Dims)} to fewer dimensions {ShapeUtil.Format(shape)}.");
        for (int i = 0; i < target.Length; i++)
            if (target[i] == -1)
            {
                if (i < off) throw new ArgumentException($"Expand: -1 is not allowed for the new leading dimension {i} in {ShapeUtil.Format(shape)}.");
                target[i] = Dims[i - off];
            }
        int[] strides;
        try { strides = ShapeUtil.BroadcastStrides(Dims, target); }
        catch (ArgumentException) { throw new ArgumentException($"Expand: cannot expand shape {ShapeUtil.Format(Dims)} to {ShapeUtil.Format(shape)}."); }
        var r = NewEmpty(target);
        K.Expand(Buf, strides, r.Buf, target);
        var inShape = Dims;
        return GradRecorder.Record(r, this, (g, _) => [g.SumToShape(inShape)]);
    }

    /// <summary>
    /// Sums this tensor down to <paramref name="shape"/>, which must broadcast to this tensor's shape: the
    /// reverse of broadcasting, used by gradients of broadcast ops. Returns this tensor itself when the shapes match.
    /// </summary>
    public Tensor SumToShape(int[] shape)
    {
        if (ShapeUtil.SameShape(shape, Dims)) return this;
        int off = Rank - shape.Length;
        bool ok = off >= 0;
        for (int i = 0; ok && i < shape.Length; i++) ok = shape[i] == Dims[i + off] || shape[i] == 1;
        if (!ok) throw new ArgumentException($"SumToShape: shape {ShapeUtil.Format(Dims)} cannot be summed to {ShapeUtil.Format(shape)} (it must broadcast to it).");
        var axes = new List<int>();
        for (int d = 0; d < Rank; d++)
            if (d < off || (shape[d - off] == 1 && Dims[d] != 1)) axes.Add(d);
        return Sum([.. axes], keepDim: true).Reshape(shape);
    }
}
