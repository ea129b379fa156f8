using System.Numerics.Tensors;
using Engine.Tensors;
using O = Engine.Cpu.ElementwiseOps;

namespace Engine.Cpu;

// Softmax / log-softmax over the middle axis of [outer, size, inner]. inner == 1 works on contiguous rows;
// inner > 1 on column blocks (vectorised across inner), with the running max and sum in stack scratch.
public sealed unsafe partial class CpuKernels
{
    /// <inheritdoc/>
    public void Softmax(Buf x, Buf y, int outer, int size, int inner, bool log)
    {
        if (outer <= 0 || inner <= 0 || size <= 0) return;
        float* px = P(x), py = P(y);
        ForColumnBlocks(outer, size, inner, (o, c0, w, scratch) =>
        {
            long off = (long)o * size * inner + c0;
            if (inner == 1) SoftmaxRow(px + off, py + off, size, log);
            else SoftmaxColumns(px + off, py + off, size, inner, w, scratch, log);
        });
    }

    /// <inheritdoc/>
    public void SoftmaxBackward(Buf y, Buf dy, Buf dx, int outer, int size, int inner, bool log)
    {
        if (outer <= 0 || inner <= 0 || size <= 0) return;
        float* py = P(y), pdy = P(dy), pdx = P(dx);
        ForColumnBlocks(outer, size, inner, (o, c0, w, scratch) =>
        {
            long off = (long)o * size * inner + c0;
            if (inner == 1) SoftmaxBackwardRow(py + off, pdy + off, pdx + off, size, log);
            else SoftmaxBackwardColumns(py + off, pdy + off, pdx + off, size, inner, w, scratch, log);
        });
    }

    /// <summary>Runs body over (outer index, column block) items, threaded by work size; scratch holds 2·ColBlock floats.</summary>
    private static void ForColumnBlocks(int outer, int size, int inner, Action<int, int, int, IntPtr> body)
    {
        int colBlocks = (inner + ColBlock - 1) / ColBlock;
        long itemWork = (long)size * Math.Min(inner, ColBlock);
        CpuThreads.For(checked(outer * colBlocks), (int)Math.Max(1, Simd.MinChunk / itemWork), (s, e) =>
        {
            float* scratch = stackalloc float[2 * ColBlock];
            for (int it = s; it < e; it++)
            {
                int c0 = it % colBlocks * ColBlock;
                body(it / colBlocks, c0, Math.Min(ColBlock, inner - c0), (IntPtr)scratch);
            }
        });
    }

    private static void SoftmaxRow(float* x, float* y, int n, bool log)
    {
        float m = TensorPrimitives.Max(new ReadOnlySpan<float>(x, n));
        var ys = new Span<float>(y, n);
        ElementwiseLoops.Binary(new ReduceOps.ExpShift(), x, 1, &m, 0, y, n);
        float sum = TensorPrimitives.Sum(ys);
        if (log)
        {
            // (x - m) - log Σ rather than x - (m + log Σ): the first difference is exact near the maximum, so
            // log-probabilities close to 0 keep their relative accuracy.
            float logSum = MathF.Log(sum);
            ElementwiseLoops.Binary(new O.Sub(), x, 1, &m, 0, y, n);
            ElementwiseLoops.Binary(new O.Sub(), y, 1, &logSum, 0, y, n);
        }
        else
        {
            float inv = 1f / sum;
            ElementwiseLoops.Binary(new O.Mul(), y, 1, &inv, 0, y, n);
        }
    }

    private static void SoftmaxColumns(float* x, float* y, int size, long stride, int w, IntPtr scratchPtr, bool log)
    {
        float* m = (float*)scratchPtr, sum = m + ColBlock;
        CombineRows(new O.Max(), x, m, size, stride, w);
        new Span<float>(sum, w).Clear();
        for (int s = 0; s < size; s++)
        {
            ElementwiseLoops.Binary(new ReduceOps.ExpShift(), x + s * stride, 1, m, 1, y + s * stride, w);
            ElementwiseLoops.Binary(new O.Add(), sum, 1, y + s * stride, 1, sum, w);
        }
        if (log)
        {
            ElementwiseLoops.Unary(new O.Log(), sum, sum, w);
            for (int s = 0; s < size; s++)
            {
                ElementwiseLoops.Binary(new O.Sub(), x + s * stride, 1, m, 1, y + s * stride, w);
                ElementwiseLoops.Binary(new O.Sub(), y + s * stride, 1, sum, 1, y + s * stride, w);
            }
        }
        else
        {
            ElementwiseLoops.Unary(new O.Reciprocal(1f), sum, sum, w);
            for (int s = 0; s < size; s++) ElementwiseLoops.Binary(new O.Mul(), y + s * stride, 1, sum, 1, y + s * stride, w);
        }
    }

    private static void SoftmaxBackwardRow(float* y, float* dy, float* dx, int n, bool log)
    {
        var ys = new ReadOnlySpan<float>(y, n);
        var dys = new ReadOnlySpan<float>(dy, n);
        if (log)
        {
            float c = TensorPrimitives.Sum(dys);
            ElementwiseLoops.Binary(new ReduceOps.LogSoftmaxGrad(c), dy, 1, y, 1, dx, n);
        }
        else
        {
            float d = TensorPrimitives.Dot(dys, ys);
            ElementwiseLoops.Binary(new O.Sub(), dy, 1, &d, 0, dx, n);
            ElementwiseLoops.Binary(new O.Mul(), dx, 1, y, 1, dx, n);
        }
    }

    private static void SoftmaxBackwardColumns(float* y, float* dy, float* dx, int size, long stride, int w, IntPtr scratchPtr, bool log)
    {
        float* acc = (float*)scratchPtr, tmp = acc + ColBlock;
        new Span<float>(acc, w).Clear();
        for (int s = 0; s < size; s++)
        {
            if (log) ElementwiseLoops.Binary(new O.Add(), acc, 1, dy + s * stride, 1, acc, w);
            else
            {
                ElementwiseLoops.Binary(new O.Mul(), dy + s * stride, 1, y + s * stride, 1, tmp, w);
                ElementwiseLoops.Binary(new O.Add(), acc, 1, tmp, 1, acc, w);
            }
        }
        for (int s = 0; s < size; s++)
        {
            float* dxs = dx + s * stride, dys = dy + s * stride, ys = y + s * stride;
            if (log)
            {
                ElementwiseLoops.Unary(new O.Exp(), ys, dxs, w);
                ElementwiseLoops.Binary(new O.Mul(), dxs, 1, acc, 1, dxs, w);
                ElementwiseLoops.Binary(new O.Sub(), dys, 1, dxs, 1, dxs, w);
            }
            else
            {
                ElementwiseLoops.Binary(new O.Sub(), dys, 1, acc, 1, dxs, w);
                ElementwiseLoops.Binary(new O.Mul(), dxs, 1, ys, 1, dxs, w);
            }
        }
    }
}
