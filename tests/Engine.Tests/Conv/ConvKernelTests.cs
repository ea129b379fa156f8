using Engine.Cpu;
using Engine.Cpu.Reference;
using Engine.Tensors;
using Engine.Tests.Shape;
using NUnit.Framework;

namespace Engine.Tests.Conv;

[NonParallelizable]
public class ConvKernelTests
{
    private static readonly CpuKernels K = CpuKernels.Instance;

    // (batch, cin, h, w, cout, k, stride, pad, dilation, groups): strides 1-3, padding 0-2, dilation 1-2,
    // groups 1/2/4 and depthwise, odd sizes, kernels 1/3/4/5, batch 1 and 3, and the 1x1 pointwise path.
    private static readonly (int n, int c, int h, int w, int co, int k, int s, int p, int d, int g)[] Combos =
    [
        (1, 3, 7, 9, 5, 3, 1, 1, 1, 1),
        (3, 4, 9, 7, 6, 3, 2, 0, 1, 2),
        (3, 4, 11, 10, 8, 4, 3, 2, 1, 4),
        (1, 2, 8, 9, 3, 5, 1, 2, 2, 1),
        (3, 6, 7, 7, 6, 3, 1, 1, 2, 6),    // depthwise
        (1, 4, 6, 5, 8, 3, 2, 1, 1, 4),
        (3, 5, 6, 7, 7, 1, 1, 0, 1, 1),    // pointwise
        (1, 4, 5, 5, 6, 1, 1, 0, 1, 2),    // grouped pointwise
        (3, 3, 5, 6, 4, 1, 2, 1, 1, 1),    // 1x1 but strided and padded: im2col path
        (3, 2, 13, 11, 3, 4, 2, 1, 1, 1),
        (1, 8, 5, 4, 4, 3, 3, 2, 2, 2),
        (3, 1, 12, 12, 16, 4, 2, 1, 1, 1), // first layer of the benchmark CNN, smaller
        (2, 16, 6, 6, 16, 3, 1, 1, 1, 1),
        (7, 3, 5, 5, 4, 3, 1, 0, 1, 1),    // small outputs: several images per GEMM, uneven last block
        (5, 4, 6, 6, 4, 3, 2, 1, 1, 2),
        (5, 6, 3, 4, 4, 1, 1, 0, 1, 2),    // pointwise with several images per GEMM
        (1, 2, 5, 20, 3, 3, 1, 1, 2, 1),   // wide stride-1 rows: unfolded by row runs rather than the tap table
        (3, 4, 4, 19, 4, 4, 1, 2, 1, 2),
        (2, 2, 6, 21, 3, 5, 1, 0, 1, 1),
        (2, 3, 5, 6, 4, 1, 1, 1, 1, 1),    // stride 1 but padding > dilation*(k-1): no flipped-kernel input gradient
        (2, 4, 6, 5, 6, 3, 1, 3, 1, 2),    // the same with a 3x3 kernel and groups
        (2, 40, 9, 11, 20, 3, 1, 1, 1, 1), // 360 column rows and 99-pixel images: several k-blocks, runs across images
        (1, 3, 40, 37, 5, 3, 1, 1, 1, 1),  // 1480 output pixels: several column blocks per GEMM
        (3, 5, 21, 19, 7, 3, 2, 1, 1, 1),  // stride 2 over wide rows (vector permute runs)
        (2, 3, 13, 12, 4, 2, 2, 0, 2, 1),  // stride 2 with dilation
        // Kernels a multiple of the stride: the input gradient is one stride-1 convolution plus a pixel shuffle.
        (3, 8, 14, 14, 16, 4, 2, 1, 1, 1), // the certified-training CNN's second layer, smaller batch
        (2, 3, 13, 11, 5, 4, 2, 0, 1, 1),  // odd sizes without padding: the last rows see no kernel tap
        (2, 4, 8, 10, 3, 2, 2, 0, 1, 1),   // non-overlapping 2x2
        (2, 3, 17, 16, 4, 6, 3, 2, 1, 1),  // stride 3, two taps per residue
        (1, 2, 9, 9, 3, 4, 2, 3, 1, 1),    // padding larger than the stride
        (2, 3, 9, 11, 2, 4, 4, 1, 1, 1),   // one tap per residue
        (2, 5, 12, 9, 4, 6, 2, 1, 1, 1),   // three taps per residue
        // Short, wide images at strides 2 and 3.
        (2, 3, 9, 40, 4, 4, 2, 1, 1, 1),
        (2, 2, 7, 45, 3, 3, 2, 0, 1, 1),
        (3, 2, 8, 66, 3, 3, 3, 1, 2, 1),   // with dilation
        // Narrow layers of the direct path (output channels across the vector lanes): 16, 32, 48 and 64 channels,
        // strides 1 and 2, dilation, padding wider than the stride, and the certified-training CNN's layers.
        (3, 1, 28, 28, 16, 4, 2, 1, 1, 1),
        (3, 16, 14, 14, 32, 4, 2, 1, 1, 1),
        (2, 5, 9, 8, 48, 3, 1, 1, 2, 1),
        (2, 3, 10, 11, 64, 3, 2, 2, 1, 1),
        (3, 7, 6, 5, 33, 2, 1, 0, 1, 1),
        (2, 9, 7, 9, 17, 5, 2, 3, 1, 1),
        (2, 8, 7, 6, 5, 1, 2, 0, 1, 1),    // 1x1 stride 2: odd input pixels get no gradient
        (2, 12, 5, 6, 7, 2, 2, 3, 1, 1),   // padding wider than the kernel: border outputs see only zeros
        (2, 8, 9, 40, 16, 4, 2, 1, 1, 1),  // stride-2 input gradient rows longer than one interleave (32 pixels)
        (2, 8, 9, 1, 16, 3, 2, 1, 1, 1),   // one pixel wide: only one column residue owns pixels
        // Stride-2 input gradients whose column residues share one dy window (4x4, padding 1 or 2) or keep their own
        // (3x3: the residues read different numbers of columns), with odd sizes and more output than input channels.
        (2, 8, 13, 15, 24, 4, 2, 2, 1, 1),
        (3, 8, 11, 12, 40, 3, 2, 1, 1, 1),
        (2, 16, 7, 7, 8, 4, 2, 1, 1, 1),
        (2, 3, 19, 40, 16, 3, 1, 0, 8, 1), // dilation 8: 16 padding pixels per flat row, whole blocks of them
    ];

    private static Conv2dGeometry Geo((int n, int c, int h, int w, int co, int k, int s, int p, int d, int g) t)
        => new(t.n, t.c, t.h, t.w, t.co, t.k, t.k, t.s, t.s, t.p, t.p, t.d, t.d, t.g);

    private static void CheckAll(int seed)
    {
        var rng = new Random(seed);
        foreach (var t in Combos)
        {
            var g = Geo(t);
            string what = t.ToString();
            var x = TestData.Random(rng, g.Batch * g.InChannels * g.InPixels);
            var w = TestData.Random(rng, g.OutChannels * g.ColRows);
            var b = TestData.Random(rng, g.OutChannels);
            var dy = TestData.Random(rng, g.Batch * g.OutChannels * g.OutPixels);

            var y = Tensor.Full([dy.Length], float.NaN);
            K.Conv2dForward(Tensor.FromArray(x).Buf, Tensor.FromArray(w).Buf, Tensor.FromArray(b).Buf, y.Buf, g);
            TestData.Close(y.ToArray(), ConvReference.Conv2dForward(x, w, b, g), what: "forward " + what);
            K.Conv2dForward(Tensor.FromArray(x).Buf, Tensor.FromArray(w).Buf, null, y.Buf, g);
            TestData.Close(y.ToArray(), ConvReference.Conv2dForward(x, w, null, g), what: "forward no bias " + what);

            var dx = Tensor.Full([x.Length], float.NaN);
            K.Conv2dBackwardInput(Tensor.FromArray(dy).Buf, Tensor.FromArray(w).Buf, dx.Buf, g);
            TestData.Close(dx.ToArray(), ConvReference.Conv2dBackwardInput(dy, w, g), what: "dx " + what);

            var dw = Tensor.Full([w.Length], float.NaN);
            K.Conv2dBackwardWeight(Tensor.FromArray(x).Buf, Tensor.FromArray(dy).Buf, dw.Buf, g);
            TestData.Close(dw.ToArray(), ConvReference.Conv2dBackwardWeight(x, dy, g), what: "dw " + what);
        }
    }

    [Test]
    public void ForwardAndBothBackwardsMatchDirectConvolution() => CheckAll(30);

    [Test]
    public void PerImageFormsMatchToo()
    {
        // The direct forward's channel-lane form and the input gradient's per-image form, on the geometries the flat
        // forms would otherwise take.
        bool saved = DirectConv.FlatInputGradient, savedForward = DirectConv.FlatForward, savedRows = DirectConv.RowForm;
        DirectConv.FlatInputGradient = false;
        DirectConv.FlatForward = false;
        DirectConv.RowForm = false;
        try { CheckAll(31); }
        finally { DirectConv.FlatInputGradient = saved; DirectConv.FlatForward = savedForward; DirectConv.RowForm = savedRows; }
    }

    /// <summary>Runs a kernel on 1, 2 and 3 threads (splitting the batch unevenly) and checks each result against the reference.</summary>
    private static void CheckOnThreadCounts(float[] want, string what, Func<float[]> run)
    {
        int saved = CpuThreads.Count;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                CpuThreads.Count = threads;
                TestData.Close(run(), want, what: $"{what}, {threads} threads");
            }
        }
        finally { CpuThreads.Count = saved; }
    }

    /// <summary>The kernels' forward of g (y starts as NaN, so an output left unwritten shows).</summary>
    private static float[] RunForward(Conv2dGeometry g, float[] x, float[] w, float[]? b)
    {
        var y = Tensor.Full([g.Batch * g.OutChannels * g.OutPixels], float.NaN);
        K.Conv2dForward(Tensor.FromArray(x).Buf, Tensor.FromArray(w).Buf, b == null ? null : Tensor.FromArray(b).Buf, y.Buf, g);
        return y.ToArray();
    }

    /// <summary>The kernels' weight gradient of g (dw starts as NaN).</summary>
    private static float[] RunWeightGradient(Conv2dGeometry g, float[] x, float[] dy)
    {
        var dw = Tensor.Full([g.OutChannels * g.ColRows], float.NaN);
        K.Conv2dBackwardWeight(Tensor.FromArray(x).Buf, Tensor.FromArray(dy).Buf, dw.Buf, g);
        return dw.ToArray();
    }

    /// <summary>The kernels' input gradient of g (dx starts as NaN).</summary>
    private static float[] RunInputGradient(Conv2dGeometry g, float[] dy, float[] w)
    {
        var dx = Tensor.Full([g.Batch * g.InChannels * g.InPixels], float.NaN);
        K.Conv2dBackwardInput(Tensor.FromArray(dy).Buf, Tensor.FromArray(w).Buf, dx.Buf, g);
        return dx.ToArray();
    }

    /// <summary>got is close to want where want is finite and not finite where want is not.</summary>
    private static void AssertSameFiniteness(float[] got, float[] want, string what)
    {
        for (int i = 0; i < want.Length; i++)
            if (float.IsFinite(want[i])) Assert.That(got[i], Is.EqualTo(want[i]).Within(1e-4 + 1e-4 * Math.Abs(want[i])), $"{what}[{i}] (finite in the reference)");
            else Assert.That(float.IsFinite(got[i]), Is.False, $"{what}[{i}] (not finite in the reference)");
    }

    [Test]
    public void FlatForwardRunsChunksOfImagesAcrossThreads()
    {
        if (!DirectConv.Supported) Assert.Ignore("No AVX-512: the direct convolution is not used on this CPU.");
        // Several chunks per thread and a short last one; the CNN's two layers (stride 2, one and 16 input channels),
        // a component smaller than the output grid (15 rows at stride 2 with padding 2: the odd rows' component has
        // 7 of the grid's 8 rows), stride 1 with "same" padding, and dilation.
        // The row form (which takes the first of these) is off, so that the flat form runs.
        var rng = new Random(38);
        bool savedRows = DirectConv.RowForm;
        DirectConv.RowForm = false;
        try
        {
            foreach (var g in new[] { new Conv2dGeometry(67, 1, 28, 28, 16, 4, 4, 2, 2, 1, 1), new Conv2dGeometry(45, 16, 14, 14, 32, 4, 4, 2, 2, 1, 1),
                                      new Conv2dGeometry(40, 3, 15, 13, 20, 4, 4, 2, 2, 2, 2), new Conv2dGeometry(30, 5, 9, 10, 12, 3, 3, 1, 1, 1, 1),
                                      new Conv2dGeometry(20, 4, 11, 12, 9, 3, 3, 1, 1, 2, 2, 2, 2),
                                      // Stride 2 without gaps on rows of at most 16 floats (two input rows per split, whole
                                      // vectors stored): 6 wide (both rows in part of one vector) and a 3×3 kernel.
                                      new Conv2dGeometry(11, 3, 6, 6, 8, 4, 4, 2, 2, 1, 1), new Conv2dGeometry(13, 5, 10, 10, 7, 3, 3, 2, 2, 1, 1),
                                      // Rows wider than one 32-float split (even and odd widths, the odd one with gaps).
                                      new Conv2dGeometry(9, 3, 10, 40, 16, 4, 4, 2, 2, 1, 1), new Conv2dGeometry(7, 2, 11, 45, 12, 4, 4, 2, 2, 2, 2) })
            {
                Assert.That(DirectConv.UsesFlatForward(g), Is.True, g.ToString());
                var x = TestData.Random(rng, g.Batch * g.InChannels * g.InPixels);
                var w = TestData.Random(rng, g.OutChannels * g.ColRows);
                var b = TestData.Random(rng, g.OutChannels);
                CheckOnThreadCounts(ConvReference.Conv2dForward(x, w, b, g), $"forward {g}", () => RunForward(g, x, w, b));
            }
        }
        finally { DirectConv.RowForm = savedRows; }
        // Without padding the input has more rows than the output grid: the channel-lane form.
        Assert.That(DirectConv.UsesFlatForward(new Conv2dGeometry(2, 8, 9, 9, 16, 3, 3, 1, 1, 0, 0)), Is.False);
        Assert.That(DirectConv.Applies(new Conv2dGeometry(2, 8, 9, 9, 16, 3, 3, 1, 1, 0, 0)), Is.True);
    }

    [Test]
    public void RowFormRunsNarrowRowsAcrossThreads()
    {
        if (!DirectConv.Supported) Assert.Ignore("No AVX-512: the direct convolution is not used on this CPU.");
        // Forward (with and without bias) and weight gradient of the row form on 1-3 threads: the CNN's first layer,
        // an odd number of output rows (the last tile holds one row) with 12 output channels (a part block of 8), an
        // odd input with padding 2 (a component smaller than the grid, no border below or right), stride 1 with three
        // input channels (27 taps: a part block of 4 taps) and 10 output channels, and rows of 12 pixels.
        var rng = new Random(44);
        foreach (var g in new[] { new Conv2dGeometry(67, 1, 28, 28, 16, 4, 4, 2, 2, 1, 1), new Conv2dGeometry(9, 1, 26, 26, 12, 4, 4, 2, 2, 1, 1),
                                  new Conv2dGeometry(7, 2, 27, 27, 10, 4, 4, 2, 2, 2, 2), new Conv2dGeometry(5, 3, 14, 14, 10, 3, 3, 1, 1, 1, 1),
                                  new Conv2dGeometry(4, 1, 24, 24, 16, 4, 4, 2, 2, 1, 1) })
        {
            Assert.That(DirectConv.UsesRowForm(g), Is.True, g.ToString());
            var x = TestData.Random(rng, g.Batch * g.InChannels * g.InPixels);
            var w = TestData.Random(rng, g.OutChannels * g.ColRows);
            var b = TestData.Random(rng, g.OutChannels);
            var dy = TestData.Random(rng, g.Batch * g.OutChannels * g.OutPixels);
            foreach (var bias in new[] { b, null })
                CheckOnThreadCounts(ConvReference.Conv2dForward(x, w, bias, g), $"forward {g}, bias {bias != null}", () => RunForward(g, x, w, bias));
            CheckOnThreadCounts(ConvReference.Conv2dBackwardWeight(x, dy, g), $"dw {g}", () => RunWeightGradient(g, x, dy));
        }
        // An infinite input pixel reaches only the weight-gradient taps and the outputs that read it (the lanes past a
        // row must not turn into 0 · ∞ = NaN elsewhere).
        var gi = new Conv2dGeometry(3, 1, 28, 28, 16, 4, 4, 2, 2, 1, 1);
        var xi = TestData.Random(rng, gi.Batch * gi.InPixels);
        xi[28 * 28 + 10 * 28] = float.PositiveInfinity;   // image 1, row 10, column 0
        var dyi = TestData.Random(rng, gi.Batch * gi.OutChannels * gi.OutPixels);
        var want = ConvReference.Conv2dBackwardWeight(xi, dyi, gi);
        Assert.That(want.Count(v => !float.IsFinite(v)), Is.GreaterThan(0).And.LessThan(want.Length / 2), "the reference: some taps infinite");
        AssertSameFiniteness(RunWeightGradient(gi, xi, dyi), want, "dw");
        var wi = TestData.Random(rng, gi.OutChannels * gi.ColRows);
        AssertSameFiniteness(RunForward(gi, xi, wi, null), ConvReference.Conv2dForward(xi, wi, null, gi), "y");
        // Not taken: 16 input channels, rows of 7 or 17 pixels, and a border that would not fit 16 floats.
        Assert.That(DirectConv.UsesRowForm(new Conv2dGeometry(2, 16, 14, 14, 32, 4, 4, 2, 2, 1, 1)), Is.False);
        Assert.That(DirectConv.UsesRowForm(new Conv2dGeometry(2, 5, 28, 28, 16, 4, 4, 2, 2, 1, 1)), Is.False);
        Assert.That(DirectConv.UsesRowForm(new Conv2dGeometry(2, 1, 34, 34, 16, 4, 4, 2, 2, 1, 1)), Is.False);
        Assert.That(DirectConv.UsesRowForm(new Conv2dGeometry(2, 1, 16, 16, 16, 3, 3, 1, 1, 1, 1)), Is.False);
    }

    [Test]
    public void FlatInputGradientRunsChunksOfImagesAcrossThreads()
    {
        if (!DirectConv.Supported) Assert.Ignore("No AVX-512: the direct convolution is not used on this CPU.");
        // Enough images for several chunks per thread and a short last one; stride 2 (the CNN's second layer, and
        // with padding 2 residues whose outputs do not fill dy's grid) and stride 1 ("same" padding).
        var rng = new Random(37);
        foreach (var g in new[] { new Conv2dGeometry(101, 16, 14, 14, 32, 4, 4, 2, 2, 1, 1), new Conv2dGeometry(90, 8, 13, 15, 24, 4, 4, 2, 2, 2, 2),
                                  new Conv2dGeometry(70, 12, 9, 10, 20, 3, 3, 1, 1, 1, 1),
                                  new Conv2dGeometry(5, 8, 10, 40, 16, 4, 4, 2, 2, 1, 1) })   // rows wider than one interleave
        {
            Assert.That(DirectConv.UsesFlatInputGradient(g), Is.True, g.ToString());
            var dy = TestData.Random(rng, g.Batch * g.OutChannels * g.OutPixels);
            var w = TestData.Random(rng, g.OutChannels * g.ColRows);
            CheckOnThreadCounts(ConvReference.Conv2dBackwardInput(dy, w, g), $"dx {g}", () => RunInputGradient(g, dy, w));
        }
        // A convolution without padding has more input than output pixels per residue: the per-image form.
        Assert.That(DirectConv.UsesFlatInputGradient(new Conv2dGeometry(2, 8, 9, 9, 16, 3, 3, 1, 1, 0, 0)), Is.False);
        Assert.That(DirectConv.AppliesBackwardInput(new Conv2dGeometry(2, 8, 9, 9, 16, 3, 3, 1, 1, 0, 0)), Is.True);
    }

    [Test]
    public void SubpixelInputGradientHandlesUnequalStridesAndBatchChunks()
    {
        // Kernel (4, 3) with stride (2, 3), and 3x2 kernels with stride (1, 2): residues differ per axis. A small chunk
        // limit splits the batch into several phase convolutions with an uneven last chunk.
        var rng = new Random(37);
        long saved = CpuKernels.SubpixelChunkFloats;
        try
        {
            foreach (long limit in new[] { saved, 900L })
            {
                CpuKernels.SubpixelChunkFloats = limit;
                foreach (var g in new[] { new Conv2dGeometry(5, 3, 11, 13, 4, 4, 3, 2, 3, 1, 1), new Conv2dGeometry(5, 2, 7, 9, 3, 3, 2, 1, 2, 1, 0) })
                {
                    var w = TestData.Random(rng, g.OutChannels * g.ColRows);
                    var dy = TestData.Random(rng, g.Batch * g.OutChannels * g.OutPixels);
                    var dx = Tensor.Full([g.Batch * g.InChannels * g.InPixels], float.NaN);
                    K.Conv2dBackwardInput(Tensor.FromArray(dy).Buf, Tensor.FromArray(w).Buf, dx.Buf, g);
                    TestData.Close(dx.ToArray(), ConvReference.Conv2dBackwardInput(dy, w, g), what: $"dx k{g.KernelH}x{g.KernelW} s{g.StrideH}x{g.StrideW}, chunk limit {limit}");
                }
            }
        }
        finally { CpuKernels.SubpixelChunkFloats = saved; }
    }

    [Test]
    public void SingleThreadedScheduleGivesTheSameResults()
    {
        int saved = CpuThreads.Count;
        try { CpuThreads.Count = 1; CheckAll(31); }
        finally { CpuThreads.Count = saved; }
    }

    [Test]
    public void ManyThreadScheduleGivesTheSameResults()
    {
        // More threads than cores still exercises the batch-split and group-split paths and the partial-sum reduction.
        int saved = CpuThreads.Count;
        try { CpuThreads.Count = 3; CheckAll(32); }
        finally { CpuThreads.Count = saved; }
    }

    [TestCase("avx2")]
    [TestCase("scalar")]
    public void OtherGemmPathsGiveTheSameResults(string which)
    {
        var path = which == "avx2" ? Sgemm.Path.Avx2 : Sgemm.Path.Scalar;
        // AVX2 packs 16-wide panels with other packer branches; the scalar GEMM has no packed-B entry and takes the
        // materialised im2col/col2im path.
        if (path == Sgemm.Path.Avx2 && !(System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported))
            Assert.Ignore("AVX2+FMA not supported.");
        try { Sgemm.ForcedPath = path; CheckAll(35); }
        finally { Sgemm.ForcedPath = Sgemm.Path.Auto; }
    }

    [Test]
    public void GemmPathGivesTheSameResultsWithoutDirectConvolution()
    {
        // The narrow layers above take DirectConv on AVX-512 machines; the im2col + GEMM path must still be right.
        bool saved = DirectConv.Enabled;
        try { DirectConv.Enabled = false; CheckAll(38); }
        finally { DirectConv.Enabled = saved; }
    }

    [Test]
    public void DirectConvolutionTakesTheNarrowLayersAndMatchesTheGemmPath()
    {
        if (!DirectConv.Supported) Assert.Ignore("No AVX-512: the direct convolution is not used on this CPU.");
        // The certified-training CNN's layers take the direct path (forward, both gradients; the first layer's input
        // gradient, one channel, does not); wide, grouped and stride-3 layers do not.
        var conv1 = new Conv2dGeometry(5, 1, 28, 28, 16, 4, 4, 2, 2, 1, 1);
        var conv2 = new Conv2dGeometry(5, 16, 14, 14, 32, 4, 4, 2, 2, 1, 1);
        Assert.That(DirectConv.Applies(conv1) && DirectConv.Applies(conv2) && DirectConv.AppliesBackwardInput(conv2), Is.True);
        Assert.That(DirectConv.AppliesBackwardInput(conv1), Is.False);
        Assert.That(DirectConv.Applies(new Conv2dGeometry(2, 16, 14, 14, 65, 3, 3, 1, 1, 1, 1)), Is.False);
        Assert.That(DirectConv.Applies(new Conv2dGeometry(2, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1, 1, 2)), Is.False);
        Assert.That(DirectConv.Applies(new Conv2dGeometry(2, 16, 14, 14, 32, 3, 3, 3, 3, 1, 1)), Is.False);
        // Same results as the GEMM path to rounding, on every thread count (batch smaller than, equal to and larger
        // than the threads; the weight gradient's per-thread partial sums).
        var rng = new Random(39);
        int savedThreads = CpuThreads.Count;
        try
        {
            foreach (var g0 in new[] { conv1, conv2, new Conv2dGeometry(3, 24, 9, 11, 48, 3, 3, 1, 1, 1, 1) })
                foreach (int threads in new[] { 1, 2, 5 })
                    foreach (int batch in new[] { 1, 3, 7 })
                    {
                        CpuThreads.Count = threads;
                        var g = new Conv2dGeometry(batch, g0.InChannels, g0.Height, g0.Width, g0.OutChannels, g0.KernelH, g0.KernelW, g0.StrideH, g0.StrideW, g0.PadH, g0.PadW);
                        var x = TestData.Random(rng, g.Batch * g.InChannels * g.InPixels);
                        var w = TestData.Random(rng, g.OutChannels * g.ColRows);
                        var b = TestData.Random(rng, g.OutChannels);
                        var dy = TestData.Random(rng, g.Batch * g.OutChannels * g.OutPixels);
                        float[] Run(bool direct, int which)
                        {
                            bool saved = DirectConv.Enabled;
                            DirectConv.Enabled = direct;
                            try
                            {
                                var o = Tensor.Full([which == 0 ? dy.Length : which == 1 ? x.Length : w.Length], float.NaN);
                                if (which == 0) K.Conv2dForward(Tensor.FromArray(x).Buf, Tensor.FromArray(w).Buf, Tensor.FromArray(b).Buf, o.Buf, g);
                                else if (which == 1) K.Conv2dBackwardInput(Tensor.FromArray(dy).Buf, Tensor.FromArray(w).Buf, o.Buf, g);
                                else K.Conv2dBackwardWeight(Tensor.FromArray(x).Buf, Tensor.FromArray(dy).Buf, o.Buf, g);
                                return o.ToArray();
                            }
                            finally { DirectConv.Enabled = saved; }
                        }
                        string what = $"{g}, {threads} threads";
                        TestData.Close(Run(true, 0), Run(false, 0), what: "forward " + what);
                        TestData.Close(Run(true, 1), Run(false, 1), what: "dx " + what);
                        TestData.Close(Run(true, 2), Run(false, 2), what: "dw " + what);
                    }
        }
        finally { CpuThreads.Count = savedThreads; }
    }

    [Test]
    public unsafe void ImplicitIm2ColForwardEqualsGemmOfTheColumnMatrixExactly()
    {
        // The packers only change where B comes from, not the arithmetic: every output must be bit-identical to
        // Sgemm.Run on the stored im2col matrix (one image per call, so no block copy is involved).
        bool savedDirect = DirectConv.Enabled;
        DirectConv.Enabled = false;
        try { ImplicitIm2ColExactly(); }
        finally { DirectConv.Enabled = savedDirect; }
    }

    private static unsafe void ImplicitIm2ColExactly()
    {
        var rng = new Random(36);
        foreach (var t in new[] { (1, 5, 9, 11, 7, 3, 1, 1, 1, 1), (1, 40, 9, 11, 20, 3, 1, 1, 1, 1), (1, 3, 40, 37, 5, 3, 1, 1, 1, 1),
                                  (1, 5, 21, 19, 7, 3, 2, 1, 1, 1), (1, 4, 11, 10, 8, 4, 3, 2, 1, 1) })
        {
            var g = Geo(t);
            var x = TestData.Random(rng, g.InChannels * g.InPixels);
            var w = TestData.Random(rng, g.OutChannels * g.ColRows);
            var y = Tensor.Full([g.OutChannels * g.OutPixels], float.NaN);
            K.Conv2dForward(Tensor.FromArray(x).Buf, Tensor.FromArray(w).Buf, null, y.Buf, g);
            var col = Tensor.FromArray(ConvReference.Im2Col(x, g));
            var expect = new float[y.Numel];
            fixed (float* pw = w, pe = expect)
                Sgemm.Run(false, false, g.OutChannels, g.OutPixels, g.ColRows, 1f, pw, g.ColRows, CpuKernels.P(col.Buf), g.OutPixels, 0f, pe, g.OutPixels);
            Assert.That(y.ToArray(), Is.EqualTo(expect), t.ToString());
        }
    }

    [Test]
    public void Im2ColAndCol2ImMatchReference()
    {
        var rng = new Random(33);
        foreach (var t in Combos)
        {
            var g = Geo(t);
            var img = TestData.Random(rng, g.GroupInChannels * g.InPixels);
            var col = Tensor.Full([g.ColRows * g.OutPixels], float.NaN);
            K.Im2Col(Tensor.FromArray(img).Buf, col.Buf, g);
            Assert.That(col.ToArray(), Is.EqualTo(ConvReference.Im2Col(img, g)), "im2col " + t);

            var c = TestData.Random(rng, g.ColRows * g.OutPixels);
            var acc0 = TestData.Random(rng, img.Length);
            var acc = Tensor.FromArray(acc0);
            K.Col2Im(Tensor.FromArray(c).Buf, acc.Buf, g);
            ConvReference.Col2Im(c, acc0, g);
            TestData.Close(acc.ToArray(), acc0, 1e-5, 1e-5, "col2im " + t);
        }
    }

    [Test]
    public void BiasKernelsMatchReference()
    {
        var rng = new Random(34);
        foreach (var (outer, ch, inner) in new[] { (1, 1, 1), (7, 5, 1), (3, 19, 1), (2, 3, 17), (5, 4, 9), (130, 33, 1), (4, 6, 1025) })
        {
            var y0 = TestData.Random(rng, outer * ch * inner);
            var b = TestData.Random(rng, ch);
            var y = Tensor.FromArray(y0);
            K.AddBias(y.Buf, Tensor.FromArray(b).Buf, outer, ch, inner);
            ConvReference.AddBias(y0, b, outer, ch, inner);
            Assert.That(y.ToArray(), Is.EqualTo(y0));

            var db = Tensor.Full([ch], float.NaN);
            K.BiasGrad(Tensor.FromArray(y0).Buf, db.Buf, outer, ch, inner);
            TestData.Close(db.ToArray(), ConvReference.BiasGrad(y0, outer, ch, inner), 1e-4, 1e-5, $"bias grad {outer}x{ch}x{inner}");
        }
    }
}
