using Engine.Tensors;

namespace Engine.Data;

/// <summary>
/// A supervised dataset held as two tensors whose first dimension indexes samples, like torch's TensorDataset:
/// <see cref="Inputs"/> (e.g. images [N, 1, 28, 28]) and <see cref="Targets"/> (e.g. class indices [N] as floats).
/// </summary>
public sealed class TensorDataset
{
    /// <summary>Wraps inputs and targets; both need rank >= 1 and the same size along dimension 0.</summary>
    /// <exception cref="ArgumentException">The ranks or sample counts do not fit.</exception>
    public TensorDataset(Tensor inputs, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        if (inputs.Rank < 1 || targets.Rank < 1 || inputs.Size(0) != targets.Size(0))
            throw new ArgumentException($"TensorDataset: inputs {ShapeUtil.Format(inputs.Shape)} and targets {ShapeUtil.Format(targets.Shape)} need rank >= 1 and the same number of samples in dimension 0.");
        Inputs = inputs;
        Targets = targets;
    }

    /// <summary>All inputs, samples along dimension 0.</summary>
    public Tensor Inputs { get; }
    /// <summary>All targets, samples along dimension 0.</summary>
    public Tensor Targets { get; }
    /// <summary>Number of samples.</summary>
    public int Count => Inputs.Size(0);
}

/// <summary>A training set and a test set.</summary>
/// <param name="Train">The training samples.</param>
/// <param name="Test">The held-out test samples.</param>
public sealed record TrainTestSplit(TensorDataset Train, TensorDataset Test);
