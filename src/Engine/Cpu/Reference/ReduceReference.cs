using Engine.Tensors;

namespace Engine.Cpu.Reference;

/// <summary>
/// Scalar, double-accumulating definitions of the reduction and softmax kernels (<see cref="IKernels.Reduce"/>,
/// <see cref="IKernels.ArgMax"/>, <see cref="IKernels.ArgMin"/>, <see cref="IKernels.Softmax"/>,
/// <see cref="IKernels.SoftmaxBackward"/>) over a contiguous [outer, size, inner] array.
/// </summary>
public static class ReduceReference
{
    /// <summary>y[o, i] = op over s of x[o, s, i].</summary>
    public static float[] Reduce(ReduceOp op, float[] x, int outer, int size, int inner)
    {
        var y = new float[outer * inner];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double acc = op switch
                {
                    ReduceOp.Max => double.NegativeInfinity,
                    ReduceOp.Min => double.PositiveInfinity,
                    _ => 0,
                };
                double m = double.NegativeInfinity;
                bool nan = false;
                for (int s = 0; s < size; s++)
                {
                    double v = x[(o * size + s) * inner + i];
                    nan |= double.IsNaN(v);
                    if (op is ReduceOp.Sum or ReduceOp.Mean) acc += v;
                    else if (op == ReduceOp.Max) acc = Math.Max(acc, v);
                    else if (op == ReduceOp.Min) acc = Math.Min(acc, v);
                    else m = Math.Max(m, v);
                }
                if (op == ReduceOp.LogSumExp)
                {
                    if (double.IsFinite(m))
                    {
                        double sum = 0;
                        for (int s = 0; s < size; s++) sum += Math.Exp(x[(o * size + s) * inner + i] - m);
                        acc = m + Math.Log(sum);
                    }
                    else acc = m;
                }
                if (op == ReduceOp.Mean) acc /= size;
                y[o * inner + i] = nan ? float.NaN : (float)acc;
            }
        return y;
    }

    /// <summary>First index of the max (min) along the middle axis; the first NaN wins.</summary>
    public static float[] ArgBest(float[] x, int outer, int size, int inner, bool max)
    {
        var y = new float[outer * inner];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int best = 0;
                float bv = x[o * size * inner + i];
                for (int s = 1; s < size && !float.IsNaN(bv); s++)
                {
                    float v = x[(o * size + s) * inner + i];
                    if (float.IsNaN(v) || (max ? v > bv : v < bv)) { best = s; bv = v; }
                }
                y[o * inner + i] = best;
            }
        return y;
    }

    /// <summary>Softmax (or log-softmax) along the middle axis, in double.</summary>
    public static float[] Softmax(float[] x, int outer, int size, int inner, bool log)
    {
        var y = new float[x.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double m = double.NegativeInfinity;
                for (int s = 0; s < size; s++) m = Math.Max(m, x[(o * size + s) * inner + i]);
                double sum = 0;
                for (int s = 0; s < size; s++) sum += Math.Exp(x[(o * size + s) * inner + i] - m);
                for (int s = 0; s < size; s++)
                {
                    int k = (o * size + s) * inner + i;
                    y[k] = (float)(log ? x[k] - m - Math.Log(sum) : Math.Exp(x[k] - m) / sum);
                }
            }
        return y;
    }

    /// <summary>Gradient of softmax (log-softmax) from its output y and upstream dy, in double.</summary>
    public static float[] SoftmaxBackward(float[] y, float[] dy, int outer, int size, int inner, bool log)
    {
        var dx = new float[y.Length];
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                double acc = 0;
                for (int s = 0; s < size; s++)
                {
                    int k = (o * size + s) * inner + i;
                    acc += log ? dy[k] : (double)dy[k] * y[k];
                }
                for (int s = 0; s < size; s++)
                {
                    int k = (o * size + s) * inner + i;
                    dx[k] = (float)(log ? dy[k] - Math.Exp(y[k]) * acc : y[k] * (dy[k] - acc));
                }
            }
        return dx;
    }
}
