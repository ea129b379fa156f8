namespace Engine.Tensors;

/// <summary>
/// Sizes of one 2-D pooling over <see cref="Planes"/> independent H×W planes (N*C of an NCHW tensor), with the
/// output size derived as floor((In + 2*Pad - Kernel) / Stride) + 1 (PyTorch's ceil_mode = false).
/// </summary>
public readonly record struct Pool2dGeometry
{
    /// <summary>Creates the geometry; padding may be at most half the kernel, so no window lies wholly in padding.</summary>
    public Pool2dGeometry(int planes, int height, int width, int kernelH, int kernelW, int strideH, int strideW, int padH, int padW)
    {
        if (planes < 0 || height < 0 || width < 0 || kernelH < 1 || kernelW < 1 || strideH < 1 || strideW < 1 ||
            padH < 0 || padW < 0 || 2 * padH > kernelH || 2 * padW > kernelW || height + 2 * padH < kernelH || width + 2 * padW < kernelW)
            throw new ArgumentException($"Invalid pooling geometry: input {height}x{width}, kernel {kernelH}x{kernelW}, stride {strideH}x{strideW}, padding {padH}x{padW}.");
        Planes = planes; Height = height; Width = width; KernelH = kernelH; KernelW = kernelW;
        StrideH = strideH; StrideW = strideW; PadH = padH; PadW = padW;
        OutH = (height + 2 * padH - kernelH) / strideH + 1;
        OutW = (width + 2 * padW - kernelW) / strideW + 1;
    }

    /// <summary>Independent planes (batch × channels).</summary>
    public int Planes { get; }
    /// <summary>Input height.</summary>
    public int Height { get; }
    /// <summary>Input width.</summary>
    public int Width { get; }
    /// <summary>Window height.</summary>
    public int KernelH { get; }
    /// <summary>Window width.</summary>
    public int KernelW { get; }
    /// <summary>Vertical stride.</summary>
    public int StrideH { get; }
    /// <summary>Horizontal stride.</summary>
    public int StrideW { get; }
    /// <summary>Implicit padding on the top and bottom (ignored by max, counted or not by average).</summary>
    public int PadH { get; }
    /// <summary>Implicit padding on the left and right.</summary>
    public int PadW { get; }
    /// <summary>Output height.</summary>
    public int OutH { get; }
    /// <summary>Output width.</summary>
    public int OutW { get; }
}
