namespace Engine.Certify;

/// <summary>What one training batch did (passed to the per-batch callback).</summary>
public sealed record StepResult
{
    /// <summary>The schedule values the batch was trained with.</summary>
    public required ScheduleValues Schedule { get; init; }

    /// <summary>Batch index within its epoch (0-based).</summary>
    public int BatchInEpoch { get; init; }

    /// <summary>Examples in the batch.</summary>
    public int BatchSize { get; init; }

    /// <summary>The batch's mean loss.</summary>
    public float Loss { get; init; }

    /// <summary>The joint gradient L2 norm before clipping.</summary>
    public float GradNorm { get; init; }

    /// <summary>Clean predictions that were correct, when the method computed the clean logits (null otherwise).</summary>
    public int? CleanCorrect { get; init; }

    /// <summary>Shards the batch was trained in (<see cref="CertifiedTrainingOptions.DataParallel"/>); 1 when it ran whole.</summary>
    public int Shards { get; init; } = 1;
}

/// <summary>Summary of one epoch.</summary>
public sealed record EpochResult
{
    /// <summary>Epoch index (0-based).</summary>
    public int Epoch { get; init; }

    /// <summary>Example-weighted mean loss over the epoch's batches.</summary>
    public double Loss { get; init; }

    /// <summary>Clean training accuracy over the epoch, when every batch computed clean logits (null otherwise).</summary>
    public double? TrainAccuracy { get; init; }

    /// <summary>The schedule values of the epoch's last batch.</summary>
    public required ScheduleValues Last { get; init; }

    /// <summary>Batches trained.</summary>
    public int Batches { get; init; }

    /// <summary>Examples trained.</summary>
    public int Examples { get; init; }

    /// <summary>Wall-clock seconds of the epoch.</summary>
    public double Seconds { get; init; }
}
