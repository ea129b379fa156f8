using Engine.Tensors;

namespace Engine.Cpu.Reference;

/// <summary>
/// Scalar reference implementations of the convolution kernels, straight from the definition (direct
/// convolution, double accumulation), for tests. Layouts as in <see cref="IKernels.Conv2dForward"/>.
/// </summary>
public static class ConvReference
{
    /// <summary>Direct convolution: y[n, oc, oh, ow] = bias[oc] + sum over the group's channels and the kernel window.</summary>
    public static float[] Conv2dForward(float[] x, float[] w, float[]? bias, Conv2dGeometry g)
    {
        var y = new float[g.Batch * g.OutChannels * g.OutPixels];
        int cg = g.GroupInChannels, og = g.GroupOutChannels;
        for (int n = 0; n < g.Batch; n++)
            for (int oc = 0; oc < g.OutChannels; oc++)
            {
                int grp = oc / og;
                for (int oh = 0; oh < g.OutH; oh++)
                    for (int ow = 0; ow < g.OutW; ow++)
                    {
                        double s = bias?[oc] ?? 0;
                        for (int c = 0; c < cg; c++)
                            for (int i = 0; i < g.KernelH; i++)
                                for (int j = 0; j < g.KernelW; j++)
                                {
                                    int ih = oh * g.StrideH - g.PadH + i * g.DilationH, iw = ow * g.StrideW - g.PadW + j * g.DilationW;
                                    if (ih < 0 || ih >= g.Height || iw < 0 || iw >= g.Width) continue;
                                    int ic = grp * cg + c;
                                    s += (double)x[((n * g.InChannels + ic) * g.Height + ih) * g.Width + iw] * w[((oc * cg + c) * g.KernelH + i) * g.KernelW + j];
                                }
                        y[((n * g.OutChannels + oc) * g.OutH + oh) * g.OutW + ow] = (float)s;
                    }
            }
        return y;
    }

    /// <summary>dx as the transpose of the direct convolution: every (output, tap) pair scatters dy * w to its input pixel.</summary>
    public static float[] Conv2dBackwardInput(float[] dy, float[] w, Conv2dGeometry g)
    {
        var dx = new double[g.Batch * g.InChannels * g.InPixels];
        int cg = g.GroupInChannels, og = g.GroupOutChannels;
        for (int n = 0; n < g.Batch; n++)
            for (int oc = 0; oc < g.OutChannels; oc++)
                for (int oh = 0; oh < g.OutH; oh++)
                    for (int ow = 0; ow < g.OutW; ow++)
                    {
                        double d = dy[((n * g.OutChannels + oc) * g.OutH + oh) * g.OutW + ow];
                        for (int c = 0; c < cg; c++)
                            for (int i = 0; i < g.KernelH; i++)
                                for (int j = 0; j < g.KernelW; j++)
                                {
                                    int ih = oh * g.StrideH - g.PadH + i * g.DilationH, iw = ow * g.StrideW - g.PadW + j * g.DilationW;
                                    if (ih < 0 || ih >= g.Height || iw < 0 || iw >= g.Width) continue;
                                    int ic = oc / og * cg + c;
                                    dx[((n * g.InChannels + ic) * g.Height + ih) * g.Width + iw] += d * w[((oc * cg + c) * g.KernelH + i) * g.KernelW + j];
                                }
                    }
        return Array.ConvertAll(dx, v => (float)v);
    }

    /// <summary>dw[oc, c, i, j] = sum over images and output pixels of dy * the input pixel under tap (i, j).</summary>
    public static float[] Conv2dBackwardWeight(float[] x, float[] dy, Conv2dGeometry g)
    {
        int cg = g.GroupInChannels, og = g.GroupOutChannels;
        var dw = new float[g.OutChannels * cg * g.KernelH * g.KernelW];
        for (int oc = 0; oc < g.OutChannels; oc++)
            for (int c = 0; c < cg; c++)
                for (int i = 0; i < g.KernelH; i++)
                    for (int j = 0; j < g.KernelW; j++)
                    {
                        double s = 0;
                        int ic = oc / og * cg + c;
                        for (int n = 0; n < g.Batch; n++)
                            for (int oh = 0; oh < g.OutH; oh++)
                                for (int ow = 0; ow < g.OutW; ow++)
                                {
                                    int ih = oh * g.StrideH - g.PadH + i * g.DilationH, iw = ow * g.StrideW - g.PadW + j * g.DilationW;
                                    if (ih < 0 || ih >= g.Height || iw < 0 || iw >= g.Width) continue;
                                    s += (double)dy[((n * g.OutChannels + oc) * g.OutH + oh) * g.OutW + ow] * x[((n * g.InChannels + ic) * g.Height + ih) * g.Width + iw];
                                }
                        dw[((oc * cg + c) * g.KernelH + i) * g.KernelW + j] = (float)s;
                    }
        return dw;
    }

    /// <summary>Column matrix of one group of one image (image = [Cin/groups, H, W]).</summary>
    public static float[] Im2Col(float[] image, Conv2dGeometry g)
    {
        int cg = g.GroupInChannels;
        var col = new float[g.ColRows * g.OutPixels];
        for (int c = 0; c < cg; c++)
            for (int i = 0; i < g.KernelH; i++)
                for (int j = 0; j < g.KernelW; j++)
                    for (int oh = 0; oh < g.OutH; oh++)
                        for (int ow = 0; ow < g.OutW; ow++)
                        {
                            int ih = oh * g.StrideH - g.PadH + i * g.DilationH, iw = ow * g.StrideW - g.PadW + j * g.DilationW;
                            bool inside = ih >= 0 && ih < g.Height && iw >= 0 && iw < g.Width;
                            col[((c * g.KernelH + i) * g.KernelW + j) * g.OutPixels + oh * g.OutW + ow] = inside ? image[(c * g.Height + ih) * g.Width + iw] : 0f;
                        }
        return col;
    }

    /// <summary>image += fold(col), the adjoint of <see cref="Im2Col"/>.</summary>
    public static void Col2Im(float[] col, float[] image, Conv2dGeometry g)
    {
        int cg = g.GroupInChannels;
        for (int c = 0; c < cg; c++)
            for (int i = 0; i < g.KernelH; i++)
                for (int j = 0; j < g.KernelW; j++)
                    for (int oh = 0; oh < g.OutH; oh++)
                        for (int ow = 0; ow < g.OutW; ow++)
                        {
                            int ih = oh * g.StrideH - g.PadH + i * g.DilationH, iw = ow * g.StrideW - g.PadW + j * g.DilationW;
                            if (ih < 0 || ih >= g.Height || iw < 0 || iw >= g.Width) continue;
                            image[(c * g.Height + ih) * g.Width + iw] += col[((c * g.KernelH + i) * g.KernelW + j) * g.OutPixels + oh * g.OutW + ow];
                        }
    }

    /// <summary>y[o, c, i] += bias[c].</summary>
    public static void AddBias(float[] y, float[] bias, int outer, int channels, int inner)
    {
        for (int o = 0; o < outer; o++)
            for (int c = 0; c < channels; c++)
                for (int i = 0; i < inner; i++)
                    y[(o * channels + c) * inner + i] += bias[c];
    }

    /// <summary>db[c] = sum over o, i of dy[o, c, i].</summary>
    public static float[] BiasGrad(float[] dy, int outer, int channels, int inner)
    {
        var db = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double s = 0;
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                    s += dy[(o * channels + c) * inner + i];
            db[c] = (float)s;
        }
        return db;
    }
}
