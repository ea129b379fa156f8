namespace Engine.Verification;

// The float64 guard's view of a network: a DAG of nodes over flattened per-example vectors, in topological order
// (node 0 is the input). Weights are the float32 weights converted exactly to double; where an op's real-arithmetic
// coefficient is not a double (1/c, a BatchNorm scale), the node holds an interval (midpoint and radius). Every
// relation below is exact in real arithmetic.
internal abstract class RigorousNode
{
    /// <summary>Length of the node's value for one example.</summary>
    public int Size { get; init; }

    /// <summary>Indices of the earlier nodes this one reads (set once, while the network is read).</summary>
    public int[] Inputs { get; set; } = [];
}

/// <summary>The network input.</summary>
internal sealed class InputNode : RigorousNode;

/// <summary>z = W·x + b, W row-major [Size, In].</summary>
internal sealed class DenseNode : RigorousNode
{
    public required int In { get; init; }
    public required double[] W { get; init; }
    public double[]? B { get; init; }

    /// <summary>|W| (exact), for interval bounds in centre-radius form.</summary>
    public required double[] AbsW { get; init; }

    /// <summary>Upper bounds of Σ_o |W[o, i]| per column (for the rounding charge of λᵀW).</summary>
    public required double[] ColAbs { get; init; }
}

/// <summary>z = a ⊙ x + c with a ∈ [A ± ARad], c ∈ [C ± CRad] elementwise (A null: exactly 1; C null: exactly 0).</summary>
internal sealed class DiagNode : RigorousNode
{
    public double[]? A { get; init; }
    public double[]? ARad { get; init; }
    public double[]? C { get; init; }
    public double[]? CRad { get; init; }
}

/// <summary>z_j = x_{Src[j]} with Src a permutation.</summary>
internal sealed class PermNode : RigorousNode
{
    public required int[] Src { get; init; }
}

/// <summary>z = x + y (or x − y): the sum of two computed values (a residual connection).</summary>
internal sealed class AddNode : RigorousNode
{
    public bool Subtract { get; init; }
}

/// <summary>z = max(x, 0).</summary>
internal sealed class ReluNode : RigorousNode;

/// <summary>The S-shaped activations: increasing, convex below 0, concave above, symmetric about (0, f(0)).</summary>
internal enum SShapeKind { Sigmoid, Tanh }

/// <summary>z = sigmoid(x) or tanh(x).</summary>
internal sealed class SShapeNode : RigorousNode
{
    public SShapeKind Kind { get; init; }
}

/// <summary>
/// z_j = max (or sum) of x_k over the group k ∈ Index[Start[j] .. Start[j+1]) (max / average pooling windows; an
/// average is a sum group followed by a <see cref="DiagNode"/> with the interval 1/count).
/// </summary>
internal sealed class GroupNode : RigorousNode
{
    public bool IsMax { get; init; }
    public required int[] Start { get; init; }
    public required int[] Index { get; init; }

    /// <summary>Largest number of groups one input belongs to (1: windows do not overlap, sums into μ are exact).</summary>
    public int Overlap { get; init; }
}
