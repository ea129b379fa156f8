using Engine.Graph;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// A copy of a module that shares its structure (the same layers build its graph) but owns its parameters: the
/// source's graph built over copies of the source's parameters. Gradients, RequiresGrad and the forward pass of a
/// replica touch only its own tensors, so replicas can train shards of a batch on separate threads
/// (<see cref="DataParallel"/>). Only stateless modules can be replicated: buffers (BatchNorm statistics) and
/// Dropout's random masks would diverge between replicas or share a generator across threads.
/// </summary>
internal sealed class ModuleReplica : Module
{
    private readonly Module _source;
    private readonly Dictionary<Tensor, Tensor> _copies = new(ReferenceEqualityComparer.Instance);
    private readonly Tensor[] _sourceParameters;
    private readonly Tensor[] _parameters;

    /// <summary>A replica of <paramref name="source"/> with copies of its current parameter values.</summary>
    public ModuleReplica(Module source)
    {
        ArgumentNullException.ThrowIfNull(source);
        if (!CanReplicate(source, out var why)) throw new ArgumentException($"ModuleReplica: {why}");
        _source = source;
        _sourceParameters = source.Parameters().ToArray();
        _parameters = new Tensor[_sourceParameters.Length];
        for (int i = 0; i < _sourceParameters.Length; i++)
        {
            var copy = _sourceParameters[i].Detach().Clone();
            _copies[_sourceParameters[i]] = copy;
            // Flat names: the parameters' dotted source paths are not valid local names.
            _parameters[i] = RegisterParameter($"p{i}", copy);
        }
    }

    /// <summary>True when <paramref name="module"/> has no buffers and no Dropout (see the class remarks); otherwise why not.</summary>
    public static bool CanReplicate(Module module, out string why)
    {
        ArgumentNullException.ThrowIfNull(module);
        var buffer = module.NamedBuffers().Select(b => b.Name).FirstOrDefault();
        if (buffer != null) { why = $"the module has state that replicas would not share (buffer '{buffer}')."; return false; }
        if (module.NamedModules().Any(m => m.Module is Dropout)) { why = "the module has Dropout, whose random masks replicas cannot draw independently."; return false; }
        why = "";
        return true;
    }

    /// <summary>The replica's parameters, in the order of the source's <see cref="Module.Parameters"/>.</summary>
    public IReadOnlyList<Tensor> ReplicaParameters => _parameters;

    /// <summary>Copies the source's current parameter values and training mode into the replica.</summary>
    public void Sync()
    {
        for (int i = 0; i < _parameters.Length; i++) _parameters[i].CopyFrom(_sourceParameters[i]);
        Train(_source.Training);
    }

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var outer = builder.Substitutes;
        builder.Substitutes = _copies;
        try { return _source.Build(builder, input); }
        finally { builder.Substitutes = outer; }
    }

    /// <inheritdoc/>
    protected override string ExtraRepr => $"of {_source.GetType().Name}";
}
