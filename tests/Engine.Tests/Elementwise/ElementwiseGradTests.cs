using Engine.Autograd;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Elementwise;

/// <summary>Finite-difference gradient checks of every differentiable elementwise, broadcast, reduction and softmax op.</summary>
public class ElementwiseGradTests
{
    private static Tensor U(int[] shape, float lo, float hi, ulong seed) => Tensor.Uniform(shape, lo, hi, new Generator(seed));

    /// <summary>Uniform values in [lo, hi] pushed at least <paramref name="margin"/> away from each kink.</summary>
    private static Tensor Away(int[] shape, float lo, float hi, ulong seed, float margin, params float[] kinks)
    {
        var v = U(shape, lo, hi, seed).ToArray();
        for (int i = 0; i < v.Length; i++)
            foreach (float k in kinks)
                if (Math.Abs(v[i] - k) < margin) v[i] = k + (v[i] >= k ? margin : -margin);
        return Tensor.FromSpan(v, shape, null);
    }

    private static readonly int[] S = [3, 4, 5];

    [Test]
    public void SmoothUnaryOps()
    {
        var x = U(S, -2, 2, 1);
        GradCheck.Assert(t => t[0].Neg(), [x]);
        GradCheck.Assert(t => t[0].Square(), [x]);
        GradCheck.Assert(t => t[0].Exp(), [x]);
        GradCheck.Assert(t => t[0].Sigmoid(), [x]);
        GradCheck.Assert(t => t[0].Tanh(), [x]);
        GradCheck.Assert(t => t[0].Softplus(), [x]);
        GradCheck.Assert(t => t[0].Softplus(beta: 2f), [x]);
        GradCheck.Assert(t => t[0].Softplus(beta: 1f, threshold: 2f), [U(S, 3, 5, 2)]);   // the linear branch
        GradCheck.Assert(t => t[0].Pow(3f), [x]);
        GradCheck.Assert(t => t[0].Pow(2f), [x]);
        GradCheck.Assert(t => -t[0], [x]);
    }

    [Test]
    public void UnaryOpsOnTheirDomainOrAwayFromKinks()
    {
        var pos = U(S, 0.5f, 3f, 3);
        GradCheck.Assert(t => t[0].Log(), [pos]);
        GradCheck.Assert(t => t[0].Sqrt(), [pos]);
        GradCheck.Assert(t => t[0].Pow(2.5f), [pos]);
        GradCheck.Assert(t => t[0].Pow(-1.5f), [pos]);
        var nz = Away(S, -3, 3, 4, 0.3f, 0f);
        GradCheck.Assert(t => t[0].Abs(), [nz]);
        GradCheck.Assert(t => t[0].Relu(), [nz]);
        GradCheck.Assert(t => t[0].LeakyRelu(0.2f), [nz]);
        GradCheck.Assert(t => t[0].Sign(), [nz]);
        GradCheck.Assert(t => t[0].Reciprocal(), [nz]);
        GradCheck.Assert(t => t[0].Pow(-1f), [nz]);
        GradCheck.Assert(t => t[0].Clamp(-0.5f, 0.5f), [Away(S, -1, 1, 5, 0.05f, -0.5f, 0.5f)]);
        GradCheck.Assert(t => t[0].Clamp(null, 0.5f), [Away(S, -1, 1, 6, 0.05f, 0.5f)]);
        GradCheck.Assert(t => t[0].Clamp(-0.25f, null), [Away(S, -1, 1, 7, 0.05f, -0.25f)]);
    }

    [Test]
    public void ScalarOperators()
    {
        var x = U(S, -2, 2, 8);
        GradCheck.Assert(t => t[0] * 2.5f, [x]);
        GradCheck.Assert(t => 2.5f * t[0], [x]);
        GradCheck.Assert(t => t[0] + 1f, [x]);
        GradCheck.Assert(t => 1f + t[0], [x]);
        GradCheck.Assert(t => t[0] - 1f, [x]);
        GradCheck.Assert(t => 1f - t[0], [x]);
        GradCheck.Assert(t => t[0] / 3f, [x]);
        GradCheck.Assert(t => 3f / t[0], [Away(S, -3, 3, 9, 0.4f, 0f)]);
    }

    private static readonly (int[] a, int[] b)[] Pairs =
        [([3, 4], [3, 4]), ([2, 3, 4], [3, 1]), ([3, 1], [1, 4]), ([4], [2, 3, 4]), ([], [3, 2]), ([2, 1, 3], [2, 1])];

    [Test]
    public void BroadcastArithmetic()
    {
        ulong seed = 20;
        foreach (var (sa, sb) in Pairs)
        {
            var a = U(sa, -2, 2, seed++);
            var b = U(sb, -2, 2, seed++);
            var bPos = Away(sb, -2, 2, seed++, 0.5f, 0f);
            string what = $"{ShapeUtil.Format(sa)} with {ShapeUtil.Format(sb)}";
            Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0] + t[1], [a, b]), "Add " + what);
            Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0] - t[1], [a, b]), "Sub " + what);
            Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0] * t[1], [a, b]), "Mul " + what);
            Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0] / t[1], [a, bPos]), "Div " + what);
            Assert.DoesNotThrow(() => GradCheck.Assert(t => t[1] / t[0], [bPos, a]), "Div reversed " + what);
        }
    }

    [Test]
    public void MaximumAndMinimumAwayFromTies()
    {
        ulong seed = 40;
        foreach (var (sa, sb) in Pairs)
        {
            // a on a 0.3 grid, b on the same grid shifted by 0.15: |a - b| ≥ 0.15 ≫ eps, so no tie is crossed.
            var a = Tensor.FromSpan(U(sa, -2, 2, seed++).ToArray().Select(v => MathF.Round(v / 0.3f) * 0.3f).ToArray(), sa, null);
            var b = Tensor.FromSpan(U(sb, -2, 2, seed++).ToArray().Select(v => MathF.Round(v / 0.3f) * 0.3f + 0.15f).ToArray(), sb, null);
            Assert.DoesNotThrow(() => GradCheck.Assert(t => Tensor.Maximum(t[0], t[1]), [a, b]), $"Maximum {ShapeUtil.Format(sa)} {ShapeUtil.Format(sb)}");
            Assert.DoesNotThrow(() => GradCheck.Assert(t => Tensor.Minimum(t[0], t[1]), [a, b]), $"Minimum {ShapeUtil.Format(sa)} {ShapeUtil.Format(sb)}");
        }
    }

    [Test]
    public void WhereRoutesGradientsByCondition()
    {
        var cond = Tensor.FromSpan(U([3, 1], 0, 1, 50).ToArray().Select(v => v < 0.5f ? 0f : 1f).ToArray(), [3, 1], null);
        var a = U([3, 4], -1, 1, 51);
        var b = U([4], -1, 1, 52);
        GradCheck.Assert(t => Tensor.Where(t[0], t[1], t[2]), [cond, a, b], check: [false, true, true]);
        GradCheck.Assert(t => Tensor.Where(t[0], t[1], 0.5f), [cond, a], check: [false, true]);
    }

    [Test]
    public void Reductions()
    {
        var x = U([3, 4, 5], -2, 2, 60);
        // Distinct values 0.1 apart (a permutation of a grid), so Max / Min never cross a tie.
        var perm = Enumerable.Range(0, 60).OrderBy(i => (i * 37) % 61).Select(i => i * 0.1f - 3f).ToArray();
        var distinct = Tensor.FromArray(perm, 3, 4, 5);
        int[]?[] axesList = [null, [1], [0, 2], [-1], [0, 1, 2], []];
        foreach (var axes in axesList)
            foreach (bool keep in new[] { false, true })
            {
                string what = $"axes [{string.Join(",", axes ?? [])}] keepDim={keep}";
                Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0].Sum(axes, keep), [x]), "Sum " + what);
                Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0].Mean(axes, keep), [x]), "Mean " + what);
                Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0].LogSumExp(axes, keep), [x]), "LogSumExp " + what);
                Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0].Max(axes, keep), [distinct]), "Max " + what);
                Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0].Min(axes, keep), [distinct]), "Min " + what);
            }
    }

    [Test]
    public void SoftmaxAndLogSoftmax()
    {
        var x = U([3, 4, 5], -3, 3, 70);
        foreach (int axis in new[] { 0, 1, 2, -1 })
        {
            Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0].Softmax(axis), [x]), $"Softmax axis {axis}");
            Assert.DoesNotThrow(() => GradCheck.Assert(t => t[0].LogSoftmax(axis), [x]), $"LogSoftmax axis {axis}");
        }
    }

    [Test]
    public void ExpandAndSumToShape()
    {
        GradCheck.Assert(t => t[0].Expand(2, 3, 4), [U([3, 1], -1, 1, 80)]);
        GradCheck.Assert(t => t[0].Expand(-1, 5), [U([4, 1], -1, 1, 81)]);
        GradCheck.Assert(t => t[0].SumToShape([3, 1]), [U([2, 3, 4], -1, 1, 82)]);
        GradCheck.Assert(t => t[0].SumToShape([]), [U([2, 3], -1, 1, 83)]);
    }

    [Test]
    public void ACompositeExpression()
    {
        // A small loss built from several ops: broadcasting, activations, a reduction and log-softmax.
        var x = U([4, 6], -1, 1, 90);
        var w = U([6], -1, 1, 91);
        var bias = U([4, 1], -1, 1, 92);
        GradCheck.Assert(t => ((t[0] * t[1] + t[2]).Tanh().LogSoftmax(1) * 0.5f).Sum(), [x, w, bias]);
    }
}
