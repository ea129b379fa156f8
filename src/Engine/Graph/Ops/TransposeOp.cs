using Engine.Tensors;

namespace Engine.Graph;

/// <summary>Reorders dimensions: output dimension i is input dimension Perm[i] (ONNX Transpose; a contiguous copy).</summary>
public sealed partial class TransposeOp : Op
{
    private readonly int[] _perm;

    /// <summary>Creates the op; <paramref name="perm"/> must be a permutation of 0 .. rank-1.</summary>
    public TransposeOp(params int[] perm)
    {
        ArgumentNullException.ThrowIfNull(perm);
        var seen = new bool[perm.Length];
        foreach (int p in perm)
        {
            if (p < 0 || p >= perm.Length || seen[p])
                throw new ArgumentException($"Transpose: {ShapeUtil.Format(perm)} is not a permutation of 0..{perm.Length - 1}.");
            seen[p] = true;
        }
        _perm = (int[])perm.Clone();
    }

    /// <summary>The permutation.</summary>
    public int[] Perm => (int[])_perm.Clone();

    /// <inheritdoc/>
    public override string Type => "Transpose";
    /// <inheritdoc/>
    protected override string Attributes => $"perm={ShapeUtil.Format(_perm)}";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        var x = inputs[0];
        if (x.Rank != _perm.Length)
            throw new ArgumentException($"Transpose: perm {ShapeUtil.Format(_perm)} does not fit input of shape {ShapeUtil.Format(x.Dims)}.");
        return x.Permute(_perm);
    }
}
