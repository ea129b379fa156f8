using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>Scalar reference implementations of the optimiser kernels, written as PyTorch's single-tensor loops.</summary>
public static class OptimReference
{
    /// <summary>Reference for <see cref="IKernels.SgdUpdate"/>.</summary>
    public static void SgdUpdate(Span<float> param, ReadOnlySpan<float> grad, Span<float> momentumBuffer, float lr, float momentum,
                                 float dampening, float weightDecay, bool nesterov, bool firstStep)
    {
        for (int i = 0; i < param.Length; i++)
        {
            float d = grad[i];
            if (weightDecay != 0) d += weightDecay * param[i];
            if (momentum != 0)
            {
                float buf = firstStep ? d : momentum * momentumBuffer[i] + (1 - dampening) * d;
                momentumBuffer[i] = buf;
                d = nesterov ? d + momentum * buf : buf;
            }
            param[i] -= lr * d;
        }
    }

    /// <summary>Reference for <see cref="IKernels.AdamUpdate"/>.</summary>
    public static void AdamUpdate(Span<float> param, ReadOnlySpan<float> grad, Span<float> expAvg, Span<float> expAvgSq, float lr,
                                  float beta1, float beta2, float eps, float weightDecay, bool decoupledWeightDecay, int step)
    {
        var (stepSize, bc2Sqrt) = AdamScalars(lr, beta1, beta2, step);
        for (int i = 0; i < param.Length; i++)
        {
            float g = grad[i];
            if (weightDecay != 0)
            {
                if (decoupledWeightDecay) param[i] *= 1 - lr * weightDecay;
                else g += weightDecay * param[i];
            }
            expAvg[i] += (1 - beta1) * (g - expAvg[i]);
            expAvgSq[i] = beta2 * expAvgSq[i] + (1 - beta2) * g * g;
            float denom = MathF.Sqrt(expAvgSq[i]) / bc2Sqrt + eps;
            param[i] -= stepSize * (expAvg[i] / denom);
        }
    }

    /// <summary>Reference for <see cref="IKernels.SumOfSquares"/>.</summary>
    public static double SumOfSquares(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (float v in x) s += (double)v * v;
        return s;
    }

    /// <summary>The per-step scalars PyTorch computes in double: lr / (1 - beta1^t) and sqrt(1 - beta2^t).</summary>
    internal static (float stepSize, float bc2Sqrt) AdamScalars(float lr, float beta1, float beta2, int step)
    {
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), "Adam step counts from 1.");
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        return ((float)(lr / bc1), (float)Math.Sqrt(bc2));
    }
}
