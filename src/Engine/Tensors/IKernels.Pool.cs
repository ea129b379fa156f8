namespace Engine.Tensors;

/// <summary>2-D pooling kernels over independent H×W planes (see <see cref="Pool2dGeometry"/>).</summary>
public partial interface IKernels
{
    /// <summary>
    /// y = max over each window (padding never wins; NaN propagates). <paramref name="indices"/> receives, as floats, the
    /// in-plane flat index h*W + w of each maximum (the first one on ties), which the backward pass scatters to.
    /// </summary>
    void MaxPool2dForward(Buf x, Buf y, Buf indices, in Pool2dGeometry g);

    /// <summary>dx[plane, indices[plane, o]] += dy[plane, o], with dx zeroed first (overwritten).</summary>
    void MaxPool2dBackward(Buf dy, Buf indices, Buf dx, in Pool2dGeometry g);

    /// <summary>
    /// y = mean over each window. The divisor is KernelH*KernelW when <paramref name="countIncludePad"/>, else the number of
    /// window elements inside the input (PyTorch's count_include_pad).
    /// </summary>
    void AvgPool2dForward(Buf x, Buf y, in Pool2dGeometry g, bool countIncludePad);

    /// <summary>The adjoint of <see cref="AvgPool2dForward"/>: dx (overwritten) receives each dy spread evenly over its window.</summary>
    void AvgPool2dBackward(Buf dy, Buf dx, in Pool2dGeometry g, bool countIncludePad);
}
