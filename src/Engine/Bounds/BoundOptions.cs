namespace Engine.Bounds;

/// <summary>Settings of a bound computation (the defaults suit verification).</summary>
public sealed class BoundOptions
{
    /// <summary>The defaults.</summary>
    public static BoundOptions Default { get; } = new();

    /// <summary>
    /// Set (on a copy, by <see cref="Bounds.Compute(Graph.ComputeGraph, Tensors.Tensor, Perturbation, BoundMethod, Spec?, BoundOptions?)"/>)
    /// when the intermediate bounds serve IBP alone, so nothing but the next IBP rule reads or differentiates them:
    /// <see cref="IbpFused.Relu"/> may then send its gradient past the pre-activation bounds.
    /// </summary>
    internal bool IbpOnly { get; private set; }

    /// <summary>This, or a copy with <see cref="IbpOnly"/> set.</summary>
    internal BoundOptions ForIbpOnly()
    {
        if (IbpOnly) return this;
        var copy = (BoundOptions)MemberwiseClone();
        copy.IbpOnly = true;
        return copy;
    }

    /// <summary>Compute the upper bounds too (false: the upper bounds are +infinity and CROWN does half the work).</summary>
    public bool ComputeUpper { get; init; } = true;

    /// <summary>
    /// CROWN intermediate bounds: back-substitute only for the neurons IBP cannot show to be stable (and keep the
    /// tighter of the CROWN and IBP bound). A neuron that IBP proves stable is relaxed exactly whatever its bounds,
    /// so this changes no relaxation slope class and saves most of the work (auto_LiRPA's default). False runs
    /// textbook CROWN on every neuron that feeds a nonlinearity.
    /// </summary>
    public bool SparseIntermediates { get; init; } = true;

    /// <summary>
    /// Most intermediate-bound rows (over the examples of a chunk) back-substituted together; null picks a per-device
    /// default: 384 on the CPU (coefficients stay in cache); on other devices as many as keep each coefficient tensor
    /// under 256 MiB and under 1/32 of the device's memory (<see cref="Tensors.Device.TotalMemory"/>), 2^12 to 2^17
    /// rows (fewer, larger kernel launches and gathers).
    /// Chunking changes only the order of work, not the bounds beyond float rounding.
    /// </summary>
    public int? IntermediateChunkRows { get; init; }

    /// <summary>alpha-CROWN: Adam steps on the slopes (the bound is evaluated Iterations + 1 times).</summary>
    public int AlphaIterations { get; init; } = 20;

    /// <summary>alpha-CROWN: Adam learning rate (auto_LiRPA's lr_alpha default).</summary>
    public float AlphaLearningRate { get; init; } = 0.5f;

    /// <summary>alpha-CROWN: the learning rate is multiplied by this after every step (auto_LiRPA's default 0.98).</summary>
    public float AlphaLearningRateDecay { get; init; } = 0.98f;

    /// <summary>
    /// alpha-CROWN: one slope per neuron per spec row (as auto_LiRPA; tighter) when true, one per neuron shared
    /// by all rows of an example when false (less memory).
    /// </summary>
    public bool AlphaPerSpec { get; init; } = true;

    /// <summary>
    /// Relative float32 safety margin: every bound that a sum of products produced (a concretised CROWN bound, an
    /// IBP affine layer) is widened outward by RoundingRelative · (Σ |terms|) + RoundingAbsolute. See
    /// <see cref="Bounds"/> for the argument.
    /// </summary>
    public float RoundingRelative { get; init; } = 1e-5f;

    /// <summary>Absolute float32 safety margin added with <see cref="RoundingRelative"/>.</summary>
    public float RoundingAbsolute { get; init; } = 1e-7f;

    /// <summary>
    /// Let IBP, CROWN and CROWN-IBP take the compiled fast path when it applies (a sequential CPU graph of Linear,
    /// Conv, BatchNorm, constant Add / Sub / Mul, ReLU / LeakyReLU and shape-only ops, when no gradient can be
    /// requested). False forces the generic graph path (for comparisons and tests); the bounds are the same up to
    /// float rounding.
    /// </summary>
    public bool FastPath { get; init; } = true;
}
