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

    /// <inheritdoc/>
    public void Fill(Buf y, int n, float value)
    {
        CheckCount(n, "Fill");
        Context.Memset32(Ptr(y, n, "Fill"), BitConverter.SingleToUInt32Bits(value), n);   // any float, NaN payloads included, bit for bit
    }

    /// <inheritdoc/>
    public void Copy(Buf src, Buf dst, int n)
    {
        CheckCount(n, "Copy");
        Context.CopyDeviceToDevice(Ptr(src, n, "Copy"), Ptr(dst, n, "Copy"), (long)n * sizeof(float));
    }

    /// <inheritdoc/>
    public void Axpy(float alpha, Buf x, Buf y, int n)
    {
        CheckCount(n, "Axpy");
        var p = new KernelParams();
        p.Float(alpha); p.Pointer(Ptr(x, n, "Axpy")); p.Pointer(Ptr(y, n, "Axpy")); p.Int(n);
        Launch1D("core", "axpy_f32", n, ref p);
    }

    /// <summary>
    /// cuBLAS is column-major; a row-major matrix read column-major is its transpose. So the row-major
    /// C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: swap the operands and m with n, keep
    /// each operand's own transpose flag and leading dimension. With beta = 0 cuBLAS does not read C.
    /// </summary>
    public void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha, Buf a, int lda, long strideA,
                     Buf b, int ldb, long strideB, float beta, Buf c, int ldc, long strideC)
    {
        if (batch < 0 || m < 0 || n < 0 || k < 0) throw new ArgumentException($"Gemm: negative size (batch={batch}, m={m}, n={n}, k={k}).");
        if (batch == 0 || m == 0 || n == 0) return;
        // Stored shapes (row-major): A is m x k (k x m when transA), B is k x n (n x k when transB), C is m x n.
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        ulong pa = 0, pb = 0;
        if (k > 0)
        {
            pa = GemmOperand("A", a, aRows, aCols, lda, strideA, batch);
            pb = GemmOperand("B", b, bRows, bCols, ldb, strideB, batch);
        }
        ulong pc = GemmOperand("C", c, m, n, ldc, strideC, batch);
        if (batch > 1 && strideC < (long)(m - 1) * ldc + n)
            throw new ArgumentException($"Gemm: strideC {strideC} makes the {batch} outputs of {m}x{n} (ldc {ldc}) overlap.");
        // With k = 0 A and B are not read (C = beta C), but cuBLAS still checks their leading dimensions.
        int la = Math.Max(lda, Math.Max(1, aCols)), lb = Math.Max(ldb, Math.Max(1, bCols));
        if (batch == 1)
            Context.Blas.Sgemm(transB, transA, n, m, k, alpha, pb, lb, pa, la, beta, pc, ldc);
        else
            Context.Blas.SgemmStridedBatched(transB, transA, n, m, k, alpha, pb, lb, strideB, pa, la, strideA, beta, pc, ldc, strideC, batch);
    }

    /// <summary>Checks a GEMM operand's leading dimension and that every batch entry lies inside its storage; its address.</summary>
    private ulong GemmOperand(string which, Buf x, int rows, int cols, int ld, long stride, int batch)
    {
        if (ld < Math.Max(1, cols)) throw new ArgumentException($"Gemm: ld{which.ToLowerInvariant()}={ld} is less than the {cols} columns of {which} (stored {rows}x{cols}, row-major).");
        if (stride < 0) throw new ArgumentException($"Gemm: stride{which}={stride} is negative.");
        long last = (long)(batch - 1) * stride + (long)(rows - 1) * ld + cols;   // one past the last element read or written
        var s = CudaStorage.Of(x.Storage, Context);
        if (x.Offset < 0 || x.Offset + last > s.Length)
            throw new ArgumentException($"Gemm: {which} ({batch} x {rows}x{cols}, ld {ld}, stride {stride}) at offset {x.Offset} runs past its storage of {s.Length} floats.");
        return s.Address + (ulong)x.Offset * sizeof(float);
    }

    /// <summary>Address of <paramref name="b"/>, after checking that n elements from its offset lie inside its storage.</summary>
    private ulong Ptr(Buf b, int n, string op)
    {
        var s = CudaStorage.Of(b.Storage, Context);
        if (b.Offset < 0 || (long)b.Offset + n > s.Length)
            throw new ArgumentOutOfRangeException(nameof(b), $"{op}: elements [{b.Offset}, {(long)b.Offset + n}) are outside a storage of {s.Length} floats.");
        return s.Address + (ulong)b.Offset * sizeof(float);
    }

    private static void CheckCount(int n, string op)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), $"{op}: negative element count {n}.");
    }
}
