using System.Runtime.InteropServices;

namespace Engine.Cuda.Native;

/// <summary>cuBLAS operation codes (cublasOperation_t).</summary>
internal enum CublasOperation { N = 0, T = 1 }

/// <summary>
/// The cuBLAS functions the backend uses (libcublas, resolved by <see cref="NativeLibraries"/>). Column-major, as
/// cuBLAS itself; alpha and beta are host pointers (the default CUBLAS_POINTER_MODE_HOST).
/// </summary>
internal static unsafe partial class Cublas
{
    private const string Lib = "cublas";
    static Cublas() => NativeLibraries.EnsureResolver();

    /// <summary>CUBLAS_DEFAULT_MATH: full float32 (no TF32 tensor-core rounding), so results match the CPU's.</summary>
    internal const int DefaultMath = 0;

    [LibraryImport(Lib)] internal static partial int cublasCreate_v2(out nint handle);
    [LibraryImport(Lib)] internal static partial int cublasDestroy_v2(nint handle);
    [LibraryImport(Lib)] internal static partial int cublasSetStream_v2(nint handle, nint stream);
    [LibraryImport(Lib)] internal static partial int cublasSetMathMode(nint handle, int mode);
    [LibraryImport(Lib)] internal static partial int cublasGetVersion_v2(nint handle, out int version);
    [LibraryImport(Lib)] internal static partial int cublasSgemm_v2(nint handle, CublasOperation transA, CublasOperation transB,
        int m, int n, int k, float* alpha, ulong a, int lda, ulong b, int ldb, float* beta, ulong c, int ldc);
    [LibraryImport(Lib)] internal static partial int cublasSgemmStridedBatched(nint handle, CublasOperation transA, CublasOperation transB,
        int m, int n, int k, float* alpha, ulong a, int lda, long strideA, ulong b, int ldb, long strideB,
        float* beta, ulong c, int ldc, long strideC, int batchCount);

    /// <summary>The cublasStatus_t name (cuBLAS 11.0 lacks cublasGetStatusName, so the table lives here).</summary>
    public static string Describe(int status) => status switch
    {
        0 => "CUBLAS_STATUS_SUCCESS",
        1 => "CUBLAS_STATUS_NOT_INITIALIZED (cuBLAS could not initialise: no context, or out of memory)",
        3 => "CUBLAS_STATUS_ALLOC_FAILED (cuBLAS could not allocate its workspace)",
        7 => "CUBLAS_STATUS_INVALID_VALUE (an argument is out of range: sizes, leading dimensions, batch)",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH (the device lacks a feature cuBLAS needs)",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED (the kernel failed to launch or run)",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => $"cublasStatus_t {status}",
    };

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="status"/> is success.</summary>
    public static void Check(int status, string call)
    {
        if (status != 0) throw new CudaException(call, Describe(status), status);
    }
}
