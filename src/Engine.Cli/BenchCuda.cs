using Engine.Tensors;
#if ENGINE_CUDA
using Engine.Cuda;
#endif

namespace Engine.Cli;

/// <summary>
/// The references the GPU benchmarks compare the engine with, called on the engine's own CUDA context (same stream,
/// same cuBLAS handle and math mode), so that a ratio measures only what the engine adds. Compiled only with
/// Engine.Cuda (ENGINE_CUDA); a CPU-only build has none.
/// </summary>
internal static class BenchCuda
{
    /// <summary>Clears the ENGINE_CUDA_PROFILE table (after a benchmark's untimed first call); nothing without CUDA.</summary>
    public static void ResetProfile()
    {
#if ENGINE_CUDA
        CudaProfiler.Reset();
#endif
    }

    /// <summary>
    /// cuBLAS SGEMM called directly on the raw device addresses of row-major A [m, k], B [k, n] (or [n, k] when
    /// <paramref name="transB"/>) and C [m, n], as the engine's Gemm computes C = A·op(B); null when
    /// <paramref name="device"/> is not a CUDA device (or CUDA is not compiled in).
    /// </summary>
    public static Action? DirectSgemm(Device device, bool transB, int m, int n, int k, Tensor a, Tensor b, Tensor c)
    {
#if ENGINE_CUDA
        if (device is not CudaDevice cuda) return null;
        var ctx = cuda.Context;
        ulong pa = CudaStorage.Of(a.Storage, ctx).Address + (ulong)a.Offset * sizeof(float);
        ulong pb = CudaStorage.Of(b.Storage, ctx).Address + (ulong)b.Offset * sizeof(float);
        ulong pc = CudaStorage.Of(c.Storage, ctx).Address + (ulong)c.Offset * sizeof(float);
        int lda = k, ldb = transB ? k : n, ldc = n;
        return () =>
        {
            // Column-major cuBLAS sees the row-major C as Cᵀ = op(B)ᵀ·Aᵀ: operands swapped, m and n swapped.
            ctx.Blas.Sgemm(transB, false, n, m, k, 1f, pb, ldb, pa, lda, 0f, pc, ldc);
            GC.KeepAlive(a); GC.KeepAlive(b); GC.KeepAlive(c);
        };
#else
        _ = (device, transB, m, n, k, a, b, c);
        return null;
#endif
    }
}
