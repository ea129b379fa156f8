using System.Text;
using Engine.Graph;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// Base of every layer and model, like torch.nn.Module: named parameters, buffers and child modules, a
/// training flag, and a forward pass. A module is a graph builder: <see cref="Build"/> adds its ops to a
/// <see cref="GraphBuilder"/>, and <see cref="Forward"/> runs the graph built once from the whole module tree,
/// so a model trained here is the same IR that bound propagation and ONNX import work on. Register
/// parameters, buffers and children in the constructor; the structure is fixed once the first forward runs.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor)> _buffers = [];
    private readonly List<(string Name, Module Module)> _children = [];
    private ComputeGraph? _graph;

    /// <summary>True in training mode (the default), false after <see cref="Eval"/>.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Adds this module's ops to <paramref name="builder"/>, reading <paramref name="input"/>; returns the output value.</summary>
    public abstract Value Build(GraphBuilder builder, Value input);

    /// <summary>
    /// Runs the module on a batch in its current mode (a descendant switched to Eval() stays in evaluation);
    /// differentiable with respect to input and parameters.
    /// </summary>
    public virtual Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Executor.Run(Graph, new ForwardContext(Training), input)[0];
    }

    /// <summary>The module as a one-input, one-output graph (built on first use, then cached).</summary>
    public ComputeGraph Graph => _graph ??= ToGraph();

    /// <summary>
    /// Builds a fresh graph of this module. Parameters and buffers become initializers named by their dotted
    /// paths ("0.weight", "1.running_mean", ...), holding the live tensors.
    /// </summary>
    public ComputeGraph ToGraph()
    {
        var b = new GraphBuilder();
        var x = b.Input("input");
        foreach (var (name, t) in NamedParameters()) b.Parameter(name, t);
        foreach (var (name, t) in NamedBuffers()) b.Buffer(name, t);
        b.Output(Build(b, x));
        return b.Build();
    }

    /// <summary>Registers a trainable tensor under a local name; marks it RequiresGrad. Returns it.</summary>
    protected Tensor RegisterParameter(string name, Tensor parameter)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(parameter);
        if (!parameter.IsLeaf) throw new ArgumentException($"Parameter '{name}' must be a leaf tensor; pass a Detach()ed copy.");
        parameter.RequiresGrad = true;
        _parameters.Add((name, parameter));
        _graph = null;
        return parameter;
    }

    /// <summary>Registers non-trainable state (saved and loaded with the parameters). Returns it.</summary>
    protected Tensor RegisterBuffer(string name, Tensor buffer)
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(buffer);
        _buffers.Add((name, buffer));
        _graph = null;
        return buffer;
    }

    /// <summary>Registers a child module under a local name. Returns it.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        ArgumentNullException.ThrowIfNull(module);
        if (ReferenceEquals(module, this)) throw new ArgumentException("A module cannot contain itself.");
        _children.Add((name, module));
        _graph = null;
        return module;
    }

    /// <summary>Immediate children with their local names.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>Immediate children.</summary>
    public IEnumerable<Module> Children() => _children.Select(c => c.Module);

    /// <summary>This module and every descendant, with dotted paths ("" for this one); each module once.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        var seen = new HashSet<Module>(ReferenceEqualityComparer.Instance);
        return Walk("", this, seen);

        static IEnumerable<(string, Module)> Walk(string prefix, Module m, HashSet<Module> seen)
        {
            if (!seen.Add(m)) yield break;
            yield return (prefix, m);
            foreach (var (name, child) in m._children)
                foreach (var r in Walk(prefix.Length == 0 ? name : $"{prefix}.{name}", child, seen))
                    yield return r;
        }
    }

    /// <summary>Every parameter with its dotted path, each tensor once (shared weights appear under their first name).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters() => Collect(m => m._parameters);

    /// <summary>Every parameter, each once.</summary>
    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    /// <summary>Every buffer with its dotted path.</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers() => Collect(m => m._buffers);

    /// <summary>Every buffer.</summary>
    public IEnumerable<Tensor> Buffers() => NamedBuffers().Select(p => p.Tensor);

    /// <summary>Total number of trainable scalars.</summary>
    public long ParameterCount() => Parameters().Sum(p => (long)p.Numel);

    private IEnumerable<(string, Tensor)> Collect(Func<Module, List<(string Name, Tensor Tensor)>> pick)
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var (path, m) in NamedModules())
            foreach (var (name, t) in pick(m))
                if (seen.Add(t)) yield return (path.Length == 0 ? name : $"{path}.{name}", t);
    }

    /// <summary>Parameters then buffers by dotted path: the live tensors (torch state_dict).</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (n, t) in NamedParameters()) d[n] = t;
        foreach (var (n, t) in NamedBuffers()) d[n] = t;
        return d;
    }

    /// <summary>
    /// Copies values into this module's parameters and buffers in place (so optimisers and graphs keep working).
    /// Shapes must match. With <paramref name="strict"/>, missing and unexpected names are errors; otherwise they are skipped.
    /// Nothing is written unless every check passes.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(state);
        var own = StateDict();
        var problems = new List<string>();
        if (strict)
        {
            var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToArray();
            var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToArray();
            if (missing.Length > 0) problems.Add($"missing: {string.Join(", ", missing)}");
            if (unexpected.Length > 0) problems.Add($"unexpected: {string.Join(", ", unexpected)}");
        }
        foreach (var (name, dst) in own)
            if (state.TryGetValue(name, out var src) && !ShapeUtil.SameShape(src.Dims, dst.Dims))
                problems.Add($"'{name}' has shape {ShapeUtil.Format(src.Dims)} but the module expects {ShapeUtil.Format(dst.Dims)}");
        if (problems.Count > 0) throw new ArgumentException($"LoadStateDict into {GetType().Name}: {string.Join("; ", problems)}.");
        foreach (var (name, dst) in own)
            if (state.TryGetValue(name, out var src))
                dst.CopyFrom(src.Device == dst.Device ? src : src.Detach().To(dst.Device));
    }

    /// <summary>
    /// Moves every parameter and buffer to <paramref name="device"/> in place (torch's <c>module.to(device)</c>): the
    /// tensors stay the same objects, so the layers' properties and the cached graph follow. Gradients are cleared;
    /// create the optimiser after the move (its state is allocated on the parameters' device). Returns this.
    /// </summary>
    public Module To(Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        foreach (var p in Parameters()) p.MoveDataTo(device);
        foreach (var b in Buffers()) b.MoveDataTo(device);
        return this;
    }

    /// <summary>Sets training mode on this module and every descendant. Returns this.</summary>
    public Module Train(bool mode = true)
    {
        foreach (var (_, m) in NamedModules()) m.Training = mode;
        return this;
    }

    /// <summary>Evaluation mode: running statistics in BatchNorm, Dropout off. Returns this.</summary>
    public Module Eval() => Train(false);

    /// <summary>Clears the gradients of every parameter.</summary>
    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.Grad = null;
    }

    /// <summary>Settings shown by <see cref="ToString"/>, e.g. "in=4, out=3".</summary>
    protected virtual string ExtraRepr => "";

    /// <summary>A PyTorch-style tree: Sequential(\n  (0): Linear(in=4, out=3)\n ...).</summary>
    public override string ToString()
    {
        if (_children.Count == 0) return $"{GetType().Name}({ExtraRepr})";
        var sb = new StringBuilder().Append(GetType().Name).Append('(').Append(ExtraRepr).AppendLine();
        foreach (var (name, child) in _children)
            sb.Append("  (").Append(name).Append("): ").AppendLine(child.ToString()!.Replace("\n", "\n  "));
        return sb.Append(')').ToString();
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"Bad member name '{name}': names must be non-empty and contain no '.'.");
        if (_parameters.Any(p => p.Name == name) || _buffers.Any(p => p.Name == name) || _children.Any(c => c.Name == name))
            throw new ArgumentException($"{GetType().Name} already has a member named '{name}'.");
    }
}
