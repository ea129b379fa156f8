using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-a; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void AdamUpdate(Buf param, Buf grad, Buf expAvg, Buf expAvgSq, int n, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupledWeightDecay, int step) => throw new NotImplementedException("AdamUpdate: CUDA kernel not written yet (owner: cukern-a)");

    public void ScaleInPlace(Buf x, int n, float alpha) => throw new NotImplementedException("ScaleInPlace: CUDA kernel not written yet (owner: cukern-a)");

    public void SgdUpdate(Buf param, Buf grad, Buf momentumBuffer, int n, float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep) => throw new NotImplementedException("SgdUpdate: CUDA kernel not written yet (owner: cukern-a)");

    public double SumOfSquares(Buf x, int n) => throw new NotImplementedException("SumOfSquares: CUDA kernel not written yet (owner: cukern-a)");
}
