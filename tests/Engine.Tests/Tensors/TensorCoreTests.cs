using Engine.Autograd;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Tensors;

public class TensorCoreTests
{
    [Test]
    public void ReshapeIsAViewAndChecksCounts()
    {
        var t = Tensor.Arange(12);
        var v = t.Reshape(3, -1);
        Assert.That(v.Shape, Is.EqualTo(new[] { 3, 4 }));
        Assert.That(v.Storage, Is.SameAs(t.Storage));
        var ex = Assert.Throws<ArgumentException>(() => t.Reshape(5, -1));
        Assert.That(ex!.Message, Does.Contain("[12]"));
    }

    [Test]
    public void PhiloxMatchesPublishedKnownAnswer()
    {
        // Random123 known-answer test for philox4x32-10: counter = key = 0.
        uint c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        Philox.Round10(ref c0, ref c1, ref c2, ref c3, 0, 0);
        Assert.That(new[] { c0, c1, c2, c3 }, Is.EqualTo(new uint[] { 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8 }));
    }

    [Test]
    public void UniformKernelDrawsPhiloxWordsBitForBit()
    {
        // The CPU kernel generates eight counters at a time with AVX-512 where it can; every element must still be
        // low + (high - low) * ToUnit(word i % 4 of counter + i / 4). Lengths cover whole blocks, a tail of counters,
        // a last counter with 1-3 words, and several threads' chunks; the counter crosses 2^32 in the last case.
        foreach (var (n, counter) in new (int, ulong)[] { (1, 5), (31, 0), (32, 7), (35, 1), (4099, 11), (70_001, 3), (1000, 0xFFFF_FFF0UL) })
        {
            var y = Tensor.Zeros([n]);
            Engine.Cpu.CpuKernels.Instance.RandomUniform(y.Buf, n, 0x1234_5678_9ABC_DEF0UL, counter, -2f, 3f);
            var got = y.ToArray();
            for (int i = 0; i < n; i++)
            {
                var (w0, w1, w2, w3) = Philox.Generate(0x1234_5678_9ABC_DEF0UL, counter + (ulong)(i / 4));
                uint w = (i % 4) switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
                float expect = -2f + 5f * Philox.ToUnit(w);
                if (got[i] != expect) Assert.Fail($"n {n}, counter {counter}: element {i} is {got[i]}, expected {expect}.");
            }
        }
    }

    [Test]
    public void RandomTensorsAreReproducibleAndHaveTheRightMoments()
    {
        var a = Tensor.Normal([100_001], 2f, 3f, new Generator(42)).ToArray();
        var b = Tensor.Normal([100_001], 2f, 3f, new Generator(42)).ToArray();
        Assert.That(a, Is.EqualTo(b));
        double mean = a.Average(), var = a.Select(x => (x - mean) * (x - mean)).Average();
        Assert.That(mean, Is.EqualTo(2.0).Within(0.05));
        Assert.That(Math.Sqrt(var), Is.EqualTo(3.0).Within(0.05));
        var u = Tensor.Uniform([50_003], -1f, 1f, new Generator(1)).ToArray();
        Assert.That(u.Min(), Is.GreaterThanOrEqualTo(-1f));
        Assert.That(u.Max(), Is.LessThan(1f));
        Assert.That(u.Average(), Is.EqualTo(0.0).Within(0.02));
    }

    [Test]
    public void BackwardThroughReshapeAndNarrowAccumulates()
    {
        var x = Tensor.Arange(6).Reshape(2, 3).Detach().RequiresGrad_();
        var y = x.NarrowRows(1, 1).Reshape(3);
        y.Backward(Tensor.FromArray([1f, 2f, 3f], 3));
        y.Backward(Tensor.FromArray([1f, 1f, 1f], 3));
        Assert.That(x.Grad!.ToArray(), Is.EqualTo(new[] { 0f, 0f, 0f, 2f, 3f, 4f }));
    }

    [Test]
    public void NoGradStopsRecording()
    {
        var x = Tensor.Ones(3).RequiresGrad_();
        Tensor y;
        using (new NoGrad()) y = x.Reshape(3, 1);
        Assert.That(y.RequiresGrad, Is.False);
        Assert.Throws<InvalidOperationException>(() => y.Backward(Tensor.Ones(3, 1)));
    }
}
