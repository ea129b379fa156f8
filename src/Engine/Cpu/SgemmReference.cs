namespace Engine.Cpu;

/// <summary>The scalar SGEMM every optimised GEMM is tested against (double accumulation, row-major).</summary>
public static class SgemmReference
{
    /// <summary>C = alpha * op(A) * op(B) + beta * C; C is not read when beta is 0.</summary>
    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
                           ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, float beta, Span<float> c, int ldc)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = transA ? a[p * lda + i] : a[i * lda + p];
                    float bv = transB ? b[j * ldb + p] : b[p * ldb + j];
                    s += (double)av * bv;
                }
                float prev = beta == 0 ? 0 : beta * c[i * ldc + j];
                c[i * ldc + j] = (float)(alpha * s) + prev;
            }
    }
}
