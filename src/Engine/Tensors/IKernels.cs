namespace Engine.Tensors;

/// <summary>
/// The kernel contract every device implements. Kernels are plain functions over flat, contiguous
/// float32 buffers: no allocation, no autograd, no shapes beyond what they need. The interface is
/// partial: each family of kernels (elementwise, reductions, conv, ...) declares its members in its own file.
/// </summary>
public partial interface IKernels
{
    /// <summary>y[i] = value for i in [0, n).</summary>
    void Fill(Buf y, int n, float value);

    /// <summary>dst[i] = src[i] for i in [0, n). Buffers may not overlap.</summary>
    void Copy(Buf src, Buf dst, int n);

    /// <summary>y[i] += alpha * x[i] for i in [0, n).</summary>
    void Axpy(float alpha, Buf x, Buf y, int n);

    /// <summary>
    /// Row-major batched SGEMM: for each b in [0, batch): C_b = alpha * op(A_b) * op(B_b) + beta * C_b, where
    /// op(A) is m×k (A stored k×m when transA), op(B) is k×n (B stored n×k when transB), A_b = a + b*strideA
    /// (a stride of 0 broadcasts one matrix over the batch). When beta is 0, C is not read (NaN in C is ignored).
    /// </summary>
    void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha,
              Buf a, int lda, long strideA, Buf b, int ldb, long strideB, float beta, Buf c, int ldc, long strideC);

    /// <summary>y[i] = uniform in [low, high) from the Philox counter stream (seed, counter + i/4): identical on every device.</summary>
    void RandomUniform(Buf y, int n, ulong seed, ulong counter, float low, float high);

    /// <summary>y[i] = mean + std * N(0,1) from the Philox counter stream (Box-Muller on (seed, counter + i/2)).</summary>
    void RandomNormal(Buf y, int n, ulong seed, ulong counter, float mean, float std);
}
