using System.Runtime.Intrinsics;

namespace Engine.Cpu;

/// <summary>
/// Which vector width the elementwise / reduction drivers use. The widest accelerated width wins; tests lower
/// <see cref="MaxBits"/> to run the Vector256 and scalar paths on AVX-512 machines too.
/// </summary>
internal static class Simd
{
    /// <summary>512, 256 or 0 (scalar only). Read once per kernel call, so changing it never splits a loop.</summary>
    internal static int MaxBits = 512;

    internal static bool Use512 => MaxBits >= 512 && Vector512.IsHardwareAccelerated;
    internal static bool Use256 => MaxBits >= 256 && Vector256.IsHardwareAccelerated;

    /// <summary>Elements per thread chunk below which loops stay on the calling thread.</summary>
    internal const int MinChunk = 32 * 1024;
}
