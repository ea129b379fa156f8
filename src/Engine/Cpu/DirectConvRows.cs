using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// The "row" form of <see cref="DirectConv"/>'s forward and weight gradient, for layers with few input channels and
/// output rows of 12–16 pixels (the first layer of an MNIST-sized CNN: 1 → 16 channels, 28×28 → 14×14). Each output
/// row is one 16-lane vector. The input's s × s polyphase components (as in the flat form) are stored per image on a
/// zero-bordered grid 16 floats wide, so that every tap reads one component at one constant shift and the border
/// supplies the zero padding: no lane masks at all. With one input channel the flat form's per-tap masks cost as much
/// as its multiply-adds, and its weight gradient transposed dy into channel lanes; here dy is read in place, row by row.
/// </summary>
internal static unsafe partial class DirectConv
{
    /// <summary>Settable so tests can run the other forms on geometries this one takes.</summary>
    internal static bool RowForm = true;

    /// <summary>Most input channels the row form takes (beyond, the flat form's masks are shared by enough channels).</summary>
    private const int RowFormMaxInChannels = 4;

    /// <summary>Floats per bordered component row: one vector.</summary>
    private const int RowPitch = 16;

    /// <summary>The bordered component layout of a geometry, or null when the row form does not take it.</summary>
    private sealed class RowLayout
    {
        /// <summary>Output grid, bordered rows per component, floats per component (with its border).</summary>
        public readonly int OutH, OutW, Rows, CompLen;
        /// <summary>Border rows above and columns left of the data (the most a tap reaches back).</summary>
        public readonly int Top, Left;
        /// <summary>Per tap (kh, kw): its component and its shift (rows·16 + columns) from the output pixel's cell.</summary>
        public readonly int[] Plane, Shift;

        private RowLayout(PolyLayout l, int top, int left, int bottom)
        {
            OutH = l.OutH; OutW = l.OutW;
            Top = top; Left = left;
            Rows = top + OutH + bottom;
            CompLen = Rows * RowPitch;
            Plane = (int[])l.Plane.Clone();
            Shift = new int[l.Taps2];
            for (int t = 0; t < l.Taps2; t++) Shift[t] = -l.ULo[t] * RowPitch - l.VLo[t];
        }

        /// <summary>The layout of a polyphase layout, or null when a bordered row would not fit one vector.</summary>
        private static RowLayout? Build(PolyLayout l)
        {
            // Tap t reads its component at row shift dh = −ULo[t] and column shift dw = −VLo[t].
            int dhMin = 0, dhMax = 0, dwMin = 0, dwMax = 0;
            for (int t = 0; t < l.Taps2; t++)
            {
                dhMin = Math.Min(dhMin, -l.ULo[t]); dhMax = Math.Max(dhMax, -l.ULo[t]);
                dwMin = Math.Min(dwMin, -l.VLo[t]); dwMax = Math.Max(dwMax, -l.VLo[t]);
            }
            // Every lane of an output row reads inside its own bordered row (columns right of the data are zero).
            return -dwMin + l.OutW + dwMax <= RowPitch ? new RowLayout(l, -dhMin, -dwMin, dhMax) : null;
        }

        /// <summary>The layout when the row form takes g (already taken by the direct path), else null; cached with g's PolyLayout.</summary>
        public static RowLayout? For(in Conv2dGeometry g)
        {
            if (!RowForm || g.InChannels > RowFormMaxInChannels || g.OutW < 12 || PolyLayout.For(g) is not { } l) return null;
            if (!Volatile.Read(ref l.BorderedKnown))
            {
                l.Bordered = Build(l);
                Volatile.Write(ref l.BorderedKnown, true);   // published after Bordered
            }
            return l.Bordered;
        }
    }

    /// <summary>Whether the forward and weight gradient of a geometry (already taken by the direct path) take the row form.</summary>
    internal static bool UsesRowForm(in Conv2dGeometry g) => RowLayout.For(g) != null;

    /// <summary>
    /// Writes image x [Cin, H, W] into its bordered components ([Cin][s·s][Rows][16], border already zero): input row
    /// r, column c goes to component (r mod s, c mod s), bordered cell (Top + r / s, Left + c / s). Rows are loaded
    /// with the lanes past W zero, so each stored vector writes zeros over the right border and the next row's left
    /// border, which stay zero; the components' slack (64 floats past the last) takes the last row's spill and the
    /// tiles' reads past the last row.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SplitBordered(float* x, float* comps, in Conv2dGeometry g, RowLayout rl)
    {
        int s = g.StrideH, h = g.Height, w = g.Width;
        long perChannel = (long)s * s * rl.CompLen;
        var l0 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(Math.Min(w, 16))).AsSingle();
        var l1 = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(w - 16)).AsSingle();
        var z = Vector512<float>.Zero;
        for (int ci = 0; ci < g.InChannels; ci++)
        {
            float* src = x + (long)ci * h * w;
            float* comp = comps + ci * perChannel + rl.Top * RowPitch + rl.Left;
            if (s == 1)
            {
                for (int r = 0; r < h; r++, src += w) Avx512F.MaskLoad(src, l0, z).Store(comp + r * RowPitch);
                continue;
            }
            // Input rows 2i and 2i + 1 go to row i of components (0, ·) and (1, ·).
            float* c1 = comp + 2L * rl.CompLen;
            for (int r = 0; r < h; r += 2, src += 2 * w, comp += RowPitch, c1 += RowPitch)
            {
                var a = Avx512F.MaskLoad(src, l0, z);
                var b = w > 16 ? Avx512F.MaskLoad(src + 16, l1, z) : z;
                Avx512F.PermuteVar16x32x2(a, EvenLanes, b).Store(comp);
                Avx512F.PermuteVar16x32x2(a, OddLanes, b).Store(comp + rl.CompLen);
                if (r + 1 == h) break;
                a = Avx512F.MaskLoad(src + w, l0, z);
                b = w > 16 ? Avx512F.MaskLoad(src + w + 16, l1, z) : z;
                Avx512F.PermuteVar16x32x2(a, EvenLanes, b).Store(c1);
                Avx512F.PermuteVar16x32x2(a, OddLanes, b).Store(c1 + rl.CompLen);
            }
        }
    }

    /// <summary>
    /// y = conv(x, w) + bias in the row form: per image, x split into bordered components, then per block of 8 output
    /// channels and pair of output rows one unmasked pixel-vector tile (8 channels × 32 lanes = two rows), its rows
    /// copied into y with the bias.
    /// </summary>
    private static void ForwardRows(float* px, float* pw, float* pb, float* py, in Conv2dGeometry g, RowLayout rl)
    {
        var geo = g;
        int cin = geo.InChannels, cout = geo.OutChannels, taps2 = geo.KernelH * geo.KernelW, taps = cin * taps2;
        int s = geo.StrideH, planes = s * s, outH = rl.OutH, outW = rl.OutW, np = outH * outW;
        const int cb = DirectConvTiles.Channels;
        int blocks = (cout + cb - 1) / cb;
        var wBuf = ScratchPool.Rent((long)blocks * taps * cb);
        float* wt = ScratchPool.Ptr(wBuf);
        PackChannelBlocks(wt, pw, cin, taps2, cout);
        // Tap (t, ci), in the packed weights' order: its component's offset plus its shift.
        var offBuf = ScratchPool.Rent(taps);
        int* off = (int*)ScratchPool.Ptr(offBuf);
        for (int t = 0; t < taps2; t++)
            for (int ci = 0; ci < cin; ci++)
                off[t * cin + ci] = (ci * planes + rl.Plane[t]) * rl.CompLen + rl.Shift[t];
        long compsLen = (long)cin * planes * rl.CompLen + 64;
        long inImage = (long)cin * geo.InPixels, outImage = (long)cout * np;
        var last = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(outW)).AsSingle();
        ForImageChunks(geo.Batch, (_, n0, n1) =>
        {
            var compBuf = ScratchPool.Rent(compsLen);
            var tileBuf = ScratchPool.Rent(cb * 32);
            float* comps = ScratchPool.Ptr(compBuf), o = ScratchPool.Ptr(tileBuf);
            new Span<float>(comps, (int)compsLen).Clear();
            for (int n = n0; n < n1; n++)
            {
                SplitBordered(px + n * inImage, comps, geo, rl);
                float* src0 = comps + rl.Top * RowPitch + rl.Left;
                for (int b = 0; b < blocks; b++)
                {
                    float* wb = wt + (long)b * taps * cb;
                    int rows = Math.Min(cb, cout - b * cb);
                    float* y0 = py + n * outImage + (long)b * cb * np;
                    for (int u = 0; u < outH; u += 2)
                    {
                        DirectConvTiles.Pixels(taps, src0 + u * RowPitch, off, wb, o, 32);
                        bool pair = u + 1 < outH;
                        for (int r = 0; r < rows; r++)
                        {
                            var bias = Vector512.Create(pb != null ? pb[b * cb + r] : 0f);
                            float* y = y0 + (long)r * np + u * outW;
                            // Whole vectors spill into the next row of this channel, written right after; a channel's
                            // last row is masked.
                            var first = Vector512.Load(o + r * 32) + bias;
                            if (pair) first.Store(y);
                            else Avx512F.MaskStore(y, last, first);
                            if (!pair) continue;
                            var second = Vector512.Load(o + r * 32 + 16) + bias;
                            if (u + 2 < outH) second.Store(y + outW);
                            else Avx512F.MaskStore(y + outW, last, second);
                        }
                    }
                }
            }
            ScratchPool.Return(tileBuf);
            ScratchPool.Return(compBuf);
        });
        ScratchPool.Return(offBuf);
        ScratchPool.Return(wBuf);
    }

    /// <summary>
    /// Packs w [Cout, Cin, kh·kw] as blocks of 8 output channels, [(kh, kw)][ci][8] each (zero past Cout), written in
    /// order by 8-channel gathers (scattered scalar writes cost as much as a tenth of a 16 → 32 convolution).
    /// </summary>
    private static void PackChannelBlocks(float* wt, float* pw, int cin, int taps2, int cout)
    {
        const int cb = DirectConvTiles.Channels;
        int blocks = (cout + cb - 1) / cb;
        var rowsOf8 = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * (cin * taps2);
        for (int b = 0; b < blocks; b++)
        {
            int c0 = b * cb, n8 = Math.Min(cb, cout - c0);
            float* dst = wt + (long)b * taps2 * cin * cb;
            float* src = pw + (long)c0 * cin * taps2;
            for (int t = 0; t < taps2; t++)
                for (int ci = 0; ci < cin; ci++, dst += cb)
                {
                    if (n8 == cb) Avx2.GatherVector256(src + ci * taps2 + t, rowsOf8, 4).Store(dst);
                    else
                        for (int c = 0; c < cb; c++) dst[c] = c < n8 ? src[(long)c * cin * taps2 + ci * taps2 + t] : 0f;
                }
        }
    }

    /// <summary>
    /// dw in the row form: dw[co, (ci, kh, kw)] = Σ_(n, u, v) dy[n, co, u, v] · component[u + dh, v + dw], with output
    /// pixels across the lanes (one output row per vector, dy read in place; the lanes past OutW are cleared in dy and
    /// in the component, so an infinite input pixel reaches only the taps that read it). Register tiles of 4 output
    /// channels by 4 taps accumulate over each image's rows, carried from image to image in per-thread scratch, and
    /// are summed across lanes at the end.
    /// </summary>
    private static void BackwardWeightRows(float* px, float* pdy, float* pdw, in Conv2dGeometry g, RowLayout rl)
    {
        var geo = g;
        int cin = geo.InChannels, cout = geo.OutChannels, taps2 = geo.KernelH * geo.KernelW, taps = cin * taps2;
        int s = geo.StrideH, planes = s * s, outH = rl.OutH, outW = rl.OutW, np = outH * outW;
        int coBlocks = (cout + 3) / 4, tapBlocks = (taps + 3) / 4;
        // Tap k = ci·taps2 + t (dw's column order): its component's offset plus its shift; padded to whole blocks
        // by repeating the last tap (whose repeated sums are dropped).
        var offBuf = ScratchPool.Rent(tapBlocks * 4);
        int* off = (int*)ScratchPool.Ptr(offBuf);
        for (int k = 0; k < tapBlocks * 4; k++)
        {
            int kk = Math.Min(k, taps - 1), ci = kk / taps2, t = kk % taps2;
            off[k] = (ci * planes + rl.Plane[t]) * rl.CompLen + rl.Shift[t];
        }
        long compsLen = (long)cin * planes * rl.CompLen + 64;
        long inImage = (long)cin * geo.InPixels, outImage = (long)cout * np;
        long accLen = (long)coBlocks * tapBlocks * 16 * 16;
        int threads = CpuThreads.InParallelRegion ? 1 : Math.Min(CpuThreads.Count, geo.Batch);
        var partials = new float[threads][];
        var lanes = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(outW)).AsSingle();
        ForImageChunks(geo.Batch, (c, n0, n1) =>
        {
            var compBuf = ScratchPool.Rent(compsLen);
            partials[c] = ScratchPool.Rent(accLen);
            float* comps = ScratchPool.Ptr(compBuf), acc = ScratchPool.Ptr(partials[c]);
            new Span<float>(comps, (int)compsLen).Clear();
            new Span<float>(acc, (int)accLen).Clear();
            for (int n = n0; n < n1; n++)
            {
                SplitBordered(px + n * inImage, comps, geo, rl);
                float* src0 = comps + rl.Top * RowPitch + rl.Left;
                float* dy0 = pdy + n * outImage;
                for (int cbk = 0; cbk < coBlocks; cbk++)
                {
                    int c0 = cbk * 4;
                    float* d0 = dy0 + (long)Math.Min(c0, cout - 1) * np, d1 = dy0 + (long)Math.Min(c0 + 1, cout - 1) * np;
                    float* d2 = dy0 + (long)Math.Min(c0 + 2, cout - 1) * np, d3 = dy0 + (long)Math.Min(c0 + 3, cout - 1) * np;
                    for (int kb = 0; kb < tapBlocks; kb++)
                    {
                        int* o = off + kb * 4;
                        WeightRowsTile(outH, outW, d0, d1, d2, d3, src0 + o[0], src0 + o[1], src0 + o[2], src0 + o[3], lanes,
                            acc + ((long)cbk * tapBlocks + kb) * 256);
                    }
                }
            }
            ScratchPool.Return(compBuf);
        });
        // dw[co, k] = Σ_threads Σ_lanes acc_t[co block, k block][co mod 4, k mod 4], threads in order.
        for (int co = 0; co < cout; co++)
            for (int k = 0; k < taps; k++)
            {
                long at = (((long)(co / 4) * tapBlocks + k / 4) * 16 + (co % 4) * 4 + k % 4) * 16;
                float sum = 0f;
                for (int t = 0; t < threads; t++) sum += Vector512.Sum(Vector512.Load(ScratchPool.Ptr(partials[t]) + at));
                pdw[(long)co * taps + k] = sum;
            }
        foreach (var p in partials) ScratchPool.Return(p);
        ScratchPool.Return(offBuf);
    }

    /// <summary>
    /// acc[i·4 + j] += Σ_u dy_i[u·outW .. +16) · x_j[u·16 .. +16) for the 4 dy rows i and 4 taps j, over the outH
    /// output rows, the lanes past outW cleared on both sides (they hold the next row's dy and component cells, and
    /// 0 · ∞ would be NaN). dy is read up to 16 floats past a row but the last.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightRowsTile(int outH, int outW, float* d0, float* d1, float* d2, float* d3,
        float* x0, float* x1, float* x2, float* x3, Vector512<float> lanes, float* acc)
    {
        var a00 = Vector512.Load(acc + 0 * 16); var a01 = Vector512.Load(acc + 1 * 16); var a02 = Vector512.Load(acc + 2 * 16); var a03 = Vector512.Load(acc + 3 * 16);
        var a10 = Vector512.Load(acc + 4 * 16); var a11 = Vector512.Load(acc + 5 * 16); var a12 = Vector512.Load(acc + 6 * 16); var a13 = Vector512.Load(acc + 7 * 16);
        var a20 = Vector512.Load(acc + 8 * 16); var a21 = Vector512.Load(acc + 9 * 16); var a22 = Vector512.Load(acc + 10 * 16); var a23 = Vector512.Load(acc + 11 * 16);
        var a30 = Vector512.Load(acc + 12 * 16); var a31 = Vector512.Load(acc + 13 * 16); var a32 = Vector512.Load(acc + 14 * 16); var a33 = Vector512.Load(acc + 15 * 16);
        var z = Vector512<float>.Zero;
        for (int u = 0; u < outH; u++)
        {
            int q = u * outW, r = u * RowPitch;
            // Whole rows cleared past OutW by an AND (one instruction with the load; the JIT's masked loads take
            // three); the last row by masked loads, as it may end the tensor.
            Vector512<float> y0, y1, y2, y3;
            if (u + 1 < outH)
            {
                y0 = Vector512.Load(d0 + q) & lanes; y1 = Vector512.Load(d1 + q) & lanes;
                y2 = Vector512.Load(d2 + q) & lanes; y3 = Vector512.Load(d3 + q) & lanes;
            }
            else
            {
                y0 = Avx512F.MaskLoad(d0 + q, lanes, z); y1 = Avx512F.MaskLoad(d1 + q, lanes, z);
                y2 = Avx512F.MaskLoad(d2 + q, lanes, z); y3 = Avx512F.MaskLoad(d3 + q, lanes, z);
            }
            var x = Vector512.Load(x0 + r) & lanes;
            a00 = Avx512F.FusedMultiplyAdd(y0, x, a00); a10 = Avx512F.FusedMultiplyAdd(y1, x, a10); a20 = Avx512F.FusedMultiplyAdd(y2, x, a20); a30 = Avx512F.FusedMultiplyAdd(y3, x, a30);
            x = Vector512.Load(x1 + r) & lanes;
            a01 = Avx512F.FusedMultiplyAdd(y0, x, a01); a11 = Avx512F.FusedMultiplyAdd(y1, x, a11); a21 = Avx512F.FusedMultiplyAdd(y2, x, a21); a31 = Avx512F.FusedMultiplyAdd(y3, x, a31);
            x = Vector512.Load(x2 + r) & lanes;
            a02 = Avx512F.FusedMultiplyAdd(y0, x, a02); a12 = Avx512F.FusedMultiplyAdd(y1, x, a12); a22 = Avx512F.FusedMultiplyAdd(y2, x, a22); a32 = Avx512F.FusedMultiplyAdd(y3, x, a32);
            x = Vector512.Load(x3 + r) & lanes;
            a03 = Avx512F.FusedMultiplyAdd(y0, x, a03); a13 = Avx512F.FusedMultiplyAdd(y1, x, a13); a23 = Avx512F.FusedMultiplyAdd(y2, x, a23); a33 = Avx512F.FusedMultiplyAdd(y3, x, a33);
        }
        a00.Store(acc + 0 * 16); a01.Store(acc + 1 * 16); a02.Store(acc + 2 * 16); a03.Store(acc + 3 * 16);
        a10.Store(acc + 4 * 16); a11.Store(acc + 5 * 16); a12.Store(acc + 6 * 16); a13.Store(acc + 7 * 16);
        a20.Store(acc + 8 * 16); a21.Store(acc + 9 * 16); a22.Store(acc + 10 * 16); a23.Store(acc + 11 * 16);
        a30.Store(acc + 12 * 16); a31.Store(acc + 13 * 16); a32.Store(acc + 14 * 16); a33.Store(acc + 15 * 16);
    }
}
