using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Cpu;

namespace Engine.Bounds;

/// <summary>
/// Batched IBP of affine layers in lane layout (taken above <see cref="SmallBatch"/> examples): a batched value is held
/// as [element, lane] with example e in lane e (the batch padded with zero examples to a multiple of 16), so one
/// vector holds one element of 16 examples. A Linear layer, or a convolution read as a map from its taps, is then a
/// register-blocked product (<see cref="ChainLaneKernel"/>): each weight is broadcast once and multiplied into a
/// block of rows × 32 lanes of accumulators, each input vector serves every row of the block, and the weights are read
/// in place (no packing, |W| formed in registers). <see cref="LanePair"/> forms the centre W·c and radius |W|·r' in one
/// pass and finishes them in registers (<see cref="LaneEpilogue"/>): bias and rounding margin, lo/hi, the activation
/// that follows, and, when the next layer is affine too, that layer's box-rule centre and widened radius, written
/// straight into its input (a convolution's zero-padded planes). For IBP alone values stay in lanes from layer to layer
/// (<see cref="PlanLanes"/>); CROWN's intermediate bounds and the output go back to [batch, n] rows.
/// <para>
/// Rounding. An output is the float sum, in tap order from zero, of at most <see cref="LaneChunk"/> products (a fused
/// multiply-add each: one rounding per term); longer rows are cut into chunks whose float sums are added in float
/// when no term then meets more than <see cref="LaneChunk"/> roundings in all (chunk length + chunks − 1 ≤ 128, rows
/// up to about 4000 taps), else in double and rounded to float once. The error is therefore at most γ₁₂₈ + u (about
/// 129 units of roundoff) times the sum of the terms' magnitudes, inside the ρ·Σ|terms| margin the IBP rule charges
/// (ρ = 1e-5 by default, about 168 units), with room left for the few roundings of the epilogue: the same guarantee as
/// the per-example kernels, whose sums are at most a convolution's taps or 16 float terms per lane. Padding lanes
/// hold zero examples and are never written back.
/// </para>
/// </summary>
internal static unsafe partial class ChainBounds
{
    /// <summary>Most roundings any term of a lane product meets: its chunk's sum, then one per later chunk when chunk totals stay in float.</summary>
    internal const int LaneChunk = 128;

    /// <summary>Lanes of a batch: the batch rounded up to a multiple of 16.</summary>
    internal static int LaneCount(int batch) => (batch + 15) & ~15;

    /// <summary>
    /// Hands a chunk's accumulator to its output: 0 stores it (the first or only chunk), 4 adds it to the float total;
    /// 1 starts a double total, 2 adds to it, 3 adds the last chunk and stores the total rounded to float. y and d
    /// address the same element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Emit(Vector512<float> v, float* y, double* d, int emit)
    {
        if (emit == 0) { Vector512.Store(v, y); return; }
        if (emit == 4) { Vector512.Store(Vector512.Load(y) + v, y); return; }
        var lo = Vector512.WidenLower(v); var hi = Vector512.WidenUpper(v);
        if (emit != 1) { lo += Vector512.Load(d); hi += Vector512.Load(d + 8); }
        if (emit == 3) Vector512.Store(Vector512.Narrow(lo, hi), y);
        else { Vector512.Store(lo, d); Vector512.Store(hi, d + 8); }
    }

    /// <summary>
    /// y[(r·pixels + p)·lanes + e] = Σ_t W[r, t]·x[pbase[p] + toff[t] + e] (|W| when <paramref name="abs"/>) for rows
    /// r &lt; m, pixels p &lt; pixels (pbase null: one pixel at 0) and all lanes; W row r at w + r·ldw. d is double scratch
    /// of y's size (used when taps exceed <see cref="LaneChunk"/>). With <paramref name="norms"/> (one pixel), also each
    /// row's Σ|w| (norms[r]) and Σw² (norms[m + r]).
    /// </summary>
    internal static void LaneAffine(float* x, int* toff, int taps, int* pbase, int pixels, float* w, long ldw, int m, bool abs,
                                    int lanes, float* y, double* d, double* norms = null)
    {
        int blocks = (m + 11) / 12;
        bool inFloat = Chunks(taps, out int chunks, out int step);
        int groups = lanes / 16;
        long ldy = (long)pixels * lanes;
        // Items are (pixel, row block) pairs, pixel-major so the blocks of a pixel reuse its inputs from L1; blocks share
        // rows evenly (sizes differ by at most one).
        int items = blocks * pixels;
        double perItem = (double)taps * lanes * m / blocks;
        int minChunk = (int)Math.Max(1, Math.Ceiling(LaneParallelWork / perItem));
        // Per row, lane vectors of Σ|w| and Σw² (moved to double every 8 chunks: at most 64 float terms per lane).
        float[]? nva = norms == null ? null : ScratchPool.Rent(32L * m);
        float* nv = nva == null ? null : ScratchPool.Ptr(nva);
        CpuThreads.For(items, minChunk, (i0, i1) =>
        {
            for (int c = 0; c < chunks; c++)
            {
                int t0 = c * step, t1 = Math.Min(taps, t0 + step);
                int emit = inFloat ? (c == 0 ? 0 : 4) : c == 0 ? 1 : c == chunks - 1 ? 3 : 2;
                for (int it = i0; it < i1; it++)
                {
                    int p = it / blocks, blk = it - p * blocks;
                    int r0 = (int)((long)blk * m / blocks), rows = (int)((long)(blk + 1) * m / blocks) - r0;
                    float* xp = pbase == null ? x : x + pbase[p];
                    long yo = (long)r0 * ldy + (long)p * lanes;
                    for (int g = 0; g < groups; g += 2)
                    {
                        int tg = Math.Min(2, groups - g);
                        var kernel = ChainLaneKernel.Blocks[((abs ? 2 : 0) + tg - 1) * 12 + rows - 1];
                        kernel(xp + g * 16, toff, t0, t1, w + (long)r0 * ldw, ldw, y + yo + g * 16, d + yo + g * 16, ldy, emit);
                    }
                    // The rows' chunk is in L1 now: their norms cost no second pass over W.
                    if (nv != null && p == 0)
                        RowNorms(w + (long)r0 * ldw, ldw, rows, t0, t1, nv + (long)r0 * 32, c % 8 == 0, c % 8 == 7 || c == chunks - 1 ? norms + r0 : null, m, c < 8);
                }
            }
        });
        if (nva != null) ScratchPool.Return(nva);
    }

    /// <summary>
    /// How a row of <paramref name="taps"/> terms is cut into chunks: true when the chunk totals can stay in float, every
    /// term then meeting at most <see cref="LaneChunk"/> roundings (its chunk's, then one per later chunk:
    /// step + chunks − 1 ≤ LaneChunk, rows up to about 4000 taps); false: chunks of LaneChunk totalled in double.
    /// </summary>
    internal static bool Chunks(int taps, out int chunks, out int step)
    {
        chunks = (taps + LaneChunk - 1) / LaneChunk;
        bool inFloat = chunks == 1;
        for (int c = Math.Max(2, chunks); !inFloat && c <= LaneChunk / 2; c++)
            if ((taps + c - 1) / c + c - 1 <= LaneChunk) { chunks = c; inFloat = true; }
        step = (taps + chunks - 1) / chunks;
        return inFloat;
    }

    /// <summary>
    /// What the last chunk of a lane pair (<see cref="LanePair"/>) does with an element's centre and radius sums: adds
    /// the layer's constants (c + AddC, r + AddR: the bias and the rounding margin), forms lo = c − r and hi = c + r,
    /// applies the activation fused after the layer, and stores either (lo, hi) or, when <see cref="Center"/>, the next
    /// layer's box-rule centre and widened radius (as <see cref="BoxToCenterRadius"/>), into OutA / OutB at the
    /// element's lane row (Dst[j], or j·lanes).
    /// </summary>
    internal struct LaneEpilogue
    {
        public float* AddC, AddR, OutA, OutB;
        public int* Dst;
        public int Lanes;
        public bool Act, Center;
        public float Slope, Rho;
    }

    /// <summary>
    /// A pair kernel's sums of one element and 16 lanes: 0 stores them as the first chunk's totals, 4 adds them to the
    /// totals; 5 finishes them through the epilogue, 6 adds the earlier totals first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void EmitPair(Vector512<float> c, Vector512<float> r, float* yc, float* yr, int emit, LaneEpilogue* ep, int j, int lane0)
    {
        if (emit == 0) { Vector512.Store(c, yc); Vector512.Store(r, yr); return; }
        if (emit == 4) { Vector512.Store(Vector512.Load(yc) + c, yc); Vector512.Store(Vector512.Load(yr) + r, yr); return; }
        if (emit == 6) { c = Vector512.Load(yc) + c; r = Vector512.Load(yr) + r; }
        if (ep->AddC != null) c += Vector512.Create(ep->AddC[j]);
        r += Vector512.Create(ep->AddR[j]);
        StoreOut(ep, c - r, c + r, j, lane0);
    }

    /// <summary>The epilogue's activation and store of (lo, hi) for element j, lanes [lane0, lane0 + 16).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StoreOut(LaneEpilogue* ep, Vector512<float> lo, Vector512<float> hi, int j, int lane0)
    {
        if (ep->Act)
        {
            if (ep->Slope == 0) { lo = Vector512.Max(lo, Vector512<float>.Zero); hi = Vector512.Max(hi, Vector512<float>.Zero); }
            else
            {
                var s = Vector512.Create(ep->Slope);
                lo = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(lo, Vector512<float>.Zero), lo, lo * s);
                hi = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(hi, Vector512<float>.Zero), hi, hi * s);
            }
        }
        long at = (ep->Dst != null ? ep->Dst[j] : (long)j * ep->Lanes) + lane0;
        if (!ep->Center) { Vector512.Store(lo, ep->OutA + at); Vector512.Store(hi, ep->OutB + at); return; }
        var half = Vector512.Create(0.5f);
        var cc = (lo + hi) * half;
        Vector512.Store(cc, ep->OutA + at);
        Vector512.Store((hi - lo) * half * Vector512.Create(1 + ep->Rho) + Vector512.Abs(cc) * Vector512.Create(ep->Rho), ep->OutB + at);
    }

    /// <summary>
    /// Centre and radius of an affine map in one pass (<see cref="ChainLaneKernel.Pair{TM, TG}"/>): W·xc and |W|·xr
    /// over the taps as <see cref="LaneAffine"/> forms each (same sums, same order), finished by the epilogue, or, when
    /// ep is null, left in yc / yr ([(r·pixels + p)·lanes + e]). False, and nothing done, when the rows need double
    /// chunk totals (<see cref="Chunks"/>): the caller takes two <see cref="LaneAffine"/> products then.
    /// </summary>
    internal static bool LanePair(float* xc, float* xr, int* toff, int taps, int* pbase, int pixels, float* w, long ldw, int m,
                                  int lanes, float* yc, float* yr, LaneEpilogue* ep)
    {
        if (!Chunks(taps, out int chunks, out int step)) return false;
        int blocks = (m + 5) / 6, groups = lanes / 16, items = blocks * pixels;
        long ldy = (long)pixels * lanes;
        double perItem = 2.0 * taps * lanes * m / blocks;
        int minChunk = (int)Math.Max(1, Math.Ceiling(LaneParallelWork / perItem));
        CpuThreads.For(items, minChunk, (i0, i1) =>
        {
            for (int c = 0; c < chunks; c++)
            {
                int t0 = c * step, t1 = Math.Min(taps, t0 + step);
                bool last = c == chunks - 1;
                int emit = last && ep != null ? (c == 0 ? 5 : 6) : c == 0 ? 0 : 4;
                for (int it = i0; it < i1; it++)
                {
                    int p = it / blocks, blk = it - p * blocks;
                    int r0 = (int)((long)blk * m / blocks), rows = (int)((long)(blk + 1) * m / blocks) - r0;
                    long xo = pbase == null ? 0 : pbase[p], yo = (long)r0 * ldy + (long)p * lanes;
                    for (int g = 0; g < groups; g += 2)
                    {
                        int tg = Math.Min(2, groups - g);
                        ChainLaneKernel.Pairs[(tg - 1) * 6 + rows - 1](xc + xo + g * 16, xr + xo + g * 16, toff, t0, t1, w + (long)r0 * ldw, ldw,
                            yc + yo + g * 16, yr + yo + g * 16, ldy, emit, ep, r0 * pixels + p, pixels, g * 16);
                    }
                }
            }
        });
        return true;
    }

    /// <summary>
    /// Adds Σ|w| and Σw² over columns [t0, t1) of rows r &lt; rows (stride ldw) into their lane vectors nv[32r..] and
    /// nv[32r + 16..] (restarted when <paramref name="start"/>); with <paramref name="flush"/>, moves the lane sums into
    /// flush[r] (Σ|w|) and flush[m + r] (Σw²), in double (set when <paramref name="set"/>, else added).
    /// </summary>
    private static void RowNorms(float* w, long ldw, int rows, int t0, int t1, float* nv, bool start, double* flush, int m, bool set)
    {
        // Four rows at a time: eight independent sums keep the adds from waiting on each other.
        for (int r0 = 0; r0 < rows; r0 += 4)
        {
            int nr = Math.Min(4, rows - r0);
            float* w0 = w + r0 * ldw, w1 = nr > 1 ? w0 + ldw : w0, w2 = nr > 2 ? w0 + 2 * ldw : w0, w3 = nr > 3 ? w0 + 3 * ldw : w0;
            float* v0 = nv + r0 * 32;
            var z = Vector512<float>.Zero;
            Vector512<float> a0 = z, a1 = z, a2 = z, a3 = z, q0 = z, q1 = z, q2 = z, q3 = z;
            if (!start)
            {
                a0 = Vector512.Load(v0); q0 = Vector512.Load(v0 + 16);
                if (nr > 1) { a1 = Vector512.Load(v0 + 32); q1 = Vector512.Load(v0 + 48); }
                if (nr > 2) { a2 = Vector512.Load(v0 + 64); q2 = Vector512.Load(v0 + 80); }
                if (nr > 3) { a3 = Vector512.Load(v0 + 96); q3 = Vector512.Load(v0 + 112); }
            }
            int t = t0;
            for (; t + 16 <= t1; t += 16)
            {
                var x0 = Vector512.Load(w0 + t); var x1 = Vector512.Load(w1 + t); var x2 = Vector512.Load(w2 + t); var x3 = Vector512.Load(w3 + t);
                a0 += Vector512.Abs(x0); q0 = Vector512.FusedMultiplyAdd(x0, x0, q0);
                a1 += Vector512.Abs(x1); q1 = Vector512.FusedMultiplyAdd(x1, x1, q1);
                a2 += Vector512.Abs(x2); q2 = Vector512.FusedMultiplyAdd(x2, x2, q2);
                a3 += Vector512.Abs(x3); q3 = Vector512.FusedMultiplyAdd(x3, x3, q3);
            }
            if (t < t1)
            {
                int n = t1 - t;
                var x0 = Load(w0 + t, n); var x1 = Load(w1 + t, n); var x2 = Load(w2 + t, n); var x3 = Load(w3 + t, n);
                a0 += Vector512.Abs(x0); q0 = Vector512.FusedMultiplyAdd(x0, x0, q0);
                a1 += Vector512.Abs(x1); q1 = Vector512.FusedMultiplyAdd(x1, x1, q1);
                a2 += Vector512.Abs(x2); q2 = Vector512.FusedMultiplyAdd(x2, x2, q2);
                a3 += Vector512.Abs(x3); q3 = Vector512.FusedMultiplyAdd(x3, x3, q3);
            }
            for (int i = 0; i < nr; i++)
            {
                var a = i == 0 ? a0 : i == 1 ? a1 : i == 2 ? a2 : a3;
                var q = i == 0 ? q0 : i == 1 ? q1 : i == 2 ? q2 : q3;
                if (flush == null) { Vector512.Store(a, v0 + i * 32); Vector512.Store(q, v0 + i * 32 + 16); continue; }
                double sa = Vector512.Sum(a), sb = Vector512.Sum(q);
                int r = r0 + i;
                if (set) { flush[r] = sa; flush[m + r] = sb; }
                else { flush[r] += sa; flush[m + r] += sb; }
            }
        }
    }

    /// <summary>Multiply-adds per parallel chunk below which a lane product stays on one thread (a hand-off costs a few µs).</summary>
    private const double LaneParallelWork = 1 << 18;

    /// <summary>
    /// [batch, n] rows (example e at src + e·lds) into lane layout: dst[j·lanes + e] for j &lt; n, zero for the padding lanes.
    /// </summary>
    internal static void ToLanes(float* src, long lds, int batch, int n, float* dst, int lanes)
    {
        for (int g = 0; g < lanes; g += 16)
        {
            int rows = Math.Min(16, batch - g);
            for (int j = 0; j < n; j += 16)
                Transpose16(src + g * lds + j, lds, rows, Math.Min(16, n - j), dst + (long)j * lanes + g, lanes, 16);
        }
    }

    /// <summary>
    /// Transposes a block: d[c·ldd + r] = s[r·lds + c] for c &lt; cols and r &lt; store (both ≤ 16); source rows r ≥ rows
    /// read as zero and nothing past column cols of a source row is read.
    /// </summary>
    private static void Transpose16(float* s, long lds, int rows, int cols, float* d, long ldd, int store)
    {
        if (!Avx512F.IsSupported)
        {
            for (int c = 0; c < cols; c++)
                for (int r = 0; r < store; r++) d[c * ldd + r] = r < rows ? s[r * lds + c] : 0f;
            return;
        }
        var z = Vector512<float>.Zero;
        var m = Mask(cols);
        bool full = cols == 16;
        Vector512<float> Row(int r) => r >= rows ? z : full ? Vector512.Load(s + r * lds) : Avx512F.MaskLoad(s + r * lds, m, z);
        Vector512<float> r0 = Row(0), r1 = Row(1), r2 = Row(2), r3 = Row(3), r4 = Row(4), r5 = Row(5), r6 = Row(6), r7 = Row(7),
            r8 = Row(8), r9 = Row(9), r10 = Row(10), r11 = Row(11), r12 = Row(12), r13 = Row(13), r14 = Row(14), r15 = Row(15);
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
        var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
        var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
        var u0 = Avx512F.Shuffle(t0, t2, 0x44); var u1 = Avx512F.Shuffle(t0, t2, 0xEE);
        var u2 = Avx512F.Shuffle(t1, t3, 0x44); var u3 = Avx512F.Shuffle(t1, t3, 0xEE);
        var u4 = Avx512F.Shuffle(t4, t6, 0x44); var u5 = Avx512F.Shuffle(t4, t6, 0xEE);
        var u6 = Avx512F.Shuffle(t5, t7, 0x44); var u7 = Avx512F.Shuffle(t5, t7, 0xEE);
        var u8 = Avx512F.Shuffle(t8, t10, 0x44); var u9 = Avx512F.Shuffle(t8, t10, 0xEE);
        var u10 = Avx512F.Shuffle(t9, t11, 0x44); var u11 = Avx512F.Shuffle(t9, t11, 0xEE);
        var u12 = Avx512F.Shuffle(t12, t14, 0x44); var u13 = Avx512F.Shuffle(t12, t14, 0xEE);
        var u14 = Avx512F.Shuffle(t13, t15, 0x44); var u15 = Avx512F.Shuffle(t13, t15, 0xEE);
        Quad(u0, u4, u8, u12, out var o0, out var o4, out var o8, out var o12);
        Quad(u1, u5, u9, u13, out var o1, out var o5, out var o9, out var o13);
        Quad(u2, u6, u10, u14, out var o2, out var o6, out var o10, out var o14);
        Quad(u3, u7, u11, u15, out var o3, out var o7, out var o11, out var o15);
        if (store == 16)
        {
            Vector512.Store(o0, d);
            if (cols > 1) Vector512.Store(o1, d + ldd);
            if (cols > 2) Vector512.Store(o2, d + 2 * ldd);
            if (cols > 3) Vector512.Store(o3, d + 3 * ldd);
            if (cols > 4) Vector512.Store(o4, d + 4 * ldd);
            if (cols > 5) Vector512.Store(o5, d + 5 * ldd);
            if (cols > 6) Vector512.Store(o6, d + 6 * ldd);
            if (cols > 7) Vector512.Store(o7, d + 7 * ldd);
            if (cols > 8) Vector512.Store(o8, d + 8 * ldd);
            if (cols > 9) Vector512.Store(o9, d + 9 * ldd);
            if (cols > 10) Vector512.Store(o10, d + 10 * ldd);
            if (cols > 11) Vector512.Store(o11, d + 11 * ldd);
            if (cols > 12) Vector512.Store(o12, d + 12 * ldd);
            if (cols > 13) Vector512.Store(o13, d + 13 * ldd);
            if (cols > 14) Vector512.Store(o14, d + 14 * ldd);
            if (cols > 15) Vector512.Store(o15, d + 15 * ldd);
            return;
        }
        var sm = Mask(store);
        Avx512F.MaskStore(d, sm, o0);
        if (cols > 1) Avx512F.MaskStore(d + ldd, sm, o1);
        if (cols > 2) Avx512F.MaskStore(d + 2 * ldd, sm, o2);
        if (cols > 3) Avx512F.MaskStore(d + 3 * ldd, sm, o3);
        if (cols > 4) Avx512F.MaskStore(d + 4 * ldd, sm, o4);
        if (cols > 5) Avx512F.MaskStore(d + 5 * ldd, sm, o5);
        if (cols > 6) Avx512F.MaskStore(d + 6 * ldd, sm, o6);
        if (cols > 7) Avx512F.MaskStore(d + 7 * ldd, sm, o7);
        if (cols > 8) Avx512F.MaskStore(d + 8 * ldd, sm, o8);
        if (cols > 9) Avx512F.MaskStore(d + 9 * ldd, sm, o9);
        if (cols > 10) Avx512F.MaskStore(d + 10 * ldd, sm, o10);
        if (cols > 11) Avx512F.MaskStore(d + 11 * ldd, sm, o11);
        if (cols > 12) Avx512F.MaskStore(d + 12 * ldd, sm, o12);
        if (cols > 13) Avx512F.MaskStore(d + 13 * ldd, sm, o13);
        if (cols > 14) Avx512F.MaskStore(d + 14 * ldd, sm, o14);
        if (cols > 15) Avx512F.MaskStore(d + 15 * ldd, sm, o15);
    }

    /// <summary>Columns q, 4+q, 8+q, 12+q of a 16×16 transpose from the four stage-2 vectors of quad q.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quad(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> e,
                             out Vector512<float> o0, out Vector512<float> o1, out Vector512<float> o2, out Vector512<float> o3)
    {
        var v0 = Avx512F.Shuffle4x128(a, b, 0x88); var v1 = Avx512F.Shuffle4x128(a, b, 0xDD);
        var w0 = Avx512F.Shuffle4x128(c, e, 0x88); var w1 = Avx512F.Shuffle4x128(c, e, 0xDD);
        o0 = Avx512F.Shuffle4x128(v0, w0, 0x88);
        o1 = Avx512F.Shuffle4x128(v1, w1, 0x88);
        o2 = Avx512F.Shuffle4x128(v0, w0, 0xDD);
        o3 = Avx512F.Shuffle4x128(v1, w1, 0xDD);
    }

    /// <summary>
    /// The box rule's output from lane-layout sums: lo = (c + addC) − (r + addR), hi = (c + addC) + (r + addR) per
    /// element j &lt; n (addC null: none), as <see cref="Finish"/>: through the epilogue ep (its constants are addC and
    /// addR), or, when ep is null, written back as [batch, n] rows into lo / hi.
    /// </summary>
    internal static void FinishLanes(float* c, float* r, float* addC, float* addR, int n, int batch, int lanes, float* lo, float* hi, LaneEpilogue* ep = null)
    {
        float* tl = stackalloc float[512];
        float* th = tl + 256;
        for (int j0 = 0; j0 < n; j0 += 16)
        {
            int jr = Math.Min(16, n - j0);
            for (int g = 0; g < lanes; g += 16)
            {
                for (int q = 0; q < jr; q++)
                {
                    long at = (long)(j0 + q) * lanes + g;
                    var cc = Vector512.Load(c + at);
                    if (addC != null) cc += Vector512.Create(addC[j0 + q]);
                    var rr = Vector512.Load(r + at) + Vector512.Create(addR[j0 + q]);
                    if (ep != null) StoreOut(ep, cc - rr, cc + rr, j0 + q, g);
                    else { Vector512.Store(cc - rr, tl + q * 16); Vector512.Store(cc + rr, th + q * 16); }
                }
                if (ep != null) continue;
                int cols = Math.Min(16, batch - g);
                Transpose16(tl, 16, jr, cols, lo + (long)g * n + j0, n, jr);
                Transpose16(th, 16, jr, cols, hi + (long)g * n + j0, n, jr);
            }
        }
    }

    /// <summary>
    /// Where layer k's lane-layout output goes (value k, or k + 1 with its activation fused): the epilogue that stores
    /// it there with the layer's constants addC / addR, as (lo, hi) or as the consumer's centre and radius (in the
    /// consumer convolution's padded planes, whose padding is cleared here). Null when the output goes back to rows.
    /// </summary>
    private static bool OutEpilogue(ChainRun run, int k, float* olo, float* ohi, float* addC, float* addR, out LaneEpilogue ep)
    {
        ep = default;
        if (!run.LaneOut[k]) return false;
        var act = FusedAct(run, k);
        int v = act == null ? k : k + 1, n = run.Plan.Layers[k].OutSize, lanes = LaneCount(run.Batch);
        ep = new LaneEpilogue
        {
            AddC = addC, AddR = addR, OutA = olo, OutB = ohi, Lanes = lanes, Act = act != null, Slope = act?.Slope ?? 0f,
            Center = run.Centered[v], Rho = run.Rho,
        };
        if (run.Centered[v] && run.Plan.Layers[run.Consumer[v]] is ConvLayer g)
        {
            int hp = g.H + 2 * g.PH, wp = g.Wd + 2 * g.PW;
            long row = (long)wp * lanes, plane = hp * row;
            int* dst = run.DstOffsets.Get(n);
            for (int ci = 0, j = 0; ci < g.Cin; ci++)
                for (int y = 0; y < g.H; y++)
                    for (int x = 0; x < g.Wd; x++, j++) dst[j] = (int)(ci * plane + (y + g.PH) * row + (long)(x + g.PW) * lanes);
            ep.Dst = dst;
            ClearPadding(olo, g, lanes); ClearPadding(ohi, g, lanes);
        }
        return true;
    }

    /// <summary>Zeroes the padding of a convolution's input planes [Cin, H + 2·PH, W + 2·PW, lanes]: the rows above and below the image and each image row's margins.</summary>
    private static void ClearPadding(float* planes, ConvLayer g, int lanes)
    {
        int hp = g.H + 2 * g.PH, wp = g.Wd + 2 * g.PW;
        long row = (long)wp * lanes, plane = hp * row, margin = (long)g.PW * lanes;
        for (int ci = 0; ci < g.Cin; ci++)
        {
            float* pc = planes + ci * plane;
            ChainKernels.Clear(pc, g.PH * row);
            ChainKernels.Clear(pc + (g.PH + g.H) * row, g.PH * row);
            if (margin == 0) continue;
            for (int y = 0; y < g.H; y++)
            {
                float* r0 = pc + (y + g.PH) * row;
                ChainKernels.Clear(r0, margin);
                ChainKernels.Clear(r0 + margin + (long)g.Wd * lanes, margin);
            }
        }
    }
}
