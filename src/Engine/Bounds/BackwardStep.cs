using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// One node's step of CROWN's backward pass. The pass only ever lower-bounds (an upper bound of a·f is the
/// negated lower bound of −a·f, so upper bounds are extra rows), so a rule sees one coefficient tensor
/// <see cref="A"/> [B, R, ...output shape] and must produce coefficients on its perturbed inputs and a constant
/// term such that A·out ≥ Σᵢ Aᵢ·inᵢ + bias for every input inside its bounds.
/// </summary>
public sealed class BackwardStep
{
    private readonly Tensor?[] _coefficients;

    internal BackwardStep(Tensor a, Interval[] inputs, Tensor? alpha, BoundOptions options)
    {
        A = a; Inputs = inputs; Alpha = alpha; Options = options;
        _coefficients = new Tensor?[inputs.Length];
    }

    /// <summary>Coefficients on the op's output, [B, R, ...output shape].</summary>
    public Tensor A { get; }

    /// <summary>Bounds of the op's inputs (constants are point intervals; their shapes are the input shapes).</summary>
    public IReadOnlyList<Interval> Inputs { get; }

    /// <summary>alpha-CROWN: the lower-slope parameters of this node ([B, R or 1, ...input shape]); null otherwise.</summary>
    public Tensor? Alpha { get; }

    /// <summary>The options of the computation.</summary>
    public BoundOptions Options { get; }

    /// <summary>Batch size B.</summary>
    public int Batch => A.Dims[0];

    /// <summary>Number of rows R.</summary>
    public int Rows => A.Dims[1];

    internal Tensor? Coefficient(int input) => _coefficients[input];

    internal Tensor? Bias { get; private set; }

    internal Tensor? Magnitude { get; private set; }

    /// <summary>
    /// The pass's running constant term and magnitude, when it owns them and records no gradient: the fused kernels
    /// add this step's terms into them in place (on a GPU, two launches fewer a step) instead of returning new ones.
    /// </summary>
    internal (Tensor Bias, Tensor Mag)? Accumulator { get; init; }

    /// <summary>True when <see cref="Bias"/> and <see cref="Magnitude"/> are tensors made in this step (kernel outputs or sums), which the pass may add into later.</summary>
    internal bool BiasOwned { get; private set; }

    /// <summary>Sets (or adds to) the coefficients on perturbed input <paramref name="input"/>: [B, R, ...input shape].</summary>
    public void SetInput(int input, Tensor coefficient)
    {
        if (Inputs[input].IsConstant)
            throw new InvalidOperationException($"BackwardStep: input {input} is a constant and takes no coefficients.");
        var want = Inputs[input].Shape;
        int[] expect = [Batch, Rows, .. want.AsSpan(1)];
        if (!ShapeUtil.SameShape(coefficient.Dims, expect))
            throw new InvalidOperationException($"BackwardStep: coefficients {ShapeUtil.Format(coefficient.Dims)} for input {input} should be {ShapeUtil.Format(expect)}.");
        _coefficients[input] = _coefficients[input] is { } c ? c + coefficient : coefficient;
    }

    /// <summary>Adds a constant term [B, R] and its magnitude (Σ |terms| that made it, for the rounding margin).</summary>
    public void AddBias(Tensor value, Tensor magnitude)
    {
        BiasOwned = Bias != null;   // a sum is a new tensor; a rule's own tensor is not ours to add into
        Bias = Bias is { } b ? b + value : value;
        var m = magnitude.Detach();
        Magnitude = Magnitude is { } mm ? mm + m : m;
    }

    /// <summary><see cref="AddBias"/> of tensors a fused kernel just made (so the pass may add into them later).</summary>
    private void AddOwnBias(Tensor value, Tensor magnitude)
    {
        AddBias(value, magnitude);
        BiasOwned = true;
    }

    /// <summary>
    /// Adds Σ coeff ⊙ c over all but the first two dimensions to the constant term: <paramref name="coeff"/> is
    /// [B, R, ...], <paramref name="c"/> broadcasts to it (see <see cref="PerRow"/> for batched tensors).
    /// </summary>
    public void AddDot(Tensor coeff, Tensor c)
    {
        if (coeff.Rank > 2 && FusedBounds.Dot(coeff, c, null, 0f, Accumulator) is { } dot)
        {
            // Added in place into the pass's running term, or new tensors of this step.
            if (Accumulator is not { } acc || !ReferenceEquals(dot.Value, acc.Bias)) AddOwnBias(dot.Value, dot.Mag);
            return;
        }
        var prod = coeff * c;
        var mag = coeff.Detach().Abs() * c.Detach().Abs();
        AddBias(SumRows(prod), SumRows(mag));
    }

    /// <summary>Sums [B, R, ...] over every dimension after the first two.</summary>
    public static Tensor SumRows(Tensor t)
    {
        if (t.Rank == 2) return t;
        return t.Sum(Enumerable.Range(2, t.Rank - 2).ToArray());
    }

    /// <summary>A batched per-element tensor [B, ...] as [B, 1, ...] so it broadcasts against A.</summary>
    public static Tensor PerRow(Tensor t) => t.Unsqueeze(1);

    /// <summary>
    /// A constant operand aligned with A: one with a batch dimension (as many dimensions as the value,
    /// <paramref name="valueRank"/>) gets a row dimension; a smaller one already broadcasts from the right.
    /// </summary>
    public static Tensor AlignConstant(Tensor c, int valueRank) => c.Rank == valueRank ? c.Unsqueeze(1) : c;

    /// <summary>
    /// Applies an element-wise linear relaxation of y = σ(x): lower line aL·x + bL ≤ y ≤ aU·x + bU (each [B, ...] or,
    /// for per-row slopes, [B, R, ...]): A⁺ takes the lower line and A⁻ the upper line.
    /// </summary>
    public void Relax(Tensor aLower, Tensor? bLower, Tensor aUpper, Tensor? bUpper)
    {
        if (FusedBounds.Relax(A, aLower, bLower, aUpper, bUpper, Accumulator) is { } fused)
        {
            SetInput(0, fused.Y);
            if (fused.Bias != null && (Accumulator is not { } acc || !ReferenceEquals(fused.Bias, acc.Bias))) AddOwnBias(fused.Bias, fused.Mag!);
            return;
        }
        var pos = A.Relu();
        var neg = A - pos;
        var aL = aLower.Rank == A.Rank ? aLower : PerRow(aLower);
        var aU = aUpper.Rank == A.Rank ? aUpper : PerRow(aUpper);
        SetInput(0, pos * aL + neg * aU);
        if (bLower != null) AddDot(pos, bLower.Rank == A.Rank ? bLower : PerRow(bLower));
        if (bUpper != null) AddDot(neg, bUpper.Rank == A.Rank ? bUpper : PerRow(bUpper));
    }
}
