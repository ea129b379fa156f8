using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// The <see cref="IKernels"/> the CPU device hands out: each member forwards to <see cref="CpuKernels"/> and then
/// calls GC.KeepAlive on the storage of every buffer argument. Kernels work on raw pointers, and the JIT may treat
/// a storage as dead once its pointer is taken; without the guard a storage could be finalized mid-kernel and its
/// array recycled by <see cref="CpuBufferPool"/> while still in use. CpuKernelGuard.g.cs is generated from the
/// interface by reflection (a tiny console: for each IKernels method emit the forwarding call and one KeepAlive per
/// Buf / Buf? parameter); a kernel added to IKernels without regenerating it fails to compile.
/// </summary>
internal sealed partial class CpuKernelGuard : IKernels
{
    public static readonly CpuKernelGuard Instance = new();
    private static readonly CpuKernels Inner = CpuKernels.Instance;
    private CpuKernelGuard() { }
}
