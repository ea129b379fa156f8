using Engine.Tensors;

namespace Engine.Cuda;

/// <summary>
/// "cuda:N": tensors in device memory from the caching allocator, kernels from kernels/*.cu and cuBLAS, all queued
/// on one stream. Host copies wait for the queued work, so values read back are always final. New storages join
/// the current <see cref="TensorScope"/>, if any.
/// </summary>
internal sealed class CudaDevice : Device
{
    internal CudaDevice(CudaContext context)
    {
        Context = context;
        Name = $"cuda:{context.Ordinal}";
        CudaKernels = new CudaKernels(context);
    }

    /// <summary>The device's context (stream, modules, allocator, cuBLAS).</summary>
    internal CudaContext Context { get; }
    internal CudaKernels CudaKernels { get; }

    /// <inheritdoc/>
    public override string Name { get; }
    /// <inheritdoc/>
    public override IKernels Kernels => CudaKernels;

    /// <inheritdoc/>
    public override Storage Allocate(int length, bool zero = false)
    {
        var s = new CudaStorage(this, length);
        if (zero) Context.Memset32(s.Address, 0, length);
        else Context.PoisonNew(s.Address, length);
        TensorScope.Register(s);
        return s;
    }

    /// <inheritdoc/>
    public override unsafe void CopyFromHost(ReadOnlySpan<float> source, Storage destination, int destinationOffset)
    {
        var d = CudaStorage.Of(destination, Context);
        CheckRange(d, destinationOffset, source.Length, "CopyFromHost");
        fixed (float* p = source) Context.CopyHostToDevice(p, d.Address + (ulong)destinationOffset * sizeof(float), (long)source.Length * sizeof(float));
        GC.KeepAlive(d);
    }

    /// <inheritdoc/>
    public override unsafe void CopyToHost(Storage source, int sourceOffset, Span<float> destination)
    {
        var s = CudaStorage.Of(source, Context);
        CheckRange(s, sourceOffset, destination.Length, "CopyToHost");
        fixed (float* p = destination) Context.CopyDeviceToHost(s.Address + (ulong)sourceOffset * sizeof(float), p, (long)destination.Length * sizeof(float));
        GC.KeepAlive(s);
    }

    /// <inheritdoc/>
    public override void Synchronize() => Context.Synchronize();

    /// <inheritdoc/>
    public override DeviceMemoryStats? MemoryStats => Context.Allocator.Stats;

    /// <inheritdoc/>
    public override long? TotalMemory => Context.TotalMemory;

    /// <summary>Returns every cached block to the driver (live tensors keep theirs).</summary>
    public void EmptyCache() => Context.Allocator.EmptyCache();

    private static void CheckRange(CudaStorage s, int offset, int count, string op)
    {
        if (offset < 0 || (long)offset + count > s.Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{op}: elements [{offset}, {(long)offset + count}) are outside a storage of {s.Length} floats.");
    }
}
