using Engine.Cpu;
using NUnit.Framework;

namespace Engine.Tests.Conv;

public class ScratchPoolTests
{
    [Test]
    public void RentTakesTheSmallestFittingArrayAndReusesReturnedOnes()
    {
        var big = ScratchPool.Rent(1 << 16);
        var small = ScratchPool.Rent(100);
        Assert.That(big.Length, Is.GreaterThanOrEqualTo(1 << 16));
        Assert.That(small.Length, Is.GreaterThanOrEqualTo(100));
        ScratchPool.Return(big);
        ScratchPool.Return(small);
        // A small request must not take the large buffer while a small one fits.
        var again = ScratchPool.Rent(50);
        Assert.That(again.Length, Is.LessThan(1 << 16));
        var againBig = ScratchPool.Rent(1 << 16);
        Assert.That(againBig.Length, Is.GreaterThanOrEqualTo(1 << 16));
        ScratchPool.Return(again);
        ScratchPool.Return(againBig);
        Assert.That(ScratchPool.Rent(0).Length, Is.GreaterThanOrEqualTo(0));
    }
}
