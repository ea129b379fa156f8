using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Engine.Tensors;
using O = Engine.Cpu.ElementwiseOps;
using V256 = System.Runtime.Intrinsics.Vector256<float>;
using V512 = System.Runtime.Intrinsics.Vector512<float>;

namespace Engine.Cpu;

// Reductions over the middle axis of a contiguous [outer, size, inner] view.
// inner == 1: each output reduces one contiguous row (vectorised along the row).
// inner > 1: outputs are processed in column blocks of up to ColBlock floats that stay in L1, and the
// block is combined row after row with a vectorised elementwise op (vectorised across inner).
// Work is split over (outer, column block) items; when there are too few of them for the threads but much
// data per output (a full Sum, or a [1M, 2] tensor reduced over axis 0), the reduced axis itself is split into
// fixed segments whose partial results are combined afterwards. The split depends only on the shape, never
// on the thread count, so results are the same for any CpuThreads.Count.
public sealed unsafe partial class CpuKernels
{
    private const int ColBlock = 256;
    private const int SplitBelowItems = 8;

    /// <inheritdoc/>
    public void Reduce(ReduceOp op, Buf x, Buf y, int outer, int size, int inner)
    {
        if (outer <= 0 || inner <= 0) return;
        float* px = P(x), py = P(y);
        if (size <= 0)
        {
            new Span<float>(py, checked(outer * inner)).Fill(op switch
            {
                ReduceOp.Sum => 0f,
                ReduceOp.Mean => float.NaN,
                ReduceOp.Max => float.NegativeInfinity,
                ReduceOp.Min => float.PositiveInfinity,
                _ => float.NegativeInfinity,
            });
            return;
        }
        int colBlocks = (inner + ColBlock - 1) / ColBlock;
        long items = (long)outer * colBlocks;
        long perOuter = (long)size * inner;
        if (items < SplitBelowItems && perOuter >= 4L * Simd.MinChunk)
        {
            for (int o = 0; o < outer; o++) SplitReduce(op, px + o * perOuter, py + (long)o * inner, size, inner);
            return;
        }
        long itemWork = (long)size * Math.Min(inner, ColBlock);
        CpuThreads.For((int)items, (int)Math.Max(1, Simd.MinChunk / itemWork), (s, e) =>
        {
            float* scratch = stackalloc float[2 * ColBlock];
            for (int it = s; it < e; it++)
            {
                int o = it / colBlocks, c0 = it % colBlocks * ColBlock;
                int w = Math.Min(ColBlock, inner - c0);
                ReduceBlock(op, px + o * perOuter + c0, py + (long)o * inner + c0, size, inner, w, scratch);
            }
        });
    }

    /// <summary>Reduces one [outer=1, size, inner] slice by segments of the reduced axis, then combines the partials.</summary>
    private static void SplitReduce(ReduceOp op, float* x, float* y, int size, int inner)
    {
        int segRows = Math.Max(1, Simd.MinChunk / inner);
        int segs = (size + segRows - 1) / segRows;
        var partial = GC.AllocateUninitializedArray<float>(segs * inner, pinned: true);
        fixed (float* pp0 = partial)
        {
            float* pp = pp0;   // the array is pinned for its whole life; the fixed only yields the address
            var partOp = op == ReduceOp.Mean ? ReduceOp.Sum : op;
            CpuThreads.For(segs, 1, (s, e) =>
            {
                for (int g = s; g < e; g++)
                {
                    int rows = Math.Min(segRows, size - g * segRows);
                    ReduceColumns(partOp, x + (long)g * segRows * inner, pp + (long)g * inner, rows, inner);
                }
            });
            var combine = op is ReduceOp.Mean ? ReduceOp.Sum : op;
            ReduceColumns(combine, pp, y, segs, inner);
            if (op == ReduceOp.Mean) ElementwiseLoops.Unary(new O.Affine(1f / size, 0f), y, y, inner);
        }
    }

    /// <summary>Single-threaded reduction of a [size, inner] block over all its columns.</summary>
    private static void ReduceColumns(ReduceOp op, float* x, float* y, int size, int inner)
    {
        float* scratch = stackalloc float[2 * ColBlock];
        for (int c0 = 0; c0 < inner; c0 += ColBlock)
            ReduceBlock(op, x + c0, y + c0, size, inner, Math.Min(ColBlock, inner - c0), scratch);
    }

    /// <summary>
    /// y[0..w) = op over size rows of x, rows <paramref name="stride"/> apart. stride == 1 means inner == 1 (one
    /// contiguous row per output). <paramref name="scratch"/> holds 2·ColBlock floats.
    /// </summary>
    private static void ReduceBlock(ReduceOp op, float* x, float* y, int size, long stride, int w, float* scratch)
    {
        if (stride == 1) { *y = ReduceRow(op, x, size); return; }
        switch (op)
        {
            case ReduceOp.Sum:
            case ReduceOp.Mean:
                CombineRows(new O.Add(), x, y, size, stride, w);
                if (op == ReduceOp.Mean) ElementwiseLoops.Unary(new O.Affine(1f / size, 0f), y, y, w);
                break;
            case ReduceOp.Max: CombineRows(new O.Max(), x, y, size, stride, w); break;
            case ReduceOp.Min: CombineRows(new O.Min(), x, y, size, stride, w); break;
            case ReduceOp.LogSumExp:
            {
                CombineRows(new O.Max(), x, y, size, stride, w);
                float* sum = scratch, e = scratch + ColBlock;
                new Span<float>(sum, w).Clear();
                for (int s = 0; s < size; s++)
                {
                    ElementwiseLoops.Binary(new ReduceOps.ExpShift(), x + s * stride, 1, y, 1, e, w);
                    ElementwiseLoops.Binary(new O.Add(), sum, 1, e, 1, sum, w);
                }
                ElementwiseLoops.Binary(new ReduceOps.LogSumExpFinish(), y, 1, sum, 1, y, w);
                break;
            }
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown reduction.");
        }
    }

    /// <summary>y = x_0 op x_1 op ... op x_(size-1), row by row (rows stride apart, w wide).</summary>
    private static void CombineRows<T>(T op, float* x, float* y, int size, long stride, int w) where T : struct, IBinaryOp
    {
        Buffer.MemoryCopy(x, y, w * sizeof(float), w * sizeof(float));
        for (int s = 1; s < size; s++) ElementwiseLoops.Binary(op, y, 1, x + s * stride, 1, y, w);
    }

    /// <summary>op over one contiguous row (size ≥ 1).</summary>
    private static float ReduceRow(ReduceOp op, float* x, int n)
    {
        var row = new ReadOnlySpan<float>(x, n);
        switch (op)
        {
            case ReduceOp.Sum: return TensorPrimitives.Sum(row);
            case ReduceOp.Mean: return TensorPrimitives.Sum(row) / n;
            case ReduceOp.Max: return TensorPrimitives.Max(row);
            case ReduceOp.Min: return TensorPrimitives.Min(row);
            case ReduceOp.LogSumExp:
            {
                float m = TensorPrimitives.Max(row);
                return float.IsFinite(m) ? m + MathF.Log(SumExpShift(x, n, m)) : m;
            }
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown reduction.");
        }
    }

    /// <summary>Σ e^(x[i] - m) over a contiguous row, without storing the terms.</summary>
    private static float SumExpShift(float* x, int n, float m)
    {
        int i = 0;
        float s = 0;
        if (Simd.Use512 && n >= V512.Count)
        {
            var vm = Vector512.Create(m);
            var acc = V512.Zero;
            for (; i <= n - V512.Count; i += V512.Count) acc += VMath.Exp(Vector512.Load(x + i) - vm);
            s = Vector512.Sum(acc);
        }
        else if (Simd.Use256 && n >= V256.Count)
        {
            var vm = Vector256.Create(m);
            var acc = V256.Zero;
            for (; i <= n - V256.Count; i += V256.Count) acc += VMath.Exp(Vector256.Load(x + i) - vm);
            s = Vector256.Sum(acc);
        }
        for (; i < n; i++) s += VMath.Exp(x[i] - m);
        return s;
    }

    // ---------------------------------------------------------------- arg max / arg min

    /// <inheritdoc/>
    public void ArgMax(Buf x, Buf y, int outer, int size, int inner) => ArgBest(x, y, outer, size, inner, max: true);

    /// <inheritdoc/>
    public void ArgMin(Buf x, Buf y, int outer, int size, int inner) => ArgBest(x, y, outer, size, inner, max: false);

    private static void ArgBest(Buf x, Buf y, int outer, int size, int inner, bool max)
    {
        if (outer <= 0 || inner <= 0) return;
        if (size <= 0) throw new ArgumentException($"{(max ? "ArgMax" : "ArgMin")}: the reduced axis is empty.");
        float* px = P(x), py = P(y);
        int colBlocks = (inner + ColBlock - 1) / ColBlock;
        long perOuter = (long)size * inner;
        long itemWork = (long)size * Math.Min(inner, ColBlock);
        CpuThreads.For(checked(outer * colBlocks), (int)Math.Max(1, Simd.MinChunk / itemWork), (s, e) =>
        {
            float* best = stackalloc float[ColBlock];
            for (int it = s; it < e; it++)
            {
                int o = it / colBlocks, c0 = it % colBlocks * ColBlock;
                float* xs = px + o * perOuter + c0;
                float* ys = py + (long)o * inner + c0;
                if (inner == 1) *ys = ArgBestRow(xs, size, max);
                else ArgBestColumns(xs, ys, best, size, inner, Math.Min(ColBlock, inner - c0), max);
            }
        });
    }

    /// <summary>First index of the max (min) of a row: one vectorised pass finds the value, a short scan its index.</summary>
    private static int ArgBestRow(float* x, int n, bool max)
    {
        var row = new ReadOnlySpan<float>(x, n);
        float m = max ? TensorPrimitives.Max(row) : TensorPrimitives.Min(row);
        if (float.IsNaN(m)) { for (int i = 0; i < n; i++) if (float.IsNaN(x[i])) return i; }
        else for (int i = 0; i < n; i++) if (x[i] == m) return i;
        return 0;
    }

    /// <summary>Arg max (min) of w columns at once; idx holds float indices, best the running values.</summary>
    private static void ArgBestColumns(float* x, float* idx, float* best, int size, long stride, int w, bool max)
    {
        Buffer.MemoryCopy(x, best, w * sizeof(float), w * sizeof(float));
        new Span<float>(idx, w).Clear();
        for (int s = 1; s < size; s++)
        {
            float* xs = x + s * stride;
            int j = 0;
            if (Simd.Use512)
            {
                var vs = Vector512.Create((float)s);
                for (; j <= w - V512.Count; j += V512.Count)
                {
                    var v = Vector512.Load(xs + j);
                    var b = Vector512.Load(best + j);
                    // Strictly better keeps the first occurrence; a NaN replaces anything but an earlier NaN.
                    var better = (max ? Vector512.GreaterThan(v, b) : Vector512.LessThan(v, b)) | (Vector512.IsNaN(v) & ~Vector512.IsNaN(b));
                    Vector512.ConditionalSelect(better, v, b).Store(best + j);
                    Vector512.ConditionalSelect(better, vs, Vector512.Load(idx + j)).Store(idx + j);
                }
            }
            for (; j < w; j++)
            {
                float v = xs[j], b = best[j];
                if ((max ? v > b : v < b) || (float.IsNaN(v) && !float.IsNaN(b))) { best[j] = v; idx[j] = s; }
            }
        }
    }
}
