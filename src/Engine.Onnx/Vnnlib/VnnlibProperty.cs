namespace Engine.Onnx;

/// <summary>
/// A parsed VNNLIB property: inputs X_0..X_{n-1} (the flattened network input, in row-major order) and outputs
/// Y_0..Y_{m-1}. The property is VIOLATED when some input in the box of some <see cref="Cases"/> entry produces an
/// output that satisfies one of that case's <see cref="VnnlibCase.Unsafe"/> conjunctions; it HOLDS when no such input
/// exists. Strict inequalities are read as non-strict ones: the unsafe set becomes its closure, which can only make
/// "holds" harder to prove, never wrongly easier.
/// </summary>
public sealed class VnnlibProperty
{
    internal VnnlibProperty(int numInputs, int numOutputs, VnnlibCase[] cases)
    {
        NumInputs = numInputs; NumOutputs = numOutputs; Cases = cases;
    }

    /// <summary>Number of declared inputs X_i.</summary>
    public int NumInputs { get; }

    /// <summary>Number of declared outputs Y_j.</summary>
    public int NumOutputs { get; }

    /// <summary>
    /// Input boxes, each with its disjunction of unsafe output conditions. Most files have one; a file whose
    /// disjunction constrains inputs differently per branch has one per distinct box. Empty when the asserted
    /// formula is unsatisfiable on its own (e.g. an empty input box): the property then holds trivially.
    /// </summary>
    public IReadOnlyList<VnnlibCase> Cases { get; }

    /// <summary>The lower input bounds when there is exactly one input box; throws otherwise.</summary>
    public double[] InputLower => Single.InputLower;

    /// <summary>The upper input bounds when there is exactly one input box; throws otherwise.</summary>
    public double[] InputUpper => Single.InputUpper;

    /// <summary>The unsafe output condition (a disjunction) when there is exactly one input box; throws otherwise.</summary>
    public IReadOnlyList<VnnlibConstraints> Unsafe => Single.Unsafe;

    private VnnlibCase Single => Cases.Count == 1 ? Cases[0]
        : throw new InvalidOperationException($"VNNLIB: the property has {Cases.Count} input boxes; use Cases.");
}

/// <summary>One input box and the disjunction of output conjunctions that is unsafe over it.</summary>
public sealed class VnnlibCase
{
    internal VnnlibCase(double[] lower, double[] upper, VnnlibConstraints[] unsafeSet)
    {
        InputLower = lower; InputUpper = upper; Unsafe = unsafeSet;
    }

    /// <summary>Lower bound of each input X_i.</summary>
    public double[] InputLower { get; }

    /// <summary>Upper bound of each input X_i.</summary>
    public double[] InputUpper { get; }

    /// <summary>The unsafe condition: an output is unsafe when it satisfies ANY of these conjunctions.</summary>
    public IReadOnlyList<VnnlibConstraints> Unsafe { get; }

    /// <summary>True when every x_i lies in [lower_i - tolerance, upper_i + tolerance].</summary>
    public bool ContainsInput(ReadOnlySpan<double> x, double tolerance = 0)
    {
        if (x.Length != InputLower.Length) throw new ArgumentException($"VNNLIB: expected {InputLower.Length} input values, got {x.Length}.");
        for (int i = 0; i < x.Length; i++)
            if (!(x[i] >= InputLower[i] - tolerance && x[i] <= InputUpper[i] + tolerance)) return false;
        return true;
    }

    /// <summary>True when <paramref name="y"/> satisfies one of the unsafe conjunctions.</summary>
    public bool IsUnsafe(ReadOnlySpan<double> y, double tolerance = 0)
    {
        foreach (var c in Unsafe)
            if (c.IsSatisfiedBy(y, tolerance)) return true;
        return false;
    }
}

/// <summary>A conjunction of linear output constraints C·y &lt;= d (one row per constraint; no rows means "always").</summary>
public sealed class VnnlibConstraints
{
    internal VnnlibConstraints(double[,] c, double[] d)
    {
        C = c; D = d;
    }

    /// <summary>Coefficients, [Rows, NumOutputs].</summary>
    public double[,] C { get; }

    /// <summary>Right-hand sides, [Rows].</summary>
    public double[] D { get; }

    /// <summary>Number of constraints.</summary>
    public int Rows => D.Length;

    /// <summary>True when every row holds: (C·y)_r &lt;= d_r + tolerance.</summary>
    public bool IsSatisfiedBy(ReadOnlySpan<double> y, double tolerance = 0)
    {
        if (y.Length != C.GetLength(1)) throw new ArgumentException($"VNNLIB: expected {C.GetLength(1)} output values, got {y.Length}.");
        for (int r = 0; r < Rows; r++)
        {
            double s = 0;
            for (int j = 0; j < y.Length; j++) s += C[r, j] * y[j];
            if (!(s <= D[r] + tolerance)) return false;
        }
        return true;
    }
}
