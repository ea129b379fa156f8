using Engine.Data;
using NUnit.Framework;

namespace Engine.Tests.Data;

public class FashionMnistTests
{
    [Test]
    public void EmbeddedSubsetHasShapesRangeAndBalance()
    {
        var data = FashionMnist.LoadEmbedded();
        Check(data.Train, 10_000, 1_000);
        Check(data.Test, 2_000, 200);
    }

    private static void Check(TensorDataset d, int n, int perClass)
    {
        Assert.That(d.Inputs.Shape, Is.EqualTo(new[] { n, 1, 28, 28 }));
        Assert.That(d.Targets.Shape, Is.EqualTo(new[] { n }));
        var x = d.Inputs.ToArray();
        Assert.That(x.Min(), Is.EqualTo(0f));
        Assert.That(x.Max(), Is.EqualTo(1f));
        // Fashion-MNIST's pixel mean is about 0.286; a wrong scale or layout would move it far.
        Assert.That(x.Average(), Is.EqualTo(FashionMnist.Mean).Within(0.02));
        var counts = new int[FashionMnist.NumClasses];
        foreach (var y in d.Targets.ToArray())
        {
            Assert.That(y, Is.EqualTo(MathF.Round(y)));
            counts[(int)y]++;
        }
        Assert.That(counts, Is.All.EqualTo(perClass));
    }

    [Test]
    public void EmbeddedSubsetIsNotSortedByClass()
    {
        var y = FashionMnist.LoadEmbedded().Test.Targets.ToArray();
        Assert.That(y.Take(50).Distinct().Count(), Is.GreaterThan(5));
    }

    [Test]
    public void NormalisedLoadAppliesMeanAndStd()
    {
        var plain = FashionMnist.LoadEmbedded().Test.Inputs.ToArray();
        var norm = FashionMnist.LoadEmbedded(normalize: true).Test.Inputs.ToArray();
        for (int i = 0; i < plain.Length; i += 97)
            Assert.That(norm[i], Is.EqualTo((plain[i] - FashionMnist.Mean) / FashionMnist.Std).Within(1e-5f));
    }

    [Test]
    public void LoadFromDirectoryNamesMissingFiles()
    {
        var dir = Path.Combine(Path.GetTempPath(), "engine-fm-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var ex = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(dir));
            Assert.That(ex!.Message, Does.Contain("train-images-idx3-ubyte"));
        }
        finally { Directory.Delete(dir, true); }
        Assert.Throws<DirectoryNotFoundException>(() => FashionMnist.Load(dir));
    }

    [Test]
    public void LoadsTheFullSetWhenInstalled()
    {
        const string dir = "/usr/share/datasets/fashion-mnist";
        if (!Directory.Exists(dir)) Assert.Ignore($"{dir} is not installed (Debian package dataset-fashion-mnist).");
        var data = FashionMnist.Load(dir);
        Assert.That(data.Train.Inputs.Shape, Is.EqualTo(new[] { 60_000, 1, 28, 28 }));
        Assert.That(data.Test.Targets.Shape, Is.EqualTo(new[] { 10_000 }));
        // The embedded test subset is the first 200 per class in file order; its first sample is the full set's first.
        var sub = FashionMnist.LoadEmbedded().Test;
        Assert.That(sub.Inputs.NarrowRows(0, 1).ToArray(), Is.EqualTo(data.Test.Inputs.NarrowRows(0, 1).ToArray()));
        Assert.That(sub.Targets.ToArray()[0], Is.EqualTo(data.Test.Targets.ToArray()[0]));
    }
}
