using Engine.Attacks;
using Engine.Bounds;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Certify;

/// <summary>
/// The training losses of the <see cref="TrainMethod"/>s, written with the engine's differentiable ops so that their
/// gradients flow through the bound computations (IBP, CROWN-IBP) into the parameters. Bounds are computed on the
/// margin specification (y_true − y_j for every j ≠ y_true) without upper bounds, and the worst-case cross-entropy is
/// the cross-entropy of the logits [0, −m_1 .. −m_{C−1}] with target 0, where m are lower bounds on the margins
/// (the cross-entropy of the worst-case logits). Adversarial points come from <see cref="Pgd.TrainingPoint"/> (evaluation mode,
/// parameters frozen, so the attack leaves the gradients alone).
/// </summary>
public static class CertifiedLosses
{
    private static readonly BoundOptions TrainingBounds = new() { ComputeUpper = false };

    /// <summary>
    /// Per example: the cross-entropy of the logits [0, −m] against class 0, from margin lower bounds
    /// <paramref name="marginLower"/> [B, C − 1] (m_j ≤ y_true − y_j over the set). An upper bound on the cross-entropy
    /// at every point of the set; equal to the clean cross-entropy when m are the exact margins.
    /// </summary>
    public static Tensor WorstCaseCrossEntropyPerExample(Tensor marginLower)
    {
        ArgumentNullException.ThrowIfNull(marginLower);
        if (marginLower.Rank != 2 || marginLower.Dims[0] < 1)
            throw new ArgumentException($"WorstCaseCrossEntropy: margins must be [B, C - 1] with B >= 1, got {ShapeUtil.Format(marginLower.Dims)}.");
        int b = marginLower.Dims[0];
        var z = Tensor.Concat([Tensor.Zeros([b, 1], marginLower.Device), -marginLower], 1);
        return -z.LogSoftmax(1).Narrow(1, 0, 1).Reshape(b);
    }

    /// <summary>The batch mean of <see cref="WorstCaseCrossEntropyPerExample"/>.</summary>
    public static Tensor WorstCaseCrossEntropy(Tensor marginLower) => WorstCaseCrossEntropyPerExample(marginLower).Mean();

    /// <summary>The margin matrix C [B, C − 1, C] of the labels (rows y_true − y_j, j ≠ y_true) on <paramref name="device"/>.</summary>
    public static Tensor MarginMatrix(Tensor labels, int numClasses, Device device)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var c = Spec.Margins(labels, numClasses).C;
        return c.Device == device ? c : c.To(device);
    }

    /// <summary>The margins y_true − y_j [B, C − 1] of logits [B, C] for the margin matrix <paramref name="c"/> [B, C − 1, C].</summary>
    public static Tensor Margins(Tensor logits, Tensor c)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(c);
        if (logits.Rank != 2 || c.Rank != 3 || c.Dims[0] != logits.Dims[0] || c.Dims[2] != logits.Dims[1])
            throw new ArgumentException($"Margins: logits {ShapeUtil.Format(logits.Dims)} do not fit the margin matrix {ShapeUtil.Format(c.Dims)}.");
        return Tensor.Matmul(c, logits.Unsqueeze(-1)).Squeeze(-1);
    }

    /// <summary>
    /// The perturbation set of radius <paramref name="eps"/> in the options' norm: an L∞ box clipped to the input
    /// domain, or an L2 ball.
    /// </summary>
    public static Perturbation PerturbationOf(CertifiedTrainingOptions options, float eps)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Norm == PerturbationNorm.L2 ? Perturbation.L2(eps) : Perturbation.LInf(eps, options.ClipLow, options.ClipHigh);
    }

    /// <summary>IBP worst-case cross-entropy (mean over the batch) over <paramref name="perturbation"/> around x.</summary>
    public static Tensor IbpLoss(Module model, Tensor x, Tensor labels, Perturbation perturbation, int numClasses = 10)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = MarginMatrix(labels, numClasses, x.Device);
        return WorstCaseCrossEntropy(IbpLower(model, x, c, perturbation));
    }

    /// <summary>
    /// Worst-case cross-entropy from beta·CROWN-IBP + (1 − beta)·IBP margin lower bounds (Zhang et al.); beta = 0 is
    /// <see cref="IbpLoss"/>.
    /// </summary>
    public static Tensor CrownIbpLoss(Module model, Tensor x, Tensor labels, Perturbation perturbation, float beta, int numClasses = 10)
    {
        ArgumentNullException.ThrowIfNull(model);
        var c = MarginMatrix(labels, numClasses, x.Device);
        return WorstCaseCrossEntropy(MixedLower(model, x, c, perturbation, beta));
    }

    /// <summary>
    /// The loss of <paramref name="options"/>' method for one batch at the schedule values <paramref name="at"/>;
    /// <paramref name="seed"/> seeds the attack's random start or the noise (the same seed gives the same loss).
    /// Certified methods return kappa·CE(clean) + (1 − kappa)·robust term; with kappa = 1 (the warm-up) only the
    /// clean cross-entropy is computed.
    /// </summary>
    public static CertifiedLoss Compute(Module model, Tensor x, Tensor labels, CertifiedTrainingOptions options, ScheduleValues at, ulong seed = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(at);
        options.Validate();
        if (!(at.Eps >= 0) || float.IsInfinity(at.Eps)) throw new ArgumentException($"CertifiedLosses: eps must be finite and >= 0, got {at.Eps}.");
        if (!(at.Sigma >= 0) || float.IsInfinity(at.Sigma)) throw new ArgumentException($"CertifiedLosses: sigma must be finite and >= 0, got {at.Sigma}.");
        if (!(at.Kappa >= 0 && at.Kappa <= 1)) throw new ArgumentException($"CertifiedLosses: kappa must be in [0, 1], got {at.Kappa}.");
        if (!(at.Beta >= 0 && at.Beta <= 1)) throw new ArgumentException($"CertifiedLosses: beta must be in [0, 1], got {at.Beta}.");
        Tensor.CheckSameDevice(x, labels, "CertifiedLosses");

        switch (options.Method)
        {
            case TrainMethod.Standard:
            {
                var logits = model.Forward(x);
                return new CertifiedLoss(Losses.CrossEntropy(logits, labels), logits, null, null);
            }
            case TrainMethod.Pgd:
            {
                if (at.Eps == 0) goto case TrainMethod.Standard;
                var xa = Attack(model, x, labels, options, at.Eps, seed);
                var loss = Losses.CrossEntropy(model.Forward(xa), labels);
                return new CertifiedLoss(loss, null, loss, xa);
            }
            case TrainMethod.Noise:
            {
                if (at.Sigma == 0) goto case TrainMethod.Standard;
                var xn = x.Detach() + Tensor.Normal(x.Dims, 0f, at.Sigma, new Generator(seed), x.Device);
                var loss = Losses.CrossEntropy(model.Forward(xn), labels);
                return new CertifiedLoss(loss, null, loss, xn);
            }
        }

        // Certified methods: kappa·CE(clean) + (1 − kappa)·robust.
        Tensor? clean = null, cleanLoss = null;
        if (at.Kappa > 0)
        {
            clean = model.Forward(x);
            cleanLoss = Losses.CrossEntropy(clean, labels);
            if (at.Kappa == 1) return new CertifiedLoss(cleanLoss, clean, null, null);
        }
        var (robust, point) = Robust(model, x, labels, options, at, seed);
        var total = cleanLoss == null ? robust : cleanLoss * at.Kappa + robust * (1 - at.Kappa);
        return new CertifiedLoss(total, clean, robust, point);
    }

    private static (Tensor Loss, Tensor? Point) Robust(Module model, Tensor x, Tensor labels, CertifiedTrainingOptions o, ScheduleValues at, ulong seed)
    {
        var c = MarginMatrix(labels, o.NumClasses, x.Device);
        var full = PerturbationOf(o, at.Eps);
        switch (o.Method)
        {
            case TrainMethod.Ibp:
                return (WorstCaseCrossEntropy(IbpLower(model, x, c, full)), null);
            case TrainMethod.CrownIbp:
                return (WorstCaseCrossEntropy(MixedLower(model, x, c, full, at.Beta)), null);
            case TrainMethod.Sabr:
            {
                // Müller et al.: a PGD point x' of the shrunken ball B(x, eps − tau), then IBP over B(x', tau) (clipped to
                // the domain for L∞), which lies inside B(x, eps). With lambda = 1 the centre is x and this is IBP.
                float tau = o.SabrLambda * at.Eps;
                Tensor centre = x;
                if (o.SabrLambda < 1 && at.Eps - tau > 0) centre = Attack(model, x, labels, o, at.Eps - tau, seed);
                return (WorstCaseCrossEntropy(IbpLower(model, centre, c, PerturbationOf(o, tau))), ReferenceEquals(centre, x) ? null : centre);
            }
            case TrainMethod.CcIbp:
            {
                // De Palma et al.: CE of the convex combination of the logit differences, which for margins m is
                // CE([0, −((1 − alpha)·m_adv + alpha·m_IBP)]); alpha = 0 is the CE at the attack point, alpha = 1 the IBP loss.
                var xa = o.Alpha < 1 ? Attack(model, x, labels, o, at.Eps, seed) : null;
                var mAdv = xa != null ? Margins(model.Forward(xa), c) : null;
                var mIbp = o.Alpha > 0 ? IbpLower(model, x, c, full) : null;
                var m = mAdv == null ? mIbp! : mIbp == null ? mAdv : mAdv * (1 - o.Alpha) + mIbp * o.Alpha;
                return (WorstCaseCrossEntropy(m), xa);
            }
            case TrainMethod.MtlIbp:
            {
                var xa = o.Alpha < 1 ? Attack(model, x, labels, o, at.Eps, seed) : null;
                Tensor? adv = xa != null ? Losses.CrossEntropy(model.Forward(xa), labels) : null;
                Tensor? ibp = o.Alpha > 0 ? WorstCaseCrossEntropy(IbpLower(model, x, c, full)) : null;
                var loss = adv == null ? ibp! : ibp == null ? adv : adv * (1 - o.Alpha) + ibp * o.Alpha;
                return (loss, xa);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(o), $"CertifiedLosses: {o.Method} is not a certified method.");
        }
    }

    private static Tensor IbpLower(Module model, Tensor x, Tensor c, Perturbation p)
        => Engine.Bounds.Bounds.Compute(model, x, p, BoundMethod.Ibp, new Spec(c), TrainingBounds).Lower;

    private static Tensor MixedLower(Module model, Tensor x, Tensor c, Perturbation p, float beta)
    {
        if (!(beta >= 0 && beta <= 1)) throw new ArgumentOutOfRangeException(nameof(beta), $"CertifiedLosses: beta must be in [0, 1], got {beta}.");
        // ComputeMixed weighs IBP by its kappa: kappa = 1 − beta puts beta on CROWN-IBP.
        return Engine.Bounds.Bounds.ComputeMixed(model.Graph, x, p, 1 - beta, new Spec(c), TrainingBounds).Lower;
    }

    /// <summary>
    /// A PGD point (detached) of the options' ball of radius <paramref name="radius"/> around x, clipped to the domain:
    /// the last iterate, as adversarial training uses it (<see cref="Pgd.TrainingPoint"/>).
    /// </summary>
    private static Tensor Attack(Module model, Tensor x, Tensor labels, CertifiedTrainingOptions o, float radius, ulong seed)
    {
        int steps = o.ResolvedPgdSteps;
        return Pgd.TrainingPoint(model, x.Detach(), labels, new PgdOptions
        {
            Norm = o.Norm == PerturbationNorm.L2 ? Norm.L2 : Norm.LInf,
            Eps = radius,
            Steps = steps,
            StepSize = o.PgdStepSize,
            RandomStart = true,
            ClipLow = o.ClipLow,
            ClipHigh = o.ClipHigh,
            Seed = seed,
        });
    }
}
