using Engine.Tensors;

namespace Engine.Cpu;

// Pooling runs plane by plane (planes are independent), parallelised over planes. Windows are clipped to the
// input once per output pixel, so the inner loops carry no bounds checks.
public sealed unsafe partial class CpuKernels
{
    private static int PlaneChunk(in Pool2dGeometry g)
        => Math.Max(1, ParallelCopyElements / Math.Max(1, g.OutH * g.OutW * g.KernelH * g.KernelW));

    /// <inheritdoc/>
    public void MaxPool2dForward(Buf x, Buf y, Buf indices, in Pool2dGeometry g)
    {
        var geo = g;
        float* px = P(x), py = P(y), pi = P(indices);
        int inPlane = geo.Height * geo.Width, outPlane = geo.OutH * geo.OutW, w = geo.Width;
        CpuThreads.For(geo.Planes, PlaneChunk(geo), (s, e) =>
        {
            for (int p = s; p < e; p++)
            {
                float* xp = px + (long)p * inPlane;
                float* yp = py + (long)p * outPlane;
                float* ip = pi + (long)p * outPlane;
                for (int oh = 0; oh < geo.OutH; oh++)
                {
                    int hs = oh * geo.StrideH - geo.PadH;
                    int h0 = Math.Max(hs, 0), h1 = Math.Min(hs + geo.KernelH, geo.Height);
                    for (int ow = 0; ow < geo.OutW; ow++)
                    {
                        int ws = ow * geo.StrideW - geo.PadW;
                        int w0 = Math.Max(ws, 0), w1 = Math.Min(ws + geo.KernelW, w);
                        int bi = h0 * w + w0;
                        float best = xp[bi];
                        for (int hh = h0; hh < h1; hh++)
                        {
                            float* row = xp + hh * w;
                            for (int ww = w0; ww < w1; ww++)
                            {
                                float v = row[ww];
                                // NaN wins (and propagates), as in PyTorch.
                                if (v > best || float.IsNaN(v)) { best = v; bi = hh * w + ww; }
                            }
                        }
                        yp[oh * geo.OutW + ow] = best;
                        ip[oh * geo.OutW + ow] = bi;
                    }
                }
            }
        });
    }

    /// <inheritdoc/>
    public void MaxPool2dBackward(Buf dy, Buf indices, Buf dx, in Pool2dGeometry g)
    {
        var geo = g;
        float* pdy = P(dy), pi = P(indices), pdx = P(dx);
        int inPlane = geo.Height * geo.Width, outPlane = geo.OutH * geo.OutW;
        CpuThreads.For(geo.Planes, Math.Max(1, ParallelCopyElements / Math.Max(1, inPlane + outPlane)), (s, e) =>
        {
            for (int p = s; p < e; p++)
            {
                float* dxp = pdx + (long)p * inPlane;
                float* dyp = pdy + (long)p * outPlane;
                float* ip = pi + (long)p * outPlane;
                new Span<float>(dxp, inPlane).Clear();
                for (int o = 0; o < outPlane; o++) dxp[(int)ip[o]] += dyp[o];
            }
        });
    }

    /// <inheritdoc/>
    public void AvgPool2dForward(Buf x, Buf y, in Pool2dGeometry g, bool countIncludePad)
    {
        var geo = g;
        float* px = P(x), py = P(y);
        int inPlane = geo.Height * geo.Width, outPlane = geo.OutH * geo.OutW, w = geo.Width;
        CpuThreads.For(geo.Planes, PlaneChunk(geo), (s, e) =>
        {
            for (int p = s; p < e; p++)
            {
                float* xp = px + (long)p * inPlane;
                float* yp = py + (long)p * outPlane;
                for (int oh = 0; oh < geo.OutH; oh++)
                {
                    int hs = oh * geo.StrideH - geo.PadH;
                    int h0 = Math.Max(hs, 0), h1 = Math.Min(hs + geo.KernelH, geo.Height);
                    for (int ow = 0; ow < geo.OutW; ow++)
                    {
                        int ws = ow * geo.StrideW - geo.PadW;
                        int w0 = Math.Max(ws, 0), w1 = Math.Min(ws + geo.KernelW, w);
                        float sum = 0f;
                        for (int hh = h0; hh < h1; hh++)
                        {
                            float* row = xp + hh * w;
                            for (int ww = w0; ww < w1; ww++) sum += row[ww];
                        }
                        int div = countIncludePad ? geo.KernelH * geo.KernelW : (h1 - h0) * (w1 - w0);
                        yp[oh * geo.OutW + ow] = sum / div;
                    }
                }
            }
        });
    }

    /// <inheritdoc/>
    public void AvgPool2dBackward(Buf dy, Buf dx, in Pool2dGeometry g, bool countIncludePad)
    {
        var geo = g;
        float* pdy = P(dy), pdx = P(dx);
        int inPlane = geo.Height * geo.Width, outPlane = geo.OutH * geo.OutW, w = geo.Width;
        CpuThreads.For(geo.Planes, PlaneChunk(geo), (s, e) =>
        {
            for (int p = s; p < e; p++)
            {
                float* dxp = pdx + (long)p * inPlane;
                float* dyp = pdy + (long)p * outPlane;
                new Span<float>(dxp, inPlane).Clear();
                for (int oh = 0; oh < geo.OutH; oh++)
                {
                    int hs = oh * geo.StrideH - geo.PadH;
                    int h0 = Math.Max(hs, 0), h1 = Math.Min(hs + geo.KernelH, geo.Height);
                    for (int ow = 0; ow < geo.OutW; ow++)
                    {
                        int ws = ow * geo.StrideW - geo.PadW;
                        int w0 = Math.Max(ws, 0), w1 = Math.Min(ws + geo.KernelW, w);
                        int div = countIncludePad ? geo.KernelH * geo.KernelW : (h1 - h0) * (w1 - w0);
                        float d = dyp[oh * geo.OutW + ow] / div;
                        for (int hh = h0; hh < h1; hh++)
                        {
                            float* row = dxp + hh * w;
                            for (int ww = w0; ww < w1; ww++) row[ww] += d;
                        }
                    }
                }
            }
        });
    }
}
