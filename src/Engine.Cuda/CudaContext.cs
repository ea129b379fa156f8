namespace Engine.Cuda;

// SKELETON: owned by helper cudart, who replaces it with the real context (driver API, primary context, one stream,
// NVRTC module cache, caching allocator, cuBLAS handle). The members below are the contract the kernel files use.
internal sealed class CudaContext
{
    /// <summary>Blocks of 256 threads that fill the device (SM count x resident blocks per SM); caps 1-D grids.</summary>
    public long MaxResidentBlocks256 => throw new NotImplementedException();

    /// <summary>Launches kernels/<paramref name="module"/>.cu's kernel <paramref name="name"/> on the context's stream.</summary>
    public void Launch(string module, string name, Dim3 grid, Dim3 block, int sharedBytes, ref KernelParams args) => throw new NotImplementedException();

    /// <summary>Temporary device memory, released stream-ordered on Dispose.</summary>
    public DeviceScratch Scratch(long bytes) => throw new NotImplementedException();

    /// <summary>Host values copied into temporary device memory.</summary>
    public DeviceScratch Upload<T>(ReadOnlySpan<T> values) where T : unmanaged => throw new NotImplementedException();
}

/// <summary>Temporary device memory; <see cref="Address"/> is valid until Dispose.</summary>
internal readonly struct DeviceScratch : IDisposable
{
    /// <summary>Device address of the first byte.</summary>
    public ulong Address { get; init; }
    /// <summary>Returns the memory to the allocator.</summary>
    public void Dispose() => throw new NotImplementedException();
}

// SKELETON (owner cudart): CUDA storage from the caching allocator.
internal sealed class CudaStorage : Engine.Tensors.Storage
{
    public ulong Address => throw new NotImplementedException();
    public override int Length => throw new NotImplementedException();
    public override Engine.Tensors.Device Device => throw new NotImplementedException();
    /// <summary>The storage as this context's CUDA storage, or an exception naming the storage's device.</summary>
    public static CudaStorage Of(Engine.Tensors.Storage s, CudaContext context) => throw new NotImplementedException();
}
