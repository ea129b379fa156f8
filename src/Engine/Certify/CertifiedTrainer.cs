using System.Diagnostics;
using Engine.Cpu;
using Engine.Data;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Certify;

/// <summary>
/// Trains a classifier with one of the <see cref="TrainMethod"/>s: per batch it reads the schedule
/// (<see cref="TrainingSchedule"/>), sets Adam's learning rate, computes the method's loss
/// (<see cref="CertifiedLosses.Compute"/>), back-propagates through it (through the bound computation for the
/// certified methods), clips the gradient norm and steps. Batches are moved to the model's device. Each step runs in a
/// <see cref="TensorScope"/> that includes the CPU, so its temporaries (the parameters' gradients among them: read them
/// inside <see cref="Step"/> or not at all) go back to the device's allocator when it ends, on the CPU too (without
/// it, the CPU pool waits for the GC to finalize them, and the forced collections cost about a fifth of a step).
/// <code>
/// var model = ...;   // e.g. the small CNN
/// var opts = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.1f };
/// CertifiedTrainer.Fit(model, FashionMnist.LoadEmbedded().Train, opts, onEpoch: e => Console.WriteLine(e.Loss));
/// </code>
/// </summary>
public sealed class CertifiedTrainer
{
    /// <summary>
    /// A trainer for <paramref name="model"/> (put it on its device first) with the options' schedule over epochs of
    /// <paramref name="batchesPerEpoch"/> batches. <paramref name="optimizer"/> (default: Adam) must optimise the model's
    /// parameters; the schedule sets its learning rate before every step from <see cref="CertifiedTrainingOptions.LearningRate"/>.
    /// </summary>
    public CertifiedTrainer(Module model, CertifiedTrainingOptions options, int batchesPerEpoch, Optimizer? optimizer = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Model = model;
        Options = options;
        Schedule = new TrainingSchedule(options, batchesPerEpoch);
        Parameters = model.Parameters().ToArray();
        if (Parameters.Count == 0) throw new ArgumentException("CertifiedTrainer: the model has no parameters.");
        Device = Parameters[0].Device;
        foreach (var p in Parameters)
            if (p.Device != Device) throw new ArgumentException($"CertifiedTrainer: the model's parameters are on {Device.Name} and {p.Device.Name}; move the whole model with Module.To.");
        if (optimizer != null)
            foreach (var p in optimizer.Params)
                if (!Parameters.Any(q => ReferenceEquals(q, p))) throw new ArgumentException("CertifiedTrainer: the optimiser holds a tensor that is not a parameter of the model.");
        Optimizer = optimizer ?? new Adam(Parameters, options.LearningRate);
    }

    /// <summary>The model being trained.</summary>
    public Module Model { get; }

    /// <summary>The settings.</summary>
    public CertifiedTrainingOptions Options { get; }

    /// <summary>The per-batch schedule.</summary>
    public TrainingSchedule Schedule { get; }

    /// <summary>The optimiser (its learning rate is set by the schedule before every step).</summary>
    public Optimizer Optimizer { get; }

    /// <summary>The model's device, where batches are moved.</summary>
    public Device Device { get; }

    /// <summary>Batches trained so far (the schedule's step of the next batch).</summary>
    public int StepCount { get; private set; }

    private IReadOnlyList<Tensor> Parameters { get; }

    // Replicas for data-parallel steps (Options.DataParallel), made by the first step that uses them.
    private Nn.DataParallel? _dataParallel;
    private bool? _shardable;

    /// <summary>Trains one batch (inputs [B, ...], class indices [B]) at the schedule's current step and advances it.</summary>
    public StepResult Step(Tensor x, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(labels);
        if (x.Rank < 1 || labels.Rank != 1 || labels.Dims[0] != x.Dims[0] || x.Dims[0] < 1)
            throw new ArgumentException($"CertifiedTrainer: need a batch [B, ...] with labels [B], got {ShapeUtil.Format(x.Dims)} and {ShapeUtil.Format(labels.Dims)}.");
        if (x.Device != Device) x = x.To(Device);
        if (labels.Device != Device) labels = labels.To(Device);
        var at = Schedule.At(StepCount);
        Optimizer.LearningRate = at.LearningRate;
        Model.Train();
        float loss, norm;
        int? correct = null;
        // Whether the model can be sharded is fixed by its structure: decided once, not per step.
        _shardable ??= Options.DataParallel && Device == Device.Cpu && Nn.DataParallel.CanReplicate(Model, out _);
        int shards = _shardable.Value ? Nn.DataParallel.ShardCount(x.Dims[0], CpuThreads.Count) : 1;
        // One thread: the batch is one shard, still cut into micro-batches when it holds two or more.
        bool sharded = shards > 1 || (_shardable.Value && Nn.DataParallel.Pieces(x.Dims[0], Options.MicroBatch) > 1);
        using (var scope = TensorScope.Begin(includeCpu: true))
        {
            Optimizer.ZeroGrad();
            // A distinct stream per step for the attack's random start or the noise, reproducible from the seed.
            ulong seed = unchecked(Options.Seed * 0x9E3779B97F4A7C15UL + (ulong)StepCount);
            if (sharded)
            {
                if (_dataParallel == null || _dataParallel.MaxShards < shards) _dataParallel = new Nn.DataParallel(Model, shards);
                _dataParallel.MicroBatch = Options.MicroBatch;
                var d = _dataParallel.Backward(x, labels, (replica, xs, ys, k) =>
                {
                    // Each piece draws its own stream (piece 0 the step's).
                    var r = CertifiedLosses.Compute(replica, xs, ys, Options, at, unchecked(seed + (ulong)k * 0xD1B54A32D192ED03UL));
                    return new ShardLoss(r.Loss, r.CleanLogits);
                });
                loss = d.Loss;
                correct = d.CleanCorrect;
                shards = d.Shards;
                CheckLoss(loss, at);
            }
            else
            {
                var r = CertifiedLosses.Compute(Model, x, labels, Options, at, seed);
                loss = r.Loss.Item();
                CheckLoss(loss, at);
                r.Loss.Backward();
                if (r.CleanLogits != null) correct = Accuracy.CountCorrect(r.CleanLogits, labels);
            }
            float clip = Options.ResolvedGradClipNorm;
            norm = clip > 0 ? GradClip.ClipGradNorm(Parameters, clip) : GradClip.GradNorm(Parameters);
            if (!float.IsFinite(norm))
                throw new InvalidOperationException($"CertifiedTrainer: the gradient norm is {norm} at step {StepCount}; the weights were left unchanged.");
            // Adam's moments are created lazily by the first update and must outlive the step.
            using (TensorScope.Suspend()) Optimizer.Step();
        }
        int batchInEpoch = StepCount % Schedule.BatchesPerEpoch;
        StepCount++;
        return new StepResult { Schedule = at, BatchInEpoch = batchInEpoch, BatchSize = x.Dims[0], Loss = loss, GradNorm = norm, CleanCorrect = correct, Shards = shards };
    }

    // Before the optimiser steps, so the weights are left unchanged (the sharded path has already filled the gradients).
    private void CheckLoss(float loss, ScheduleValues at)
    {
        if (!float.IsFinite(loss))
            throw new InvalidOperationException($"CertifiedTrainer: the {Options.Method.Name()} loss is {loss} at step {StepCount} (eps {at.Eps}); lower the learning rate or clip the gradients. The weights were left unchanged.");
    }

    /// <summary>Trains the batches of one epoch, calling <paramref name="onBatch"/> after each.</summary>
    public EpochResult TrainEpoch(IEnumerable<Batch> batches, Action<StepResult>? onBatch = null)
    {
        ArgumentNullException.ThrowIfNull(batches);
        long t0 = Stopwatch.GetTimestamp();
        double lossSum = 0;
        int examples = 0, count = 0, correct = 0;
        bool allClean = true;
        ScheduleValues? last = null;
        int epoch = StepCount / Schedule.BatchesPerEpoch;
        // A DataLoader makes new tensors for every batch and nothing else holds them: release them after the step, so
        // the next batch reuses their memory instead of waiting for finalizers (other sources may reuse theirs).
        bool owned = batches is DataLoader;
        foreach (var (x, y) in batches)
        {
            var s = Step(x, y);
            lossSum += (double)s.Loss * s.BatchSize;
            examples += s.BatchSize;
            count++;
            if (s.CleanCorrect is int c) correct += c; else allClean = false;
            last = s.Schedule;
            onBatch?.Invoke(s);
            if (owned) { x.Storage.Dispose(); y.Storage.Dispose(); }
        }
        if (count == 0) throw new ArgumentException("CertifiedTrainer: the epoch has no batches.");
        return new EpochResult
        {
            Epoch = epoch,
            Loss = lossSum / examples,
            TrainAccuracy = allClean ? (double)correct / examples : null,
            Last = last!,
            Batches = count,
            Examples = examples,
            Seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds,
        };
    }

    /// <summary>
    /// Trains <paramref name="model"/> on <paramref name="train"/> for the options' epochs (shuffled batches of
    /// <see cref="CertifiedTrainingOptions.BatchSize"/>, seeded by <see cref="CertifiedTrainingOptions.Seed"/>);
    /// returns the epochs' summaries.
    /// </summary>
    public static IReadOnlyList<EpochResult> Fit(Module model, TensorDataset train, CertifiedTrainingOptions options,
                                                 Action<StepResult>? onBatch = null, Action<EpochResult>? onEpoch = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (train.Count == 0) throw new ArgumentException("CertifiedTrainer: the training set is empty.");
        var loader = new DataLoader(train, options.BatchSize, shuffle: true, seed: options.Seed);
        var trainer = new CertifiedTrainer(model, options, loader.Count);
        var epochs = new List<EpochResult>();
        for (int e = 0; e < options.Epochs; e++)
        {
            var r = trainer.TrainEpoch(loader, onBatch);
            epochs.Add(r);
            onEpoch?.Invoke(r);
        }
        return epochs;
    }
}
