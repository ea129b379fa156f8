using Engine.Autograd;
using Engine.Nn;
using Engine.Serialization;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

public class TrainingTests
{
    // Three Gaussian blobs in 2-D, linearly separable with a wide margin.
    private static (Tensor x, Tensor y) Blobs(int n, ulong seed)
    {
        var g = new Generator(seed);
        var noise = Tensor.Normal([n, 2], 0, 0.3f, g).ToArray();
        float[][] centres = [[2f, 0f], [-1f, 1.7f], [-1f, -1.7f]];
        var x = new float[n * 2]; var y = new float[n];
        for (int i = 0; i < n; i++)
        {
            int c = i % 3;
            y[i] = c;
            x[2 * i] = centres[c][0] + noise[2 * i];
            x[2 * i + 1] = centres[c][1] + noise[2 * i + 1];
        }
        return (Tensor.FromArray(x, n, 2), Tensor.FromArray(y, n));
    }

    private static Sequential Mlp(ulong seed, bool regularised = false)
    {
        var g = new Generator(seed);
        return regularised
            ? new Sequential(new Linear(2, 16, generator: g), new BatchNorm1d(16), new ReLU(), new Dropout(0.1f, g), new Linear(16, 3, generator: g))
            : new Sequential(new Linear(2, 16, generator: g), new ReLU(), new Linear(16, 16, generator: g), new Tanh(), new Linear(16, 3, generator: g));
    }

    private static float Accuracy(Module m, Tensor x, Tensor y)
    {
        m.Eval();
        float[] pred;
        using (new NoGrad()) pred = m.Forward(x).ArgMax(1).ToArray();
        m.Train();
        var t = y.ToArray();
        return pred.Zip(t).Count(p => p.First == p.Second) / (float)t.Length;
    }

    private static (float first, float last) Train(Module m, Optimizer opt, Tensor x, Tensor y, int steps, int batch = 30, LrScheduler? sched = null)
    {
        float first = float.NaN, last = float.NaN;
        int n = x.Size(0);
        for (int s = 0; s < steps; s++)
        {
            int start = s * batch % n;
            var xb = x.NarrowRows(start, Math.Min(batch, n - start));
            var yb = y.NarrowRows(start, Math.Min(batch, n - start));
            opt.ZeroGrad();
            var loss = Losses.CrossEntropy(m.Forward(xb), yb);
            loss.Backward();
            GradClip.ClipGradNorm(m.Parameters(), 5f);
            opt.Step();
            sched?.Step();
            if (s == 0) first = loss.Item();
            last = loss.Item();
        }
        return (first, last);
    }

    [Test]
    public void SgdAndAdamDriveTheLossDown()
    {
        var (x, y) = Blobs(300, 1);
        var (xt, yt) = Blobs(150, 2);

        var a = Mlp(3);
        var sgd = new Sgd(a.Parameters(), 0.1f, momentum: 0.9f, weightDecay: 1e-4f);
        var (f1, l1) = Train(a, sgd, x, y, 150, sched: new CosineAnnealingLR(sgd, 150));
        TestContext.Out.WriteLine($"SGD loss {f1} -> {l1}");
        Assert.That(l1, Is.LessThan(0.25f * f1), $"SGD: loss {f1} -> {l1}");
        Assert.That(Accuracy(a, xt, yt), Is.GreaterThan(0.95f));

        var b = Mlp(4, regularised: true);
        var adam = new AdamW(b.Parameters(), 0.02f);
        var (f2, l2) = Train(b, adam, x, y, 150, sched: new LinearWarmup(adam, 10));
        TestContext.Out.WriteLine($"AdamW loss {f2} -> {l2}");
        Assert.That(l2, Is.LessThan(0.25f * f2), $"Adam: loss {f2} -> {l2}");
        Assert.That(Accuracy(b, xt, yt), Is.GreaterThan(0.95f));
    }

    [Test]
    public void SameSeedGivesIdenticalWeights()
    {
        var (x, y) = Blobs(120, 5);
        float[][] Run()
        {
            var m = Mlp(6, regularised: true);
            Train(m, new Adam(m.Parameters(), 0.01f), x, y, 20);
            return m.StateDict().Values.Select(t => t.ToArray()).ToArray();
        }
        var r1 = Run(); var r2 = Run();
        Assert.That(r1.Length, Is.EqualTo(r2.Length));
        for (int i = 0; i < r1.Length; i++) Assert.That(r1[i], Is.EqualTo(r2[i]), $"tensor {i}");
    }

    [Test]
    public void SaveLoadRoundTripReproducesOutputsExactly()
    {
        var (x, y) = Blobs(60, 7);
        var g = new Generator(8);
        Sequential Cnn() => new(new Conv2d(1, 4, 3, padding: 1, generator: g), new BatchNorm2d(4), new ReLU(), new MaxPool2d(2),
                                new Flatten(), new Linear(4 * 2 * 2, 3, generator: g));
        var a = Cnn();
        var img = Tensor.Matmul(x, Tensor.Ones(2, 16)).Reshape(60, 1, 4, 4);
        var opt = new Sgd(a.Parameters(), 0.05f, momentum: 0.9f);
        for (int s = 0; s < 5; s++)
        {
            opt.ZeroGrad();
            Losses.CrossEntropy(a.Forward(img), y).Backward();
            opt.Step();
        }
        a.Eval();
        string path = Path.Combine(Path.GetTempPath(), $"engine-nn-{Guid.NewGuid():N}.safetensors");
        try
        {
            a.SaveWeights(path);
            var b = Cnn();
            b.LoadWeights(path);
            b.Eval();
            Assert.That(b.Forward(img).ToArray(), Is.EqualTo(a.Forward(img).ToArray()));
            Assert.That(((BatchNorm2d)b[1]).NumBatchesTracked!.Item(), Is.EqualTo(5f));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void TrainingLoopDoesNotGrowMemory()
    {
        var (x, y) = Blobs(90, 9);
        var m = Mlp(10, regularised: true);
        var opt = new Adam(m.Parameters(), 0.01f);
        long Measure()
        {
            GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
            return GC.GetTotalMemory(true);
        }
        Train(m, opt, x, y, 30);
        long before = Measure();
        Train(m, opt, x, y, 300);
        long after = Measure();
        // Each step allocates far more than this in temporaries; a leak of even one activation per step would exceed it.
        TestContext.Out.WriteLine($"managed memory {before} -> {after} bytes");
        Assert.That(after - before, Is.LessThan(512 * 1024), $"managed memory grew from {before} to {after} bytes");
    }
}
