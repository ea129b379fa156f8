namespace Engine.Attacks;

/// <summary>The norm of a perturbation ball.</summary>
public enum Norm
{
    /// <summary>max_i |δ_i| ≤ ε: a box around the input.</summary>
    LInf,
    /// <summary>‖δ‖₂ ≤ ε per sample.</summary>
    L2,
}

/// <summary>What a classification attack ascends.</summary>
public enum AttackLoss
{
    /// <summary>Cross-entropy of the true label (Madry et al.).</summary>
    CrossEntropy,
    /// <summary>max_{j≠y} f_j − f_y on the logits (Carlini–Wagner); often stronger, and scale-free in its sign.</summary>
    Margin,
}

/// <summary>
/// Settings of <see cref="Pgd"/> over an ε-ball around the input, clipped to the input domain [ClipLow, ClipHigh]
/// (torchattacks names and defaults where they exist).
/// </summary>
public sealed record PgdOptions
{
    /// <summary>The ball's norm.</summary>
    public Norm Norm { get; init; } = Norm.LInf;
    /// <summary>The ball's radius (≥ 0).</summary>
    public float Eps { get; init; } = 8f / 255f;
    /// <summary>Step length (a sign step for LInf, a normalised-gradient step for L2); null: 2.5·Eps/Steps.</summary>
    public float? StepSize { get; init; }
    /// <summary>Gradient steps per restart (≥ 1).</summary>
    public int Steps { get; init; } = 40;
    /// <summary>Independent runs (≥ 1); the most violating iterate over all of them is kept per sample.</summary>
    public int Restarts { get; init; } = 1;
    /// <summary>
    /// True: every restart starts at a random point of the ball. False: the first restart starts at the clean
    /// input and later ones at random points.
    /// </summary>
    public bool RandomStart { get; init; } = true;
    /// <summary>The loss ascended by <see cref="Pgd.Attack"/> (the search methods take their own objective).</summary>
    public AttackLoss Loss { get; init; } = AttackLoss.CrossEntropy;
    /// <summary>Lower end of the input domain.</summary>
    public float ClipLow { get; init; }
    /// <summary>Upper end of the input domain.</summary>
    public float ClipHigh { get; init; } = 1f;
    /// <summary>Seed of the random starts; the same seed gives the same result.</summary>
    public ulong Seed { get; init; }
    /// <summary>Stop as soon as every sample has a violating point (a counterexample search needs no more).</summary>
    public bool EarlyStop { get; init; }

    internal void Validate(string op)
    {
        if (!(Eps >= 0) || float.IsInfinity(Eps)) throw new ArgumentException($"{op}: Eps must be finite and >= 0, got {Eps}.");
        if (StepSize is float s && (!(s > 0) || float.IsInfinity(s))) throw new ArgumentException($"{op}: StepSize must be finite and > 0, got {s}.");
        if (Steps < 1) throw new ArgumentException($"{op}: Steps must be >= 1, got {Steps}.");
        if (Restarts < 1) throw new ArgumentException($"{op}: Restarts must be >= 1, got {Restarts}.");
        if (!(ClipLow <= ClipHigh)) throw new ArgumentException($"{op}: ClipLow {ClipLow} must be <= ClipHigh {ClipHigh}.");
        if (!Enum.IsDefined(Norm)) throw new ArgumentException($"{op}: unknown norm {Norm}.");
        if (!Enum.IsDefined(Loss)) throw new ArgumentException($"{op}: unknown loss {Loss}.");
    }
}

/// <summary>
/// Settings of <see cref="Pgd"/> over an axis-aligned input box [lower, upper] (e.g. a VNNLIB input property):
/// projected sign-gradient descent with steps scaled to each element's half-width.
/// </summary>
public sealed record BoxSearchOptions
{
    /// <summary>Gradient steps per restart (≥ 1).</summary>
    public int Steps { get; init; } = 40;
    /// <summary>Step per element as a fraction of that element's half-width (upper − lower)/2; null: 2.5/Steps.</summary>
    public float? RelativeStepSize { get; init; }
    /// <summary>Independent runs (≥ 1); the best point over all of them is kept per sample.</summary>
    public int Restarts { get; init; } = 1;
    /// <summary>True: every restart starts at a uniformly random point; false: the first starts at the box centre.</summary>
    public bool RandomStart { get; init; } = true;
    /// <summary>Seed of the random starts; the same seed gives the same result.</summary>
    public ulong Seed { get; init; }
    /// <summary>Stop as soon as every sample has a violating point.</summary>
    public bool EarlyStop { get; init; }

    internal void Validate(string op)
    {
        if (RelativeStepSize is float s && (!(s > 0) || float.IsInfinity(s))) throw new ArgumentException($"{op}: RelativeStepSize must be finite and > 0, got {s}.");
        if (Steps < 1) throw new ArgumentException($"{op}: Steps must be >= 1, got {Steps}.");
        if (Restarts < 1) throw new ArgumentException($"{op}: Restarts must be >= 1, got {Restarts}.");
    }
}
