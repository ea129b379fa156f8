using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Cpu;

/// <summary>
/// Matrix-vector products (m = 1 or n = 1) for <see cref="Sgemm"/>. They are bound by reading the matrix once, so
/// packing (a second copy) and the 14×32 register tile (1/14 or 1/32 of it useful) only cost time here: the matrix is
/// streamed in place, either as dot products of contiguous rows or as a sum of scaled contiguous rows.
/// Every output element is computed by the same instruction sequence whatever the thread split.
/// </summary>
internal static unsafe class GemmGemv
{
    /// <summary>Matrix elements per thread chunk: below this a chunk is not worth a thread.</summary>
    private const int MinChunkElements = 1 << 17;
    /// <summary>Columns of the row-sum accumulator kept in L1 (4 KB).</summary>
    private const int ColumnBlock = 1024;

    /// <summary>Runs C = alpha·op(A)·op(B) + beta·C when m or n is 1; false when it does not apply.</summary>
    internal static bool TryRun(bool v512, bool transA, bool transB, int m, int n, int k, float alpha,
                                float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        if (n == 1)
        {
            // c[i·ldc] = Σp op(A)[i,p]·x[p] with x[p] = op(B)[p,0].
            if (transA) RowSums(v512, a, lda, m, b, transB ? 1 : ldb, k, c, ldc, alpha, beta, threads);
            else if (!Dots(v512, a, lda, m, b, transB ? 1 : ldb, k, c, ldc, alpha, beta, threads)) return false;
            return true;
        }
        if (m == 1)
        {
            // c[j] = Σp x[p]·op(B)[p,j] with x[p] = op(A)[0,p].
            if (transB) return Dots(v512, b, ldb, n, a, transA ? lda : 1, k, c, 1, alpha, beta, threads);
            RowSums(v512, b, ldb, n, a, transA ? lda : 1, k, c, 1, alpha, beta, threads);
            return true;
        }
        return false;
    }

    /// <summary>y[i] = Σp r[i·ld + p]·x[p·xs] for i &lt; count (contiguous rows dotted with x), written to c[i·cs].</summary>
    private static bool Dots(bool v512, float* r, int ld, int count, float* x, int xs, int k, float* c, int cs,
                             float alpha, float beta, int threads)
    {
        GemmWorkspace? ws = null;
        if (xs != 1)
        {
            // Gather a strided x once so every row reads it with vector loads.
            ws = GemmWorkspace.Rent();
            if (k > GemmWorkspace.AFloats) { GemmWorkspace.Return(ws); return false; }
            for (int p = 0; p < k; p++) ws.A[p] = x[(long)p * xs];
            x = ws.A;
        }
        try
        {
            int minRows = Math.Max(4, MinChunkElements / Math.Max(1, k));
            if (threads <= 1) DotRange(v512, r, ld, 0, count, x, k, c, cs, alpha, beta);
            else
            {
                float* xx = x;
                CpuThreads.For(count, minRows, (s, e) => DotRange(v512, r, ld, s, e, xx, k, c, cs, alpha, beta));
            }
        }
        finally
        {
            if (ws != null) GemmWorkspace.Return(ws);
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DotRange(bool v512, float* r, int ld, int start, int end, float* x, int k, float* c, int cs,
                                 float alpha, float beta)
    {
        int i = start;
        for (; i + 4 <= end; i += 4)
        {
            float* r0 = r + (long)i * ld, r1 = r0 + ld, r2 = r1 + ld, r3 = r2 + ld;
            float s0, s1, s2, s3;
            int p;
            if (v512)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (p = 0; p + 16 <= k; p += 16)
                {
                    var xv = Vector512.Load(x + p);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + p), xv, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(r1 + p), xv, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(r2 + p), xv, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(r3 + p), xv, a3);
                }
                s0 = Vector512.Sum(a0); s1 = Vector512.Sum(a1); s2 = Vector512.Sum(a2); s3 = Vector512.Sum(a3);
            }
            else
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (p = 0; p + 8 <= k; p += 8)
                {
                    var xv = Vector256.Load(x + p);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.Load(r0 + p), xv, a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.Load(r1 + p), xv, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.Load(r2 + p), xv, a2);
                    a3 = Vector256.FusedMultiplyAdd(Vector256.Load(r3 + p), xv, a3);
                }
                s0 = Vector256.Sum(a0); s1 = Vector256.Sum(a1); s2 = Vector256.Sum(a2); s3 = Vector256.Sum(a3);
            }
            for (; p < k; p++)
            {
                float xp = x[p];
                s0 = MathF.FusedMultiplyAdd(r0[p], xp, s0);
                s1 = MathF.FusedMultiplyAdd(r1[p], xp, s1);
                s2 = MathF.FusedMultiplyAdd(r2[p], xp, s2);
                s3 = MathF.FusedMultiplyAdd(r3[p], xp, s3);
            }
            Put(c + (long)i * cs, s0, alpha, beta);
            Put(c + (long)(i + 1) * cs, s1, alpha, beta);
            Put(c + (long)(i + 2) * cs, s2, alpha, beta);
            Put(c + (long)(i + 3) * cs, s3, alpha, beta);
        }
        for (; i < end; i++)
        {
            // Same per-row sequence as the 4-row loop, so a row's value does not depend on its group.
            float* r0 = r + (long)i * ld;
            float s0;
            int p;
            if (v512)
            {
                Vector512<float> a0 = default;
                for (p = 0; p + 16 <= k; p += 16) a0 = Vector512.FusedMultiplyAdd(Vector512.Load(r0 + p), Vector512.Load(x + p), a0);
                s0 = Vector512.Sum(a0);
            }
            else
            {
                Vector256<float> a0 = default;
                for (p = 0; p + 8 <= k; p += 8) a0 = Vector256.FusedMultiplyAdd(Vector256.Load(r0 + p), Vector256.Load(x + p), a0);
                s0 = Vector256.Sum(a0);
            }
            for (; p < k; p++) s0 = MathF.FusedMultiplyAdd(r0[p], x[p], s0);
            Put(c + (long)i * cs, s0, alpha, beta);
        }
    }

    /// <summary>y[j] = Σp x[p·xs]·r[p·ld + j] for j &lt; len (a sum of scaled contiguous rows), written to c[j·cs].</summary>
    private static void RowSums(bool v512, float* r, int ld, int len, float* x, int xs, int k, float* c, int cs,
                                float alpha, float beta, int threads)
    {
        int units = (len + 15) / 16;
        int minUnits = Math.Max(4, MinChunkElements / 16 / Math.Max(1, k));
        if (threads <= 1) RowSumRange(v512, r, ld, 0, len, x, xs, k, c, cs, alpha, beta);
        else
            CpuThreads.For(units, minUnits, (s, e) =>
                RowSumRange(v512, r, ld, s * 16, Math.Min(len, e * 16), x, xs, k, c, cs, alpha, beta));
    }

    // The accumulator block is cleared before use: no need for the runtime to zero 4 KB of stack per call.
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]
    private static void RowSumRange(bool v512, float* r, int ld, int start, int end, float* x, int xs, int k, float* c, int cs,
                                    float alpha, float beta)
    {
        float* y = stackalloc float[ColumnBlock];
        for (int j0 = start; j0 < end; j0 += ColumnBlock)
        {
            int jb = Math.Min(ColumnBlock, end - j0);
            new Span<float>(y, jb).Clear();
            float* rp = r + j0;
            int p = 0;
            // Four rows per pass: y is loaded and stored once per four FMAs; lanes never depend on the vector width.
            for (; p + 4 <= k; p += 4, rp += 4L * ld)
            {
                float x0 = x[(long)p * xs], x1 = x[(long)(p + 1) * xs], x2 = x[(long)(p + 2) * xs], x3 = x[(long)(p + 3) * xs];
                float* q0 = rp, q1 = rp + ld, q2 = q1 + ld, q3 = q2 + ld;
                int j = 0;
                if (v512)
                {
                    Vector512<float> v0 = Vector512.Create(x0), v1 = Vector512.Create(x1), v2 = Vector512.Create(x2), v3 = Vector512.Create(x3);
                    for (; j + 16 <= jb; j += 16)
                    {
                        var acc = Vector512.Load(y + j);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q0 + j), v0, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q1 + j), v1, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q2 + j), v2, acc);
                        acc = Vector512.FusedMultiplyAdd(Vector512.Load(q3 + j), v3, acc);
                        Vector512.Store(acc, y + j);
                    }
                }
                else
                {
                    Vector256<float> v0 = Vector256.Create(x0), v1 = Vector256.Create(x1), v2 = Vector256.Create(x2), v3 = Vector256.Create(x3);
                    for (; j + 8 <= jb; j += 8)
                    {
                        var acc = Vector256.Load(y + j);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(q0 + j), v0, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(q1 + j), v1, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(q2 + j), v2, acc);
                        acc = Vector256.FusedMultiplyAdd(Vector256.Load(q3 + j), v3, acc);
                        Vector256.Store(acc, y + j);
                    }
                }
                for (; j < jb; j++)
                {
                    float acc = y[j];
                    acc = MathF.FusedMultiplyAdd(q0[j], x0, acc);
                    acc = MathF.FusedMultiplyAdd(q1[j], x1, acc);
                    acc = MathF.FusedMultiplyAdd(q2[j], x2, acc);
                    acc = MathF.FusedMultiplyAdd(q3[j], x3, acc);
                    y[j] = acc;
                }
            }
            for (; p < k; p++, rp += ld)
            {
                float xp = x[(long)p * xs];
                int j = 0;
                if (v512)
                    for (var v = Vector512.Create(xp); j + 16 <= jb; j += 16)
                        Vector512.Store(Vector512.FusedMultiplyAdd(Vector512.Load(rp + j), v, Vector512.Load(y + j)), y + j);
                for (; j < jb; j++) y[j] = MathF.FusedMultiplyAdd(rp[j], xp, y[j]);
            }
            int o = 0;
            if (v512 && cs == 1)
                for (; o + 16 <= jb; o += 16) Put16(c + j0 + o, Vector512.Load(y + o), alpha, beta);
            for (int j = o; j < jb; j++) Put(c + (long)(j0 + j) * cs, y[j], alpha, beta);
        }
    }

    /// <summary>The micro-kernels' write formulas (C unread when beta is 0); also used by the dot and outer-product paths.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Put(float* c, float acc, float alpha, float beta) =>
        *c = beta == 0 ? acc * alpha
            : beta == 1 ? MathF.FusedMultiplyAdd(alpha, acc, *c)
            : MathF.FusedMultiplyAdd(alpha, acc, *c * beta);

    /// <summary><see cref="Put"/> for 16 consecutive elements of C, element for element the same result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Put16(float* c, Vector512<float> acc, float alpha, float beta) =>
        (beta == 0 ? acc * Vector512.Create(alpha)
            : beta == 1 ? Vector512.FusedMultiplyAdd(Vector512.Create(alpha), acc, Vector512.Load(c))
            : Vector512.FusedMultiplyAdd(Vector512.Create(alpha), acc, Vector512.Load(c) * Vector512.Create(beta))).Store(c);
}
