using Engine.Tensors;

namespace Engine.Graph;

/// <summary>Run-time settings shared by every op of one concrete forward pass.</summary>
public sealed class ForwardContext
{
    /// <summary>Creates a context.</summary>
    /// <param name="training">Training mode: batch statistics in BatchNorm (and running-stat updates), active Dropout.</param>
    /// <param name="generator">Randomness for stochastic ops that have no generator of their own; null means <see cref="Generator.Default"/>.</param>
    public ForwardContext(bool training = false, Generator? generator = null)
    {
        Training = training; Generator = generator;
    }

    /// <summary>Training mode (as opposed to evaluation / inference).</summary>
    public bool Training { get; }

    /// <summary>Randomness for stochastic ops that were not given their own generator.</summary>
    public Generator? Generator { get; }

    /// <summary>An evaluation-mode context.</summary>
    public static ForwardContext Eval { get; } = new(false);
}
