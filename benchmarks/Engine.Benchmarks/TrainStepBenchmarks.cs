using BenchmarkDotNet.Attributes;
using Engine.Cpu;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// One training step (forward, cross-entropy, backward, SGD momentum step) at batch 128 for the MLP 784-256-256-10 and
/// the small CNN of the main job. benchmarks/peers/train_torch.py times the same step in PyTorch for the ratio.
/// </summary>
[MemoryDiagnoser]
public class TrainStepBenchmarks
{
    /// <summary>"mlp" or "cnn".</summary>
    [Params("mlp", "cnn")]
    public string Model { get; set; } = "mlp";

    /// <summary>CpuThreads.Count during the run.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    private Module _model = null!;
    private Optimizer _opt = null!;
    private Tensor _x = null!, _y = null!;
    private int _savedThreads;

    /// <summary>The benchmark models, as the CLI defines them.</summary>
    public static Module Make(string name) => name switch
    {
        "mlp" => new Sequential(new Flatten(), new Linear(784, 256), new ReLU(), new Linear(256, 256), new ReLU(), new Linear(256, 10)),
        "cnn" => new Sequential(new Conv2d(1, 16, 4, 2, 1), new ReLU(), new Conv2d(16, 32, 4, 2, 1), new ReLU(), new Flatten(),
                                new Linear(1568, 100), new ReLU(), new Linear(100, 10)),
        _ => throw new ArgumentException($"Unknown model '{name}'."),
    };

    [GlobalSetup]
    public void Setup()
    {
        _savedThreads = CpuThreads.Count;
        CpuThreads.Count = Threads;
        Generator.ManualSeed(0);
        _model = Make(Model);
        _model.Train();
        _opt = new Sgd(_model.Parameters(), 0.01f, momentum: 0.9f);
        _x = Tensor.Rand(128, 1, 28, 28);
        _y = Tensor.FromArray(Enumerable.Range(0, 128).Select(i => (float)(i % 10)).ToArray(), 128);
    }

    [GlobalCleanup]
    public void Cleanup() => CpuThreads.Count = _savedThreads;

    [Benchmark]
    public float Step()
    {
        _opt.ZeroGrad();
        var loss = Losses.CrossEntropy(_model.Forward(_x), _y);
        loss.Backward();
        _opt.Step();
        return loss.Item();
    }
}

/// <summary>
/// conv2d forward, and forward + backward (dX and dW), on two shapes: "64x64" (batch 32, 64→64 channels, 32×32, k3 p1:
/// `engine bench conv2d`, train_torch.py's conv2d) and "cnn2" (batch 256, 16→32 channels, 14×14, k4 s2 p1: the second
/// layer of the certified-training CNN); <see cref="Direct"/> false forces the im2col + GEMM path, so the two CPU paths
/// are compared in the same run.
/// </summary>
[MemoryDiagnoser]
public class Conv2dBenchmarks
{
    /// <summary>CpuThreads.Count during the run.</summary>
    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>"64x64" or "cnn2" (see the class summary).</summary>
    [Params("64x64", "cnn2")]
    public string Shape { get; set; } = "64x64";

    /// <summary>Whether narrow convolutions may take the direct path (DirectConv.Enabled).</summary>
    [Params(true, false)]
    public bool Direct { get; set; }

    private Tensor _x = null!, _w = null!, _b = null!, _xg = null!, _wg = null!, _bg = null!;
    private int _savedThreads, _stride, _pad;
    private bool _savedDirect;

    [GlobalSetup]
    public void Setup()
    {
        _savedThreads = CpuThreads.Count;
        _savedDirect = DirectConv.Enabled;
        CpuThreads.Count = Threads;
        DirectConv.Enabled = Direct;
        var g = new Generator(1);
        bool cnn = Shape == "cnn2";
        (_stride, _pad) = cnn ? (2, 1) : (1, 1);
        _x = cnn ? Tensor.Uniform([256, 16, 14, 14], 0, 1, g) : Tensor.Uniform([32, 64, 32, 32], -1, 1, g);
        _w = cnn ? Tensor.Uniform([32, 16, 4, 4], -0.06f, 0.06f, g) : Tensor.Uniform([64, 64, 3, 3], -0.05f, 0.05f, g);
        _b = Tensor.Uniform([cnn ? 32 : 64], -0.05f, 0.05f, g);
        _xg = _x.Detach().RequiresGrad_();
        _wg = _w.Detach().RequiresGrad_();
        _bg = _b.Detach().RequiresGrad_();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        CpuThreads.Count = _savedThreads;
        DirectConv.Enabled = _savedDirect;
    }

    [Benchmark]
    public Tensor Forward() => Tensor.Conv2d(_x, _w, _b, _stride, _pad);

    [Benchmark]
    public void ForwardBackward()
    {
        _xg.Grad = null; _wg.Grad = null; _bg.Grad = null;
        Tensor.Conv2d(_xg, _wg, _bg, _stride, _pad).Sum().Backward();
    }
}
