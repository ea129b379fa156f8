using System.Runtime.InteropServices;

namespace Engine.Cuda.Native;

/// <summary>CUresult codes the backend treats specially (the rest are reported by name).</summary>
internal enum CuResult
{
    Success = 0,
    ErrorOutOfMemory = 2,
    ErrorNotInitialized = 3,
    ErrorNoDevice = 100,
    ErrorNotReady = 600,
}

/// <summary>CUdevice_attribute values the backend reads.</summary>
internal enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    MultiprocessorCount = 16,
    MaxThreadsPerMultiprocessor = 39,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
}

/// <summary>
/// The CUDA driver API functions the backend uses (libcuda, resolved by <see cref="NativeLibraries"/>). Handles are
/// opaque pointers (nint); device memory is a CUdeviceptr (ulong). The _v2 entry points are the ones the CUDA 11-13
/// headers map the plain names to, and every driver since 2014 exports them.
/// </summary>
internal static unsafe partial class CudaDriver
{
    private const string Lib = "cuda";
    static CudaDriver() => NativeLibraries.EnsureResolver();

    [LibraryImport(Lib)] internal static partial CuResult cuInit(uint flags);
    [LibraryImport(Lib)] internal static partial CuResult cuDriverGetVersion(out int version);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceGetAttribute(out int value, CuDeviceAttribute attribute, int device);
    [LibraryImport(Lib)] internal static partial CuResult cuDeviceTotalMem_v2(out nuint bytes, int device);
    [LibraryImport(Lib)] internal static partial CuResult cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Lib)] internal static partial CuResult cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Lib)] internal static partial CuResult cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] internal static partial CuResult cuCtxGetCurrent(out nint context);
    [LibraryImport(Lib)] internal static partial CuResult cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Lib)] internal static partial CuResult cuStreamSynchronize(nint stream);
    [LibraryImport(Lib)] internal static partial CuResult cuStreamDestroy_v2(nint stream);
    [LibraryImport(Lib)] internal static partial CuResult cuEventCreate(out nint evt, uint flags);
    [LibraryImport(Lib)] internal static partial CuResult cuEventRecord(nint evt, nint stream);
    [LibraryImport(Lib)] internal static partial CuResult cuEventSynchronize(nint evt);
    [LibraryImport(Lib)] internal static partial CuResult cuEventElapsedTime(out float milliseconds, nint start, nint end);
    [LibraryImport(Lib)] internal static partial CuResult cuEventDestroy_v2(nint evt);
    [LibraryImport(Lib)] internal static partial CuResult cuMemAlloc_v2(out ulong address, nuint bytes);
    [LibraryImport(Lib)] internal static partial CuResult cuMemFree_v2(ulong address);
    [LibraryImport(Lib)] internal static partial CuResult cuMemAllocHost_v2(out nint hostPointer, nuint bytes);
    [LibraryImport(Lib)] internal static partial CuResult cuMemGetInfo_v2(out nuint free, out nuint total);
    [LibraryImport(Lib)] internal static partial CuResult cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial CuResult cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial CuResult cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint bytes, nint stream);
    [LibraryImport(Lib)] internal static partial CuResult cuMemsetD32Async(ulong destination, uint value, nuint count, nint stream);
    [LibraryImport(Lib)] internal static partial CuResult cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib)] internal static partial CuResult cuModuleGetFunction(out nint function, nint module, byte* name);
    [LibraryImport(Lib)] internal static partial CuResult cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ, uint sharedBytes, nint stream, void** kernelParams, void** extra);
    [LibraryImport(Lib)] internal static partial CuResult cuGetErrorName(CuResult error, out nint name);
    [LibraryImport(Lib)] internal static partial CuResult cuGetErrorString(CuResult error, out nint text);
    [LibraryImport(Lib)] internal static partial CuResult cuOccupancyMaxActiveBlocksPerMultiprocessor(out int blocks, nint function, int blockSize, nuint dynamicSharedBytes);

    /// <summary>"CUDA_ERROR_X (description)" for a status, from the driver itself.</summary>
    public static string Describe(CuResult r)
    {
        string name = cuGetErrorName(r, out nint n) == CuResult.Success && n != 0 ? Marshal.PtrToStringUTF8(n)! : $"CUresult {(int)r}";
        string text = cuGetErrorString(r, out nint t) == CuResult.Success && t != 0 ? Marshal.PtrToStringUTF8(t)! : "unknown error";
        return $"{name} ({text})";
    }

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="r"/> is success.</summary>
    public static void Check(CuResult r, string call)
    {
        if (r != CuResult.Success) throw new CudaException(call, Describe(r), (int)r);
    }
}
