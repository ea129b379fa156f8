using Engine.Certify;
using NUnit.Framework;

namespace Engine.Tests.Certify;

/// <summary>
/// The statistics of randomized smoothing against values that do not come from the code under test: published normal
/// quantiles, the exact binomial tail summed term by term, closed forms of the incomplete beta function.
/// </summary>
public class SmoothingStatisticsTests
{
    [TestCase(0.975, 1.959963984540054)]
    [TestCase(0.5, 0.0)]
    [TestCase(0.999, 3.090232306167813)]
    [TestCase(1e-10, -6.361340902404056)]
    [TestCase(0.8413447460685429, 1.0)]
    [TestCase(0.6, 0.2533471031357998)]
    [TestCase(0.9999999, 5.199337582290662)]
    public void NormalQuantileMatchesKnownValues(double p, double z)
        => Assert.That(SmoothingStatistics.NormalQuantile(p), Is.EqualTo(z).Within(1e-13 * Math.Max(1, Math.Abs(z))));

    [Test]
    public void NormalQuantileIsAntisymmetricAndInvertsTheCdf()
    {
        foreach (var p in new[] { 1e-300, 1e-20, 1e-6, 0.001, 0.01, 0.1, 0.3, 0.45, 0.4999 })
        {
            double z = SmoothingStatistics.NormalQuantile(p);
            // 1 − p is exact in double only for p not far below the unit roundoff; its own rounding moves z by
            // about ulp(1)/φ(z).
            if (p > 1e-10) Assert.That(SmoothingStatistics.NormalQuantile(1 - p), Is.EqualTo(-z).Within(1e-15 / p + 1e-14), $"p = {p}");
            // The CDF is computed independently (incomplete gamma), so the round trip checks both.
            Assert.That(SmoothingStatistics.NormalCdf(z), Is.EqualTo(p).Within(1e-12 * p), $"p = {p}");
        }
        Assert.That(SmoothingStatistics.NormalCdf(1.959963984540054), Is.EqualTo(0.975).Within(1e-15));
        Assert.That(SmoothingStatistics.NormalCdf(-3), Is.EqualTo(0.0013498980316301035).Within(1e-17));
        Assert.That(SmoothingStatistics.NormalQuantile(0), Is.EqualTo(double.NegativeInfinity));
        Assert.That(SmoothingStatistics.NormalQuantile(1), Is.EqualTo(double.PositiveInfinity));
        Assert.Throws<ArgumentOutOfRangeException>(() => SmoothingStatistics.NormalQuantile(1.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => SmoothingStatistics.NormalQuantile(double.NaN));
    }

    [Test]
    public void RegularizedBetaMatchesClosedForms()
    {
        foreach (var x in new[] { 0.01, 0.2, 0.5, 0.77, 0.999 })
        {
            Assert.That(SmoothingStatistics.RegularizedBeta(x, 1, 1), Is.EqualTo(x).Within(1e-14));
            Assert.That(SmoothingStatistics.RegularizedBeta(x, 3.5, 1), Is.EqualTo(Math.Pow(x, 3.5)).Within(1e-14));
            Assert.That(SmoothingStatistics.RegularizedBeta(x, 1, 7), Is.EqualTo(1 - Math.Pow(1 - x, 7)).Within(1e-14));
        }
        // The front factor exp(a ln x + b ln(1 − x) − ln B(a, b)) loses about a·1e-16 to cancellation.
        foreach (var a in new[] { 0.5, 3.0, 40.0, 5000.0 })
            Assert.That(SmoothingStatistics.RegularizedBeta(0.5, a, a), Is.EqualTo(0.5).Within(1e-14 + a * 1e-15), $"a = b = {a}");
    }

    // P(X >= k) for X ~ Binomial(n, p), summed exactly in double from the pmf recurrence (independent of the beta code).
    private static double UpperTail(int k, int n, double p)
    {
        double logPmf0 = n * Math.Log(1 - p), logRatio = Math.Log(p) - Math.Log(1 - p);
        double sum = 0, logPmf = logPmf0;
        for (int i = 0; i <= n; i++)
        {
            if (i > 0) logPmf += Math.Log(n - i + 1) - Math.Log(i) + logRatio;
            if (i >= k) sum += Math.Exp(logPmf);
        }
        return sum;
    }

    [TestCase(90, 100, 0.001)]
    [TestCase(50, 100, 0.05)]
    [TestCase(1, 100, 0.01)]
    [TestCase(990, 1000, 0.001)]
    [TestCase(612, 1000, 0.001)]
    [TestCase(3, 7, 0.2)]
    public void ClopperPearsonLowerPutsAlphaInTheExactBinomialTail(int k, int n, double alpha)
    {
        double p = SmoothingStatistics.ClopperPearsonLower(k, n, alpha);
        Assert.That(p, Is.GreaterThan(0).And.LessThan((double)k / n));
        Assert.That(UpperTail(k, n, p), Is.EqualTo(alpha).Within(1e-9 * alpha), "P(X >= k | n, p_lower) must equal alpha");
        // Upper bound: P(X <= k | n, p_upper) = alpha, i.e. 1 - P(X >= k + 1).
        double u = SmoothingStatistics.ClopperPearsonUpper(k, n, alpha);
        Assert.That(u, Is.GreaterThan((double)k / n).And.LessThan(1));
        Assert.That(1 - UpperTail(k + 1, n, u), Is.EqualTo(alpha).Within(1e-8 * alpha));
    }

    [Test]
    public void ClopperPearsonEdgeCasesHaveClosedForms()
    {
        // k = n: P(X >= n) = p^n = alpha, so p = alpha^(1/n).
        Assert.That(SmoothingStatistics.ClopperPearsonLower(1000, 1000, 0.001), Is.EqualTo(Math.Pow(0.001, 1.0 / 1000)).Within(1e-14));
        Assert.That(SmoothingStatistics.ClopperPearsonLower(100000, 100000, 0.001), Is.EqualTo(Math.Pow(0.001, 1.0 / 100000)).Within(1e-14));
        Assert.That(SmoothingStatistics.ClopperPearsonLower(0, 50, 0.01), Is.EqualTo(0));
        Assert.That(SmoothingStatistics.ClopperPearsonUpper(50, 50, 0.01), Is.EqualTo(1));
        // k = 1: P(X >= 1) = 1 - (1 - p)^n = alpha, so p = 1 − exp(y), y = ln(1 − alpha)/n (by its series: 1 − exp(y)
        // itself would cancel).
        double y = Math.Log(0.999) / 1e6, p1 = -(y + y * y / 2 + y * y * y / 6);
        Assert.That(SmoothingStatistics.ClopperPearsonLower(1, 1_000_000, 0.001), Is.EqualTo(p1).Within(1e-9 * p1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SmoothingStatistics.ClopperPearsonLower(5, 4, 0.1));
        Assert.Throws<ArgumentOutOfRangeException>(() => SmoothingStatistics.ClopperPearsonLower(1, 4, 1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SmoothingStatistics.ClopperPearsonLower(1, 0, 0.1));
    }

    [Test]
    public void CertifiedRadiusIsSigmaTimesTheQuantileAndAbstainsBelowOneHalf()
    {
        // Φ(1) = 0.8413447460685429: radius exactly sigma.
        Assert.That(SmoothingStatistics.CertifiedRadius(0.8413447460685429, 0.5), Is.EqualTo(0.5).Within(1e-13));
        Assert.That(SmoothingStatistics.CertifiedRadius(0.975, 0.25), Is.EqualTo(0.25 * 1.959963984540054).Within(1e-13));
        Assert.That(SmoothingStatistics.CertifiedRadius(0.5, 1.0), Is.EqualTo(0));
        Assert.That(SmoothingStatistics.CertifiedRadius(0.4999, 1.0), Is.Null);
        Assert.Throws<ArgumentOutOfRangeException>(() => SmoothingStatistics.CertifiedRadius(0.9, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SmoothingStatistics.CertifiedRadius(1.1, 1));
    }

    [Test]
    public void DecideCertifiesAUnanimousCountAndAbstainsOnASplitOne()
    {
        // All 1000 samples agree: pA = 0.001^(1/1000) = 0.9931160484209338, radius 0.25·Φ⁻¹(pA) = 0.6158156536952025.
        var all = SmoothedClassifier.Decide(7, 1000, 1000, 0.001, 0.25);
        Assert.That(all.Class, Is.EqualTo(7));
        Assert.That(all.PALower, Is.EqualTo(0.9931160484209338).Within(1e-13));
        Assert.That(all.Radius, Is.EqualTo(0.6158156536952025).Within(1e-12));
        // 520 of 1000: the point estimate is above 1/2 but the lower bound is not: abstain.
        var split = SmoothedClassifier.Decide(2, 520, 1000, 0.001, 0.25);
        Assert.That(split.Abstained, Is.True);
        Assert.That(split.Class, Is.EqualTo(-1));
        Assert.That(double.IsNaN(split.Radius), Is.True);
        Assert.That(split.PALower, Is.LessThan(0.5));
    }
}
