using Engine.Data;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Data;

public class DataLoaderTests
{
    // Sample i has inputs filled with i and target i, so every batch row says which sample it came from.
    private static TensorDataset Indexed(int n)
    {
        var x = new float[n * 2 * 3];
        for (int i = 0; i < x.Length; i++) x[i] = i / 6;
        return new TensorDataset(Tensor.FromArray(x, n, 2, 3), Tensor.FromArray(Enumerable.Range(0, n).Select(i => (float)i).ToArray(), n));
    }

    private static List<int[]> Epoch(DataLoader loader)
    {
        var result = new List<int[]>();
        foreach (var (x, y) in loader)
        {
            var ids = y.ToArray().Select(v => (int)v).ToArray();
            var xv = x.ToArray();
            Assert.That(x.Shape, Is.EqualTo(new[] { ids.Length, 2, 3 }));
            for (int r = 0; r < ids.Length; r++)
                for (int k = 0; k < 6; k++) Assert.That(xv[r * 6 + k], Is.EqualTo((float)ids[r]));
            result.Add(ids);
        }
        return result;
    }

    [Test]
    public void EveryEpochCoversEverySampleOnceAndReshuffles()
    {
        var loader = new DataLoader(Indexed(103), batchSize: 10, shuffle: true, seed: 7);
        Assert.That(loader.Count, Is.EqualTo(11));
        var e1 = Epoch(loader);
        var e2 = Epoch(loader);
        foreach (var e in new[] { e1, e2 })
        {
            Assert.That(e.Count, Is.EqualTo(11));
            Assert.That(e.Take(10).Select(b => b.Length), Is.All.EqualTo(10));
            Assert.That(e[^1].Length, Is.EqualTo(3));
            Assert.That(e.SelectMany(b => b).OrderBy(i => i), Is.EqualTo(Enumerable.Range(0, 103)));
        }
        Assert.That(e1.SelectMany(b => b), Is.Not.EqualTo(Enumerable.Range(0, 103)));
        Assert.That(e2.SelectMany(b => b), Is.Not.EqualTo(e1.SelectMany(b => b)));
        Assert.That(loader.Epoch, Is.EqualTo(2));
    }

    [Test]
    public void SameSeedSameEpochsDifferentSeedDifferentOrder()
    {
        var d = Indexed(50);
        var a = new DataLoader(d, 8, seed: 123);
        var b = new DataLoader(d, 8, seed: 123);
        var c = new DataLoader(d, 8, seed: 124);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var ea = Epoch(a).SelectMany(x => x).ToArray();
            Assert.That(Epoch(b).SelectMany(x => x), Is.EqualTo(ea));
            Assert.That(Epoch(c).SelectMany(x => x), Is.Not.EqualTo(ea));
        }
    }

    [Test]
    public void DropLastSkipsThePartialBatch()
    {
        var loader = new DataLoader(Indexed(103), batchSize: 10, dropLast: true, seed: 1);
        Assert.That(loader.Count, Is.EqualTo(10));
        var e = Epoch(loader);
        Assert.That(e.Count, Is.EqualTo(10));
        Assert.That(e.Select(b => b.Length), Is.All.EqualTo(10));
        var seen = e.SelectMany(b => b).ToArray();
        Assert.That(seen.Distinct().Count(), Is.EqualTo(100));
        // An exact multiple loses nothing.
        Assert.That(Epoch(new DataLoader(Indexed(40), 10, dropLast: true)).SelectMany(b => b).Count(), Is.EqualTo(40));
    }

    [Test]
    public void WithoutShuffleKeepsDatasetOrder()
    {
        var e = Epoch(new DataLoader(Indexed(25), 4, shuffle: false));
        Assert.That(e.SelectMany(b => b), Is.EqualTo(Enumerable.Range(0, 25)));
    }

    [Test]
    public void BatchesOfTheEmbeddedDataHaveTrainingShapes()
    {
        var train = FashionMnist.LoadEmbedded().Train;
        var loader = new DataLoader(train, 64, seed: 3);
        var (x, y) = loader.First();
        Assert.That(x.Shape, Is.EqualTo(new[] { 64, 1, 28, 28 }));
        Assert.That(y.Shape, Is.EqualTo(new[] { 64 }));
    }

    [Test]
    public void BadArgumentsAreRejected()
    {
        var d = Indexed(5);
        Assert.That(Assert.Throws<ArgumentException>(() => new DataLoader(d, 0))!.Message, Does.Contain("batch size"));
        var loader = new DataLoader(d, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => loader.Gather([0, 5]));
        Assert.Throws<ArgumentException>(() => new TensorDataset(Tensor.Zeros(3, 2), Tensor.Zeros(4)));
    }
}
