using Engine.Cpu;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>The loss of one shard of a batch for <see cref="DataParallel.Backward"/>.</summary>
/// <param name="Loss">The shard's mean loss (a scalar, differentiable with respect to the replica's parameters).</param>
/// <param name="Logits">The shard's clean logits [n, C] when the loss computed them, for the accuracy count; else null.</param>
public readonly record struct ShardLoss(Tensor Loss, Tensor? Logits);

/// <summary>What <see cref="DataParallel.Backward"/> measured over the whole batch.</summary>
/// <param name="Loss">The batch's mean loss (the shards' losses weighted by their sizes).</param>
/// <param name="CleanCorrect">Correctly classified examples by the shards' clean logits; null when a shard had none.</param>
/// <param name="Shards">The number of shards the batch was cut into.</param>
public readonly record struct ShardedBackwardResult(float Loss, int? CleanCorrect, int Shards);

/// <summary>
/// Data parallelism over the CPU's threads, like torch.nn.DataParallel: the batch is cut into contiguous shards, each
/// shard's loss and backward pass run on its own thread over a replica of the model (<see cref="ModuleReplica"/>, synced
/// with the model before every batch), and the shards' gradients, weighted by shard size, are added to the model's
/// parameters' <see cref="Tensor.Grad"/>: what one backward pass of the whole batch's mean loss would leave there, up to
/// float rounding. For small networks (the certified-training CNNs) one batch's ops are too short to spread well over
/// the cores; a whole forward and backward pass per thread keeps every core busy with almost no synchronisation. The
/// kernels inside a shard run on its thread alone. Results are deterministic for a given shard count (shards are cut
/// the same way and their gradients summed in shard order). Within a shard, the |W| that the IBP radius pass of
/// bound-based losses multiplies by is made once for all its micro-batches (<c>Bounds.AbsWeightCache</c>, like
/// torch.nn.utils.parametrize.cached) and its gradient folded into W's at the shard's end. CPU only; the model must be
/// stateless (<see cref="CanReplicate"/>).
/// <code>
/// var dp = new DataParallel(model, CpuThreads.Count);
/// opt.ZeroGrad();
/// var r = dp.Backward(x, y, (replica, xs, ys, shard) => { var z = replica.Forward(xs); return new(Losses.CrossEntropy(z, ys), z); });
/// opt.Step();
/// </code>
/// </summary>
public sealed class DataParallel
{
    private readonly ModuleReplica[] _replicas;
    private readonly Tensor[] _parameters;
    // Per shard, per parameter: the replica's gradient, copied out before the shard's temporaries are released.
    private readonly Tensor[][] _grads;

    /// <summary>Shards smaller than this are not worth a thread: <see cref="ShardsFor"/> never cuts smaller ones.</summary>
    public const int MinShardSize = 32;

    /// <summary>
    /// Replicas of <paramref name="model"/> (on the CPU, stateless) for up to <paramref name="maxShards"/> shards per batch.
    /// </summary>
    public DataParallel(Module model, int maxShards)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (maxShards < 1) throw new ArgumentOutOfRangeException(nameof(maxShards), $"DataParallel: need at least one shard, got {maxShards}.");
        if (!ModuleReplica.CanReplicate(model, out var why)) throw new ArgumentException($"DataParallel: {why}");
        _parameters = model.Parameters().ToArray();
        if (_parameters.Length == 0) throw new ArgumentException("DataParallel: the model has no parameters.");
        foreach (var p in _parameters)
            if (p.Device != Device.Cpu) throw new ArgumentException($"DataParallel: the model's parameters must be on the CPU, not {p.Device.Name}.");
        Model = model;
        _replicas = new ModuleReplica[maxShards];
        _grads = new Tensor[maxShards][];
        // The replicas and gradient buffers live as long as this object, not as long as the caller's scope (a trainer
        // makes it inside its first step's).
        using var outlive = TensorScope.Suspend();
        for (int k = 0; k < maxShards; k++)
        {
            _replicas[k] = new ModuleReplica(model);
            _ = _replicas[k].Graph;   // built here, not concurrently by the first batch's threads
            _grads[k] = _parameters.Select(p => Tensor.Zeros(p.Shape)).ToArray();
        }
    }

    /// <summary>
    /// Examples per forward and backward pass inside a shard (gradient accumulation): a shard of n examples runs as
    /// max(1, n / MicroBatch) pieces of nearly equal size, one after another on its thread, each with its own
    /// temporaries, so that one piece's activations stay in the core's cache between ops. 0 runs each shard whole. The
    /// gradients are the same up to float rounding (a piece's mean-loss gradient weighted by its share of the shard).
    /// </summary>
    public int MicroBatch
    {
        get => _microBatch;
        set => _microBatch = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), $"DataParallel: the micro-batch size must be >= 0, got {value}.");
    }

    private int _microBatch;

    /// <summary>The model whose parameters receive the gradients.</summary>
    public Module Model { get; }

    /// <summary>The most shards a batch is cut into.</summary>
    public int MaxShards => _replicas.Length;

    /// <summary>
    /// How many shards data parallelism would cut a batch of <paramref name="batch"/> examples into on
    /// <paramref name="threads"/> threads: 1 (no point) when the model cannot be replicated or the batch is too small
    /// for shards of <see cref="MinShardSize"/>.
    /// </summary>
    public static int ShardsFor(Module model, int batch, int threads)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!ModuleReplica.CanReplicate(model, out _) || model.Parameters().Any(p => p.Device != Device.Cpu)) return 1;
        return ShardCount(batch, threads);
    }

    /// <summary>The shard count of <see cref="ShardsFor"/> for a model known to be replicable and on the CPU.</summary>
    internal static int ShardCount(int batch, int threads) =>
        threads < 2 || batch < 2 * MinShardSize ? 1 : Math.Min(threads, batch / MinShardSize);

    /// <summary>True when <paramref name="module"/> has no buffers (BatchNorm statistics) and no Dropout, so replicas behave as the module does.</summary>
    public static bool CanReplicate(Module module, out string why) => ModuleReplica.CanReplicate(module, out why);

    /// <summary>
    /// Cuts the batch (<paramref name="x"/> [B, ...], <paramref name="labels"/> [B]) into min(<see cref="MaxShards"/>,
    /// B / <see cref="MinShardSize"/>) shards (at least one), each shard on its own thread into pieces of
    /// <see cref="MicroBatch"/> (one piece when 0), runs <paramref name="loss"/>(replica, piece inputs, piece labels,
    /// piece index) and its backward pass for each piece, and adds the size-weighted sum of the pieces' gradients to
    /// the model's parameters' Grad. Pieces are numbered over the whole batch in order (without micro-batches, the
    /// shard index). Each piece's temporaries are released when it finishes.
    /// </summary>
    public ShardedBackwardResult Backward(Tensor x, Tensor labels, Func<Module, Tensor, Tensor, int, ShardLoss> loss)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(loss);
        int n = x.Rank >= 1 ? x.Dims[0] : 0;
        if (n < 1 || labels.Rank != 1 || labels.Dims[0] != n)
            throw new ArgumentException($"DataParallel: need a batch [B, ...] with labels [B], got {ShapeUtil.Format(x.Dims)} and {ShapeUtil.Format(labels.Dims)}.");
        if (x.Device != Device.Cpu || labels.Device != Device.Cpu) throw new ArgumentException("DataParallel: the batch must be on the CPU.");
        int shards = Math.Clamp(n / MinShardSize, 1, _replicas.Length);
        var losses = new float[shards];
        var correct = new int?[shards];
        var xd = x.Detach();
        var yd = labels.Detach();
        int micro = MicroBatch;
        // Pieces of the shards, numbered over the whole batch in order (the loss's index; shard k when uncut).
        var firstPiece = new int[shards + 1];
        for (int k = 0; k < shards; k++) firstPiece[k + 1] = firstPiece[k] + Pieces(Shard(k, shards, n).Count, micro);
        CpuThreads.ForEach(shards, k =>
        {
            var (start, count) = Shard(k, shards, n);
            var replica = _replicas[k];
            replica.Sync();
            var ps = replica.ReplicaParameters;
            var acc = _grads[k];
            foreach (var a in acc) a.Fill_(0);
            int pieces = firstPiece[k + 1] - firstPiece[k];
            double lossSum = 0;
            int? right = 0;
            // The replica's gradients are the shard's buffers (zero), which the pieces' backward passes add into.
            for (int i = 0; i < ps.Count; i++) ps[i].Grad = acc[i];
            // |W| of the bound passes made once for all pieces; its gradient folded into the buffers at the end.
            using (Bounds.AbsWeightCache.Begin())
            {
                for (int j = 0; j < pieces; j++)
                {
                    var (offset, size) = Shard(j, pieces, count);
                    // Each piece's temporaries go back to the pool before the next one runs: its activations stay in cache.
                    using var scope = TensorScope.Begin(includeCpu: true);
                    var ys = yd.NarrowRows(start + offset, size);
                    var r = loss(replica, xd.NarrowRows(start + offset, size), ys, firstPiece[k] + j);
                    if (r.Loss is null || r.Loss.Numel != 1) throw new InvalidOperationException("DataParallel: the shard loss must be a scalar tensor.");
                    lossSum += (double)r.Loss.Item() * size;
                    right = right is int c && r.Logits is { } z ? c + Accuracy.CountCorrect(z, ys) : null;
                    // The shard's mean-loss gradient: each piece's weighted by its share of the shard (exactly the
                    // piece's gradient when the shard is one piece).
                    if (pieces == 1) r.Loss.Backward();
                    else (r.Loss * ((float)size / count)).Backward();
                }
            }
            for (int i = 0; i < ps.Count; i++)
            {
                if (!ReferenceEquals(ps[i].Grad, acc[i])) throw new InvalidOperationException("DataParallel: the loss replaced a parameter's gradient buffer; it may only add to it.");
                ps[i].Grad = null;
            }
            losses[k] = (float)(lossSum / count);
            correct[k] = right;
        });

        double total = 0;
        int? right = 0;
        for (int k = 0; k < shards; k++)
        {
            total += (double)losses[k] * Shard(k, shards, n).Count;
            right = right is int a && correct[k] is int b ? a + b : null;
        }
        // Grad += Σ_k (shard k's size / n)·shard k's gradient: the sum built shard after shard in place (one pass per
        // shard), then added to an existing Grad in place (or becoming it).
        for (int i = 0; i < _parameters.Length; i++)
        {
            var sum = shards == 1 ? _grads[0][i].Clone() : _grads[0][i] * ((float)Shard(0, shards, n).Count / n);
            for (int k = 1; k < shards; k++)
                sum.K.Axpy((float)Shard(k, shards, n).Count / n, _grads[k][i].Buf, sum.Buf, sum.Numel);
            var p = _parameters[i];
            if (p.Grad is not { } g) p.Grad = sum;
            else if (g.Device == Device.Cpu && ShapeUtil.SameShape(g.Dims, sum.Dims)) g.K.Axpy(1f, sum.Buf, g.Buf, g.Numel);
            else p.Grad = g + sum;
        }
        return new ShardedBackwardResult((float)(total / n), right, shards);
    }

    /// <summary>
    /// How many micro-batches (<see cref="MicroBatch"/>) of at least <paramref name="microBatch"/> examples a shard
    /// of <paramref name="shardSize"/> examples is cut into: 1 when microBatch is 0 or the shard holds fewer than two.
    /// </summary>
    public static int Pieces(int shardSize, int microBatch) => microBatch > 0 ? Math.Max(1, shardSize / microBatch) : 1;

    /// <summary>Rows [Start, Start + Count) of shard k of <paramref name="shards"/> over n rows (sizes differ by at most one).</summary>
    private static (int Start, int Count) Shard(int k, int shards, int n)
    {
        int start = (int)((long)k * n / shards);
        return (start, (int)((long)(k + 1) * n / shards) - start);
    }
}
