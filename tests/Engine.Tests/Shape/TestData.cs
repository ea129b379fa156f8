using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Shape;

/// <summary>Seeded random data and tolerant comparisons for the shape / conv / pool tests.</summary>
internal static class TestData
{
    public static float[] Random(Random rng, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static Tensor Tensor(Random rng, params int[] shape) => Engine.Tensors.Tensor.FromSpan(Random(rng, ShapeUtil.Numel(shape)), shape, null);

    /// <summary>Distinct values at least 0.1 apart in random order (no ties or near-ties for max pooling).</summary>
    public static Tensor Distinct(Random rng, params int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        var v = Enumerable.Range(0, n).Select(i => (i - n / 2) * 0.1f).OrderBy(_ => rng.Next()).ToArray();
        return Engine.Tensors.Tensor.FromSpan(v, shape, null);
    }

    public static void Close(float[] actual, float[] expected, double atol = 1e-4, double rtol = 1e-4, string what = "")
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        for (int i = 0; i < actual.Length; i++)
        {
            double tol = atol + rtol * Math.Abs(expected[i]);
            if (!(Math.Abs(actual[i] - expected[i]) <= tol) && !(float.IsNaN(actual[i]) && float.IsNaN(expected[i])))
                Assert.Fail($"{what}: element {i} is {actual[i]:G9}, expected {expected[i]:G9}");
        }
    }
}
