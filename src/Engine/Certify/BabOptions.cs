using System.Globalization;

namespace Engine.Certify;

/// <summary>Settings of <see cref="BabCertifier"/>: how hard its attack and its complete verifier work per example.</summary>
public sealed record BabOptions
{
    /// <summary>
    /// Wall-clock limit of the complete verifier (<see cref="Verification.Verifier"/>) per example; an example whose
    /// branch and bound is not finished by then is not verified (2 s by default: on IBP-trained networks of the size
    /// of issue 5's small CNN, the proofs that come at all come within about a second).
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Run float32 alpha-CROWN on the examples that IBP and CROWN leave open (before the complete verifier, which
    /// costs far more per example).
    /// </summary>
    public bool AlphaCrown { get; init; } = true;

    /// <summary>
    /// PGD steps of the attack that screens the open examples before the complete verifier (margin loss, random
    /// starts): an example it breaks cannot be verified and is not sent there.
    /// </summary>
    public int AttackSteps { get; init; } = 50;

    /// <summary>Random restarts of that attack (the worst point counts).</summary>
    public int AttackRestarts { get; init; } = 2;

    /// <summary>Seed of the attack's and the complete verifier's random starts.</summary>
    public ulong Seed { get; init; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        if (!(Timeout > TimeSpan.Zero))
            throw new ArgumentException($"BabCertifier: the per-example time limit must be > 0, got {Timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s.");
        if (AttackSteps < 1) throw new ArgumentException($"BabCertifier: the attack needs at least 1 step, got {AttackSteps}.");
        if (AttackRestarts < 1) throw new ArgumentException($"BabCertifier: the attack needs at least 1 restart, got {AttackRestarts}.");
    }
}

/// <summary>
/// What each stage of <see cref="BabCertifier"/> did over a batch or a whole report (stages add up:
/// <see cref="Verified"/> = Ibp + Crown + AlphaCrown + Proved).
/// </summary>
public sealed record BabStatistics
{
    /// <summary>Examples proved by IBP alone.</summary>
    public int Ibp { get; init; }

    /// <summary>Examples proved once CROWN's bounds joined IBP's (per margin the larger), not by IBP alone.</summary>
    public int Crown { get; init; }

    /// <summary>Examples proved once alpha-CROWN's bounds joined them, not before.</summary>
    public int AlphaCrown { get; init; }

    /// <summary>Examples whose positive float32 bound the float64 re-check did not confirm (they went on to the later stages).</summary>
    public int RecheckRejected { get; init; }

    /// <summary>Open, correctly classified examples that the screening attack broke (not sent to the complete verifier).</summary>
    public int Attacked { get; init; }

    /// <summary>Examples sent to the complete verifier (Proved + Counterexamples + Timeouts + Unknown).</summary>
    public int BranchAndBound { get; init; }

    /// <summary>Examples the complete verifier proved robust.</summary>
    public int Proved { get; init; }

    /// <summary>Examples for which it found a checked counterexample.</summary>
    public int Counterexamples { get; init; }

    /// <summary>Examples whose time limit ran out.</summary>
    public int Timeouts { get; init; }

    /// <summary>Examples it could neither prove nor refute before its search ended.</summary>
    public int Unknown { get; init; }

    /// <summary>Seconds spent on the float32 bounds (IBP, CROWN, alpha-CROWN) and their float64 re-check.</summary>
    public double BoundSeconds { get; init; }

    /// <summary>Seconds spent on the screening attack.</summary>
    public double AttackSeconds { get; init; }

    /// <summary>Seconds spent in the complete verifier.</summary>
    public double BranchAndBoundSeconds { get; init; }

    /// <summary>All examples the cascade proved.</summary>
    public int Verified => Ibp + Crown + AlphaCrown + Proved;

    /// <summary>The sum of two batches' statistics.</summary>
    public static BabStatistics operator +(BabStatistics a, BabStatistics b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return new BabStatistics
        {
            Ibp = a.Ibp + b.Ibp, Crown = a.Crown + b.Crown, AlphaCrown = a.AlphaCrown + b.AlphaCrown, RecheckRejected = a.RecheckRejected + b.RecheckRejected,
            Attacked = a.Attacked + b.Attacked, BranchAndBound = a.BranchAndBound + b.BranchAndBound, Proved = a.Proved + b.Proved,
            Counterexamples = a.Counterexamples + b.Counterexamples, Timeouts = a.Timeouts + b.Timeouts, Unknown = a.Unknown + b.Unknown,
            BoundSeconds = a.BoundSeconds + b.BoundSeconds, AttackSeconds = a.AttackSeconds + b.AttackSeconds,
            BranchAndBoundSeconds = a.BranchAndBoundSeconds + b.BranchAndBoundSeconds,
        };
    }
}
