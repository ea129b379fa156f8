using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// Base of the optimisers: a fixed list of parameters (leaf tensors with RequiresGrad) updated in place from
/// their <see cref="Tensor.Grad"/> by fused kernels. Parameters without a gradient are skipped, as in PyTorch.
/// </summary>
public abstract class Optimizer
{
    private float _lr;

    /// <summary>Takes the parameters to optimise (duplicates are dropped, order kept).</summary>
    protected Optimizer(IEnumerable<Tensor> parameters, float lr)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Params = parameters.Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>().ToArray();
        if (Params.Count == 0) throw new ArgumentException($"{GetType().Name}: the parameter list is empty.");
        foreach (var p in Params)
            if (!p.IsLeaf) throw new ArgumentException($"{GetType().Name}: parameter of shape {ShapeUtil.Format(p.Dims)} is not a leaf tensor (it was computed by an op); optimise leaves only.");
        LearningRate = lr;
        InitialLearningRate = lr;
    }

    /// <summary>The parameters, in the order given.</summary>
    public IReadOnlyList<Tensor> Params { get; }

    /// <summary>The learning rate used by the next <see cref="Step"/>; schedules set it.</summary>
    public float LearningRate
    {
        get => _lr;
        set
        {
            if (!(value >= 0) || float.IsInfinity(value)) throw new ArgumentOutOfRangeException(nameof(value), $"Learning rate must be finite and >= 0, got {value}.");
            _lr = value;
        }
    }

    /// <summary>The learning rate given at construction (schedules scale this).</summary>
    public float InitialLearningRate { get; }

    /// <summary>Number of completed <see cref="Step"/> calls.</summary>
    public int StepCount { get; private set; }

    /// <summary>Updates every parameter that has a gradient.</summary>
    public void Step()
    {
        StepCount++;
        for (int i = 0; i < Params.Count; i++)
        {
            var p = Params[i];
            if (p.Grad is not { } g) continue;
            if (!ShapeUtil.SameShape(g.Dims, p.Dims))
                throw new InvalidOperationException($"{GetType().Name}: gradient shape {ShapeUtil.Format(g.Dims)} does not match parameter shape {ShapeUtil.Format(p.Dims)}.");
            Tensor.CheckSameDevice(p, g, GetType().Name);
            Update(i, p, g);
        }
    }

    /// <summary>Clears every parameter's gradient (PyTorch's set_to_none behaviour).</summary>
    public void ZeroGrad()
    {
        foreach (var p in Params) p.Grad = null;
    }

    /// <summary>Applies one update to parameter <paramref name="index"/> from its gradient.</summary>
    protected abstract void Update(int index, Tensor param, Tensor grad);

    /// <summary>Throws unless <paramref name="value"/> is finite and at least 0.</summary>
    protected static float NonNegative(float value, string name)
    {
        if (!(value >= 0) || float.IsInfinity(value)) throw new ArgumentOutOfRangeException(name, $"{name} must be finite and >= 0, got {value}.");
        return value;
    }
}
