using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

public sealed unsafe partial class CpuKernels
{
    // Edge of the square tiles of the transpose path: 32x32 floats = 4 KiB per side, so source rows and
    // destination lines of a tile stay in L1 while it is written.
    private const int TransposeTile = 32;
    // Tiles are visited in square blocks of this edge, so the rows of x and y a block touches (and their pages)
    // stay in L2 and the TLB while it is transposed.
    private const int TransposeBlock = 128;
    // A row stride that is a multiple of this many floats (1 KiB) maps the rows of a tile onto a few L1 sets.
    private const int ConflictStride = 256;
    // Below this many elements a layout copy runs on the calling thread.
    private const int ParallelCopyElements = 1 << 15;

    /// <inheritdoc/>
    public void Permute(Buf x, int[] shape, int[] perm, Buf y)
    {
        int n = ShapeUtil.Numel(shape);
        if (n == 0) return;
        var (dims, p) = ShapeUtil.CoalescePermutation(shape, perm);
        int r = dims.Length;
        if (r <= 1) { Copy(x, y, n); return; }
        float* px = P(x), py = P(y);
        var inStrides = ShapeUtil.Strides(dims);
        var outSizes = new int[r];
        for (int k = 0; k < r; k++) outSizes[k] = dims[p[k]];
        var outStrides = ShapeUtil.Strides(outSizes);

        if (p[r - 1] == r - 1)
        {
            // The innermost dimension stays innermost: copy contiguous runs, walking the outer output
            // dimensions with an odometer over their input strides.
            int inner = dims[r - 1], rows = n / inner, outerRank = r - 1;
            var sizes = outSizes[..outerRank];
            var xs = new int[outerRank];
            for (int k = 0; k < outerRank; k++) xs[k] = inStrides[p[k]];
            CpuThreads.For(rows, Math.Max(1, ParallelCopyElements / inner), (s, e) =>
            {
                Span<int> ctr = stackalloc int[outerRank];
                long xo = Unravel(s, sizes, xs, ctr);
                for (int row = s; row < e; row++)
                {
                    CopyRun(px + xo, py + (long)row * inner, inner);
                    xo = Step(ctr, sizes, xs, xo);
                }
            });
            return;
        }

        // General case: a batch of 2-D transposes between input dimension b (innermost in y) and the
        // innermost input dimension a (innermost in x), done in tiles; other dimensions are the batch.
        int ka = Array.IndexOf(p, r - 1), b = p[r - 1];
        int na = dims[r - 1], nb = dims[b];
        long sxb = inStrides[b], sya = outStrides[ka];
        int otherRank = r - 2;
        var oSizes = new int[otherRank]; var oxs = new int[otherRank]; var oys = new int[otherRank];
        for (int k = 0, q = 0; k < r - 1; k++)
        {
            if (k == ka) continue;
            oSizes[q] = outSizes[k]; oxs[q] = inStrides[p[k]]; oys[q] = outStrides[k]; q++;
        }
        const int S = TransposeBlock;
        bool buffered = sxb % ConflictStride == 0 || sya % ConflictStride == 0;
        int others = n / (na * nb), blocksB = (nb + S - 1) / S, blocksA = (na + S - 1) / S;
        int items = others * blocksB * blocksA;
        CpuThreads.For(items, Math.Max(1, ParallelCopyElements / (S * S)), (s, e) =>
        {
            float* tile = stackalloc float[TransposeTile * TransposeTile];
            for (int it = s; it < e; it++)
            {
                int o = it / (blocksB * blocksA), bb = it / blocksA % blocksB, ba = it % blocksA;
                long xb = 0, yb = 0;
                int rem = o;
                for (int q = otherRank - 1; q >= 0; q--)
                {
                    int c = rem % oSizes[q]; rem /= oSizes[q];
                    xb += (long)c * oxs[q]; yb += (long)c * oys[q];
                }
                int bEnd = Math.Min(nb, (bb + 1) * S), aEnd = Math.Min(na, (ba + 1) * S);
                for (int b0 = bb * S; b0 < bEnd; b0 += TransposeTile)
                    for (int a0 = ba * S; a0 < aEnd; a0 += TransposeTile)
                        TransposeTileBlock(px + xb, sxb, py + yb, sya, b0, Math.Min(bEnd, b0 + TransposeTile), a0, Math.Min(aEnd, a0 + TransposeTile), buffered ? tile : null);
            }
        });
    }

    /// <summary>
    /// y[ia*sya + ib] = x[ib*sxb + ia] for ib in [b0, b1), ia in [a0, a1), with 8x8 register transposes. Given a
    /// <paramref name="tile"/> buffer, a whole tile goes through it (transposes into the contiguous buffer, then full-row
    /// copies out): with power-of-two strides the strided rows of a tile all map to one L1 set and thrash it, which
    /// costs more than the extra pass; otherwise writing y directly is faster.
    /// </summary>
    private static void TransposeTileBlock(float* x, long sxb, float* y, long sya, int b0, int b1, int a0, int a1, float* tile)
    {
        const int T = TransposeTile;
        if (tile != null && Avx.IsSupported && b1 - b0 == T && a1 - a0 == T)
        {
            for (int tb = 0; tb < T; tb += 8)
                for (int ta = 0; ta < T; ta += 8)
                    Transpose8x8(x + (b0 + tb) * sxb + a0 + ta, sxb, tile + ta * T + tb, T);
            for (int r = 0; r < T; r++) CopyRun(tile + r * T, y + (a0 + r) * sya + b0, T);
            return;
        }
        int ib = b0;
        if (Avx.IsSupported)
        {
            for (; ib + 8 <= b1; ib += 8)
            {
                int ia = a0;
                for (; ia + 8 <= a1; ia += 8) Transpose8x8(x + ib * sxb + ia, sxb, y + ia * sya + ib, sya);
                for (; ia < a1; ia++)
                    for (int t = ib; t < ib + 8; t++) y[ia * sya + t] = x[t * sxb + ia];
            }
        }
        for (; ib < b1; ib++)
        {
            float* xs = x + ib * sxb;
            float* yd = y + ib;
            for (int ia = a0; ia < a1; ia++) yd[ia * sya] = xs[ia];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, long ss, float* dst, long ds)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + ss);
        var r2 = Avx.LoadVector256(src + 2 * ss); var r3 = Avx.LoadVector256(src + 3 * ss);
        var r4 = Avx.LoadVector256(src + 4 * ss); var r5 = Avx.LoadVector256(src + 5 * ss);
        var r6 = Avx.LoadVector256(src + 6 * ss); var r7 = Avx.LoadVector256(src + 7 * ss);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ds, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ds, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ds, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ds, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ds, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ds, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ds, Avx.Permute2x128(u3, u7, 0x31));
    }

    /// <summary>Sets the odometer to linear index <paramref name="linear"/> and returns its offset.</summary>
    private static long Unravel(int linear, int[] sizes, int[] strides, Span<int> ctr)
    {
        long off = 0;
        for (int k = sizes.Length - 1; k >= 0; k--)
        {
            ctr[k] = linear % sizes[k]; linear /= sizes[k];
            off += (long)ctr[k] * strides[k];
        }
        return off;
    }

    /// <summary>Advances the odometer by one and returns the new offset.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Step(Span<int> ctr, int[] sizes, int[] strides, long off)
    {
        for (int k = sizes.Length - 1; k >= 0; k--)
        {
            off += strides[k];
            if (++ctr[k] < sizes[k]) return off;
            off -= (long)strides[k] * sizes[k];
            ctr[k] = 0;
        }
        return off;
    }

    /// <summary>
    /// Copies a run of floats (buffers do not overlap). Short runs, e.g. the 30-odd-float rows of im2col, use inline
    /// vector moves with an overlapping last vector; a library copy call would cost more than the copy itself.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyRun(float* src, float* dst, long len)
    {
        if (len >= 256) { Buffer.MemoryCopy(src, dst, len * sizeof(float), len * sizeof(float)); return; }
        int n = (int)len;
        if (Vector512.IsHardwareAccelerated && n >= 16)
        {
            int i = 0;
            for (; i <= n - 16; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
            if (i < n) Vector512.Store(Vector512.Load(src + n - 16), dst + n - 16);
            return;
        }
        if (Vector256.IsHardwareAccelerated && n >= 8)
        {
            int i = 0;
            for (; i <= n - 8; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
            if (i < n) Vector256.Store(Vector256.Load(src + n - 8), dst + n - 8);
            return;
        }
        for (int i = 0; i < n; i++) dst[i] = src[i];
    }

    /// <summary>dst[i] += src[i] for a run (buffers do not overlap), with inline vector loops for the same reason as <see cref="CopyRun"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRun(float* src, float* dst, int len)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= len - 16; i += 16) Vector512.Store(Vector512.Load(dst + i) + Vector512.Load(src + i), dst + i);
        if (Vector256.IsHardwareAccelerated)
            for (; i <= len - 8; i += 8) Vector256.Store(Vector256.Load(dst + i) + Vector256.Load(src + i), dst + i);
        for (; i < len; i++) dst[i] += src[i];
    }

    /// <inheritdoc/>
    public void SliceCopy(Buf x, Buf y, int outer, int dimIn, int inner, int start, int step, int count)
    {
        if ((long)outer * count * inner == 0) return;
        float* px = P(x), py = P(y);
        if (step == 1)
        {
            long block = (long)count * inner;
            CpuThreads.For(outer, (int)Math.Max(1, ParallelCopyElements / block), (s, e) =>
            {
                for (int o = s; o < e; o++) CopyRun(px + ((long)o * dimIn + start) * inner, py + o * block, block);
            });
            return;
        }
        CpuThreads.For(outer * count, Math.Max(1, ParallelCopyElements / inner), (s, e) =>
        {
            for (int t = s; t < e; t++)
            {
                int o = t / count, j = t % count;
                CopyRun(px + ((long)o * dimIn + start + (long)j * step) * inner, py + (long)t * inner, inner);
            }
        });
    }

    /// <inheritdoc/>
    public void SliceScatter(Buf x, Buf y, int outer, int dimOut, int inner, int start, int step, int count)
    {
        if ((long)outer * count * inner == 0) return;
        float* px = P(x), py = P(y);
        if (step == 1)
        {
            long block = (long)count * inner;
            CpuThreads.For(outer, (int)Math.Max(1, ParallelCopyElements / block), (s, e) =>
            {
                for (int o = s; o < e; o++) CopyRun(px + o * block, py + ((long)o * dimOut + start) * inner, block);
            });
            return;
        }
        CpuThreads.For(outer * count, Math.Max(1, ParallelCopyElements / inner), (s, e) =>
        {
            for (int t = s; t < e; t++)
            {
                int o = t / count, j = t % count;
                CopyRun(px + (long)t * inner, py + ((long)o * dimOut + start + (long)j * step) * inner, inner);
            }
        });
    }

    /// <inheritdoc/>
    public void IndexSelect(Buf x, Buf y, int outer, int dimIn, int inner, int[] indices)
    {
        int count = indices.Length;
        if ((long)outer * count * inner == 0) return;
        float* px = P(x), py = P(y);
        CpuThreads.For(outer * count, Math.Max(1, ParallelCopyElements / inner), (s, e) =>
        {
            for (int t = s; t < e; t++)
            {
                int o = t / count, j = t % count;
                CopyRun(px + ((long)o * dimIn + indices[j]) * inner, py + (long)t * inner, inner);
            }
        });
    }

    /// <inheritdoc/>
    public void IndexAdd(Buf x, Buf y, int outer, int dimOut, int inner, int[] indices)
    {
        int count = indices.Length;
        if ((long)outer * count * inner == 0) return;
        float* px = P(x), py = P(y);
        // Only the outer dimension is split: repeated indices within one outer slice write the same rows.
        CpuThreads.For(outer, (int)Math.Max(1, ParallelCopyElements / ((long)count * inner)), (s, e) =>
        {
            for (int o = s; o < e; o++)
                for (int j = 0; j < count; j++)
                    AddRun(px + ((long)o * count + j) * inner, py + ((long)o * dimOut + indices[j]) * inner, inner);
        });
    }
}
