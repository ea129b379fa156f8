using Engine.Bounds;

namespace Engine.Certify;

/// <summary>
/// Settings of <see cref="CertifiedTrainer"/>: the method, its radius and parameters, and the schedule (warm-up
/// epochs of standard training, then eps ramped from 0 to <see cref="Eps"/> per batch while kappa and beta go from 1 to
/// their ends, Adam with gradient-norm clipping, learning rate decayed late). The defaults reproduce the peer recipe
/// for the small CNN on Fashion-MNIST (batch 256, Adam 5e-4, 1 warm-up epoch, linear ramp over about half of the rest,
/// kappa 1 → 0, lr ×0.1 at 3/4 of the run). Properties left null take a method-dependent default, resolved by the
/// <c>Resolved*</c> members.
/// </summary>
public sealed record CertifiedTrainingOptions
{
    /// <summary>The training method.</summary>
    public TrainMethod Method { get; init; } = TrainMethod.Ibp;

    /// <summary>Target perturbation radius (required, &gt; 0, by pgd and the certified methods; unused otherwise).</summary>
    public float Eps { get; init; }

    /// <summary>The perturbation's norm (L∞ box clipped to [ClipLow, ClipHigh], or L2 ball).</summary>
    public PerturbationNorm Norm { get; init; } = PerturbationNorm.LInf;

    /// <summary>Lower end of the input domain (perturbed inputs and L∞ boxes are clipped to it).</summary>
    public float ClipLow { get; init; }

    /// <summary>Upper end of the input domain.</summary>
    public float ClipHigh { get; init; } = 1f;

    /// <summary>Passes over the training set.</summary>
    public int Epochs { get; init; } = 20;

    /// <summary>Mini-batch size (used by <see cref="CertifiedTrainer.Fit"/>).</summary>
    public int BatchSize { get; init; } = 256;

    /// <summary>Adam's base learning rate.</summary>
    public float LearningRate { get; init; } = 5e-4f;

    /// <summary>
    /// Epochs of standard training (eps 0, kappa 1) before the ramp. Null: 1 for the certified methods (0 when
    /// <see cref="Epochs"/> is 1), 0 for standard, pgd and noise.
    /// </summary>
    public int? WarmupEpochs { get; init; }

    /// <summary>
    /// Epochs over which eps (and sigma for noise) grow from 0 to the target. Null: max(1, (Epochs − warm-up + 1) / 2)
    /// for the certified methods (10 of 20 epochs), 0 (the target from the first batch) for pgd and noise.
    /// </summary>
    public int? RampEpochs { get; init; }

    /// <summary>The ramp's shape.</summary>
    public EpsRamp EpsRamp { get; init; } = EpsRamp.Linear;

    /// <summary>
    /// Weight of the clean cross-entropy at the end of the ramp: the certified methods minimise
    /// kappa·CE(clean) + (1 − kappa)·robust loss with kappa going from <see cref="KappaStart"/> to this (Gowal et al. use
    /// 0.5; 0 is the peer recipe).
    /// </summary>
    public float KappaEnd { get; init; }

    /// <summary>
    /// Weight of the clean cross-entropy at the start of the ramp (default 1, the peer recipe; the warm-up epochs are
    /// standard training whatever this is). 0 drops the clean term for the whole ramp, as De Palma et al. train
    /// CC-IBP / MTL-IBP, whose adversarial term is already close to the clean loss while eps is small: each ramp step
    /// then skips the clean forward and backward pass (about a fifth of an MTL-IBP step).
    /// </summary>
    public float KappaStart { get; init; } = 1f;

    /// <summary>crown-ibp: weight of the CROWN-IBP bound at the end of the ramp (beta goes from 1 to this; 0 ends at pure IBP).</summary>
    public float BetaEnd { get; init; }

    /// <summary>sabr: the small box's radius as a fraction of eps, in (0, 1]; 1 is IBP (Müller et al.'s default for MNIST-like data is 0.4).</summary>
    public float SabrLambda { get; init; } = 0.4f;

    /// <summary>
    /// ccibp / mtlibp: the over-approximation coefficient alpha in [0, 1] (1: the IBP loss, 0: the adversarial loss).
    /// The default 0.5 is De Palma et al.'s choice for their large-radius settings (CIFAR-10 8/255); eps = 0.1 on
    /// Fashion-MNIST is a large radius for that data. Smaller alpha trades verified for clean accuracy.
    /// </summary>
    public float Alpha { get; init; } = 0.5f;

    /// <summary>PGD steps per training step. Null: 10 for pgd (Madry et al.), 5 for sabr, ccibp and mtlibp (a short attack).</summary>
    public int? PgdSteps { get; init; }

    /// <summary>PGD step length. Null: 2.5·radius / steps (the radius being the attacked ball's).</summary>
    public float? PgdStepSize { get; init; }

    /// <summary>noise: standard deviation of the Gaussian noise (required, &gt; 0, by noise).</summary>
    public float Sigma { get; init; }

    /// <summary>The learning-rate schedule. Null: cosine for standard, step decay for the other methods.</summary>
    public LrSchedule? LrSchedule { get; init; }

    /// <summary>
    /// Step schedule: the epochs (0-based, in [1, Epochs)) from which the rate is multiplied by
    /// <see cref="LrDecayFactor"/> once more. Null: one decay at max(warm-up + ramp, round(0.75·Epochs)) when that is
    /// before the last epoch.
    /// </summary>
    public IReadOnlyList<int>? LrDecayEpochs { get; init; }

    /// <summary>Step schedule: the decay factor, in (0, 1].</summary>
    public float LrDecayFactor { get; init; } = 0.1f;

    /// <summary>Joint L2 norm the gradients are clipped to; 0 turns clipping off. Null: 10 for the certified methods, off otherwise.</summary>
    public float? GradClipNorm { get; init; }

    /// <summary>Seed of the shuffling, the attacks' random starts and the noise.</summary>
    public ulong Seed { get; init; }

    /// <summary>
    /// Train each batch as shards on the CPU's threads, one replica of the model per thread (<see cref="Nn.DataParallel"/>),
    /// when the model is on the CPU, stateless (no BatchNorm, no Dropout) and the batch has at least
    /// <see cref="Nn.DataParallel.MinShardSize"/> examples per shard for two or more threads; otherwise (or when false)
    /// the whole batch runs as one, its kernels spread over the threads. Default true: for the small networks of
    /// certified training a whole pass per thread uses the cores better. The gradient is the same mean over the batch up
    /// to rounding; the attacks' random starts differ (each shard draws its own), so runs are reproducible for a given
    /// thread count.
    /// </summary>
    public bool DataParallel { get; init; } = true;

    /// <summary>
    /// With <see cref="DataParallel"/>: examples per forward and backward pass inside a thread's shard (gradient
    /// accumulation, <see cref="Nn.DataParallel.MicroBatch"/>); a shard of n examples runs as max(1, n / MicroBatch)
    /// pieces, one after another, so that a piece's activations stay in the core's cache between ops. This applies on
    /// one thread too (the batch is then one shard). 0: each shard whole. Default 32 (for the certified-training CNNs
    /// on batches of 256, ~5–8 % faster steps than whole shards of 128). The gradient is the same mean over the batch
    /// up to rounding; the attacks' random starts differ with the cut (each piece draws its own).
    /// </summary>
    public int MicroBatch { get; init; } = 32;

    /// <summary>Number of classes of the classifier (the margin specification has NumClasses − 1 rows).</summary>
    public int NumClasses { get; init; } = 10;

    /// <summary>The warm-up epochs in effect (see <see cref="WarmupEpochs"/>).</summary>
    public int ResolvedWarmupEpochs => WarmupEpochs ?? (Method.IsCertified() && Epochs > 1 ? 1 : 0);

    /// <summary>The ramp epochs in effect (see <see cref="RampEpochs"/>).</summary>
    public int ResolvedRampEpochs => RampEpochs ?? (Method.IsCertified() ? Math.Max(1, (Epochs - ResolvedWarmupEpochs + 1) / 2) : 0);

    /// <summary>The PGD steps in effect (see <see cref="PgdSteps"/>).</summary>
    public int ResolvedPgdSteps => PgdSteps ?? (Method == TrainMethod.Pgd ? 10 : 5);

    /// <summary>The learning-rate schedule in effect (see <see cref="LrSchedule"/>).</summary>
    public LrSchedule ResolvedLrSchedule => LrSchedule ?? (Method == TrainMethod.Standard ? Certify.LrSchedule.Cosine : Certify.LrSchedule.Step);

    /// <summary>The decay epochs in effect (see <see cref="LrDecayEpochs"/>); empty unless the schedule is Step.</summary>
    public IReadOnlyList<int> ResolvedLrDecayEpochs
    {
        get
        {
            if (ResolvedLrSchedule != Certify.LrSchedule.Step) return [];
            if (LrDecayEpochs != null) return LrDecayEpochs;
            int at = Math.Max(ResolvedWarmupEpochs + ResolvedRampEpochs, (int)Math.Round(0.75 * Epochs, MidpointRounding.AwayFromZero));
            return at >= 1 && at < Epochs ? [at] : [];
        }
    }

    /// <summary>The gradient clipping norm in effect (0: off; see <see cref="GradClipNorm"/>).</summary>
    public float ResolvedGradClipNorm => GradClipNorm ?? (Method.IsCertified() ? 10f : 0f);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        const string op = "CertifiedTrainingOptions";
        if (!Enum.IsDefined(Method)) throw new ArgumentException($"{op}: unknown method {Method}.");
        if (!Enum.IsDefined(Norm)) throw new ArgumentException($"{op}: unknown norm {Norm}.");
        if (!Enum.IsDefined(EpsRamp)) throw new ArgumentException($"{op}: unknown eps ramp {EpsRamp}.");
        if (LrSchedule is { } ls && !Enum.IsDefined(ls)) throw new ArgumentException($"{op}: unknown learning-rate schedule {ls}.");
        if (!(Eps >= 0) || float.IsInfinity(Eps)) throw new ArgumentException($"{op}: eps must be finite and >= 0, got {Eps}.");
        if (Method.UsesEps() && Eps == 0)
            throw new ArgumentException($"{op}: method {Method.Name()} needs a radius eps > 0 (with eps 0 it is standard training).");
        if (!(Sigma >= 0) || float.IsInfinity(Sigma)) throw new ArgumentException($"{op}: sigma must be finite and >= 0, got {Sigma}.");
        if (Method == TrainMethod.Noise && Sigma == 0) throw new ArgumentException($"{op}: method noise needs a noise level sigma > 0.");
        if (float.IsNaN(ClipLow) || float.IsNaN(ClipHigh) || !(ClipLow <= ClipHigh))
            throw new ArgumentException($"{op}: the input domain [{ClipLow}, {ClipHigh}] is empty or NaN.");
        if (Epochs < 1) throw new ArgumentException($"{op}: epochs must be >= 1, got {Epochs}.");
        if (BatchSize < 1) throw new ArgumentException($"{op}: batch size must be >= 1, got {BatchSize}.");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new ArgumentException($"{op}: learning rate must be finite and > 0, got {LearningRate}.");
        if (WarmupEpochs is < 0) throw new ArgumentException($"{op}: warm-up epochs must be >= 0, got {WarmupEpochs}.");
        if (RampEpochs is < 0) throw new ArgumentException($"{op}: ramp epochs must be >= 0, got {RampEpochs}.");
        if (ResolvedWarmupEpochs + ResolvedRampEpochs > Epochs)
            throw new ArgumentException($"{op}: {ResolvedWarmupEpochs} warm-up + {ResolvedRampEpochs} ramp epochs exceed the {Epochs} epochs of the run (eps would never reach its target).");
        if (Method.IsCertified() && ResolvedWarmupEpochs >= Epochs)
            throw new ArgumentException($"{op}: {ResolvedWarmupEpochs} warm-up epochs leave none of the {Epochs} epochs for {Method.Name()} training.");
        if (!(KappaEnd >= 0 && KappaEnd <= 1)) throw new ArgumentException($"{op}: kappa end must be in [0, 1], got {KappaEnd}.");
        if (!(KappaStart >= 0 && KappaStart <= 1)) throw new ArgumentException($"{op}: kappa start must be in [0, 1], got {KappaStart}.");
        if (!(BetaEnd >= 0 && BetaEnd <= 1)) throw new ArgumentException($"{op}: beta end must be in [0, 1], got {BetaEnd}.");
        if (!(SabrLambda > 0 && SabrLambda <= 1)) throw new ArgumentException($"{op}: SABR lambda must be in (0, 1], got {SabrLambda}.");
        if (!(Alpha >= 0 && Alpha <= 1)) throw new ArgumentException($"{op}: alpha must be in [0, 1], got {Alpha}.");
        if (PgdSteps is < 1) throw new ArgumentException($"{op}: PGD steps must be >= 1, got {PgdSteps}.");
        if (PgdStepSize is float s && (!(s > 0) || float.IsInfinity(s))) throw new ArgumentException($"{op}: PGD step size must be finite and > 0, got {s}.");
        if (!(LrDecayFactor > 0 && LrDecayFactor <= 1)) throw new ArgumentException($"{op}: learning-rate decay factor must be in (0, 1], got {LrDecayFactor}.");
        if (LrDecayEpochs != null)
            foreach (var e in LrDecayEpochs)
                if (e < 1 || e >= Epochs) throw new ArgumentException($"{op}: learning-rate decay epoch {e} is not in [1, {Epochs}) (epochs count from 0).");
        if (GradClipNorm is float g && (!(g >= 0) || float.IsInfinity(g))) throw new ArgumentException($"{op}: gradient clipping norm must be finite and >= 0 (0: off), got {g}.");
        if (NumClasses < 2) throw new ArgumentException($"{op}: need at least 2 classes, got {NumClasses}.");
        if (MicroBatch < 0) throw new ArgumentException($"{op}: micro-batch size must be >= 0 (0: whole shards), got {MicroBatch}.");
    }
}
