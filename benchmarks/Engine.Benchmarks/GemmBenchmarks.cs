using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Engine.Cpu;

namespace Engine.Benchmarks;

/// <summary>
/// SGEMM throughput: square N×N×N (C = A·B) and the 128×784×256 MLP layer (x·Wᵀ, as Linear runs it), on 1 and 2
/// threads. The GFLOP/s column is 2·M·N·K / mean time; benchmarks/peers/gemm_numpy.py and gemm_torch.py time the
/// same shapes with OpenBLAS / MKL for the ratio.
/// </summary>
[Config(typeof(GemmConfig))]
public unsafe class GemmBenchmarks
{
    /// <summary>"N" for N×N×N, or "MxKxN" (B stored N×K, i.e. transposed).</summary>
    [Params("256", "512", "1024", "2048", "128x784x256")]
    public string Shape { get; set; } = "1024";

    /// <summary>CpuThreads.Count during the run.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    private int _m, _n, _k, _savedThreads;
    private bool _transB;
    private float* _a, _b, _c;

    /// <summary>(M, N, K, transB) of a Shape value.</summary>
    public static (int M, int N, int K, bool TransB) Parse(string shape)
    {
        var parts = shape.Split('x');
        if (parts.Length == 1) { int s = int.Parse(parts[0]); return (s, s, s, false); }
        return (int.Parse(parts[0]), int.Parse(parts[2]), int.Parse(parts[1]), true);
    }

    [GlobalSetup]
    public void Setup()
    {
        (_m, _n, _k, _transB) = Parse(Shape);
        _a = Alloc((long)_m * _k);
        _b = Alloc((long)_k * _n);
        _c = Alloc((long)_m * _n);
        var rng = new Random(42);
        for (long i = 0; i < (long)_m * _k; i++) _a[i] = rng.NextSingle() - 0.5f;
        for (long i = 0; i < (long)_k * _n; i++) _b[i] = rng.NextSingle() - 0.5f;
        _savedThreads = CpuThreads.Count;
        CpuThreads.Count = Threads;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CpuThreads.Count = _savedThreads;
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_b);
        NativeMemory.AlignedFree(_c);
    }

    private static float* Alloc(long n) => (float*)NativeMemory.AlignedAlloc((nuint)(n * sizeof(float)), 64);

    [Benchmark]
    public void Sgemm() =>
        Engine.Cpu.Sgemm.Run(false, _transB, _m, _n, _k, 1f, _a, _k, _b, _transB ? _k : _n, 0f, _c, _n);
}

/// <summary>Adds the GFLOP/s column.</summary>
public sealed class GemmConfig : ManualConfig
{
    public GemmConfig() => AddColumn(new GflopsColumn());
}

/// <summary>2·M·N·K / mean time, from the Shape parameter.</summary>
public sealed class GflopsColumn : IColumn
{
    public string Id => nameof(GflopsColumn);
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "2*M*N*K / mean time, in 1e9 flop per second";
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || benchmarkCase.Parameters["Shape"] is not string shape) return "-";
        var (m, n, k, _) = GemmBenchmarks.Parse(shape);
        return (2.0 * m * n * k / stats.Mean).ToString("F1"); // flop per ns = GFLOP/s
    }
}
