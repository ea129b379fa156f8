using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// Packing for the blocked SGEMM. A block (mc×kc of op(A)) becomes row panels of MR rows stored k-major
/// (panel[p*R + r], R = rows in the panel; the last panel is packed tight, not padded); a B block (kc×nc of op(B))
/// becomes column panels of width w (panel[p*w + j], zero-padded past the valid columns) so the micro-kernel reads
/// both operands as one sequential stream. Stores may run up to <see cref="Slack"/> floats past a panel.
/// </summary>
/// <remarks>
/// The packers are marked AggressiveOptimization: they run a few times per GEMM, so tiering would leave their
/// vector transposes in slow unoptimised code for the first few dozen GEMMs.
/// </remarks>
internal static unsafe class GemmPack
{
    /// <summary>Floats a packing buffer needs beyond its panels (overlapping full-vector stores).</summary>
    internal const int Slack = 16;

    /// <summary>Packs rows [i0, i0+mc) × k-range [p0, p0+kc) of op(A) into MR-row panels at dst.</summary>
    /// <remarks>avx512 selects the AVX-512 forms, otherwise AVX2 (the packing only runs on the vector paths).</remarks>
    internal static void PackA(bool transA, float* a, int lda, int i0, int mc, int p0, int kc, int mr, float* dst, bool avx512)
    {
        for (int ir = 0; ir < mc; ir += mr)
        {
            int rows = Math.Min(mr, mc - ir);
            float* d = dst + (long)ir * kc;
            if (transA) PackRowsFromColumns(a + (long)p0 * lda + i0 + ir, lda, rows, kc, d, avx512);
            else PackRowsFromRows(a + (long)(i0 + ir) * lda + p0, lda, rows, kc, d, avx512);
        }
    }

    /// <summary>Packs k-range [p0, p0+kc) × columns [j0, j0+nc) of op(B) into column panels of width nr (nr/2 for a short last panel).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PackB(bool transB, float* b, int ldb, int p0, int kc, int j0, int nc, int nr, float* dst, bool avx512)
    {
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr);
            int w = PanelWidth(cols, nr);
            float* d = dst + (long)jr * kc;
            if (transB) PackRowsFromRows(b + (long)(j0 + jr) * ldb + p0, ldb, cols, kc, d, avx512, w);
            else if (cols < nr) PackRowsFromColumns(b + (long)p0 * ldb + j0 + jr, ldb, cols, kc, d, avx512, w);
        }
        if (!transB)
        {
            // Full panels row by row: one sequential read of each B row feeds every panel, instead of one short strided
            // read per (panel, row), which the prefetchers and the TLB handle badly when ldb is a multiple of 4 KB.
            int full = nc / nr;
            for (int p = 0; p < kc; p++)
            {
                float* s = b + (long)(p0 + p) * ldb + j0;
                float* d = dst + p * nr;
                for (int q = 0; q < full; q++, s += nr, d += (long)nr * kc)
                {
                    if (avx512)
                    {
                        Vector512.Store(Vector512.Load(s), d);
                        Vector512.Store(Vector512.Load(s + 16), d + 16);
                    }
                    else
                    {
                        Vector256.Store(Vector256.Load(s), d);
                        Vector256.Store(Vector256.Load(s + 8), d + 8);
                    }
                }
            }
        }
    }

    /// <summary>Width of a B panel holding <paramref name="cols"/> valid columns: a short tail uses the half-width kernel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int PanelWidth(int cols, int nr) => cols > nr / 2 ? nr : nr / 2;

    /// <summary>
    /// dst[p*w + r] = src[r*ld + p] for r &lt; rows, p &lt; kc, zero for rows ≤ r &lt; w: a transpose of `rows` strided
    /// vectors (A not transposed, or B transposed). w defaults to rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRowsFromRows(float* src, int ld, int rows, int kc, float* dst, bool avx512, int w = 0)
    {
        if (w == 0) w = rows;
        int p = 0;
        if (avx512 && ((w >= 4 && w <= 16) || w == 32))
        {
            // 16×16 register transposes; missing rows are fed as zeros, which is the padding. Lanes past w are
            // overwritten by the next column's store or land in the slack.
            int groups = (w + 15) / 16;
            for (; p + 16 <= kc; p += 16)
                for (int g = 0; g < groups; g++)
                    Transpose16Store(src + (long)g * 16 * ld + p, ld, Math.Min(16, rows - g * 16), dst + (long)p * w + g * 16, w);
        }
        else if (!avx512 && ((w >= 4 && w <= 8) || w == 16))
        {
            int groups = (w + 7) / 8;
            for (; p + 8 <= kc; p += 8)
                for (int g = 0; g < groups; g++)
                    Transpose8Store(src + (long)g * 8 * ld + p, ld, Math.Min(8, rows - g * 8), dst + (long)p * w + g * 8, w);
        }
        for (int r = 0; r < rows; r++)
        {
            float* s = src + (long)r * ld;
            for (int q = p; q < kc; q++) dst[(long)q * w + r] = s[q];
        }
        for (int r = rows; r < w; r++)
            for (int q = p; q < kc; q++) dst[(long)q * w + r] = 0;
    }

    /// <summary>
    /// dst[p*w + j] = src[p*ld + j] for j &lt; cols, zero for cols ≤ j &lt; w: contiguous runs (A transposed, or B not transposed).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackRowsFromColumns(float* src, int ld, int cols, int kc, float* dst, bool avx512, int w = 0)
    {
        if (w == 0) w = cols;
        if (avx512 && w == 32)
        {
            var hi = ColumnMask(cols - 16);
            for (int p = 0; p < kc; p++)
            {
                float* s = src + (long)p * ld;
                Vector512.Store(Vector512.Load(s), dst);
                Vector512.Store(Avx512F.MaskLoad(s + 16, hi, Vector512<float>.Zero), dst + 16);
                dst += 32;
            }
            return;
        }
        if (avx512 && w <= 16)
        {
            // A masked load never touches (or faults on) memory past the valid columns and zero-fills the padding.
            var mask = ColumnMask(cols);
            for (int p = 0; p < kc; p++)
            {
                Vector512.Store(Avx512F.MaskLoad(src + (long)p * ld, mask, Vector512<float>.Zero), dst);
                dst += w;
            }
            return;
        }
        if (!avx512 && w == 16)
        {
            var hi = ColumnMask256(cols - 8);
            for (int p = 0; p < kc; p++)
            {
                float* s = src + (long)p * ld;
                Vector256.Store(Vector256.Load(s), dst);
                Vector256.Store(Avx.MaskLoad(s + 8, hi), dst + 8);
                dst += 16;
            }
            return;
        }
        if (!avx512 && w <= 8)
        {
            var mask = ColumnMask256(cols);
            for (int p = 0; p < kc; p++)
            {
                Vector256.Store(Avx.MaskLoad(src + (long)p * ld, mask), dst);
                dst += w;
            }
            return;
        }
        for (int p = 0; p < kc; p++)
        {
            float* s = src + (long)p * ld;
            int j = 0;
            for (; j < cols; j++) dst[j] = s[j];
            for (; j < w; j++) dst[j] = 0;
            dst += w;
        }
    }

    /// <summary>Lanes [0, count) set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ColumnMask(int count) =>
        Vector512.LessThan(Vector512.Create(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Vector512.Create(count)).AsSingle();

    /// <summary>Lanes [0, count) set.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ColumnMask256(int count) =>
        Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count)).AsSingle();

    /// <summary>The AVX2 form of <see cref="Transpose16Store"/>: a rows×8 block (0 ≤ rows ≤ 8), columns stored 8 floats each in increasing order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8Store(float* s, int ld, int rows, float* dst, int dstStride)
    {
        Vector256<float> z = Vector256<float>.Zero;
        Vector256<float> r0 = rows > 0 ? Vector256.Load(s) : z, r1 = rows > 1 ? Vector256.Load(s + ld) : z,
            r2 = rows > 2 ? Vector256.Load(s + 2L * ld) : z, r3 = rows > 3 ? Vector256.Load(s + 3L * ld) : z,
            r4 = rows > 4 ? Vector256.Load(s + 4L * ld) : z, r5 = rows > 5 ? Vector256.Load(s + 5L * ld) : z,
            r6 = rows > 6 ? Vector256.Load(s + 6L * ld) : z, r7 = rows > 7 ? Vector256.Load(s + 7L * ld) : z;
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        // u[q] (rows 0-3) and u[4+q] (rows 4-7): 128-bit lane L holds element 4L+q.
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        long st = dstStride;
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x20), dst);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x20), dst + st);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x20), dst + 2 * st);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x20), dst + 3 * st);
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x31), dst + 4 * st);
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x31), dst + 5 * st);
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x31), dst + 6 * st);
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x31), dst + 7 * st);
    }

    /// <summary>Column p of a rows×16 block (0 ≤ rows ≤ 16, missing rows read as zero, row stride ld) as o_p.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose16(float* s, int ld, int rows,
        out Vector512<float> o0, out Vector512<float> o1, out Vector512<float> o2, out Vector512<float> o3,
        out Vector512<float> o4, out Vector512<float> o5, out Vector512<float> o6, out Vector512<float> o7,
        out Vector512<float> o8, out Vector512<float> o9, out Vector512<float> o10, out Vector512<float> o11,
        out Vector512<float> o12, out Vector512<float> o13, out Vector512<float> o14, out Vector512<float> o15)
    {
        Vector512<float> z = Vector512<float>.Zero;
        Vector512<float> r0 = rows > 0 ? Vector512.Load(s) : z, r1 = rows > 1 ? Vector512.Load(s + ld) : z,
            r2 = rows > 2 ? Vector512.Load(s + 2L * ld) : z, r3 = rows > 3 ? Vector512.Load(s + 3L * ld) : z,
            r4 = rows > 4 ? Vector512.Load(s + 4L * ld) : z, r5 = rows > 5 ? Vector512.Load(s + 5L * ld) : z,
            r6 = rows > 6 ? Vector512.Load(s + 6L * ld) : z, r7 = rows > 7 ? Vector512.Load(s + 7L * ld) : z,
            r8 = rows > 8 ? Vector512.Load(s + 8L * ld) : z, r9 = rows > 9 ? Vector512.Load(s + 9L * ld) : z,
            r10 = rows > 10 ? Vector512.Load(s + 10L * ld) : z, r11 = rows > 11 ? Vector512.Load(s + 11L * ld) : z,
            r12 = rows > 12 ? Vector512.Load(s + 12L * ld) : z, r13 = rows > 13 ? Vector512.Load(s + 13L * ld) : z,
            r14 = rows > 14 ? Vector512.Load(s + 14L * ld) : z, r15 = rows > 15 ? Vector512.Load(s + 15L * ld) : z;

        // Stage 1: interleave row pairs within 128-bit lanes.
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
        var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
        var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
        // Stage 2: u[4g+q] lane L = rows 4g..4g+3 of element 4L+q.
        var u0 = Avx512F.Shuffle(t0, t2, 0x44); var u1 = Avx512F.Shuffle(t0, t2, 0xEE);
        var u2 = Avx512F.Shuffle(t1, t3, 0x44); var u3 = Avx512F.Shuffle(t1, t3, 0xEE);
        var u4 = Avx512F.Shuffle(t4, t6, 0x44); var u5 = Avx512F.Shuffle(t4, t6, 0xEE);
        var u6 = Avx512F.Shuffle(t5, t7, 0x44); var u7 = Avx512F.Shuffle(t5, t7, 0xEE);
        var u8 = Avx512F.Shuffle(t8, t10, 0x44); var u9 = Avx512F.Shuffle(t8, t10, 0xEE);
        var u10 = Avx512F.Shuffle(t9, t11, 0x44); var u11 = Avx512F.Shuffle(t9, t11, 0xEE);
        var u12 = Avx512F.Shuffle(t12, t14, 0x44); var u13 = Avx512F.Shuffle(t12, t14, 0xEE);
        var u14 = Avx512F.Shuffle(t13, t15, 0x44); var u15 = Avx512F.Shuffle(t13, t15, 0xEE);
        // Stages 3-4: gather 128-bit lane L of u[q], u[4+q], u[8+q], u[12+q] into column 4L+q.
        Quad(u0, u4, u8, u12, out o0, out o4, out o8, out o12);
        Quad(u1, u5, u9, u13, out o1, out o5, out o9, out o13);
        Quad(u2, u6, u10, u14, out o2, out o6, out o10, out o14);
        Quad(u3, u7, u11, u15, out o3, out o7, out o11, out o15);
    }

    /// <summary>
    /// Transposes a rows×16 block (0 ≤ rows ≤ 16, missing rows read as zero, row stride ld) and stores column p at dst + p*dstStride (16 floats each,
    /// in increasing p, so lanes past `rows` are overwritten by the next column or land in the buffer slack).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose16Store(float* s, int ld, int rows, float* dst, int dstStride)
    {
        Transpose16(s, ld, rows, out var o0, out var o1, out var o2, out var o3, out var o4, out var o5, out var o6, out var o7,
            out var o8, out var o9, out var o10, out var o11, out var o12, out var o13, out var o14, out var o15);
        // Columns are stored in increasing order because a 16-float store overruns into the next column when
        // dstStride < 16.
        long st = dstStride;
        Vector512.Store(o0, dst); Vector512.Store(o1, dst + st); Vector512.Store(o2, dst + 2 * st); Vector512.Store(o3, dst + 3 * st);
        Vector512.Store(o4, dst + 4 * st); Vector512.Store(o5, dst + 5 * st); Vector512.Store(o6, dst + 6 * st); Vector512.Store(o7, dst + 7 * st);
        Vector512.Store(o8, dst + 8 * st); Vector512.Store(o9, dst + 9 * st); Vector512.Store(o10, dst + 10 * st); Vector512.Store(o11, dst + 11 * st);
        Vector512.Store(o12, dst + 12 * st); Vector512.Store(o13, dst + 13 * st); Vector512.Store(o14, dst + 14 * st); Vector512.Store(o15, dst + 15 * st);
    }

    /// <summary>
    /// Transposes a 16×16 block (row stride ld) and, for each column j &lt; channels, adds bias[j] and stores the lanes
    /// of <paramref name="keep"/> packed together (in order) at dst + j·dstStride, writing only the lanes of
    /// <paramref name="storeMask"/> (the first popcount(keep)): for dropping the padding pixels of a convolution's
    /// flat output rows on the way to its dense output.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose16CompressStore(float* s, int ld, int channels, float* dst, long dstStride, float* bias,
        Vector512<float> keep, Vector512<float> storeMask)
    {
        Transpose16(s, ld, 16, out var o0, out var o1, out var o2, out var o3, out var o4, out var o5, out var o6, out var o7,
            out var o8, out var o9, out var o10, out var o11, out var o12, out var o13, out var o14, out var o15);
        // The register form of compress, then a masked store: the memory form is slow on some AMD cores.
        var z = Vector512<float>.Zero;
        Avx512F.MaskStore(dst, storeMask, Avx512F.Compress(z, keep, o0 + Vector512.Create(bias[0])));
        if (channels > 1) Avx512F.MaskStore(dst + dstStride, storeMask, Avx512F.Compress(z, keep, o1 + Vector512.Create(bias[1])));
        if (channels > 2) Avx512F.MaskStore(dst + 2 * dstStride, storeMask, Avx512F.Compress(z, keep, o2 + Vector512.Create(bias[2])));
        if (channels > 3) Avx512F.MaskStore(dst + 3 * dstStride, storeMask, Avx512F.Compress(z, keep, o3 + Vector512.Create(bias[3])));
        if (channels > 4) Avx512F.MaskStore(dst + 4 * dstStride, storeMask, Avx512F.Compress(z, keep, o4 + Vector512.Create(bias[4])));
        if (channels > 5) Avx512F.MaskStore(dst + 5 * dstStride, storeMask, Avx512F.Compress(z, keep, o5 + Vector512.Create(bias[5])));
        if (channels > 6) Avx512F.MaskStore(dst + 6 * dstStride, storeMask, Avx512F.Compress(z, keep, o6 + Vector512.Create(bias[6])));
        if (channels > 7) Avx512F.MaskStore(dst + 7 * dstStride, storeMask, Avx512F.Compress(z, keep, o7 + Vector512.Create(bias[7])));
        if (channels > 8) Avx512F.MaskStore(dst + 8 * dstStride, storeMask, Avx512F.Compress(z, keep, o8 + Vector512.Create(bias[8])));
        if (channels > 9) Avx512F.MaskStore(dst + 9 * dstStride, storeMask, Avx512F.Compress(z, keep, o9 + Vector512.Create(bias[9])));
        if (channels > 10) Avx512F.MaskStore(dst + 10 * dstStride, storeMask, Avx512F.Compress(z, keep, o10 + Vector512.Create(bias[10])));
        if (channels > 11) Avx512F.MaskStore(dst + 11 * dstStride, storeMask, Avx512F.Compress(z, keep, o11 + Vector512.Create(bias[11])));
        if (channels > 12) Avx512F.MaskStore(dst + 12 * dstStride, storeMask, Avx512F.Compress(z, keep, o12 + Vector512.Create(bias[12])));
        if (channels > 13) Avx512F.MaskStore(dst + 13 * dstStride, storeMask, Avx512F.Compress(z, keep, o13 + Vector512.Create(bias[13])));
        if (channels > 14) Avx512F.MaskStore(dst + 14 * dstStride, storeMask, Avx512F.Compress(z, keep, o14 + Vector512.Create(bias[14])));
        if (channels > 15) Avx512F.MaskStore(dst + 15 * dstStride, storeMask, Avx512F.Compress(z, keep, o15 + Vector512.Create(bias[15])));
    }

    /// <summary>
    /// <see cref="Transpose16Store"/> with row r read at src[r] + off, `stride` floats between its elements (see
    /// <see cref="LoadStrided"/>; rows ≥ `rows` read as zero) and only columns [0, cols) stored: for packing from row pointers that are not a fixed stride apart, e.g. the taps of a convolution.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose16Gather(float** s, long off, int stride, int rows, float* dst, int dstStride, int cols)
    {
        Vector512<float> z = Vector512<float>.Zero;
        Vector512<float> r0 = rows > 0 ? LoadStrided(s[0] + off, stride) : z, r1 = rows > 1 ? LoadStrided(s[1] + off, stride) : z,
            r2 = rows > 2 ? LoadStrided(s[2] + off, stride) : z, r3 = rows > 3 ? LoadStrided(s[3] + off, stride) : z,
            r4 = rows > 4 ? LoadStrided(s[4] + off, stride) : z, r5 = rows > 5 ? LoadStrided(s[5] + off, stride) : z,
            r6 = rows > 6 ? LoadStrided(s[6] + off, stride) : z, r7 = rows > 7 ? LoadStrided(s[7] + off, stride) : z,
            r8 = rows > 8 ? LoadStrided(s[8] + off, stride) : z, r9 = rows > 9 ? LoadStrided(s[9] + off, stride) : z,
            r10 = rows > 10 ? LoadStrided(s[10] + off, stride) : z, r11 = rows > 11 ? LoadStrided(s[11] + off, stride) : z,
            r12 = rows > 12 ? LoadStrided(s[12] + off, stride) : z, r13 = rows > 13 ? LoadStrided(s[13] + off, stride) : z,
            r14 = rows > 14 ? LoadStrided(s[14] + off, stride) : z, r15 = rows > 15 ? LoadStrided(s[15] + off, stride) : z;

        // Stage 1: interleave row pairs within 128-bit lanes.
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
        var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
        var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
        // Stage 2: u[4g+q] lane L = rows 4g..4g+3 of element 4L+q.
        var u0 = Avx512F.Shuffle(t0, t2, 0x44); var u1 = Avx512F.Shuffle(t0, t2, 0xEE);
        var u2 = Avx512F.Shuffle(t1, t3, 0x44); var u3 = Avx512F.Shuffle(t1, t3, 0xEE);
        var u4 = Avx512F.Shuffle(t4, t6, 0x44); var u5 = Avx512F.Shuffle(t4, t6, 0xEE);
        var u6 = Avx512F.Shuffle(t5, t7, 0x44); var u7 = Avx512F.Shuffle(t5, t7, 0xEE);
        var u8 = Avx512F.Shuffle(t8, t10, 0x44); var u9 = Avx512F.Shuffle(t8, t10, 0xEE);
        var u10 = Avx512F.Shuffle(t9, t11, 0x44); var u11 = Avx512F.Shuffle(t9, t11, 0xEE);
        var u12 = Avx512F.Shuffle(t12, t14, 0x44); var u13 = Avx512F.Shuffle(t12, t14, 0xEE);
        var u14 = Avx512F.Shuffle(t13, t15, 0x44); var u15 = Avx512F.Shuffle(t13, t15, 0xEE);
        // Stages 3-4: gather 128-bit lane L of u[q], u[4+q], u[8+q], u[12+q] into column 4L+q. Columns are stored in
        // increasing order because a 16-float store overruns into the next column when dstStride < 16.
        Quad(u0, u4, u8, u12, out var o0, out var o4, out var o8, out var o12);
        Quad(u1, u5, u9, u13, out var o1, out var o5, out var o9, out var o13);
        Quad(u2, u6, u10, u14, out var o2, out var o6, out var o10, out var o14);
        Quad(u3, u7, u11, u15, out var o3, out var o7, out var o11, out var o15);
        long st = dstStride;
        Vector512.Store(o0, dst);
        if (cols > 1) Vector512.Store(o1, dst + st);
        if (cols > 2) Vector512.Store(o2, dst + 2 * st);
        if (cols > 3) Vector512.Store(o3, dst + 3 * st);
        if (cols > 4) Vector512.Store(o4, dst + 4 * st);
        if (cols > 5) Vector512.Store(o5, dst + 5 * st);
        if (cols > 6) Vector512.Store(o6, dst + 6 * st);
        if (cols > 7) Vector512.Store(o7, dst + 7 * st);
        if (cols > 8) Vector512.Store(o8, dst + 8 * st);
        if (cols > 9) Vector512.Store(o9, dst + 9 * st);
        if (cols > 10) Vector512.Store(o10, dst + 10 * st);
        if (cols > 11) Vector512.Store(o11, dst + 11 * st);
        if (cols > 12) Vector512.Store(o12, dst + 12 * st);
        if (cols > 13) Vector512.Store(o13, dst + 13 * st);
        if (cols > 14) Vector512.Store(o14, dst + 14 * st);
        if (cols > 15) Vector512.Store(o15, dst + 15 * st);
    }

    /// <summary>
    /// 16 floats src[0], src[stride], ... (stride 1 or 2 as full-vector loads, reading up to 32 floats); other strides
    /// element by element.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> LoadStrided(float* src, int stride)
    {
        if (stride == 1) return Vector512.Load(src);
        if (stride == 2)
            return Avx512F.PermuteVar16x32x2(Vector512.Load(src), Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), Vector512.Load(src + 16));
        return Vector512.Create(src[0], src[stride], src[2 * stride], src[3 * stride], src[4 * stride], src[5 * stride], src[6 * stride], src[7 * stride],
                                src[8 * stride], src[9 * stride], src[10 * stride], src[11 * stride], src[12 * stride], src[13 * stride], src[14 * stride], src[15 * stride]);
    }

    /// <summary>Columns q, 4+q, 8+q, 12+q from the four stage-2 vectors of quad q.</summary>
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
}
