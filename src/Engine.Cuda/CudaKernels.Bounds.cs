using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-b; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void BoundConvSelect(Buf w, Buf code, Buf y, int count, in Conv2dGeometry g) => throw new NotImplementedException("BoundConvSelect: CUDA kernel not written yet (owner: cukern-b)");

    public void BoundConvTranspose(Buf a, Buf w, Buf dx, in Conv2dGeometry g) => throw new NotImplementedException("BoundConvTranspose: CUDA kernel not written yet (owner: cukern-b)");

    public void BoundDot(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf value, Buf mag, int batch, int rows, int n) => throw new NotImplementedException("BoundDot: CUDA kernel not written yet (owner: cukern-b)");

    public void BoundRelax(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows, Buf upBias, int upBiasRows, Buf y, Buf bias, Buf mag, int batch, int rows, int n) => throw new NotImplementedException("BoundRelax: CUDA kernel not written yet (owner: cukern-b)");
}
