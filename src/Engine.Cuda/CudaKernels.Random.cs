using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-a; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void RandomNormal(Buf y, int n, ulong seed, ulong counter, float mean, float std) => throw new NotImplementedException("RandomNormal: CUDA kernel not written yet (owner: cukern-a)");

    public void RandomUniform(Buf y, int n, ulong seed, ulong counter, float low, float high) => throw new NotImplementedException("RandomUniform: CUDA kernel not written yet (owner: cukern-a)");
}
