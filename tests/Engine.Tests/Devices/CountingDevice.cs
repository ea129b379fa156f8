using Engine.Tensors;

namespace Engine.Tests.Devices;

/// <summary>
/// An emulated device that counts what a GPU would pay host time for: every kernel-interface call (a launch, a
/// cuBLAS call or a memset on CUDA), every zero-filled allocation (a memset), and every copy to or from the host
/// (a copy to the host synchronises the stream). The numbers are the CPU's, as on <see cref="EmulatedDevice"/>.
/// </summary>
internal sealed class CountingDevice : EmulatedDevice
{
    private readonly IKernels _counted;
    private readonly Dictionary<string, int> _calls = [];

    public CountingDevice(string name) : base(name)
    {
        _counted = ObservedKernels.Create(EmuKernels, what => Count(what));
    }

    public override IKernels Kernels => _counted;

    /// <summary>Kernel-interface calls by member (Unary / Binary by op too) since the last <see cref="Reset"/>.</summary>
    public IReadOnlyDictionary<string, int> Calls => _calls;

    /// <summary>Kernel-interface calls plus zero-filled allocations: what a CUDA device would launch.</summary>
    public int Launches => _calls.Values.Sum() + ZeroAllocations;

    public int ZeroAllocations { get; private set; }
    public int CopiesToHost { get; private set; }
    public int CopiesFromHost { get; private set; }

    /// <summary>When set, also counts each launch and copy to the host by the three innermost Engine frames that made it.</summary>
    public Dictionary<string, int>? Trace;

    public void Reset() { _calls.Clear(); Trace?.Clear(); ZeroAllocations = CopiesToHost = CopiesFromHost = 0; }

    internal void Count(string what, bool launch = true)
    {
        if (launch) _calls[what] = _calls.GetValueOrDefault(what) + 1;
        if (Trace == null) return;
        var frames = new System.Diagnostics.StackTrace().GetFrames().Select(f => f.GetMethod())
            .Where(m => m?.DeclaringType?.Namespace is { } ns && ns.StartsWith("Engine.", StringComparison.Ordinal)
                        && !ns.StartsWith("Engine.Tests", StringComparison.Ordinal) && !ns.StartsWith("Engine.Tensors", StringComparison.Ordinal)
                        && !ns.StartsWith("Engine.Autograd", StringComparison.Ordinal))
            .Take(3).Select(m => m!.DeclaringType!.Name + "." + m.Name);
        string key = what + " <- " + string.Join(" <- ", frames);
        Trace[key] = Trace.GetValueOrDefault(key) + 1;
    }

    public override Storage Allocate(int length, bool zero = false)
    {
        if (zero) ZeroAllocations++;
        return base.Allocate(length, zero);
    }

    public override void CopyFromHost(ReadOnlySpan<float> source, Storage destination, int destinationOffset)
    {
        CopiesFromHost++;
        base.CopyFromHost(source, destination, destinationOffset);
    }

    public override void CopyToHost(Storage source, int sourceOffset, Span<float> destination)
    {
        CopiesToHost++;
        Count("ToHost", launch: false);
        base.CopyToHost(source, sourceOffset, destination);
    }

    public override string ToString() => Name;
}
