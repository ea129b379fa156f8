using System.Runtime.InteropServices;
using System.Text;

namespace Engine.Cuda.Native;

/// <summary>NVRTC (runtime compilation of CUDA C++ to PTX; libnvrtc, resolved by <see cref="NativeLibraries"/>). Needs no GPU.</summary>
internal static unsafe partial class Nvrtc
{
    private const string Lib = "nvrtc";
    static Nvrtc() => NativeLibraries.EnsureResolver();

    [LibraryImport(Lib)] internal static partial int nvrtcVersion(out int major, out int minor);
    [LibraryImport(Lib)] internal static partial int nvrtcCreateProgram(out nint program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);
    [LibraryImport(Lib)] internal static partial int nvrtcCompileProgram(nint program, int optionCount, byte** options);
    [LibraryImport(Lib)] internal static partial int nvrtcGetProgramLogSize(nint program, out nuint size);
    [LibraryImport(Lib)] internal static partial int nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(Lib)] internal static partial int nvrtcGetPTXSize(nint program, out nuint size);
    [LibraryImport(Lib)] internal static partial int nvrtcGetPTX(nint program, byte* ptx);
    [LibraryImport(Lib)] internal static partial int nvrtcDestroyProgram(ref nint program);
    [LibraryImport(Lib)] internal static partial nint nvrtcGetErrorString(int result);
    [LibraryImport(Lib)] internal static partial int nvrtcGetNumSupportedArchs(out int count);
    [LibraryImport(Lib)] internal static partial int nvrtcGetSupportedArchs(int* archs);

    /// <summary>NVRTC's name for a status, e.g. "NVRTC_ERROR_COMPILATION".</summary>
    public static string Describe(int r)
    {
        nint s = nvrtcGetErrorString(r);
        return s != 0 ? Marshal.PtrToStringUTF8(s)! : $"nvrtcResult {r}";
    }

    /// <summary>Throws <see cref="CudaException"/> naming <paramref name="call"/> unless <paramref name="r"/> is NVRTC_SUCCESS.</summary>
    public static void Check(int r, string call)
    {
        if (r != 0) throw new CudaException(call, Describe(r), r);
    }

    /// <summary>The loaded NVRTC's version as "major.minor".</summary>
    public static string VersionString()
    {
        NativeLibraries.Require(CudaLibrary.Nvrtc);
        Check(nvrtcVersion(out int major, out int minor), "nvrtcVersion");
        return $"{major}.{minor}";
    }

    /// <summary>The SM versions this NVRTC can target (e.g. 80 for compute_80), ascending.</summary>
    public static int[] SupportedArchs()
    {
        NativeLibraries.Require(CudaLibrary.Nvrtc);
        Check(nvrtcGetNumSupportedArchs(out int n), "nvrtcGetNumSupportedArchs");
        var archs = new int[n];
        fixed (int* p = archs) Check(nvrtcGetSupportedArchs(p), "nvrtcGetSupportedArchs");
        Array.Sort(archs);
        return archs;
    }

    /// <summary>A null-terminated UTF-8 copy in unmanaged memory (freed with <see cref="Marshal.FreeHGlobal"/>).</summary>
    internal static byte* Utf8(string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        var p = (byte*)Marshal.AllocHGlobal(n + 1);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }
}
