using Engine.Cpu;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

public class OptimKernelTests
{
    // Odd sizes exercise the vector tails; 70001 crosses the threading threshold.
    private static readonly int[] Sizes = [1, 7, 15, 16, 17, 33, 257, 70001];

    private static float[] Rand(int n, ulong seed, float lo = -1, float hi = 1) => Tensor.Uniform([n], lo, hi, new Generator(seed)).ToArray();

    private static void AssertClose(float[] actual, float[] expected, string what)
    {
        for (int i = 0; i < actual.Length; i++)
        {
            float tol = 1e-5f * (1 + Math.Abs(expected[i]));
            if (Math.Abs(actual[i] - expected[i]) > tol)
                Assert.Fail($"{what}: element {i} of {actual.Length}: kernel {actual[i]:G9}, reference {expected[i]:G9}");
        }
    }

    [Test]
    public void SgdKernelMatchesReference([Values(0f, 0.9f)] float momentum, [Values(false, true)] bool nesterov,
                                         [Values(0f, 0.05f)] float weightDecay, [Values(false, true)] bool firstStep)
    {
        if (nesterov && momentum == 0) return;
        float dampening = nesterov ? 0 : 0.25f;
        foreach (int n in Sizes)
        {
            var p0 = Rand(n, 1); var g = Rand(n, 2); var b0 = Rand(n, 3);
            var p = Tensor.FromArray(p0, n); var grad = Tensor.FromArray(g, n); var buf = Tensor.FromArray(b0, n);
            CpuKernels.Instance.SgdUpdate(p.Buf, grad.Buf, momentum != 0 ? buf.Buf : default, n, 0.03f, momentum, dampening, weightDecay, nesterov, firstStep);
            var pr = (float[])p0.Clone(); var br = (float[])b0.Clone();
            OptimReference.SgdUpdate(pr, g, br, 0.03f, momentum, dampening, weightDecay, nesterov, firstStep);
            AssertClose(p.ToArray(), pr, $"param n={n}");
            AssertClose(buf.ToArray(), br, $"buffer n={n}");
        }
    }

    [Test]
    public void AdamKernelMatchesReference([Values(0f, 0.1f)] float weightDecay, [Values(false, true)] bool decoupled, [Values(1, 7)] int step)
    {
        foreach (int n in Sizes)
        {
            var p0 = Rand(n, 4); var g = Rand(n, 5); var m0 = Rand(n, 6, -0.1f, 0.1f); var v0 = Rand(n, 7, 0, 0.01f);
            var p = Tensor.FromArray(p0, n); var grad = Tensor.FromArray(g, n); var m = Tensor.FromArray(m0, n); var v = Tensor.FromArray(v0, n);
            CpuKernels.Instance.AdamUpdate(p.Buf, grad.Buf, m.Buf, v.Buf, n, 0.01f, 0.9f, 0.999f, 1e-8f, weightDecay, decoupled, step);
            var pr = (float[])p0.Clone(); var mr = (float[])m0.Clone(); var vr = (float[])v0.Clone();
            OptimReference.AdamUpdate(pr, g, mr, vr, 0.01f, 0.9f, 0.999f, 1e-8f, weightDecay, decoupled, step);
            AssertClose(p.ToArray(), pr, $"param n={n}");
            AssertClose(m.ToArray(), mr, $"exp_avg n={n}");
            AssertClose(v.ToArray(), vr, $"exp_avg_sq n={n}");
        }
    }

    [Test]
    public void SumOfSquaresAndScaleMatchReference()
    {
        foreach (int n in Sizes.Append(10_000))
        {
            var x = Rand(n, 8);
            var t = Tensor.FromArray(x, n);
            double got = CpuKernels.Instance.SumOfSquares(t.Buf, n), want = OptimReference.SumOfSquares(x);
            Assert.That(got, Is.EqualTo(want).Within(1e-6 * want + 1e-9), $"n={n}");
            CpuKernels.Instance.ScaleInPlace(t.Buf, n, -0.5f);
            Assert.That(t.ToArray(), Is.EqualTo(x.Select(v => v * -0.5f).ToArray()), $"n={n}");
        }
    }

    [Test]
    public void KernelsRespectBufferOffsets()
    {
        // Parameters may be views into a larger storage; the kernel must touch exactly [offset, offset + n).
        var big = Tensor.FromArray(Enumerable.Range(0, 40).Select(i => (float)i).ToArray(), 40);
        var view = big.NarrowRows(5, 20);
        var g = Tensor.Ones(20);
        CpuKernels.Instance.SgdUpdate(view.Buf, g.Buf, default, 20, 1f, 0, 0, 0, false, true);
        var all = big.ToArray();
        for (int i = 0; i < 40; i++)
            Assert.That(all[i], Is.EqualTo(i >= 5 && i < 25 ? i - 1f : i), $"element {i}");
    }
}
