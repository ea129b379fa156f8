using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// One certified training step (issue 5) of the small CNN (<see cref="BoundBenchNets"/> "cnn") at batch 256: zero-grad,
/// loss, backward, Adam (lr 5e-4). "standard": CE(f(x), y); "ibp": 0.5·CE + 0.5·CE([0, −lb], 0) with lb the IBP margin
/// lower bounds over the L∞ ball of radius 0.1 clipped to [0, 1]; "crown-ibp": the same with lb = 0.5·CROWN-IBP +
/// 0.5·IBP (<see cref="CertifiedBench.Loss"/>). The bounds run on the differentiable graph path (gradients flow through
/// them). benchmarks/peers/certified_torch.py times the same steps in PyTorch (auto_LiRPA's algorithms) for the ratio.
/// <see cref="Sharded"/> runs the loss and backward pass as <see cref="DataParallel"/> shards, one per thread (what
/// <c>CertifiedTrainer</c> does by default); with one thread it is the whole batch on one replica.
/// </summary>
[Config(typeof(CertifiedBenchConfig))]
public class CertifiedTrainingBenchmarks
{
    /// <summary>The training loss: "standard", "ibp" or "crown-ibp".</summary>
    [Params("standard", "ibp", "crown-ibp")]
    public string Training { get; set; } = "ibp";

    /// <summary>CPU threads for the kernels.</summary>
    [Params(1, 2)]
    public int Threads { get; set; } = 2;

    /// <summary>Whole batch (kernels spread over the threads) or one shard per thread on model replicas.</summary>
    [Params(false, true)]
    public bool Sharded { get; set; }

    private Module _model = null!;
    private DataParallel? _dp;
    private Optimizer _opt = null!;
    private Tensor _x = null!, _y = null!;
    private Spec _spec = null!;
    private int _savedThreads;

    [GlobalSetup]
    public void Setup()
    {
        _savedThreads = CpuThreads.Count;
        CpuThreads.Count = Threads;
        _model = BoundBenchNets.Make("cnn");
        _model.Train();
        _opt = new Adam(_model.Parameters(), 5e-4f);
        (_x, _y) = CertifiedBench.TrainingBatch();
        _spec = Spec.Margins(_y, 10);
        if (Sharded) _dp = new DataParallel(_model, Threads);
    }

    [GlobalCleanup]
    public void Cleanup() => CpuThreads.Count = _savedThreads;

    [Benchmark]
    public float Step()
    {
        _opt.ZeroGrad();
        if (_dp != null)
        {
            float l = CertifiedBench.ShardedBackward(_dp, _x, _y, Training);
            _opt.Step();
            return l;
        }
        var loss = CertifiedBench.Loss(_model, _x, _y, _spec, Training);
        loss.Backward();
        _opt.Step();
        return loss.Item();
    }
}

/// <summary>
/// A short job with median and minimum columns: each case runs for about 5 s after its pilot and warm-up (the CROWN-IBP
/// step and CROWN verification take up to a second or two per call on this machine), so each class takes a few minutes.
/// </summary>
public sealed class CertifiedBenchConfig : ManualConfig
{
    public CertifiedBenchConfig()
    {
        AddJob(Job.ShortRun.WithWarmupCount(2).WithIterationCount(8).WithLaunchCount(1)
            .WithIterationTime(Perfolizer.Horology.TimeInterval.FromMilliseconds(500))
            .WithGcServer(false).WithGcConcurrent(false).WithGcRetainVm(true));
        AddColumn(StatisticColumn.Median, StatisticColumn.Min);
        // The generated boilerplate project rebuilds the engine, which takes over the default 2 minutes on a busy VM.
        WithBuildTimeout(TimeSpan.FromMinutes(10));
    }
}
