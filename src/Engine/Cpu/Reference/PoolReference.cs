using Engine.Tensors;

namespace Engine.Cpu.Reference;

/// <summary>Scalar reference implementations of the pooling kernels, for tests.</summary>
public static class PoolReference
{
    /// <summary>Max over each window (padding excluded), with the in-plane index of the first maximum.</summary>
    public static (float[] y, float[] indices) MaxPool2dForward(float[] x, Pool2dGeometry g)
    {
        int outPlane = g.OutH * g.OutW, inPlane = g.Height * g.Width;
        var y = new float[g.Planes * outPlane];
        var idx = new float[g.Planes * outPlane];
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OutH; oh++)
                for (int ow = 0; ow < g.OutW; ow++)
                {
                    float best = float.NegativeInfinity; int bi = -1;
                    for (int i = 0; i < g.KernelH; i++)
                        for (int j = 0; j < g.KernelW; j++)
                        {
                            int h = oh * g.StrideH - g.PadH + i, w = ow * g.StrideW - g.PadW + j;
                            if (h < 0 || h >= g.Height || w < 0 || w >= g.Width) continue;
                            float v = x[p * inPlane + h * g.Width + w];
                            if (bi < 0 || v > best || float.IsNaN(v)) { best = v; bi = h * g.Width + w; }
                        }
                    y[p * outPlane + oh * g.OutW + ow] = best;
                    idx[p * outPlane + oh * g.OutW + ow] = bi;
                }
        return (y, idx);
    }

    /// <summary>dx[plane, indices] += dy.</summary>
    public static float[] MaxPool2dBackward(float[] dy, float[] indices, Pool2dGeometry g)
    {
        int outPlane = g.OutH * g.OutW, inPlane = g.Height * g.Width;
        var dx = new float[g.Planes * inPlane];
        for (int p = 0; p < g.Planes; p++)
            for (int o = 0; o < outPlane; o++)
                dx[p * inPlane + (int)indices[p * outPlane + o]] += dy[p * outPlane + o];
        return dx;
    }

    /// <summary>Divisor of one window: the full kernel area, or the part inside the input.</summary>
    public static int Divisor(Pool2dGeometry g, int oh, int ow, bool countIncludePad)
    {
        if (countIncludePad) return g.KernelH * g.KernelW;
        int h0 = oh * g.StrideH - g.PadH, w0 = ow * g.StrideW - g.PadW;
        int hs = Math.Min(h0 + g.KernelH, g.Height) - Math.Max(h0, 0), ws = Math.Min(w0 + g.KernelW, g.Width) - Math.Max(w0, 0);
        return hs * ws;
    }

    /// <summary>Mean over each window.</summary>
    public static float[] AvgPool2dForward(float[] x, Pool2dGeometry g, bool countIncludePad)
    {
        int outPlane = g.OutH * g.OutW, inPlane = g.Height * g.Width;
        var y = new float[g.Planes * outPlane];
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OutH; oh++)
                for (int ow = 0; ow < g.OutW; ow++)
                {
                    double s = 0;
                    for (int i = 0; i < g.KernelH; i++)
                        for (int j = 0; j < g.KernelW; j++)
                        {
                            int h = oh * g.StrideH - g.PadH + i, w = ow * g.StrideW - g.PadW + j;
                            if (h >= 0 && h < g.Height && w >= 0 && w < g.Width) s += x[p * inPlane + h * g.Width + w];
                        }
                    y[p * outPlane + oh * g.OutW + ow] = (float)(s / Divisor(g, oh, ow, countIncludePad));
                }
        return y;
    }

    /// <summary>Each dy spread evenly over its window.</summary>
    public static float[] AvgPool2dBackward(float[] dy, Pool2dGeometry g, bool countIncludePad)
    {
        int outPlane = g.OutH * g.OutW, inPlane = g.Height * g.Width;
        var dx = new double[g.Planes * inPlane];
        for (int p = 0; p < g.Planes; p++)
            for (int oh = 0; oh < g.OutH; oh++)
                for (int ow = 0; ow < g.OutW; ow++)
                {
                    double d = dy[p * outPlane + oh * g.OutW + ow] / (double)Divisor(g, oh, ow, countIncludePad);
                    for (int i = 0; i < g.KernelH; i++)
                        for (int j = 0; j < g.KernelW; j++)
                        {
                            int h = oh * g.StrideH - g.PadH + i, w = ow * g.StrideW - g.PadW + j;
                            if (h >= 0 && h < g.Height && w >= 0 && w < g.Width) dx[p * inPlane + h * g.Width + w] += d;
                        }
                }
        return Array.ConvertAll(dx, v => (float)v);
    }
}
