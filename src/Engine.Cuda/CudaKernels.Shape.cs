using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-b; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void IndexAdd(Buf x, Buf y, int outer, int dimOut, int inner, int[] indices) => throw new NotImplementedException("IndexAdd: CUDA kernel not written yet (owner: cukern-b)");

    public void IndexSelect(Buf x, Buf y, int outer, int dimIn, int inner, int[] indices) => throw new NotImplementedException("IndexSelect: CUDA kernel not written yet (owner: cukern-b)");

    public void Permute(Buf x, int[] shape, int[] perm, Buf y) => throw new NotImplementedException("Permute: CUDA kernel not written yet (owner: cukern-b)");

    public void SliceCopy(Buf x, Buf y, int outer, int dimIn, int inner, int start, int step, int count) => throw new NotImplementedException("SliceCopy: CUDA kernel not written yet (owner: cukern-b)");

    public void SliceScatter(Buf x, Buf y, int outer, int dimOut, int inner, int start, int step, int count) => throw new NotImplementedException("SliceScatter: CUDA kernel not written yet (owner: cukern-b)");
}
