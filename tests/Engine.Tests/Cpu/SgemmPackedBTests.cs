using Engine.Cpu;
using NUnit.Framework;

namespace Engine.Tests.Cpu;

[NonParallelizable]
public unsafe class SgemmPackedBTests
{
    /// <summary>Packs from a stored row-major or transposed B with the ordinary packer: RunPackedB must then equal Run exactly.</summary>
    private readonly struct StoredB(float* b, int ldb, bool transB) : IGemmPackB
    {
        public void Pack(int p0, int kc, int j0, int nc, int nr, bool avx512, float* dst)
            => GemmPack.PackB(transB, b, ldb, p0, kc, j0, nc, nr, dst, avx512);
    }

    private static float[] Fill(Random rng, int n)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1);
        return a;
    }

    [TestCase("avx512")]
    [TestCase("avx2")]
    public void RunPackedBEqualsRunBitwise(string which)
    {
        var path = which == "avx512" ? Sgemm.Path.Avx512 : Sgemm.Path.Avx2;
        if (path == Sgemm.Path.Avx512 && !System.Runtime.Intrinsics.X86.Avx512F.IsSupported) Assert.Ignore("AVX-512 not supported.");
        if (!System.Runtime.Intrinsics.X86.Avx2.IsSupported || !System.Runtime.Intrinsics.X86.Fma.IsSupported) Assert.Ignore("AVX2+FMA not supported.");
        int saved = CpuThreads.Count;
        var rng = new Random(7);
        try
        {
            Sgemm.ForcedPath = path;
            // (m or n = 1 is left out: Run sends those to the matrix-vector path, which sums differently; so are the
            // few-row A·Bᵀ shapes of GemmDots; outer products (k = 1) are computed apart but must match bit for bit.) Odd sizes, k past one k-block (384), n past one column block (512) and short tail panels, transposed A
            // and B, beta 0 (C unread), 1 and other, and thread counts that split the columns unevenly.
            foreach (var (m, n, k, ta, tb, beta, threads) in new[]
                     {
                         (2, 3, 1, false, false, 0f, 1), (5, 7, 3, true, false, 1f, 1), (13, 33, 17, false, true, 0.5f, 1), (40, 20, 63, false, true, 1f, 2),
                         (66, 576, 1024, false, true, 0f, 2), (37, 601, 400, true, true, 1f, 3), (70, 129, 95, false, false, 0f, 3),
                         (12, 48, 785, false, false, 0f, 1), (100, 17, 33, true, false, -2f, 2),
                         (9, 100, 1, false, true, 0f, 1), (30, 200, 390, false, false, 1f, 2), (48, 70, 50, true, false, 0f, 1), (6, 37, 1, true, false, 1f, 2), (5, 40, 1, false, false, -0.5f, 1),   // outer products
                     })
            {
                CpuThreads.Count = threads;
                int lda = ta ? m : k, ldb = tb ? k : n;
                var a = Fill(rng, m * k);
                var b = Fill(rng, k * n);
                var c0 = Fill(rng, m * n);
                if (beta == 0) Array.Fill(c0, float.NaN);
                var expect = (float[])c0.Clone();
                var got = (float[])c0.Clone();
                fixed (float* pa = a, pb = b, pe = expect, pg = got)
                {
                    Sgemm.Run(ta, tb, m, n, k, 0.75f, pa, lda, pb, ldb, beta, pe, n);
                    Sgemm.RunPackedB(ta, m, n, k, 0.75f, pa, lda, new StoredB(pb, ldb, tb), beta, pg, n, threads);
                }
                Assert.That(got, Is.EqualTo(expect), $"{m}x{n}x{k} ta={ta} tb={tb} beta={beta} threads={threads}");
                var reference = (float[])c0.Clone();
                SgemmReference.Run(ta, tb, m, n, k, 0.75f, a, lda, b, ldb, beta, reference, n);
                Assert.That(got, Is.EqualTo(reference).Within(1e-3f));
            }
        }
        finally { Sgemm.ForcedPath = Sgemm.Path.Auto; CpuThreads.Count = saved; }
    }
}
