using Engine.Autograd;
using Engine.Bounds;
using Engine.Cpu;
using Engine.Data;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Benchmarks;

/// <summary>
/// The work of the certified training and certification benchmarks (issue 5), shared by
/// <see cref="CertifiedTrainingBenchmarks"/>, <see cref="CertifyBenchmarks"/> and <c>--export-certified</c>
/// (benchmarks/peers/certified_torch.py does the same in PyTorch): the small CNN of <see cref="BoundBenchNets"/>
/// ("cnn"), an L∞ ball of radius 0.1 clipped to [0, 1], the margin spec, lower bounds only.
/// </summary>
public static class CertifiedBench
{
    /// <summary>The L∞ radius (inputs in [0, 1]).</summary>
    public const float Eps = 0.1f;

    /// <summary>The training batch.</summary>
    public const int Batch = 256;

    /// <summary>The mixing coefficients of the timed steps: kappa (clean CE weight) and beta (CROWN-IBP weight).</summary>
    public const float Kappa = 0.5f, Beta = 0.5f;

    /// <summary>Where the full Fashion-MNIST set is read from (ENGINE_FASHION_MNIST overrides).</summary>
    public static string DataDirectory => Environment.GetEnvironmentVariable("ENGINE_FASHION_MNIST") is { Length: > 0 } d ? d : "/usr/share/datasets/fashion-mnist";

    /// <summary>Lower bounds only, as auto_LiRPA's training (bound_upper=False) and verification need.</summary>
    public static BoundOptions Options { get; } = new() { ComputeUpper = false };

    /// <summary>The perturbation: L∞ radius <paramref name="eps"/> clipped to the image domain [0, 1].</summary>
    public static Perturbation Ball(float eps = Eps) => Perturbation.LInf(eps, 0f, 1f);

    /// <summary>The training batch: <see cref="BoundBenchNets.Input"/>(256) and labels i mod 10.</summary>
    public static (Tensor X, Tensor Y) TrainingBatch() =>
        (BoundBenchNets.Input(Batch), Tensor.FromArray(Enumerable.Range(0, Batch).Select(i => (float)(i % 10)).ToArray(), Batch));

    /// <summary>
    /// The loss of one step of <paramref name="method"/>: "standard" CE(f(x), y); "ibp" kappa·CE(f(x), y) +
    /// (1 − kappa)·CE([0, −lb], 0) with lb the IBP margin lower bounds; "crown-ibp" the same with
    /// lb = beta·CROWN-IBP + (1 − beta)·IBP (<see cref="Bounds.Bounds.ComputeMixed"/>, one IBP pass).
    /// </summary>
    public static Tensor Loss(Module model, Tensor x, Tensor y, Spec spec, string method, float eps = Eps, float kappa = Kappa, float beta = Beta)
    {
        if (method is not ("standard" or "ibp" or "crown-ibp"))
            throw new ArgumentException($"Unknown training method '{method}' (standard, ibp or crown-ibp).");
        var clean = Losses.CrossEntropy(model.Forward(x), y);
        if (method == "standard" || eps == 0 || kappa >= 1) return clean;
        var lower = method == "ibp"
            ? Bounds.Bounds.Compute(model, x, Ball(eps), BoundMethod.Ibp, spec, Options).Lower
            : Bounds.Bounds.ComputeMixed(model.Graph, x, Ball(eps), 1 - beta, spec, Options).Lower;
        return clean * kappa + WorstCaseCrossEntropy(lower) * (1 - kappa);
    }

    /// <summary>
    /// <see cref="Loss"/> and its backward pass as <see cref="DataParallel"/> shards (one per replica): the gradients land
    /// on the model's parameters; returns the batch's mean loss.
    /// </summary>
    public static float ShardedBackward(DataParallel dp, Tensor x, Tensor y, string method) =>
        dp.Backward(x, y, (m, xs, ys, k) => new ShardLoss(Loss(m, xs, ys, Spec.Margins(ys, 10), method), null)).Loss;

    /// <summary>Cross-entropy over the logits [0, −lower_1, ..., −lower_S] with target 0 (auto_LiRPA's robust CE).</summary>
    public static Tensor WorstCaseCrossEntropy(Tensor lower)
    {
        int b = lower.Size(0);
        return Losses.CrossEntropy(Tensor.Concat([Tensor.Zeros([b, 1], lower.Device), -lower], 1), Tensor.Zeros([b], lower.Device));
    }

    /// <summary>
    /// The first <paramref name="count"/> test images of the full Fashion-MNIST set (<see cref="DataDirectory"/>), or of
    /// the embedded test subset when the full set is missing (then not the peer's images: a warning says so).
    /// </summary>
    public static (Tensor X, Tensor Y) TestImages(int count)
    {
        TensorDataset test;
        if (Directory.Exists(DataDirectory)) test = FashionMnist.Load(DataDirectory).Test;
        else
        {
            Console.Error.WriteLine($"warning: {DataDirectory} not found (apt-get install dataset-fashion-mnist, or set ENGINE_FASHION_MNIST); " +
                                    "using the embedded test subset, which is not the peer's images");
            test = FashionMnist.LoadEmbedded().Test;
        }
        if (count > test.Count) throw new ArgumentOutOfRangeException(nameof(count), $"The test set has {test.Count} images, {count} asked for.");
        return (test.Inputs.Narrow(0, 0, count), test.Targets.Narrow(0, 0, count));
    }

    /// <summary>Examples per bound call in <see cref="Verify"/>: IBP is cheap at any batch; CROWN's cost is per example.</summary>
    public static int VerifyChunk(BoundMethod method) => method == BoundMethod.Ibp ? 1000 : 250;

    /// <summary>
    /// How many of the examples are verified (every margin's lower bound &gt; 0) by <paramref name="method"/> at
    /// <paramref name="eps"/>; runs under NoGrad, so IBP and CROWN take the compiled fast path.
    /// </summary>
    public static int Verify(Module model, Tensor x, Tensor y, BoundMethod method, float eps = Eps)
    {
        using var _ = new NoGrad();
        int n = x.Size(0), chunk = VerifyChunk(method), verified = 0;
        for (int s = 0; s < n; s += chunk)
        {
            int len = Math.Min(chunk, n - s);
            var lower = Bounds.Bounds.Compute(model, x.Narrow(0, s, len), Ball(eps), method, Spec.Margins(y.Narrow(0, s, len), 10), Options).Lower.ToArray();
            int rows = lower.Length / len;
            for (int i = 0; i < len; i++)
            {
                bool ok = true;
                for (int j = 0; j < rows; j++) ok &= lower[i * rows + j] > 0;
                if (ok) verified++;
            }
        }
        return verified;
    }

    /// <summary>
    /// A certifiably trained CNN for the certification timings, deterministic for the code that trains it:
    /// <see cref="BoundBenchNets"/>' seeded "cnn" trained with IBP on the embedded 10,000-image subset (batch 256,
    /// Adam 1e-3, seed 0): 1 epoch natural, eps ramped 0 → 0.1 and kappa 1 → 0 per batch over 3 epochs, 1 epoch at
    /// 0.1. A few seconds. Always trained on two threads: the kernels' work split changes float rounding, and every
    /// thread count of the benchmarks (and the peer's export) must verify the same network. Random weights would leave
    /// nearly every ReLU unstable at eps 0.1 and nothing verified, which is not the work of certifying a trained network.
    /// </summary>
    public static Module TrainedCnn()
    {
        int saved = CpuThreads.Count;
        CpuThreads.Count = 2;
        try { return TrainIbp(); }
        finally { CpuThreads.Count = saved; }
    }

    private static Module TrainIbp()
    {
        var model = BoundBenchNets.Make("cnn");
        model.Train();
        var loader = new DataLoader(FashionMnist.LoadEmbedded().Train, Batch, shuffle: true, seed: 0);
        var opt = new Adam(model.Parameters(), 1e-3f);
        const int warm = 1, ramp = 3, full = 1;
        int steps = ramp * loader.Count, done = 0;
        for (int epoch = 0; epoch < warm + ramp + full; epoch++)
        {
            foreach (var (x, y) in loader)
            {
                float frac = epoch < warm ? 0f : Math.Min(1f, ++done / (float)steps);
                opt.ZeroGrad();
                Loss(model, x, y, Spec.Margins(y, 10), "ibp", Eps * frac, 1 - frac).Backward();
                opt.Step();
            }
        }
        model.Eval();
        return model;
    }
}
