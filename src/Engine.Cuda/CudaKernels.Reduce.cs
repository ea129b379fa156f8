using Engine.Tensors;

namespace Engine.Cuda;

// Reductions, arg max / min and softmax of kernels/reduce.cu over a contiguous [outer, size, inner] view.
// Launch shapes: inner == 1 gives each row a warp (size <= RowsPerWarpMax) or a 256-thread block; inner > 1 uses
// 32x8 blocks over (column tile, outer). When that leaves the device mostly idle (few outputs, long axis), Reduce
// splits the axis into segments reduced into partials and folds them in a second kernel.
internal sealed partial class CudaKernels
{
    private const string RdModule = "reduce";
    private const int RdBlock = 256;
    private const int RowsPerWarpMax = 1024;
    private const int ColsTile = 32, ColsSlices = 8;
    private const int MaxGridY = 65535;
    // Each partial-reduction block gets at least this many elements, so a split only happens when it pays.
    private const int MinSegmentWork = 8192;
    private const int MaxSegments = 1024;

    private static readonly string[] ReduceNames = ["sum", "mean", "max", "min", "logsumexp"];
    private static readonly string[] ReduceRowsWarp = Array.ConvertAll(ReduceNames, s => $"reduce_{s}_rows_warp");
    private static readonly string[] ReduceRowsBlock = Array.ConvertAll(ReduceNames, s => $"reduce_{s}_rows_block");
    private static readonly string[] ReduceCols = Array.ConvertAll(ReduceNames, s => $"reduce_{s}_cols");
    private static readonly string[] ReduceRowsPart = Array.ConvertAll(ReduceNames, s => $"reduce_{s}_rows_part");
    private static readonly string[] ReduceColsPart = Array.ConvertAll(ReduceNames, s => $"reduce_{s}_cols_part");
    private static readonly string[] ReduceCombine = Array.ConvertAll(ReduceNames, s => $"reduce_{s}_combine");

    /// <inheritdoc/>
    public void Reduce(ReduceOp op, Buf x, Buf y, int outer, int size, int inner)
    {
        if ((uint)op >= (uint)ReduceNames.Length) throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown reduction.");
        if (outer <= 0 || inner <= 0) return;
        int outputs = checked(outer * inner);
        ulong py = CheckedPtr(y, outputs, "Reduce");
        if (size <= 0)
        {
            float empty = op switch
            {
                ReduceOp.Sum => 0f,
                ReduceOp.Mean => float.NaN,
                ReduceOp.Max => float.NegativeInfinity,
                ReduceOp.Min => float.PositiveInfinity,
                _ => float.NegativeInfinity,
            };
            var pf = new KernelParams();
            pf.Pointer(py); pf.Int(outputs); pf.Float(empty);
            Launch1D(RdModule, "reduce_fill", outputs, ref pf);
            return;
        }
        ulong px = CheckedPtr(x, (long)outer * size * inner, "Reduce");
        int segs = ReduceSegments(outer, size, inner);
        if (segs > 1)
        {
            ReduceSplit(op, px, py, outer, size, inner, segs);
            return;
        }
        var p = new KernelParams();
        p.Pointer(px); p.Pointer(py); p.Int(outer); p.Int(size);
        if (inner == 1) LaunchRows(ReduceRowsWarp[(int)op], ReduceRowsBlock[(int)op], outer, size, ref p);
        else { p.Int(inner); LaunchCols(ReduceCols[(int)op], outer, inner, ref p); }
    }

    /// <summary>How many segments to split the reduced axis into (1: no split), from the shape and the device size only.</summary>
    private int ReduceSegments(int outer, int size, int inner)
    {
        long wave = Math.Max(1, Context.MaxResidentBlocks256);
        long items = inner == 1 ? outer : (long)outer * ((inner + ColsTile - 1) / ColsTile);
        long workPerItem = (long)size * Math.Min(inner, ColsTile);
        if (items * 2 > wave || workPerItem < 2L * MinSegmentWork) return 1;
        long segs = Math.Min(Math.Min((wave + items - 1) / items, workPerItem / MinSegmentWork), MaxSegments);
        if (segs < 2) return 1;
        int segLen = (int)((size + segs - 1) / segs);
        return (size + segLen - 1) / segLen;
    }

    private void ReduceSplit(ReduceOp op, ulong px, ulong py, int outer, int size, int inner, int segs)
    {
        int segLen = (size + segs - 1) / segs;
        segs = (size + segLen - 1) / segLen;   // no empty segment
        long partials = (long)outer * segs * inner;
        bool lse = op == ReduceOp.LogSumExp;
        using var scratch = Scratch(partials * sizeof(float) * (lse ? 2 : 1));
        ulong pm = scratch.Address, ps = lse ? scratch.Address + (ulong)partials * sizeof(float) : 0UL;
        var p = new KernelParams();
        p.Pointer(px); p.Pointer(pm); p.Pointer(ps); p.Int(outer); p.Int(size);
        if (inner == 1)
        {
            p.Int(segs); p.Int(segLen);
            Launch(RdModule, ReduceRowsPart[(int)op], new Dim3((uint)(outer * segs)), new Dim3(RdBlock), 0, ref p);
        }
        else
        {
            p.Int(inner); p.Int(segs); p.Int(segLen);
            var grid = new Dim3((uint)((inner + ColsTile - 1) / ColsTile), (uint)Math.Min(outer, MaxGridY), (uint)segs);
            Launch(RdModule, ReduceColsPart[(int)op], grid, new Dim3(ColsTile, ColsSlices), 0, ref p);
        }
        var c = new KernelParams();
        c.Pointer(pm); c.Pointer(ps); c.Pointer(py); c.Int(outer); c.Int(segs); c.Int(inner); c.Int(size);
        LaunchWarps(ReduceCombine[(int)op], (long)outer * inner, ref c);
    }

    /// <inheritdoc/>
    public void ArgMax(Buf x, Buf y, int outer, int size, int inner) => ArgBest(x, y, outer, size, inner, max: true);

    /// <inheritdoc/>
    public void ArgMin(Buf x, Buf y, int outer, int size, int inner) => ArgBest(x, y, outer, size, inner, max: false);

    private void ArgBest(Buf x, Buf y, int outer, int size, int inner, bool max)
    {
        string name = max ? "ArgMax" : "ArgMin";
        if (outer <= 0 || inner <= 0) return;
        if (size <= 0) throw new ArgumentException($"{name}: the reduced axis is empty.");
        ulong px = CheckedPtr(x, (long)outer * size * inner, name), py = CheckedPtr(y, (long)outer * inner, name);
        string k = max ? "argmax" : "argmin";
        var p = new KernelParams();
        p.Pointer(px); p.Pointer(py); p.Int(outer); p.Int(size);
        if (inner == 1) LaunchRows(k + "_rows_warp", k + "_rows_block", outer, size, ref p);
        else { p.Int(inner); LaunchCols(k + "_cols", outer, inner, ref p); }
    }

    /// <inheritdoc/>
    public void Softmax(Buf x, Buf y, int outer, int size, int inner, bool log)
    {
        if (outer <= 0 || inner <= 0 || size <= 0) return;
        long n = (long)outer * size * inner;
        ulong px = CheckedPtr(x, n, "Softmax"), py = CheckedPtr(y, n, "Softmax");
        string k = log ? "logsoftmax" : "softmax";
        var p = new KernelParams();
        p.Pointer(px); p.Pointer(py); p.Int(outer); p.Int(size);
        if (inner == 1) LaunchRows(k + "_rows_warp", k + "_rows_block", outer, size, ref p);
        else { p.Int(inner); LaunchCols(k + "_cols", outer, inner, ref p); }
    }

    /// <inheritdoc/>
    public void SoftmaxBackward(Buf y, Buf dy, Buf dx, int outer, int size, int inner, bool log)
    {
        if (outer <= 0 || inner <= 0 || size <= 0) return;
        long n = (long)outer * size * inner;
        ulong py = CheckedPtr(y, n, "SoftmaxBackward"), pdy = CheckedPtr(dy, n, "SoftmaxBackward"), pdx = CheckedPtr(dx, n, "SoftmaxBackward");
        string k = log ? "logsoftmax_grad" : "softmax_grad";
        var p = new KernelParams();
        p.Pointer(py); p.Pointer(pdy); p.Pointer(pdx); p.Int(outer); p.Int(size);
        if (inner == 1) LaunchRows(k + "_rows_warp", k + "_rows_block", outer, size, ref p);
        else { p.Int(inner); LaunchCols(k + "_cols", outer, inner, ref p); }
    }

    /// <summary>A rows kernel (inner == 1): one warp per row for short rows, else one 256-thread block per row.</summary>
    private void LaunchRows(string warpKernel, string blockKernel, int rows, int size, ref KernelParams p)
    {
        if (size <= RowsPerWarpMax) LaunchWarps(warpKernel, rows, ref p);
        else
        {
            long blocks = Math.Min(rows, Math.Max(1, Context.MaxResidentBlocks256));
            Launch(RdModule, blockKernel, new Dim3((uint)blocks), new Dim3(RdBlock), 0, ref p);
        }
    }

    /// <summary>A kernel with one warp per item (256-thread blocks, grid-stride over items).</summary>
    private void LaunchWarps(string kernel, long items, ref KernelParams p)
    {
        const int warpsPerBlock = RdBlock / 32;
        long blocks = Math.Min((items + warpsPerBlock - 1) / warpsPerBlock, Math.Max(1, Context.MaxResidentBlocks256));
        Launch(RdModule, kernel, new Dim3((uint)blocks), new Dim3(RdBlock), 0, ref p);
    }

    /// <summary>A columns kernel (inner &gt; 1): 32x8 blocks, grid (column tiles, outer capped at 65535, grid-stride).</summary>
    private void LaunchCols(string kernel, int outer, int inner, ref KernelParams p)
    {
        var grid = new Dim3((uint)((inner + ColsTile - 1) / ColsTile), (uint)Math.Min(outer, MaxGridY));
        Launch(RdModule, kernel, grid, new Dim3(ColsTile, ColsSlices), 0, ref p);
    }
}
