using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Tensors;

/// <summary>
/// Philox4x32-10 (Salmon et al., 2011): a counter-based RNG, so element i of a random tensor depends only on
/// (seed, counter, i) and any device can draw the same numbers in parallel.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>Ten rounds of Philox4x32 on counter (c0..c3) with key (k0, k1).</summary>
    public static void Round10(ref uint c0, ref uint c1, ref uint c2, ref uint c3, uint k0, uint k1)
    {
        for (int r = 0; r < 10; r++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n1 = (uint)p1;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            uint n3 = (uint)p0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
            k0 += W0; k1 += W1;
        }
    }

    /// <summary>Four 32-bit words for a 64-bit counter under a 64-bit seed.</summary>
    public static (uint, uint, uint, uint) Generate(ulong seed, ulong counter)
    {
        uint c0 = (uint)counter, c1 = (uint)(counter >> 32), c2 = 0, c3 = 0;
        Round10(ref c0, ref c1, ref c2, ref c3, (uint)seed, (uint)(seed >> 32));
        return (c0, c1, c2, c3);
    }

    /// <summary>
    /// <see cref="Generate"/> for the eight counters counter .. counter + 7 at once (AVX-512; the caller checks
    /// <see cref="Avx512F.IsSupported"/>): word k of lane l is word k of counter + l, bit for bit. Each 64-bit lane holds
    /// one 32-bit word, so the 32x32 -> 64-bit products are single vpmuludq instructions.
    /// </summary>
    internal static void Generate8(ulong seed, ulong counter, out Vector512<ulong> w0, out Vector512<ulong> w1, out Vector512<ulong> w2, out Vector512<ulong> w3)
    {
        var low = Vector512.Create(0xFFFFFFFFUL);
        var ctr = Vector512.Create(counter) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
        Vector512<ulong> c0 = ctr & low, c1 = ctr >> 32, c2 = Vector512<ulong>.Zero, c3 = Vector512<ulong>.Zero;
        var m0 = Vector512.Create((ulong)M0).AsUInt32();
        var m1 = Vector512.Create((ulong)M1).AsUInt32();
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int r = 0; r < 10; r++)
        {
            var p0 = Avx512F.Multiply(c0.AsUInt32(), m0);
            var p1 = Avx512F.Multiply(c2.AsUInt32(), m1);
            var n0 = (p1 >> 32) ^ c1 ^ Vector512.Create((ulong)k0);
            var n2 = (p0 >> 32) ^ c3 ^ Vector512.Create((ulong)k1);
            c1 = p1 & low;
            c3 = p0 & low;
            c0 = n0; c2 = n2;
            k0 += W0; k1 += W1;
        }
        w0 = c0; w1 = c1; w2 = c2; w3 = c3;
    }

    /// <summary>A word mapped to [0, 1) with 24 bits of precision (exactly representable in float32).</summary>
    public static float ToUnit(uint w) => (w >> 8) * (1.0f / 16777216.0f);

    /// <summary>A word mapped to (0, 1]: safe for log in Box-Muller.</summary>
    public static float ToUnitOpen(uint w) => ((w >> 8) + 1) * (1.0f / 16777216.0f);
}

/// <summary>A seeded source of random tensors: a Philox seed plus a counter advanced by every draw.</summary>
public sealed class Generator
{
    private ulong _counter;
    private readonly object _lock = new();

    /// <summary>Creates a generator with the given seed.</summary>
    public Generator(ulong seed) { Seed = seed; }

    /// <summary>The Philox key.</summary>
    public ulong Seed { get; private set; }

    /// <summary>The process-wide generator used when none is passed.</summary>
    public static Generator Default { get; } = new(0x5EED);

    /// <summary>Resets the default generator, like torch.manual_seed.</summary>
    public static void ManualSeed(ulong seed) => Default.Reset(seed);

    /// <summary>Sets the seed and rewinds the counter.</summary>
    public void Reset(ulong seed) { lock (_lock) { Seed = seed; _counter = 0; } }

    /// <summary>Reserves <paramref name="counters"/> counter values and returns the first.</summary>
    public ulong Advance(ulong counters) { lock (_lock) { ulong c = _counter; _counter += counters; return c; } }

    /// <summary>A uniform integer in [0, n) (for shuffling); consumes one counter.</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        var (w0, w1, _, _) = Philox.Generate(Seed, Advance(1));
        ulong x = ((ulong)w1 << 32) | w0;
        return (int)(x % (ulong)n);
    }
}
