using Engine.Autograd;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Attacks;

/// <summary>
/// The function an attack differentiates: a <see cref="Module"/> or <see cref="ComputeGraph"/> (run in evaluation
/// mode, its parameters kept out of the backward pass so their gradients are neither computed nor touched), or any
/// differentiable <c>Func&lt;Tensor, Tensor&gt;</c> (which the attack runs as given). Converts implicitly from all three.
/// </summary>
public sealed class AttackModel
{
    private readonly Func<Tensor, Tensor> _forward;
    private readonly Func<IEnumerable<Tensor>> _parameters;

    private AttackModel(Func<Tensor, Tensor> forward, Func<IEnumerable<Tensor>> parameters)
    {
        _forward = forward;
        _parameters = parameters;
    }

    /// <summary>A module's graph in evaluation mode (the module's own Training flag is left as it is).</summary>
    public static AttackModel FromModule(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        return new AttackModel(x => Executor.Forward(module.Graph, x, training: false), module.Parameters);
    }

    /// <summary>A one-input, one-output graph in evaluation mode, e.g. an imported ONNX model.</summary>
    public static AttackModel FromGraph(ComputeGraph graph)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (graph.Inputs.Count != 1 || graph.Outputs.Count != 1)
            throw new ArgumentException($"AttackModel: the graph must have one input and one output, it has {graph.Inputs.Count} and {graph.Outputs.Count}.");
        return new AttackModel(x => Executor.Forward(graph, x, training: false),
                               () => graph.Initializers.Select(v => v.Data!));
    }

    /// <summary>
    /// Any differentiable function of a batch. Leaves it reads that require grad (e.g. parameters) receive
    /// gradients from the attack's backward passes; pass a <see cref="Module"/> to avoid that.
    /// </summary>
    public static AttackModel FromFunc(Func<Tensor, Tensor> forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        return new AttackModel(forward, () => []);
    }

    /// <summary>See <see cref="FromModule"/>.</summary>
    public static implicit operator AttackModel(Module module) => FromModule(module);

    /// <summary>See <see cref="FromGraph"/>.</summary>
    public static implicit operator AttackModel(ComputeGraph graph) => FromGraph(graph);

    /// <summary>See <see cref="FromFunc"/>.</summary>
    public static implicit operator AttackModel(Func<Tensor, Tensor> forward) => FromFunc(forward);

    /// <summary>Runs the model on a batch (differentiable with respect to the input).</summary>
    public Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return _forward(input) ?? throw new InvalidOperationException("AttackModel: the model returned null.");
    }

    /// <summary>
    /// Turns RequiresGrad off on the model's parameters until disposed, so backward passes reach only the
    /// attacked input (faster, and training state such as accumulated gradients is left alone).
    /// </summary>
    internal IDisposable FreezeParameters()
    {
        if (!GradMode.IsEnabled)
            throw new InvalidOperationException("Attacks need gradients with respect to the input; run them outside a NoGrad scope.");
        var frozen = _parameters().Where(p => p.IsLeaf && p.RequiresGrad).Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>().ToList();
        foreach (var p in frozen) p.RequiresGrad = false;
        return new Restore(frozen);
    }

    private sealed class Restore(List<Tensor> frozen) : IDisposable
    {
        public void Dispose()
        {
            foreach (var p in frozen) p.RequiresGrad = true;
            frozen.Clear();
        }
    }
}
