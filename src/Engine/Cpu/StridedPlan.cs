namespace Engine.Cpu;

/// <summary>
/// The iteration space of a broadcast / strided elementwise kernel after coalescing: size-1 dimensions are
/// dropped and neighbouring dimensions merge wherever every operand walks them as one (stride of the outer
/// = stride of the inner × its size; broadcast 0-strides merge with each other). What is left is one inner
/// dimension — contiguous (stride 1) or broadcast (stride 0) for tensors of this engine, so the inner loop is
/// a SIMD loop — and a few outer dimensions walked with an odometer. [N,C,H,W] + [C,1,1] becomes rows of H·W
/// with a broadcast scalar; [B,F] + [F] becomes rows of F against one contiguous row.
/// </summary>
internal sealed class StridedPlan
{
    /// <summary>Outer dimensions, outermost first.</summary>
    public readonly int[] OuterDims;
    /// <summary>Per operand, the strides of the outer dimensions.</summary>
    public readonly long[][] OuterStrides;
    /// <summary>Length of the inner (row) dimension.</summary>
    public readonly int Inner;
    /// <summary>Per operand, the stride of the inner dimension.</summary>
    public readonly long[] InnerStrides;
    /// <summary>Number of rows (product of the outer dimensions).</summary>
    public readonly int Rows;

    private StridedPlan(int[] outerDims, long[][] outerStrides, int inner, long[] innerStrides)
    {
        OuterDims = outerDims; OuterStrides = outerStrides; Inner = inner; InnerStrides = innerStrides;
        long r = 1;
        foreach (int d in outerDims) r *= d;
        Rows = (int)r;
    }

    /// <summary>Coalesces <paramref name="shape"/> walked by operands with the given element strides (output is contiguous).</summary>
    public static StridedPlan Create(ReadOnlySpan<int> shape, params int[][] strides)
    {
        int k = strides.Length;
        foreach (var s in strides)
            if (s.Length != shape.Length) throw new ArgumentException($"Stride list of length {s.Length} does not match the rank of shape {Engine.Tensors.ShapeUtil.Format(shape)}.");
        var dims = new List<int>();         // innermost first
        var st = new List<long[]>();
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            int d = shape[i];
            if (d == 1) continue;
            if (dims.Count > 0)
            {
                int last = dims.Count - 1;
                bool merge = true;
                for (int j = 0; j < k && merge; j++) merge = strides[j][i] == st[last][j] * dims[last];
                if (merge) { dims[last] *= d; continue; }
            }
            dims.Add(d);
            var s = new long[k];
            for (int j = 0; j < k; j++) s[j] = strides[j][i];
            st.Add(s);
        }
        if (dims.Count == 0)
        {
            var none = new long[k][];
            for (int j = 0; j < k; j++) none[j] = [];
            return new StridedPlan([], none, 1, new long[k]);
        }
        int outer = dims.Count - 1;
        var outerDims = new int[outer];
        var outerStrides = new long[k][];
        for (int j = 0; j < k; j++) outerStrides[j] = new long[outer];
        for (int q = 0; q < outer; q++)
        {
            int src = dims.Count - 1 - q;
            outerDims[q] = dims[src];
            for (int j = 0; j < k; j++) outerStrides[j][q] = st[src][j];
        }
        return new StridedPlan(outerDims, outerStrides, dims[0], st[0]);
    }

    /// <summary>An odometer positioned at <paramref name="row"/>; one per thread chunk.</summary>
    public Cursor At(int row) => new(this, row);

    /// <summary>Walks rows in order, keeping each operand's element offset of the row start.</summary>
    public sealed class Cursor
    {
        private readonly StridedPlan _p;
        private readonly int[] _idx;
        /// <summary>Per operand, the offset of the current row's first element.</summary>
        public readonly long[] Offsets;

        public Cursor(StridedPlan p, int row)
        {
            _p = p;
            int nd = p.OuterDims.Length, k = p.InnerStrides.Length;
            _idx = new int[nd];
            Offsets = new long[k];
            for (int q = nd - 1; q >= 0; q--)
            {
                int d = p.OuterDims[q];
                _idx[q] = row % d;
                row /= d;
                for (int j = 0; j < k; j++) Offsets[j] += _idx[q] * p.OuterStrides[j][q];
            }
        }

        /// <summary>Moves to the next row.</summary>
        public void Next()
        {
            int k = Offsets.Length;
            for (int q = _idx.Length - 1; q >= 0; q--)
            {
                if (++_idx[q] < _p.OuterDims[q])
                {
                    for (int j = 0; j < k; j++) Offsets[j] += _p.OuterStrides[j][q];
                    return;
                }
                _idx[q] = 0;
                for (int j = 0; j < k; j++) Offsets[j] -= (long)(_p.OuterDims[q] - 1) * _p.OuterStrides[j][q];
            }
        }
    }
}
