using Engine.Certify;
using Engine.Data;
using Engine.Nn;
using Engine.Tensors;
using Engine.Tests.Devices;
using NUnit.Framework;
using static Engine.Tests.Certify.CertifyTestNets;

namespace Engine.Tests.Certify;

/// <summary>The trainer: every method lowers its own loss on a tiny set, and a run on a device that frees memory per step matches the CPU bit for bit.</summary>
[TestFixture]
public class CertifiedTrainerTests
{
    [TestCaseSource(typeof(CertifyTestNets), nameof(CertifyTestNets.AllMethods))]
    public void ShortRunLowersTheMethodsLoss(TrainMethod method)
    {
        var net = Net(20);
        var x = Inputs(32, 21); var y = TeacherLabels(x);
        var o = new CertifiedTrainingOptions
        {
            Method = method, BetaEnd = 1, Eps = method.UsesEps() ? 0.02f : 0, Sigma = method == TrainMethod.Noise ? 0.1f : 0,
            Epochs = 40, WarmupEpochs = 0, RampEpochs = 0, LearningRate = 1e-2f, PgdSteps = 3, BatchSize = 32, Seed = 7,
        };
        // The loss at the target schedule values (eps at its target, kappa 0), with a fixed attack/noise seed.
        var target = new TrainingSchedule(o, 1).At(0);
        float Measure() => CertifiedLosses.Compute(net, x, y, o, target, seed: 123).Loss.Item();
        float before = Measure();
        var epochs = CertifiedTrainer.Fit(net, new TensorDataset(x, y), o);
        float after = Measure();
        Assert.That(epochs, Has.Count.EqualTo(40));
        Assert.That(after, Is.LessThan(0.8f * before), $"{method}: {before} -> {after}");
        Assert.That(epochs[^1].Loss, Is.LessThan(epochs[0].Loss), method.ToString());
        Assert.That(epochs.All(e => double.IsFinite(e.Loss) && e.Batches == 1 && e.Examples == 32), Is.True);
    }

    [Test]
    public void StepReportsTheScheduleAndTheCallbacksRunPerBatchAndEpoch()
    {
        var net = Net(21);
        var data = new TensorDataset(Inputs(20, 1), Labels(20, 2));
        var o = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.05f, Epochs = 3, BatchSize = 8, WarmupEpochs = 1, RampEpochs = 1 };
        var steps = new List<StepResult>();
        var epochs = new List<EpochResult>();
        CertifiedTrainer.Fit(net, data, o, steps.Add, epochs.Add);
        Assert.That(steps.Select(s => s.Schedule.Step), Is.EqualTo(Enumerable.Range(0, 9)));
        Assert.That(steps.Select(s => s.BatchSize), Is.EqualTo(new[] { 8, 8, 4, 8, 8, 4, 8, 8, 4 }));
        Assert.That(steps.Select(s => s.Schedule.Eps), Is.EqualTo(new[] { 0f, 0f, 0f, 0.05f / 3, 0.1f / 3, 0.05f, 0.05f, 0.05f, 0.05f }).Within(1e-7));
        // Batches with kappa > 0 compute clean logits: the warm-up's, not the ramp's last (kappa reaches 0) nor later ones.
        Assert.That(epochs.Select(e => e.TrainAccuracy.HasValue), Is.EqualTo(new[] { true, false, false }));
        Assert.That(epochs.Select(e => e.Epoch), Is.EqualTo(new[] { 0, 1, 2 }));
        Assert.That(epochs[2].Last.Kappa, Is.EqualTo(0f));
    }

    [Test]
    public void GradientClippingBoundsTheUpdateAndNaNLossesAreReported()
    {
        var net = Net(22);
        var x = Inputs(8, 3); var y = Labels(8, 4);
        // Plain SGD at learning rate 1 (constant schedule): the update is minus the clipped gradient, whose norm the
        // clip bounds (the gradients themselves are step temporaries, released when Step returns).
        var o = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.05f, Epochs = 2, GradClipNorm = 1e-3f, WarmupEpochs = 0, RampEpochs = 0,
                                               LearningRate = 1f, LrSchedule = LrSchedule.Constant };
        var t = new CertifiedTrainer(net, o, 1, new Sgd(net.Parameters(), 1f));
        var before = net.Parameters().Select(p => p.ToArray()).ToArray();
        var r = t.Step(x, y);
        Assert.That(r.GradNorm, Is.GreaterThan(1e-3f), "the raw norm is reported");
        double moved = net.Parameters().Select((p, i) => p.ToArray().Zip(before[i], (a, b) => (double)(a - b) * (a - b)).Sum()).Sum();
        Assert.That(Math.Sqrt(moved), Is.LessThanOrEqualTo(1.001e-3).And.GreaterThan(0.9e-3));
        using (new Engine.Autograd.NoGrad()) net.Parameters().First().CopyFrom(Tensor.Full(net.Parameters().First().Dims, float.NaN));
        var e = Assert.Throws<InvalidOperationException>(() => t.Step(x, y));
        Assert.That(e!.Message, Does.Contain("NaN").Or.Contain("not a number"));
    }

    /// <summary>An emulated device whose storages join the current TensorScope (as CUDA's do), so a step's temporaries are freed when it ends.</summary>
    private sealed class ScopedDevice() : EmulatedDevice("scoped-emu")
    {
        public override Storage Allocate(int length, bool zero = false)
        {
            var s = base.Allocate(length, zero);
            TensorScope.Register(s);
            return s;
        }
    }

    [TestCase(TrainMethod.CrownIbp)]
    [TestCase(TrainMethod.Sabr)]
    [TestCase(TrainMethod.CcIbp)]
    [TestCase(TrainMethod.Noise)]
    public void TrainingOnADeviceThatFreesPerStepMatchesTheCpu(TrainMethod method)
    {
        var dev = new ScopedDevice();
        var x = Inputs(12, 5); var y = Labels(12, 6);
        var o = new CertifiedTrainingOptions
        {
            Method = method, Eps = method.UsesEps() ? 0.03f : 0, Sigma = method == TrainMethod.Noise ? 0.2f : 0,
            Epochs = 3, WarmupEpochs = method.IsCertified() ? 1 : 0, RampEpochs = method.IsCertified() ? 1 : 0, BatchSize = 6, PgdSteps = 2,
        };
        float[][] Train(Device d)
        {
            var net = Net(23).To(d);
            CertifiedTrainer.Fit(net, new TensorDataset(x, y), o);
            Assert.That(net.Parameters().All(p => p.Device == d), Is.True);
            return net.Parameters().Select(p => p.ToArray()).ToArray();
        }
        var cpu = Train(Device.Cpu);
        var emu = Train(dev);
        for (int i = 0; i < cpu.Length; i++) Assert.That(emu[i], Is.EqualTo(cpu[i]), $"parameter {i}");
    }

    [Test]
    public void BatchesFromADataLoaderAreReleasedOthersAreKept()
    {
        // A DataLoader's batches are the trainer's to release after each step (their arrays go straight back to the
        // pool); batches the caller made are theirs, and a second epoch over the same list must still work.
        var x = Inputs(16, 31); var y = TeacherLabels(x);
        var o = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.01f, BatchSize = 8, Seed = 3 };
        var list = new List<Batch> { new(x.NarrowRows(0, 8), y.NarrowRows(0, 8)), new(x.NarrowRows(8, 8), y.NarrowRows(8, 8)) };
        var t = new CertifiedTrainer(Net(25), o, 2);
        t.TrainEpoch(list);
        Assert.DoesNotThrow(() => t.TrainEpoch(list), "a caller's batches must survive an epoch");
        Assert.That(x.ToArray(), Has.Length.EqualTo(16 * 64));
        var loader = new DataLoader(new TensorDataset(x, y), 8, shuffle: true, seed: 1);
        var seen = new List<Batch>();
        var t2 = new CertifiedTrainer(Net(25), o, loader.Count);
        var r = t2.TrainEpoch(loader.Select(b => { seen.Add(b); return b; }));
        Assert.That(r.Batches, Is.EqualTo(2));
        Assert.That(seen.All(b => b.Inputs.ToArray().Length == 8 * 64), Is.True, "a wrapped loader is not known to be fresh: kept");
        t2.TrainEpoch(loader);
        Assert.That(x.ToArray(), Has.Length.EqualTo(16 * 64), "the dataset itself is never released");
        Assert.That(t2.TrainEpoch(loader).Batches, Is.EqualTo(2));
    }

    [Test]
    public void ArgumentsAreChecked()
    {
        var net = Net(24);
        var o = new CertifiedTrainingOptions { Method = TrainMethod.Ibp, Eps = 0.1f };
        Assert.Throws<ArgumentOutOfRangeException>(() => new CertifiedTrainer(net, o, 0));
        Assert.Throws<ArgumentException>(() => new CertifiedTrainer(net, o with { Eps = -1 }, 4));
        var t = new CertifiedTrainer(net, o, 4);
        Assert.Throws<ArgumentException>(() => t.Step(Inputs(4, 1), Labels(3, 1)));
        Assert.Throws<ArgumentException>(() => CertifiedTrainer.Fit(net, new TensorDataset(Tensor.Zeros([0, 1, 8, 8], Device.Cpu), Tensor.Zeros([0], Device.Cpu)), o));
    }
}
