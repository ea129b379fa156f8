namespace Engine.Tensors;

/// <summary>Elementwise unary ops of <see cref="IKernels.Unary"/>; alpha / beta are the op's parameters where it has any.</summary>
public enum UnaryOp
{
    /// <summary>-x.</summary>
    Neg,
    /// <summary>|x|.</summary>
    Abs,
    /// <summary>1, -1 or 0 (NaN stays NaN).</summary>
    Sign,
    /// <summary>e^x (0 for very negative x, never NaN from overflow).</summary>
    Exp,
    /// <summary>Natural log.</summary>
    Log,
    /// <summary>Square root.</summary>
    Sqrt,
    /// <summary>x².</summary>
    Square,
    /// <summary>x^alpha (IEEE pow sign rules for negative x).</summary>
    Pow,
    /// <summary>min(max(x, alpha), beta); pass ±infinity for a missing bound.</summary>
    Clamp,
    /// <summary>max(x, 0).</summary>
    Relu,
    /// <summary>x if x &gt; 0 else alpha·x.</summary>
    LeakyRelu,
    /// <summary>1 / (1 + e^-x).</summary>
    Sigmoid,
    /// <summary>tanh(x).</summary>
    Tanh,
    /// <summary>log(1 + e^(alpha·x)) / alpha, and x where alpha·x &gt; beta (alpha = beta of torch's softplus, beta = threshold).</summary>
    Softplus,
    /// <summary>alpha·x + beta (scalar add / subtract / multiply / divide).</summary>
    Affine,
    /// <summary>alpha / x.</summary>
    Reciprocal,
}

/// <summary>Elementwise binary ops of <see cref="IKernels.Binary"/>. Comparisons give 1 or 0.</summary>
public enum BinaryOp
{
    /// <summary>a + b.</summary>
    Add,
    /// <summary>a - b.</summary>
    Sub,
    /// <summary>a · b.</summary>
    Mul,
    /// <summary>a / b.</summary>
    Div,
    /// <summary>max(a, b), NaN if either is NaN.</summary>
    Maximum,
    /// <summary>min(a, b), NaN if either is NaN.</summary>
    Minimum,
    /// <summary>a &gt; b.</summary>
    Gt,
    /// <summary>a ≥ b.</summary>
    Ge,
    /// <summary>a &lt; b.</summary>
    Lt,
    /// <summary>a ≤ b.</summary>
    Le,
    /// <summary>a == b (NaN is unequal to everything).</summary>
    Eq,
    /// <summary>a != b.</summary>
    Ne,
}

public partial interface IKernels
{
    /// <summary>y[i] = op(x[i]) for i in [0, n), with the op's parameters alpha / beta (see <see cref="UnaryOp"/>). y may equal x.</summary>
    void Unary(UnaryOp op, Buf x, Buf y, int n, float alpha, float beta);

    /// <summary>
    /// dx[i] = dy[i] · op'(x[i]) where y = op(x) is the saved forward output (Exp, Sqrt, Sigmoid, Tanh and
    /// Reciprocal read y; the rest read x). Relu's derivative at 0 is 0, Abs's is 0, Clamp's is 1 on the closed interval.
    /// </summary>
    void UnaryBackward(UnaryOp op, Buf x, Buf y, Buf dy, Buf dx, int n, float alpha, float beta);

    /// <summary>
    /// y = op(a, b) over <paramref name="shape"/> (y contiguous), reading a and b through element strides
    /// (0 on broadcast dimensions; any rank-length stride lists are accepted).
    /// </summary>
    void Binary(BinaryOp op, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape);

    /// <summary>y = cond != 0 ? a : b over <paramref name="shape"/>, each input read through its strides (NaN counts as true).</summary>
    void Where(Buf cond, int[] condStrides, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape);

    /// <summary>Broadcast copy: y (contiguous, <paramref name="shape"/>) = x read through <paramref name="xStrides"/>.</summary>
    void Expand(Buf x, int[] xStrides, Buf y, int[] shape);

    /// <summary>
    /// y[i, c] = (labels[i] == c) for i in [0, n), c in [0, numClasses). Throws ArgumentException when a label is
    /// not an integer in [0, numClasses).
    /// </summary>
    void OneHot(Buf labels, Buf y, int n, int numClasses);
}
