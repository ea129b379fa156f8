using Engine.Tensors;

namespace Engine.Cuda;

// Pooling on CUDA (kernels/pool.cu): forward one thread per output element; backward as a gather, one thread per input
// element summing over the windows that cover it in ascending output order. Neither needs atomics, both are
// deterministic, and the sums are added in the CPU's order. MaxPool2dBackward relies on each index lying inside its own
// window, which holds for the indices MaxPool2dForward writes (its only producer).
internal sealed partial class CudaKernels
{
    /// <summary>The geometry as the kernels' by-value <c>PoolGeo</c> struct (12 ints, field order of kernels/pool.cu).</summary>
    private static void PoolArgs(ref KernelParams p, in Pool2dGeometry g)
    {
        Span<int> v = [g.Planes, g.Height, g.Width, g.KernelH, g.KernelW, g.StrideH, g.StrideW, g.PadH, g.PadW, g.OutH, g.OutW, 0];
        p.Ints(v, 12);
    }

    /// <summary>Checks the geometry (a default one would divide by zero) and the input- and output-plane buffers.</summary>
    private static (long In, long Out) CheckPool(in Pool2dGeometry g, string kernel, Buf input, string inputName, Buf output, string outputName)
    {
        if (g.KernelH < 1 || g.KernelW < 1 || g.StrideH < 1 || g.StrideW < 1 || g.Planes < 0 || g.OutH < 1 || g.OutW < 1)
            throw new ArgumentException($"{kernel}: invalid pooling geometry {g}.");
        long inN = (long)g.Planes * g.Height * g.Width, outN = (long)g.Planes * g.OutH * g.OutW;
        NeedElements(input, inN, kernel, inputName);
        NeedElements(output, outN, kernel, outputName);
        return (inN, outN);
    }

    /// <inheritdoc/>
    public void MaxPool2dForward(Buf x, Buf y, Buf indices, in Pool2dGeometry g)
    {
        const string K = nameof(MaxPool2dForward);
        var (_, outN) = CheckPool(g, K, x, "x", y, "y");
        NeedElements(indices, outN, K, "indices");
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Pointer(Ptr(y)); p.Pointer(Ptr(indices)); PoolArgs(ref p, g); p.Int(Items(outN, K));
        Launch1D("pool", "maxpool2d_fwd", outN, ref p);
    }

    /// <inheritdoc/>
    public void MaxPool2dBackward(Buf dy, Buf indices, Buf dx, in Pool2dGeometry g)
    {
        const string K = nameof(MaxPool2dBackward);
        var (inN, outN) = CheckPool(g, K, dx, "dx", dy, "dy");
        NeedElements(indices, outN, K, "indices");
        var p = new KernelParams();
        p.Pointer(Ptr(dy)); p.Pointer(Ptr(indices)); p.Pointer(Ptr(dx)); PoolArgs(ref p, g); p.Int(Items(inN, K));
        Launch1D("pool", "maxpool2d_bwd", inN, ref p);
    }

    /// <inheritdoc/>
    public void AvgPool2dForward(Buf x, Buf y, in Pool2dGeometry g, bool countIncludePad)
    {
        const string K = nameof(AvgPool2dForward);
        var (_, outN) = CheckPool(g, K, x, "x", y, "y");
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Pointer(Ptr(y)); PoolArgs(ref p, g); p.Int(countIncludePad ? 1 : 0); p.Int(Items(outN, K));
        Launch1D("pool", "avgpool2d_fwd", outN, ref p);
    }

    /// <inheritdoc/>
    public void AvgPool2dBackward(Buf dy, Buf dx, in Pool2dGeometry g, bool countIncludePad)
    {
        const string K = nameof(AvgPool2dBackward);
        var (inN, _) = CheckPool(g, K, dx, "dx", dy, "dy");
        var p = new KernelParams();
        p.Pointer(Ptr(dy)); p.Pointer(Ptr(dx)); PoolArgs(ref p, g); p.Int(countIncludePad ? 1 : 0); p.Int(Items(inN, K));
        Launch1D("pool", "avgpool2d_bwd", inN, ref p);
    }
}
