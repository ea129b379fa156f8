using Engine.Autograd;

namespace Engine.Tensors;

// Elementwise ops: unary math and activations, NumPy-broadcast binary arithmetic, comparisons, Where, and
// the C# operators. Backward rules of unary ops run the fused UnaryBackward kernel (one pass, from the saved
// input and output); those of broadcast ops are written with tensor ops and SumToShape the gradient back.
public sealed partial class Tensor
{
    // ---------------------------------------------------------------- unary

    /// <summary>-x.</summary>
    public Tensor Neg() => UnaryCore(UnaryOp.Neg, 0, 0, "Neg");
    /// <summary>|x|; the gradient at 0 is 0.</summary>
    public Tensor Abs() => UnaryCore(UnaryOp.Abs, 0, 0, "Abs");
    /// <summary>1, -1 or 0 (NaN stays NaN); its gradient is 0.</summary>
    public Tensor Sign() => UnaryCore(UnaryOp.Sign, 0, 0, "Sign");
    /// <summary>e^x (0, not NaN, for very negative x; +infinity above ~88.7).</summary>
    public Tensor Exp() => UnaryCore(UnaryOp.Exp, 0, 0, "Exp");
    /// <summary>Natural logarithm (NaN for x &lt; 0, -infinity at 0).</summary>
    public Tensor Log() => UnaryCore(UnaryOp.Log, 0, 0, "Log");
    /// <summary>Square root.</summary>
    public Tensor Sqrt() => UnaryCore(UnaryOp.Sqrt, 0, 0, "Sqrt");
    /// <summary>x².</summary>
    public Tensor Square() => UnaryCore(UnaryOp.Square, 0, 0, "Square");
    /// <summary>1 / x.</summary>
    public Tensor Reciprocal() => UnaryCore(UnaryOp.Reciprocal, 1, 0, "Reciprocal");

    /// <summary>
    /// x^exponent with IEEE pow rules (negative x: NaN unless the exponent is an integer). Exponents 2, 1, 0, -1
    /// use exact forms; the rest exp(p·log|x|) in double. Gradient: p·x^(p-1).
    /// </summary>
    public Tensor Pow(float exponent) => UnaryCore(UnaryOp.Pow, exponent, 0, "Pow");

    /// <summary>
    /// Clamps to [min, max] (a null bound is open); NaN stays NaN; when min &gt; max every element becomes max
    /// (torch.clamp). The gradient is 1 where min ≤ x ≤ max and 0 elsewhere.
    /// </summary>
    public Tensor Clamp(float? min, float? max)
    {
        if (min is float lo && float.IsNaN(lo) || max is float hi && float.IsNaN(hi))
            throw new ArgumentException($"Clamp: bounds must not be NaN (min {min}, max {max}).");
        return UnaryCore(UnaryOp.Clamp, min ?? float.NegativeInfinity, max ?? float.PositiveInfinity, "Clamp");
    }

    /// <summary>max(x, 0); NaN stays NaN; the gradient at 0 is 0.</summary>
    public Tensor Relu() => UnaryCore(UnaryOp.Relu, 0, 0, "Relu");
    /// <summary>x for x &gt; 0, negativeSlope·x otherwise.</summary>
    public Tensor LeakyRelu(float negativeSlope = 0.01f) => UnaryCore(UnaryOp.LeakyRelu, negativeSlope, 0, "LeakyRelu");
    /// <summary>1 / (1 + e^-x).</summary>
    public Tensor Sigmoid() => UnaryCore(UnaryOp.Sigmoid, 0, 0, "Sigmoid");
    /// <summary>Hyperbolic tangent.</summary>
    public Tensor Tanh() => UnaryCore(UnaryOp.Tanh, 0, 0, "Tanh");

    /// <summary>
    /// log(1 + e^(beta·x)) / beta, computed without overflow; x itself where beta·x &gt; threshold (like
    /// torch.nn.functional.softplus).
    /// </summary>
    public Tensor Softplus(float beta = 1f, float threshold = 20f)
    {
        if (!(beta > 0) || float.IsInfinity(beta)) throw new ArgumentException($"Softplus: beta must be positive and finite, not {beta}.");
        return UnaryCore(UnaryOp.Softplus, beta, threshold, "Softplus");
    }

    /// <summary>alpha·x + beta in one pass (what scalar +, -, * and / lower to).</summary>
    internal Tensor Affine(float alpha, float beta) => UnaryCore(UnaryOp.Affine, alpha, beta, "Affine");

    private Tensor UnaryCore(UnaryOp op, float alpha, float beta, string name)
    {
        var r = NewEmpty(Dims);
        K.Unary(op, Buf, r.Buf, Numel, alpha, beta);
        if (!GradRecorder.ShouldRecord(this)) return r;
        var y = r.Detach();   // the saved output, without a reference back into the graph
        return GradRecorder.Record(r, this, (g, x) =>
        {
            var dx = x.NewEmpty(x.Dims);
            x.K.UnaryBackward(op, x.Buf, y.Buf, g.Buf, dx.Buf, x.Numel, alpha, beta);
            return [dx];
        }, name);
    }

    // ---------------------------------------------------------------- binary (broadcast)

    /// <summary>a + b with NumPy broadcasting.</summary>
    public static Tensor Add(Tensor a, Tensor b) => BinaryCore(BinaryOp.Add, a, b, "Add");
    /// <summary>a - b with NumPy broadcasting.</summary>
    public static Tensor Sub(Tensor a, Tensor b) => BinaryCore(BinaryOp.Sub, a, b, "Sub");
    /// <summary>a · b (elementwise) with NumPy broadcasting.</summary>
    public static Tensor Mul(Tensor a, Tensor b) => BinaryCore(BinaryOp.Mul, a, b, "Mul");
    /// <summary>a / b with NumPy broadcasting.</summary>
    public static Tensor Div(Tensor a, Tensor b) => BinaryCore(BinaryOp.Div, a, b, "Div");

    /// <summary>Elementwise max with broadcasting; NaN if either is NaN. On ties the gradient is split 0.5 / 0.5.</summary>
    public static Tensor Maximum(Tensor a, Tensor b) => BinaryCore(BinaryOp.Maximum, a, b, "Maximum");
    /// <summary>Elementwise min with broadcasting; NaN if either is NaN. On ties the gradient is split 0.5 / 0.5.</summary>
    public static Tensor Minimum(Tensor a, Tensor b) => BinaryCore(BinaryOp.Minimum, a, b, "Minimum");

    /// <summary>1 where a &gt; b, else 0 (broadcast; no gradient).</summary>
    public static Tensor Gt(Tensor a, Tensor b) => BinaryCore(BinaryOp.Gt, a, b, "Gt");
    /// <summary>1 where a ≥ b, else 0 (broadcast; no gradient).</summary>
    public static Tensor Ge(Tensor a, Tensor b) => BinaryCore(BinaryOp.Ge, a, b, "Ge");
    /// <summary>1 where a &lt; b, else 0 (broadcast; no gradient).</summary>
    public static Tensor Lt(Tensor a, Tensor b) => BinaryCore(BinaryOp.Lt, a, b, "Lt");
    /// <summary>1 where a ≤ b, else 0 (broadcast; no gradient).</summary>
    public static Tensor Le(Tensor a, Tensor b) => BinaryCore(BinaryOp.Le, a, b, "Le");
    /// <summary>1 where a == b, else 0 (broadcast; NaN equals nothing; no gradient).</summary>
    public static Tensor Eq(Tensor a, Tensor b) => BinaryCore(BinaryOp.Eq, a, b, "Eq");
    /// <summary>1 where a != b, else 0 (broadcast; no gradient).</summary>
    public static Tensor Ne(Tensor a, Tensor b) => BinaryCore(BinaryOp.Ne, a, b, "Ne");

    /// <summary>1 where a &gt; b, else 0.</summary>
    public static Tensor Gt(Tensor a, float b) => Gt(a, ScalarOperand(b, a.Device));
    /// <summary>1 where a ≥ b, else 0.</summary>
    public static Tensor Ge(Tensor a, float b) => Ge(a, ScalarOperand(b, a.Device));
    /// <summary>1 where a &lt; b, else 0.</summary>
    public static Tensor Lt(Tensor a, float b) => Lt(a, ScalarOperand(b, a.Device));
    /// <summary>1 where a ≤ b, else 0.</summary>
    public static Tensor Le(Tensor a, float b) => Le(a, ScalarOperand(b, a.Device));
    /// <summary>1 where a == b, else 0.</summary>
    public static Tensor Eq(Tensor a, float b) => Eq(a, ScalarOperand(b, a.Device));
    /// <summary>1 where a != b, else 0.</summary>
    public static Tensor Ne(Tensor a, float b) => Ne(a, ScalarOperand(b, a.Device));

    /// <summary>Broadcast shape of two operands; the message names the op and both shapes when they are incompatible.</summary>
    internal static int[] BroadcastShapes(Tensor a, Tensor b, string op)
    {
        if (ShapeUtil.SameShape(a.Dims, b.Dims)) return a.Dims;
        try { return ShapeUtil.Broadcast(a.Dims, b.Dims); }
        catch (ArgumentException e) { throw new ArgumentException($"{op}: {e.Message}"); }
    }

    private static Tensor BinaryCore(BinaryOp op, Tensor a, Tensor b, string name)
    {
        CheckSameDevice(a, b, name);
        var shape = BroadcastShapes(a, b, name);
        var r = a.NewEmpty(shape);
        a.K.Binary(op, a.Buf, ShapeUtil.BroadcastStrides(a.Dims, shape), b.Buf, ShapeUtil.BroadcastStrides(b.Dims, shape), r.Buf, shape);
        if (op is BinaryOp.Gt or BinaryOp.Ge or BinaryOp.Lt or BinaryOp.Le or BinaryOp.Eq or BinaryOp.Ne) return r;   // piecewise constant: no gradient
        return GradRecorder.Record(r, a, b, op switch
        {
            BinaryOp.Add => static (g, a, b) => [GradFor(a, g), GradFor(b, g)],
            BinaryOp.Sub => static (g, a, b) => [GradFor(a, g), b.RequiresGrad ? g.Neg().SumToShape(b.Dims) : null],
            BinaryOp.Mul => static (g, a, b) => [a.RequiresGrad ? Mul(g, b).SumToShape(a.Dims) : null,
                                                 b.RequiresGrad ? Mul(g, a).SumToShape(b.Dims) : null],
            // d(a/b)/db = -a/b²
            BinaryOp.Div => static (g, a, b) => [a.RequiresGrad ? Div(g, b).SumToShape(a.Dims) : null,
                                                 b.RequiresGrad ? Div(Mul(g, a), b.Square()).Neg().SumToShape(b.Dims) : null],
            BinaryOp.Maximum => static (g, a, b) => MaxMinGrad(g, a, b, Gt(a, b)),
            BinaryOp.Minimum => static (g, a, b) => MaxMinGrad(g, a, b, Lt(a, b)),
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
        }, name);
    }

    private static Tensor? GradFor(Tensor input, Tensor g) => input.RequiresGrad ? g.SumToShape(input.Dims) : null;

    // wins = 1 where a is strictly selected; ties (a == b) give each side half, like PyTorch.
    private static Tensor?[] MaxMinGrad(Tensor g, Tensor a, Tensor b, Tensor wins)
    {
        var shareA = Add(wins, Eq(a, b).Affine(0.5f, 0f));
        return [a.RequiresGrad ? Mul(g, shareA).SumToShape(a.Dims) : null,
                b.RequiresGrad ? Mul(g, shareA.Affine(-1f, 1f)).SumToShape(b.Dims) : null];
    }

    // ---------------------------------------------------------------- where

    /// <summary>
    /// cond ? a : b elementwise, all three broadcast together; cond is a float tensor where any non-zero value
    /// (NaN included) is true. The gradient goes to a where cond is true and to b elsewhere; cond gets none.
    /// </summary>
    public static Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        CheckSameDevice(cond, a, "Where");
        CheckSameDevice(a, b, "Where");
        int[] shape;
        try { shape = ShapeUtil.Broadcast(ShapeUtil.Broadcast(cond.Dims, a.Dims), b.Dims); }
        catch (ArgumentException)
        {
            throw new ArgumentException($"Where: shapes {ShapeUtil.Format(cond.Dims)} (cond), {ShapeUtil.Format(a.Dims)} (a) and {ShapeUtil.Format(b.Dims)} (b) cannot be broadcast together.");
        }
        var r = a.NewEmpty(shape);
        a.K.Where(cond.Buf, ShapeUtil.BroadcastStrides(cond.Dims, shape), a.Buf, ShapeUtil.BroadcastStrides(a.Dims, shape),
                  b.Buf, ShapeUtil.BroadcastStrides(b.Dims, shape), r.Buf, shape);
        if (!GradMode.IsEnabled || !(a.RequiresGrad || b.RequiresGrad)) return r;
        var c = cond.Detach();
        return GradRecorder.Record(r, [a, b], (g, ins) =>
        {
            var zero = ScalarOperand(0f, g.Device);
            return [ins[0].RequiresGrad ? Where(c, g, zero).SumToShape(ins[0].Dims) : null,
                    ins[1].RequiresGrad ? Where(c, zero, g).SumToShape(ins[1].Dims) : null];
        }, "Where");
    }

    /// <summary>cond ? a : b with a scalar b.</summary>
    public static Tensor Where(Tensor cond, Tensor a, float b) => Where(cond, a, ScalarOperand(b, a.Device));
    /// <summary>cond ? a : b with a scalar a.</summary>
    public static Tensor Where(Tensor cond, float a, Tensor b) => Where(cond, ScalarOperand(a, b.Device), b);

    // ---------------------------------------------------------------- operators

    /// <summary>Broadcast addition.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => Add(a, b);
    /// <summary>Broadcast subtraction.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => Sub(a, b);
    /// <summary>Broadcast elementwise product.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => Mul(a, b);
    /// <summary>Broadcast elementwise quotient.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => Div(a, b);
    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => a.Neg();

    /// <summary>x + s.</summary>
    public static Tensor operator +(Tensor a, float s) => a.Affine(1f, s);
    /// <summary>s + x.</summary>
    public static Tensor operator +(float s, Tensor a) => a.Affine(1f, s);
    /// <summary>x - s.</summary>
    public static Tensor operator -(Tensor a, float s) => a.Affine(1f, -s);
    /// <summary>s - x.</summary>
    public static Tensor operator -(float s, Tensor a) => a.Affine(-1f, s);
    /// <summary>x · s.</summary>
    public static Tensor operator *(Tensor a, float s) => a.Affine(s, 0f);
    /// <summary>s · x.</summary>
    public static Tensor operator *(float s, Tensor a) => a.Affine(s, 0f);
    /// <summary>x / s, computed as x · (1/s) (may differ from true division by one rounding, as on PyTorch's GPU path).</summary>
    public static Tensor operator /(Tensor a, float s) => a.Affine(1f / s, 0f);
    /// <summary>s / x.</summary>
    public static Tensor operator /(float s, Tensor a) => a.UnaryCore(UnaryOp.Reciprocal, s, 0, "Reciprocal");
}
