namespace Engine.Certify;

/// <summary>
/// The double-precision statistics randomized smoothing needs (Cohen et al. 2019): the standard normal CDF and its
/// inverse, the regularized incomplete beta function and its inverse, and the Clopper–Pearson bounds built on
/// them. Written here so that the core needs no numeric dependency; accuracy is about 1e-15 relative for the normal
/// functions; the beta functions lose about a·1e-16 relative to cancellation in their front factor (1e-11 at 10⁵
/// samples), far below the sampling error they bound.
/// </summary>
public static class SmoothingStatistics
{
    /// <summary>Φ(x), the standard normal CDF, as ½·erfc(−x/√2) through the regularized incomplete gamma function.</summary>
    public static double NormalCdf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        if (x == 0) return 0.5;
        double t = x * x / 2;
        // erfc(|x|/√2) = Q(½, x²/2) and erf = P(½, x²/2); choose the one that does not cancel.
        double tail = t < 1.5 ? 1 - GammaPSeries(0.5, t) : GammaQFraction(0.5, t);
        return x < 0 ? tail / 2 : 1 - tail / 2;
    }

    /// <summary>
    /// Φ⁻¹(p), the standard normal quantile, for p in (0, 1) (−∞ at 0, +∞ at 1): Wichura's algorithm AS 241
    /// (PPND16, relative error about 1e-16).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">p is outside [0, 1] or NaN.</exception>
    public static double NormalQuantile(double p)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"NormalQuantile: p must be in [0, 1], got {p}.");
        if (p == 0) return double.NegativeInfinity;
        if (p == 1) return double.PositiveInfinity;
        double q = p - 0.5;
        if (Math.Abs(q) <= 0.425)
        {
            double r = 0.180625 - q * q;
            return q * (((((((r * 2509.0809287301226727 + 33430.575583588128105) * r + 67265.770927008700853) * r
                        + 45921.953931549871457) * r + 13731.693765509461125) * r + 1971.5909503065514427) * r
                        + 133.14166789178437745) * r + 3.387132872796366608)
                   / (((((((r * 5226.495278852545925 + 28729.085735721942674) * r + 39307.89580009271061) * r
                        + 21213.794301586595867) * r + 5394.1960214247511077) * r + 687.1870074920579083) * r
                        + 42.313330701600911252) * r + 1.0);
        }
        double rr = q < 0 ? p : 1 - p;
        rr = Math.Sqrt(-Math.Log(rr));
        double val;
        if (rr <= 5)
        {
            rr -= 1.6;
            val = (((((((rr * 7.7454501427834140764e-4 + 0.0227238449892691845833) * rr + 0.24178072517745061177) * rr
                    + 1.27045825245236838258) * rr + 3.64784832476320460504) * rr + 5.7694972214606914055) * rr
                    + 4.6303378461565452959) * rr + 1.42343711074968357734)
                / (((((((rr * 1.05075007164441684324e-9 + 5.475938084995344946e-4) * rr + 0.0151986665636164571966) * rr
                    + 0.14810397642748007459) * rr + 0.68976733498510000455) * rr + 1.6763848301838038494) * rr
                    + 2.05319162663775882187) * rr + 1.0);
        }
        else
        {
            rr -= 5;
            val = (((((((rr * 2.01033439929228813265e-7 + 2.71155556874348757815e-5) * rr + 0.0012426609473880784386) * rr
                    + 0.026532189526576123093) * rr + 0.29656057182850489123) * rr + 1.7848265399172913358) * rr
                    + 5.4637849111641143699) * rr + 6.6579046435011037772)
                / (((((((rr * 2.04426310338993978564e-15 + 1.4215117583164458887e-7) * rr + 1.8463183175100546818e-5) * rr
                    + 7.868691311456132591e-4) * rr + 0.0148753612908506148525) * rr + 0.13692988092273580531) * rr
                    + 0.59983220655588793769) * rr + 1.0);
        }
        return q < 0 ? -val : val;
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, nine terms; about 1e-15 relative).</summary>
    public static double LogGamma(double x)
    {
        if (!(x > 0)) throw new ArgumentOutOfRangeException(nameof(x), $"LogGamma: x must be > 0, got {x}.");
        // Reflection keeps the series in its accurate range for small x.
        if (x < 0.5) return Math.Log(Math.PI / Math.Sin(Math.PI * x)) - LogGamma(1 - x);
        x -= 1;
        double a = 0.99999999999980993;
        double t = x + 7.5;
        a += 676.5203681218851 / (x + 1);
        a += -1259.1392167224028 / (x + 2);
        a += 771.32342877765313 / (x + 3);
        a += -176.61502916214059 / (x + 4);
        a += 12.507343278686905 / (x + 5);
        a += -0.13857109526572012 / (x + 6);
        a += 9.9843695780195716e-6 / (x + 7);
        a += 1.5056327351493116e-7 / (x + 8);
        return 0.91893853320467274178 + (x + 0.5) * Math.Log(t) - t + Math.Log(a);
    }

    /// <summary>The regularized incomplete beta function I_x(a, b) for a, b &gt; 0 and x in [0, 1] (Lentz's continued fraction).</summary>
    public static double RegularizedBeta(double x, double a, double b)
    {
        if (!(a > 0) || !(b > 0)) throw new ArgumentOutOfRangeException(nameof(a), $"RegularizedBeta: a and b must be > 0, got {a} and {b}.");
        if (!(x >= 0 && x <= 1)) throw new ArgumentOutOfRangeException(nameof(x), $"RegularizedBeta: x must be in [0, 1], got {x}.");
        if (x == 0) return 0;
        if (x == 1) return 1;
        double logFront = a * Math.Log(x) + b * Log1P(-x) - LogBeta(a, b);
        // The continued fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise.
        if (x < (a + 1) / (a + b + 2)) return Math.Exp(logFront) * BetaFraction(x, a, b) / a;
        return 1 - Math.Exp(logFront) * BetaFraction(1 - x, b, a) / b;
    }

    /// <summary>
    /// The p-quantile of Beta(a, b): the x with I_x(a, b) = p, by bisection to adjacent doubles (I_x is monotone in
    /// x, so the result is as accurate as <see cref="RegularizedBeta"/>).
    /// </summary>
    public static double BetaQuantile(double p, double a, double b)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"BetaQuantile: p must be in [0, 1], got {p}.");
        if (!(a > 0) || !(b > 0)) throw new ArgumentOutOfRangeException(nameof(a), $"BetaQuantile: a and b must be > 0, got {a} and {b}.");
        if (p == 0) return 0;
        if (p == 1) return 1;
        double lo = 0, hi = 1;
        for (int i = 0; i < 2200; i++)
        {
            // Geometric midpoints while the bracket spans orders of magnitude, so that tiny quantiles (a few successes of
            // millions of trials) converge in relative terms too.
            double mid = lo == 0 ? hi / 16 : hi / lo > 4 ? Math.Sqrt(lo * hi) : 0.5 * (lo + hi);
            if (mid <= lo || mid >= hi) break;
            if (RegularizedBeta(mid, a, b) < p) lo = mid; else hi = mid;
        }
        return 0.5 * (lo + hi);
    }

    /// <summary>
    /// One-sided Clopper–Pearson lower confidence bound on a binomial proportion: with probability at least
    /// 1 − <paramref name="alpha"/> the true p is ≥ the result, after <paramref name="successes"/> of
    /// <paramref name="trials"/>. It is the Beta(k, n − k + 1) quantile at alpha (0 when k = 0), i.e. the p at which
    /// P(X ≥ k | n, p) = alpha (statsmodels' proportion_confint(k, n, 2·alpha, "beta")[0], as Cohen et al. use).
    /// </summary>
    public static double ClopperPearsonLower(long successes, long trials, double alpha)
    {
        CheckCounts(successes, trials, alpha, "ClopperPearsonLower");
        return successes == 0 ? 0 : BetaQuantile(alpha, successes, trials - successes + 1);
    }

    /// <summary>One-sided Clopper–Pearson upper bound: the Beta(k + 1, n − k) quantile at 1 − alpha (1 when k = n).</summary>
    public static double ClopperPearsonUpper(long successes, long trials, double alpha)
    {
        CheckCounts(successes, trials, alpha, "ClopperPearsonUpper");
        return successes == trials ? 1 : BetaQuantile(1 - alpha, successes + 1, trials - successes);
    }

    /// <summary>
    /// The certified L2 radius of Cohen et al.'s CERTIFY: σ·Φ⁻¹(pA) for a lower bound pA ≥ ½ on the top class's
    /// probability under noise N(0, σ²I); null (abstain) when pA &lt; ½.
    /// </summary>
    public static double? CertifiedRadius(double pALower, double sigma)
    {
        if (!(pALower >= 0 && pALower <= 1)) throw new ArgumentOutOfRangeException(nameof(pALower), $"CertifiedRadius: pA must be in [0, 1], got {pALower}.");
        if (!(sigma > 0) || double.IsInfinity(sigma)) throw new ArgumentOutOfRangeException(nameof(sigma), $"CertifiedRadius: sigma must be finite and > 0, got {sigma}.");
        if (pALower < 0.5) return null;
        return sigma * NormalQuantile(pALower);
    }

    private static void CheckCounts(long k, long n, double alpha, string op)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"{op}: trials must be >= 1, got {n}.");
        if (k < 0 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"{op}: successes must be in [0, {n}], got {k}.");
        if (!(alpha > 0 && alpha < 1)) throw new ArgumentOutOfRangeException(nameof(alpha), $"{op}: alpha must be in (0, 1), got {alpha}.");
    }

    // ln(1 + x) without the cancellation of Math.Log(1 + x) for small x (Goldberg's trick: the rounding of 1 + x
    // cancels in the quotient).
    private static double Log1P(double x)
    {
        double u = 1 + x;
        return u == 1 ? x : Math.Log(u) * x / (u - 1);
    }

    private static double LogBeta(double a, double b) => LogGamma(a) + LogGamma(b) - LogGamma(a + b);

    // Modified Lentz evaluation of the continued fraction of I_x(a, b) (Numerical Recipes' betacf, in double with a
    // tight tolerance and enough iterations for a, b up to ~10⁷).
    private static double BetaFraction(double x, double a, double b)
    {
        const double tiny = 1e-300, eps = 1e-16;
        double qab = a + b, qap = a + 1, qam = a - 1;
        double c = 1, d = 1 - qab * x / qap;
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double h = d;
        for (int m = 1; m <= 100_000; m++)
        {
            int m2 = 2 * m;
            double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d; h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < eps) return h;
        }
        return h;
    }

    // P(a, x) by its series (x < a + 1).
    private static double GammaPSeries(double a, double x)
    {
        double ap = a, sum = 1 / a, del = sum;
        for (int n = 0; n < 10_000; n++)
        {
            ap += 1; del *= x / ap; sum += del;
            if (Math.Abs(del) < Math.Abs(sum) * 1e-17) break;
        }
        return sum * Math.Exp(-x + a * Math.Log(x) - LogGamma(a));
    }

    // Q(a, x) by its continued fraction (x ≥ a + 1 or so), modified Lentz.
    private static double GammaQFraction(double a, double x)
    {
        const double tiny = 1e-300;
        double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
        for (int i = 1; i < 10_000; i++)
        {
            double an = -i * (i - a);
            b += 2;
            d = an * d + b; if (Math.Abs(d) < tiny) d = tiny;
            c = b + an / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double del = d * c;
            h *= del;
            if (Math.Abs(del - 1) < 1e-16) break;
        }
        return Math.Exp(-x + a * Math.Log(x) - LogGamma(a)) * h;
    }
}
