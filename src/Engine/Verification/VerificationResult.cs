namespace Engine.Verification;

/// <summary>A verifier's answer, with VNN-COMP's meaning.</summary>
public enum Verdict
{
    /// <summary>The unsafe condition is unsatisfiable over the input set (proven, float64 guard confirmed).</summary>
    Holds,
    /// <summary>A counterexample was found and checked by concrete forward passes.</summary>
    Violated,
    /// <summary>Neither proven nor refuted (e.g. the graph is outside what the guard supports, or the bounds are too loose).</summary>
    Unknown,
    /// <summary>The time limit ran out before a decision.</summary>
    Timeout,
}

/// <summary>A checked counterexample: an input inside the box whose outputs satisfy an unsafe conjunction.</summary>
public sealed class Counterexample
{
    internal Counterexample(double[] x, double[] y, double[]? y64)
    {
        X = x; Y = y; Y64 = y64;
    }

    /// <summary>The input (float32 values, as doubles), flattened.</summary>
    public double[] X { get; }

    /// <summary>The float32 forward pass's outputs at <see cref="X"/>.</summary>
    public double[] Y { get; }

    /// <summary>The float64 re-evaluation's outputs (null when the graph is not supported by <see cref="RigorousNetwork"/>).</summary>
    public double[]? Y64 { get; }
}

/// <summary>The outcome of <see cref="Verifier.Verify"/>.</summary>
public sealed class VerificationResult
{
    internal VerificationResult(Verdict verdict, Counterexample? counterexample, string detail, TimeSpan elapsed, int boxes)
    {
        Verdict = verdict; Counterexample = counterexample; Detail = detail; Elapsed = elapsed; Boxes = boxes;
    }

    /// <summary>The verdict.</summary>
    public Verdict Verdict { get; }

    /// <summary>The checked counterexample for <see cref="Verdict.Violated"/>; null otherwise.</summary>
    public Counterexample? Counterexample { get; }

    /// <summary>How the verdict was reached (or why none was), one line.</summary>
    public string Detail { get; }

    /// <summary>Wall time.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Domains (input boxes, possibly cut by ReLU signs) handled by branch and bound, leaves and inner nodes.</summary>
    public int Boxes { get; }

    /// <summary>The verdict as VNN-COMP prints it: holds, violated, unknown, timeout.</summary>
    public string VerdictText => VerdictName(Verdict);

    /// <summary>holds / violated / unknown / timeout.</summary>
    public static string VerdictName(Verdict v) => v switch
    {
        Verdict.Holds => "holds",
        Verdict.Violated => "violated",
        Verdict.Timeout => "timeout",
        _ => "unknown",
    };
}

/// <summary>Settings of <see cref="Verifier.Verify"/>.</summary>
public sealed record VerifierOptions
{
    /// <summary>Wall-clock limit.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Branch and bound splits inputs up to this many inputs (it scales badly beyond ~10); above, it splits ReLUs only.</summary>
    public int MaxBranchInputs { get; init; } = 10;

    /// <summary>PGD restarts of the first attack (each a batch of random starts).</summary>
    public int AttackRestarts { get; init; } = 4;

    /// <summary>Random starts per PGD restart (run as one batch).</summary>
    public int AttackBatch { get; init; } = 32;

    /// <summary>PGD steps.</summary>
    public int AttackSteps { get; init; } = 50;

    /// <summary>
    /// Projected-gradient steps on the ReLU lower slopes and the unsafe rows' combination weights per bounded domain
    /// (0: CROWN's slopes and the best combination of per-row bounds only; at least 20 when there are too many
    /// inputs to split).
    /// </summary>
    public int SlopeIterations { get; init; } = 4;

    /// <summary>Seed of the attack's random starts.</summary>
    public ulong Seed { get; init; }
}
