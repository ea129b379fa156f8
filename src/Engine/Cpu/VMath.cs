using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Cpu;

/// <summary>
/// Vectorised transcendental functions for float32 (Vector256 / Vector512) with scalar twins. Exp is a
/// Cephes-style range reduction + degree-6 polynomial (under 1 ulp, exp(0) == 1 exactly, 0 for large negative
/// inputs, +inf above ~88.72, NaN preserved), because the BCL's vector Exp is ~1.5 ulp and misses exp(0) == 1.
/// </summary>
internal static class VMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2Hi = 0.693359375f;
    private const float Ln2Lo = -2.12194440e-4f;
    // Clamping to [-110, 88.8] keeps the integer exponent in [-159, 128]; applied in two halves it never leaves
    // the normal range until the final multiply, which then rounds to a denormal, 0 or +inf correctly.
    private const float ExpLo = -110f, ExpHi = 88.8f;
    private const float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f,
                        P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    // ---------------------------------------------------------------- exp

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exp(float x) => MathF.Exp(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(ExpLo)), Vector512.Create(ExpHi));
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Hi), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Lo), r);
        var p = Vector512.Create(P0);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P1));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(P5));
        p = Vector512.FusedMultiplyAdd(p, r * r, r) + Vector512<float>.One;
        var ni = Vector512.ConvertToInt32(n);
        var n1 = Vector512.ShiftRightArithmetic(ni, 1);
        var s1 = Vector512.ShiftLeft(n1 + Vector512.Create(127), 23).AsSingle();
        var s2 = Vector512.ShiftLeft(ni - n1 + Vector512.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpLo)), Vector256.Create(ExpHi));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Hi), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Lo), r);
        var p = Vector256.Create(P0);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P1));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(P5));
        p = Vector256.FusedMultiplyAdd(p, r * r, r) + Vector256<float>.One;
        var ni = Vector256.ConvertToInt32(n);
        var n1 = Vector256.ShiftRightArithmetic(ni, 1);
        var s1 = Vector256.ShiftLeft(n1 + Vector256.Create(127), 23).AsSingle();
        var s2 = Vector256.ShiftLeft(ni - n1 + Vector256.Create(127), 23).AsSingle();
        return p * s1 * s2;
    }

    // ---------------------------------------------------------------- log, log1p

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Log(float x) => MathF.Log(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Log(Vector512<float> x) => Vector512.Log(x);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Log(Vector256<float> x) => Vector256.Log(x);

    // log1p(e) for e >= 0 by Goldberg's trick: log(u) * e / (u - 1) with u = 1 + e cancels the rounding of u,
    // so tiny e keeps full relative accuracy (softplus of very negative inputs stays non-zero).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Log1p(float e)
    {
        float u = 1f + e;
        return u == 1f ? e : MathF.Log(u) * e / (u - 1f);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Log1p(Vector512<float> e)
    {
        var u = Vector512<float>.One + e;
        var d = u - Vector512<float>.One;
        var r = Vector512.Log(u) * e / d;
        return Vector512.ConditionalSelect(Vector512.Equals(d, Vector512<float>.Zero), e, r);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Log1p(Vector256<float> e)
    {
        var u = Vector256<float>.One + e;
        var d = u - Vector256<float>.One;
        var r = Vector256.Log(u) * e / d;
        return Vector256.ConditionalSelect(Vector256.Equals(d, Vector256<float>.Zero), e, r);
    }

    // ---------------------------------------------------------------- sigmoid, tanh

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Sigmoid(Vector512<float> x) => Vector512<float>.One / (Vector512<float>.One + Exp(-x));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sigmoid(Vector256<float> x) => Vector256<float>.One / (Vector256<float>.One + Exp(-x));

    // tanh(|x|) = (1 - e) / (1 + e), e = exp(-2|x|), loses relative accuracy near 0 (1 - e cancels), so below
    // TanhSmall an odd Taylor polynomial takes over (its truncation error there is < 1e-11 relative).
    private const float TanhSmall = 0.0625f;
    private const float T3 = -1f / 3f, T5 = 2f / 15f, T7 = -17f / 315f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Tanh(float x) => MathF.Tanh(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Tanh(Vector512<float> x)
    {
        var a = Vector512.Abs(x);
        var e = Exp(a * Vector512.Create(-2f));
        var big = (Vector512<float>.One - e) / (Vector512<float>.One + e);
        big = Vector512.CopySign(big, x);
        var x2 = x * x;
        var poly = Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.FusedMultiplyAdd(Vector512.Create(T7), x2, Vector512.Create(T5)), x2, Vector512.Create(T3)), x2 * x, x);
        return Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(TanhSmall)), poly, big);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x)
    {
        var a = Vector256.Abs(x);
        var e = Exp(a * Vector256.Create(-2f));
        var big = (Vector256<float>.One - e) / (Vector256<float>.One + e);
        big = Vector256.CopySign(big, x);
        var x2 = x * x;
        var poly = Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.FusedMultiplyAdd(Vector256.Create(T7), x2, Vector256.Create(T5)), x2, Vector256.Create(T3)), x2 * x, x);
        return Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(TanhSmall)), poly, big);
    }

    // ---------------------------------------------------------------- softplus

    // softplus(x) = max(x, 0) + log1p(exp(-|x|)): never overflows, and stays accurate for very negative x.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Softplus(float x) => MathF.Max(x, 0f) + Log1p(MathF.Exp(-MathF.Abs(x)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Softplus(Vector512<float> x) => Vector512.Max(x, Vector512<float>.Zero) + Log1p(Exp(-Vector512.Abs(x)));
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Softplus(Vector256<float> x) => Vector256.Max(x, Vector256<float>.Zero) + Log1p(Exp(-Vector256.Abs(x)));

    // ---------------------------------------------------------------- pow

    /// <summary>
    /// x^p for a fixed exponent, computed as exp(p * log|x|) in double (so the result is correctly rounded
    /// to within an ulp for any exponent) with IEEE pow's sign rules for negative x: odd integer p keeps the
    /// sign, even integer p drops it, non-integer p gives NaN.
    /// </summary>
    public readonly struct PowParams
    {
        public readonly float P;
        public readonly bool IsInteger, IsOdd;
        public PowParams(float p)
        {
            P = p;
            IsInteger = MathF.Round(p) == p;
            IsOdd = IsInteger && MathF.Abs(p) < 16777216f && ((long)p & 1) != 0;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Pow(float x, in PowParams pp) => MathF.Pow(x, pp.P);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Pow(Vector512<float> x, in PowParams pp)
    {
        var (lo, hi) = Vector512.Widen(Vector512.Abs(x));
        var p = Vector512.Create((double)pp.P);
        lo = Vector512.Exp(Vector512.Log(lo) * p);
        hi = Vector512.Exp(Vector512.Log(hi) * p);
        var r = Vector512.Narrow(lo, hi);
        // Negative finite x with non-integer p is NaN; (-inf)^p is +inf or +0 (IEEE, and MathF.Pow on the scalar tail), which r already is.
        if (!pp.IsInteger) return Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512<float>.Zero) & Vector512.GreaterThan(x, Vector512.Create(float.NegativeInfinity)), Vector512.Create(float.NaN), r);
        // The sign bit (not x < 0) so that (-0)^odd keeps its sign like IEEE pow.
        var neg = Vector512.LessThan(x.AsInt32(), Vector512<int>.Zero).AsSingle();
        return pp.IsOdd ? Vector512.ConditionalSelect(neg, -r, r) : r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Pow(Vector256<float> x, in PowParams pp)
    {
        var (lo, hi) = Vector256.Widen(Vector256.Abs(x));
        var p = Vector256.Create((double)pp.P);
        lo = Vector256.Exp(Vector256.Log(lo) * p);
        hi = Vector256.Exp(Vector256.Log(hi) * p);
        var r = Vector256.Narrow(lo, hi);
        // Negative finite x with non-integer p is NaN; (-inf)^p is +inf or +0 (IEEE, and MathF.Pow on the scalar tail), which r already is.
        if (!pp.IsInteger) return Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256<float>.Zero) & Vector256.GreaterThan(x, Vector256.Create(float.NegativeInfinity)), Vector256.Create(float.NaN), r);
        // The sign bit (not x < 0) so that (-0)^odd keeps its sign like IEEE pow.
        var neg = Vector256.LessThan(x.AsInt32(), Vector256<int>.Zero).AsSingle();
        return pp.IsOdd ? Vector256.ConditionalSelect(neg, -r, r) : r;
    }
}
