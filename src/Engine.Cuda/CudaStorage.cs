using Engine.Tensors;

namespace Engine.Cuda;

/// <summary>
/// Device memory for <see cref="Storage.Length"/> floats, a block of the context's caching allocator. Dispose
/// returns the block at once (stream-ordered, so queued kernels still see it); the finalizer does the same for
/// storages nobody disposed, without calling CUDA.
/// </summary>
internal sealed class CudaStorage : Storage
{
    private readonly CudaDevice _device;
    private readonly ulong _address;
    private readonly int _length;
    private int _released;

    internal CudaStorage(CudaDevice device, int length)
    {
        if (length < 0) throw new ArgumentOutOfRangeException(nameof(length), $"Cannot allocate {length} floats.");
        _device = device;
        _length = length;
        _address = device.Context.Allocator.Allocate((long)length * sizeof(float));
    }

    /// <summary>The context the memory belongs to.</summary>
    internal CudaContext Context => _device.Context;

    /// <summary>Device address of element 0; throws once the storage has been disposed.</summary>
    public ulong Address
    {
        get
        {
            if (Volatile.Read(ref _released) != 0)
                throw new ObjectDisposedException(nameof(CudaStorage), $"A tensor's {_device.Name} storage ({_length} floats) was used after it was disposed (by Dispose or an ending TensorScope).");
            return _address;
        }
    }

    /// <summary>True once the block has gone back to the allocator.</summary>
    public bool IsDisposed => Volatile.Read(ref _released) != 0;

    /// <inheritdoc/>
    public override int Length => _length;
    /// <inheritdoc/>
    public override Device Device => _device;

    /// <summary>The storage as this context's CUDA storage, or an exception naming the storage's device.</summary>
    public static CudaStorage Of(Storage s, CudaContext context)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s is CudaStorage c && ReferenceEquals(c.Context, context)) return c;
        throw new ArgumentException($"Expected a tensor on cuda:{context.Ordinal}, got one on {s.Device.Name}; move it with To(device) first.");
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    ~CudaStorage() => Release();

    private void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
            _device.Context.Allocator.Free(_address, (long)_length * sizeof(float));
    }
}
