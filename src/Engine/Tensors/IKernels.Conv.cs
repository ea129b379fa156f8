namespace Engine.Tensors;

/// <summary>
/// Convolution kernels. The three Conv2d* members are whole-batch operations so each device can pick its own
/// schedule (the CPU runs im2col + GEMM parallelised over images); <see cref="Im2Col"/> and <see cref="Col2Im"/>
/// are the building blocks a backend can compose with its GEMM. Layouts: x [N, Cin, H, W], w [Cout, Cin/groups,
/// KH, KW], y [N, Cout, OutH, OutW]; a column matrix is [Cin/groups * KH * KW, OutH * OutW].
/// </summary>
public partial interface IKernels
{
    /// <summary>y = conv2d(x, w) (+ bias[c] on every pixel of output channel c when <paramref name="bias"/> is given). y is overwritten.</summary>
    void Conv2dForward(Buf x, Buf w, Buf? bias, Buf y, in Conv2dGeometry g);

    /// <summary>dx = dL/dx of conv2d given dy = dL/dy and the weight. dx is overwritten.</summary>
    void Conv2dBackwardInput(Buf dy, Buf w, Buf dx, in Conv2dGeometry g);

    /// <summary>dw = dL/dw of conv2d given the input and dy, summed over the batch. dw is overwritten.</summary>
    void Conv2dBackwardWeight(Buf x, Buf dy, Buf dw, in Conv2dGeometry g);

    /// <summary>
    /// Unfolds one group of one image, image = [Cin/groups, H, W], into col = [Cin/groups * KH * KW, OutH * OutW]:
    /// col[(c*KH + i)*KW + j, oh*OutW + ow] = image[c, oh*StrideH - PadH + i*DilationH, ow*StrideW - PadW + j*DilationW],
    /// zero where that falls in the padding.
    /// </summary>
    void Im2Col(Buf image, Buf col, in Conv2dGeometry g);

    /// <summary>The adjoint of <see cref="Im2Col"/>: image += fold(col); entries that map into the padding are dropped.</summary>
    void Col2Im(Buf col, Buf image, in Conv2dGeometry g);

    /// <summary>y[o, c, i] += bias[c]; y is [outer, channels, inner] (inner = 1 for a linear layer, H*W for a convolution).</summary>
    void AddBias(Buf y, Buf bias, int outer, int channels, int inner);

    /// <summary>db[c] = sum over o, i of dy[o, c, i]; the bias gradient for the layout of <see cref="AddBias"/>. db is overwritten.</summary>
    void BiasGrad(Buf dy, Buf db, int outer, int channels, int inner);
}
