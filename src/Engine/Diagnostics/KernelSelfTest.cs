using Engine.Tensors;

namespace Engine.Diagnostics;

/// <summary>
/// Runs every <see cref="IKernels"/> member on a device and on a reference, over deterministic random inputs of
/// several shapes (odd sizes, vector tails, sizes of 1, one size above 65536 elements so grid-stride loops wrap),
/// and compares the results element by element with a tolerance chosen per op (exact where the result is exact:
/// copies, layouts, comparisons, max/min, the uniform RNG bit for bit). Then end-to-end checks through the tensor
/// API: an MLP and a small CNN training step (loss, every gradient, the parameters after an Adam step), IBP /
/// CROWN / CROWN-IBP / alpha-CROWN bounds on the graph path, and a PGD attack's sanity.
/// <para>
/// The reference is the CPU: its kernels for any other device, and for the CPU itself the scalar double-precision
/// reference implementations (<see cref="Cpu.Reference"/>, <see cref="Cpu.SgemmReference"/>,
/// <see cref="Cpu.OptimReference"/>; kernels without one compare against plain loops). Every buffer is placed at a
/// non-zero element offset inside a larger storage whose margins hold a sentinel, and the whole storage is compared,
/// so a kernel that ignores the offset or writes outside its range fails. One op's failure or exception never stops
/// the others.
/// </para>
/// </summary>
public sealed partial class KernelSelfTest
{
    private readonly List<(string Name, Action<Check> Body)> _checks = [];

    /// <summary>A self-test of <paramref name="device"/>'s kernels against the CPU, with inputs drawn from <paramref name="seed"/>.</summary>
    public KernelSelfTest(Device device, ulong seed = 0x5E1F7E57)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        Seed = seed;
        bool cpu = device == Tensors.Device.Cpu;
        ReferenceKernels = cpu ? new ScalarReferenceKernels() : Tensors.Device.Cpu.Kernels;
        ReferenceName = cpu ? "scalar reference implementations (Engine.Cpu.Reference)" : "CPU kernels";
        RegisterCore();
        RegisterElementwise();
        RegisterReduce();
        RegisterOptim();
        RegisterConv();
        RegisterPool();
        RegisterShape();
        RegisterBounds();
        RegisterEndToEnd();
    }

    /// <summary>The device under test.</summary>
    public Device Device { get; }

    /// <summary>The seed every input is drawn from (each check mixes in its name, so filtering changes no inputs).</summary>
    public ulong Seed { get; }

    /// <summary>What the device is compared with, in words.</summary>
    public string ReferenceName { get; }

    /// <summary>The kernels the reference side runs (on CPU storage).</summary>
    internal IKernels ReferenceKernels { get; }

    /// <summary>The names of every check, in run order: IKernels members ("Gemm"), member/op ("Unary/Exp") and "E2E/..." checks.</summary>
    public IReadOnlyList<string> CheckNames => _checks.Select(c => c.Name).ToArray();

    /// <summary>
    /// Runs the checks whose name contains <paramref name="filter"/> (case-insensitive; null runs all), yielding each
    /// result as soon as it is known.
    /// </summary>
    public IEnumerable<SelfTestResult> Run(string? filter = null)
        => Run(name => filter == null || name.Contains(filter, StringComparison.OrdinalIgnoreCase));

    /// <summary>Runs the checks whose name <paramref name="select"/> accepts, yielding each result as soon as it is known.</summary>
    public IEnumerable<SelfTestResult> Run(Func<string, bool> select)
    {
        ArgumentNullException.ThrowIfNull(select);
        foreach (var (name, body) in _checks)
            if (select(name)) yield return RunOne(name, body);
    }

    private SelfTestResult RunOne(string name, Action<Check> body)
    {
        // A GPU kernel that faults leaves its context unusable: every later check would fail with the same sticky
        // error, so say once what broke it instead.
        if (_broken != null) return new SelfTestResult(name, 0, 0, 0, false, $"not run: {_broken}");
        var result = RunChecked(name, body);
        if (!result.Passed && Probe() is { } why) _broken = $"the device stopped working after {name} ({why})";
        return result;
    }

    private string? _broken;

    // Fills a few floats on the device and reads them back; the failure message when that no longer works.
    private string? Probe()
    {
        try
        {
            using var s = Device.Allocate(4);
            Device.Kernels.Fill(new Buf(s, 0), 4, 2.5f);
            Device.Synchronize();
            Span<float> back = stackalloc float[4];
            Device.CopyToHost(s, 0, back);
            foreach (var v in back) if (v != 2.5f) return $"a Fill of 2.5 read back as {v}";
            return null;
        }
        catch (Exception e)
        {
            return Describe(e);
        }
    }

    private SelfTestResult RunChecked(string name, Action<Check> body)
    {
        var c = new Check(this, name);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            body(c);
            c.EndCase();
            Device.Synchronize();
        }
        catch (Exception e)
        {
            c.EndCase();
            c.Fail($"{c.CaseLabel}: {Describe(e)}");
        }
        return c.Result() with { Elapsed = clock.Elapsed };
    }

    private static string Describe(Exception e)
    {
        var inner = e is TypeInitializationException or System.Reflection.TargetInvocationException or AggregateException && e.InnerException != null ? e.InnerException : e;
        return $"{inner.GetType().Name}: {inner.Message}";
    }

    private void Add(string name, Action<Check> body) => _checks.Add((name, body));

    /// <summary>Which side of the comparison a buffer or kernel call belongs to.</summary>
    internal enum Side { Device, Reference }

    /// <summary>
    /// How close device and reference must be: |d − r| ≤ Abs + Rel·|r| + Scale·m, where m is the element's magnitude
    /// (Σ |terms| of a sum of products where the check provides it, else the largest |r| of the output). Bitwise also
    /// requires equal bits (the uniform RNG).
    /// </summary>
    internal readonly record struct Tol(double Abs, double Rel, double Scale = 0, bool Bitwise = false)
    {
        public static readonly Tol Exact = new(0, 0);
        public static readonly Tol Bits = new(0, 0, 0, true);
        /// <summary>A few units of roundoff: one rounding step done differently (FMA contraction, operand order).</summary>
        public static readonly Tol Ulps = new(1e-7, 1e-6);
        /// <summary>Transcendental functions (libm / CUDA math / SIMD polynomials are each within a few ulps).</summary>
        public static readonly Tol Math = new(1e-6, 1e-5);
        /// <summary>Sums of products: accumulation order differs, so the error scales with Σ |terms|.</summary>
        public static readonly Tol Sum = new(1e-6, 1e-5, 1e-5);
    }

    /// <summary>One buffer on both sides: storages of the same length and contents, the payload at the same offset.</summary>
    internal sealed class Pair(Storage device, Storage reference, int offset, int length)
    {
        public Storage D { get; } = device;
        public Storage R { get; } = reference;
        public int Offset { get; } = offset;
        public int Length { get; } = length;
        public Buf this[Side s] => new(s == Side.Device ? D : R, Offset);
    }

    /// <summary>SplitMix64: a small deterministic generator for inputs (independent of the engine's Philox stream).</summary>
    internal sealed class Rng(ulong seed)
    {
        private ulong _s = seed;

        public ulong NextULong()
        {
            ulong z = _s += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        public double NextDouble() => (NextULong() >> 11) * (1.0 / (1UL << 53));
        public int Next(int lo, int hi) => lo + (int)(NextULong() % (ulong)(hi - lo));
        public float Uniform(float lo, float hi) => (float)(lo + (hi - lo) * NextDouble());
    }
}
