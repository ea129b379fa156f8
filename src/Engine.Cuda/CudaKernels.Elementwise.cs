using Engine.Tensors;

namespace Engine.Cuda;

// SKELETON: owned by helper cukern-a; replace every member with a real launch of kernels/*.cu.
internal sealed partial class CudaKernels
{
    public void Binary(BinaryOp op, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape) => throw new NotImplementedException("Binary: CUDA kernel not written yet (owner: cukern-a)");

    public void Expand(Buf x, int[] xStrides, Buf y, int[] shape) => throw new NotImplementedException("Expand: CUDA kernel not written yet (owner: cukern-a)");

    public void OneHot(Buf labels, Buf y, int n, int numClasses) => throw new NotImplementedException("OneHot: CUDA kernel not written yet (owner: cukern-a)");

    public void Unary(UnaryOp op, Buf x, Buf y, int n, float alpha, float beta) => throw new NotImplementedException("Unary: CUDA kernel not written yet (owner: cukern-a)");

    public void UnaryBackward(UnaryOp op, Buf x, Buf y, Buf dy, Buf dx, int n, float alpha, float beta) => throw new NotImplementedException("UnaryBackward: CUDA kernel not written yet (owner: cukern-a)");

    public void Where(Buf cond, int[] condStrides, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape) => throw new NotImplementedException("Where: CUDA kernel not written yet (owner: cukern-a)");
}
