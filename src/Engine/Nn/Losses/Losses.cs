using Engine.Tensors;

namespace Engine.Nn;

/// <summary>Loss functions with PyTorch semantics and mean reduction, built from differentiable tensor ops.</summary>
public static class Losses
{
    /// <summary>
    /// Cross-entropy of logits [N, C] against class indices [N] (integers stored as floats), or against class
    /// probabilities [N, C]; mean over the batch (torch.nn.functional.cross_entropy). With label smoothing ε the
    /// target distribution is (1 - ε) * target + ε / C.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, float labelSmoothing = 0)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"CrossEntropy: labelSmoothing must be in [0, 1], got {labelSmoothing}.");
        Tensor.CheckSameDevice(logits, targets, "CrossEntropy");
        if (logits.Rank != 2 || logits.Dims[0] == 0)
            throw new ArgumentException($"CrossEntropy: logits must be [N, C] with N >= 1, got {ShapeUtil.Format(logits.Dims)}.");
        int n = logits.Dims[0], c = logits.Dims[1];
        Tensor q;
        if (ShapeUtil.SameShape(targets.Dims, logits.Dims)) q = targets;
        else
        {
            CheckClassIndices("CrossEntropy", logits, targets);
            q = Tensor.OneHot(targets, c);
        }
        if (labelSmoothing > 0) q = q * (1 - labelSmoothing) + labelSmoothing / c;
        var logp = logits.LogSoftmax(1);
        return -(q * logp).Sum() / n;
    }

    /// <summary>Mean squared error over all elements (torch.nn.functional.mse_loss); shapes must match.</summary>
    public static Tensor Mse(Tensor prediction, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(prediction);
        ArgumentNullException.ThrowIfNull(target);
        Tensor.CheckSameDevice(prediction, target, "Mse");
        if (!ShapeUtil.SameShape(prediction.Dims, target.Dims))
            throw new ArgumentException($"Mse: prediction {ShapeUtil.Format(prediction.Dims)} and target {ShapeUtil.Format(target.Dims)} must have the same shape.");
        if (prediction.Numel == 0) throw new ArgumentException("Mse: empty input.");
        var d = prediction - target;
        return (d * d).Mean();
    }

    /// <summary>
    /// Multi-class hinge loss (torch.nn.MultiMarginLoss): for logits x [N, C] and class indices y [N],
    /// loss_i = Σ_{j ≠ y_i} max(0, margin - x[y_i] + x[j])^p / C, mean over the batch; p is 1 or 2.
    /// </summary>
    public static Tensor MultiMargin(Tensor logits, Tensor targets, float margin = 1, int p = 1)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        if (p != 1 && p != 2) throw new ArgumentOutOfRangeException(nameof(p), $"MultiMargin: p must be 1 or 2, got {p}.");
        Tensor.CheckSameDevice(logits, targets, "MultiMargin");
        if (logits.Rank != 2 || logits.Dims[0] == 0)
            throw new ArgumentException($"MultiMargin: logits must be [N, C] with N >= 1, got {ShapeUtil.Format(logits.Dims)}.");
        int n = logits.Dims[0], c = logits.Dims[1];
        CheckClassIndices("MultiMargin", logits, targets);
        var onehot = Tensor.OneHot(targets, c);
        var correct = (logits * onehot).Sum([1], keepDim: true);
        var hinge = (logits - correct + margin).Relu() * (1f - onehot);
        if (p == 2) hinge = hinge * hinge;
        return hinge.Sum() / (n * (float)c);
    }

    private static void CheckClassIndices(string op, Tensor logits, Tensor targets)
    {
        int n = logits.Dims[0], c = logits.Dims[1];
        if (targets.Rank != 1 || targets.Dims[0] != n)
            throw new ArgumentException($"{op}: targets must be class indices [{n}] or probabilities {ShapeUtil.Format(logits.Dims)}, got {ShapeUtil.Format(targets.Dims)} for logits {ShapeUtil.Format(logits.Dims)}.");
        // Targets are a small [N] vector; checking them on the host costs little and turns a silent zero row into an error.
        var t = targets.ToArray();
        for (int i = 0; i < t.Length; i++)
            if (!(t[i] >= 0 && t[i] < c) || t[i] != MathF.Floor(t[i]))
                throw new ArgumentException($"{op}: target {i} is {t[i]}, not a class index in [0, {c}).");
    }
}

/// <summary>Base of the loss modules: a function of (prediction, target) returning a scalar.</summary>
public abstract class Loss
{
    /// <summary>The scalar loss.</summary>
    public abstract Tensor Forward(Tensor prediction, Tensor target);
}

/// <summary>Module form of <see cref="Losses.CrossEntropy"/>.</summary>
public sealed class CrossEntropyLoss(float labelSmoothing = 0) : Loss
{
    /// <summary>Label smoothing ε.</summary>
    public float LabelSmoothing { get; } = labelSmoothing;
    /// <inheritdoc/>
    public override Tensor Forward(Tensor prediction, Tensor target) => Losses.CrossEntropy(prediction, target, LabelSmoothing);
}

/// <summary>Module form of <see cref="Losses.Mse"/>.</summary>
public sealed class MseLoss : Loss
{
    /// <inheritdoc/>
    public override Tensor Forward(Tensor prediction, Tensor target) => Losses.Mse(prediction, target);
}

/// <summary>Module form of <see cref="Losses.MultiMargin"/>.</summary>
public sealed class MultiMarginLoss(float margin = 1, int p = 1) : Loss
{
    /// <summary>Margin.</summary>
    public float Margin { get; } = margin;
    /// <summary>Exponent (1 or 2).</summary>
    public int P { get; } = p;
    /// <inheritdoc/>
    public override Tensor Forward(Tensor prediction, Tensor target) => Losses.MultiMargin(prediction, target, Margin, P);
}
