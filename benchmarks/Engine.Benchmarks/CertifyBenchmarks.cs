using BenchmarkDotNet.Attributes;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// Verification (issue 5) of the first 1,000 Fashion-MNIST test images at L∞ 0.1 (clipped to [0, 1]) by IBP or CROWN,
/// under NoGrad (the compiled fast path), of a certifiably trained small CNN (<see cref="CertifiedBench.TrainedCnn"/>,
/// trained in the setup). One operation verifies all 1,000 (<see cref="CertifiedBench.Verify"/>: chunks of 1,000 for
/// IBP, 250 for CROWN). benchmarks/peers/certified_torch.py --dir (Engine.Benchmarks --export-certified) verifies the
/// same images with the same weights in PyTorch.
/// </summary>
[Config(typeof(CertifiedBenchConfig))]
public class CertifyBenchmarks
{
    /// <summary>The bound method: "ibp" or "crown".</summary>
    [Params("ibp", "crown")]
    public string Bound { get; set; } = "crown";

    /// <summary>CPU threads for the kernels.</summary>
    [Params(1, 2)]
    public int Threads { get; set; } = 2;

    /// <summary>Images verified per operation.</summary>
    public const int Images = 1000;

    private Module _model = null!;
    private Tensor _x = null!, _y = null!;
    private BoundMethod _method;
    private int _savedThreads;

    [GlobalSetup]
    public void Setup()
    {
        _savedThreads = CpuThreads.Count;
        CpuThreads.Count = Threads;
        _model = CertifiedBench.TrainedCnn();
        (_x, _y) = CertifiedBench.TestImages(Images);
        _method = BoundBenchNets.Method(Bound);
    }

    [GlobalCleanup]
    public void Cleanup() => CpuThreads.Count = _savedThreads;

    /// <summary>The number of verified images (returned so that the work is not optimised away).</summary>
    [Benchmark]
    public int Verify() => CertifiedBench.Verify(_model, _x, _y, _method);
}
