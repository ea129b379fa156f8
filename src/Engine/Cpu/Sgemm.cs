using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// Single-precision GEMM for the CPU path (row-major), structured after BLIS ("Anatomy of high-performance matrix
/// multiplication"): op(B) is packed into column panels per (k-block, column block) so a block sits in L2, op(A) into
/// row panels per (row block, k-block), and a register-tiled micro-kernel (AVX-512 12×32, AVX2 6×16) sweeps them;
/// m or n = 1 takes a streaming matrix-vector path. Work is split over threads by whole panels of C, so every element is computed by the same instruction
/// sequence whatever the thread count: results are bitwise reproducible across thread counts.
/// </summary>
public static unsafe partial class Sgemm
{
    /// <summary>k-block: a 12×KC A panel (18 KB) stays in the 48 KB L1D while B panels stream past it.</summary>
    internal const int KC = 384;
    /// <summary>Column block of B: KC×NC floats (768 KB) stay in the 1 MB L2.</summary>
    internal const int NC = 512;
    /// <summary>Row block of A (packed once per k-block; L3-resident).</summary>
    internal const int MC = 1152;
    /// <summary>Largest micro-tile row count of any path.</summary>
    internal const int MaxMR = 14;

    /// <summary>
    /// Up to this many row panels (and B not transposed), B is read in place instead of packed: each of its elements
    /// feeds only this many micro-tiles, so a packed copy costs more than it saves (e.g. a 32-row batch times a
    /// layer's weight, where packing the weight on every call was a fifth of the GEMM).
    /// </summary>
    internal const int FewPanels = 4;
    /// <summary>Below this many flops (2·m·n·k, about 9 µs of one core) a GEMM stays on the calling thread: waking a pool thread costs a few µs.</summary>
    internal const double SerialFlops = 2.0 * 96 * 96 * 96;

    /// <summary>Implementations; tests pin one through <see cref="ForcedPath"/> to check each on one machine.</summary>
    internal enum Path { Auto, Scalar, Avx2, Avx512 }

    /// <summary>When not <see cref="Path.Auto"/>, the implementation to use (must be supported by the CPU).</summary>
    internal static Path ForcedPath = Path.Auto;

    /// <summary>
    /// Rows of the AVX-512 micro-tile (the kernel supports up to 14). 12 and 14 run at the same speed on large
    /// problems; 12 wastes less on the row tails of common sizes (128 = 10·12 + 8, versus 9·14 + 2).
    /// </summary>
    internal static int Mr512 = 12;

    /// <summary>The implementation the next call will use.</summary>
    internal static Path ActivePath =>
        ForcedPath != Path.Auto ? ForcedPath
        : Avx512F.IsSupported ? Path.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? Path.Avx2
        : Path.Scalar;

    // Tile kernels indexed [(full width ? MaxMR + 1 : 0) + rows], rows 1..MR; half-width (tail) kernels first.
    private static readonly delegate*<int, float*, float*, nint, float*, nint, float, float, void>[] Tiles512 =
    [
        null, &GemmKernel512.Tile<G1, G16>, &GemmKernel512.Tile<G2, G16>, &GemmKernel512.Tile<G3, G16>,
        &GemmKernel512.Tile<G4, G16>, &GemmKernel512.Tile<G5, G16>, &GemmKernel512.Tile<G6, G16>, &GemmKernel512.Tile<G7, G16>,
        &GemmKernel512.Tile<G8, G16>, &GemmKernel512.Tile<G9, G16>, &GemmKernel512.Tile<G10, G16>, &GemmKernel512.Tile<G11, G16>,
        &GemmKernel512.Tile<G12, G16>, &GemmKernel512.Tile<G13, G16>, &GemmKernel512.Tile<G14, G16>,
        null, &GemmKernel512.Tile<G1, G32>, &GemmKernel512.Tile<G2, G32>, &GemmKernel512.Tile<G3, G32>,
        &GemmKernel512.Tile<G4, G32>, &GemmKernel512.Tile<G5, G32>, &GemmKernel512.Tile<G6, G32>, &GemmKernel512.Tile<G7, G32>,
        &GemmKernel512.Tile<G8, G32>, &GemmKernel512.Tile<G9, G32>, &GemmKernel512.Tile<G10, G32>, &GemmKernel512.Tile<G11, G32>,
        &GemmKernel512.Tile<G12, G32>, &GemmKernel512.Tile<G13, G32>, &GemmKernel512.Tile<G14, G32>,
    ];
    private static readonly delegate*<int, float*, float*, nint, float*, nint, float, float, void>[] Tiles256 =
    [
        null, &GemmKernel256.Tile<G1, G8>, &GemmKernel256.Tile<G2, G8>, &GemmKernel256.Tile<G3, G8>,
        &GemmKernel256.Tile<G4, G8>, &GemmKernel256.Tile<G5, G8>, &GemmKernel256.Tile<G6, G8>, null,
        null, null, null, null,
        null, null, null,
        null, &GemmKernel256.Tile<G1, G16>, &GemmKernel256.Tile<G2, G16>, &GemmKernel256.Tile<G3, G16>,
        &GemmKernel256.Tile<G4, G16>, &GemmKernel256.Tile<G5, G16>, &GemmKernel256.Tile<G6, G16>, null,
        null, null, null, null,
        null, null, null,
    ];

    /// <summary>
    /// C = alpha * op(A) * op(B) + beta * C, row-major; op(A) is m×k (A stored k×m when transA), op(B) is k×n
    /// (B stored n×k when transB). C is not read when beta is 0. Uses up to <see cref="CpuThreads.Count"/> threads.
    /// </summary>
    public static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
                           float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
        => Run(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, CpuThreads.Count);

    /// <summary>As the public overload, with an explicit thread budget (1 = stay on the calling thread).</summary>
    internal static void Run(bool transA, bool transB, int m, int n, int k, float alpha,
                             float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, int threads)
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0)
        {
            ScaleC(m, n, beta, c, ldc);
            return;
        }
        Path path = ActivePath;
        if (path == Path.Scalar)
        {
            RunScalar(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
            return;
        }
        bool avx512 = path == Path.Avx512;
        int mr = avx512 ? Mr512 : 6, nr = avx512 ? 32 : 16;
        if (2.0 * m * n * k < SerialFlops) threads = 1;
        if ((m == 1 || n == 1) && GemmGemv.TryRun(avx512, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads))
            return;
        if (k == 1)
        {
            Outer(avx512, m, n, alpha, a, transA ? 1 : lda, b, transB ? ldb : 1, beta, c, ldc);
            return;
        }
        if (GemmDots.Applies(avx512, transA, transB, m, n, k))
        {
            GemmDots.Run(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
            return;
        }

        int mPanels = (m + mr - 1) / mr, nPanels = (n + nr - 1) / nr;
        // Split the dimension whose panels divide more evenly over the threads; columns on a tie (each thread then
        // packs all of A but only its share of B, which is the larger operand for the common wide-output shapes).
        bool splitN = Balance(nPanels, threads) >= Balance(mPanels, threads);
        int panels = splitN ? nPanels : mPanels;
        int per = (panels + Math.Max(1, threads) - 1) / Math.Max(1, threads);
        int parts = threads <= 1 ? 1 : (panels + per - 1) / per;
        if (parts <= 1)
        {
            var ws = GemmWorkspace.Rent();
            try { Block(avx512, mr, nr, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, ws); }
            finally { GemmWorkspace.Return(ws); }
            return;
        }
        int step = per * (splitN ? nr : mr);
        CpuThreads.ForEach(parts, t =>
        {
            int s = t * step;
            var ws = GemmWorkspace.Rent();
            try
            {
                if (splitN)
                {
                    int cols = Math.Min(step, n - s);
                    float* bs = transB ? b + (long)s * ldb : b + s;
                    Block(avx512, mr, nr, transA, transB, m, cols, k, alpha, a, lda, bs, ldb, beta, c + s, ldc, ws);
                }
                else
                {
                    int rows = Math.Min(step, m - s);
                    float* As = transA ? a + s : a + (long)s * lda;
                    Block(avx512, mr, nr, transA, transB, rows, n, k, alpha, As, lda, b, ldb, beta, c + (long)s * ldc, ldc, ws);
                }
            }
            finally { GemmWorkspace.Return(ws); }
        });
    }

    /// <summary>Fraction of thread time doing work when `panels` equal panels are dealt out in contiguous chunks.</summary>
    private static double Balance(int panels, int threads)
    {
        if (threads <= 1) return 1;
        int per = (panels + threads - 1) / threads;
        return panels / (double)(per * threads);
    }

    /// <summary>Evenly sized block step: ceil(total / blocks) rounded up to `unit`, with blocks = ceil(total / max).</summary>
    private static int BlockStep(int total, int max, int unit)
    {
        int blocks = (total + max - 1) / max;
        int step = (total + blocks - 1) / blocks;
        return (step + unit - 1) / unit * unit;
    }

    /// <summary>
    /// k = 1: C = alpha·a·bᵀ + beta·C, an outer product (a[i] at a[i·sa], b[j] at b[j·sb]). Each product rounded once
    /// and written with the micro-kernels' formulas, as the packed path computes it, without its packing and dispatch
    /// (which cost ~50× the multiplies for the few-hundred-element outer products of batched bound computations).
    /// </summary>
    private static void Outer(bool avx512, int m, int n, float alpha, float* a, int sa, float* b, int sb, float beta, float* c, int ldc)
    {
        for (int i = 0; i < m; i++)
        {
            float ai = a[(long)i * sa];
            float* ci = c + (long)i * ldc;
            int j = 0;
            if (avx512 && sb == 1)
                for (var vi = Vector512.Create(ai); j + 16 <= n; j += 16) GemmGemv.Put16(ci + j, vi * Vector512.Load(b + j), alpha, beta);
            for (; j < n; j++) GemmGemv.Put(ci + j, ai * b[(long)j * sb], alpha, beta);
        }
    }

    /// <summary>One thread's whole GEMM on its share of C: the BLIS loop nest around the packed panels.</summary>
    private static void Block(bool avx512, int mr, int nr, bool transA, bool transB, int m, int n, int k, float alpha,
                              float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, GemmWorkspace ws)
    {
        // kc depends on k alone, never on the thread split, so the summation order of every element is fixed.
        if (m >= 2 && m <= FewPanels * mr && !transB)
        {
            SinglePanel(avx512, mr, nr, transA, m, n, k, BlockStep(k, KC, 16), alpha, a, lda, b, ldb, beta, c, ldc, ws);
            return;
        }
        BlockPackedB(avx512, mr, nr, transA, m, 0, n, k, alpha, a, lda, new StridedPackB(b, ldb, transB), beta, c, ldc, ws);
    }

    /// <summary>The ordinary B operand: a row-major (or, when transposed, column-major) matrix packed by <see cref="GemmPack.PackB"/>.</summary>
    private readonly struct StridedPackB(float* b, int ldb, bool transB) : IGemmPackB
    {
        public void Pack(int p0, int kc, int j0, int nc, int nr, bool avx512, float* dst)
            => GemmPack.PackB(transB, b, ldb, p0, kc, j0, nc, nr, dst, avx512);
    }

    /// <summary>
    /// A GEMM with a few row panels (2 ≤ m ≤ FewPanels·MR) and row-major B: each B element is used by a few micro-tiles
    /// only, so packing B would cost more than it saves; the kernel reads full column panels of B in place (same
    /// arithmetic).
    /// (m = 1 goes to <see cref="GemmGemv"/>, which streams B row by row.)
    /// </summary>
    [SkipLocalsInit]   // tmp is written by a beta-0 tile before it is read
    private static void SinglePanel(bool avx512, int mr, int nr, bool transA, int m, int n, int k, int kcStep, float alpha,
                                    float* a, int lda, float* b, int ldb, float beta, float* c, int ldc, GemmWorkspace ws)
    {
        var tiles = avx512 ? Tiles512 : Tiles256;
        float* tmp = stackalloc float[MaxMR * 32];
        for (int pc = 0; pc < k; pc += kcStep)
        {
            int kc = Math.Min(kcStep, k - pc);
            for (int ir = 0; ir < m; ir += mr)
                GemmPack.PackA(transA, a, lda, ir, Math.Min(mr, m - ir), pc, kc, Math.Min(mr, m - ir), ws.A + (long)ir * kc, avx512);
            float betaK = pc == 0 ? beta : 1f;
            int full = n / nr * nr;
            // Each column panel of B, read in place, passes under every row panel while it is in cache.
            for (int jr = 0; jr < full; jr += nr)
                for (int ir = 0; ir < m; ir += mr)
                {
                    int rows = Math.Min(mr, m - ir);
                    tiles[MaxMR + 1 + rows](kc, ws.A + (long)ir * kc, b + (long)pc * ldb + jr, ldb, c + (long)ir * ldc + jr, ldc, alpha, betaK);
                }
            if (full < n)
            {
                int cols = n - full, w = GemmPack.PanelWidth(cols, nr);
                GemmPack.PackB(false, b, ldb, pc, kc, full, cols, nr, ws.B, avx512);
                for (int ir = 0; ir < m; ir += mr)
                {
                    int rows = Math.Min(mr, m - ir);
                    tiles[(w == nr ? MaxMR + 1 : 0) + rows](kc, ws.A + (long)ir * kc, ws.B, w, tmp, w, 1f, 0f);
                    MergeEdge(tmp, w, c + (long)ir * ldc + full, ldc, rows, cols, alpha, betaK);
                }
            }
        }
    }

    /// <summary>All micro-tiles of one packed (mc×kc) A block times one packed (kc×nc) B block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization), SkipLocalsInit]   // tmp: as in SinglePanel
    private static void Macro(bool avx512, int mr, int nr, int mc, int nc, int kc, float* pa, float* pb,
                              float* c, int ldc, float alpha, float beta)
    {
        var tiles = avx512 ? Tiles512 : Tiles256;
        float* tmp = stackalloc float[MaxMR * 32];
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* ap = pa + (long)ir * kc;
            float* crow = c + (long)ir * ldc;
            for (int jr = 0; jr < nc; jr += nr)
            {
                int cols = Math.Min(nr, nc - jr);
                int w = GemmPack.PanelWidth(cols, nr);
                var tile = tiles[(w == nr ? MaxMR + 1 : 0) + rows];
                float* bp = pb + (long)jr * kc;
                if (cols == w)
                    tile(kc, ap, bp, w, crow + jr, ldc, alpha, beta);
                else
                {
                    tile(kc, ap, bp, w, tmp, w, 1f, 0f);
                    MergeEdge(tmp, w, crow + jr, ldc, rows, cols, alpha, beta);
                }
            }
        }
    }

    /// <summary>Writes the valid part of an edge tile with the micro-kernels' exact formulas (see GemmKernel512.Put).</summary>
    private static void MergeEdge(float* tmp, int tw, float* c, int ldc, int rows, int cols, float alpha, float beta)
    {
        for (int r = 0; r < rows; r++)
        {
            float* t = tmp + r * tw;
            float* cr = c + (long)r * ldc;
            for (int j = 0; j < cols; j++)
                cr[j] = beta == 0 ? t[j] * alpha
                    : beta == 1 ? MathF.FusedMultiplyAdd(alpha, t[j], cr[j])
                    : MathF.FusedMultiplyAdd(alpha, t[j], cr[j] * beta);
        }
    }

    /// <summary>C = beta * C (zero when beta is 0, without reading C): the whole GEMM when k or alpha is 0.</summary>
    private static void ScaleC(int m, int n, float beta, float* c, int ldc)
    {
        if (beta == 1) return;
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (long)i * ldc, n);
            if (beta == 0) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }

    /// <summary>Portable fallback for CPUs without AVX2+FMA: i-p-j order, rows of B and C streaming.</summary>
    private static void RunScalar(bool transA, bool transB, int m, int n, int k, float alpha,
                                  float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
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

    /// <summary>Rejects negative sizes and leading dimensions too small for the stored matrices.</summary>
    private static void Validate(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"Sgemm: negative size m={m}, n={n}, k={k}.");
        int minA = Math.Max(1, transA ? m : k), minB = Math.Max(1, transB ? k : n), minC = Math.Max(1, n);
        if (lda < minA || ldb < minB || ldc < minC)
            throw new ArgumentException(
                $"Sgemm: leading dimension too small (lda={lda} needs >= {minA}, ldb={ldb} needs >= {minB}, ldc={ldc} needs >= {minC}) " +
                $"for m={m}, n={n}, k={k}, transA={transA}, transB={transB}.");
    }
}
