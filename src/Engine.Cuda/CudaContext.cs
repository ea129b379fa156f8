using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using Engine.Cuda.Native;

namespace Engine.Cuda;

/// <summary>
/// One CUDA device as the engine uses it: the device's primary context, one stream that every kernel, copy and
/// cuBLAS call is queued on (so they run in program order without events), the NVRTC module cache, the caching
/// allocator and a lazily created cuBLAS handle.
/// <para>
/// CUDA binds contexts to threads. Every entry point calls <see cref="MakeCurrent"/>, which costs a thread-static
/// compare when the context is already current on the calling thread: callers come from the main thread, test
/// runner threads and CpuThreads workers alike. Finalizers never call CUDA (storage finalizers only return blocks
/// to the allocator's cache).
/// </para>
/// </summary>
internal sealed class CudaContext
{
    [ThreadStatic] private static nint t_current;

    private readonly object _moduleGate = new();
    private readonly Dictionary<string, nint> _modules = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Module, string Name), nint> _functions = new();
    private readonly Lazy<CudaBlas> _blas;
    private readonly UploadRing _uploads;

    private CudaContext(int ordinal)
    {
        Ordinal = ordinal;
        CudaDriver.Check(CudaDriver.cuDeviceGet(out DeviceHandle, ordinal), $"cuDeviceGet({ordinal})");
        Name = DeviceName(DeviceHandle);
        ComputeMajor = Attribute(CuDeviceAttribute.ComputeCapabilityMajor);
        ComputeMinor = Attribute(CuDeviceAttribute.ComputeCapabilityMinor);
        MultiprocessorCount = Attribute(CuDeviceAttribute.MultiprocessorCount);
        MaxThreadsPerMultiprocessor = Attribute(CuDeviceAttribute.MaxThreadsPerMultiprocessor);
        CudaDriver.Check(CudaDriver.cuDeviceTotalMem_v2(out nuint total, DeviceHandle), "cuDeviceTotalMem_v2");
        TotalMemory = (long)total;
        CudaDriver.Check(CudaDriver.cuDevicePrimaryCtxRetain(out Handle, DeviceHandle), $"cuDevicePrimaryCtxRetain(device {ordinal})");
        MakeCurrent();
        // Non-blocking: the stream never waits for the legacy default stream, which nothing here uses.
        CudaDriver.Check(CudaDriver.cuStreamCreate(out Stream, 1), "cuStreamCreate");
        Allocator = new CachingAllocator(new RawMemory(this));
        _uploads = new UploadRing(this);
        _blas = new Lazy<CudaBlas>(() => new CudaBlas(this), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>Opens device <paramref name="ordinal"/> (the driver must be initialised: <see cref="CudaBackend"/>).</summary>
    internal static CudaContext Create(int ordinal) => new(ordinal);

    /// <summary>Device ordinal (the N of "cuda:N").</summary>
    public int Ordinal { get; }
    /// <summary>CUdevice handle.</summary>
    internal readonly int DeviceHandle;
    /// <summary>The primary context.</summary>
    internal readonly nint Handle;
    /// <summary>The stream all work is queued on.</summary>
    internal readonly nint Stream;
    /// <summary>GPU name as the driver reports it.</summary>
    public string Name { get; }
    /// <summary>Compute capability, major part.</summary>
    public int ComputeMajor { get; }
    /// <summary>Compute capability, minor part.</summary>
    public int ComputeMinor { get; }
    /// <summary>Streaming multiprocessors.</summary>
    public int MultiprocessorCount { get; }
    /// <summary>Resident threads per multiprocessor.</summary>
    public int MaxThreadsPerMultiprocessor { get; }
    /// <summary>Device memory in bytes.</summary>
    public long TotalMemory { get; }
    /// <summary>The caching allocator every storage and scratch block comes from.</summary>
    internal CachingAllocator Allocator { get; }
    /// <summary>cuBLAS on this context's stream (created on first use).</summary>
    internal CudaBlas Blas => _blas.Value;

    /// <summary>Blocks of 256 threads that fill the device (SM count x resident blocks per SM); caps 1-D grids.</summary>
    public long MaxResidentBlocks256 => (long)MultiprocessorCount * Math.Max(1, MaxThreadsPerMultiprocessor / 256);

    /// <summary>The NVRTC target for this device (its compute capability, clamped to what NVRTC supports).</summary>
    public string Arch => _arch ??= KernelCompiler.ArchFor(ComputeMajor, ComputeMinor);
    private string? _arch;

    /// <summary>Makes the primary context current on the calling thread (a thread-static compare when it already is).</summary>
    internal void MakeCurrent()
    {
        if (t_current == Handle) return;
        CudaDriver.Check(CudaDriver.cuCtxSetCurrent(Handle), "cuCtxSetCurrent");
        t_current = Handle;
    }

    /// <summary>Waits until everything queued on the stream has finished (and reports a failed kernel).</summary>
    public void Synchronize()
    {
        CudaProfiler.HostSync();
        SynchronizeUncounted();
    }

    /// <summary>As <see cref="Synchronize"/>, not counted by the profiler (its own brackets).</summary>
    internal void SynchronizeUncounted()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuStreamSynchronize(Stream), "cuStreamSynchronize");
    }

    /// <summary>Launches kernels/<paramref name="module"/>.cu's kernel <paramref name="name"/> on the context's stream.</summary>
    public unsafe void Launch(string module, string name, Dim3 grid, Dim3 block, int sharedBytes, ref KernelParams args)
    {
        MakeCurrent();
        if (grid.X == 0 || grid.Y == 0 || grid.Z == 0 || block.X == 0 || block.Y == 0 || block.Z == 0)
            throw new ArgumentException($"Launch {module}.{name}: empty grid {grid} or block {block}.");
        if (sharedBytes < 0) throw new ArgumentException($"Launch {module}.{name}: negative shared memory {sharedBytes}.");
        nint f = Function(module, name);
        nuint size = (nuint)args.Size;
        long t0 = CudaProfiler.Enabled ? CudaProfiler.Begin(this) : 0;
        CuResult r;
        fixed (byte* p = args.AsSpan())
        {
            // CU_LAUNCH_PARAM_BUFFER_POINTER = 1, CU_LAUNCH_PARAM_BUFFER_SIZE = 2, CU_LAUNCH_PARAM_END = 0: the packed
            // parameter block in one piece (a kernel without parameters gets neither array).
            void** extra = stackalloc void*[5];
            extra[0] = (void*)1; extra[1] = p;
            extra[2] = (void*)2; extra[3] = &size;
            extra[4] = null;
            r = CudaDriver.cuLaunchKernel(f, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes, Stream, null, size == 0 ? null : extra);
        }
        if (r != CuResult.Success)
            throw new CudaException($"cuLaunchKernel({module}.{name}, grid {grid.X}x{grid.Y}x{grid.Z}, block {block.X}x{block.Y}x{block.Z}, {sharedBytes} B shared, {args.Size} B of parameters)", CudaDriver.Describe(r), (int)r);
        if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(this); CudaProfiler.Record($"{module}.{name}", t0, t1); }
    }

    /// <summary>The CUfunction of a kernel, loading (and compiling) its module on first use.</summary>
    internal nint Function(string module, string name)
    {
        if (_functions.TryGetValue((module, name), out nint f)) return f;
        nint m = Module(module);
        MakeCurrent();
        unsafe
        {
            byte* n = Nvrtc.Utf8(name);
            try
            {
                var r = CudaDriver.cuModuleGetFunction(out f, m, n);
                if (r != CuResult.Success)
                    throw new CudaException($"cuModuleGetFunction({module}.cu, \"{name}\")", $"{CudaDriver.Describe(r)}; is it declared extern \"C\" __global__ in kernels/{module}.cu?", (int)r);
            }
            finally { Marshal.FreeHGlobal((nint)n); }
        }
        _functions[(module, name)] = f;
        return f;
    }

    /// <summary>The loaded CUmodule of kernels/<paramref name="module"/>.cu, compiled by NVRTC (or read from the PTX cache) on first use.</summary>
    internal nint Module(string module)
    {
        lock (_moduleGate)
        {
            if (_modules.TryGetValue(module, out nint m)) return m;
            var compiled = KernelCompiler.Compile(module, Arch);
            MakeCurrent();
            byte[] image = Encoding.UTF8.GetBytes(compiled.Ptx + "\0");
            CuResult r;
            unsafe { fixed (byte* p = image) r = CudaDriver.cuModuleLoadData(out m, p); }
            if (r != CuResult.Success)
                throw new CudaException($"cuModuleLoadData({module}.cu as {Arch} PTX{(compiled.FromCache ? ", from the PTX cache" : "")})",
                    $"{CudaDriver.Describe(r)} (a PTX version newer than the driver supports means NVRTC is newer than the driver)", (int)r);
            _modules[module] = m;
            return m;
        }
    }

    /// <summary>
    /// ENGINE_CUDA_POISON=1: every new tensor that is not asked for zeros, and every scratch buffer, starts as NaN
    /// (all bits set) instead of whatever its cached block held, so code that reads device memory it did not write
    /// shows NaN at once. A debugging aid (one memset a buffer); the emulated test run turns it on.
    /// </summary>
    internal static readonly bool Poison = Environment.GetEnvironmentVariable("ENGINE_CUDA_POISON") is "1" or "true";

    /// <summary>Under <see cref="Poison"/>, fills <paramref name="count"/> words at <paramref name="address"/> with NaN bits.</summary>
    internal void PoisonNew(ulong address, long count)
    {
        if (Poison) Memset32(address, 0xFFFFFFFFu, count);
    }

    /// <summary>Temporary device memory, released stream-ordered on Dispose.</summary>
    public DeviceScratch Scratch(long bytes)
    {
        if (bytes < 0) throw new ArgumentOutOfRangeException(nameof(bytes), $"Scratch of {bytes} bytes.");
        var s = new DeviceScratch(Allocator, Allocator.Allocate(bytes), bytes);
        PoisonNew(s.Address, bytes / 4);
        return s;
    }

    /// <summary>Host values copied into temporary device memory.</summary>
    public unsafe DeviceScratch Upload<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        long bytes = (long)values.Length * sizeof(T);
        var s = Scratch(bytes);
        fixed (T* p = values) CopyHostToDevice(p, s.Address, bytes);
        return s;
    }

    /// <summary>
    /// Copies host bytes to device memory; the host buffer may be reused on return. Up to 1 MiB goes through the
    /// pinned <see cref="UploadRing"/> without waiting; larger copies wait for the stream.
    /// </summary>
    internal unsafe void CopyHostToDevice(void* source, ulong destination, long bytes)
    {
        if (bytes == 0) return;
        MakeCurrent();
        long t0 = CudaProfiler.Enabled ? CudaProfiler.Begin(this) : 0;
        if (_uploads.TryCopy(source, destination, bytes))
        {
            if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(this); CudaProfiler.Record("memcpy host to device (pinned ring)", t0, t1); }
            return;
        }
        var r = CudaDriver.cuMemcpyHtoDAsync_v2(destination, source, (nuint)bytes, Stream);
        if (r != CuResult.Success) throw new CudaException($"cuMemcpyHtoDAsync_v2({bytes} bytes)", CudaDriver.Describe(r), (int)r);
        // The host buffer is pageable managed memory that is unpinned when the caller's `fixed` ends: wait.
        Synchronize();
        if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(this); CudaProfiler.Record("memcpy host to device", t0, t1); }
    }

    /// <summary>Copies device bytes to host memory, after all queued work, and waits for the copy.</summary>
    internal unsafe void CopyDeviceToHost(ulong source, void* destination, long bytes)
    {
        if (bytes == 0) return;
        MakeCurrent();
        long t0 = CudaProfiler.Enabled ? CudaProfiler.Begin(this) : 0;
        var r = CudaDriver.cuMemcpyDtoHAsync_v2(destination, source, (nuint)bytes, Stream);
        if (r != CuResult.Success) throw new CudaException($"cuMemcpyDtoHAsync_v2({bytes} bytes)", CudaDriver.Describe(r), (int)r);
        Synchronize();
        if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(this); CudaProfiler.Record("memcpy device to host", t0, t1); }
    }

    /// <summary>Copies <c>destination.Length</c> device bytes to the host, after all queued work, and waits for the copy.</summary>
    internal unsafe void CopyToHost(ulong source, Span<byte> destination)
    {
        fixed (byte* p = destination) CopyDeviceToHost(source, p, destination.Length);
    }

    /// <summary>Queues a device-to-device copy.</summary>
    internal void CopyDeviceToDevice(ulong source, ulong destination, long bytes)
    {
        if (bytes == 0) return;
        MakeCurrent();
        long t0 = CudaProfiler.Enabled ? CudaProfiler.Begin(this) : 0;
        var r = CudaDriver.cuMemcpyDtoDAsync_v2(destination, source, (nuint)bytes, Stream);
        if (r != CuResult.Success) throw new CudaException($"cuMemcpyDtoDAsync_v2({bytes} bytes)", CudaDriver.Describe(r), (int)r);
        if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(this); CudaProfiler.Record("memcpy device to device", t0, t1); }
    }

    /// <summary>Queues setting <paramref name="count"/> 32-bit words to <paramref name="bits"/> (a float's bits fill exactly).</summary>
    internal void Memset32(ulong destination, uint bits, long count)
    {
        if (count == 0) return;
        MakeCurrent();
        long t0 = CudaProfiler.Enabled ? CudaProfiler.Begin(this) : 0;
        var r = CudaDriver.cuMemsetD32Async(destination, bits, (nuint)count, Stream);
        if (r != CuResult.Success) throw new CudaException($"cuMemsetD32Async({count} words)", CudaDriver.Describe(r), (int)r);
        if (CudaProfiler.Enabled) { long t1 = CudaProfiler.Stop(this); CudaProfiler.Record("memset", t0, t1); }
    }

    /// <summary>A timing event on this context's stream (record two, then <see cref="CudaEvent.ElapsedMs"/>).</summary>
    public CudaEvent CreateEvent() => new(this);

    /// <summary>Free and total device memory, from the driver.</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        CudaDriver.Check(CudaDriver.cuMemGetInfo_v2(out nuint free, out nuint total), "cuMemGetInfo_v2");
        return ((long)free, (long)total);
    }

    private int Attribute(CuDeviceAttribute a)
    {
        CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int v, a, DeviceHandle), $"cuDeviceGetAttribute({a})");
        return v;
    }

    internal static unsafe string DeviceName(int device)
    {
        byte* buf = stackalloc byte[256];
        CudaDriver.Check(CudaDriver.cuDeviceGetName(buf, 256, device), "cuDeviceGetName");
        return Marshal.PtrToStringUTF8((nint)buf) ?? "?";
    }

    /// <summary>cuMemAlloc / cuMemFree for the caching allocator, with the context made current on each call.</summary>
    private sealed class RawMemory(CudaContext context) : IRawDeviceMemory
    {
        public bool TryAlloc(long bytes, out ulong address)
        {
            context.MakeCurrent();
            long t0 = CudaProfiler.Enabled ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            var r = CudaDriver.cuMemAlloc_v2(out address, (nuint)bytes);
            if (CudaProfiler.Enabled) CudaProfiler.Host("cuMemAlloc (allocator cache miss)", t0);
            if (r == CuResult.ErrorOutOfMemory) return false;
            if (r != CuResult.Success) throw new CudaException($"cuMemAlloc_v2({bytes} bytes)", CudaDriver.Describe(r), (int)r);
            return true;
        }

        public void Free(ulong address)
        {
            context.MakeCurrent();
            CudaDriver.Check(CudaDriver.cuMemFree_v2(address), "cuMemFree_v2");
        }

        public void Synchronize() => context.Synchronize();

        public (long Free, long Total) MemoryInfo() => context.MemoryInfo();
    }
}

/// <summary>Temporary device memory; <see cref="Address"/> is valid until Dispose.</summary>
internal readonly struct DeviceScratch : IDisposable
{
    private readonly CachingAllocator? _allocator;
    private readonly long _bytes;

    internal DeviceScratch(CachingAllocator allocator, ulong address, long bytes)
    {
        _allocator = allocator;
        Address = address;
        _bytes = bytes;
    }

    /// <summary>Device address of the first byte.</summary>
    public ulong Address { get; init; }
    /// <summary>Size in bytes as requested.</summary>
    public long Bytes => _bytes;
    /// <summary>Returns the memory to the allocator (stream-ordered: kernels queued before still see it). Dispose once.</summary>
    public void Dispose() => _allocator?.Free(Address, _bytes);
}
