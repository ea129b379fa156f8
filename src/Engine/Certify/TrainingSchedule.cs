namespace Engine.Certify;

/// <summary>The values the schedule sets for one training batch.</summary>
public sealed record ScheduleValues
{
    /// <summary>Global batch index (0-based) over the whole run.</summary>
    public int Step { get; init; }

    /// <summary>Epoch index (0-based).</summary>
    public int Epoch { get; init; }

    /// <summary>Fraction of the ramp done, in [0, 1]: 0 during the warm-up, 1 after the ramp (eps_t = Progress·eps).</summary>
    public float Progress { get; init; } = 1f;

    /// <summary>The radius for this batch.</summary>
    public float Eps { get; init; }

    /// <summary>Weight of the clean cross-entropy for this batch (certified methods).</summary>
    public float Kappa { get; init; }

    /// <summary>Weight of the CROWN-IBP bound for this batch (crown-ibp).</summary>
    public float Beta { get; init; }

    /// <summary>The noise level for this batch (noise).</summary>
    public float Sigma { get; init; }

    /// <summary>The learning rate for this batch.</summary>
    public float LearningRate { get; init; }
}

/// <summary>
/// The per-batch schedule of a run: warm-up epochs at progress 0, then a ramp of the progress p from 0 to 1 (linear per
/// batch, or auto_LiRPA's smoothed shape), after which p = 1. eps_t = p·eps and sigma_t = p·sigma; kappa and beta go
/// from 1 to their ends in proportion to p (as auto_LiRPA ties them to eps_t / eps); the learning rate follows the
/// options' schedule. A pure function of the step, so a run can be resumed or inspected at any batch.
/// </summary>
public sealed class TrainingSchedule
{
    private readonly CertifiedTrainingOptions _o;
    private readonly int _warmupSteps, _rampSteps;
    private readonly IReadOnlyList<int> _decayEpochs;

    /// <summary>The schedule of <paramref name="options"/> with <paramref name="batchesPerEpoch"/> batches per epoch.</summary>
    public TrainingSchedule(CertifiedTrainingOptions options, int batchesPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (batchesPerEpoch < 1) throw new ArgumentOutOfRangeException(nameof(batchesPerEpoch), $"TrainingSchedule: batches per epoch must be >= 1, got {batchesPerEpoch}.");
        _o = options;
        BatchesPerEpoch = batchesPerEpoch;
        _warmupSteps = options.ResolvedWarmupEpochs * batchesPerEpoch;
        _rampSteps = options.ResolvedRampEpochs * batchesPerEpoch;
        _decayEpochs = options.ResolvedLrDecayEpochs;
        TotalSteps = options.Epochs * batchesPerEpoch;
    }

    /// <summary>Batches per epoch.</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>Batches in the whole run.</summary>
    public int TotalSteps { get; }

    /// <summary>The values for global batch <paramref name="step"/> (0-based; steps past the end keep the final values).</summary>
    public ScheduleValues At(int step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), $"TrainingSchedule: step must be >= 0, got {step}.");
        float p = Progress(step);
        return new ScheduleValues
        {
            Step = step,
            Epoch = step / BatchesPerEpoch,
            Progress = p,
            Eps = p * _o.Eps,
            // Progress 0 is the warm-up (the ramp's first batch already has its increment): standard training.
            Kappa = p == 0 ? 1f : _o.KappaStart + p * (_o.KappaEnd - _o.KappaStart),
            Beta = 1 - p * (1 - _o.BetaEnd),
            Sigma = p * _o.Sigma,
            LearningRate = LearningRateAt(step),
        };
    }

    /// <summary>Fraction of the ramp done before batch <paramref name="step"/> is trained (its own increment included).</summary>
    public float Progress(int step)
    {
        if (step < _warmupSteps) return 0f;
        if (_rampSteps == 0) return 1f;
        // The batch's own increment counts (auto_LiRPA steps the schedule before the batch): the ramp's last batch is at the target.
        long t = (long)step - _warmupSteps + 1;
        if (t >= _rampSteps) return 1f;
        return _o.EpsRamp == EpsRamp.Smoothed ? Smoothed(t, _rampSteps) : (float)((double)t / _rampSteps);
    }

    /// <summary>The learning rate for batch <paramref name="step"/>.</summary>
    public float LearningRateAt(int step)
    {
        double lr = _o.LearningRate;
        switch (_o.ResolvedLrSchedule)
        {
            case LrSchedule.Cosine:
                lr *= (1 + Math.Cos(Math.PI * Math.Min(step, TotalSteps) / TotalSteps)) / 2;
                break;
            case LrSchedule.Step:
                int epoch = step / BatchesPerEpoch;
                foreach (var e in _decayEpochs) if (epoch >= e) lr *= _o.LrDecayFactor;
                break;
        }
        return (float)lr;
    }

    // auto_LiRPA's SmoothedScheduler (mid point 0.25, exponent 4), as a fraction of the target: a power curve
    // alpha·t^4 up to the mid step, then linear to 1, with alpha chosen so that both pieces have the same slope there.
    private static float Smoothed(long t, long length)
    {
        const double midFraction = 0.25, beta = 4.0;
        long mid = (long)(length * midFraction);
        if (mid < 1) return (float)((double)t / length);
        double tb = Math.Pow(mid, beta - 1);
        double alpha = 1.0 / ((length - mid) * beta * tb + mid * tb);
        double midValue = alpha * Math.Pow(mid, beta);
        double v = t < mid ? alpha * Math.Pow(t, beta) : midValue + (1 - midValue) * (t - mid) / (length - mid);
        return (float)Math.Min(1.0, v);
    }
}
