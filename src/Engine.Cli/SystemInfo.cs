using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ArmBase = System.Runtime.Intrinsics.Arm.AdvSimd;

namespace Engine.Cli;

/// <summary>What the machine offers the engine: CPU model and the SIMD the JIT will use.</summary>
internal static class SystemInfo
{
    /// <summary>The "model name" line of /proc/cpuinfo, else the OS's architecture name.</summary>
    public static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
                foreach (var line in File.ReadLines("/proc/cpuinfo"))
                    if (line.StartsWith("model name", StringComparison.Ordinal) && line.IndexOf(':') is int c and >= 0)
                        return line[(c + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return $"unknown ({RuntimeInformation.ProcessArchitecture})";
    }

    /// <summary>The widest vector width the kernels take, in bits, and why (it is what IsHardwareAccelerated reports).</summary>
    public static (int Bits, string Isa) SimdInUse()
    {
        if (Vector512.IsHardwareAccelerated) return (512, Avx512F.IsSupported ? "AVX-512" : "512-bit");
        if (Vector256.IsHardwareAccelerated) return (256, Avx2.IsSupported ? (Fma.IsSupported ? "AVX2+FMA" : "AVX2") : "256-bit");
        if (Vector128.IsHardwareAccelerated) return (128, ArmBase.IsSupported ? "NEON" : Sse42.IsSupported ? "SSE4.2" : "128-bit");
        return (Vector<byte>.Count * 8, "scalar");
    }

    /// <summary>The instruction-set extensions the runtime reports as usable, in a fixed order.</summary>
    public static IReadOnlyList<string> Extensions()
    {
        var list = new List<string>();
        void Add(bool ok, string name) { if (ok) list.Add(name); }
        Add(Sse42.IsSupported, "SSE4.2");
        Add(Avx.IsSupported, "AVX");
        Add(Avx2.IsSupported, "AVX2");
        Add(Fma.IsSupported, "FMA");
        Add(Avx512F.IsSupported, "AVX512F");
        Add(Avx512BW.IsSupported, "AVX512BW");
        Add(Avx512DQ.IsSupported, "AVX512DQ");
        Add(Avx512F.VL.IsSupported, "AVX512VL");
        Add(Avx512Vbmi.IsSupported, "AVX512VBMI");
        Add(AvxVnni.IsSupported, "AVX-VNNI");
        Add(Avx10v1.IsSupported, "AVX10.1");
        Add(Popcnt.IsSupported, "POPCNT");
        Add(ArmBase.IsSupported, "NEON");
        return list;
    }
}
