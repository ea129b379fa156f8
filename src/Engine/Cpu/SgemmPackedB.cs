namespace Engine.Cpu;

/// <summary>
/// Produces op(B) directly in the packed panel layout of <see cref="GemmPack.PackB"/>, for a B that is never stored as
/// a matrix (e.g. the im2col matrix of a convolution, built panel by panel from the image). Must be safe to call from
/// several threads at once (it only reads its inputs).
/// </summary>
internal unsafe interface IGemmPackB
{
    /// <summary>
    /// Writes k-range [p0, p0+kc) × columns [j0, j0+nc) of op(B) as column panels of width nr (the last one
    /// <see cref="GemmPack.PanelWidth"/> wide, zero past the valid columns) at dst: panel t at dst + t*nr*kc, element
    /// (p, lane) at p*width + lane. May store up to <see cref="GemmPack.Slack"/> floats past the last panel.
    /// </summary>
    void Pack(int p0, int kc, int j0, int nc, int nr, bool avx512, float* dst);
}

public static unsafe partial class Sgemm
{
    /// <summary>Whether <see cref="RunPackedB"/> can run here (it needs a vector path).</summary>
    internal static bool PackedBSupported => ActivePath != Path.Scalar;

    /// <summary>
    /// C = alpha * op(A) * B + beta * C with B supplied panel by panel by <paramref name="packer"/>: the same loop nest,
    /// blocking and micro-kernels as <see cref="Run(bool, bool, int, int, int, float, float*, int, float*, int, float, float*, int, int)"/>,
    /// so each element gets exactly the arithmetic it would get from Run on the materialised B. Splits the columns over
    /// up to <paramref name="threads"/> threads.
    /// </summary>
    internal static void RunPackedB<TB>(bool transA, int m, int n, int k, float alpha, float* a, int lda, TB packer,
                                        float beta, float* c, int ldc, int threads) where TB : struct, IGemmPackB
    {
        if (!PackedBSupported) throw new InvalidOperationException("Sgemm.RunPackedB needs the AVX2 or AVX-512 path.");
        if (m < 0 || n < 0 || k < 0 || lda < Math.Max(1, transA ? m : k) || ldc < Math.Max(1, n))
            throw new ArgumentException($"Sgemm.RunPackedB: bad sizes m={m}, n={n}, k={k}, lda={lda}, ldc={ldc}.");
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0) { ScaleC(m, n, beta, c, ldc); return; }
        bool avx512 = ActivePath == Path.Avx512;
        int mr = avx512 ? Mr512 : 6, nr = avx512 ? 32 : 16;
        if (2.0 * m * n * k < SerialFlops) threads = 1;
        int nPanels = (n + nr - 1) / nr;
        int per = (nPanels + Math.Max(1, threads) - 1) / Math.Max(1, threads);
        int parts = threads <= 1 ? 1 : (nPanels + per - 1) / per;
        if (parts <= 1)
        {
            var ws = GemmWorkspace.Rent();
            try { BlockPackedB(avx512, mr, nr, transA, m, 0, n, k, alpha, a, lda, packer, beta, c, ldc, ws); }
            finally { GemmWorkspace.Return(ws); }
            return;
        }
        int step = per * nr;
        CpuThreads.ForEach(parts, t =>
        {
            int s = t * step;
            var ws = GemmWorkspace.Rent();
            try { BlockPackedB(avx512, mr, nr, transA, m, s, Math.Min(step, n - s), k, alpha, a, lda, packer, beta, c + s, ldc, ws); }
            finally { GemmWorkspace.Return(ws); }
        });
    }

    /// <summary>One thread's share (columns [j0, j0+n) of B, written at c) of <see cref="RunPackedB"/>.</summary>
    private static void BlockPackedB<TB>(bool avx512, int mr, int nr, bool transA, int m, int j0, int n, int k, float alpha,
                                         float* a, int lda, TB packer, float beta, float* c, int ldc, GemmWorkspace ws)
        where TB : struct, IGemmPackB
    {
        int kcStep = BlockStep(k, KC, 16), mcStep = BlockStep(m, MC, mr), ncStep = BlockStep(n, NC, nr);
        for (int ic = 0; ic < m; ic += mcStep)
        {
            int mc = Math.Min(mcStep, m - ic);
            for (int pc = 0; pc < k; pc += kcStep)
            {
                int kc = Math.Min(kcStep, k - pc);
                GemmPack.PackA(transA, a, lda, ic, mc, pc, kc, mr, ws.A, avx512);
                float betaK = pc == 0 ? beta : 1f;
                for (int jc = 0; jc < n; jc += ncStep)
                {
                    int nc = Math.Min(ncStep, n - jc);
                    packer.Pack(pc, kc, j0 + jc, nc, nr, avx512, ws.B);
                    Macro(avx512, mr, nr, mc, nc, kc, ws.A, ws.B, c + (long)ic * ldc + jc, ldc, alpha, betaK);
                }
            }
        }
    }
}
