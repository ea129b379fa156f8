using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Certify;

/// <summary>
/// Something that proves examples robust: for each example of a batch, whether every input of the perturbation set
/// around it is classified as its label. <see cref="Certification"/> cross-checks every claim against the clean
/// prediction and the attack, so a certifier that claims too much (a bug, or a deliberately lying test double) is
/// caught with a <see cref="CertificationSoundnessException"/>.
/// </summary>
public interface IRobustnessCertifier
{
    /// <summary>A short name for reports ("crown", "ibp", ...).</summary>
    string Name { get; }

    /// <summary>Certifies a batch <paramref name="x"/> [B, ...] with class labels <paramref name="labels"/> over <paramref name="perturbation"/>.</summary>
    CertifierResult Certify(Tensor x, int[] labels, Perturbation perturbation);

    /// <summary>
    /// Why this certifier's float64 re-check of near-zero bounds cannot run on its model (every such bound then counts
    /// as not proved), for the report; null when it can, when it has not been needed yet, or when there is none.
    /// </summary>
    string? RecheckUnavailableReason => null;
}

/// <summary>What a certifier says about one batch.</summary>
/// <param name="Verified">Per example: proved robust.</param>
/// <param name="MarginLowerBound">
/// Per example: the certifier's lower bound on min_j (f_y − f_j) over the set (NaN where it has none); for reports.
/// </param>
/// <param name="Rechecked">How many examples of the batch went through a float64 re-check.</param>
/// <param name="RecheckRejected">How many of them the re-check did not prove (not verified by that bound; a cascade's later stage may still prove them).</param>
/// <param name="Bab">What each stage of a <see cref="BabCertifier"/> did (null for other certifiers).</param>
public sealed record CertifierResult(bool[] Verified, float[] MarginLowerBound, int Rechecked = 0, int RecheckRejected = 0, BabStatistics? Bab = null);
