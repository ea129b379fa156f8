namespace Engine.Tensors;

/// <summary>A flat buffer of float32 values owned by one <see cref="Tensors.Device"/>. Views share one storage.</summary>
public abstract class Storage : IDisposable
{
    /// <summary>Number of float elements.</summary>
    public abstract int Length { get; }
    /// <summary>The device that owns the memory.</summary>
    public abstract Device Device { get; }
    /// <summary>Releases device memory deterministically; a no-op for GC-managed CPU storage.</summary>
    public virtual void Dispose() { GC.SuppressFinalize(this); }
}

/// <summary>CPU storage: a pinned, GC-managed float array, so kernels may take raw pointers without fixing.</summary>
public sealed class CpuStorage : Storage
{
    /// <summary>The backing array (pinned; its length may exceed <see cref="Length"/> never).</summary>
    public readonly float[] Data;

    /// <summary>Allocates <paramref name="length"/> floats; zeroed only when asked, since most ops overwrite.</summary>
    public CpuStorage(int length, bool zero)
    {
        Data = zero ? GC.AllocateArray<float>(length, pinned: true) : GC.AllocateUninitializedArray<float>(length, pinned: true);
    }

    /// <summary>Wraps an existing pinned array (used internally when the caller guarantees pinning).</summary>
    internal CpuStorage(float[] pinnedData) { Data = pinnedData; }

    /// <inheritdoc/>
    public override int Length => Data.Length;
    /// <inheritdoc/>
    public override Device Device => CpuDevice.Instance;

    /// <summary>Raw pointer to element 0; valid for the life of this object because the array is pinned.</summary>
    public unsafe float* Pointer => (float*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(Data));
}
