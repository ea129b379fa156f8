#if ENGINE_CUDA
using System.Runtime.InteropServices;
using Engine.Cuda;
using NUnit.Framework;

namespace Engine.Tests.Cuda;

public class KernelParamsTests
{
    [Test]
    public void ArgumentsSitAtTheirNaturalCAlignment()
    {
        // void k(float* a, int n, float s, Ints8 shape, double d, int m, long long l)
        var p = new KernelParams();
        p.Pointer(0x1122334455667788UL);
        p.Int(-7);
        p.Float(2.5f);
        p.Ints([3, 4, 5], 8);
        p.Double(-1.25);
        p.Int(9);
        p.Long(long.MinValue);
        var bytes = p.AsSpan().ToArray();
        Assert.That(p.Size, Is.EqualTo(72));   // 8 + 4 + 4 + 32 (ints at 16) + 8 (double at 48) + 4 (int at 56) + pad + 8 (long at 64)
        Assert.That(BitConverter.ToUInt64(bytes, 0), Is.EqualTo(0x1122334455667788UL));
        Assert.That(BitConverter.ToInt32(bytes, 8), Is.EqualTo(-7));
        Assert.That(BitConverter.ToSingle(bytes, 12), Is.EqualTo(2.5f));
        var ints = MemoryMarshal.Cast<byte, int>(bytes.AsSpan(16, 32)).ToArray();
        Assert.That(ints, Is.EqualTo(new[] { 3, 4, 5, 0, 0, 0, 0, 0 }), "unused slots of an int[8] are zero");
        Assert.That(BitConverter.ToDouble(bytes, 48), Is.EqualTo(-1.25));
        Assert.That(BitConverter.ToInt32(bytes, 56), Is.EqualTo(9));
        Assert.That(BitConverter.ToInt64(bytes, 64), Is.EqualTo(long.MinValue));
    }

    [Test]
    public void IntsAfterAnOddIntArePaddedToFourBytesOnly()
    {
        var p = new KernelParams();
        p.Int(1);
        p.Ints([2], 3);   // struct { int v[3]; } has 4-byte alignment: no padding after the int
        p.Pointer(5);     // 8-byte aligned: 4 + 12 = 16 already is
        Assert.That(p.Size, Is.EqualTo(24));
        var bytes = p.AsSpan().ToArray();
        Assert.That(BitConverter.ToInt32(bytes, 4), Is.EqualTo(2));
        Assert.That(BitConverter.ToUInt64(bytes, 16), Is.EqualTo(5UL));
    }

    [Test]
    public void TooManyValuesOrBytesAreRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => { var p = new KernelParams(); p.Ints([1, 2, 3], 2); });
        Assert.That(ex!.Message, Does.Contain("int[2]"));
        var p = new KernelParams();
        for (int i = 0; i < KernelParams.Capacity / 8; i++) p.Pointer((ulong)i);
        Assert.That(p.Size, Is.EqualTo(KernelParams.Capacity));
        Assert.Throws<InvalidOperationException>(() => p.Int(1));
    }
}
#endif
