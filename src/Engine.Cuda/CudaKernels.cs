using Engine.Tensors;

namespace Engine.Cuda;

/// <summary>
/// The CUDA implementation of <see cref="IKernels"/>: each member launches a kernel from kernels/*.cu (compiled by
/// NVRTC on first use) or calls cuBLAS, on the context's stream. Partial: one file per kernel family, as IKernels.
/// </summary>
internal sealed partial class CudaKernels : IKernels
{
    internal CudaKernels(CudaContext context) { Context = context; }

    /// <summary>The context (device, stream, module cache, allocator, cuBLAS handle) the kernels run in.</summary>
    internal CudaContext Context { get; }

    /// <summary>Device address of element <c>b.Offset</c> of a CUDA buffer (throws if it is not this context's).</summary>
    internal ulong Ptr(Buf b) => CudaStorage.Of(b.Storage, Context).Address + (ulong)b.Offset * sizeof(float);

    /// <summary>As <see cref="Ptr(Buf)"/>, or 0 (a null pointer) for an absent optional buffer.</summary>
    internal ulong Ptr(Buf? b) => b is { } v ? Ptr(v) : 0UL;

    /// <summary>Launches the <c>extern "C"</c> kernel <paramref name="name"/> of kernels/<paramref name="module"/>.cu.</summary>
    internal void Launch(string module, string name, Dim3 grid, Dim3 block, int sharedBytes, ref KernelParams args)
        => Context.Launch(module, name, grid, block, sharedBytes, ref args);

    /// <summary>
    /// A 1-D launch for grid-stride kernels over <paramref name="n"/> items: 256 threads a block, enough blocks to
    /// fill the device (the kernel must loop <c>for (i = blockIdx.x*blockDim.x+threadIdx.x; i &lt; n; i += gridDim.x*blockDim.x)</c>).
    /// Does nothing when n is 0.
    /// </summary>
    internal void Launch1D(string module, string name, long n, ref KernelParams args)
    {
        if (n <= 0) return;
        const uint block = 256;
        long blocks = Math.Min((n + block - 1) / block, Context.MaxResidentBlocks256);
        Launch(module, name, new Dim3((uint)blocks), new Dim3(block), 0, ref args);
    }

    /// <summary>Temporary device memory from the caching allocator, released (stream-ordered) on Dispose.</summary>
    internal DeviceScratch Scratch(long bytes) => Context.Scratch(bytes);

    /// <summary>Copies host values into fresh temporary device memory (e.g. index lists), released on Dispose.</summary>
    internal DeviceScratch Upload<T>(ReadOnlySpan<T> values) where T : unmanaged => Context.Upload(values);

    public void Fill(Buf y, int n, float value) => throw new NotImplementedException("Fill: owner cudart");

    public void Copy(Buf src, Buf dst, int n) => throw new NotImplementedException("Copy: owner cudart");

    public void Axpy(float alpha, Buf x, Buf y, int n) => throw new NotImplementedException("Axpy: owner cudart");

    public void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha, Buf a, int lda, long strideA,
                     Buf b, int ldb, long strideB, float beta, Buf c, int ldc, long strideC)
        => throw new NotImplementedException("Gemm: owner cudart (cuBLAS)");
}
