using Engine.Tensors;

namespace Engine.Cuda;

// Philox random fills of kernels/random.cu: 1-D grid-stride launches over counter values (quads for uniform,
// pairs for normal), giving the CPU's numbers for the same (seed, counter).
internal sealed partial class CudaKernels
{
    private const string RandModule = "random";

    /// <inheritdoc/>
    public void RandomUniform(Buf y, int n, ulong seed, ulong counter, float low, float high)
    {
        if (n <= 0) return;
        float scale = high - low;   // rounded once, as the CPU does
        var p = new KernelParams();
        p.Pointer(CheckedPtr(y, n, "RandomUniform")); p.Int(n); p.ULong(seed); p.ULong(counter); p.Float(low); p.Float(scale);
        Launch1D(RandModule, "random_uniform", ((long)n + 3) / 4, ref p);
    }

    /// <inheritdoc/>
    public void RandomNormal(Buf y, int n, ulong seed, ulong counter, float mean, float std)
    {
        if (n <= 0) return;
        var p = new KernelParams();
        p.Pointer(CheckedPtr(y, n, "RandomNormal")); p.Int(n); p.ULong(seed); p.ULong(counter); p.Float(mean); p.Float(std);
        Launch1D(RandModule, "random_normal", ((long)n + 1) / 2, ref p);
    }
}
