using Engine.Bounds;
using Engine.Certify;
using Engine.Data;
using Engine.Nn;
using Engine.Tensors;
using Engine.Tests.Elementwise;
using NUnit.Framework;
using static Engine.Tests.Certify.CertifyTestNets;

namespace Engine.Tests.Nn;

/// <summary>
/// Data parallelism: a replica computes what its model computes over its own tensors, and the sharded backward pass
/// leaves the whole batch's mean-loss gradient (uneven shards weighted by size), deterministically.
/// </summary>
[TestFixture]
public class DataParallelTests
{
    private static float[][] Grads(Module m) => m.Parameters().Select(p => p.Grad!.ToArray()).ToArray();

    private static void AssertClose(float[][] actual, float[][] expected, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        for (int i = 0; i < expected.Length; i++)
        {
            float scale = expected[i].Max(MathF.Abs);
            Assert.That(scale, Is.GreaterThan(0f), $"{what}: parameter {i} has an all-zero gradient; the check would be empty");
            for (int j = 0; j < expected[i].Length; j++)
                Assert.That(actual[i][j], Is.EqualTo(expected[i][j]).Within(2e-5f * scale + 1e-7f), $"{what}: parameter {i}, element {j}");
        }
    }

    [Test]
    public void AReplicaComputesWhatItsModelComputesOverItsOwnTensors()
    {
        var net = Net(3);
        var x = Inputs(5, 4);
        var replica = new ModuleReplica(net);
        var mine = net.Parameters().ToArray();
        Assert.That(replica.ReplicaParameters, Has.Count.EqualTo(mine.Length));
        for (int i = 0; i < mine.Length; i++)
        {
            Assert.That(replica.ReplicaParameters[i], Is.Not.SameAs(mine[i]));
            Assert.That(replica.ReplicaParameters[i].ToArray(), Is.EqualTo(mine[i].ToArray()));
        }
        Assert.That(replica.Forward(x).ToArray(), Is.EqualTo(net.Forward(x).ToArray()));
        // The graph reads the replica's tensors: changing the model changes the replica only after Sync.
        using (new Engine.Autograd.NoGrad()) mine[0].CopyFrom(mine[0] * 1.5f);
        Assert.That(replica.Forward(x).ToArray(), Is.Not.EqualTo(net.Forward(x).ToArray()));
        replica.Sync();
        Assert.That(replica.Forward(x).ToArray(), Is.EqualTo(net.Forward(x).ToArray()));
        // Bounds run on the replica's graph as on the model's.
        var p = Perturbation.LInf(0.05f, 0, 1);
        Assert.That(Engine.Bounds.Bounds.Compute(replica, x, p, BoundMethod.Crown).Lower.ToArray(),
                    Is.EqualTo(Engine.Bounds.Bounds.Compute(net, x, p, BoundMethod.Crown).Lower.ToArray()));
        // Backward through the replica fills the replica's gradients and leaves the model's alone.
        Losses.CrossEntropy(replica.Forward(x), Labels(5, 1)).Backward();
        Assert.That(replica.ReplicaParameters.All(t => t.Grad != null), Is.True);
        Assert.That(mine.All(t => t.Grad == null), Is.True);
    }

    [TestCase(2, 64, 0)]
    [TestCase(3, 100, 0)]   // shards of 33, 33, 34: the weighting by size matters
    [TestCase(4, 130, 0)]
    [TestCase(2, 130, 16)]  // shards of 65, each in 4 pieces of 16 or 17
    [TestCase(1, 100, 32)]  // one shard in pieces of 33, 33, 34
    [TestCase(3, 100, 40)]  // micro-batches larger than half a shard: shards whole
    public void ShardedGradientIsTheWholeBatchGradient(int shards, int batch, int micro)
    {
        var x = Inputs(batch, 11); var y = Labels(batch, 12);
        var p = Perturbation.LInf(0.03f, 0, 1);
        Tensor IbpLoss(Module m, Tensor xs, Tensor ys) => CertifiedLosses.WorstCaseCrossEntropy(
            Engine.Bounds.Bounds.Compute(m, xs, p, BoundMethod.Ibp, Spec.Margins(ys, 10), new BoundOptions { ComputeUpper = false }).Lower);
        foreach (var (name, f) in new (string, Func<Module, Tensor, Tensor, Tensor>)[]
                 {
                     ("cross-entropy", (m, xs, ys) => Losses.CrossEntropy(m.Forward(xs), ys)),
                     ("IBP", IbpLoss),
                     ("CROWN-IBP", (m, xs, ys) => CertifiedLosses.CrownIbpLoss(m, xs, ys, p, 0.5f)),
                 })
        {
            var whole = Net(13);
            var lossWhole = f(whole, x, y);
            lossWhole.Backward();
            var model = Net(13);
            var dp = new DataParallel(model, shards) { MicroBatch = micro };
            ShardedBackwardResult r = default;
            var pieces = new System.Collections.Concurrent.ConcurrentBag<(int Index, int Size)>();
            Approx.WithThreads(2, () => r = dp.Backward(x, y, (m, xs, ys, k) => { pieces.Add((k, xs.Dims[0])); return new ShardLoss(f(m, xs, ys), null); }));
            Assert.That(r.Shards, Is.EqualTo(shards), name);
            // Pieces are numbered over the batch, cover it, and are as cut: micro-batches of at least `micro` (or whole shards).
            int perShard = micro > 0 ? Math.Max(1, batch / shards / micro) : 1;
            Assert.That(pieces.Select(q => q.Index).Order(), Is.EqualTo(Enumerable.Range(0, shards * perShard)), name);
            Assert.That(pieces.Sum(q => q.Size), Is.EqualTo(batch), name);
            if (perShard > 1) Assert.That(pieces.Select(q => q.Size), Is.All.InRange(micro, 2 * micro - 1), name);
            Assert.That(r.Loss, Is.EqualTo(lossWhole.Item()).Within(1e-5f * Math.Abs(lossWhole.Item())), name);
            Assert.That(r.CleanCorrect, Is.Null, name);
            AssertClose(Grads(model), Grads(whole), $"{name}, {shards} shards of {batch}");
        }
    }

    [Test]
    public void GradientsAddToExistingOnesAndResultsDoNotDependOnTheThreadCount()
    {
        var x = Inputs(96, 21); var y = Labels(96, 22);
        ShardLoss Loss(Module m, Tensor xs, Tensor ys, int k) { var z = m.Forward(xs); return new(Losses.CrossEntropy(z, ys), z); }
        float[][] Run(int threads, bool twice)
        {
            var model = Net(23);
            var dp = new DataParallel(model, 3);
            Approx.WithThreads(threads, () =>
            {
                dp.Backward(x, y, Loss);
                if (twice) dp.Backward(x, y, Loss);
            });
            return Grads(model);
        }
        var once1 = Run(1, false);
        var once2 = Run(2, false);
        for (int i = 0; i < once1.Length; i++) Assert.That(once2[i], Is.EqualTo(once1[i]), $"parameter {i}: 1 vs 2 threads");
        var twice = Run(2, true);
        for (int i = 0; i < once1.Length; i++)
            Assert.That(twice[i], Is.EqualTo(once1[i].Select(v => v + v).ToArray()), $"parameter {i}: accumulation");
        // The accuracy count covers every shard.
        var m = Net(23);
        var r = new DataParallel(m, 3).Backward(x, y, Loss);
        Assert.That(r.CleanCorrect, Is.EqualTo(Accuracy.CountCorrect(m.Forward(x), y)));
    }

    [Test]
    public void TheTrainerTrainsShardedAsWholeAndReproducibly()
    {
        var x = Inputs(128, 31); var y = TeacherLabels(x);
        var data = new TensorDataset(x, y);
        float[][] Train(TrainMethod method, bool dp)
        {
            var net = Net(32);
            var o = new CertifiedTrainingOptions
            {
                Method = method, Eps = 0.02f, Epochs = 3, WarmupEpochs = 1, RampEpochs = 1, BatchSize = 128, PgdSteps = 2,
                DataParallel = dp, Seed = 5,
            };
            var shards = new List<int>();
            Approx.WithThreads(2, () => CertifiedTrainer.Fit(net, data, o, s => shards.Add(s.Shards)));
            Assert.That(shards, Is.All.EqualTo(dp ? 2 : 1));
            return net.Parameters().Select(t => t.ToArray()).ToArray();
        }
        // IBP has no randomness: sharded and whole-batch training take the same steps up to rounding.
        var whole = Train(TrainMethod.Ibp, false);
        var sharded = Train(TrainMethod.Ibp, true);
        for (int i = 0; i < whole.Length; i++)
        {
            for (int j = 0; j < whole[i].Length; j++) Assert.That(sharded[i][j], Is.EqualTo(whole[i][j]).Within(1e-4f), $"parameter {i}[{j}]");
        }
        // MTL-IBP draws each shard's attack start from its own stream: reproducible run to run.
        var a = Train(TrainMethod.MtlIbp, true);
        var b = Train(TrainMethod.MtlIbp, true);
        for (int i = 0; i < a.Length; i++) Assert.That(b[i], Is.EqualTo(a[i]), $"parameter {i}");
    }

    [Test]
    public void MicroBatchesOnOneThreadTrainAsTheWholeBatch()
    {
        var x = Inputs(128, 71); var y = TeacherLabels(x);
        var data = new TensorDataset(x, y);
        float[][] Train(int micro)
        {
            var net = Net(72);
            var o = new CertifiedTrainingOptions
            {
                Method = TrainMethod.Ibp, Eps = 0.02f, Epochs = 3, WarmupEpochs = 1, RampEpochs = 1, BatchSize = 128, MicroBatch = micro,
            };
            var losses = new List<float>();
            Approx.WithThreads(1, () => CertifiedTrainer.Fit(net, data, o, s => losses.Add(s.Loss)));
            Assert.That(losses, Has.Count.EqualTo(3).And.All.Matches<float>(float.IsFinite));
            return net.Parameters().Select(t => t.ToArray()).ToArray();
        }
        var whole = Train(0);
        var pieces = Train(32);
        bool moved = false;
        for (int i = 0; i < whole.Length; i++)
            for (int j = 0; j < whole[i].Length; j++)
            {
                Assert.That(pieces[i][j], Is.EqualTo(whole[i][j]).Within(1e-4f), $"parameter {i}[{j}]");
                moved |= pieces[i][j] != whole[i][j];
            }
        // Four pieces add their gradients in another order: if nothing differs at all, the cut did not happen.
        Assert.That(moved, Is.True, "micro-batched training left bit-identical weights: were the pieces run?");
        Assert.Throws<ArgumentException>(() => new CertifiedTrainingOptions { Eps = 0.1f, MicroBatch = -1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataParallel(Net(1), 1).MicroBatch = -1);
    }

    [Test]
    public void ReplicasMadeInsideAScopeOutliveIt()
    {
        // Wide enough that its tensors come from the pool, which a CPU-collecting scope releases when it ends.
        var net = new Sequential(new Flatten(), new Linear(64, 4096), new ReLU(), new Linear(4096, 10));
        var x = Inputs(64, 61); var y = Labels(64, 62);
        DataParallel dp;
        using (TensorScope.Begin(includeCpu: true)) dp = new DataParallel(net, 2);
        ShardLoss Loss(Module m, Tensor xs, Tensor ys, int k) => new(Losses.CrossEntropy(m.Forward(xs), ys), null);
        Approx.WithThreads(2, () =>
        {
            using (TensorScope.Begin(includeCpu: true)) Assert.DoesNotThrow(() => dp.Backward(x, y, Loss));
            net.ZeroGrad();
            Assert.DoesNotThrow(() => dp.Backward(x, y, Loss));
        });
        Assert.That(net.Parameters().All(p => p.Grad != null), Is.True);
    }

    [Test]
    public void StatefulModelsAreNotReplicatedAndTrainWhole()
    {
        var bn = new Sequential(new Conv2d(1, 4, 3, 2, 1), new BatchNorm2d(4), new ReLU(), new Flatten(), new Linear(64, 10));
        var drop = new Sequential(new Flatten(), new Linear(64, 16), new ReLU(), new Dropout(0.5f), new Linear(16, 10));
        Assert.That(DataParallel.CanReplicate(bn, out var why), Is.False);
        Assert.That(why, Does.Contain("running_mean").Or.Contain("buffer"));
        Assert.That(DataParallel.CanReplicate(drop, out why), Is.False);
        Assert.That(why, Does.Contain("Dropout"));
        Assert.That(DataParallel.ShardsFor(bn, 256, 4), Is.EqualTo(1));
        Assert.That(DataParallel.ShardsFor(Net(1), 256, 4), Is.EqualTo(4));
        Assert.That(DataParallel.ShardsFor(Net(1), 100, 4), Is.EqualTo(3));
        Assert.That(DataParallel.ShardsFor(Net(1), 63, 4), Is.EqualTo(1));
        Assert.That(DataParallel.ShardsFor(Net(1), 256, 1), Is.EqualTo(1));
        var e = Assert.Throws<ArgumentException>(() => new DataParallel(bn, 2));
        Assert.That(e!.Message, Does.Contain("buffer"));
        var x = Inputs(128, 41); var y = Labels(128, 42);
        var o = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.02f, Epochs = 2, WarmupEpochs = 0, RampEpochs = 1, BatchSize = 128 };
        var shards = new List<int>();
        Approx.WithThreads(2, () => Assert.DoesNotThrow(() => CertifiedTrainer.Fit(bn, new TensorDataset(x, y), o, s => shards.Add(s.Shards))));
        Assert.That(shards, Has.Count.EqualTo(2).And.All.EqualTo(1), "a stateful model trains whole");
    }

    [Test]
    public void BadArgumentsAndFailingShardsAreReported()
    {
        var net = Net(51);
        Assert.Throws<ArgumentOutOfRangeException>(() => new DataParallel(net, 0));
        var dp = new DataParallel(net, 2);
        var x = Inputs(64, 52);
        Assert.Throws<ArgumentException>(() => dp.Backward(x, Labels(63, 1), (m, xs, ys, k) => new(Losses.CrossEntropy(m.Forward(xs), ys), null)));
        var e = Assert.Throws<InvalidOperationException>(() => Approx.WithThreads(2, () =>
            dp.Backward(x, Labels(64, 1), (m, xs, ys, k) => k == 1 ? throw new InvalidOperationException("shard 1 failed") : new(Losses.CrossEntropy(m.Forward(xs), ys), null))));
        Assert.That(e!.Message, Does.Contain("shard 1 failed"));
        Assert.Throws<InvalidOperationException>(() => dp.Backward(x, Labels(64, 1), (m, xs, ys, k) => new(m.Forward(xs), null)));
    }
}
