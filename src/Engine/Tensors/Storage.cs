namespace Engine.Tensors;

/// <summary>A flat buffer of float32 values owned by one <see cref="Tensors.Device"/>. Views share one storage.</summary>
public abstract class Storage : IDisposable
{
    /// <summary>Number of float elements.</summary>
    public abstract int Length { get; }
    /// <summary>The device that owns the memory.</summary>
    public abstract Device Device { get; }
    /// <summary>Releases device memory deterministically (a CPU storage hands its array back to the CPU pool).</summary>
    public virtual void Dispose() { GC.SuppressFinalize(this); }
}

/// <summary>
/// CPU storage: a pinned, GC-managed float array, so kernels may take raw pointers without fixing. Arrays of
/// tensors that die are recycled through <see cref="Cpu.CpuBufferPool"/> (their storage's finalizer hands the array
/// back), because allocating a fresh pinned array per op forces a full GC every few steps of a training loop.
/// Recycling is safe because (1) a storage is finalized only once nothing references it, (2) every kernel call
/// keeps its buffers' storages alive until it returns (Cpu.CpuKernelGuard), and (3) a storage whose array was
/// handed out through the public <see cref="Data"/> or <see cref="Pointer"/> (which may outlive the storage)
/// is never recycled.
/// </summary>
public sealed class CpuStorage : Storage
{
    private readonly float[] _data;
    private readonly bool _pooled;
    private volatile bool _escaped;
    private volatile bool _disposed;

    /// <summary>Allocates <paramref name="length"/> floats; zeroed only when asked, since most ops overwrite.</summary>
    public CpuStorage(int length, bool zero) : this(length, zero, scoped: false) { }

    /// <summary>
    /// As the public constructor; <paramref name="scoped"/>: a TensorScope will dispose this storage, so even a small
    /// array is worth taking from the pool (it comes back when the scope ends, not when the GC gets round to it).
    /// </summary>
    internal CpuStorage(int length, bool zero, bool scoped)
    {
        _data = Cpu.CpuBufferPool.Rent(length, zero, scoped, out _pooled);
        if (!_pooled) GC.SuppressFinalize(this);
    }

    /// <summary>True when the array came from the pool (and goes back to it when this storage dies or is disposed).</summary>
    internal bool Pooled => _pooled;

    /// <summary>Wraps an existing pinned array (used internally when the caller guarantees pinning); never recycled.</summary>
    internal CpuStorage(float[] pinnedData)
    {
        _data = pinnedData;
        _escaped = true;
        GC.SuppressFinalize(this);
    }

    /// <summary>The backing array (pinned; its length equals <see cref="Length"/>). Taking it exempts this storage from recycling.</summary>
    /// <exception cref="ObjectDisposedException">The storage was disposed (e.g. by the <see cref="TensorScope"/> it was made in).</exception>
    public float[] Data { get { CheckLive(); _escaped = true; return _data; } }

    /// <summary>The backing array, for kernels that keep this storage alive while they use it (no escape).</summary>
    internal float[] RawData { get { CheckLive(); return _data; } }

    /// <inheritdoc/>
    public override int Length => _data.Length;
    /// <inheritdoc/>
    public override Device Device => CpuDevice.Instance;

    /// <summary>Raw pointer to element 0 (the array is pinned). Taking it exempts this storage from recycling.</summary>
    public unsafe float* Pointer { get { CheckLive(); _escaped = true; return RawPointer; } }

    /// <summary>Raw pointer for kernels that keep this storage alive while they use it (no escape).</summary>
    internal unsafe float* RawPointer
    {
        get
        {
            CheckLive();
            return (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_data));
        }
    }

    /// <summary>
    /// Hands a pooled array back for reuse at once (instead of when the GC finalizes this storage); every later use of
    /// the storage throws <see cref="ObjectDisposedException"/>, since the array may by then belong to another tensor.
    /// An array that was handed out (<see cref="Data"/>, <see cref="Pointer"/>) is never recycled.
    /// </summary>
    public override void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        GC.SuppressFinalize(this);
        if (_pooled && !_escaped) Cpu.CpuBufferPool.Return(_data, fromFinalizer: false);
    }

    private void CheckLive()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(CpuStorage), "This CPU tensor's storage was disposed (by Dispose or the TensorScope it was made in); keep tensors that must outlive a scope with TensorScope.Keep.");
    }

    /// <summary>Hands the array back for reuse once this storage is unreachable.</summary>
    ~CpuStorage()
    {
        if (!_escaped && !_disposed) Cpu.CpuBufferPool.Return(_data, fromFinalizer: true);
    }
}
