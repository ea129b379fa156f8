using Engine.Attacks;
using Engine.Bounds;

namespace Engine.Certify;

/// <summary>
/// Settings of <see cref="Certification.Run(Graph.ComputeGraph, Data.TensorDataset, CertificationOptions, IRobustnessCertifier?, Action{int}?)"/>:
/// the threat model (norm, radius, input domain), the attack that gives the empirical robust accuracy and the bound
/// method that gives the verified one.
/// </summary>
public sealed record CertificationOptions
{
    /// <summary>The radius of the perturbation ball (≥ 0).</summary>
    public float Eps { get; init; }

    /// <summary>L∞ (a box, clipped to [ClipLow, ClipHigh]) or L2 (the ball; the attack also keeps to the domain).</summary>
    public PerturbationNorm Norm { get; init; } = PerturbationNorm.LInf;

    /// <summary>Lower end of the input domain (images in [0, 1] by default).</summary>
    public float ClipLow { get; init; }

    /// <summary>Upper end of the input domain.</summary>
    public float ClipHigh { get; init; } = 1f;

    /// <summary>How "verified" is decided: IBP, CROWN or alpha-CROWN margin lower bounds (CROWN-IBP is a training bound, but allowed).</summary>
    public BoundMethod Method { get; init; } = BoundMethod.Crown;

    /// <summary>Examples per batch for the forward pass, the attack and the bounds.</summary>
    public int BatchSize { get; init; } = 128;

    /// <summary>PGD steps per restart (PGD-20 by default).</summary>
    public int PgdSteps { get; init; } = 20;

    /// <summary>PGD restarts; the worst point over all of them counts.</summary>
    public int PgdRestarts { get; init; } = 1;

    /// <summary>PGD step size; null: 2.5·Eps/PgdSteps (Madry et al.'s rule, as <see cref="PgdOptions"/>).</summary>
    public float? PgdStepSize { get; init; }

    /// <summary>The loss PGD ascends (cross-entropy by default; the margin loss is often stronger).</summary>
    public AttackLoss PgdLoss { get; init; } = AttackLoss.CrossEntropy;

    /// <summary>Seed of PGD's random starts (batch k uses Seed + k, so results do not depend on what ran before).</summary>
    public ulong Seed { get; init; }

    /// <summary>
    /// Examples whose float32 smallest margin lower bound is positive but at most this value (in logit units) are
    /// re-checked by the float64 rigorous guard (<see cref="Verification.RigorousNetwork"/>) and count as verified
    /// only if it proves them too. 0 turns the re-check off; +∞ re-checks every verified example.
    /// </summary>
    public float RecheckBelow { get; init; } = 0.05f;

    /// <summary>Bound settings (rounding margins, alpha-CROWN iterations); null: defaults without upper bounds.</summary>
    public BoundOptions? BoundOptions { get; init; }

    /// <summary>The perturbation the bounds are computed over.</summary>
    public Perturbation Perturbation
        => Norm == PerturbationNorm.L2 ? Perturbation.L2(Eps) : Perturbation.LInf(Eps, ClipLow, ClipHigh);

    /// <summary>The attack's settings (for this report's radius).</summary>
    public PgdOptions Pgd => new()
    {
        Norm = Norm == PerturbationNorm.L2 ? Attacks.Norm.L2 : Attacks.Norm.LInf,
        Eps = Eps,
        Steps = PgdSteps,
        Restarts = PgdRestarts,
        StepSize = PgdStepSize,
        Loss = PgdLoss,
        ClipLow = ClipLow,
        ClipHigh = ClipHigh,
        RandomStart = true,
        Seed = Seed,
    };

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        if (!(Eps >= 0) || float.IsInfinity(Eps)) throw new ArgumentException($"Certification: eps must be finite and >= 0, got {Eps}.");
        if (!Enum.IsDefined(Norm)) throw new ArgumentException($"Certification: unknown norm {Norm}.");
        if (!Enum.IsDefined(Method)) throw new ArgumentException($"Certification: unknown bound method {Method}.");
        if (!(ClipLow <= ClipHigh)) throw new ArgumentException($"Certification: the input domain [{ClipLow}, {ClipHigh}] is empty.");
        if (BatchSize < 1) throw new ArgumentException($"Certification: the batch size must be >= 1, got {BatchSize}.");
        if (PgdSteps < 1) throw new ArgumentException($"Certification: PGD steps must be >= 1, got {PgdSteps}.");
        if (PgdRestarts < 1) throw new ArgumentException($"Certification: PGD restarts must be >= 1, got {PgdRestarts}.");
        if (PgdStepSize is float s && (!(s > 0) || float.IsInfinity(s))) throw new ArgumentException($"Certification: the PGD step size must be finite and > 0, got {s}.");
        if (!(RecheckBelow >= 0)) throw new ArgumentException($"Certification: RecheckBelow must be >= 0, got {RecheckBelow}.");
    }

    /// <summary>The attack's settings as the report prints them, e.g. "PGD-20 (Linf, step 0.0125, 1 restart, cross-entropy)".</summary>
    public string DescribeAttack()
    {
        float step = PgdStepSize ?? 2.5f * Eps / PgdSteps;
        string loss = PgdLoss == AttackLoss.Margin ? "margin loss" : "cross-entropy";
        return FormattableString.Invariant(
            $"PGD-{PgdSteps} ({(Norm == PerturbationNorm.L2 ? "L2" : "Linf")}, step {step:0.#####}, {PgdRestarts} restart{(PgdRestarts == 1 ? "" : "s")}, {loss}, random start)");
    }
}
