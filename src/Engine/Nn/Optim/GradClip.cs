using Engine.Tensors;

namespace Engine.Nn;

/// <summary>Gradient clipping (torch.nn.utils.clip_grad_norm_).</summary>
public static class GradClip
{
    /// <summary>
    /// Scales every gradient in place so that their joint L2 norm is at most <paramref name="maxNorm"/>
    /// (coefficient maxNorm / (norm + 1e-6), applied only when below 1). Parameters without a gradient are
    /// ignored. Returns the total norm before clipping (NaN or infinity when a gradient holds one; then nothing is scaled).
    /// </summary>
    public static float ClipGradNorm(IEnumerable<Tensor> parameters, float maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (!(maxNorm >= 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), $"ClipGradNorm: maxNorm must be >= 0, got {maxNorm}.");
        var grads = parameters.Select(p => p.Grad).OfType<Tensor>().Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>().ToArray();
        double sq = 0;
        foreach (var g in grads) sq += g.K.SumOfSquares(g.Buf, g.Numel);
        float total = (float)Math.Sqrt(sq);
        if (!float.IsFinite(total)) return total;
        float coef = maxNorm / (total + 1e-6f);
        if (coef < 1f)
            foreach (var g in grads) g.K.ScaleInPlace(g.Buf, g.Numel, coef);
        return total;
    }

    /// <summary>The joint L2 norm of the gradients without changing them.</summary>
    public static float GradNorm(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        double sq = 0;
        foreach (var g in parameters.Select(p => p.Grad).OfType<Tensor>().Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>())
            sq += g.K.SumOfSquares(g.Buf, g.Numel);
        return (float)Math.Sqrt(sq);
    }
}
