namespace Engine.Tensors;

/// <summary>
/// Sizes of one 2-D convolution (NCHW input, [Cout, Cin/groups, KH, KW] weight), with the output size
/// derived: Out = (In + 2*Pad - Dilation*(Kernel-1) - 1) / Stride + 1. Validation with shape-naming
/// messages happens in <see cref="Tensor.Conv2d(Tensor, Tensor, Tensor?, int, int, int, int)"/>; the
/// constructor only rejects values no kernel could run.
/// </summary>
public readonly record struct Conv2dGeometry
{
    /// <summary>Creates the geometry and computes <see cref="OutH"/> and <see cref="OutW"/>.</summary>
    public Conv2dGeometry(int batch, int inChannels, int height, int width, int outChannels, int kernelH, int kernelW,
                          int strideH = 1, int strideW = 1, int padH = 0, int padW = 0, int dilationH = 1, int dilationW = 1, int groups = 1)
    {
        if (batch < 0 || inChannels < 1 || height < 0 || width < 0 || outChannels < 1 || kernelH < 1 || kernelW < 1 ||
            strideH < 1 || strideW < 1 || padH < 0 || padW < 0 || dilationH < 1 || dilationW < 1 || groups < 1 ||
            inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Invalid convolution geometry: batch {batch}, channels {inChannels}->{outChannels}, input {height}x{width}, " +
                                        $"kernel {kernelH}x{kernelW}, stride {strideH}x{strideW}, padding {padH}x{padW}, dilation {dilationH}x{dilationW}, groups {groups}.");
        Batch = batch; InChannels = inChannels; Height = height; Width = width; OutChannels = outChannels;
        KernelH = kernelH; KernelW = kernelW; StrideH = strideH; StrideW = strideW; PadH = padH; PadW = padW;
        DilationH = dilationH; DilationW = dilationW; Groups = groups;
        OutH = (height + 2 * padH - dilationH * (kernelH - 1) - 1) / strideH + 1;
        OutW = (width + 2 * padW - dilationW * (kernelW - 1) - 1) / strideW + 1;
        if (height + 2 * padH < dilationH * (kernelH - 1) + 1 || width + 2 * padW < dilationW * (kernelW - 1) + 1)
            throw new ArgumentException($"Invalid convolution geometry: kernel {kernelH}x{kernelW} (dilation {dilationH}x{dilationW}) is larger than the padded input {height + 2 * padH}x{width + 2 * padW}.");
    }

    /// <summary>Images in the batch (N).</summary>
    public int Batch { get; }
    /// <summary>Input channels (all groups).</summary>
    public int InChannels { get; }
    /// <summary>Input height.</summary>
    public int Height { get; }
    /// <summary>Input width.</summary>
    public int Width { get; }
    /// <summary>Output channels (all groups).</summary>
    public int OutChannels { get; }
    /// <summary>Kernel height.</summary>
    public int KernelH { get; }
    /// <summary>Kernel width.</summary>
    public int KernelW { get; }
    /// <summary>Vertical stride.</summary>
    public int StrideH { get; }
    /// <summary>Horizontal stride.</summary>
    public int StrideW { get; }
    /// <summary>Zero padding on the top and bottom.</summary>
    public int PadH { get; }
    /// <summary>Zero padding on the left and right.</summary>
    public int PadW { get; }
    /// <summary>Vertical dilation.</summary>
    public int DilationH { get; }
    /// <summary>Horizontal dilation.</summary>
    public int DilationW { get; }
    /// <summary>Channel groups (InChannels and OutChannels are multiples).</summary>
    public int Groups { get; }
    /// <summary>Output height.</summary>
    public int OutH { get; }
    /// <summary>Output width.</summary>
    public int OutW { get; }

    /// <summary>Input channels per group.</summary>
    public int GroupInChannels => InChannels / Groups;
    /// <summary>Output channels per group.</summary>
    public int GroupOutChannels => OutChannels / Groups;
    /// <summary>Rows of one group's column matrix: GroupInChannels * KernelH * KernelW (the GEMM inner size).</summary>
    public int ColRows => GroupInChannels * KernelH * KernelW;
    /// <summary>Output pixels per image: OutH * OutW (the GEMM column count).</summary>
    public int OutPixels => OutH * OutW;
    /// <summary>Input pixels per channel: Height * Width.</summary>
    public int InPixels => Height * Width;
    /// <summary>True for a 1x1, stride-1, unpadded convolution: the input already is the column matrix.</summary>
    public bool IsPointwise => KernelH == 1 && KernelW == 1 && StrideH == 1 && StrideW == 1 && PadH == 0 && PadW == 0;
}
