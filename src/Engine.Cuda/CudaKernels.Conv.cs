using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-b; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void AddBias(Buf y, Buf bias, int outer, int channels, int inner) => throw new NotImplementedException("AddBias: CUDA kernel not written yet (owner: cukern-b)");

    public void BiasGrad(Buf dy, Buf db, int outer, int channels, int inner) => throw new NotImplementedException("BiasGrad: CUDA kernel not written yet (owner: cukern-b)");

    public void Col2Im(Buf col, Buf image, in Conv2dGeometry g) => throw new NotImplementedException("Col2Im: CUDA kernel not written yet (owner: cukern-b)");

    public void Conv2dBackwardInput(Buf dy, Buf w, Buf dx, in Conv2dGeometry g) => throw new NotImplementedException("Conv2dBackwardInput: CUDA kernel not written yet (owner: cukern-b)");

    public void Conv2dBackwardWeight(Buf x, Buf dy, Buf dw, in Conv2dGeometry g) => throw new NotImplementedException("Conv2dBackwardWeight: CUDA kernel not written yet (owner: cukern-b)");

    public void Conv2dForward(Buf x, Buf w, Buf? bias, Buf y, in Conv2dGeometry g) => throw new NotImplementedException("Conv2dForward: CUDA kernel not written yet (owner: cukern-b)");

    public void Im2Col(Buf image, Buf col, in Conv2dGeometry g) => throw new NotImplementedException("Im2Col: CUDA kernel not written yet (owner: cukern-b)");
}
