using System.Collections.Concurrent;
using Engine.Cuda.Native;
using Engine.Tensors;

namespace Engine.Cuda;

/// <summary>
/// Registers the CUDA devices with <see cref="Device"/>: call <see cref="Register"/> once at start-up, then
/// <c>Device.Get("cuda")</c> / <c>Device.Get("cuda:1")</c> return them. Without a driver or a GPU, "cuda" is marked
/// unavailable with the reason, and <c>Device.Get("cuda")</c> throws an InvalidOperationException that says it.
/// </summary>
public static class CudaBackend
{
    private static readonly object Gate = new();
    private static readonly ConcurrentDictionary<int, CudaDevice> Devices = new();
    private static bool _probed;
    private static int _count;
    private static string? _unavailable;

    /// <summary>
    /// Probes the driver (loads libcuda, cuInit, counts devices) and registers the "cuda" prefix, or marks it
    /// unavailable with the reason. Never throws; cheap (no context is created until a device is first used);
    /// repeated calls return the first answer.
    /// </summary>
    /// <returns>True when at least one CUDA device is usable.</returns>
    public static bool Register()
    {
        lock (Gate)
        {
            if (!_probed)
            {
                _probed = true;
                _unavailable = Probe(out _count);
                if (_unavailable == null) Device.Register("cuda", Get);
                else Device.MarkUnavailable("cuda", _unavailable);
            }
            return _unavailable == null;
        }
    }

    /// <summary>Why CUDA is unavailable (after <see cref="Register"/>), or null when it is available.</summary>
    public static string? UnavailableReason { get { Register(); return _unavailable; } }

    /// <summary>Number of CUDA devices (0 when unavailable).</summary>
    public static int DeviceCount { get { Register(); return _count; } }

    /// <summary>
    /// One line per fact for `engine info`: GPU name, compute capability, memory, driver and NVRTC versions (or
    /// why NVRTC is missing); or "not available: reason".
    /// </summary>
    public static string Describe()
    {
        if (!Register()) return $"not available: {_unavailable}";
        try
        {
            CudaDriver.Check(CudaDriver.cuDriverGetVersion(out int driver), "cuDriverGetVersion");
            string nvrtc;
            try { nvrtc = $"NVRTC {Nvrtc.VersionString()} ({NativeLibraries.LoadedFrom(CudaLibrary.Nvrtc)})"; }
            catch (CudaException e) { nvrtc = $"NVRTC missing: {e.Error}"; }
            var parts = new List<string>();
            for (int i = 0; i < _count; i++)
            {
                CudaDriver.Check(CudaDriver.cuDeviceGet(out int dev, i), $"cuDeviceGet({i})");
                CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int major, CuDeviceAttribute.ComputeCapabilityMajor, dev), "cuDeviceGetAttribute");
                CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int minor, CuDeviceAttribute.ComputeCapabilityMinor, dev), "cuDeviceGetAttribute");
                CudaDriver.Check(CudaDriver.cuDeviceGetAttribute(out int sms, CuDeviceAttribute.MultiprocessorCount, dev), "cuDeviceGetAttribute");
                CudaDriver.Check(CudaDriver.cuDeviceTotalMem_v2(out nuint mem, dev), "cuDeviceTotalMem_v2");
                parts.Add($"cuda:{i} {CudaContext.DeviceName(dev)}, compute capability {major}.{minor}, {sms} SMs, {CachingAllocator.Format((long)mem)}");
            }
            return $"{string.Join("; ", parts)}; driver CUDA {driver / 1000}.{driver % 1000 / 10}; {nvrtc}";
        }
        catch (CudaException e)
        {
            return $"error while describing the GPU: {e.Message}";
        }
    }

    /// <summary>The device for ordinal <paramref name="index"/> (created on first use, then the same instance).</summary>
    internal static CudaDevice Get(int index)
    {
        if (!Register()) throw new InvalidOperationException($"Device 'cuda:{index}' is not available: {_unavailable}");
        if (index < 0 || index >= _count)
            throw new InvalidOperationException($"Device 'cuda:{index}' does not exist: this machine has {_count} CUDA device(s) (cuda:0{(_count > 1 ? $"..cuda:{_count - 1}" : "")}).");
        lock (Gate) return Devices.GetOrAdd(index, i => new CudaDevice(CudaContext.Create(i)));
    }

    /// <summary>Null when CUDA works, else the reason; <paramref name="count"/> is the number of devices.</summary>
    private static string? Probe(out int count)
    {
        count = 0;
        try
        {
            if (Environment.GetEnvironmentVariable("ENGINE_CUDA_DISABLE") is "1" or "true")
                return "disabled by ENGINE_CUDA_DISABLE";
            if (!NativeLibraries.TryLoad(CudaLibrary.Driver, out string detail))
                return $"no NVIDIA driver: {detail}";
            var r = CudaDriver.cuInit(0);
            if (r == CuResult.ErrorNoDevice) return "no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE)";
            if (r != CuResult.Success) return $"cuInit failed: {CudaDriver.Describe(r)}";
            r = CudaDriver.cuDeviceGetCount(out count);
            if (r != CuResult.Success) return $"cuDeviceGetCount failed: {CudaDriver.Describe(r)}";
            if (count == 0) return "no CUDA device (the driver reports 0 devices)";
            return null;
        }
        catch (Exception e)   // a probe must never take the process down: anything odd means "not available"
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }
}
