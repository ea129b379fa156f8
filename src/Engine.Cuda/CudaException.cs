namespace Engine.Cuda;

/// <summary>
/// A failed CUDA driver, NVRTC or cuBLAS call (or a missing CUDA library). The message names the call and the
/// library's own error name and description, e.g. "cuMemAlloc_v2(1048576 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY
/// (out of memory)". Derives from <see cref="InvalidOperationException"/> so callers that report bad device state
/// (the CLI's error line) handle it without knowing CUDA.
/// </summary>
public sealed class CudaException : InvalidOperationException
{
    /// <summary>Creates the exception for <paramref name="call"/> failing with <paramref name="error"/>.</summary>
    public CudaException(string call, string error) : base($"{call} failed: {error}")
    {
        Call = call;
        Error = error;
    }

    /// <summary>Creates the exception with a numeric status code (CUresult, nvrtcResult or cublasStatus_t).</summary>
    public CudaException(string call, string error, int status) : this(call, error) { Status = status; }

    /// <summary>The call that failed, with its key arguments.</summary>
    public string Call { get; }
    /// <summary>The library's error name and description.</summary>
    public string Error { get; }
    /// <summary>The numeric status, or -1 when there is none (a library that did not load).</summary>
    public int Status { get; } = -1;
}
