namespace Engine.Tensors;

/// <summary>Fused optimiser kernels: one pass over a parameter per step, PyTorch update semantics.</summary>
public partial interface IKernels
{
    /// <summary>
    /// One SGD step over n elements, as torch.optim.SGD: d = grad + weightDecay * param; with momentum, the buffer
    /// becomes d on the first step (<paramref name="firstStep"/>) and momentum * buf + (1 - dampening) * d after,
    /// and d becomes buf (or d + momentum * buf with nesterov); then param -= lr * d. The buffer is not touched
    /// when momentum is 0 (pass default).
    /// </summary>
    void SgdUpdate(Buf param, Buf grad, Buf momentumBuffer, int n, float lr, float momentum, float dampening,
                   float weightDecay, bool nesterov, bool firstStep);

    /// <summary>
    /// One Adam / AdamW step over n elements, as torch.optim.Adam / AdamW (no amsgrad). With
    /// <paramref name="decoupledWeightDecay"/> (AdamW) param *= 1 - lr * weightDecay first; otherwise
    /// grad += weightDecay * param (L2). Then m = lerp(m, g, 1 - beta1), v = beta2 * v + (1 - beta2) * g²,
    /// param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps). <paramref name="step"/> counts from 1.
    /// </summary>
    void AdamUpdate(Buf param, Buf grad, Buf expAvg, Buf expAvgSq, int n, float lr, float beta1, float beta2, float eps,
                    float weightDecay, bool decoupledWeightDecay, int step);

    /// <summary>Sum of x[i]² over n elements, accumulated in double (for gradient norms).</summary>
    double SumOfSquares(Buf x, int n);

    /// <summary>x[i] *= alpha in place over n elements (for gradient clipping).</summary>
    void ScaleInPlace(Buf x, int n, float alpha);
}
