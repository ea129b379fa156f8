using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// Bound computation (issue 3): IBP, CROWN and alpha-CROWN (20 iterations) lower bounds of the margin spec for the
/// MLP 784-256-256-10 and the small CNN of <see cref="BoundBenchNets"/>, batch 1 and 32, on one and two threads.
/// benchmarks/peers/bounds_autolirpa.py times auto_LiRPA on the same networks for the ratio.
/// </summary>
[Config(typeof(BoundBenchConfig))]
public class BoundBenchmarks
{
    /// <summary>"mlp" or "cnn".</summary>
    [Params("mlp", "cnn")]
    public string Net { get; set; } = "mlp";

    /// <summary>Examples per call.</summary>
    [Params(1, 32)]
    public int Batch { get; set; }

    /// <summary>"ibp", "crown" or "alpha-crown".</summary>
    [Params("ibp", "crown", "alpha-crown")]
    public string Method { get; set; } = "crown";

    /// <summary>CPU threads for the kernels (auto_LiRPA's reference times are for one thread).</summary>
    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    private Module _model = null!;
    private Tensor _x = null!;
    private Spec _spec = null!;
    private Perturbation _eps = null!;
    private BoundMethod _method;
    private int _savedThreads;

    [GlobalSetup]
    public void Setup()
    {
        _savedThreads = CpuThreads.Count;
        CpuThreads.Count = Threads;
        _model = BoundBenchNets.Make(Net);
        _x = BoundBenchNets.Input(Batch);
        _spec = BoundBenchNets.Margins(Batch);
        _eps = Perturbation.LInf(BoundBenchNets.Eps);
        _method = BoundBenchNets.Method(Method);
    }

    [GlobalCleanup]
    public void Cleanup() => CpuThreads.Count = _savedThreads;

    /// <summary>
    /// Under NoGrad, as a verifier runs (alpha-CROWN enables gradients for its slopes itself); without it IBP and
    /// CROWN would also record the graph for the weights' gradients.
    /// </summary>
    [Benchmark]
    public Tensor Lower()
    {
        using var _ = new NoGrad();
        return Bounds.Bounds.Compute(_model, _x, _eps, _method, _spec, BoundBenchNets.Options).Lower;
    }
}

/// <summary>
/// A short job: the whole class runs in a few minutes (alpha-CROWN at batch 32 takes up to a second per call). The
/// 250 ms iterations still repeat the millisecond cases hundreds of times, so the tiered JIT has settled.
/// </summary>
public sealed class BoundBenchConfig : ManualConfig
{
    public BoundBenchConfig() => AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(3).WithLaunchCount(1)
        .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(250))
        .WithGcServer(false).WithGcConcurrent(false).WithGcRetainVm(true));
}
