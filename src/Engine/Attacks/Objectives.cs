using Engine.Tensors;

namespace Engine.Attacks;

// Per-sample objectives to minimise, built from differentiable tensor ops so their gradients reach the input.
internal static class Objectives
{
    /// <summary>f_y − max_{j≠y} f_j per sample, from logits [N, C] and a one-hot [N, C]; negative = misclassified.</summary>
    public static Tensor Margin(Tensor logits, Tensor oneHot)
    {
        var trueLogit = (logits * oneHot).Sum(1);
        var bestOther = Tensor.Where(oneHot, float.NegativeInfinity, logits).Max(1);
        return trueLogit - bestOther;
    }

    /// <summary>log p_y per sample (minimising it ascends the cross-entropy).</summary>
    public static Tensor LogProbTrue(Tensor logits, Tensor oneHot) => (logits.LogSoftmax(1) * oneHot).Sum(1);

    /// <summary>
    /// min_k (d − C·f)_k per sample for outputs [N, ...] flattened to [N, O], C [K, O] or [N, K, O], d [K] or [N, K]:
    /// negative when some row of C·f ≤ d is violated.
    /// </summary>
    public static Func<Tensor, Tensor> Spec(Tensor c, Tensor d)
    {
        return output =>
        {
            int n = output.Dims[0];
            var f = output.Reshape(n, -1);
            int o = f.Dims[1];
            if (c.Dims[^1] != o || (c.Rank == 3 && c.Dims[0] != n) || (d.Rank == 2 && d.Dims[0] != n))
                throw new ArgumentException($"Spec: C {ShapeUtil.Format(c.Dims)} and d {ShapeUtil.Format(d.Dims)} do not fit the model output {ShapeUtil.Format(output.Dims)} (C needs [K, {o}] or [{n}, K, {o}], d [K] or [{n}, K]).");
            var cf = c.Rank == 2 ? Tensor.Linear(f, c) : Tensor.Matmul(c, f.Unsqueeze(2)).Reshape(n, c.Dims[1]);
            return (d - cf).Min(1);
        };
    }

    /// <summary>Checks C and d against each other (the output size is checked at the first forward).</summary>
    public static void CheckSpec(string op, Tensor c, Tensor d, Tensor x)
    {
        ArgumentNullException.ThrowIfNull(c);
        ArgumentNullException.ThrowIfNull(d);
        Tensor.CheckSameDevice(c, x, op);
        Tensor.CheckSameDevice(d, x, op);
        int k = c.Rank >= 2 ? c.Dims[^2] : -1;
        bool ok = (c.Rank == 2 || c.Rank == 3 && c.Dims[0] == x.Dims[0]) && k > 0
                  && (d.Rank == 1 && d.Dims[0] == k || d.Rank == 2 && d.Dims[0] == x.Dims[0] && d.Dims[1] == k);
        if (!ok)
            throw new ArgumentException($"{op}: C must be [K, O] or [N, K, O] with K >= 1 and d [K] or [N, K] (N = {x.Dims[0]}), got C {ShapeUtil.Format(c.Dims)} and d {ShapeUtil.Format(d.Dims)}.");
    }
}
