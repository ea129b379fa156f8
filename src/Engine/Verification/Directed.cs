namespace Engine.Verification;

// Directed rounding for the float64 guard, built on round-to-nearest: the result of one IEEE operation is within
// half an ulp of the exact value, so stepping it one representable number down (up) gives a lower (upper) bound.
// Dot products use the classical a-priori bound |fl(Σ aᵢbᵢ) − Σ aᵢbᵢ| ≤ γₙ Σ|aᵢbᵢ|, γₙ = nu/(1 − nu), u = 2⁻⁵³,
// which holds for any summation order (so vectorised sums are covered); DotSlack doubles it to absorb the rounding
// of Σ|aᵢbᵢ| itself and adds an absolute term per product for underflow.
internal static class Directed
{
    /// <summary>Per-product absolute slack covering gradual underflow (2⁻¹⁰⁷⁴ would do; far larger is still negligible).</summary>
    public const double Tiny = 1e-300;

    /// <summary>2⁻⁵² (twice the unit roundoff), written out exactly.</summary>
    public const double Ulp1 = 2.220446049250313080847263336181640625E-16;

    /// <summary>The next double below x (x itself for −∞ and NaN), as Math.BitDecrement, inlined.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static double Down(double x) => -Up(-x);

    /// <summary>The next double above x (x itself for +∞ and NaN), as Math.BitIncrement, inlined.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static double Up(double x)
    {
        long b = BitConverter.DoubleToInt64Bits(x);
        // Non-negative sign bit: one step away from zero, unless +∞ or NaN. Negative: one step toward zero (−0 → the
        // least positive subnormal).
        if (b >= 0) return b < 0x7FF0000000000000L ? BitConverter.Int64BitsToDouble(b + 1) : x;
        if (b == long.MinValue) return double.Epsilon;
        return b > unchecked((long)0xFFF0000000000000UL) ? x : BitConverter.Int64BitsToDouble(b - 1);
    }

    /// <summary>An upper bound on |fl(Σ) − Σ| for an n-term dot product whose computed Σ|terms| is absSum.</summary>
    public static double DotSlack(double absSum, int n) => Up(Up(absSum * ((n + 2) * Ulp1)) + (n + 1) * Tiny);

    /// <summary>Lower bound of a + b.</summary>
    public static double AddDown(double a, double b) => Down(a + b);

    /// <summary>Upper bound of a + b.</summary>
    public static double AddUp(double a, double b) => Up(a + b);

    /// <summary>Lower bound of a·b.</summary>
    public static double MulDown(double a, double b) => Down(a * b);

    /// <summary>Upper bound of a·b.</summary>
    public static double MulUp(double a, double b) => Up(a * b);

    /// <summary>Lower bound of Σ a[i]·b[i].</summary>
    public static double DotDown(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0, t = 0;
        for (int i = 0; i < a.Length; i++) { double p = a[i] * b[i]; s += p; t += Math.Abs(p); }
        return Down(s - DotSlack(t, a.Length));
    }

    /// <summary>Upper bound of Σ a[i]·b[i].</summary>
    public static double DotUp(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double s = 0, t = 0;
        for (int i = 0; i < a.Length; i++) { double p = a[i] * b[i]; s += p; t += Math.Abs(p); }
        return Up(s + DotSlack(t, a.Length));
    }
}
