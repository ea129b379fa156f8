using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-b; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void AvgPool2dBackward(Buf dy, Buf dx, in Pool2dGeometry g, bool countIncludePad) => throw new NotImplementedException("AvgPool2dBackward: CUDA kernel not written yet (owner: cukern-b)");

    public void AvgPool2dForward(Buf x, Buf y, in Pool2dGeometry g, bool countIncludePad) => throw new NotImplementedException("AvgPool2dForward: CUDA kernel not written yet (owner: cukern-b)");

    public void MaxPool2dBackward(Buf dy, Buf indices, Buf dx, in Pool2dGeometry g) => throw new NotImplementedException("MaxPool2dBackward: CUDA kernel not written yet (owner: cukern-b)");

    public void MaxPool2dForward(Buf x, Buf y, Buf indices, in Pool2dGeometry g) => throw new NotImplementedException("MaxPool2dForward: CUDA kernel not written yet (owner: cukern-b)");
}
