using Engine.Autograd;
using Engine.Cpu;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Transposes (adjoints) of the linear layers, as differentiable tensor ops on the device kernels: CROWN pushes its
/// coefficient tensors backward through a layer with the layer's own backward machinery instead of materialising
/// the layer as a dense matrix, and alpha-CROWN / certified training differentiate through them.
/// </summary>
internal static class LinearAdjoints
{
    /// <summary>
    /// conv2dᵀ: a [N, Cout, OutH, OutW] → [N, Cin, H, W] with <c>conv2d(x)·a == x·ConvTranspose(a)</c> for x of
    /// shape [N, Cin, H, W]. Differentiable in a (gradient: the convolution) and in the weight.
    /// </summary>
    public static Tensor ConvTranspose(Tensor a, Tensor weight, int height, int width, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups)
    {
        int n = a.Dims[0], cout = weight.Dims[0], cin = weight.Dims[1] * groups;
        var geo = new Conv2dGeometry(n, cin, height, width, cout, weight.Dims[2], weight.Dims[3], stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        if (a.Dims[1] != cout || a.Dims[2] != geo.OutH || a.Dims[3] != geo.OutW)
            throw new ArgumentException($"ConvTranspose: coefficients {ShapeUtil.Format(a.Dims)} do not match the convolution's output [{n}, {cout}, {geo.OutH}, {geo.OutW}].");
        var dx = a.NewEmpty([n, cin, height, width]);
        // Many images (CROWN's rows) with few channels: the lane-batched kernel; otherwise the convolution's own.
        if (n >= 16 && geo.GroupInChannels * geo.GroupOutChannels <= 1024) a.K.BoundConvTranspose(a.Buf, weight.Buf, dx.Buf, geo);
        else if (n > 0) a.K.Conv2dBackwardInput(a.Buf, weight.Buf, dx.Buf, geo);
        return GradRecorder.Record(dx, a, weight, (g, ai, wi) =>
        {
            Tensor? ga = null, gw = null;
            if (ai.RequiresGrad)
            {
                ga = g.NewEmpty(ai.Dims);
                if (n > 0) g.K.Conv2dForward(g.Buf, wi.Buf, null, ga.Buf, geo);
            }
            if (wi.RequiresGrad)
            {
                // out[n, ci, h, w] = Σ a[n, co, oh, ow] W[co, ci, kh, kw], so dW is conv2d's weight gradient with x = g, dy = a.
                gw = wi.NewEmpty(wi.Dims);
                g.K.Conv2dBackwardWeight(g.Buf, ai.Buf, gw.Buf, geo);
            }
            return [ga, gw];
        }, "ConvTranspose");
    }

    /// <summary>
    /// <see cref="ConvTranspose"/> of a [N, Cout, OutH, OutW] together with the per-plane sums of a ([N, Cout]: the
    /// coefficients of the convolution's bias), as one CPU node whose backward adds the sums' gradient into the
    /// coefficient gradient in place (the composition materialises it at full size and adds it in another pass).
    /// Null off the CPU.
    /// </summary>
    public static unsafe (Tensor Back, Tensor Sums)? ConvTransposeWithSums(Tensor a, Tensor weight, int height, int width, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups)
    {
        if (a.Device != Device.Cpu || a.Rank != 4) return null;
        Tensor back;
        using (new NoGrad()) back = ConvTranspose(a, weight, height, width, stride, padding, dilation, groups);
        int n = a.Dims[0], cout = a.Dims[1], plane = a.Dims[2] * a.Dims[3], cin = back.Dims[1];
        var geo = new Conv2dGeometry(n, cin, height, width, cout, weight.Dims[2], weight.Dims[3], stride.H, stride.W, padding.H, padding.W, dilation.H, dilation.W, groups);
        // The reduction kernel the composition (a.Sum over the plane) uses, so the bias term is the same.
        Tensor sums;
        using (new NoGrad()) sums = a.Detach().Sum([2, 3]);
        GradRecorder.RecordMulti([back, sums], [a, weight], (g, ins) =>
        {
            var (ai, wi) = (ins[0], ins[1]);
            Tensor? ga = null, gw = null;
            var gb = g[0];
            if (ai.RequiresGrad)
            {
                ga = ai.NewEmpty(ai.Dims);
                if (gb != null) gb.K.Conv2dForward(gb.Buf, wi.Buf, null, ga.Buf, geo);
                else ga.K.Fill(ga.Buf, ga.Numel, 0f);
                if (g[1] is { } gs)
                {
                    float* pg = CpuPtr(ga), pgs = CpuPtr(gs);
                    CpuThreads.For(n * cout, Math.Max(1, 16384 / Math.Max(1, plane)), (s, e) =>
                    {
                        for (int q = s; q < e; q++)
                        {
                            float* x = pg + (long)q * plane;
                            float v = pgs[q];
                            for (int i = 0; i < plane; i++) x[i] += v;
                        }
                    });
                    GC.KeepAlive(gs);
                }
            }
            if (wi.RequiresGrad && gb != null)
            {
                gw = wi.NewEmpty(wi.Dims);
                gb.K.Conv2dBackwardWeight(gb.Buf, ai.Buf, gw.Buf, geo);
            }
            return [ga, gw];
        }, "ConvTransposeWithSums");
        return (back, sums);
    }

    private static unsafe float* CpuPtr(Tensor t) => ((CpuStorage)t.Storage).RawPointer + t.Offset;

    /// <summary>avg_pool2dᵀ: a [P, OutH, OutW] planes spread back over [P, H, W]. Differentiable.</summary>
    public static Tensor AvgPoolTranspose(Tensor a, Pool2dGeometry geo, bool countIncludePad)
    {
        var dx = a.NewEmpty([geo.Planes, geo.Height, geo.Width]);
        a.K.AvgPool2dBackward(a.Buf, dx.Buf, geo, countIncludePad);
        return GradRecorder.Record(dx, a, (g, _) =>
        {
            var ga = g.NewEmpty([geo.Planes, geo.OutH, geo.OutW]);
            g.K.AvgPool2dForward(g.Buf, ga.Buf, geo, countIncludePad);
            return [ga];
        }, "AvgPoolTranspose");
    }

    /// <summary>
    /// Scatter: a [P, OutH, OutW] added at the in-plane positions <paramref name="indices"/> (floats, [P, OutH, OutW])
    /// of [P, H, W] planes, zero elsewhere. Differentiable in a (gradient: the gather at the same positions).
    /// </summary>
    public static Tensor Scatter(Tensor a, Tensor indices, Pool2dGeometry geo)
    {
        var dx = a.NewEmpty([geo.Planes, geo.Height, geo.Width]);
        a.K.MaxPool2dBackward(a.Buf, indices.Buf, dx.Buf, geo);
        return GradRecorder.Record(dx, a, (g, _) =>
        {
            var idx = indices.ToArray();
            int plane = geo.Height * geo.Width, outPlane = geo.OutH * geo.OutW;
            var global = new int[idx.Length];
            for (int i = 0; i < idx.Length; i++) global[i] = i / outPlane * plane + (int)idx[i];
            return [g.Reshape(g.Numel).IndexSelect(0, global).Reshape(geo.Planes, geo.OutH, geo.OutW)];
        }, "Scatter");
    }

    /// <summary>The positions (as float in-plane indices) of the maxima of <paramref name="x"/> [P, H, W] over each window.</summary>
    public static Tensor ArgMaxWindows(Tensor x, Pool2dGeometry geo)
    {
        var y = x.NewEmpty([geo.Planes, geo.OutH, geo.OutW]);
        var idx = x.NewEmpty(y.Dims);
        x.K.MaxPool2dForward(x.Buf, y.Buf, idx.Buf, geo);
        return idx;
    }
}
