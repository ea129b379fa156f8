using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

public class InitTests
{
    private static (double mean, double std, float min, float max) Stats(Tensor t)
    {
        var a = t.ToArray();
        double m = a.Average();
        return (m, Math.Sqrt(a.Select(v => (v - m) * (v - m)).Average()), a.Min(), a.Max());
    }

    [Test]
    public void FansCountTheReceptiveField()
    {
        Assert.That(Init.CalculateFans(Tensor.Zeros(8, 3, 5, 5)), Is.EqualTo((75, 200)));
        Assert.That(Init.CalculateFans(Tensor.Zeros(10, 4)), Is.EqualTo((4, 10)));
        Assert.Throws<ArgumentException>(() => Init.CalculateFans(Tensor.Zeros(4)));
    }

    [Test]
    public void KaimingUniformWithSqrt5IsPyTorchLinearDefault()
    {
        // gain(leaky_relu, sqrt 5) * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
        var w = Init.KaimingUniform(Tensor.Zeros(200, 100), MathF.Sqrt(5), generator: new Generator(1));
        var (mean, std, min, max) = Stats(w);
        float bound = 1f / MathF.Sqrt(100);
        Assert.That(min, Is.GreaterThanOrEqualTo(-bound));
        Assert.That(max, Is.LessThan(bound));
        Assert.That(mean, Is.EqualTo(0).Within(0.003));
        Assert.That(std, Is.EqualTo(bound / Math.Sqrt(3)).Within(0.002));
    }

    [Test]
    public void KaimingNormalAndXavierHaveTheRightSpread()
    {
        var kn = Init.KaimingNormal(Tensor.Zeros(64, 32, 3, 3), nonlinearity: "relu", generator: new Generator(2));
        Assert.That(Stats(kn).std, Is.EqualTo(Math.Sqrt(2.0 / 288)).Within(0.002));
        var kfo = Init.KaimingNormal(Tensor.Zeros(64, 32, 3, 3), mode: FanMode.FanOut, nonlinearity: "relu", generator: new Generator(2));
        Assert.That(Stats(kfo).std, Is.EqualTo(Math.Sqrt(2.0 / 576)).Within(0.002));
        var xu = Init.XavierUniform(Tensor.Zeros(300, 100), generator: new Generator(3));
        Assert.That(Stats(xu).max, Is.LessThan(Math.Sqrt(6.0 / 400)));
        Assert.That(Stats(xu).std, Is.EqualTo(Math.Sqrt(6.0 / 400) / Math.Sqrt(3)).Within(0.002));
        var xn = Init.XavierNormal(Tensor.Zeros(300, 100), gain: 2, generator: new Generator(4));
        Assert.That(Stats(xn).std, Is.EqualTo(2 * Math.Sqrt(2.0 / 400)).Within(0.003));
    }

    [Test]
    public void InitIsReproducibleFromTheGeneratorAndNotRecorded()
    {
        var a = Init.KaimingUniform(Tensor.Zeros(5, 7).RequiresGrad_(), generator: new Generator(9));
        var b = Init.KaimingUniform(Tensor.Zeros(5, 7), generator: new Generator(9));
        Assert.That(a.ToArray(), Is.EqualTo(b.ToArray()));
        Assert.That(a.IsLeaf);
        Assert.That(Init.CalculateGain("tanh"), Is.EqualTo(5f / 3));
        Assert.Throws<ArgumentException>(() => Init.CalculateGain("swish"));
    }
}
