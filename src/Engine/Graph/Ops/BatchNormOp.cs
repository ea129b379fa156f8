using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// Batch normalisation over dimension 1 of [N, C, ...] (ONNX BatchNormalization). Inputs: x, weight [C], bias [C],
/// then optionally running_mean [C], running_var [C] and num_batches_tracked []. In training, or without running
/// statistics, it normalises with the batch mean and biased variance; in training it also updates the running
/// statistics in place: running = (1 - momentum) * running + momentum * batch stat, with the unbiased variance.
/// In evaluation with running statistics it is the per-channel affine map (x - mean) / sqrt(var + eps) * w + b.
/// </summary>
public sealed partial class BatchNormOp : Op
{
    private readonly int[]? _ranks;

    /// <summary>Creates the op; <paramref name="ranks"/> restricts the accepted input ranks (null: any rank &gt;= 2).</summary>
    public BatchNormOp(float eps = 1e-5f, float momentum = 0.1f, int[]? ranks = null)
    {
        if (!(eps > 0)) throw new ArgumentOutOfRangeException(nameof(eps), $"BatchNorm: eps must be > 0, got {eps}.");
        if (!(momentum >= 0 && momentum <= 1)) throw new ArgumentOutOfRangeException(nameof(momentum), $"BatchNorm: momentum must be in [0, 1], got {momentum}.");
        Eps = eps; Momentum = momentum; _ranks = ranks;
    }

    /// <summary>Added to the variance before the square root.</summary>
    public float Eps { get; }
    /// <summary>Weight of the new batch statistic in the running averages.</summary>
    public float Momentum { get; }

    /// <inheritdoc/>
    public override string Type => "BatchNormalization";
    /// <inheritdoc/>
    public override int MinInputs => 3;
    /// <inheritdoc/>
    public override int MaxInputs => 6;
    /// <inheritdoc/>
    protected override string Attributes => $"eps={Eps}, momentum={Momentum}";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        if (inputs.Length == 4) throw new ArgumentException("BatchNormalization: running_mean needs running_var (got 4 inputs).");
        var x = inputs[0];
        if (x.Rank < 2 || (_ranks != null && !_ranks.Contains(x.Rank)))
            throw new ArgumentException($"BatchNormalization: expected input of rank {(_ranks == null ? ">= 2" : string.Join(" or ", _ranks))} ([N, C, ...]), got {ShapeUtil.Format(x.Dims)}.");
        int c = x.Dims[1];
        for (int i = 1; i < inputs.Length; i++)
        {
            var p = inputs[i];
            int want = i == 5 ? 1 : c;
            if (p.Numel != want || (i < 5 && p.Rank != 1))
                throw new ArgumentException($"BatchNormalization: input {i} has shape {ShapeUtil.Format(p.Dims)}, expected [{want}] for {c} channels (x {ShapeUtil.Format(x.Dims)}).");
        }

        var statShape = new int[x.Rank];
        Array.Fill(statShape, 1);
        statShape[1] = c;
        var w = inputs[1].Reshape(statShape);
        var b = inputs[2].Reshape(statShape);
        bool hasRunning = inputs.Length >= 5;
        bool training = IsTraining(ctx);

        if (!training && hasRunning)
        {
            var scale = w / (inputs[4].Reshape(statShape) + Eps).Sqrt();
            return (x - inputs[3].Reshape(statShape)) * scale + b;
        }

        var axes = Enumerable.Range(0, x.Rank).Where(a => a != 1).ToArray();
        long n = x.Numel / Math.Max(1, c);
        if (training && n <= 1)
            throw new ArgumentException($"BatchNormalization: expected more than 1 value per channel when training, got input {ShapeUtil.Format(x.Dims)}.");
        var mean = x.Mean(axes, keepDim: true);
        var xc = x - mean;
        var variance = (xc * xc).Mean(axes, keepDim: true);
        var y = xc / (variance + Eps).Sqrt() * w + b;

        if (training && hasRunning)
        {
            using var _ = new NoGrad();
            var rm = inputs[3]; var rv = inputs[4];
            rm.CopyFrom(rm * (1 - Momentum) + mean.Detach().Reshape(c) * Momentum);
            rv.CopyFrom(rv * (1 - Momentum) + variance.Detach().Reshape(c) * (Momentum * n / (n - 1f)));
            if (inputs.Length == 6) inputs[5].CopyFrom(inputs[5] + 1f);
        }
        return y;
    }
}
