namespace Engine.Verification;

// The layers of a network as the float64 guard sees it: a chain over the flattened per-example vector. Weights are
// the float32 weights converted exactly to double; every relation below is exact in real arithmetic.
internal abstract class RigorousLayer
{
    public int In { get; init; }
    public int Out { get; init; }
}

/// <summary>z = W·x + b, W row-major [Out, In].</summary>
internal sealed class DenseLayer : RigorousLayer
{
    public required double[] W { get; init; }
    public double[]? B { get; init; }
}

/// <summary>z = a ⊙ x + c (a null: 1; c null: 0).</summary>
internal sealed class DiagLayer : RigorousLayer
{
    public double[]? A { get; init; }
    public double[]? C { get; init; }
}

/// <summary>z_j = x_{Src[j]} with Src a permutation.</summary>
internal sealed class PermLayer : RigorousLayer
{
    public required int[] Src { get; init; }
}

/// <summary>z = max(x, 0).</summary>
internal sealed class ReluLayer : RigorousLayer;
