namespace Engine.Nn;

/// <summary>
/// Base of learning-rate schedules (torch.optim.lr_scheduler). A schedule is a pure function
/// <see cref="LrAt"/> of the step count scaled from the optimiser's initial learning rate; construction sets
/// the step-0 rate and each <see cref="Step"/> advances one step (call it per batch or per epoch, as you mean
/// the count). Schedules compose by wrapping (<see cref="LinearWarmup"/>); step only the outermost.
/// </summary>
public abstract class LrScheduler
{
    /// <summary>Binds the schedule to an optimiser.</summary>
    protected LrScheduler(Optimizer optimizer)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        Optimizer = optimizer;
        BaseLr = optimizer.InitialLearningRate;
    }

    /// <summary>The optimiser whose learning rate is set.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The learning rate the schedule scales (the optimiser's initial one).</summary>
    public float BaseLr { get; }

    /// <summary>Steps taken so far (PyTorch's last_epoch).</summary>
    public int LastStep { get; private set; }

    /// <summary>The learning rate after <paramref name="step"/> steps.</summary>
    public abstract float LrAt(int step);

    /// <summary>Advances one step and sets the optimiser's learning rate.</summary>
    public void Step()
    {
        LastStep++;
        Optimizer.LearningRate = LrAt(LastStep);
    }

    /// <summary>Sets the step-0 learning rate; derived constructors call it last, once their fields are set.</summary>
    protected void Start() => Optimizer.LearningRate = LrAt(0);
}

/// <summary>Multiplies the rate by <see cref="Gamma"/> every <see cref="StepSize"/> steps (torch StepLR).</summary>
public sealed class StepLR : LrScheduler
{
    /// <summary>Creates the schedule.</summary>
    public StepLR(Optimizer optimizer, int stepSize, float gamma = 0.1f) : base(optimizer)
    {
        if (stepSize < 1) throw new ArgumentOutOfRangeException(nameof(stepSize), $"StepLR: stepSize must be >= 1, got {stepSize}.");
        StepSize = stepSize; Gamma = gamma;
        Start();
    }

    /// <summary>Steps between decays.</summary>
    public int StepSize { get; }
    /// <summary>Decay factor.</summary>
    public float Gamma { get; }

    /// <inheritdoc/>
    public override float LrAt(int step) => (float)(BaseLr * Math.Pow(Gamma, step / StepSize));
}

/// <summary>Cosine from the base rate down to <see cref="EtaMin"/> over <see cref="TMax"/> steps (torch CosineAnnealingLR, closed form).</summary>
public sealed class CosineAnnealingLR : LrScheduler
{
    /// <summary>Creates the schedule.</summary>
    public CosineAnnealingLR(Optimizer optimizer, int tMax, float etaMin = 0) : base(optimizer)
    {
        if (tMax < 1) throw new ArgumentOutOfRangeException(nameof(tMax), $"CosineAnnealingLR: tMax must be >= 1, got {tMax}.");
        TMax = tMax; EtaMin = etaMin;
        Start();
    }

    /// <summary>Half-period in steps.</summary>
    public int TMax { get; }
    /// <summary>Smallest rate.</summary>
    public float EtaMin { get; }

    /// <inheritdoc/>
    public override float LrAt(int step) => (float)(EtaMin + (BaseLr - EtaMin) * (1 + Math.Cos(Math.PI * step / TMax)) / 2);
}

/// <summary>
/// Linear warm-up from <c>startFactor * base</c> to the base rate over <see cref="WarmupSteps"/> steps (torch
/// LinearLR), then the wrapped schedule counted from the end of the warm-up (torch SequentialLR), or the base
/// rate when none is wrapped.
/// </summary>
public sealed class LinearWarmup : LrScheduler
{
    /// <summary>Creates the schedule; <paramref name="then"/> must drive the same optimiser.</summary>
    public LinearWarmup(Optimizer optimizer, int warmupSteps, LrScheduler? then = null, float startFactor = 1f / 3) : base(optimizer)
    {
        if (warmupSteps < 1) throw new ArgumentOutOfRangeException(nameof(warmupSteps), $"LinearWarmup: warmupSteps must be >= 1, got {warmupSteps}.");
        if (!(startFactor > 0 && startFactor <= 1)) throw new ArgumentOutOfRangeException(nameof(startFactor), $"LinearWarmup: startFactor must be in (0, 1], got {startFactor}.");
        if (then != null && !ReferenceEquals(then.Optimizer, optimizer)) throw new ArgumentException("LinearWarmup: the wrapped schedule drives a different optimiser.");
        WarmupSteps = warmupSteps; Then = then; StartFactor = startFactor;
        Start();
    }

    /// <summary>Length of the warm-up.</summary>
    public int WarmupSteps { get; }
    /// <summary>The schedule after the warm-up (null: constant base rate).</summary>
    public LrScheduler? Then { get; }
    /// <summary>Fraction of the base rate at step 0.</summary>
    public float StartFactor { get; }

    /// <inheritdoc/>
    public override float LrAt(int step)
    {
        if (step < WarmupSteps) return (float)(BaseLr * (StartFactor + (1 - StartFactor) * step / (double)WarmupSteps));
        return Then?.LrAt(step - WarmupSteps) ?? BaseLr;
    }
}
