using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-a; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void ArgMax(Buf x, Buf y, int outer, int size, int inner) => throw new NotImplementedException("ArgMax: CUDA kernel not written yet (owner: cukern-a)");

    public void ArgMin(Buf x, Buf y, int outer, int size, int inner) => throw new NotImplementedException("ArgMin: CUDA kernel not written yet (owner: cukern-a)");

    public void Reduce(ReduceOp op, Buf x, Buf y, int outer, int size, int inner) => throw new NotImplementedException("Reduce: CUDA kernel not written yet (owner: cukern-a)");

    public void Softmax(Buf x, Buf y, int outer, int size, int inner, bool log) => throw new NotImplementedException("Softmax: CUDA kernel not written yet (owner: cukern-a)");

    public void SoftmaxBackward(Buf y, Buf dy, Buf dx, int outer, int size, int inner, bool log) => throw new NotImplementedException("SoftmaxBackward: CUDA kernel not written yet (owner: cukern-a)");
}
