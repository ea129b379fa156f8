using System.Reflection;
using Engine.Tensors;

namespace Engine.Tests.Devices;

/// <summary>
/// Kernels that call an observer around every kernel-interface call of the kernels they forward to (on a GPU, a launch,
/// a cuBLAS call or a memset each): before it with the member's name (Unary / Binary / Reduce with their op), after it
/// when it returns or throws. A DispatchProxy, so it needs no line per IKernels member. Used by the counting device and
/// by the benchmarks' host-time probe.
/// </summary>
public class ObservedKernels : DispatchProxy
{
    private IKernels _inner = null!;
    private Action<string> _before = null!;
    private Action? _after;

    /// <summary>The kernels <paramref name="inner"/>, observed.</summary>
    internal static IKernels Create(IKernels inner, Action<string> before, Action? after = null)
    {
        var proxy = DispatchProxy.Create<IKernels, ObservedKernels>();
        var self = (ObservedKernels)(object)proxy;
        self._inner = inner; self._before = before; self._after = after;
        return proxy;
    }

    protected override object? Invoke(MethodInfo? method, object?[]? args)
    {
        var m = method!;
        _before(args is { Length: > 0 } && args[0] is Enum op ? $"{m.Name}.{op}" : m.Name);
        try { return m.Invoke(_inner, args); }
        catch (TargetInvocationException e) when (e.InnerException != null) { throw e.InnerException; }
        finally { _after?.Invoke(); }
    }
}
