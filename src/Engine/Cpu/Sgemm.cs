namespace Engine.Cpu;

/// <summary>Single-precision GEMM for the CPU path (row-major).</summary>
public static unsafe class Sgemm
{
    /// <summary>
    /// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m×k, op(B) is k×n. C is not read when beta is 0.
    /// </summary>
    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
                           float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        // Straightforward i-p-j order (rows of B and C stream); the packed, blocked path replaces it.
        for (int i = 0; i < m; i++)
        {
            float* ci = c + (long)i * ldc;
            if (beta == 0) new Span<float>(ci, n).Clear();
            else if (beta != 1) for (int j = 0; j < n; j++) ci[j] *= beta;
            for (int p = 0; p < k; p++)
            {
                float av = alpha * (transA ? a[(long)p * lda + i] : a[(long)i * lda + p]);
                if (transB) for (int j = 0; j < n; j++) ci[j] += av * b[(long)j * ldb + p];
                else
                {
                    float* bp = b + (long)p * ldb;
                    for (int j = 0; j < n; j++) ci[j] += av * bp[j];
                }
            }
        }
    }
}
