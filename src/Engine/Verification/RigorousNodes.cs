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

    /// <summary>
    /// The nonzeros of W as runs of consecutive columns (a convolution read as a matrix is mostly zeros, its nonzeros
    /// in runs of the kernel width), or null when W is dense enough for the plain loops. Row o's runs are
    /// RunStart[o] .. RunStart[o + 1]; run r covers columns RunCol[r] .. RunCol[r] + RunLen[r] − 1, whose weights
    /// are Val[RunVal[r] ..]. Skipping exact zeros changes no sum (a zero product adds nothing, whatever the order),
    /// and the rounding charges count all In (or Size) terms, so every bound computed either way is valid.
    /// </summary>
    public SparseRuns? Runs { get; init; }

    /// <summary>Σ_i W[o, i]·z[i] (round to nearest, any order).</summary>
    public double RowDot(int o, ReadOnlySpan<double> z)
    {
        if (Runs is not { } s) return System.Numerics.Tensors.TensorPrimitives.Dot(W.AsSpan(o * In, In), z[..In]);
        double acc = 0;
        var v4 = System.Runtime.Intrinsics.Vector256<double>.Zero;
        for (int r = s.RunStart[o]; r < s.RunStart[o + 1]; r++)
        {
            int len = s.RunLen[r], c = s.RunCol[r], at = s.RunVal[r];
            if (len == 4)
            {
                v4 = System.Runtime.Intrinsics.Vector256.FusedMultiplyAdd(System.Runtime.Intrinsics.Vector256.Create(s.Val.AsSpan(at, 4)),
                                                                          System.Runtime.Intrinsics.Vector256.Create(z.Slice(c, 4)), v4);
                continue;
            }
            for (int k = 0; k < len; k++) acc += s.Val[at + k] * z[c + k];
        }
        return acc + System.Runtime.Intrinsics.Vector256.Sum(v4);
    }
}

/// <summary>A sparse matrix as runs of consecutive nonzero columns per row (see <see cref="DenseNode.Runs"/>).</summary>
internal sealed class SparseRuns
{
    public required int[] RunStart { get; init; }
    public required int[] RunCol { get; init; }
    public required int[] RunLen { get; init; }
    public required int[] RunVal { get; init; }
    public required double[] Val { get; init; }

    /// <summary>|Val| (exact).</summary>
    public required double[] AbsVal { get; init; }

    /// <summary>The runs of a row-major [rows, cols] matrix, or null when more than a quarter of it is nonzero.</summary>
    public static SparseRuns? TryCreate(double[] w, int rows, int cols)
    {
        long nnz = 0;
        foreach (var v in w) if (v != 0) nnz++;
        if (nnz * 4 > w.LongLength || nnz > int.MaxValue / 2) return null;
        var start = new int[rows + 1];
        var col = new List<int>(); var len = new List<int>(); var at = new List<int>();
        var val = new double[nnz];
        int nv = 0;
        for (int o = 0; o < rows; o++)
        {
            var row = w.AsSpan(o * cols, cols);
            for (int i = 0; i < cols;)
            {
                if (row[i] == 0) { i++; continue; }
                int j = i;
                while (j < cols && row[j] != 0) j++;
                col.Add(i); len.Add(j - i); at.Add(nv);
                for (int k = i; k < j; k++) val[nv++] = row[k];
                i = j;
            }
            start[o + 1] = col.Count;
        }
        return new SparseRuns { RunStart = start, RunCol = [.. col], RunLen = [.. len], RunVal = [.. at], Val = val, AbsVal = Array.ConvertAll(val, Math.Abs) };
    }
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
