using Engine.Cpu;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Elementwise;

/// <summary>Shared helpers: tolerant array comparison (NaN equals NaN, infinities must match) and seeded inputs.</summary>
internal static class Approx
{
    public static void AreClose(float[] actual, float[] expected, double rtol, double atol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), what + ": length");
        for (int i = 0; i < actual.Length; i++)
        {
            float a = actual[i], e = expected[i];
            bool ok = float.IsNaN(e) ? float.IsNaN(a)
                    : float.IsInfinity(e) ? a == e
                    : Math.Abs((double)a - e) <= atol + rtol * Math.Abs(e);
            if (!ok) Assert.Fail($"{what}: element {i} is {a:R}, expected {e:R} (of {actual.Length}).");
        }
    }

    public static float[] Uniform(int n, float lo, float hi, ulong seed)
        => Tensor.Uniform([n], lo, hi, new Generator(seed)).ToArray();

    /// <summary>Runs body with the drivers limited to a vector width, restoring the default afterwards.</summary>
    public static void WithSimd(int bits, Action body)
    {
        int old = Simd.MaxBits;
        Simd.MaxBits = bits;
        try { body(); }
        finally { Simd.MaxBits = old; }
    }

    public static void WithThreads(int count, Action body)
    {
        int old = CpuThreads.Count;
        CpuThreads.Count = count;
        try { body(); }
        finally { CpuThreads.Count = old; }
    }
}
