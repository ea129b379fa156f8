using Engine.Tensors;

namespace Engine.Cuda;

// Fused optimiser kernels of kernels/optim.cu: 1-D grid-stride launches (256 threads, float4 where aligned).
// SumOfSquares reduces into per-block double partials, folds them on the device and reads 8 bytes back (a sync).
internal sealed partial class CudaKernels
{
    private const string OptModule = "optim";
    private const int SumSqBlock = 256;
    private const int SumSqMaxBlocks = 1024;

    /// <inheritdoc/>
    public void SgdUpdate(Buf param, Buf grad, Buf momentumBuffer, int n, float lr, float momentum, float dampening,
                          float weightDecay, bool nesterov, bool firstStep)
    {
        if (n <= 0) return;
        ulong pp = CheckedPtr(param, n, "SgdUpdate"), pg = CheckedPtr(grad, n, "SgdUpdate");
        ulong pb = momentum != 0 ? CheckedPtr(momentumBuffer, n, "SgdUpdate") : 0UL;
        float keep = 1 - dampening;
        var p = new KernelParams();
        p.Pointer(pp); p.Pointer(pg); p.Pointer(pb); p.Int(n);
        p.Float(lr); p.Float(momentum); p.Float(keep); p.Float(weightDecay); p.Int(nesterov ? 1 : 0); p.Int(firstStep ? 1 : 0);
        Launch1D(OptModule, "sgd_update", Quads(n), ref p);
    }

    /// <inheritdoc/>
    public void AdamUpdate(Buf param, Buf grad, Buf expAvg, Buf expAvgSq, int n, float lr, float beta1, float beta2, float eps,
                           float weightDecay, bool decoupledWeightDecay, int step)
    {
        // The per-step scalars exactly as the CPU (OptimReference.AdamScalars): bias corrections in double, like PyTorch.
        if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), "Adam step counts from 1.");
        double bc1 = 1 - Math.Pow(beta1, step), bc2 = 1 - Math.Pow(beta2, step);
        float stepSize = (float)(lr / bc1), bc2Sqrt = (float)Math.Sqrt(bc2);
        if (n <= 0) return;
        float decay = decoupledWeightDecay ? 1 - lr * weightDecay : 1;
        float l2 = decoupledWeightDecay ? 0 : weightDecay;
        var p = new KernelParams();
        p.Pointer(CheckedPtr(param, n, "AdamUpdate")); p.Pointer(CheckedPtr(grad, n, "AdamUpdate"));
        p.Pointer(CheckedPtr(expAvg, n, "AdamUpdate")); p.Pointer(CheckedPtr(expAvgSq, n, "AdamUpdate"));
        p.Int(n);
        p.Float(1 - beta1); p.Float(beta2); p.Float(1 - beta2); p.Float(eps);
        p.Float(decay); p.Float(l2); p.Float(stepSize); p.Float(1 / bc2Sqrt);
        Launch1D(OptModule, "adam_update", Quads(n), ref p);
    }

    /// <inheritdoc/>
    public double SumOfSquares(Buf x, int n)
    {
        if (n <= 0) return 0;
        ulong px = CheckedPtr(x, n, "SumOfSquares");
        long blocks = Math.Min(Math.Min((n + 4L * SumSqBlock - 1) / (4L * SumSqBlock), SumSqMaxBlocks), Math.Max(1, Context.MaxResidentBlocks256));
        using var scratch = Scratch((blocks + 1) * sizeof(double));
        ulong partials = scratch.Address, result = scratch.Address + (ulong)blocks * sizeof(double);
        var p = new KernelParams();
        p.Pointer(px); p.Int(n); p.Pointer(partials);
        Launch(OptModule, "sumsq_partial", new Dim3((uint)blocks), new Dim3(SumSqBlock), 0, ref p);
        var f = new KernelParams();
        f.Pointer(partials); f.Int((int)blocks); f.Pointer(result);
        Launch(OptModule, "sumsq_final", new Dim3(1), new Dim3(32), 0, ref f);
        Span<byte> bytes = stackalloc byte[sizeof(double)];
        Context.CopyToHost(result, bytes);
        return BitConverter.ToDouble(bytes);
    }

    /// <inheritdoc/>
    public void ScaleInPlace(Buf x, int n, float alpha)
    {
        if (n <= 0) return;
        var p = new KernelParams();
        p.Pointer(CheckedPtr(x, n, "ScaleInPlace")); p.Int(n); p.Float(alpha);
        Launch1D(OptModule, "scale_inplace", Quads(n), ref p);
    }
}
