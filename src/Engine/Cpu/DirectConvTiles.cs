// Rows are unrolled by hand, every row in the same pattern, so the JIT keeps every accumulator in a register
// (the pattern of GemmKernel512).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// AVX-512 micro-kernels of <see cref="DirectConv"/>: output channels across the vector lanes (TW = 16 or 32 of them),
/// image values broadcast straight from a zero-padded copy of the image, so nothing is packed.
/// </summary>
internal static unsafe class DirectConvTiles
{
    /// <summary>Output pixels of a forward tile.</summary>
    internal const int Rows = 14;

    /// <summary>Taps of a weight-gradient tile.</summary>
    internal const int Taps = 8;

    /// <summary>
    /// Forward tile: out[j, c] = Σ_p src[off[p] + j·TS] · w[p, c] for j &lt; 14 (consecutive flat output pixels, TS apart
    /// in the padded image) and c &lt; TW; w holds TW floats per tap, ldw apart; out rows are ldo apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Forward<TW, TS>(int taps, float* src, int* off, float* w, nint ldw, float* o, nint ldo)
        where TW : struct, IGemmConst where TS : struct, IGemmConst
    {
        bool two = TW.Value == 32;
        int s = TS.Value;
        Vector512<float> r0a = default, r0b = default, r1a = default, r1b = default;
        Vector512<float> r2a = default, r2b = default, r3a = default, r3b = default;
        Vector512<float> r4a = default, r4b = default, r5a = default, r5b = default;
        Vector512<float> r6a = default, r6b = default, r7a = default, r7b = default;
        Vector512<float> r8a = default, r8b = default, r9a = default, r9b = default;
        Vector512<float> r10a = default, r10b = default, r11a = default, r11b = default;
        Vector512<float> r12a = default, r12b = default, r13a = default, r13b = default;
        for (int p = 0; p < taps; p++)
        {
            float* ap = src + off[p];
            Vector512<float> b0 = Vector512.Load(w);
            Vector512<float> b1 = two ? Vector512.Load(w + 16) : default;
            Vector512<float> a;
            a = Vector512.Create(ap[0 * s]); r0a = Avx512F.FusedMultiplyAdd(a, b0, r0a); if (two) r0b = Avx512F.FusedMultiplyAdd(a, b1, r0b);
            a = Vector512.Create(ap[1 * s]); r1a = Avx512F.FusedMultiplyAdd(a, b0, r1a); if (two) r1b = Avx512F.FusedMultiplyAdd(a, b1, r1b);
            a = Vector512.Create(ap[2 * s]); r2a = Avx512F.FusedMultiplyAdd(a, b0, r2a); if (two) r2b = Avx512F.FusedMultiplyAdd(a, b1, r2b);
            a = Vector512.Create(ap[3 * s]); r3a = Avx512F.FusedMultiplyAdd(a, b0, r3a); if (two) r3b = Avx512F.FusedMultiplyAdd(a, b1, r3b);
            a = Vector512.Create(ap[4 * s]); r4a = Avx512F.FusedMultiplyAdd(a, b0, r4a); if (two) r4b = Avx512F.FusedMultiplyAdd(a, b1, r4b);
            a = Vector512.Create(ap[5 * s]); r5a = Avx512F.FusedMultiplyAdd(a, b0, r5a); if (two) r5b = Avx512F.FusedMultiplyAdd(a, b1, r5b);
            a = Vector512.Create(ap[6 * s]); r6a = Avx512F.FusedMultiplyAdd(a, b0, r6a); if (two) r6b = Avx512F.FusedMultiplyAdd(a, b1, r6b);
            a = Vector512.Create(ap[7 * s]); r7a = Avx512F.FusedMultiplyAdd(a, b0, r7a); if (two) r7b = Avx512F.FusedMultiplyAdd(a, b1, r7b);
            a = Vector512.Create(ap[8 * s]); r8a = Avx512F.FusedMultiplyAdd(a, b0, r8a); if (two) r8b = Avx512F.FusedMultiplyAdd(a, b1, r8b);
            a = Vector512.Create(ap[9 * s]); r9a = Avx512F.FusedMultiplyAdd(a, b0, r9a); if (two) r9b = Avx512F.FusedMultiplyAdd(a, b1, r9b);
            a = Vector512.Create(ap[10 * s]); r10a = Avx512F.FusedMultiplyAdd(a, b0, r10a); if (two) r10b = Avx512F.FusedMultiplyAdd(a, b1, r10b);
            a = Vector512.Create(ap[11 * s]); r11a = Avx512F.FusedMultiplyAdd(a, b0, r11a); if (two) r11b = Avx512F.FusedMultiplyAdd(a, b1, r11b);
            a = Vector512.Create(ap[12 * s]); r12a = Avx512F.FusedMultiplyAdd(a, b0, r12a); if (two) r12b = Avx512F.FusedMultiplyAdd(a, b1, r12b);
            a = Vector512.Create(ap[13 * s]); r13a = Avx512F.FusedMultiplyAdd(a, b0, r13a); if (two) r13b = Avx512F.FusedMultiplyAdd(a, b1, r13b);
            w += ldw;
        }
        r0a.Store(o + 0 * ldo); if (two) r0b.Store(o + 0 * ldo + 16);
        r1a.Store(o + 1 * ldo); if (two) r1b.Store(o + 1 * ldo + 16);
        r2a.Store(o + 2 * ldo); if (two) r2b.Store(o + 2 * ldo + 16);
        r3a.Store(o + 3 * ldo); if (two) r3b.Store(o + 3 * ldo + 16);
        r4a.Store(o + 4 * ldo); if (two) r4b.Store(o + 4 * ldo + 16);
        r5a.Store(o + 5 * ldo); if (two) r5b.Store(o + 5 * ldo + 16);
        r6a.Store(o + 6 * ldo); if (two) r6b.Store(o + 6 * ldo + 16);
        r7a.Store(o + 7 * ldo); if (two) r7b.Store(o + 7 * ldo + 16);
        r8a.Store(o + 8 * ldo); if (two) r8b.Store(o + 8 * ldo + 16);
        r9a.Store(o + 9 * ldo); if (two) r9b.Store(o + 9 * ldo + 16);
        r10a.Store(o + 10 * ldo); if (two) r10b.Store(o + 10 * ldo + 16);
        r11a.Store(o + 11 * ldo); if (two) r11b.Store(o + 11 * ldo + 16);
        r12a.Store(o + 12 * ldo); if (two) r12b.Store(o + 12 * ldo + 16);
        r13a.Store(o + 13 * ldo); if (two) r13b.Store(o + 13 * ldo + 16);
    }

    /// <summary>
    /// Weight-gradient tile: acc[j, c] += Σ_(oh, ow) src[off[j] + (oh·wv + ow)·TS] · dy[oh·outW + ow, c] for the 8 taps
    /// j, output pixels oh &lt; outH, ow &lt; outW and c &lt; TW; dy holds TW floats per output pixel (ldd apart); acc
    /// rows are lda apart. The padded image's flat rows are wv ≥ outW pixels long: their padding columns are skipped.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Weight<TW, TS>(int outH, int outW, int wv, float* src, int* off, float* dy, nint ldd, float* acc, nint lda)
        where TW : struct, IGemmConst where TS : struct, IGemmConst
    {
        bool two = TW.Value == 32;
        Vector512<float> r0a = Vector512.Load(acc + 0 * lda), r0b = two ? Vector512.Load(acc + 0 * lda + 16) : default;
        Vector512<float> r1a = Vector512.Load(acc + 1 * lda), r1b = two ? Vector512.Load(acc + 1 * lda + 16) : default;
        Vector512<float> r2a = Vector512.Load(acc + 2 * lda), r2b = two ? Vector512.Load(acc + 2 * lda + 16) : default;
        Vector512<float> r3a = Vector512.Load(acc + 3 * lda), r3b = two ? Vector512.Load(acc + 3 * lda + 16) : default;
        Vector512<float> r4a = Vector512.Load(acc + 4 * lda), r4b = two ? Vector512.Load(acc + 4 * lda + 16) : default;
        Vector512<float> r5a = Vector512.Load(acc + 5 * lda), r5b = two ? Vector512.Load(acc + 5 * lda + 16) : default;
        Vector512<float> r6a = Vector512.Load(acc + 6 * lda), r6b = two ? Vector512.Load(acc + 6 * lda + 16) : default;
        Vector512<float> r7a = Vector512.Load(acc + 7 * lda), r7b = two ? Vector512.Load(acc + 7 * lda + 16) : default;
        float* p0 = src + off[0], p1 = src + off[1], p2 = src + off[2], p3 = src + off[3];
        float* p4 = src + off[4], p5 = src + off[5], p6 = src + off[6], p7 = src + off[7];
        for (int oh = 0; oh < outH; oh++)
        for (int ow = 0; ow < outW; ow++)
        {
            int i = (oh * wv + ow) * TS.Value;
            Vector512<float> b0 = Vector512.Load(dy);
            Vector512<float> b1 = two ? Vector512.Load(dy + 16) : default;
            Vector512<float> a;
            a = Vector512.Create(p0[i]); r0a = Avx512F.FusedMultiplyAdd(a, b0, r0a); if (two) r0b = Avx512F.FusedMultiplyAdd(a, b1, r0b);
            a = Vector512.Create(p1[i]); r1a = Avx512F.FusedMultiplyAdd(a, b0, r1a); if (two) r1b = Avx512F.FusedMultiplyAdd(a, b1, r1b);
            a = Vector512.Create(p2[i]); r2a = Avx512F.FusedMultiplyAdd(a, b0, r2a); if (two) r2b = Avx512F.FusedMultiplyAdd(a, b1, r2b);
            a = Vector512.Create(p3[i]); r3a = Avx512F.FusedMultiplyAdd(a, b0, r3a); if (two) r3b = Avx512F.FusedMultiplyAdd(a, b1, r3b);
            a = Vector512.Create(p4[i]); r4a = Avx512F.FusedMultiplyAdd(a, b0, r4a); if (two) r4b = Avx512F.FusedMultiplyAdd(a, b1, r4b);
            a = Vector512.Create(p5[i]); r5a = Avx512F.FusedMultiplyAdd(a, b0, r5a); if (two) r5b = Avx512F.FusedMultiplyAdd(a, b1, r5b);
            a = Vector512.Create(p6[i]); r6a = Avx512F.FusedMultiplyAdd(a, b0, r6a); if (two) r6b = Avx512F.FusedMultiplyAdd(a, b1, r6b);
            a = Vector512.Create(p7[i]); r7a = Avx512F.FusedMultiplyAdd(a, b0, r7a); if (two) r7b = Avx512F.FusedMultiplyAdd(a, b1, r7b);
            dy += ldd;
        }
        r0a.Store(acc + 0 * lda); if (two) r0b.Store(acc + 0 * lda + 16);
        r1a.Store(acc + 1 * lda); if (two) r1b.Store(acc + 1 * lda + 16);
        r2a.Store(acc + 2 * lda); if (two) r2b.Store(acc + 2 * lda + 16);
        r3a.Store(acc + 3 * lda); if (two) r3b.Store(acc + 3 * lda + 16);
        r4a.Store(acc + 4 * lda); if (two) r4b.Store(acc + 4 * lda + 16);
        r5a.Store(acc + 5 * lda); if (two) r5b.Store(acc + 5 * lda + 16);
        r6a.Store(acc + 6 * lda); if (two) r6b.Store(acc + 6 * lda + 16);
        r7a.Store(acc + 7 * lda); if (two) r7b.Store(acc + 7 * lda + 16);
    }

    /// <summary>Channels of a pixel-vector tile.</summary>
    internal const int Channels = 8;

    /// <summary>
    /// Pixel-vector tile (stride-1 convolutions with few output channels): out[r, q] = Σ_p w[p, r] · src[off[p] + q] for
    /// the 8 channels r and 32 consecutive flat pixels q, read as two vectors per tap; w holds 8 floats per tap; out rows
    /// are ldo apart. One broadcast feeds two FMAs, where the channel-lane tile with 16 channels has one per FMA.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Pixels(int taps, float* src, int* off, float* w, float* o, nint ldo)
    {
        Vector512<float> r0a = default, r0b = default, r1a = default, r1b = default;
        Vector512<float> r2a = default, r2b = default, r3a = default, r3b = default;
        Vector512<float> r4a = default, r4b = default, r5a = default, r5b = default;
        Vector512<float> r6a = default, r6b = default, r7a = default, r7b = default;
        for (int p = 0; p < taps; p++)
        {
            float* bp = src + off[p];
            Vector512<float> b0 = Vector512.Load(bp);
            Vector512<float> b1 = Vector512.Load(bp + 16);
            Vector512<float> a;
            a = Vector512.Create(w[0]); r0a = Avx512F.FusedMultiplyAdd(a, b0, r0a); r0b = Avx512F.FusedMultiplyAdd(a, b1, r0b);
            a = Vector512.Create(w[1]); r1a = Avx512F.FusedMultiplyAdd(a, b0, r1a); r1b = Avx512F.FusedMultiplyAdd(a, b1, r1b);
            a = Vector512.Create(w[2]); r2a = Avx512F.FusedMultiplyAdd(a, b0, r2a); r2b = Avx512F.FusedMultiplyAdd(a, b1, r2b);
            a = Vector512.Create(w[3]); r3a = Avx512F.FusedMultiplyAdd(a, b0, r3a); r3b = Avx512F.FusedMultiplyAdd(a, b1, r3b);
            a = Vector512.Create(w[4]); r4a = Avx512F.FusedMultiplyAdd(a, b0, r4a); r4b = Avx512F.FusedMultiplyAdd(a, b1, r4b);
            a = Vector512.Create(w[5]); r5a = Avx512F.FusedMultiplyAdd(a, b0, r5a); r5b = Avx512F.FusedMultiplyAdd(a, b1, r5b);
            a = Vector512.Create(w[6]); r6a = Avx512F.FusedMultiplyAdd(a, b0, r6a); r6b = Avx512F.FusedMultiplyAdd(a, b1, r6b);
            a = Vector512.Create(w[7]); r7a = Avx512F.FusedMultiplyAdd(a, b0, r7a); r7b = Avx512F.FusedMultiplyAdd(a, b1, r7b);
            w += Channels;
        }
        r0a.Store(o + 0 * ldo); r0b.Store(o + 0 * ldo + 16);
        r1a.Store(o + 1 * ldo); r1b.Store(o + 1 * ldo + 16);
        r2a.Store(o + 2 * ldo); r2b.Store(o + 2 * ldo + 16);
        r3a.Store(o + 3 * ldo); r3b.Store(o + 3 * ldo + 16);
        r4a.Store(o + 4 * ldo); r4b.Store(o + 4 * ldo + 16);
        r5a.Store(o + 5 * ldo); r5b.Store(o + 5 * ldo + 16);
        r6a.Store(o + 6 * ldo); r6b.Store(o + 6 * ldo + 16);
        r7a.Store(o + 7 * ldo); r7b.Store(o + 7 * ldo + 16);
    }

    /// <summary>
    /// Masked pixel-vector tile of <see cref="DirectConv"/>'s flat input gradient: out[r, q] = Σ_(t, co)
    /// w[t, co, r] · src[co·ld + q + shift_t] for the 8 channels r and 32 consecutive flat pixels q, where for each of
    /// the <paramref name="taps2"/> taps t, info holds (shift, uLo, uHi, vLo, vHi) and lane q reads only when its row
    /// uIdx[q] is in [uLo, uHi) and its column vIdx[q] in [vLo, vHi) (else zero). Every lane is loaded and the
    /// masked ones cleared (an AND: masked loads cost two more instructions each as the JIT emits them), so src must be
    /// readable at every shifted address. w holds 8 floats per (t, co), taps outer; out rows are ldo apart.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void PixelsMasked(int cout, int taps2, float* src, nint ld, int* info, int* uIdx, int* vIdx, float* w, float* o, nint ldo)
    {
        Vector512<float> r0a = default, r0b = default, r1a = default, r1b = default;
        Vector512<float> r2a = default, r2b = default, r3a = default, r3b = default;
        Vector512<float> r4a = default, r4b = default, r5a = default, r5b = default;
        Vector512<float> r6a = default, r6b = default, r7a = default, r7b = default;
        var u0 = Vector512.Load(uIdx); var u1 = Vector512.Load(uIdx + 16);
        var v0 = Vector512.Load(vIdx); var v1 = Vector512.Load(vIdx + 16);
        for (int t = 0; t < taps2; t++, info += 5)
        {
            var uLo = Vector512.Create(info[1]); var uHi = Vector512.Create(info[2]);
            var vLo = Vector512.Create(info[3]); var vHi = Vector512.Create(info[4]);
            var m0 = (Vector512.GreaterThanOrEqual(u0, uLo) & Vector512.LessThan(u0, uHi) & Vector512.GreaterThanOrEqual(v0, vLo) & Vector512.LessThan(v0, vHi)).AsSingle();
            var m1 = (Vector512.GreaterThanOrEqual(u1, uLo) & Vector512.LessThan(u1, uHi) & Vector512.GreaterThanOrEqual(v1, vLo) & Vector512.LessThan(v1, vHi)).AsSingle();
            float* bp = src + info[0];
            for (int co = 0; co < cout; co++)
            {
                Vector512<float> b0 = Vector512.Load(bp) & m0;
                Vector512<float> b1 = Vector512.Load(bp + 16) & m1;
                Vector512<float> a;
                a = Vector512.Create(w[0]); r0a = Avx512F.FusedMultiplyAdd(a, b0, r0a); r0b = Avx512F.FusedMultiplyAdd(a, b1, r0b);
                a = Vector512.Create(w[1]); r1a = Avx512F.FusedMultiplyAdd(a, b0, r1a); r1b = Avx512F.FusedMultiplyAdd(a, b1, r1b);
                a = Vector512.Create(w[2]); r2a = Avx512F.FusedMultiplyAdd(a, b0, r2a); r2b = Avx512F.FusedMultiplyAdd(a, b1, r2b);
                a = Vector512.Create(w[3]); r3a = Avx512F.FusedMultiplyAdd(a, b0, r3a); r3b = Avx512F.FusedMultiplyAdd(a, b1, r3b);
                a = Vector512.Create(w[4]); r4a = Avx512F.FusedMultiplyAdd(a, b0, r4a); r4b = Avx512F.FusedMultiplyAdd(a, b1, r4b);
                a = Vector512.Create(w[5]); r5a = Avx512F.FusedMultiplyAdd(a, b0, r5a); r5b = Avx512F.FusedMultiplyAdd(a, b1, r5b);
                a = Vector512.Create(w[6]); r6a = Avx512F.FusedMultiplyAdd(a, b0, r6a); r6b = Avx512F.FusedMultiplyAdd(a, b1, r6b);
                a = Vector512.Create(w[7]); r7a = Avx512F.FusedMultiplyAdd(a, b0, r7a); r7b = Avx512F.FusedMultiplyAdd(a, b1, r7b);
                w += Channels;
                bp += ld;
            }
        }
        r0a.Store(o + 0 * ldo); r0b.Store(o + 0 * ldo + 16);
        r1a.Store(o + 1 * ldo); r1b.Store(o + 1 * ldo + 16);
        r2a.Store(o + 2 * ldo); r2b.Store(o + 2 * ldo + 16);
        r3a.Store(o + 3 * ldo); r3b.Store(o + 3 * ldo + 16);
        r4a.Store(o + 4 * ldo); r4b.Store(o + 4 * ldo + 16);
        r5a.Store(o + 5 * ldo); r5b.Store(o + 5 * ldo + 16);
        r6a.Store(o + 6 * ldo); r6b.Store(o + 6 * ldo + 16);
        r7a.Store(o + 7 * ldo); r7b.Store(o + 7 * ldo + 16);
    }
}
