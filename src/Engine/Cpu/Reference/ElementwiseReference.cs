using Engine.Tensors;

namespace Engine.Cpu.Reference;

/// <summary>
/// Scalar, double-precision definitions of the elementwise kernels (<see cref="IKernels.Unary"/>,
/// <see cref="IKernels.UnaryBackward"/>, <see cref="IKernels.Binary"/>, <see cref="IKernels.Where"/>,
/// <see cref="IKernels.Expand"/>) that the optimised kernels of every device are tested against.
/// </summary>
public static class ElementwiseReference
{
    /// <summary>op(x) with parameters alpha / beta, evaluated in double.</summary>
    public static double Unary(UnaryOp op, double x, double alpha, double beta) => op switch
    {
        UnaryOp.Neg => -x,
        UnaryOp.Abs => Math.Abs(x),
        UnaryOp.Sign => double.IsNaN(x) ? x : Math.Sign(x),
        UnaryOp.Exp => Math.Exp(x),
        UnaryOp.Log => Math.Log(x),
        UnaryOp.Sqrt => Math.Sqrt(x),
        UnaryOp.Square => x * x,
        UnaryOp.Pow => Math.Pow(x, alpha),
        UnaryOp.Clamp => double.IsNaN(x) ? x : Math.Min(Math.Max(x, alpha), beta),
        UnaryOp.Relu => double.IsNaN(x) ? x : Math.Max(x, 0),
        UnaryOp.LeakyRelu => x > 0 ? x : alpha * x,
        UnaryOp.Sigmoid => 1 / (1 + Math.Exp(-x)),
        UnaryOp.Tanh => Math.Tanh(x),
        UnaryOp.Softplus => alpha * x > beta ? x : Math.Log(1 + Math.Exp(alpha * x)) / alpha,
        UnaryOp.Affine => alpha * x + beta,
        UnaryOp.Reciprocal => alpha / x,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    /// <summary>dy · op'(x), in double, from the definition of each derivative (not from a saved output).</summary>
    public static double UnaryGrad(UnaryOp op, double x, double dy, double alpha, double beta) => op switch
    {
        UnaryOp.Neg => -dy,
        UnaryOp.Abs => x > 0 ? dy : x < 0 ? -dy : 0,
        UnaryOp.Sign => 0,
        UnaryOp.Exp => dy * Math.Exp(x),
        UnaryOp.Log => dy / x,
        UnaryOp.Sqrt => dy / (2 * Math.Sqrt(x)),
        UnaryOp.Square => 2 * x * dy,
        UnaryOp.Pow => alpha == 0 ? 0 : dy * alpha * Math.Pow(x, alpha - 1),
        UnaryOp.Clamp => x >= alpha && x <= beta ? dy : 0,
        UnaryOp.Relu => x > 0 ? dy : 0,
        UnaryOp.LeakyRelu => x > 0 ? dy : alpha * dy,
        UnaryOp.Sigmoid => dy * Sig(x) * (1 - Sig(x)),
        UnaryOp.Tanh => dy * (1 - Math.Tanh(x) * Math.Tanh(x)),
        UnaryOp.Softplus => alpha * x > beta ? dy : dy * Sig(alpha * x),
        UnaryOp.Affine => alpha * dy,
        UnaryOp.Reciprocal => -dy * alpha / (x * x),
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    private static double Sig(double z) => 1 / (1 + Math.Exp(-z));

    /// <summary>op(a, b) in double; comparisons give 1 or 0.</summary>
    public static double Binary(BinaryOp op, double a, double b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        BinaryOp.Div => a / b,
        BinaryOp.Maximum => double.IsNaN(a) || double.IsNaN(b) ? double.NaN : Math.Max(a, b),
        BinaryOp.Minimum => double.IsNaN(a) || double.IsNaN(b) ? double.NaN : Math.Min(a, b),
        BinaryOp.Gt => a > b ? 1 : 0,
        BinaryOp.Ge => a >= b ? 1 : 0,
        BinaryOp.Lt => a < b ? 1 : 0,
        BinaryOp.Le => a <= b ? 1 : 0,
        BinaryOp.Eq => a == b ? 1 : 0,
        BinaryOp.Ne => a != b ? 1 : 0,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    /// <summary>NumPy-broadcast op over two row-major arrays; returns the result and its shape.</summary>
    public static (float[] y, int[] shape) Binary(BinaryOp op, float[] a, int[] aShape, float[] b, int[] bShape)
    {
        var shape = ShapeUtil.Broadcast(aShape, bShape);
        var y = new float[ShapeUtil.Numel(shape)];
        var idx = new int[shape.Length];
        for (int i = 0; i < y.Length; i++)
        {
            Unravel(i, shape, idx);
            y[i] = (float)Binary(op, a[Index(idx, aShape)], b[Index(idx, bShape)]);
        }
        return (y, shape);
    }

    /// <summary>Broadcast cond != 0 ? a : b over three row-major arrays.</summary>
    public static (float[] y, int[] shape) Where(float[] c, int[] cShape, float[] a, int[] aShape, float[] b, int[] bShape)
    {
        var shape = ShapeUtil.Broadcast(ShapeUtil.Broadcast(cShape, aShape), bShape);
        var y = new float[ShapeUtil.Numel(shape)];
        var idx = new int[shape.Length];
        for (int i = 0; i < y.Length; i++)
        {
            Unravel(i, shape, idx);
            y[i] = c[Index(idx, cShape)] != 0 ? a[Index(idx, aShape)] : b[Index(idx, bShape)];
        }
        return (y, shape);
    }

    /// <summary>Broadcast copy of x (shape xShape) to shape.</summary>
    public static float[] Expand(float[] x, int[] xShape, int[] shape)
    {
        var y = new float[ShapeUtil.Numel(shape)];
        var idx = new int[shape.Length];
        for (int i = 0; i < y.Length; i++)
        {
            Unravel(i, shape, idx);
            y[i] = x[Index(idx, xShape)];
        }
        return y;
    }

    /// <summary>Row-major multi-index of flat index i.</summary>
    internal static void Unravel(int i, int[] shape, int[] idx)
    {
        for (int d = shape.Length - 1; d >= 0; d--) { idx[d] = i % shape[d]; i /= shape[d]; }
    }

    /// <summary>Flat index into an array of shape <paramref name="shape"/> (right-aligned, size-1 dims broadcast) at a broadcast multi-index.</summary>
    internal static int Index(int[] idx, int[] shape)
    {
        int off = idx.Length - shape.Length, flat = 0;
        for (int d = 0; d < shape.Length; d++) flat = flat * shape[d] + (shape[d] == 1 ? 0 : idx[d + off]);
        return flat;
    }
}
