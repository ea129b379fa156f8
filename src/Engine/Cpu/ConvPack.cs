using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// Implicit im2col: the column matrix of a block of images is never stored; GEMM B panels are packed straight from
/// a zero-padded copy of the images. Column-matrix row r = (c, i, j) of output column q = (image b, pixel p) is
/// padded[rowBase[r] + b*ImageLen + colOff[p]], so one table per axis describes the whole matrix and every run of
/// pixels along an output row is a run (stride StrideW) in memory. This saves the im2col write and the re-read by the
/// packer, and the padded block (a few hundred KB) stays in L2 while the packed panels are built from it.
/// </summary>
internal sealed unsafe class ConvPadLayout
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<Conv2dGeometry, ConvPadLayout> Cache = new();

    /// <summary>The layout of one group's channels of a geometry (batch does not matter), cached per geometry.</summary>
    public static ConvPadLayout For(in Conv2dGeometry g)
    {
        var key = new Conv2dGeometry(1, g.GroupInChannels, g.Height, g.Width, 1, g.KernelH, g.KernelW, g.StrideH, g.StrideW,
                                     g.PadH, g.PadW, g.DilationH, g.DilationW, 1);
        if (Cache.TryGetValue(key, out var u)) return u;
        if (Cache.Count >= 64) Cache.Clear();
        return Cache.GetOrAdd(key, k => new ConvPadLayout(k));
    }

    /// <summary>
    /// Floats read past the last image by full-vector loads of runs near its end (16 elements at stride 2 read 32 floats,
    /// and at larger strides elements are read one by one, so never past the run).
    /// </summary>
    public const int Slack = 48;

    public readonly int Channels, Height, Width, PadH, PadW, PaddedH, PaddedW, OutW, Pixels, StrideW;
    /// <summary>Floats of one padded image (all of the group's channels).</summary>
    public readonly int ImageLen;
    private readonly int[] _rowBase, _colOff;
    public readonly int* RowBase, ColOff;

    private ConvPadLayout(in Conv2dGeometry g)
    {
        Channels = g.InChannels; Height = g.Height; Width = g.Width; PadH = g.PadH; PadW = g.PadW;
        PaddedH = g.Height + 2 * g.PadH; PaddedW = g.Width + 2 * g.PadW; OutW = g.OutW; Pixels = g.OutPixels; StrideW = g.StrideW;
        int plane = PaddedH * PaddedW;
        ImageLen = Channels * plane;
        int kh = g.KernelH, kw = g.KernelW;
        _rowBase = GC.AllocateUninitializedArray<int>(Math.Max(1, Channels * kh * kw), pinned: true);
        _colOff = GC.AllocateUninitializedArray<int>(Math.Max(1, Pixels), pinned: true);
        RowBase = (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_rowBase));
        ColOff = (int*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_colOff));
        for (int c = 0, r = 0; c < Channels; c++)
            for (int i = 0; i < kh; i++)
                for (int j = 0; j < kw; j++, r++)
                    RowBase[r] = c * plane + i * g.DilationH * PaddedW + j * g.DilationW;
        for (int oh = 0, p = 0; oh < g.OutH; oh++)
            for (int ow = 0; ow < g.OutW; ow++, p++)
                ColOff[p] = oh * g.StrideH * PaddedW + ow * g.StrideW;
    }

    /// <summary>Floats of scratch for a padded block of <paramref name="images"/> images.</summary>
    public long BlockLen(int images) => (long)images * ImageLen + Slack;

    /// <summary>
    /// Copies images [0, nb) (each <paramref name="imageStride"/> floats apart, starting at the group's first channel)
    /// into the interior of the padded block. The border is zeroed only when <paramref name="clearBorder"/>: it is never
    /// written otherwise, so a scratch block reused for the same layout keeps it.
    /// </summary>
    public void PadBlock(float* x, long imageStride, int nb, float* dst, bool clearBorder)
    {
        if (clearBorder) new Span<float>(dst, (int)BlockLen(nb)).Clear();
        int hw = Height * Width;
        for (int b = 0; b < nb; b++)
            for (int c = 0; c < Channels; c++)
            {
                float* s = x + b * imageStride + (long)c * hw;
                float* d = dst + (long)b * ImageLen + (long)c * PaddedH * PaddedW + PadH * PaddedW + PadW;
                if (PadW == 0) { Buffer.MemoryCopy(s, d, (long)hw * 4, (long)hw * 4); continue; }
                for (int h = 0; h < Height; h++) Buffer.MemoryCopy(s + h * Width, d + h * PaddedW, Width * 4L, Width * 4L);
            }
    }

    /// <summary>Splits output columns [q, q+cols) into runs along one output row: (offset in the padded block, length).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Runs(int q, int cols, int* off, int* len)
    {
        int n = 0, b = q / Pixels, p = q - b * Pixels;
        for (int done = 0; done < cols; n++)
        {
            int run = Math.Min(cols - done, OutW - p % OutW);
            off[n] = b * ImageLen + ColOff[p];
            len[n] = run;
            done += run; p += run;
            if (p == Pixels) { p = 0; b++; }
        }
        return n;
    }
}

/// <summary>B = the column matrix [ColRows, images*Pixels] of a padded block (convolution forward).</summary>
internal readonly unsafe struct ConvColumnsPacker(ConvPadLayout layout, float* padded) : IGemmPackB
{
    public void Pack(int p0, int kc, int j0, int nc, int nr, bool avx512, float* dst)
    {
        var L = layout;
        int* off = stackalloc int[64];
        int* len = stackalloc int[64];
        int sw = L.StrideW;
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr), w = GemmPack.PanelWidth(cols, nr);
            int runs = L.Runs(j0 + jr, cols, off, len);
            float* pd = dst + (long)jr * kc;
            for (int p = 0; p < kc; p++, pd += w)
            {
                float* row = padded + L.RowBase[p0 + p];
                float* d = pd;
                for (int s = 0; s < runs; s++)
                {
                    float* src = row + off[s];
                    int n = len[s];
                    // Full-vector copies may run past the run: into lanes or rows written next, or the buffer slack.
                    if (sw == 1 && !avx512)
                        for (int e = 0; e < n; e += 8) Vector256.Store(Vector256.Load(src + e), d + e);
                    else if (sw <= 2 && avx512)
                        for (int e = 0; e < n; e += 16) Vector512.Store(GemmPack.LoadStrided(src + e * sw, sw), d + e);
                    else
                        for (int e = 0; e < n; e++) d[e] = src[e * sw];
                    d += n;
                }
                for (int e = cols; e < w; e++) pd[e] = 0;
            }
        }
    }
}

/// <summary>B = the transposed column matrix [images*Pixels, ColRows] of a padded block (convolution weight gradient).</summary>
internal readonly unsafe struct ConvColumnsTPacker(ConvPadLayout layout, float* padded) : IGemmPackB
{
    public void Pack(int p0, int kc, int j0, int nc, int nr, bool avx512, float* dst)
    {
        var L = layout;
        int maxRuns = kc + 2;
        int* off = stackalloc int[maxRuns];
        int* len = stackalloc int[maxRuns];
        float** ptr = stackalloc float*[16];
        int runs = L.Runs(p0, kc, off, len);
        int sw = L.StrideW;
        for (int jr = 0; jr < nc; jr += nr)
        {
            int cols = Math.Min(nr, nc - jr), w = GemmPack.PanelWidth(cols, nr);
            float* pd = dst + (long)jr * kc;
            for (int g = 0; g * 16 < w; g++)
            {
                int valid = Math.Clamp(cols - g * 16, 0, Math.Min(16, w - g * 16));
                int lanes = Math.Min(16, w - g * 16);
                for (int t = 0; t < valid; t++) ptr[t] = padded + L.RowBase[j0 + jr + g * 16 + t];
                float* d = pd + g * 16;
                for (int s = 0; s < runs; s++)
                {
                    long o = off[s];
                    int n = len[s];
                    if (avx512 && sw <= 2)
                        for (int e = 0; e < n; e += 16)
                            GemmPack.Transpose16Gather(ptr, o + (long)e * sw, sw, valid, d + (long)e * w, w, Math.Min(16, n - e));
                    else
                        for (int e = 0; e < n; e++)
                        {
                            float* de = d + (long)e * w;
                            for (int t = 0; t < valid; t++) de[t] = ptr[t][o + (long)e * sw];
                            for (int t = valid; t < lanes; t++) de[t] = 0;
                        }
                    d += (long)n * w;
                }
            }
        }
    }
}
