using Engine.Cpu;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Cpu;

[NonParallelizable]
public unsafe class SgemmTests
{
    private int _threads;

    [SetUp]
    public void SaveSettings() => _threads = CpuThreads.Count;

    [TearDown]
    public void RestoreSettings()
    {
        CpuThreads.Count = _threads;
        Sgemm.ForcedPath = Sgemm.Path.Auto;
        Sgemm.Mr512 = 12;
    }

    /// <summary>One GEMM problem with its operands stored as the flags say, padded leading dimensions allowed.</summary>
    private sealed class Problem
    {
        public bool TA, TB;
        public int M, N, K, Lda, Ldb, Ldc;
        public float Alpha, Beta;
        public float[] A = [], B = [], C0 = [];

        public static Problem Make(Random rng, bool ta, bool tb, int m, int n, int k, float alpha, float beta, int pad = 0)
        {
            var p = new Problem { TA = ta, TB = tb, M = m, N = n, K = k, Alpha = alpha, Beta = beta };
            p.Lda = (ta ? m : k) + pad;
            p.Ldb = (tb ? k : n) + pad;
            p.Ldc = n + pad;
            p.A = Fill(rng, Math.Max(1, (ta ? k : m) * p.Lda));
            p.B = Fill(rng, Math.Max(1, (tb ? n : k) * p.Ldb));
            p.C0 = Fill(rng, Math.Max(1, m * p.Ldc));
            if (beta == 0) Array.Fill(p.C0, float.NaN); // must never be read
            return p;
        }

        private static float[] Fill(Random rng, int n)
        {
            var x = new float[n];
            for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
            return x;
        }

        public float[] RunFast(int threads)
        {
            var c = (float[])C0.Clone();
            fixed (float* pa = A, pb = B, pc = c)
                Sgemm.Run(TA, TB, M, N, K, Alpha, pa, Lda, pb, Ldb, Beta, pc, Ldc, threads);
            return c;
        }

        public float[] RunReference()
        {
            var c = (float[])C0.Clone();
            SgemmReference.Run(TA, TB, M, N, K, Alpha, A, Lda, B, Ldb, Beta, c, Ldc);
            return c;
        }

        /// <summary>Fails unless every valid element is within float-accumulation error of the reference and padding is untouched.</summary>
        public void Check(float[] got, float[] want, string what)
        {
            // |error| <= ~k·eps·Σ|a·b| scaled by alpha, plus rounding of the beta term; inputs are in [-1, 1] so Σ|a·b| <= k.
            double tol = (K * 1.2e-7 + 1e-6) * (Math.Abs(Alpha) * K + Math.Abs(Beta)) + 1e-6;
            for (int i = 0; i < M; i++)
            {
                for (int j = 0; j < N; j++)
                {
                    float g = got[i * Ldc + j], w = want[i * Ldc + j];
                    if (!(Math.Abs(g - w) <= tol))
                        Assert.Fail($"{what}: {Describe()} C[{i},{j}] = {g}, reference {w}, tol {tol:g3}");
                }
                for (int j = N; j < Ldc; j++)
                    if (BitConverter.SingleToInt32Bits(got[i * Ldc + j]) != BitConverter.SingleToInt32Bits(C0[i * Ldc + j]))
                        Assert.Fail($"{what}: {Describe()} wrote padding C[{i},{j}]");
            }
        }

        public string Describe() => $"m={M} n={N} k={K} transA={TA} transB={TB} lda={Lda} ldb={Ldb} ldc={Ldc} alpha={Alpha} beta={Beta}";
    }

    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (1, 1, 7), (2, 3, 4), (1, 37, 5), (29, 1, 9), (12, 32, 16), (14, 32, 16), (13, 31, 17),
        (6, 16, 8), (7, 17, 33), (5, 8, 3), (24, 64, 100), (25, 65, 385), (15, 48, 31), (40, 20, 12), (3, 100, 2),
        (100, 3, 64), (37, 49, 400), (64, 64, 64), (65, 97, 769), (1, 70, 1000), (12, 64, 800), (3, 200, 900), (14, 33, 500),
        (1, 2000, 300), (300, 1, 2000), (1, 1, 1000), (1, 300, 37), (2, 50, 60),
        (9, 100, 1), (17, 33, 1),   // outer products
    ];

    private static IEnumerable<Sgemm.Path> Paths()
    {
        yield return Sgemm.Path.Scalar;
        if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported) yield return Sgemm.Path.Avx2;
        if (System.Runtime.Intrinsics.X86.Avx512F.IsSupported) yield return Sgemm.Path.Avx512;
    }

    [Test]
    public void MatchesReferenceOnOddShapesForEveryPathAndTransposeCombo()
    {
        var rng = new Random(1);
        foreach (var path in Paths())
        {
            Sgemm.ForcedPath = path;
            foreach (var (m, n, k) in Shapes)
                for (int combo = 0; combo < 4; combo++)
                {
                    var p = Problem.Make(rng, (combo & 1) != 0, (combo & 2) != 0, m, n, k, 1f, 0f);
                    var want = p.RunReference();
                    foreach (int threads in new[] { 1, 2 })
                        p.Check(p.RunFast(threads), want, $"{path} threads={threads}");
                }
        }
    }

    [Test]
    public void Mr14TileMatchesReference()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) Assert.Ignore("needs AVX-512");
        Sgemm.Mr512 = 14;
        var rng = new Random(2);
        foreach (var (m, n, k) in Shapes)
            for (int combo = 0; combo < 4; combo++)
            {
                var p = Problem.Make(rng, (combo & 1) != 0, (combo & 2) != 0, m, n, k, 0.5f, 1f, pad: 3);
                var want = p.RunReference();
                p.Check(p.RunFast(1), want, "mr=14");
                p.Check(p.RunFast(2), want, "mr=14 threads=2");
            }
    }

    [Test]
    public void AlphaBetaAndPaddedLeadingDimensions()
    {
        var rng = new Random(3);
        (float alpha, float beta)[] scalars = [(1, 0), (2.5f, 0), (1, 1), (-0.5f, 0.75f), (0, 2), (0, 0), (1.5f, -1)];
        foreach (var path in Paths())
        {
            Sgemm.ForcedPath = path;
            foreach (var (alpha, beta) in scalars)
                foreach (var (m, n, k) in new[] { (1, 1, 1), (13, 35, 20), (30, 70, 45), (14, 16, 9), (1, 40, 33), (33, 1, 40), (3, 40, 33), (7, 37, 1), (40, 3, 9) })
                    for (int combo = 0; combo < 4; combo++)
                    {
                        var p = Problem.Make(rng, (combo & 1) != 0, (combo & 2) != 0, m, n, k, alpha, beta, pad: 5);
                        var want = p.RunReference();
                        p.Check(p.RunFast(1), want, $"{path}");
                        p.Check(p.RunFast(2), want, $"{path} threads=2");
                    }
        }
    }

    [Test]
    public void ZeroInnerDimensionScalesC()
    {
        var rng = new Random(4);
        foreach (var (alpha, beta) in new[] { (1f, 0f), (1f, 1f), (2f, 0.5f) })
        {
            var p = Problem.Make(rng, false, false, 7, 9, 0, alpha, beta, pad: 2);
            p.Check(p.RunFast(1), p.RunReference(), "k=0");
        }
    }

    [Test]
    public void FewRowsTimesTransposedBAreRowDotsThatDoNotDependOnTheThreads()
    {
        // C = A·Bᵀ with at most GemmDots.MaxM rows: the dot-product path (edge blocks in both operands, k tails of 1
        // to 15 floats, k cut into two or three slices whose sums go into C one after another, padded leading
        // dimensions, every alpha/beta formula), checked against the reference and
        // across thread counts bit for bit; the last shapes sit just outside the path.
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported) Assert.Ignore("needs AVX-512");
        var rng = new Random(6);
        (float alpha, float beta)[] scalars = [(1, 0), (-0.5f, 0.75f), (1, 1), (2, -1)];
        foreach (var (m, n, k) in new[] { (32, 100, 1568), (2, 2, 64), (4, 5, 80), (7, 11, 143), (64, 23, 97), (33, 101, 1000), (5, 9, 1807), (65, 40, 200), (8, 40, 63) })
            for (int s = 0; s < scalars.Length; s++)
            {
                var p = Problem.Make(rng, false, true, m, n, k, scalars[s].alpha, scalars[s].beta, pad: s);
                Assert.That(GemmDots.Applies(true, p.TA, p.TB, m, n, k), Is.EqualTo(m <= GemmDots.MaxM && k >= GemmDots.MinK), p.Describe());
                var one = p.RunFast(1);
                p.Check(one, p.RunReference(), "dots");
                Assert.That(p.RunFast(2), Is.EqualTo(one), $"threads=2 differs from threads=1 bitwise: {p.Describe()}");
            }
    }

    [Test]
    public void LargeProblemCrossesEveryBlockBoundaryAndIsThreadCountInvariant()
    {
        // 300×520×700 spans two k-blocks, two column blocks, row and column tails; 1200 rows spans two row blocks;
        // the m = 1 and n = 1 shapes are large enough for the matrix-vector path to split over threads.
        var rng = new Random(5);
        foreach (var (m, n, k, combos) in new[] { (300, 520, 700, 4), (1200, 40, 50, 2), (1, 3000, 500, 4), (2000, 1, 300, 4) })
            for (int combo = 0; combo < combos; combo++)
            {
                var p = Problem.Make(rng, (combo & 1) != 0, (combo & 2) != 0, m, n, k, 0.75f, combo == 3 ? 0.5f : 0f, pad: combo);
                var one = p.RunFast(1);
                p.Check(one, p.RunReference(), "large");
                var two = p.RunFast(2);
                Assert.That(two, Is.EqualTo(one), $"threads=2 differs from threads=1 bitwise: {p.Describe()}");
            }
    }

    [Test]
    public void PublicRunUsesCpuThreadsAndRejectsBadArguments()
    {
        var rng = new Random(6);
        var p = Problem.Make(rng, false, true, 70, 90, 80, 1, 0);
        var want = p.RunReference();
        foreach (int t in new[] { 1, 2 })
        {
            CpuThreads.Count = t;
            var c = (float[])p.C0.Clone();
            fixed (float* pa = p.A, pb = p.B, pc = c)
                Sgemm.Run(false, true, 70, 90, 80, 1, pa, p.Lda, pb, p.Ldb, 0, pc, p.Ldc);
            p.Check(c, want, $"public Run, CpuThreads.Count={t}");
        }
        float* x = stackalloc float[1];
        var ex = Assert.Throws<ArgumentException>(() => Sgemm.Run(false, false, 2, 3, 4, 1, x, 3, x, 3, 0, x, 3));
        Assert.That(ex!.Message, Does.Contain("lda=3"));
        Assert.Throws<ArgumentException>(() => Sgemm.Run(false, false, -1, 3, 4, 1, x, 4, x, 3, 0, x, 3));
    }

    [Test]
    public void BatchedKernelGemmBroadcastsAStrideZeroOperand()
    {
        var rng = new Random(7);
        // Small batches exercise the parallel-over-batch path, the larger ones the per-GEMM split.
        foreach (var (batch, m, n, k, ta, tb) in new[] { (5, 7, 9, 11, false, false), (3, 33, 40, 70, true, false), (4, 20, 50, 30, false, true), (3, 70, 80, 90, true, true), (3, 170, 180, 190, false, false) })
            foreach (int threads in new[] { 1, 2 })
            {
                CpuThreads.Count = threads;
                int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
                int sa = m * k, sc = m * n;
                float[] a = Pinned(rng, batch * sa), b = Pinned(rng, k * n), c = Pinned(rng, batch * sc);
                Array.Fill(c, float.NaN);
                CpuKernels.Instance.Gemm(ta, tb, batch, m, n, k, 1f, Buf(a), lda, sa, Buf(b), ldb, 0, 0f, Buf(c), ldc, sc);
                for (int bi = 0; bi < batch; bi++)
                {
                    var want = new float[sc];
                    SgemmReference.Run(ta, tb, m, n, k, 1f, a.AsSpan(bi * sa, sa), lda, b, ldb, 0f, want, ldc);
                    var slice = new Problem { TA = ta, TB = tb, M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc, Alpha = 1, C0 = want };
                    slice.Check(c.AsSpan(bi * sc, sc).ToArray(), want, $"batch {bi}/{batch} threads={threads}");
                }
            }
    }

    private static float[] Pinned(Random rng, int n)
    {
        var x = GC.AllocateUninitializedArray<float>(n, pinned: true);
        for (int i = 0; i < n; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        return x;
    }

    private static Buf Buf(float[] pinned) => new(new CpuStorage(pinned), 0);
}
