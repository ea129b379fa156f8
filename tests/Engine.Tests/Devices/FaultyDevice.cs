using Engine.Tensors;

namespace Engine.Tests.Devices;

/// <summary>Bugs a <see cref="FaultyKernels"/> can plant, each the kind a hand-written GPU kernel might have.</summary>
public enum Fault
{
    /// <summary>Unary Exp is off by a relative 1e-3 (a wrong constant in an approximation).</summary>
    ExpOffByOnePerMille,
    /// <summary>Gemm treats every beta as 0 (C is overwritten instead of accumulated).</summary>
    GemmIgnoresBeta,
    /// <summary>Binary reads b's innermost dimension as broadcast whenever b broadcasts anywhere.</summary>
    BinaryBroadcastWrong,
    /// <summary>Fill writes one element past the end.</summary>
    FillOverruns,
    /// <summary>Copy ignores the buffers' offsets.</summary>
    CopyIgnoresOffset,
    /// <summary>Reduce drops the last element of each row (an off-by-one loop bound).</summary>
    ReduceDropsLast,
    /// <summary>Permute faults and leaves the device unusable (an illegal address in a CUDA kernel).</summary>
    PermuteCrashesDevice,
}

/// <summary>The emulated device's kernels with one planted <see cref="Fault"/>: the self-test must report exactly that op.</summary>
internal sealed class FaultyKernels(Fault fault) : EmulatedKernels
{
    public Fault Fault { get; } = fault;

    public static EmulatedDevice Device(Fault fault) => new($"emu-faulty-{fault}", new FaultyKernels(fault));

    public override void Unary(UnaryOp op, Buf x, Buf y, int n, float alpha, float beta)
    {
        base.Unary(op, x, y, n, alpha, beta);
        if (Fault == Fault.ExpOffByOnePerMille && op == UnaryOp.Exp) Inner.ScaleInPlace(M(y), n, 1.001f);
    }

    public override void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha, Buf a, int lda, long strideA,
                              Buf b, int ldb, long strideB, float beta, Buf c, int ldc, long strideC)
        => base.Gemm(transA, transB, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, Fault == Fault.GemmIgnoresBeta ? 0f : beta, c, ldc, strideC);

    public override void Binary(BinaryOp op, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape)
    {
        if (Fault == Fault.BinaryBroadcastWrong && bStrides.Contains(0) && bStrides.Length > 0)
        {
            bStrides = (int[])bStrides.Clone();
            bStrides[^1] = 0;
        }
        base.Binary(op, a, aStrides, b, bStrides, y, shape);
    }

    public override void Fill(Buf y, int n, float value) => base.Fill(y, Fault == Fault.FillOverruns ? n + 1 : n, value);

    public override void Copy(Buf src, Buf dst, int n)
        => base.Copy(Fault == Fault.CopyIgnoresOffset ? new Buf(src.Storage, 0) : src, Fault == Fault.CopyIgnoresOffset ? new Buf(dst.Storage, 0) : dst, n);

    public override void Permute(Buf x, int[] shape, int[] perm, Buf y)
    {
        if (Fault == Fault.PermuteCrashesDevice)
        {
            ((EmulatedDevice)y.Storage.Device).Broken = true;
            throw new InvalidOperationException("planted: illegal memory access");
        }
        base.Permute(x, shape, perm, y);
    }

    public override void Reduce(ReduceOp op, Buf x, Buf y, int outer, int size, int inner)
    {
        if (Fault != Fault.ReduceDropsLast || size < 2 || inner != 1) { base.Reduce(op, x, y, outer, size, inner); return; }
        for (int o = 0; o < outer; o++) base.Reduce(op, x.At(o * size), y.At(o), 1, size - 1, 1);
    }
}
