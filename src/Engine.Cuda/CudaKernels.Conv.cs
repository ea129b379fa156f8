using Engine.Tensors;

namespace Engine.Cuda;

// Convolution on CUDA (kernels/conv.cu + cuBLAS through Gemm):
//  - Forward and input gradient: im2col of a chunk of images into device scratch (one contiguous [Cin*KH*KW, P] column
//    matrix per image), then strided-batched GEMMs, batched over the images of the chunk (one call per group) or over
//    the groups (one call per image), whichever makes fewer calls. The input gradient folds its column matrices back
//    with a gather col2im (one thread per input element, no atomics, deterministic). A 1x1 stride-1 unpadded
//    convolution needs no column matrix: the images are the B (forward) or C (input gradient) operands directly.
//  - Weight gradient: the chunk's columns sit side by side ([Cin*KH*KW, nb*P]) and dy is regathered as [Cout, nb*P],
//    so one strided-batched GEMM (over groups) per chunk sums the chunk's images in its inner dimension; later chunks
//    accumulate (beta = 1). dw is overwritten, as on the CPU.
//  - Grouped convolutions with very few channels per group (depthwise) skip the GEMMs, whose m and k would be a handful:
//    direct kernels compute the forward and input gradient instead.
// Chunks are sized so the scratch stays under ScratchFloats; the scratch is device storage from the caching allocator,
// released stream-ordered when disposed, so later kernels on the stream may reuse it safely.
internal sealed partial class CudaKernels
{
    // Upper bound on a convolution's scratch (floats): 128 MiB; a chunk holds at least one image whatever its size.
    private const long ConvScratchFloats = 1L << 25;
    // Grouped convolutions with at most this many (in x out) channels per group run the direct kernels.
    private const int DirectGroupChannels = 16;

    /// <summary>The geometry as the kernels' by-value <c>ConvGeo</c> struct (16 ints, field order of kernels/conv.cu).</summary>
    private static void ConvArgs(ref KernelParams p, in Conv2dGeometry g)
    {
        Span<int> v = [g.Batch, g.InChannels, g.Height, g.Width, g.OutChannels, g.KernelH, g.KernelW, g.StrideH, g.StrideW,
                       g.PadH, g.PadW, g.DilationH, g.DilationW, g.Groups, g.OutH, g.OutW];
        p.Ints(v, 16);
    }

    /// <summary>
    /// Throws unless <paramref name="b"/> holds <paramref name="elements"/> floats from its offset: a kernel launched on a
    /// too-short buffer would read or corrupt other device memory instead of failing.
    /// </summary>
    private static void NeedElements(Buf b, long elements, string kernel, string arg)
    {
        if (elements < 0) throw new ArgumentException($"{kernel}: negative size {elements} for {arg}.");
        if (b.Storage is null) throw new ArgumentException($"{kernel}: {arg} has no storage.");
        if (b.Offset < 0 || b.Offset + elements > b.Storage.Length)
            throw new ArgumentException($"{kernel}: {arg} needs {elements} elements from offset {b.Offset}, but its storage holds {b.Storage.Length}.");
    }

    /// <summary>A launch's item count as the kernels' int (every launch covers one buffer, so it fits unless misused).</summary>
    private static int Items(long n, string kernel)
        => n <= int.MaxValue ? (int)n : throw new NotSupportedException($"{kernel}: {n} elements exceed the {int.MaxValue} a CUDA kernel launch handles.");

    /// <summary><paramref name="b"/> shifted by a 64-bit element count (which lies inside its storage, so fits an int).</summary>
    private static Buf At(Buf b, long elements) => b.At(checked((int)elements));

    /// <summary>Temporary device storage on the device of <paramref name="like"/> (a Buf, so it can be a GEMM operand).</summary>
    private static Storage ConvScratch(Buf like, long floats, string kernel)
        => like.Storage.Device.Allocate(Items(floats, kernel));

    /// <summary>Throws on a default (all-zero) geometry, which no constructor produces but would divide by zero.</summary>
    private static void CheckGeometry(in Conv2dGeometry g, string kernel)
    {
        if (g.Groups < 1 || g.InChannels < 1 || g.OutChannels < 1 || g.KernelH < 1 || g.KernelW < 1 || g.StrideH < 1 || g.StrideW < 1 ||
            g.DilationH < 1 || g.DilationW < 1 || g.Batch < 0 || g.OutH < 1 || g.OutW < 1)
            throw new ArgumentException($"{kernel}: invalid convolution geometry {g}.");
    }

    /// <summary>Checks the buffers of a convolution: input-shaped, weight, output-shaped (and bias) lengths.</summary>
    private static void CheckConvBuffers(in Conv2dGeometry g, string kernel, Buf input, string inputName, Buf weight, Buf output, string outputName)
    {
        CheckGeometry(g, kernel);
        NeedElements(input, (long)g.Batch * g.InChannels * g.InPixels, kernel, inputName);
        NeedElements(weight, (long)g.OutChannels * g.ColRows, kernel, "w");
        NeedElements(output, (long)g.Batch * g.OutChannels * g.OutPixels, kernel, outputName);
    }

    /// <summary>Images per chunk so that the chunk's scratch (<paramref name="perImage"/> floats an image) stays bounded.</summary>
    private static int ChunkImages(long perImage, int batch, string kernel)
    {
        if (perImage > int.MaxValue) throw new NotSupportedException($"{kernel}: one image's column matrix ({perImage} floats) exceeds {int.MaxValue}.");
        return (int)Math.Clamp(ConvScratchFloats / Math.Max(1, perImage), 1, Math.Max(1, batch));
    }

    private static bool UseDirect(in Conv2dGeometry g)
        => g.Groups > 1 && (long)g.GroupInChannels * g.GroupOutChannels <= DirectGroupChannels;

    /// <summary>
    /// C[i, gi] = op(A[i, gi]) · op(B[i, gi]) (+ beta C) for every image i &lt; images and group gi &lt; groups, each operand at
    /// base + i*xImage + gi*xGroup: one strided-batched GEMM per group (batched over images) or per image (batched over
    /// groups), whichever is fewer calls.
    /// </summary>
    private void GroupedGemm(bool transA, bool transB, int images, int groups, int m, int n, int k,
                             Buf a, int lda, long aImage, long aGroup, Buf b, int ldb, long bImage, long bGroup,
                             float beta, Buf c, int ldc, long cImage, long cGroup)
    {
        if (images >= groups)
            for (int gi = 0; gi < groups; gi++)
                Gemm(transA, transB, images, m, n, k, 1f, At(a, gi * aGroup), lda, aImage, At(b, gi * bGroup), ldb, bImage,
                     beta, At(c, gi * cGroup), ldc, cImage);
        else
            for (int i = 0; i < images; i++)
                Gemm(transA, transB, groups, m, n, k, 1f, At(a, i * aImage), lda, aGroup, At(b, i * bImage), ldb, bGroup,
                     beta, At(c, i * cImage), ldc, cGroup);
    }

    /// <summary>
    /// conv_im2col of channels [0, channels) of images [0, images) (image i at x + i*imageStride) into col, image i's
    /// matrix at col + i*colImage with rows colRow apart.
    /// </summary>
    private void LaunchIm2Col(Buf x, ulong col, int images, long imageStride, long colImage, long colRow, int channels, in Conv2dGeometry g, string kernel)
    {
        int total = Items((long)images * channels * g.KernelH * g.KernelW * g.OutPixels, kernel);
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Pointer(col); p.Int(images); p.Long(imageStride); p.Long(colImage); p.Long(colRow); p.Int(channels);
        ConvArgs(ref p, g); p.Int(total);
        Launch1D("conv", "conv_im2col", total, ref p);
    }

    /// <summary>conv_col2im: the adjoint of <see cref="LaunchIm2Col"/>, overwriting or accumulating into the images.</summary>
    private void LaunchCol2Im(ulong col, Buf x, int images, long imageStride, long colImage, long colRow, int channels, in Conv2dGeometry g, bool accumulate, string kernel)
    {
        int total = Items((long)images * channels * g.InPixels, kernel);
        var p = new KernelParams();
        p.Pointer(col); p.Pointer(Ptr(x)); p.Int(images); p.Long(imageStride); p.Long(colImage); p.Long(colRow); p.Int(channels);
        ConvArgs(ref p, g); p.Int(accumulate ? 1 : 0); p.Int(total);
        Launch1D("conv", "conv_col2im", total, ref p);
    }

    /// <summary>conv_transpose_direct: dx (overwritten) = convolutionᵀ(a), no scratch, no GEMM.</summary>
    private void LaunchConvTransposeDirect(Buf a, Buf w, Buf dx, in Conv2dGeometry g, string kernel)
    {
        int total = Items((long)g.Batch * g.InChannels * g.InPixels, kernel);
        var p = new KernelParams();
        p.Pointer(Ptr(a)); p.Pointer(Ptr(w)); p.Pointer(Ptr(dx)); ConvArgs(ref p, g); p.Int(total);
        Launch1D("conv", "conv_transpose_direct", total, ref p);
    }

    /// <inheritdoc/>
    public void Conv2dForward(Buf x, Buf w, Buf? bias, Buf y, in Conv2dGeometry g)
    {
        const string K = nameof(Conv2dForward);
        CheckConvBuffers(g, K, x, "x", w, y, "y");
        if (bias is Buf bb) NeedElements(bb, g.OutChannels, K, "bias");
        if (g.Batch == 0) return;
        int np = g.OutPixels, kk = g.ColRows, og = g.GroupOutChannels, cg = g.GroupInChannels, groups = g.Groups, batch = g.Batch;
        long xImage = (long)g.InChannels * g.InPixels, yImage = (long)g.OutChannels * np;
        if (UseDirect(g))
        {
            int total = Items((long)batch * yImage, K);
            var p = new KernelParams();
            p.Pointer(Ptr(x)); p.Pointer(Ptr(w)); p.Pointer(Ptr(bias)); p.Pointer(Ptr(y)); ConvArgs(ref p, g); p.Int(total);
            Launch1D("conv", "conv_forward_direct", total, ref p);
            return;
        }
        if (g.IsPointwise)
        {
            // The image is already group gi's [Cin/groups, P] column matrix.
            GroupedGemm(false, false, batch, groups, og, np, kk, w, kk, 0, (long)og * kk, x, np, xImage, (long)cg * np,
                        0f, y, np, yImage, (long)og * np);
        }
        else
        {
            long colImage = (long)g.InChannels * g.KernelH * g.KernelW * np;   // = groups * kk * np
            int nb = ChunkImages(colImage, batch, K);
            using var col = ConvScratch(x, nb * colImage, K);
            var colBuf = new Buf(col, 0);
            for (int n0 = 0; n0 < batch; n0 += nb)
            {
                int cnt = Math.Min(nb, batch - n0);
                LaunchIm2Col(At(x, n0 * xImage), Ptr(colBuf), cnt, xImage, colImage, np, g.InChannels, g, K);
                GroupedGemm(false, false, cnt, groups, og, np, kk, w, kk, 0, (long)og * kk, colBuf, np, colImage, (long)kk * np,
                            0f, At(y, n0 * yImage), np, yImage, (long)og * np);
            }
        }
        if (bias is Buf b2) AddBias(y, b2, batch, g.OutChannels, np);
    }

    /// <inheritdoc/>
    public void Conv2dBackwardInput(Buf dy, Buf w, Buf dx, in Conv2dGeometry g)
    {
        const string K = nameof(Conv2dBackwardInput);
        CheckConvBuffers(g, K, dx, "dx", w, dy, "dy");
        if (g.Batch == 0) return;
        if (UseDirect(g)) { LaunchConvTransposeDirect(dy, w, dx, g, K); return; }
        int np = g.OutPixels, kk = g.ColRows, og = g.GroupOutChannels, cg = g.GroupInChannels, groups = g.Groups, batch = g.Batch;
        long xImage = (long)g.InChannels * g.InPixels, yImage = (long)g.OutChannels * np;
        if (g.IsPointwise)
        {
            // dx's image is group gi's [Cin/groups, P] column gradient: Wgᵀ · dy written in place.
            GroupedGemm(true, false, batch, groups, kk, np, og, w, kk, 0, (long)og * kk, dy, np, yImage, (long)og * np,
                        0f, dx, np, xImage, (long)cg * np);
            return;
        }
        long colImage = (long)g.InChannels * g.KernelH * g.KernelW * np;
        int nb = ChunkImages(colImage, batch, K);
        using var col = ConvScratch(dx, nb * colImage, K);
        var colBuf = new Buf(col, 0);
        for (int n0 = 0; n0 < batch; n0 += nb)
        {
            int cnt = Math.Min(nb, batch - n0);
            GroupedGemm(true, false, cnt, groups, kk, np, og, w, kk, 0, (long)og * kk, At(dy, n0 * yImage), np, yImage, (long)og * np,
                        0f, colBuf, np, colImage, (long)kk * np);
            LaunchCol2Im(Ptr(colBuf), At(dx, n0 * xImage), cnt, xImage, colImage, np, g.InChannels, g, accumulate: false, K);
        }
    }

    /// <inheritdoc/>
    public void Conv2dBackwardWeight(Buf x, Buf dy, Buf dw, in Conv2dGeometry g)
    {
        const string K = nameof(Conv2dBackwardWeight);
        CheckConvBuffers(g, K, x, "x", dw, dy, "dy");
        int np = g.OutPixels, kk = g.ColRows, og = g.GroupOutChannels, groups = g.Groups, batch = g.Batch;
        long wLen = (long)g.OutChannels * kk;
        if (batch == 0) { Fill(dw, Items(wLen, K), 0f); return; }
        long xImage = (long)g.InChannels * g.InPixels, yImage = (long)g.OutChannels * np;
        long colImage = (long)g.InChannels * g.KernelH * g.KernelW * np;
        // Per image: its columns, plus (when images are batched) its dy regathered.
        int nb = ChunkImages(colImage + yImage, batch, K);
        bool direct1 = nb == 1 && g.IsPointwise;   // one 1x1 image at a time: x and dy are the operands as they are
        using var col = ConvScratch(dw, direct1 ? 1 : nb * colImage, K);
        using var dyg = ConvScratch(dw, nb > 1 ? nb * yImage : 1, K);
        var colBuf = new Buf(col, 0);
        var dygBuf = new Buf(dyg, 0);
        for (int n0 = 0; n0 < batch; n0 += nb)
        {
            int cnt = Math.Min(nb, batch - n0), cols = Items((long)cnt * np, K);
            Buf bm = colBuf, am = dygBuf;
            if (direct1) bm = At(x, n0 * xImage);
            else LaunchIm2Col(At(x, n0 * xImage), Ptr(colBuf), cnt, xImage, np, cols, g.InChannels, g, K);
            if (cnt == 1) am = At(dy, n0 * yImage);   // [Cout, P] already
            else
            {
                // dy [cnt, Cout, P] -> [Cout, cnt, P]: group gi's rows become one [Cout/groups, cnt*P] matrix.
                int total = Items(cnt * yImage, K);
                var p = new KernelParams();
                p.Pointer(Ptr(At(dy, n0 * yImage))); p.Pointer(Ptr(dygBuf)); p.Int(cnt); p.Int(g.OutChannels); p.Int(np); p.Int(total);
                Launch1D("conv", "conv_swap01", total, ref p);
            }
            // dw[gi] (+)= dy[gi] [og, cols] · col[gi]ᵀ [cols, kk], batched over groups.
            Gemm(false, true, groups, og, kk, cols, 1f, am, cols, (long)og * cols, bm, cols, (long)kk * cols,
                 n0 == 0 ? 0f : 1f, dw, kk, (long)og * kk);
        }
    }

    /// <inheritdoc/>
    public void Im2Col(Buf image, Buf col, in Conv2dGeometry g)
    {
        const string K = nameof(Im2Col);
        CheckGeometry(g, K);
        int cg = g.GroupInChannels, np = g.OutPixels;
        NeedElements(image, (long)cg * g.InPixels, K, "image");
        NeedElements(col, (long)g.ColRows * np, K, "col");
        LaunchIm2Col(image, Ptr(col), 1, 0, 0, np, cg, g, K);
    }

    /// <inheritdoc/>
    public void Col2Im(Buf col, Buf image, in Conv2dGeometry g)
    {
        const string K = nameof(Col2Im);
        CheckGeometry(g, K);
        int cg = g.GroupInChannels, np = g.OutPixels;
        NeedElements(col, (long)g.ColRows * np, K, "col");
        NeedElements(image, (long)cg * g.InPixels, K, "image");
        LaunchCol2Im(Ptr(col), image, 1, 0, 0, np, cg, g, accumulate: true, K);
    }

    /// <inheritdoc/>
    public void AddBias(Buf y, Buf bias, int outer, int channels, int inner)
    {
        const string K = nameof(AddBias);
        if (outer < 0 || channels < 0 || inner < 0) throw new ArgumentException($"{K}: negative size (outer {outer}, channels {channels}, inner {inner}).");
        long total = (long)outer * channels * inner;
        if (total == 0) return;
        NeedElements(y, total, K, "y");
        NeedElements(bias, channels, K, "bias");
        var p = new KernelParams();
        p.Pointer(Ptr(y)); p.Pointer(Ptr(bias)); p.Int(channels); p.Int(inner); p.Int(Items(total, K));
        Launch1D("conv", "conv_add_bias", total, ref p);
    }

    /// <inheritdoc/>
    public void BiasGrad(Buf dy, Buf db, int outer, int channels, int inner)
    {
        const string K = nameof(BiasGrad);
        if (outer < 0 || channels < 0 || inner < 0) throw new ArgumentException($"{K}: negative size (outer {outer}, channels {channels}, inner {inner}).");
        if (channels == 0) return;
        long total = (long)outer * channels * inner;
        Items(total, K);
        NeedElements(db, channels, K, "db");
        if (total > 0) NeedElements(dy, total, K, "dy");
        var p = new KernelParams();
        p.Pointer(total > 0 ? Ptr(dy) : 0UL); p.Pointer(Ptr(db)); p.Int(outer);
        if (inner == 1)
        {
            p.Int(channels);
            Launch("conv", "conv_bias_grad_rows", new Dim3((uint)((channels + 31) / 32)), new Dim3(32, 8), 0, ref p);
            return;
        }
        // inner = 0 sums nothing: the kernel writes zeros, as the CPU does.
        p.Int(channels); p.Int(inner);
        uint blocks = (uint)Math.Min(channels, Math.Max(1L, Context.MaxResidentBlocks256));
        Launch("conv", "conv_bias_grad", new Dim3(blocks), new Dim3(256), 0, ref p);
    }
}
