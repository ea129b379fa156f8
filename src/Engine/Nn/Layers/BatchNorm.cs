using Engine.Graph;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// Batch normalisation over the channel dimension (torch.nn.BatchNorm*d): parameters weight (1) and bias (0)
/// when affine, buffers running_mean (0), running_var (1) and num_batches_tracked when tracking running
/// statistics. Training normalises with batch statistics (biased variance) and updates the running ones with
/// <see cref="Momentum"/> (unbiased variance); evaluation uses the running statistics.
/// </summary>
public abstract class BatchNorm : Module
{
    private readonly BatchNormOp _op;
    private readonly Tensor _weight, _bias;

    /// <summary>Creates the layer for inputs of the given ranks.</summary>
    private protected BatchNorm(int numFeatures, float eps, float momentum, bool affine, bool trackRunningStats, int[] ranks)
    {
        if (numFeatures < 1) throw new ArgumentOutOfRangeException(nameof(numFeatures), $"BatchNorm: numFeatures must be >= 1, got {numFeatures}.");
        NumFeatures = numFeatures;
        _op = new BatchNormOp(eps, momentum, ranks) { TrainingGate = () => Training };
        _weight = Tensor.Ones(numFeatures);
        _bias = Tensor.Zeros(numFeatures);
        if (affine) { RegisterParameter("weight", _weight); RegisterParameter("bias", _bias); }
        if (trackRunningStats)
        {
            RunningMean = RegisterBuffer("running_mean", Tensor.Zeros(numFeatures));
            RunningVar = RegisterBuffer("running_var", Tensor.Ones(numFeatures));
            NumBatchesTracked = RegisterBuffer("num_batches_tracked", Tensor.Scalar(0));
        }
        Affine = affine;
    }

    /// <summary>Channels.</summary>
    public int NumFeatures { get; }
    /// <summary>Variance epsilon.</summary>
    public float Eps => _op.Eps;
    /// <summary>Running-average momentum.</summary>
    public float Momentum => _op.Momentum;
    /// <summary>Whether weight and bias are learned.</summary>
    public bool Affine { get; }
    /// <summary>Scale [C] (ones, fixed when not affine).</summary>
    public Tensor Weight => _weight;
    /// <summary>Shift [C] (zeros, fixed when not affine).</summary>
    public Tensor Bias => _bias;
    /// <summary>Running mean [C], or null when statistics are not tracked.</summary>
    public Tensor? RunningMean { get; }
    /// <summary>Running (unbiased) variance [C], or null when statistics are not tracked.</summary>
    public Tensor? RunningVar { get; }
    /// <summary>Number of training batches seen (a scalar), or null when statistics are not tracked.</summary>
    public Tensor? NumBatchesTracked { get; }

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input)
    {
        var w = Affine ? builder.Parameter("weight", _weight) : builder.Constant("weight", _weight);
        var b = Affine ? builder.Parameter("bias", _bias) : builder.Constant("bias", _bias);
        if (RunningMean == null) return builder.Apply(_op, input, w, b);
        return builder.Apply(_op, input, w, b, builder.Buffer("running_mean", RunningMean), builder.Buffer("running_var", RunningVar!),
                             builder.Buffer("num_batches_tracked", NumBatchesTracked!));
    }

    /// <inheritdoc/>
    protected override string ExtraRepr => $"{NumFeatures}, eps={Eps}, momentum={Momentum}, affine={Affine}, track_running_stats={RunningMean != null}";
}

/// <summary>Batch normalisation of [N, C] or [N, C, L] inputs (torch.nn.BatchNorm1d).</summary>
public sealed class BatchNorm1d(int numFeatures, float eps = 1e-5f, float momentum = 0.1f, bool affine = true, bool trackRunningStats = true)
    : BatchNorm(numFeatures, eps, momentum, affine, trackRunningStats, [2, 3]);

/// <summary>Batch normalisation of [N, C, H, W] inputs (torch.nn.BatchNorm2d).</summary>
public sealed class BatchNorm2d(int numFeatures, float eps = 1e-5f, float momentum = 0.1f, bool affine = true, bool trackRunningStats = true)
    : BatchNorm(numFeatures, eps, momentum, affine, trackRunningStats, [4]);
