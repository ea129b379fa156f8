using System.Runtime.Intrinsics;
using V256 = System.Runtime.Intrinsics.Vector256<float>;
using V512 = System.Runtime.Intrinsics.Vector512<float>;

namespace Engine.Cpu;

// Tiny operator structs in the style of TensorPrimitives: each op is written once per width (scalar, Vector256,
// Vector512) and one generic driver loop (ElementwiseLoops) is specialised per struct by the JIT, so every op
// gets the same vectorised loop, tails and threading without a per-element call.

/// <summary>y = f(x) for one element or one vector. Ops with parameters carry them as fields.</summary>
internal interface IUnaryOp
{
    float Invoke(float x);
    V256 Invoke(V256 x);
    V512 Invoke(V512 x);
}

/// <summary>dx = dy * f'(x), given x, the forward output y and dy.</summary>
internal interface IUnaryGradOp
{
    float Invoke(float x, float y, float dy);
    V256 Invoke(V256 x, V256 y, V256 dy);
    V512 Invoke(V512 x, V512 y, V512 dy);
}

/// <summary>y = f(a, b).</summary>
internal interface IBinaryOp
{
    float Invoke(float a, float b);
    V256 Invoke(V256 a, V256 b);
    V512 Invoke(V512 a, V512 b);
}

/// <summary>Operator structs of the elementwise kernels.</summary>
internal static class ElementwiseOps
{
    // ================================================================ unary forward

    public readonly struct Neg : IUnaryOp
    {
        public float Invoke(float x) => -x;
        public V256 Invoke(V256 x) => -x;
        public V512 Invoke(V512 x) => -x;
    }

    public readonly struct Abs : IUnaryOp
    {
        public float Invoke(float x) => MathF.Abs(x);
        public V256 Invoke(V256 x) => Vector256.Abs(x);
        public V512 Invoke(V512 x) => Vector512.Abs(x);
    }

    /// <summary>1, -1 or 0; NaN stays NaN (MathF.Sign would throw).</summary>
    public readonly struct Sign : IUnaryOp
    {
        public float Invoke(float x) => x > 0 ? 1f : x < 0 ? -1f : x == 0 ? 0f : x;
        public V256 Invoke(V256 x)
        {
            var s = (Vector256.GreaterThan(x, V256.Zero) & V256.One) - (Vector256.LessThan(x, V256.Zero) & V256.One);
            return Vector256.ConditionalSelect(Vector256.IsNaN(x), x, s);
        }
        public V512 Invoke(V512 x)
        {
            var s = (Vector512.GreaterThan(x, V512.Zero) & V512.One) - (Vector512.LessThan(x, V512.Zero) & V512.One);
            return Vector512.ConditionalSelect(Vector512.IsNaN(x), x, s);
        }
    }

    public readonly struct Exp : IUnaryOp
    {
        public float Invoke(float x) => VMath.Exp(x);
        public V256 Invoke(V256 x) => VMath.Exp(x);
        public V512 Invoke(V512 x) => VMath.Exp(x);
    }

    public readonly struct Log : IUnaryOp
    {
        public float Invoke(float x) => VMath.Log(x);
        public V256 Invoke(V256 x) => VMath.Log(x);
        public V512 Invoke(V512 x) => VMath.Log(x);
    }

    public readonly struct Sqrt : IUnaryOp
    {
        public float Invoke(float x) => MathF.Sqrt(x);
        public V256 Invoke(V256 x) => Vector256.Sqrt(x);
        public V512 Invoke(V512 x) => Vector512.Sqrt(x);
    }

    public readonly struct Square : IUnaryOp
    {
        public float Invoke(float x) => x * x;
        public V256 Invoke(V256 x) => x * x;
        public V512 Invoke(V512 x) => x * x;
    }

    public readonly struct Pow(float p) : IUnaryOp
    {
        private readonly VMath.PowParams _p = new(p);
        public float Invoke(float x) => VMath.Pow(x, _p);
        public V256 Invoke(V256 x) => VMath.Pow(x, _p);
        public V512 Invoke(V512 x) => VMath.Pow(x, _p);
    }

    /// <summary>min(max(x, lo), hi): NaN propagates (IEEE maximum/minimum), and lo &gt; hi gives hi like torch.clamp.</summary>
    public readonly struct Clamp(float lo, float hi) : IUnaryOp
    {
        public float Invoke(float x) => MathF.Min(MathF.Max(x, lo), hi);
        public V256 Invoke(V256 x) => Vector256.Min(Vector256.Max(x, Vector256.Create(lo)), Vector256.Create(hi));
        public V512 Invoke(V512 x) => Vector512.Min(Vector512.Max(x, Vector512.Create(lo)), Vector512.Create(hi));
    }

    /// <summary>max(x, 0); NaN propagates.</summary>
    public readonly struct Relu : IUnaryOp
    {
        public float Invoke(float x) => MathF.Max(x, 0f);
        public V256 Invoke(V256 x) => Vector256.Max(x, V256.Zero);
        public V512 Invoke(V512 x) => Vector512.Max(x, V512.Zero);
    }

    public readonly struct LeakyRelu(float slope) : IUnaryOp
    {
        public float Invoke(float x) => x > 0 ? x : slope * x;
        public V256 Invoke(V256 x) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, V256.Zero), x, x * Vector256.Create(slope));
        public V512 Invoke(V512 x) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, V512.Zero), x, x * Vector512.Create(slope));
    }

    public readonly struct Sigmoid : IUnaryOp
    {
        public float Invoke(float x) => VMath.Sigmoid(x);
        public V256 Invoke(V256 x) => VMath.Sigmoid(x);
        public V512 Invoke(V512 x) => VMath.Sigmoid(x);
    }

    public readonly struct Tanh : IUnaryOp
    {
        public float Invoke(float x) => VMath.Tanh(x);
        public V256 Invoke(V256 x) => VMath.Tanh(x);
        public V512 Invoke(V512 x) => VMath.Tanh(x);
    }

    /// <summary>softplus(beta x) / beta, and x itself where beta x &gt; threshold (like torch.nn.functional.softplus).</summary>
    public readonly struct Softplus(float beta, float threshold) : IUnaryOp
    {
        private readonly float _inv = 1f / beta;
        public float Invoke(float x)
        {
            float z = beta * x;
            return z > threshold ? x : VMath.Softplus(z) * _inv;
        }
        public V256 Invoke(V256 x)
        {
            var z = x * Vector256.Create(beta);
            return Vector256.ConditionalSelect(Vector256.GreaterThan(z, Vector256.Create(threshold)), x, VMath.Softplus(z) * Vector256.Create(_inv));
        }
        public V512 Invoke(V512 x)
        {
            var z = x * Vector512.Create(beta);
            return Vector512.ConditionalSelect(Vector512.GreaterThan(z, Vector512.Create(threshold)), x, VMath.Softplus(z) * Vector512.Create(_inv));
        }
    }

    /// <summary>alpha * x + beta (not fused, so the scalar tail rounds like the vector body).</summary>
    public readonly struct Affine(float alpha, float beta) : IUnaryOp
    {
        public float Invoke(float x) => alpha * x + beta;
        public V256 Invoke(V256 x) => Vector256.Create(alpha) * x + Vector256.Create(beta);
        public V512 Invoke(V512 x) => Vector512.Create(alpha) * x + Vector512.Create(beta);
    }

    /// <summary>alpha / x.</summary>
    public readonly struct Reciprocal(float alpha) : IUnaryOp
    {
        public float Invoke(float x) => alpha / x;
        public V256 Invoke(V256 x) => Vector256.Create(alpha) / x;
        public V512 Invoke(V512 x) => Vector512.Create(alpha) / x;
    }

    // ================================================================ unary backward

    public readonly struct NegGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => -dy;
        public V256 Invoke(V256 x, V256 y, V256 dy) => -dy;
        public V512 Invoke(V512 x, V512 y, V512 dy) => -dy;
    }

    /// <summary>dy * sign(x), 0 at x == 0 (PyTorch's subgradient choice).</summary>
    public readonly struct AbsGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => x > 0 ? dy : x < 0 ? -dy : 0f;
        public V256 Invoke(V256 x, V256 y, V256 dy)
            => Vector256.ConditionalSelect(Vector256.GreaterThan(x, V256.Zero), dy, Vector256.ConditionalSelect(Vector256.LessThan(x, V256.Zero), -dy, V256.Zero));
        public V512 Invoke(V512 x, V512 y, V512 dy)
            => Vector512.ConditionalSelect(Vector512.GreaterThan(x, V512.Zero), dy, Vector512.ConditionalSelect(Vector512.LessThan(x, V512.Zero), -dy, V512.Zero));
    }

    public readonly struct ZeroGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => 0f;
        public V256 Invoke(V256 x, V256 y, V256 dy) => V256.Zero;
        public V512 Invoke(V512 x, V512 y, V512 dy) => V512.Zero;
    }

    /// <summary>dy * y: the derivative of exp is its output.</summary>
    public readonly struct ExpGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => dy * y;
        public V256 Invoke(V256 x, V256 y, V256 dy) => dy * y;
        public V512 Invoke(V512 x, V512 y, V512 dy) => dy * y;
    }

    public readonly struct LogGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => dy / x;
        public V256 Invoke(V256 x, V256 y, V256 dy) => dy / x;
        public V512 Invoke(V512 x, V512 y, V512 dy) => dy / x;
    }

    /// <summary>dy / (2 sqrt(x)) from the saved output.</summary>
    public readonly struct SqrtGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => dy / (y + y);
        public V256 Invoke(V256 x, V256 y, V256 dy) => dy / (y + y);
        public V512 Invoke(V512 x, V512 y, V512 dy) => dy / (y + y);
    }

    public readonly struct SquareGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => (x + x) * dy;
        public V256 Invoke(V256 x, V256 y, V256 dy) => (x + x) * dy;
        public V512 Invoke(V512 x, V512 y, V512 dy) => (x + x) * dy;
    }

    /// <summary>dy * p * x^(p-1).</summary>
    public readonly struct PowGrad(float p) : IUnaryGradOp
    {
        private readonly VMath.PowParams _pm1 = new(p - 1f);
        public float Invoke(float x, float y, float dy) => dy * p * VMath.Pow(x, _pm1);
        public V256 Invoke(V256 x, V256 y, V256 dy) => dy * Vector256.Create(p) * VMath.Pow(x, _pm1);
        public V512 Invoke(V512 x, V512 y, V512 dy) => dy * Vector512.Create(p) * VMath.Pow(x, _pm1);
    }

    /// <summary>dy inside [lo, hi] (bounds included, like PyTorch), 0 outside and for NaN.</summary>
    public readonly struct ClampGrad(float lo, float hi) : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => x >= lo && x <= hi ? dy : 0f;
        public V256 Invoke(V256 x, V256 y, V256 dy)
            => dy & Vector256.GreaterThanOrEqual(x, Vector256.Create(lo)) & Vector256.LessThanOrEqual(x, Vector256.Create(hi));
        public V512 Invoke(V512 x, V512 y, V512 dy)
            => dy & Vector512.GreaterThanOrEqual(x, Vector512.Create(lo)) & Vector512.LessThanOrEqual(x, Vector512.Create(hi));
    }

    /// <summary>dy where x &gt; 0; the gradient at 0 is 0.</summary>
    public readonly struct ReluGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => x > 0 ? dy : 0f;
        public V256 Invoke(V256 x, V256 y, V256 dy) => dy & Vector256.GreaterThan(x, V256.Zero);
        public V512 Invoke(V512 x, V512 y, V512 dy) => dy & Vector512.GreaterThan(x, V512.Zero);
    }

    public readonly struct LeakyReluGrad(float slope) : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => x > 0 ? dy : slope * dy;
        public V256 Invoke(V256 x, V256 y, V256 dy) => Vector256.ConditionalSelect(Vector256.GreaterThan(x, V256.Zero), dy, dy * Vector256.Create(slope));
        public V512 Invoke(V512 x, V512 y, V512 dy) => Vector512.ConditionalSelect(Vector512.GreaterThan(x, V512.Zero), dy, dy * Vector512.Create(slope));
    }

    /// <summary>dy * y * (1 - y) from the saved output.</summary>
    public readonly struct SigmoidGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => dy * y * (1f - y);
        public V256 Invoke(V256 x, V256 y, V256 dy) => dy * y * (V256.One - y);
        public V512 Invoke(V512 x, V512 y, V512 dy) => dy * y * (V512.One - y);
    }

    /// <summary>dy * (1 - y²) from the saved output.</summary>
    public readonly struct TanhGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => dy * (1f - y * y);
        public V256 Invoke(V256 x, V256 y, V256 dy) => dy * (V256.One - y * y);
        public V512 Invoke(V512 x, V512 y, V512 dy) => dy * (V512.One - y * y);
    }

    /// <summary>dy * sigmoid(beta x), and dy where beta x is above the threshold (the forward is linear there).</summary>
    public readonly struct SoftplusGrad(float beta, float threshold) : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy)
        {
            float z = beta * x;
            return z > threshold ? dy : dy * VMath.Sigmoid(z);
        }
        public V256 Invoke(V256 x, V256 y, V256 dy)
        {
            var z = x * Vector256.Create(beta);
            return Vector256.ConditionalSelect(Vector256.GreaterThan(z, Vector256.Create(threshold)), dy, dy * VMath.Sigmoid(z));
        }
        public V512 Invoke(V512 x, V512 y, V512 dy)
        {
            var z = x * Vector512.Create(beta);
            return Vector512.ConditionalSelect(Vector512.GreaterThan(z, Vector512.Create(threshold)), dy, dy * VMath.Sigmoid(z));
        }
    }

    public readonly struct AffineGrad(float alpha) : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => alpha * dy;
        public V256 Invoke(V256 x, V256 y, V256 dy) => Vector256.Create(alpha) * dy;
        public V512 Invoke(V512 x, V512 y, V512 dy) => Vector512.Create(alpha) * dy;
    }

    /// <summary>d(alpha/x) = -alpha/x² dx = -y/x dx.</summary>
    public readonly struct ReciprocalGrad : IUnaryGradOp
    {
        public float Invoke(float x, float y, float dy) => -dy * y / x;
        public V256 Invoke(V256 x, V256 y, V256 dy) => -dy * y / x;
        public V512 Invoke(V512 x, V512 y, V512 dy) => -dy * y / x;
    }

    // ================================================================ binary

    public readonly struct Add : IBinaryOp
    {
        public float Invoke(float a, float b) => a + b;
        public V256 Invoke(V256 a, V256 b) => a + b;
        public V512 Invoke(V512 a, V512 b) => a + b;
    }

    public readonly struct Sub : IBinaryOp
    {
        public float Invoke(float a, float b) => a - b;
        public V256 Invoke(V256 a, V256 b) => a - b;
        public V512 Invoke(V512 a, V512 b) => a - b;
    }

    public readonly struct Mul : IBinaryOp
    {
        public float Invoke(float a, float b) => a * b;
        public V256 Invoke(V256 a, V256 b) => a * b;
        public V512 Invoke(V512 a, V512 b) => a * b;
    }

    public readonly struct Div : IBinaryOp
    {
        public float Invoke(float a, float b) => a / b;
        public V256 Invoke(V256 a, V256 b) => a / b;
        public V512 Invoke(V512 a, V512 b) => a / b;
    }

    /// <summary>IEEE 754-2019 maximum: NaN if either is NaN, +0 over -0.</summary>
    public readonly struct Max : IBinaryOp
    {
        public float Invoke(float a, float b) => MathF.Max(a, b);
        public V256 Invoke(V256 a, V256 b) => Vector256.Max(a, b);
        public V512 Invoke(V512 a, V512 b) => Vector512.Max(a, b);
    }

    /// <summary>IEEE 754-2019 minimum: NaN if either is NaN, -0 under +0.</summary>
    public readonly struct Min : IBinaryOp
    {
        public float Invoke(float a, float b) => MathF.Min(a, b);
        public V256 Invoke(V256 a, V256 b) => Vector256.Min(a, b);
        public V512 Invoke(V512 a, V512 b) => Vector512.Min(a, b);
    }

    // Comparisons give 1f / 0f: the all-ones lane mask ANDed with the bits of 1f. NaN compares false (Ne: true).

    public readonly struct Gt : IBinaryOp
    {
        public float Invoke(float a, float b) => a > b ? 1f : 0f;
        public V256 Invoke(V256 a, V256 b) => Vector256.GreaterThan(a, b) & V256.One;
        public V512 Invoke(V512 a, V512 b) => Vector512.GreaterThan(a, b) & V512.One;
    }

    public readonly struct Ge : IBinaryOp
    {
        public float Invoke(float a, float b) => a >= b ? 1f : 0f;
        public V256 Invoke(V256 a, V256 b) => Vector256.GreaterThanOrEqual(a, b) & V256.One;
        public V512 Invoke(V512 a, V512 b) => Vector512.GreaterThanOrEqual(a, b) & V512.One;
    }

    public readonly struct Lt : IBinaryOp
    {
        public float Invoke(float a, float b) => a < b ? 1f : 0f;
        public V256 Invoke(V256 a, V256 b) => Vector256.LessThan(a, b) & V256.One;
        public V512 Invoke(V512 a, V512 b) => Vector512.LessThan(a, b) & V512.One;
    }

    public readonly struct Le : IBinaryOp
    {
        public float Invoke(float a, float b) => a <= b ? 1f : 0f;
        public V256 Invoke(V256 a, V256 b) => Vector256.LessThanOrEqual(a, b) & V256.One;
        public V512 Invoke(V512 a, V512 b) => Vector512.LessThanOrEqual(a, b) & V512.One;
    }

    public readonly struct Eq : IBinaryOp
    {
        public float Invoke(float a, float b) => a == b ? 1f : 0f;
        public V256 Invoke(V256 a, V256 b) => Vector256.Equals(a, b) & V256.One;
        public V512 Invoke(V512 a, V512 b) => Vector512.Equals(a, b) & V512.One;
    }

    public readonly struct Ne : IBinaryOp
    {
        public float Invoke(float a, float b) => a != b ? 1f : 0f;
        public V256 Invoke(V256 a, V256 b) => ~Vector256.Equals(a, b) & V256.One;
        public V512 Invoke(V512 a, V512 b) => ~Vector512.Equals(a, b) & V512.One;
    }
}

/// <summary>Operator structs used only inside the reduction and softmax kernels.</summary>
internal static class ReduceOps
{
    /// <summary>e^(a - b): exponent of a max-shifted value.</summary>
    public readonly struct ExpShift : IBinaryOp
    {
        public float Invoke(float a, float b) => VMath.Exp(a - b);
        public V256 Invoke(V256 a, V256 b) => VMath.Exp(a - b);
        public V512 Invoke(V512 a, V512 b) => VMath.Exp(a - b);
    }

    /// <summary>dy - e^y · c: the log-softmax gradient along a row with c = Σ dy.</summary>
    public readonly struct LogSoftmaxGrad(float c) : IBinaryOp
    {
        public float Invoke(float dy, float y) => dy - VMath.Exp(y) * c;
        public V256 Invoke(V256 dy, V256 y) => dy - VMath.Exp(y) * Vector256.Create(c);
        public V512 Invoke(V512 dy, V512 y) => dy - VMath.Exp(y) * Vector512.Create(c);
    }

    /// <summary>m + log(s) where m is finite, else m itself (all -inf stays -inf, +inf and NaN pass through).</summary>
    public readonly struct LogSumExpFinish : IBinaryOp
    {
        public float Invoke(float m, float s) => float.IsFinite(m) ? m + MathF.Log(s) : m;
        public V256 Invoke(V256 m, V256 s)
            => Vector256.ConditionalSelect(Vector256.Equals(m - m, V256.Zero), m + Vector256.Log(s), m);
        public V512 Invoke(V512 m, V512 s)
            => Vector512.ConditionalSelect(Vector512.Equals(m - m, V512.Zero), m + Vector512.Log(s), m);
    }
}
