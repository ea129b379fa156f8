using Engine.Tensors;

namespace Engine.Certify;

/// <summary>The outcome of <see cref="CertifiedLosses.Compute"/> for one batch.</summary>
public sealed class CertifiedLoss
{
    internal CertifiedLoss(Tensor loss, Tensor? cleanLogits, Tensor? robustLoss, Tensor? attackPoint)
    {
        Loss = loss; CleanLogits = cleanLogits; RobustLoss = robustLoss; AttackPoint = attackPoint;
    }

    /// <summary>The scalar loss to minimise (differentiable with respect to the model's parameters).</summary>
    public Tensor Loss { get; }

    /// <summary>The logits of the clean inputs, when the method computed them (null otherwise).</summary>
    public Tensor? CleanLogits { get; }

    /// <summary>The robust term (the loss without the kappa-weighted clean part), when one was computed.</summary>
    public Tensor? RobustLoss { get; }

    /// <summary>The input the adversarial or noise term was evaluated at (the PGD point, SABR's box centre, x + noise); null if none.</summary>
    public Tensor? AttackPoint { get; }
}
