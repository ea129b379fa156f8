using System.Globalization;
using System.Text;

namespace Engine.Certify;

/// <summary>What the certification found for one example.</summary>
/// <param name="Index">Index of the example in the dataset.</param>
/// <param name="Label">The true class.</param>
/// <param name="Prediction">The predicted class at the clean input (−1: the smoothed classifier abstained).</param>
/// <param name="Clean">Correctly classified at the clean input.</param>
/// <param name="Pgd">Clean and the attack found no misclassified input in the set.</param>
/// <param name="Verified">Proved robust over the whole set.</param>
/// <param name="MarginLowerBound">The certifier's lower bound on the smallest margin over the set (NaN: none; smoothing: NaN).</param>
/// <param name="AttackMargin">f_y − max_{j≠y} f_j at the attack's point (smoothing: NaN).</param>
/// <param name="Radius">Smoothing: the certified L2 radius (NaN: abstained or not smoothing).</param>
public sealed record ExampleCertificate(int Index, int Label, int Prediction, bool Clean, bool Pgd, bool Verified,
                                        float MarginLowerBound, float AttackMargin, double Radius = double.NaN);

/// <summary>
/// A certification report: clean, PGD and verified accuracy of a model over a dataset at one radius, with the
/// per-example results. Construction enforces verified ≤ PGD ≤ clean per example for deterministic certifiers
/// (<see cref="Certification"/> raises a <see cref="CertificationSoundnessException"/> before that), and counts the
/// violations of verified ≤ PGD for randomized smoothing, where a certificate holds with probability 1 − alpha.
/// </summary>
public sealed class CertificationReport
{
    /// <summary>Builds a report from its per-example results.</summary>
    /// <exception cref="InvalidOperationException">A deterministic report breaks verified ≤ PGD ≤ clean.</exception>
    public CertificationReport(IReadOnlyList<ExampleCertificate> examples, float eps, string norm, string method, string attack,
                               double seconds, SmoothingSummary? smoothing = null, int rechecked = 0, int recheckRejected = 0, BabStatistics? bab = null,
                               string? recheckUnavailable = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        Examples = examples;
        Eps = eps; Norm = norm; Method = method; Attack = attack; Seconds = seconds; Smoothing = smoothing; Bab = bab;
        Rechecked = rechecked; RecheckRejected = recheckRejected; RecheckUnavailable = recheckUnavailable;
        foreach (var e in examples)
        {
            if (e.Clean) Clean++;
            if (e.Pgd) Pgd++;
            if (e.Verified) Verified++;
            if (e.Pgd && !e.Clean || e.Verified && !e.Clean)
                throw new InvalidOperationException($"CertificationReport: example {e.Index} is counted robust but misclassified at the clean input.");
            if (e.Verified && !e.Pgd)
            {
                if (smoothing == null)
                    throw new CertificationSoundnessException(e.Index, $"CertificationReport: example {e.Index} is verified but was successfully attacked.");
                Inconsistent++;
            }
        }
    }

    /// <summary>Per-example results, in dataset order.</summary>
    public IReadOnlyList<ExampleCertificate> Examples { get; }

    /// <summary>Number of examples.</summary>
    public int Total => Examples.Count;

    /// <summary>Examples classified correctly at the clean input.</summary>
    public int Clean { get; }

    /// <summary>Examples the attack did not break (a subset of the clean ones).</summary>
    public int Pgd { get; }

    /// <summary>Examples proved robust.</summary>
    public int Verified { get; }

    /// <summary>Smoothing only: verified examples the attack broke anyway (each has probability at most about alpha).</summary>
    public int Inconsistent { get; }

    /// <summary>Clean accuracy in [0, 1].</summary>
    public double CleanAccuracy => Total == 0 ? 0 : (double)Clean / Total;

    /// <summary>PGD (empirical robust) accuracy in [0, 1].</summary>
    public double PgdAccuracy => Total == 0 ? 0 : (double)Pgd / Total;

    /// <summary>Verified (certified) accuracy in [0, 1].</summary>
    public double VerifiedAccuracy => Total == 0 ? 0 : (double)Verified / Total;

    /// <summary>The radius.</summary>
    public float Eps { get; }

    /// <summary>"inf" or "2".</summary>
    public string Norm { get; }

    /// <summary>The certifier's name ("crown", "ibp", "alpha-crown", "smoothing", ...).</summary>
    public string Method { get; }

    /// <summary>The attack's settings, as printed.</summary>
    public string Attack { get; }

    /// <summary>Wall-clock seconds the whole run took.</summary>
    public double Seconds { get; }

    /// <summary>How many examples were re-checked by the float64 guard.</summary>
    public int Rechecked { get; }

    /// <summary>How many of those the guard did not prove (not counted as verified).</summary>
    public int RecheckRejected { get; }

    /// <summary>Why the float64 guard could not check this model (every re-checked bound then counts as not proved); null when it could.</summary>
    public string? RecheckUnavailable { get; }

    /// <summary>Randomized smoothing details (null for bound methods).</summary>
    public SmoothingSummary? Smoothing { get; }

    /// <summary>Per-stage counts and times of a <see cref="BabCertifier"/> (null for other certifiers).</summary>
    public BabStatistics? Bab { get; }

    /// <summary>
    /// The report's JSON line: {"clean":c,"pgd":p,"verified":v,"eps":E,"method":"..."} (accuracies in [0, 1]), then
    /// for smoothing "abstain", "sigma", "n0", "n", "alpha"; for bab "stages": {"ibp", "crown", "alpha_crown",
    /// "attacked", "bab", "bab_proved", "bab_counterexamples", "bab_timeouts", "bab_unknown" (example counts),
    /// "bab_seconds"}.
    /// </summary>
    public string ToJson()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{{\"clean\":{Num(CleanAccuracy)},\"pgd\":{Num(PgdAccuracy)},\"verified\":{Num(VerifiedAccuracy)},\"eps\":{Num(Eps)},\"method\":\"{Method}\"");
        if (Smoothing is { } s)
            sb.Append(CultureInfo.InvariantCulture, $",\"abstain\":{s.Abstained},\"sigma\":{Num(s.Sigma)},\"n0\":{s.N0},\"n\":{s.N},\"alpha\":{Num(s.Alpha)}");
        if (Bab is { } b)
            sb.Append(CultureInfo.InvariantCulture,
                $",\"stages\":{{\"ibp\":{b.Ibp},\"crown\":{b.Crown},\"alpha_crown\":{b.AlphaCrown},\"attacked\":{b.Attacked},\"bab\":{b.BranchAndBound},\"bab_proved\":{b.Proved},\"bab_counterexamples\":{b.Counterexamples},\"bab_timeouts\":{b.Timeouts},\"bab_unknown\":{b.Unknown},\"bab_seconds\":{Num(b.BranchAndBoundSeconds)}}}");
        sb.Append('}');
        return sb.ToString();
    }

    private static string Num(double v) => v.ToString("0.######", CultureInfo.InvariantCulture);

    private static string Num(float v) => v.ToString("R", CultureInfo.InvariantCulture);
}

/// <summary>Randomized smoothing settings and outcome of a report.</summary>
/// <param name="Sigma">Noise standard deviation.</param>
/// <param name="N0">Samples that pick the top class.</param>
/// <param name="N">Samples that estimate its probability.</param>
/// <param name="Alpha">Failure probability of each certificate.</param>
/// <param name="Abstained">Examples where the smoothed classifier abstained (pA lower bound below ½).</param>
public sealed record SmoothingSummary(float Sigma, int N0, int N, double Alpha, int Abstained);
