using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// A linear specification: the matrix C whose rows are the properties bounded, so that bounds are on C·f(x) for
/// every x in the perturbation set. C is [specs, outputs] (shared by the batch) or [batch, specs, outputs].
/// </summary>
public sealed class Spec
{
    /// <summary>Wraps a C matrix ([specs, outputs] or [batch, specs, outputs]).</summary>
    public Spec(Tensor c)
    {
        ArgumentNullException.ThrowIfNull(c);
        if (c.Rank != 2 && c.Rank != 3)
            throw new ArgumentException($"Spec: C must be [specs, outputs] or [batch, specs, outputs], got {ShapeUtil.Format(c.Dims)}.");
        C = c;
    }

    /// <summary>The C matrix.</summary>
    public Tensor C { get; }

    /// <summary>Number of properties (rows of C).</summary>
    public int Count => C.Dims[^2];

    /// <summary>Number of network outputs C expects.</summary>
    public int Outputs => C.Dims[^1];

    /// <summary>
    /// The margin specification: for example b with label y, rows y_true − y_j for every j ≠ y (in increasing j),
    /// so a lower bound above 0 on every row proves the prediction cannot change. C is [B, classes − 1, classes].
    /// </summary>
    public static Spec Margins(int[] labels, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (numClasses < 2) throw new ArgumentOutOfRangeException(nameof(numClasses), $"Spec.Margins: need at least 2 classes, got {numClasses}.");
        var c = new float[labels.Length * (numClasses - 1) * numClasses];
        for (int b = 0; b < labels.Length; b++)
        {
            int y = labels[b];
            if (y < 0 || y >= numClasses) throw new ArgumentOutOfRangeException(nameof(labels), $"Spec.Margins: label {y} of example {b} is not in [0, {numClasses}).");
            int row = 0;
            for (int j = 0; j < numClasses; j++)
            {
                if (j == y) continue;
                int o = (b * (numClasses - 1) + row) * numClasses;
                c[o + y] = 1f; c[o + j] = -1f;
                row++;
            }
        }
        return new Spec(Tensor.FromArray(c, labels.Length, numClasses - 1, numClasses));
    }

    /// <summary>Margins from a label tensor (any shape with one integer-valued entry per example).</summary>
    public static Spec Margins(Tensor labels, int numClasses)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var v = labels.ToArray();
        var ints = new int[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] != MathF.Round(v[i])) throw new ArgumentException($"Spec.Margins: label {v[i]} of example {i} is not an integer.");
            ints[i] = (int)v[i];
        }
        return Margins(ints, numClasses);
    }

    /// <summary>C expanded to [batch, specs, outputs] for <paramref name="batch"/> examples.</summary>
    internal Tensor Batched(int batch)
    {
        if (C.Rank == 3)
        {
            if (C.Dims[0] != batch) throw new ArgumentException($"Spec: C {ShapeUtil.Format(C.Dims)} is for {C.Dims[0]} examples, the input has {batch}.");
            return C;
        }
        return C.Unsqueeze(0).Expand(batch, C.Dims[0], C.Dims[1]);
    }
}
