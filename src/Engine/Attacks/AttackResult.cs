using Engine.Tensors;

namespace Engine.Attacks;

/// <summary>Outcome of a classification attack on a batch.</summary>
public sealed class AttackResult
{
    internal AttackResult(Tensor adversarial, float[] margins)
    {
        Adversarial = adversarial;
        Margins = margins;
        Success = margins.Select(m => m < 0).ToArray();
    }

    /// <summary>The adversarial inputs, same shape as the clean batch (detached).</summary>
    public Tensor Adversarial { get; }

    /// <summary>Per sample f_y − max_{j≠y} f_j at <see cref="Adversarial"/>: negative means misclassified.</summary>
    public float[] Margins { get; }

    /// <summary>Per sample: the adversarial input is misclassified (margin &lt; 0; a tie does not count).</summary>
    public bool[] Success { get; }

    /// <summary>Number of successful samples.</summary>
    public int SuccessCount => Success.Count(s => s);

    /// <summary>Fraction of successful samples.</summary>
    public float SuccessRate => Success.Length == 0 ? 0 : SuccessCount / (float)Success.Length;
}

/// <summary>
/// Outcome of a search for points violating a property: per sample the best (lowest-objective) point found.
/// The objective is computed in float32; a verifier re-checks a counterexample before claiming it.
/// </summary>
public sealed class SearchResult
{
    internal SearchResult(Tensor point, Tensor output, float[] objective)
    {
        Point = point;
        Output = output;
        Objective = objective;
        Violated = objective.Select(o => o < 0).ToArray();
    }

    /// <summary>The best point per sample, inside the input set (detached).</summary>
    public Tensor Point { get; }

    /// <summary>The model's output at <see cref="Point"/> (detached).</summary>
    public Tensor Output { get; }

    /// <summary>The objective at <see cref="Point"/> per sample; negative means the property is violated there.</summary>
    public float[] Objective { get; }

    /// <summary>Per sample: a violating point was found (objective &lt; 0).</summary>
    public bool[] Violated { get; }

    /// <summary>True when some sample has a violating point.</summary>
    public bool AnyViolated => Violated.Any(v => v);
}
