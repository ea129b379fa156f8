using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// Direct convolution for narrow layers (at most 64 output channels, the networks certified training uses): output
/// channels across the AVX-512 lanes, image values broadcast straight from a zero-padded copy of each image. The
/// im2col + GEMM path has to pack a [Cin·k·k, pixels] panel for every image, and with 16–32 output channels each packed
/// float feeds only one or two vector FMAs, so packing cost as much as the multiply-adds; here nothing is packed.
/// <para>
/// The padded copy is laid out Wv·s floats wide, Wv = ceil((W + 2·pad) / s), with its rows grouped by their residue
/// mod s (padded row r stored at (r mod s)·Hu + r / s), so that output pixel (oh, ow) reads the image at flat index
/// (oh·Wv + ow)·s + offset(tap): every output row is Wv "flat" pixels, of which the last Wv − OutW are padding whose
/// results the forward drops on its way into y (and the weight gradient never visits). A forward tile is then 14
/// consecutive flat pixels, each tap one offset from a table and each pixel a constant displacement s apart.
/// </para>
/// Work is split by images (one contiguous chunk per thread, each with its own scratch); results do not depend on
/// the thread count except the weight gradient, whose per-thread partial sums are added in a fixed order.
/// <para>
/// The forward and the input gradient take their "flat" forms (output pixels across the lanes, image after image:
/// DirectConvForwardFlat.cs, DirectConvInputFlat.cs) whenever the input fits the output grid, as in every padded
/// layer of the certified-training CNNs; the per-image forms here serve the other geometries, and the weight
/// gradient. Layers with at most 4 input channels and output rows of 12–16 pixels (an MNIST-sized first layer) take
/// the row form for the forward and the weight gradient (DirectConvRows.cs).
/// </para>
/// </summary>
internal static unsafe partial class DirectConv
{
    /// <summary>Most channels across the lanes: output channels (forward, weight gradient), input channels (input gradient).</summary>
    internal const int MaxChannels = 64;

    // Per-image scratch above this many floats (the padded image plus the flat output) goes to the GEMM path.
    private const long MaxImageScratch = 1 << 20;

    /// <summary>Settable so tests can compare this path with the GEMM path on the same machine.</summary>
    internal static bool Enabled = true;

    /// <summary>Whether the CPU has the AVX-512 FMA these kernels are written in.</summary>
    internal static bool Supported => Avx512F.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>Whether a geometry is taken by this path: ungrouped, equal strides 1 or 2, at most 64 output channels.</summary>
    internal static bool Applies(in Conv2dGeometry g)
    {
        if (!Enabled || !Supported || g.Groups != 1 || g.StrideH != g.StrideW || g.StrideH is not (1 or 2)) return false;
        if (g.OutChannels > MaxChannels || g.OutChannels < 1 || g.InChannels < 1 || g.Batch < 1 || g.OutH < 1 || g.OutW < 1) return false;
        if (g.KernelH * g.KernelW == 1 && g.StrideH == 1 && g.PadH == 0 && g.PadW == 0) return false;   // 1x1: the GEMM reads the image as is
        // A cheap size check first, so that huge geometries never build (or overflow) a layout.
        long padded = (long)g.InChannels * (g.Height + 2L * g.PadH + g.StrideH) * (g.Width + 2L * g.PadW + g.StrideW);
        if (padded > MaxImageScratch || (long)g.InChannels * g.KernelH * g.KernelW > MaxImageScratch) return false;
        var l = Layout.For(g);
        return l.ImageLen + (long)l.FlatRows * Pad(g.OutChannels) <= MaxImageScratch;
    }

    /// <summary>Output channels rounded up to whole 16-lane vectors.</summary>
    private static int Pad(int channels) => (channels + 15) & ~15;

    /// <summary>
    /// The padded-image layout and tap offsets of a geometry (batch and output channels do not matter), cached: a
    /// training loop runs the same few convolutions over and over.
    /// </summary>
    private sealed class Layout
    {
        private static readonly ConcurrentDictionary<Conv2dGeometry, Layout> Cache = new();

        public static Layout For(in Conv2dGeometry g)
        {
            var key = new Conv2dGeometry(1, g.InChannels, g.Height, g.Width, 1, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.DilationH, g.DilationW, 1);
            if (Cache.TryGetValue(key, out var l)) return l;
            if (Cache.Count >= 64) Cache.Clear();
            return Cache.GetOrAdd(key, k => new Layout(k));
        }

        /// <summary>Stride; flat pixels per output row; padded row length (Wv·s); rows per residue class; one channel plane.</summary>
        public readonly int S, Wv, Wq, Hu, Plane;
        /// <summary>Flat output pixels (OutH·Wv), that rounded up to whole tiles, and to whole 16-pixel transposes.</summary>
        public readonly int Flat, FlatRows, FlatT;
        /// <summary>Taps (Cin·k·k) and that rounded up to whole weight-gradient tiles.</summary>
        public readonly int Taps, TapsPadded;
        /// <summary>
        /// The blocks of 16 flat output pixels that hold at least one real pixel: the first flat pixel, the dense
        /// output index (oh·OutW + ow) of its first real pixel, the lanes that are real pixels (Keep) and the lanes
        /// they occupy once packed together (Store: the first popcount(Keep)).
        /// </summary>
        public readonly (int Q0, int Dense, Vector512<float> Keep, Vector512<float> Store)[] Blocks;
        /// <summary>Floats of one padded image, with the slack the last tile reads past it (zero).</summary>
        public readonly long ImageLen;
        /// <summary>Offset of each tap (ci, kh, kw) in the padded image; TapsPadded entries, the extra ones 0.</summary>
        public readonly int* Offsets;
        private readonly int[] _offsets, _rowStartArray;
        private readonly int* _rowStarts;

        private Layout(in Conv2dGeometry g)
        {
            S = g.StrideH;
            Wv = (g.Width + 2 * g.PadW + S - 1) / S;
            Wq = Wv * S;
            Hu = (g.Height + 2 * g.PadH + S - 1) / S;
            Plane = S * Hu * Wq;
            Flat = g.OutH * Wv;
            FlatRows = (Flat + DirectConvTiles.Rows - 1) / DirectConvTiles.Rows * DirectConvTiles.Rows;
            FlatT = (FlatRows + 15) & ~15;
            Taps = g.InChannels * g.KernelH * g.KernelW;
            TapsPadded = (Taps + DirectConvTiles.Taps - 1) / DirectConvTiles.Taps * DirectConvTiles.Taps;
            _offsets = GC.AllocateArray<int>(TapsPadded, pinned: true);
            Offsets = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _offsets[0]);
            int k = 0;
            for (int c = 0; c < g.InChannels; c++)
                for (int i = 0; i < g.KernelH; i++)
                    for (int j = 0; j < g.KernelW; j++)
                        _offsets[k++] = c * Plane + Row(i * g.DilationH) * Wq + j * g.DilationW;
            // Where each image row starts in a channel plane (an integer division per row would cost more than its copy).
            _rowStartArray = GC.AllocateArray<int>(Math.Max(1, g.Height), pinned: true);
            _rowStarts = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _rowStartArray[0]);
            for (int i = 0; i < g.Height; i++) _rowStartArray[i] = Row(i + g.PadH) * Wq + g.PadW;
            long reach = (long)(FlatRows - 1) * S + _offsets[Taps - 1] + 1;
            ImageLen = Math.Max((long)g.InChannels * Plane, reach);
            ImageLen = (ImageLen + 15) & ~15L;
            var blocks = new List<(int, int, Vector512<float>, Vector512<float>)>();
            var keep = new int[16];
            for (int q0 = 0; q0 < Flat; q0 += 16)
            {
                int count = 0, dense = -1;
                for (int j = 0; j < 16; j++)
                {
                    int oh = (q0 + j) / Wv, ow = (q0 + j) % Wv;
                    keep[j] = q0 + j < Flat && ow < g.OutW ? -1 : 0;
                    if (keep[j] != 0 && count++ == 0) dense = oh * g.OutW + ow;
                }
                if (count > 0)
                    blocks.Add((q0, dense, Vector512.Create(keep).AsSingle(), Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(count)).AsSingle()));
            }
            Blocks = [.. blocks];
        }

        /// <summary>Where padded row r is stored: rows of one residue mod s together, in order.</summary>
        private int Row(int r) => r % S * Hu + r / S;

        /// <summary>Copies image x [Cin, H, W] into the interior of a padded image whose border is already zero.</summary>
        public void Fill(float* x, float* pad, in Conv2dGeometry g)
        {
            int* rows = _rowStarts;
            int w = g.Width, h = g.Height;
            var copy = new RowCopy(w);
            for (int c = 0; c < g.InChannels; c++)
            {
                float* src = x + (long)c * h * w;
                float* dst = pad + (long)c * Plane;
                for (int i = 0; i < h; i++) copy.Run(src + i * w, dst + rows[i]);
            }
        }
    }

    /// <summary>
    /// Copies rows of one length n (dst[i] = src[i] + bias, i &lt; n) without touching the floats after them: rows here
    /// are short (7–28 floats) and there are hundreds per image, so the tail mask is made once per run of rows and each
    /// row is a few vector moves rather than a library call.
    /// </summary>
    private readonly struct RowCopy
    {
        private readonly int _full, _n;
        private readonly Vector512<float> _tail;

        public RowCopy(int n)
        {
            _n = n;
            _full = n & ~15;
            _tail = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(n - _full)).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Run(float* src, float* dst, float bias = 0f)
        {
            var b = Vector512.Create(bias);
            int i = 0;
            for (; i < _full; i += 16) Vector512.Store(Vector512.Load(src + i) + b, dst + i);
            if (i < _n) Avx512F.MaskStore(dst + i, _tail, Avx512F.MaskLoad(src + i, _tail, Vector512<float>.Zero) + b);
        }
    }

    /// <summary>Runs body(first image, end image) over one contiguous chunk of images per thread.</summary>
    private static void ForImageChunks(int batch, Action<int, int, int> body)
    {
        int threads = CpuThreads.InParallelRegion ? 1 : Math.Min(CpuThreads.Count, batch);
        if (threads <= 1) { body(0, 0, batch); return; }
        CpuThreads.ForEach(threads, c => body(c, (int)((long)c * batch / threads), (int)((long)(c + 1) * batch / threads)));
    }

    /// <summary>
    /// Packs w [Cout, taps] as TW-wide panels (32 channels, the last one 16 or 32), each [taps, TW], zero past Cout.
    /// </summary>
    private static void PackPanels(float* dst, float* w, int taps, int channels)
    {
        int cp = Pad(channels);
        for (int c0 = 0; c0 < cp; c0 += 32)
        {
            int tw = Math.Min(32, cp - c0);
            float* panel = dst + (long)c0 * taps;
            for (int k = 0; k < taps; k++)
                for (int c = 0; c < tw; c++)
                    panel[k * tw + c] = c0 + c < channels ? w[(long)(c0 + c) * taps + k] : 0f;
        }
    }

    /// <summary>
    /// flat[q, c] = Σ_k pad[q·s + offsets[k]] · panels[k, c] for q &lt; flatRows (a multiple of the tile rows) and c &lt; cp.
    /// </summary>
    private static void Tiles(int taps, float* pad, int* offsets, int s, float* panels, int cp, int flatRows, float* flat)
    {
        for (int c0 = 0; c0 < cp; c0 += 32)
        {
            bool wide = cp - c0 >= 32;
            float* panel = panels + (long)c0 * taps;
            for (int q0 = 0; q0 < flatRows; q0 += DirectConvTiles.Rows)
            {
                float* src = pad + (long)q0 * s;
                float* o = flat + (long)q0 * cp + c0;
                if (wide)
                {
                    if (s == 1) DirectConvTiles.Forward<G32, G1>(taps, src, offsets, panel, 32, o, cp);
                    else DirectConvTiles.Forward<G32, G2>(taps, src, offsets, panel, 32, o, cp);
                }
                else
                {
                    if (s == 1) DirectConvTiles.Forward<G16, G1>(taps, src, offsets, panel, 16, o, cp);
                    else DirectConvTiles.Forward<G16, G2>(taps, src, offsets, panel, 16, o, cp);
                }
            }
        }
    }

    /// <summary>y = conv(x, w) + bias (bias may be null); x [N, Cin, H, W], w [Cout, Cin, kh, kw], y [N, Cout, OutH, OutW].</summary>
    public static void Forward(float* px, float* pw, float* pb, float* py, in Conv2dGeometry g)
    {
        var geo = g;
        if (RowLayout.For(geo) is { } rows)
        {
            ForwardRows(px, pw, pb, py, geo, rows);
            return;
        }
        if (FlatForward && PolyLayout.For(geo) is { } poly)
        {
            ForwardFlat(px, pw, pb, py, geo, poly);
            return;
        }
        var l = Layout.For(geo);
        int cout = geo.OutChannels, cp = Pad(cout), taps = l.Taps, np = geo.OutPixels;
        var wBuf = ScratchPool.Rent((long)taps * cp + cp);
        float* wt = ScratchPool.Ptr(wBuf), bias = wt + (long)taps * cp;
        PackPanels(wt, pw, taps, cout);
        for (int c = 0; c < cp; c++) bias[c] = pb != null && c < cout ? pb[c] : 0f;
        long inImage = (long)geo.InChannels * geo.InPixels, outImage = (long)cout * np;
        ForImageChunks(geo.Batch, (_, n0, n1) =>
        {
            var padBuf = ScratchPool.Rent(l.ImageLen);
            var outBuf = ScratchPool.Rent((long)l.FlatT * cp);
            float* pad = ScratchPool.Ptr(padBuf), flat = ScratchPool.Ptr(outBuf);
            new Span<float>(pad, (int)l.ImageLen).Clear();
            for (int n = n0; n < n1; n++)
            {
                l.Fill(px + n * inImage, pad, geo);
                Tiles(taps, pad, l.Offsets, l.S, wt, cp, l.FlatRows, flat);
                // Each block of 16 flat pixels, transposed, loses its padding pixels on the way into y (bias added).
                float* y = py + n * outImage;
                foreach (var blk in l.Blocks)
                    for (int c0 = 0; c0 < cout; c0 += 16)
                        GemmPack.Transpose16CompressStore(flat + (long)blk.Q0 * cp + c0, cp, Math.Min(16, cout - c0), y + (long)c0 * np + blk.Dense, np, bias + c0, blk.Keep, blk.Store);
            }
            ScratchPool.Return(outBuf);
            ScratchPool.Return(padBuf);
        });
        ScratchPool.Return(wBuf);
    }

    /// <summary>
    /// Whether the input gradient of a geometry is taken by this path: ungrouped, undilated, equal strides 1 or 2,
    /// 8 to 64 input channels (they take the lanes; fewer would leave most of them idle).
    /// </summary>
    internal static bool AppliesBackwardInput(in Conv2dGeometry g)
    {
        if (!Enabled || !Supported || g.Groups != 1 || g.StrideH != g.StrideW || g.StrideH is not (1 or 2)) return false;
        if (g.DilationH != 1 || g.DilationW != 1 || g.InChannels is < 8 or > MaxChannels) return false;
        if (g.OutChannels < 1 || g.Batch < 1 || g.OutH < 1 || g.OutW < 1 || g.Height < 1 || g.Width < 1) return false;
        long windows = (long)g.StrideW * g.OutChannels * (g.Height / g.StrideH + g.KernelH + 1) * (g.Width / g.StrideW + g.KernelW + 1);
        if (windows > MaxImageScratch || (long)g.OutChannels * g.KernelH * g.KernelW > MaxImageScratch) return false;
        var l = BackLayout.For(g);
        return l.ImageLen + (long)l.Phases.Length * l.MaxFlatRows * Pad(g.InChannels) <= MaxImageScratch;
    }

    /// <summary>
    /// The input gradient as s·s stride-1 convolutions of dy, one per residue (rh, rw) of the input pixel mod s:
    /// dx[ci, s·u + rh − pad, s·v + rw − pad] = Σ_{co, jh, jw} w[co, ci, rh + s·jh, rw + s·jw] · dy[co, u − jh, v − jw]
    /// (dy zero outside its bounds). Each residue computes only the input pixels it owns, from a zero-padded window of
    /// dy per column residue exactly as wide as that residue reads (its outputs plus its taps − 1), so flat rows waste
    /// only the taps − 1 columns.
    /// </summary>
    private sealed class BackLayout
    {
        private static readonly ConcurrentDictionary<Conv2dGeometry, BackLayout> Cache = new();

        public static BackLayout For(in Conv2dGeometry g)
        {
            var key = new Conv2dGeometry(1, g.InChannels, g.Height, g.Width, g.OutChannels, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, 1, 1, 1);
            if (Cache.TryGetValue(key, out var l)) return l;
            if (Cache.Count >= 64) Cache.Clear();
            return Cache.GetOrAdd(key, k => new BackLayout(k));
        }

        /// <summary>
        /// One residue class of input pixels: its u and v ranges, taps per axis, its column residue's dy window (Wp
        /// wide, at Start in the scratch), its flat sizes and its tap offsets in the window.
        /// </summary>
        public sealed class Phase
        {
            public int Rh, Rw, U0, U1, V0, V1, Mh, Mw, Taps, Wp, Flat, FlatRows;
            public long Start;
            public int[] OffsetArray = [];
            public int* Offsets;
            /// <summary>
            /// The flat form's taps (jh, jw), 5 ints each: dy's shift from the output's flat index on dy's grid,
            /// (U0 − jh)·OutW + (V0 − jw), and the outputs whose shifted read is inside dy: u' in [jh − U0,
            /// OutH + jh − U0), v' in [jw − V0, OutW + jw − V0).
            /// </summary>
            public int[] FlatTapArray = [];
            public int* FlatTaps;
        }

        public readonly int S;
        public readonly long ImageLen;
        public readonly int MaxFlatRows;
        public readonly Phase[] Phases;

        private BackLayout(in Conv2dGeometry g)
        {
            S = g.StrideH;
            int s = S;
            var phases = new Phase[s * s];
            for (int rh = 0; rh < s; rh++)
                for (int rw = 0; rw < s; rw++)
                {
                    var ph = phases[rh * s + rw] = new Phase { Rh = rh, Rw = rw };
                    (ph.U0, ph.U1) = Range(rh, g.PadH, g.Height);
                    (ph.V0, ph.V1) = Range(rw, g.PadW, g.Width);
                    ph.Mh = Math.Max(0, (g.KernelH - rh + s - 1) / s);
                    ph.Mw = Math.Max(0, (g.KernelW - rw + s - 1) / s);
                    ph.Taps = g.OutChannels * ph.Mh * ph.Mw;
                }
            // One window per column residue, shared by its row residues: columns V0 − Mw + 1 .. V1 − 1 (Wp wide), rows
            // the union of what its row residues read (so dy is copied s times per image, not s²).
            var own = new Window?[s];
            for (int rw = 0; rw < s; rw++)
            {
                int r0 = int.MaxValue, r1 = int.MinValue;
                Phase? any = null;
                for (int rh = 0; rh < s; rh++)
                {
                    var ph = phases[rh * s + rw];
                    if (!Live(ph)) continue;
                    r0 = Math.Min(r0, ph.U0 - ph.Mh + 1);
                    r1 = Math.Max(r1, ph.U1 - 1);
                    any = ph;
                }
                if (any != null)
                    own[rw] = new Window { Row0 = r0, Col0 = any.V0 - any.Mw + 1, Hp = r1 - r0 + 1, Wp = any.V1 - any.V0 + any.Mw - 1 };
            }
            // The column residues' windows usually hold the same dy columns shifted by one (e.g. a 4x4 kernel at stride
            // 2): one window spanning them all serves every residue, copying dy once per image instead of s times,
            // whenever its wider rows cost no extra pixel tiles.
            var live = own.Where(w => w != null).Select(w => w!).ToArray();
            var union = live.Length < 2 ? null : new Window
            {
                Row0 = live.Min(w => w.Row0), Col0 = live.Min(w => w.Col0),
                Hp = live.Max(w => w.Row0 + w.Hp) - live.Min(w => w.Row0), Wp = live.Max(w => w.Col0 + w.Wp) - live.Min(w => w.Col0),
            };
            if (union != null)
                foreach (var ph in phases)
                    if (Live(ph) && Tiles32((ph.U1 - ph.U0) * union.Wp) > Tiles32((ph.U1 - ph.U0) * own[ph.Rw]!.Wp)) { union = null; break; }
            Windows = union != null ? [union] : live;
            long start = 0;
            foreach (var win in Windows)
            {
                long plane = (long)win.Hp * win.Wp, reach = g.OutChannels * plane;
                foreach (var ph in phases)
                {
                    if (!Live(ph) || (union == null && !ReferenceEquals(own[ph.Rw], win))) continue;
                    ph.Wp = win.Wp;
                    ph.Flat = (ph.U1 - ph.U0) * ph.Wp;
                    // Pixel-vector tiles: 32 flat pixels each (also the row length of the residue's channel-major output).
                    ph.FlatRows = Tiles32(ph.Flat) * 32;
                    MaxFlatRows = Math.Max(MaxFlatRows, ph.FlatRows);
                    ph.OffsetArray = GC.AllocateArray<int>(ph.Taps, pinned: true);
                    ph.Offsets = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref ph.OffsetArray[0]);
                    int k = 0;
                    // Output (u, v) at flat (u − U0)·Wp + (v − V0) reads dy[u − jh, v − jw]: window row u − jh − Row0,
                    // column v − jw − Col0 = (v − V0) + V0 − jw − Col0.
                    for (int co = 0; co < g.OutChannels; co++)
                        for (int jh = 0; jh < ph.Mh; jh++)
                            for (int jw = 0; jw < ph.Mw; jw++)
                                ph.OffsetArray[k++] = (int)(co * plane + (long)(ph.U0 - jh - win.Row0) * win.Wp + (ph.V0 - jw - win.Col0));
                    ph.Start = start;
                    // The last tile reads past the window by up to a tile's rows: slack, kept zero.
                    reach = Math.Max(reach, (long)ph.FlatRows - 1 + ph.OffsetArray[k - 1] + 1);
                }
                win.Start = start;
                start += (reach + 15) & ~15L;
            }
            Phases = phases;
            ImageLen = start;
            foreach (var ph in phases)
            {
                if (ph.Flat == 0) continue;
                ph.FlatTapArray = GC.AllocateArray<int>(5 * ph.Mh * ph.Mw, pinned: true);
                ph.FlatTaps = (int*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref ph.FlatTapArray[0]);
                for (int t = 0; t < ph.Mh * ph.Mw; t++)
                {
                    int jh = t / ph.Mw, jw = t % ph.Mw, shift = (ph.U0 - jh) * g.OutW + (ph.V0 - jw);
                    ph.FlatTapArray[5 * t] = shift;
                    ph.FlatTapArray[5 * t + 1] = jh - ph.U0; ph.FlatTapArray[5 * t + 2] = g.OutH + jh - ph.U0;
                    ph.FlatTapArray[5 * t + 3] = jw - ph.V0; ph.FlatTapArray[5 * t + 4] = g.OutW + jw - ph.V0;
                    MinShift = Math.Min(MinShift, shift);
                    MaxShift = Math.Max(MaxShift, shift);
                }
            }
        }

        /// <summary>The flat form's least and greatest shift over all taps (≤ 0 and ≥ 0).</summary>
        public readonly int MinShift, MaxShift;

        /// <summary>A zero-padded window of dy: rows from Row0, columns from Col0, Hp by Wp per channel, at Start.</summary>
        public sealed class Window
        {
            public int Row0, Col0, Hp, Wp;
            public long Start;
        }

        public readonly Window[] Windows;

        private static bool Live(Phase ph) => ph.Taps > 0 && ph.U1 > ph.U0 && ph.V1 > ph.V0;

        private static int Tiles32(int flat) => (flat + 31) / 32;

        // Residue r's outputs u: the input pixels s·u + r − pad inside [0, size).
        private (int, int) Range(int r, int pad, int size)
        {
            int lo = pad - r <= 0 ? 0 : (pad - r + S - 1) / S;
            int hi = size - 1 + pad - r < 0 ? lo : (size - 1 + pad - r) / S + 1;
            return (lo, Math.Max(lo, hi));
        }

        /// <summary>Copies the part of dy [Cout, OutH, OutW] inside each window into the windows (the rest stays zero).</summary>
        public void Fill(float* dy, float* pad, in Conv2dGeometry g)
        {
            foreach (var w in Windows)
            {
                if (w.Wp == 0) continue;
                int rLo = Math.Max(0, w.Row0), rHi = Math.Min(g.OutH, w.Row0 + w.Hp), cLo = Math.Max(0, w.Col0), cHi = Math.Min(g.OutW, w.Col0 + w.Wp);
                if (rLo >= rHi || cLo >= cHi) continue;
                float* win = pad + w.Start;
                long plane = (long)w.Hp * w.Wp;
                var copy = new RowCopy(cHi - cLo);
                for (int co = 0; co < g.OutChannels; co++)
                    for (int r = rLo; r < rHi; r++)
                        copy.Run(dy + (long)co * g.OutPixels + r * g.OutW + cLo, win + co * plane + (long)(r - w.Row0) * w.Wp + (cLo - w.Col0));
            }
        }
    }

    // Lane permutations interleaving two vectors a, b into a0 b0 a1 b1 ... (lower half of the pairs, then upper).
    private static readonly Vector512<int> InterleaveLo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> InterleaveHi = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>dst[2t] = even[t], dst[2t + 1] = odd[t] for 2t, 2t + 1 &lt; n (reads up to 15 floats past each source row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void InterleaveRow(float* even, float* odd, float* dst, int n)
    {
        for (int i = 0; i < n; i += 32, even += 16, odd += 16)
        {
            var a = Vector512.Load(even);
            var b = Vector512.Load(odd);
            var lo = Avx512F.PermuteVar16x32x2(a, InterleaveLo, b);
            var hi = Avx512F.PermuteVar16x32x2(a, InterleaveHi, b);
            int left = n - i;
            if (left >= 32) { lo.Store(dst + i); hi.Store(dst + i + 16); continue; }
            var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(left)).AsSingle();
            Avx512F.MaskStore(dst + i, m, lo);
            if (left > 16) Avx512F.MaskStore(dst + i + 16, Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(left - 16)).AsSingle(), hi);
        }
    }

    /// <summary>dx = the input gradient of conv(x, w) for output gradient dy (overwritten).</summary>
    public static void BackwardInput(float* pdy, float* pw, float* pdx, in Conv2dGeometry g)
    {
        var geo = g;
        var l = BackLayout.For(geo);
        if (FlatApplies(l, geo))
        {
            BackwardInputFlat(pdy, pw, pdx, geo, l);
            return;
        }
        int cin = geo.InChannels, cp = Pad(cin), s = l.S, kh = geo.KernelH, kw = geo.KernelW, cout = geo.OutChannels;
        int phases = l.Phases.Length, width = geo.Width;
        // Per residue and block of 8 input channels: [taps (co, jh, jw), 8] of w[co, ci, rh + s·jh, rw + s·jw] (zero past Cin).
        const int cb = DirectConvTiles.Channels;
        int blocks = (cin + cb - 1) / cb;
        var starts = new long[phases + 1];
        for (int i = 0; i < phases; i++) starts[i + 1] = starts[i] + (l.Phases[i].Flat == 0 ? 0 : (long)l.Phases[i].Taps * blocks * cb);
        var wBuf = ScratchPool.Rent(starts[^1]);
        float* wt = ScratchPool.Ptr(wBuf);
        for (int i = 0; i < phases; i++)
        {
            var ph = l.Phases[i];
            if (ph.Flat == 0) continue;
            int mh = ph.Mh, mw = ph.Mw, rh = ph.Rh, rw = ph.Rw, taps = ph.Taps;
            for (int b = 0; b < blocks; b++)
            {
                float* block = wt + starts[i] + (long)b * taps * cb;
                for (int k = 0; k < taps; k++)
                {
                    int co = k / (mh * mw), jh = k / mw % mh, jw = k % mw;
                    for (int r = 0; r < cb; r++)
                    {
                        int ci = b * cb + r;
                        block[k * cb + r] = ci < cin ? pw[(((long)co * cin + ci) * kh + rh + s * jh) * kw + rw + s * jw] : 0f;
                    }
                }
            }
        }
        // Stride 2: the two column residues of a row are interleaved with vector permutes when both own pixels;
        // column iw comes from residue (iw + pad) mod 2 at its v − V0 = iw / 2 (both residues start at iw = 0 and 1).
        bool interleave = s == 2 && width >= 2;
        long inImage = (long)cin * geo.InPixels, outImage = (long)cout * geo.OutPixels, chanLen = (long)cp * l.MaxFlatRows + 16;
        ForImageChunks(geo.Batch, (_, n0, n1) =>
        {
            var padBuf = ScratchPool.Rent(l.ImageLen);
            var chanBuf = ScratchPool.Rent(chanLen * phases);
            float* pad = ScratchPool.Ptr(padBuf), chan0 = ScratchPool.Ptr(chanBuf);
            new Span<float>(pad, (int)l.ImageLen).Clear();
            // A residue no kernel tap reaches (kernel smaller than the stride) contributes zeros.
            new Span<float>(chan0, (int)(chanLen * phases)).Clear();
            for (int n = n0; n < n1; n++)
            {
                l.Fill(pdy + n * outImage, pad, geo);
                float* dx = pdx + n * inImage;
                for (int i = 0; i < phases; i++)
                {
                    var ph = l.Phases[i];
                    if (ph.Flat == 0) continue;
                    // chan[ci, q] for this residue, straight from the pixel-vector tiles (no transpose).
                    float* chan = chan0 + i * chanLen;
                    for (int b = 0; b < blocks; b++)
                        for (int q0 = 0; q0 < ph.FlatRows; q0 += 32)
                            DirectConvTiles.Pixels(ph.Taps, pad + ph.Start + q0, ph.Offsets, wt + starts[i] + (long)b * ph.Taps * cb, chan + (long)b * cb * ph.FlatRows + q0, ph.FlatRows);
                }
                for (int rh = 0; rh < s; rh++)
                {
                    var first = l.Phases[rh * s];
                    for (int u = first.U0; u < first.U1; u++)
                    {
                        int ih = s * u + rh - geo.PadH;
                        for (int ci = 0; ci < cin; ci++)
                        {
                            float* d = dx + (long)ci * geo.InPixels + (long)ih * width;
                            if (interleave)
                            {
                                int ie = rh * 2 + geo.PadW % 2, io = rh * 2 + (geo.PadW + 1) % 2;
                                var pe = l.Phases[ie]; var po = l.Phases[io];
                                float* even = chan0 + ie * chanLen + (long)ci * pe.FlatRows + (long)(u - pe.U0) * pe.Wp;
                                float* odd = chan0 + io * chanLen + (long)ci * po.FlatRows + (long)(u - po.U0) * po.Wp;
                                // A residue without taps has Wp 0 and a zero buffer: any row of it reads zeros.
                                if (pe.Flat == 0) even = chan0 + ie * chanLen;
                                if (po.Flat == 0) odd = chan0 + io * chanLen;
                                InterleaveRow(even, odd, d, width);
                                continue;
                            }
                            for (int rw = 0; rw < s; rw++)
                            {
                                var ph = l.Phases[rh * s + rw];
                                int nv = ph.V1 - ph.V0;
                                if (nv == 0) continue;
                                float* row = ph.Flat == 0 ? chan0 + (rh * s + rw) * chanLen : chan0 + (rh * s + rw) * chanLen + (long)ci * ph.FlatRows + (long)(u - ph.U0) * ph.Wp;
                                float* dd = d + s * ph.V0 + rw - geo.PadW;
                                if (s == 1) new RowCopy(nv).Run(row, dd);
                                else for (int v = 0; v < nv; v++) dd[v * s] = row[v];
                            }
                        }
                    }
                }
            }
            ScratchPool.Return(chanBuf);
            ScratchPool.Return(padBuf);
        });
        ScratchPool.Return(wBuf);
    }

    /// <summary>dw = Σ_images dy ⋆ x (the weight gradient, overwritten); x [N, Cin, H, W], dy [N, Cout, OutH, OutW].</summary>
    public static void BackwardWeight(float* px, float* pdy, float* pdw, in Conv2dGeometry g)
    {
        var geo = g;
        if (RowLayout.For(geo) is { } rows)
        {
            BackwardWeightRows(px, pdy, pdw, geo, rows);
            return;
        }
        var l = Layout.For(geo);
        int cout = geo.OutChannels, cp = Pad(cout), taps = l.Taps, np = geo.OutPixels;
        int threads = CpuThreads.InParallelRegion ? 1 : Math.Min(CpuThreads.Count, geo.Batch);
        long accLen = (long)l.TapsPadded * cp;
        var partials = new float[threads][];
        long inImage = (long)geo.InChannels * geo.InPixels, outImage = (long)cout * np;
        int np16 = (np + 15) & ~15;
        ForImageChunks(geo.Batch, (c, n0, n1) =>
        {
            var padBuf = ScratchPool.Rent(l.ImageLen);
            var dyBuf = ScratchPool.Rent((long)np16 * cp + 256);
            partials[c] = ScratchPool.Rent(accLen);
            float* pad = ScratchPool.Ptr(padBuf), dyt = ScratchPool.Ptr(dyBuf), tail = dyt + (long)np16 * cp, acc = ScratchPool.Ptr(partials[c]);
            new Span<float>(pad, (int)l.ImageLen).Clear();
            new Span<float>(acc, (int)accLen).Clear();
            for (int n = n0; n < n1; n++)
            {
                l.Fill(px + n * inImage, pad, geo);
                // dy [Cout, pixels] by 16x16 transposes as [pixels, Cp] (channels past Cout zero). A block that would
                // read past the last pixel goes through a zero-padded copy (the last image's rows end the tensor).
                float* dy = pdy + n * outImage;
                for (int c0 = 0; c0 < cp; c0 += 16)
                {
                    int rows = Math.Clamp(cout - c0, 0, 16);
                    int q0 = 0;
                    for (; q0 + 16 <= np; q0 += 16)
                        GemmPack.Transpose16Store(dy + (long)c0 * np + q0, np, rows, dyt + (long)q0 * cp + c0, cp);
                    if (q0 < np)
                    {
                        var m = Vector512.LessThan(Vector512<int>.Indices, Vector512.Create(np - q0)).AsSingle();
                        for (int r = 0; r < rows; r++)
                            Vector512.Store(Avx512F.MaskLoad(dy + (long)(c0 + r) * np + q0, m, Vector512<float>.Zero), tail + r * 16);
                        GemmPack.Transpose16Store(tail, 16, rows, dyt + (long)q0 * cp + c0, cp);
                    }
                }
                for (int c0 = 0; c0 < cp; c0 += 32)
                {
                    bool wide = cp - c0 >= 32;
                    for (int k0 = 0; k0 < l.TapsPadded; k0 += DirectConvTiles.Taps)
                    {
                        float* a = acc + (long)k0 * cp + c0;
                        if (wide)
                        {
                            if (l.S == 1) DirectConvTiles.Weight<G32, G1>(geo.OutH, geo.OutW, l.Wv, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                            else DirectConvTiles.Weight<G32, G2>(geo.OutH, geo.OutW, l.Wv, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                        }
                        else
                        {
                            if (l.S == 1) DirectConvTiles.Weight<G16, G1>(geo.OutH, geo.OutW, l.Wv, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                            else DirectConvTiles.Weight<G16, G2>(geo.OutH, geo.OutW, l.Wv, pad, l.Offsets + k0, dyt + c0, cp, a, cp);
                        }
                    }
                }
            }
            ScratchPool.Return(dyBuf);
            ScratchPool.Return(padBuf);
        });
        // dw[co, k] = Σ_threads acc_t[k, co], threads in order: summed into thread 0's buffer, then transposed by
        // 16×16 blocks (a scalar strided transpose cost ~5 % of the 16 -> 32 layer's weight gradient).
        float* sum = ScratchPool.Ptr(partials[0]);
        for (int t = 1; t < threads; t++)
        {
            float* part = ScratchPool.Ptr(partials[t]);
            long i = 0;
            for (; i + 16 <= accLen; i += 16) (Vector512.Load(sum + i) + Vector512.Load(part + i)).Store(sum + i);
            for (; i < accLen; i++) sum[i] += part[i];
        }
        int fullK = taps & ~15, fullC = cout & ~15;
        for (int c0 = 0; c0 < fullC; c0 += 16)
            for (int k0 = 0; k0 < fullK; k0 += 16)
                GemmPack.Transpose16Store(sum + (long)k0 * cp + c0, cp, 16, pdw + (long)c0 * taps + k0, taps);
        for (int co = 0; co < cout; co++)
            for (int k = co < fullC ? fullK : 0; k < taps; k++)
                pdw[(long)co * taps + k] = sum[(long)k * cp + co];
        foreach (var p in partials) ScratchPool.Return(p);
    }
}
