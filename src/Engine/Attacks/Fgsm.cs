using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Attacks;

/// <summary>Fast gradient sign method (Goodfellow et al. 2015): one LInf step of size eps along the loss gradient's sign.</summary>
public static class Fgsm
{
    /// <summary>
    /// x + eps·sign(∇ₓ loss), clipped to [<paramref name="clipLow"/>, <paramref name="clipHigh"/>]. The model runs in
    /// evaluation mode; its parameters' gradients are left alone.
    /// </summary>
    /// <param name="model">Maps a batch [N, ...] to logits [N, C].</param>
    /// <param name="x">Clean inputs [N, ...], inside the domain.</param>
    /// <param name="labels">True classes [N] (integers stored as floats).</param>
    /// <param name="eps">Step size and LInf radius (≥ 0).</param>
    /// <param name="clipLow">Lower end of the input domain.</param>
    /// <param name="clipHigh">Upper end of the input domain.</param>
    /// <param name="loss">The loss whose gradient sign is followed.</param>
    public static AttackResult Attack(AttackModel model, Tensor x, Tensor labels, float eps,
                                      float clipLow = 0f, float clipHigh = 1f, AttackLoss loss = AttackLoss.CrossEntropy)
    {
        const string op = "Fgsm.Attack";
        ArgumentNullException.ThrowIfNull(model);
        if (!(eps >= 0) || float.IsInfinity(eps)) throw new ArgumentException($"{op}: eps must be finite and >= 0, got {eps}.");
        if (!Enum.IsDefined(loss)) throw new ArgumentException($"{op}: unknown loss {loss}.");
        Checks.Batch(op, x);
        Checks.Labels(op, x, labels);
        Checks.Domain(op, x, clipLow, clipHigh);
        using var _ = model.FreezeParameters();

        var xg = x.Detach().RequiresGrad_();
        var logits = model.Forward(xg);
        var oneHot = Checks.LogitsAndLabels(op, logits, labels);
        var objective = loss == AttackLoss.Margin ? Objectives.Margin(logits, oneHot) : Objectives.LogProbTrue(logits, oneHot);
        var grad = objective.RequiresGrad ? Backward(objective, xg) : Tensor.ZerosLike(x);
        using (new NoGrad())
        {
            var adv = (x.Detach() - eps * grad.Sign()).Clamp(clipLow, clipHigh);
            var margins = Objectives.Margin(model.Forward(adv), oneHot);
            return new AttackResult(adv, margins.ToArray());
        }
    }

    private static Tensor Backward(Tensor objective, Tensor xg)
    {
        objective.Sum().Backward();
        return xg.Grad ?? Tensor.ZerosLike(xg);
    }
}
