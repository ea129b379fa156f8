using Engine.Cuda.Native;

namespace Engine.Cuda;

/// <summary>
/// A cuBLAS handle bound to a context's stream, in CUBLAS_DEFAULT_MATH (float32 throughout, no TF32). The calls are
/// cuBLAS's own column-major ones on raw device addresses: <see cref="CudaKernels.Gemm"/> maps the engine's
/// row-major GEMM onto them, and benchmarks call them directly as the reference.
/// </summary>
internal sealed class CudaBlas
{
    private readonly CudaContext _context;
    private readonly nint _handle;
    private readonly object _gate = new();

    internal CudaBlas(CudaContext context)
    {
        _context = context;
        NativeLibraries.Require(CudaLibrary.Cublas);
        context.MakeCurrent();
        Cublas.Check(Cublas.cublasCreate_v2(out _handle), "cublasCreate_v2");
        Cublas.Check(Cublas.cublasSetStream_v2(_handle, context.Stream), "cublasSetStream_v2");
        Cublas.Check(Cublas.cublasSetMathMode(_handle, Cublas.DefaultMath), "cublasSetMathMode(CUBLAS_DEFAULT_MATH)");
        Cublas.Check(Cublas.cublasGetVersion_v2(_handle, out int v), "cublasGetVersion_v2");
        Version = v;
    }

    /// <summary>cuBLAS version as an integer (major*10000 + minor*100 + patch for cuBLAS 11+).</summary>
    public int Version { get; }

    /// <summary>Column-major C = alpha op(A) op(B) + beta C (C is m x n) on this context's stream.</summary>
    public unsafe void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha, ulong a, int lda, ulong b, int ldb, float beta, ulong c, int ldc)
    {
        _context.MakeCurrent();
        int s;
        // A cuBLAS handle is not safe to use from two threads at once.
        long t0 = CudaProfiler.Enabled ? CudaProfiler.Begin(_context) : 0;
        lock (_gate)
            s = Cublas.cublasSgemm_v2(_handle, Op(transA), Op(transB), m, n, k, &alpha, a, lda, b, ldb, &beta, c, ldc);
        if (s != 0) throw new CudaException($"cublasSgemm_v2({Op(transA)}{Op(transB)}, m={m}, n={n}, k={k}, lda={lda}, ldb={ldb}, ldc={ldc})", Cublas.Describe(s), s);
        if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(_context); CudaProfiler.Record($"cublasSgemm {Op(transA)}{Op(transB)} {m}x{n}x{k} ld {lda},{ldb},{ldc}{Misaligned(a, b, c)}", t0, t1); }
    }

    /// <summary>Column-major strided-batched SGEMM (a stride of 0 reuses one matrix for every batch entry).</summary>
    public unsafe void SgemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, ulong a, int lda, long strideA,
                                           ulong b, int ldb, long strideB, float beta, ulong c, int ldc, long strideC, int batch)
    {
        _context.MakeCurrent();
        int s;
        long t0 = CudaProfiler.Enabled ? CudaProfiler.Begin(_context) : 0;
        lock (_gate)
            s = Cublas.cublasSgemmStridedBatched(_handle, Op(transA), Op(transB), m, n, k, &alpha, a, lda, strideA, b, ldb, strideB, &beta, c, ldc, strideC, batch);
        if (s != 0)
            throw new CudaException($"cublasSgemmStridedBatched({Op(transA)}{Op(transB)}, m={m}, n={n}, k={k}, lda={lda}, ldb={ldb}, ldc={ldc}, strides {strideA}/{strideB}/{strideC}, batch={batch})", Cublas.Describe(s), s);
        if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(_context); CudaProfiler.Record($"cublasSgemmStridedBatched {Op(transA)}{Op(transB)} {m}x{n}x{k} x{batch}{Misaligned(a, b, c)}", t0, t1); }
    }

    // cuBLAS picks slower kernels for operands not 16-byte aligned: the profiler names them.
    private static string Misaligned(ulong a, ulong b, ulong c) => ((a | b | c) & 15) != 0 ? " (misaligned)" : "";

    private static CublasOperation Op(bool trans) => trans ? CublasOperation.T : CublasOperation.N;
}
