using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Engine.Tensors;

namespace Engine.Cpu;

// Fused optimiser updates: each element of param, grad and state is read and written once per step.
public sealed unsafe partial class CpuKernels
{
    // Below this, threading costs more than the update itself.
    private const int OptimMinChunk = 1 << 15;

    /// <inheritdoc/>
    public void SgdUpdate(Buf param, Buf grad, Buf momentumBuffer, int n, float lr, float momentum, float dampening,
                          float weightDecay, bool nesterov, bool firstStep)
    {
        float* p = P(param), g = P(grad), b = momentum != 0 ? P(momentumBuffer) : null;
        CpuThreads.For(n, OptimMinChunk, (s, e) => SgdRange(p, g, b, s, e, lr, momentum, dampening, weightDecay, nesterov, firstStep));
    }

    private static void SgdRange(float* p, float* g, float* b, int s, int e, float lr, float momentum, float dampening,
                                 float weightDecay, bool nesterov, bool firstStep)
    {
        int i = s;
        float keep = 1 - dampening;
        if (Vector512.IsHardwareAccelerated)
        {
            var vLr = Vector512.Create(-lr); var vWd = Vector512.Create(weightDecay);
            var vMom = Vector512.Create(momentum); var vKeep = Vector512.Create(keep);
            for (; i <= e - 16; i += 16)
            {
                var d = Vector512.Load(g + i);
                var x = Vector512.Load(p + i);
                if (weightDecay != 0) d = Vector512.FusedMultiplyAdd(vWd, x, d);
                if (b != null)
                {
                    var buf = firstStep ? d : Vector512.FusedMultiplyAdd(vMom, Vector512.Load(b + i), vKeep * d);
                    buf.Store(b + i);
                    d = nesterov ? Vector512.FusedMultiplyAdd(vMom, buf, d) : buf;
                }
                Vector512.FusedMultiplyAdd(vLr, d, x).Store(p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vLr = Vector256.Create(-lr); var vWd = Vector256.Create(weightDecay);
            var vMom = Vector256.Create(momentum); var vKeep = Vector256.Create(keep);
            for (; i <= e - 8; i += 8)
            {
                var d = Vector256.Load(g + i);
                var x = Vector256.Load(p + i);
                if (weightDecay != 0) d = Vector256.FusedMultiplyAdd(vWd, x, d);
                if (b != null)
                {
                    var buf = firstStep ? d : Vector256.FusedMultiplyAdd(vMom, Vector256.Load(b + i), vKeep * d);
                    buf.Store(b + i);
                    d = nesterov ? Vector256.FusedMultiplyAdd(vMom, buf, d) : buf;
                }
                Vector256.FusedMultiplyAdd(vLr, d, x).Store(p + i);
            }
        }
        for (; i < e; i++)
        {
            float d = g[i];
            if (weightDecay != 0) d = MathF.FusedMultiplyAdd(weightDecay, p[i], d);
            if (b != null)
            {
                float buf = firstStep ? d : MathF.FusedMultiplyAdd(momentum, b[i], keep * d);
                b[i] = buf;
                d = nesterov ? MathF.FusedMultiplyAdd(momentum, buf, d) : buf;
            }
            p[i] = MathF.FusedMultiplyAdd(-lr, d, p[i]);
        }
    }

    /// <inheritdoc/>
    public void AdamUpdate(Buf param, Buf grad, Buf expAvg, Buf expAvgSq, int n, float lr, float beta1, float beta2, float eps,
                           float weightDecay, bool decoupledWeightDecay, int step)
    {
        var (stepSize, bc2Sqrt) = OptimReference.AdamScalars(lr, beta1, beta2, step);
        float* p = P(param), g = P(grad), m = P(expAvg), v = P(expAvgSq);
        float decay = decoupledWeightDecay ? 1 - lr * weightDecay : 1;
        float l2 = decoupledWeightDecay ? 0 : weightDecay;
        CpuThreads.For(n, OptimMinChunk, (s, e) => AdamRange(p, g, m, v, s, e, beta1, beta2, eps, decay, l2, stepSize, 1 / bc2Sqrt));
    }

    private static void AdamRange(float* p, float* g, float* m, float* v, int s, int e, float beta1, float beta2, float eps,
                                  float decay, float l2, float stepSize, float invBc2Sqrt)
    {
        int i = s;
        float w1 = 1 - beta1, w2 = 1 - beta2;
        if (Vector512.IsHardwareAccelerated)
        {
            var vDecay = Vector512.Create(decay); var vL2 = Vector512.Create(l2);
            var vW1 = Vector512.Create(w1); var vB2 = Vector512.Create(beta2); var vW2 = Vector512.Create(w2);
            var vEps = Vector512.Create(eps); var vStep = Vector512.Create(-stepSize); var vInv = Vector512.Create(invBc2Sqrt);
            for (; i <= e - 16; i += 16)
            {
                var x = Vector512.Load(p + i);
                var gr = Vector512.FusedMultiplyAdd(vL2, x, Vector512.Load(g + i));
                x *= vDecay;
                var mm = Vector512.Load(m + i);
                mm = Vector512.FusedMultiplyAdd(vW1, gr - mm, mm);
                var vv = Vector512.FusedMultiplyAdd(vB2, Vector512.Load(v + i), vW2 * gr * gr);
                mm.Store(m + i); vv.Store(v + i);
                var denom = Vector512.FusedMultiplyAdd(Vector512.Sqrt(vv), vInv, vEps);
                Vector512.FusedMultiplyAdd(vStep, mm / denom, x).Store(p + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var vDecay = Vector256.Create(decay); var vL2 = Vector256.Create(l2);
            var vW1 = Vector256.Create(w1); var vB2 = Vector256.Create(beta2); var vW2 = Vector256.Create(w2);
            var vEps = Vector256.Create(eps); var vStep = Vector256.Create(-stepSize); var vInv = Vector256.Create(invBc2Sqrt);
            for (; i <= e - 8; i += 8)
            {
                var x = Vector256.Load(p + i);
                var gr = Vector256.FusedMultiplyAdd(vL2, x, Vector256.Load(g + i));
                x *= vDecay;
                var mm = Vector256.Load(m + i);
                mm = Vector256.FusedMultiplyAdd(vW1, gr - mm, mm);
                var vv = Vector256.FusedMultiplyAdd(vB2, Vector256.Load(v + i), vW2 * gr * gr);
                mm.Store(m + i); vv.Store(v + i);
                var denom = Vector256.FusedMultiplyAdd(Vector256.Sqrt(vv), vInv, vEps);
                Vector256.FusedMultiplyAdd(vStep, mm / denom, x).Store(p + i);
            }
        }
        for (; i < e; i++)
        {
            float x = p[i];
            float gr = MathF.FusedMultiplyAdd(l2, x, g[i]);
            x *= decay;
            float mm = MathF.FusedMultiplyAdd(w1, gr - m[i], m[i]);
            float vv = MathF.FusedMultiplyAdd(beta2, v[i], w2 * gr * gr);
            m[i] = mm; v[i] = vv;
            float denom = MathF.FusedMultiplyAdd(MathF.Sqrt(vv), invBc2Sqrt, eps);
            p[i] = MathF.FusedMultiplyAdd(-stepSize, mm / denom, x);
        }
    }

    /// <inheritdoc/>
    public double SumOfSquares(Buf x, int n)
    {
        // Float partial sums over short blocks, added in double: accurate for millions of elements.
        const int block = 4096;
        var span = S(x, n);
        double total = 0;
        for (int i = 0; i < n; i += block)
            total += TensorPrimitives.SumOfSquares(span.Slice(i, Math.Min(block, n - i)));
        return total;
    }

    /// <inheritdoc/>
    public void ScaleInPlace(Buf x, int n, float alpha)
    {
        var span = S(x, n);
        TensorPrimitives.Multiply(span, alpha, span);
    }
}
