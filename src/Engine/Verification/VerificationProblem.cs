namespace Engine.Verification;

/// <summary>
/// An unsafe output condition: the conjunction of rows (C·y)_r ≤ d_r over the flattened network output y. No rows
/// means every output is unsafe.
/// </summary>
public sealed class UnsafeConjunction
{
    /// <summary>Wraps C [rows, outputs] and d [rows] (copied).</summary>
    public UnsafeConjunction(double[,] c, double[] d)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(d);
        if (c.GetLength(0) != d.Length) throw new ArgumentException($"UnsafeConjunction: C has {c.GetLength(0)} rows but d has {d.Length} entries.");
        foreach (var v in c) if (!double.IsFinite(v)) throw new ArgumentException("UnsafeConjunction: C contains NaN or infinity.");
        foreach (var v in d) if (double.IsNaN(v)) throw new ArgumentException("UnsafeConjunction: d contains NaN.");
        C = (double[,])c.Clone(); D = (double[])d.Clone();
    }

    /// <summary>Coefficients [Rows, Outputs].</summary>
    public double[,] C { get; }

    /// <summary>Right-hand sides [Rows].</summary>
    public double[] D { get; }

    /// <summary>Number of rows.</summary>
    public int Rows => D.Length;

    /// <summary>Number of network outputs.</summary>
    public int Outputs => C.GetLength(1);

    /// <summary>Row r of C.</summary>
    public double[] Row(int r)
    {
        var v = new double[Outputs];
        for (int j = 0; j < v.Length; j++) v[j] = C[r, j];
        return v;
    }

    /// <summary>True when y satisfies every row exactly as evaluated in float64 (no tolerance).</summary>
    public bool IsSatisfiedBy(ReadOnlySpan<double> y)
    {
        if (y.Length != Outputs) throw new ArgumentException($"UnsafeConjunction: expected {Outputs} outputs, got {y.Length}.");
        for (int r = 0; r < Rows; r++)
        {
            double s = 0;
            for (int j = 0; j < y.Length; j++) s += C[r, j] * y[j];
            if (!(s <= D[r])) return false;
        }
        return true;
    }
}

/// <summary>One input box and the disjunction of unsafe conjunctions over it.</summary>
public sealed class VerificationCase
{
    /// <summary>Creates a case: input bounds (flattened, row-major) and the unsafe disjunction.</summary>
    public VerificationCase(double[] inputLower, double[] inputUpper, IEnumerable<UnsafeConjunction> unsafeSet)
    {
        ArgumentNullException.ThrowIfNull(inputLower);
        ArgumentNullException.ThrowIfNull(inputUpper);
        ArgumentNullException.ThrowIfNull(unsafeSet);
        if (inputLower.Length != inputUpper.Length) throw new ArgumentException($"VerificationCase: {inputLower.Length} lower and {inputUpper.Length} upper input bounds.");
        for (int i = 0; i < inputLower.Length; i++)
            if (!double.IsFinite(inputLower[i]) || !double.IsFinite(inputUpper[i]))
                throw new ArgumentException($"VerificationCase: input {i} has bounds [{inputLower[i]}, {inputUpper[i]}]; every input needs finite bounds.");
        InputLower = (double[])inputLower.Clone(); InputUpper = (double[])inputUpper.Clone();
        Unsafe = unsafeSet.ToArray();
        if (Unsafe.Select(u => u.Outputs).Distinct().Count() > 1) throw new ArgumentException("VerificationCase: the unsafe conjunctions disagree on the number of outputs.");
    }

    /// <summary>Lower input bounds.</summary>
    public double[] InputLower { get; }

    /// <summary>Upper input bounds.</summary>
    public double[] InputUpper { get; }

    /// <summary>The unsafe disjunction.</summary>
    public IReadOnlyList<UnsafeConjunction> Unsafe { get; }

    /// <summary>True when some input bound is empty (lower &gt; upper): the case is vacuous.</summary>
    public bool IsEmpty => InputLower.Zip(InputUpper).Any(p => p.First > p.Second);

    /// <summary>True when every x_i lies in [lower_i, upper_i] (exactly).</summary>
    public bool Contains(ReadOnlySpan<double> x)
    {
        if (x.Length != InputLower.Length) return false;
        for (int i = 0; i < x.Length; i++) if (!(x[i] >= InputLower[i] && x[i] <= InputUpper[i])) return false;
        return true;
    }

    /// <summary>True when y satisfies one of the unsafe conjunctions.</summary>
    public bool IsUnsafe(ReadOnlySpan<double> y)
    {
        foreach (var u in Unsafe) if (u.IsSatisfiedBy(y)) return true;
        return false;
    }
}

/// <summary>
/// A verification problem in VNN-COMP form: the property is VIOLATED when an input of some case's box yields an
/// output in that case's unsafe set, and HOLDS when no such input exists in any case.
/// </summary>
public sealed class VerificationProblem
{
    /// <summary>Wraps the cases.</summary>
    public VerificationProblem(IEnumerable<VerificationCase> cases)
    {
        ArgumentNullException.ThrowIfNull(cases);
        Cases = cases.ToArray();
    }

    /// <summary>The cases (input box + unsafe disjunction each).</summary>
    public IReadOnlyList<VerificationCase> Cases { get; }
}
