using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// C = alpha·A·Bᵀ + beta·C for few rows of A (A m×k and B n×k, both row-major): every element a dot product of two
/// contiguous rows, accumulated along k in vector lanes, summed at the end of each slice of k (long rows are cut into
/// near-equal slices of at most 896) and added into C slice after slice. The packed path has to transpose all of
/// B into column panels on every call (a layer's weight, n·k floats), which for a few dozen rows of A costs about as
/// much as the multiply-adds; here both operands are read in place. A register block is 4 rows of A by 5 rows of B
/// (20 accumulators, 9 loads per 20 FMAs). Every element is computed by the same instruction sequence wherever it
/// falls (blocks at the edges repeat a valid row and drop its results), so results do not depend on the thread split.
/// </summary>
internal static unsafe class GemmDots
{
    private const int RowsA = 4, RowsB = 5;

    /// <summary>Most rows of A this path takes: beyond, packing B once pays for itself over the row panels.</summary>
    internal const int MaxM = 64;

    /// <summary>Shortest rows worth it: below, the final lane sums cost more than the packing saved.</summary>
    internal const int MinK = 64;

    // Longest stretch of k one register block runs before its sums go into C: 4 + 5 rows of it (32 KB) then stay in
    // L1 while the rows of A stream past (whole rows of 1568 floats did not, and both operands came from L2).
    private const int MaxSlice = 896;

    // Multiply-adds per thread chunk: below this a chunk is not worth a thread.
    private const long MinChunkWork = 1L << 20;

    /// <summary>Whether C = A·Bᵀ of this shape goes this way (AVX-512 only).</summary>
    internal static bool Applies(bool avx512, bool transA, bool transB, int m, int n, int k)
        => avx512 && !transA && transB && m >= 2 && m <= MaxM && n >= 2 && k >= MinK;

    /// <summary>C = alpha·A·Bᵀ + beta·C (C unread when beta is 0), over up to <paramref name="threads"/> threads.</summary>
    internal static void Run(int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        int blocks = (n + RowsB - 1) / RowsB;
        long perBlock = (long)m * RowsB * k;
        int minBlocks = (int)Math.Max(1, MinChunkWork / perBlock);
        if (threads <= 1 || blocks < 2 * minBlocks) Range(0, blocks, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        else CpuThreads.For(blocks, minBlocks, (s, e) => Range(s, e, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
    }

    private static void Range(int first, int end, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        int slices = (k + MaxSlice - 1) / MaxSlice, slice = ((k + slices - 1) / slices + 15) & ~15;
        for (int k0 = 0; k0 < k; k0 += slice)
            Slice(first, end, m, n, k0, Math.Min(k, k0 + slice), k, alpha, a, lda, b, ldb, k0 == 0 ? beta : 1f, c, ldc);
    }

    /// <summary>Blocks [first, end) of B's rows over k in [k0, kEnd): C = alpha·(their sums) + beta·C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Slice(int first, int end, int m, int n, int k0, int kEnd, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        // Whole vectors up to full; the last slice's partial vector (k mod 16 floats) through masked loads.
        int full = kEnd == k ? k & ~15 : kEnd;
        var tail = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(k & 15)).AsSingle();
        for (int jb = first; jb < end; jb++)
        {
            int j0 = jb * RowsB;
            float* q0 = Row(b, ldb, j0, n), q1 = Row(b, ldb, j0 + 1, n), q2 = Row(b, ldb, j0 + 2, n), q3 = Row(b, ldb, j0 + 3, n), q4 = Row(b, ldb, j0 + 4, n);
            for (int i0 = 0; i0 < m; i0 += RowsA)
            {
                float* p0 = Row(a, lda, i0, m), p1 = Row(a, lda, i0 + 1, m), p2 = Row(a, lda, i0 + 2, m), p3 = Row(a, lda, i0 + 3, m);
                Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default;
                Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default;
                Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default;
                Vector512<float> c30 = default, c31 = default, c32 = default, c33 = default, c34 = default;
                for (int p = k0; p < full; p += 16)
                {
                    Vector512<float> b0 = Vector512.Load(q0 + p), b1 = Vector512.Load(q1 + p), b2 = Vector512.Load(q2 + p), b3 = Vector512.Load(q3 + p), b4 = Vector512.Load(q4 + p);
                    Vector512<float> x = Vector512.Load(p0 + p);
                    c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01); c02 = Avx512F.FusedMultiplyAdd(x, b2, c02); c03 = Avx512F.FusedMultiplyAdd(x, b3, c03); c04 = Avx512F.FusedMultiplyAdd(x, b4, c04);
                    x = Vector512.Load(p1 + p);
                    c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11); c12 = Avx512F.FusedMultiplyAdd(x, b2, c12); c13 = Avx512F.FusedMultiplyAdd(x, b3, c13); c14 = Avx512F.FusedMultiplyAdd(x, b4, c14);
                    x = Vector512.Load(p2 + p);
                    c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21); c22 = Avx512F.FusedMultiplyAdd(x, b2, c22); c23 = Avx512F.FusedMultiplyAdd(x, b3, c23); c24 = Avx512F.FusedMultiplyAdd(x, b4, c24);
                    x = Vector512.Load(p3 + p);
                    c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31); c32 = Avx512F.FusedMultiplyAdd(x, b2, c32); c33 = Avx512F.FusedMultiplyAdd(x, b3, c33); c34 = Avx512F.FusedMultiplyAdd(x, b4, c34);
                }
                if (full < kEnd)
                {
                    // The last partial vector through zero-filling masked loads (which never touch memory past the row).
                    var z = Vector512<float>.Zero;
                    Vector512<float> b0 = Avx512F.MaskLoad(q0 + full, tail, z), b1 = Avx512F.MaskLoad(q1 + full, tail, z), b2 = Avx512F.MaskLoad(q2 + full, tail, z);
                    Vector512<float> b3 = Avx512F.MaskLoad(q3 + full, tail, z), b4 = Avx512F.MaskLoad(q4 + full, tail, z);
                    Vector512<float> x = Avx512F.MaskLoad(p0 + full, tail, z);
                    c00 = Avx512F.FusedMultiplyAdd(x, b0, c00); c01 = Avx512F.FusedMultiplyAdd(x, b1, c01); c02 = Avx512F.FusedMultiplyAdd(x, b2, c02); c03 = Avx512F.FusedMultiplyAdd(x, b3, c03); c04 = Avx512F.FusedMultiplyAdd(x, b4, c04);
                    x = Avx512F.MaskLoad(p1 + full, tail, z);
                    c10 = Avx512F.FusedMultiplyAdd(x, b0, c10); c11 = Avx512F.FusedMultiplyAdd(x, b1, c11); c12 = Avx512F.FusedMultiplyAdd(x, b2, c12); c13 = Avx512F.FusedMultiplyAdd(x, b3, c13); c14 = Avx512F.FusedMultiplyAdd(x, b4, c14);
                    x = Avx512F.MaskLoad(p2 + full, tail, z);
                    c20 = Avx512F.FusedMultiplyAdd(x, b0, c20); c21 = Avx512F.FusedMultiplyAdd(x, b1, c21); c22 = Avx512F.FusedMultiplyAdd(x, b2, c22); c23 = Avx512F.FusedMultiplyAdd(x, b3, c23); c24 = Avx512F.FusedMultiplyAdd(x, b4, c24);
                    x = Avx512F.MaskLoad(p3 + full, tail, z);
                    c30 = Avx512F.FusedMultiplyAdd(x, b0, c30); c31 = Avx512F.FusedMultiplyAdd(x, b1, c31); c32 = Avx512F.FusedMultiplyAdd(x, b2, c32); c33 = Avx512F.FusedMultiplyAdd(x, b3, c33); c34 = Avx512F.FusedMultiplyAdd(x, b4, c34);
                }
                int rows = Math.Min(RowsA, m - i0), cols = Math.Min(RowsB, n - j0);
                float* o = c + (long)i0 * ldc + j0;
                PutRow(o, cols, alpha, beta, c00, c01, c02, c03, c04);
                if (rows > 1) PutRow(o + ldc, cols, alpha, beta, c10, c11, c12, c13, c14);
                if (rows > 2) PutRow(o + 2L * ldc, cols, alpha, beta, c20, c21, c22, c23, c24);
                if (rows > 3) PutRow(o + 3L * ldc, cols, alpha, beta, c30, c31, c32, c33, c34);
            }
        }
    }

    /// <summary>Row r of a matrix with <paramref name="count"/> rows, or its last row past the end (an edge block's filler).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* Row(float* x, int ld, int r, int count) => x + (long)Math.Min(r, count - 1) * ld;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PutRow(float* o, int cols, float alpha, float beta, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3, Vector512<float> s4)
    {
        GemmGemv.Put(o, Vector512.Sum(s0), alpha, beta);
        if (cols > 1) GemmGemv.Put(o + 1, Vector512.Sum(s1), alpha, beta);
        if (cols > 2) GemmGemv.Put(o + 2, Vector512.Sum(s2), alpha, beta);
        if (cols > 3) GemmGemv.Put(o + 3, Vector512.Sum(s3), alpha, beta);
        if (cols > 4) GemmGemv.Put(o + 4, Vector512.Sum(s4), alpha, beta);
    }
}
