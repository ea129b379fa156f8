using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Attacks;

/// <summary>
/// DeepFool (Moosavi-Dezfooli et al. 2016), multi-class L2: each iteration linearises the classifier and steps to
/// the nearest linearised decision boundary; the accumulated step r is applied as x + (1 + overshoot)·r. Exact in
/// one step for an affine binary classifier. Batched; a sample stops moving once it is misclassified.
/// </summary>
public static class DeepFool
{
    // Pushes each step slightly past the linearised boundary (the paper's 1e-4) and keeps norms away from zero.
    private const float Push = 1e-4f, Tiny = 1e-12f;

    /// <summary>Runs DeepFool for at most <paramref name="steps"/> iterations.</summary>
    /// <param name="model">Maps a batch [N, ...] to logits [N, C].</param>
    /// <param name="x">Clean inputs [N, ...], inside the domain.</param>
    /// <param name="labels">True classes [N] (integers stored as floats).</param>
    /// <param name="steps">Maximum iterations (≥ 1).</param>
    /// <param name="overshoot">Relative overshoot past the boundary (≥ 0).</param>
    /// <param name="clipLow">Lower end of the input domain.</param>
    /// <param name="clipHigh">Upper end of the input domain.</param>
    public static AttackResult Attack(AttackModel model, Tensor x, Tensor labels, int steps = 50, float overshoot = 0.02f,
                                      float clipLow = 0f, float clipHigh = 1f)
    {
        const string op = "DeepFool.Attack";
        ArgumentNullException.ThrowIfNull(model);
        if (steps < 1) throw new ArgumentException($"{op}: steps must be >= 1, got {steps}.");
        if (!(overshoot >= 0) || float.IsInfinity(overshoot)) throw new ArgumentException($"{op}: overshoot must be finite and >= 0, got {overshoot}.");
        Checks.Batch(op, x);
        Checks.Labels(op, x, labels);
        Checks.Domain(op, x, clipLow, clipHigh);
        using var _ = model.FreezeParameters();

        int n = x.Dims[0];
        var x0 = x.Detach();
        var adv = x0;
        Tensor? total = null, oneHot = null;
        for (int it = 0; ; it++)
        {
            var xg = adv.Detach().RequiresGrad_();
            var logits = model.Forward(xg);
            oneHot ??= Checks.LogitsAndLabels(op, logits, labels);
            Tensor active;
            using (new NoGrad()) active = Tensor.Eq(logits.Detach().ArgMax(1), labels);
            if (it == steps || active.Max().Item() == 0) break;

            int c = logits.Dims[1];
            // Jacobian rows: one backward per class, each giving ∇ₓ f_k for every sample at once.
            var rows = new Tensor[c];
            for (int k = 0; k < c; k++)
            {
                xg.Grad = null;
                var pick = Tensor.OneHot(Tensor.Full([n], k, x.Device), c);
                if (logits.RequiresGrad) logits.Backward(pick);
                rows[k] = (xg.Grad ?? Tensor.ZerosLike(xg)).Reshape(n, -1);
            }
            using (new NoGrad())
            {
                var f = logits.Detach();
                var jac = Tensor.Stack(rows, 1);                                 // [N, C, D]
                var gradTrue = (jac * oneHot.Unsqueeze(2)).Sum(1, keepDim: true);  // [N, 1, D]
                var w = jac - gradTrue;                                             // w_k = ∇f_k − ∇f_y
                var fDiff = (f - (f * oneHot).Sum(1, keepDim: true)).Abs();         // |f_k − f_y|
                var wNorm = Tensor.Maximum(w.Square().Sum(2).Sqrt(), Tensor.Scalar(Tiny, x.Device));
                var dist = Tensor.Where(oneHot, float.PositiveInfinity, fDiff / wNorm);
                var nearest = Tensor.OneHot(dist.ArgMin(1), c);                     // closest linearised boundary
                var fL = (fDiff * nearest).Sum(1, keepDim: true);                   // [N, 1]
                var wL = (w * nearest.Unsqueeze(2)).Sum(1);                         // [N, D]
                var nL = (wNorm * nearest).Sum(1, keepDim: true);
                var r = wL * ((fL + Push) / (nL * nL) * active.Unsqueeze(1));
                total = total == null ? r : total + r;
                adv = (x0 + (1 + overshoot) * total.Reshape(x0.Shape)).Clamp(clipLow, clipHigh);
            }
        }
        using (new NoGrad())
        {
            var margins = Objectives.Margin(model.Forward(adv), oneHot!);
            return new AttackResult(adv, margins.ToArray());
        }
    }
}
