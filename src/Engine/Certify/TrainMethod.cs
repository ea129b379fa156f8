namespace Engine.Certify;

/// <summary>How a network is trained (the loss minimised per batch); see <see cref="CertifiedLosses"/>.</summary>
public enum TrainMethod
{
    /// <summary>Cross-entropy on the clean inputs.</summary>
    Standard,
    /// <summary>Madry et al. adversarial training: cross-entropy at a PGD point of the eps-ball.</summary>
    Pgd,
    /// <summary>Cohen et al. Gaussian data augmentation: cross-entropy at x + N(0, sigma²) (for randomized smoothing).</summary>
    Noise,
    /// <summary>Gowal et al.: worst-case cross-entropy from IBP margin lower bounds, mixed with the clean loss by kappa.</summary>
    Ibp,
    /// <summary>Zhang et al.: worst-case cross-entropy from beta·CROWN-IBP + (1 − beta)·IBP margin lower bounds.</summary>
    CrownIbp,
    /// <summary>Müller et al. 2023: IBP over a small box of radius lambda·eps around a PGD point inside the eps-box.</summary>
    Sabr,
    /// <summary>De Palma et al. 2024: cross-entropy of the convex combination (1 − alpha)·adversarial + alpha·IBP of the logit differences.</summary>
    CcIbp,
    /// <summary>De Palma et al. 2024: (1 − alpha)·adversarial cross-entropy + alpha·IBP worst-case cross-entropy.</summary>
    MtlIbp,
}

/// <summary>Names and properties of the <see cref="TrainMethod"/> values.</summary>
public static class TrainMethods
{
    private static readonly (TrainMethod Method, string Name)[] Table =
    [
        (TrainMethod.Standard, "standard"), (TrainMethod.Pgd, "pgd"), (TrainMethod.Noise, "noise"), (TrainMethod.Ibp, "ibp"),
        (TrainMethod.CrownIbp, "crown-ibp"), (TrainMethod.Sabr, "sabr"), (TrainMethod.CcIbp, "ccibp"), (TrainMethod.MtlIbp, "mtlibp"),
    ];

    /// <summary>The command-line names, in declaration order ("standard", "pgd", "noise", "ibp", "crown-ibp", "sabr", "ccibp", "mtlibp").</summary>
    public static IReadOnlyList<string> Names { get; } = Table.Select(t => t.Name).ToArray();

    /// <summary>The command-line name of a method.</summary>
    public static string Name(this TrainMethod method)
    {
        foreach (var (m, n) in Table) if (m == method) return n;
        throw new ArgumentOutOfRangeException(nameof(method), $"Unknown training method {method}.");
    }

    /// <summary>Parses a command-line name (case-insensitive).</summary>
    public static TrainMethod Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var (m, n) in Table) if (string.Equals(n, name, StringComparison.OrdinalIgnoreCase)) return m;
        throw new ArgumentException($"Unknown training method '{name}'; choose one of: {string.Join(", ", Names)}.");
    }

    /// <summary>True for the methods whose loss bounds the worst case over the eps-ball (ibp, crown-ibp, sabr, ccibp, mtlibp).</summary>
    public static bool IsCertified(this TrainMethod method)
        => method is TrainMethod.Ibp or TrainMethod.CrownIbp or TrainMethod.Sabr or TrainMethod.CcIbp or TrainMethod.MtlIbp;

    /// <summary>True for the methods that need a perturbation radius eps (all but standard and noise).</summary>
    public static bool UsesEps(this TrainMethod method) => method == TrainMethod.Pgd || method.IsCertified();

    /// <summary>True for the methods that run a PGD attack every step (pgd, sabr, ccibp, mtlibp).</summary>
    public static bool UsesAttack(this TrainMethod method)
        => method is TrainMethod.Pgd or TrainMethod.Sabr or TrainMethod.CcIbp or TrainMethod.MtlIbp;
}
