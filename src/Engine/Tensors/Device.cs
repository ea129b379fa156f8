using System.Collections.Concurrent;

namespace Engine.Tensors;

/// <summary>
/// Where a tensor's memory lives and which kernels run on it. The core knows only the CPU;
/// other backends (Engine.Cuda) register a factory for their prefix when loaded.
/// </summary>
public abstract class Device
{
    private static readonly ConcurrentDictionary<string, Func<int, Device>> Factories = new();
    private static readonly ConcurrentDictionary<string, string> Unavailable = new();

    /// <summary>"cpu", "cuda:0", ...</summary>
    public abstract string Name { get; }
    /// <summary>The kernels that operate on this device's storage.</summary>
    public abstract IKernels Kernels { get; }
    /// <summary>Allocates storage for <paramref name="length"/> floats.</summary>
    public abstract Storage Allocate(int length, bool zero = false);
    /// <summary>Copies host floats into device storage at an element offset.</summary>
    public abstract void CopyFromHost(ReadOnlySpan<float> source, Storage destination, int destinationOffset);
    /// <summary>Copies device storage (from an element offset) into host floats.</summary>
    public abstract void CopyToHost(Storage source, int sourceOffset, Span<float> destination);

    /// <summary>Blocks until all work queued on this device has finished (CPU kernels are synchronous: a no-op there).</summary>
    public virtual void Synchronize() { }

    /// <summary>Memory held by live tensors and by the allocator's cache, or null where the device does not track it (CPU).</summary>
    public virtual DeviceMemoryStats? MemoryStats => null;

    /// <summary>
    /// The device's memory in bytes, or null where work is not sized by it (the CPU). Bound propagation caps the
    /// chunks of intermediate-bound rows it sends to a device by it.
    /// </summary>
    public virtual long? TotalMemory => null;

    /// <summary>The CPU device.</summary>
    public static Device Cpu => CpuDevice.Instance;

    /// <summary>The first CUDA device ("cuda:0"); throws with the reason when CUDA is not available (see <see cref="Get"/>).</summary>
    public static Device Cuda => Get("cuda");

    /// <summary>Backends call this when loaded, e.g. Register("cuda", index => ...).</summary>
    public static void Register(string prefix, Func<int, Device> factory) => Factories[prefix] = factory;

    /// <summary>Backends call this when they cannot run, so that <see cref="Get"/> can say why.</summary>
    public static void MarkUnavailable(string prefix, string reason) => Unavailable[prefix] = reason;

    /// <summary>Resolves "cpu" or "prefix[:index]"; throws with the backend's reason when it is absent.</summary>
    public static Device Get(string name)
    {
        if (name == "cpu") return Cpu;
        string prefix = name; int index = 0;
        int colon = name.IndexOf(':');
        if (colon >= 0)
        {
            prefix = name[..colon];
            if (!int.TryParse(name.AsSpan(colon + 1), out index) || index < 0) throw new ArgumentException($"Bad device name '{name}'.");
        }
        if (Factories.TryGetValue(prefix, out var f)) return f(index);
        if (Unavailable.TryGetValue(prefix, out var why)) throw new InvalidOperationException($"Device '{name}' is not available: {why}");
        throw new InvalidOperationException($"Device '{name}' is not available: no backend registered for '{prefix}' (is Engine.Cuda loaded?).");
    }

    /// <inheritdoc/>
    public override string ToString() => Name;
}

/// <summary>Bytes of device memory: in live storages, and reserved from the driver (live plus the allocator's cache).</summary>
public readonly record struct DeviceMemoryStats(long AllocatedBytes, long ReservedBytes);

/// <summary>The CPU device: pinned managed arrays and the SIMD kernels in Engine.Cpu.</summary>
public sealed class CpuDevice : Device
{
    /// <summary>The single CPU device.</summary>
    public static readonly CpuDevice Instance = new();
    private CpuDevice() { }
    /// <inheritdoc/>
    public override string Name => "cpu";
    /// <inheritdoc/>
    public override IKernels Kernels => Engine.Cpu.CpuKernelGuard.Instance;
    /// <inheritdoc/>
    public override Storage Allocate(int length, bool zero = false)
    {
        // Inside a CPU-collecting scope small arrays are pooled too (the scope hands them back when it ends); outside one
        // they are plain pinned allocations, and only pooled storages join a scope.
        bool scoped = TensorScope.CollectsCpu;
        var s = new CpuStorage(length, zero, scoped);
        if (s.Pooled && scoped) TensorScope.Register(s);
        return s;
    }
    /// <inheritdoc/>
    public override void CopyFromHost(ReadOnlySpan<float> source, Storage destination, int destinationOffset)
    {
        source.CopyTo(((CpuStorage)destination).RawData.AsSpan(destinationOffset));
        GC.KeepAlive(destination);   // the array is recycled once the storage dies: keep it alive while in use
    }
    /// <inheritdoc/>
    public override void CopyToHost(Storage source, int sourceOffset, Span<float> destination)
    {
        ((CpuStorage)source).RawData.AsSpan(sourceOffset, destination.Length).CopyTo(destination);
        GC.KeepAlive(source);
    }
}
