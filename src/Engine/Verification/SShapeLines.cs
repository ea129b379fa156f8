using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// Rigorous linear bounds of sigmoid and tanh on an interval, for the float64 guard. Enclosures of f and f' at a point
/// assume the platform's Math.Exp / Math.Tanh are within 2⁻⁴⁴ relative (256 ulps) of the exact value (glibc and
/// .NET document errors below 2 ulps). Both functions are increasing, convex on (−∞, 0], concave on [0, ∞) and
/// satisfy f(x) = 2·f(0) − f(−x), so a lower line on [l, u] is the reflection of an upper line on [−u, −l].
/// </summary>
internal static class SShapeLines
{
    // 2⁻⁴⁴, written out exactly.
    private const double Rel = 5.684341886080801486968994140625E-14;

    /// <summary>f(0): 1/2 for sigmoid, 0 for tanh (exact).</summary>
    public static double F0(SShapeKind k) => k == SShapeKind.Sigmoid ? 0.5 : 0.0;

    /// <summary>Approximate f(x) (round to nearest, for forward passes).</summary>
    public static double Eval(SShapeKind k, double x) => k == SShapeKind.Sigmoid ? 1.0 / (1.0 + Math.Exp(-x)) : Math.Tanh(x);

    /// <summary>An interval that contains f(x).</summary>
    public static (double Lo, double Hi) F(SShapeKind k, double x)
    {
        double v = Eval(k, x);
        double e = Up(Math.Abs(v) * Rel + Tiny);
        double lo = Down(v - e), hi = Up(v + e);
        return k == SShapeKind.Sigmoid ? (Math.Max(lo, 0), Math.Min(hi, 1)) : (Math.Max(lo, -1), Math.Min(hi, 1));
    }

    /// <summary>An interval that contains f'(x).</summary>
    public static (double Lo, double Hi) Derivative(SShapeKind k, double x)
    {
        var (lo, hi) = F(k, x);
        if (k == SShapeKind.Sigmoid)
        {
            // σ(1 − σ) is increasing for σ < 1/2 and decreasing above.
            double a = MulDown(lo, Down(1 - lo)), b = MulDown(hi, Down(1 - hi));
            double a2 = MulUp(lo, Up(1 - lo)), b2 = MulUp(hi, Up(1 - hi));
            double dl = Math.Min(a, b), dh = Math.Max(a2, b2);
            if (lo <= 0.5 && hi >= 0.5) dh = 0.25;
            return (Math.Max(dl, 0), Math.Min(dh, 0.25));
        }
        // 1 − tanh², tanh² over [lo, hi].
        double sqLo = lo > 0 ? MulDown(lo, lo) : hi < 0 ? MulDown(hi, hi) : 0;
        double sqHi = Math.Max(MulUp(lo, lo), MulUp(hi, hi));
        return (Math.Max(Down(1 - sqHi), 0), Math.Min(Up(1 - sqLo), 1));
    }

    /// <summary>A line s·x + t with f(x) ≤ s·x + t for every x in [l, u] (l ≤ u finite).</summary>
    public static (double S, double T) Upper(SShapeKind k, double l, double u)
    {
        if (!(l < u)) return (0, F(k, u).Hi);
        if (u <= 0)
        {
            // Convex part: a line above f at both ends is above it in between.
            double fl = Eval(k, l), fu = Eval(k, u);
            double s = (fu - fl) / (u - l);
            if (!double.IsFinite(s) || s < 0) s = 0;
            return (s, Math.Max(AboveAt(k, s, l), AboveAt(k, s, u)));
        }
        double a = Math.Max(l, 0);
        double p;
        if (l >= 0) p = a + 0.5 * (u - a);
        else
        {
            // The tangent point whose tangent passes through (l, f(l)); h(p) increases with p on [0, u].
            double fl = Eval(k, l);
            double H(double q) => Eval(k, q) + Mid(Derivative(k, q)) * (l - q) - fl;
            if (H(u) <= 0) p = u;
            else
            {
                double lo = 0, hi = u;
                for (int it = 0; it < 40; it++) { double m = 0.5 * (lo + hi); if (H(m) <= 0) lo = m; else hi = m; }
                p = hi;
            }
        }
        var (dl, dh) = Derivative(k, p);
        double sl = Mid((dl, dh));
        double es = Up(Math.Max(dh - sl, sl - dl));
        double w = Up(Math.Max(p - a, u - p));
        // Concave part [a, u]: f(x) ≤ f(p) + f'(p)(x − p) ≤ fh(p) + s(x − p) + |f'(p) − s|·|x − p|.
        double t = Up(Up(F(k, p).Hi - Down(sl * p)) + MulUp(es, w));
        // With l < 0, f − line is convex on [l, 0]; it is ≤ 0 at 0 (the tangent bound covers 0) and at l after this.
        if (l < 0) t = Math.Max(t, AboveAt(k, sl, l));
        return (sl, t);
    }

    /// <summary>A line s·x + t with f(x) ≥ s·x + t for every x in [l, u] (l ≤ u finite).</summary>
    public static (double S, double T) Lower(SShapeKind k, double l, double u)
    {
        if (!(l < u)) return (0, F(k, l).Lo);
        // f(x) = 2f(0) − f(−x) ≥ 2f(0) − (s·(−x) + t) = s·x + (2f(0) − t).
        var (s, t) = Upper(k, -u, -l);
        return (s, Down(2 * F0(k) - t));
    }

    private static double Mid((double Lo, double Hi) v) => v.Lo + 0.5 * (v.Hi - v.Lo);

    /// <summary>The least intercept (rounded up) for which s·x + t ≥ f(x) at x.</summary>
    private static double AboveAt(SShapeKind k, double s, double x) => Up(F(k, x).Hi - Down(s * x));
}
