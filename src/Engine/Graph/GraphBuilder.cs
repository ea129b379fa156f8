using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// Builds a <see cref="ComputeGraph"/>: declare inputs and initializers, apply ops to values, mark outputs,
/// then <see cref="Build"/>. Nn layers and the ONNX importer both build graphs through this class. Registering
/// the same tensor twice returns the same value, so weights shared between layers stay one parameter.
/// </summary>
public sealed class GraphBuilder
{
    private readonly List<Value> _values = [];
    private readonly List<Node> _nodes = [];
    private readonly List<Value> _inputs = [];
    private readonly List<Value> _outputs = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly HashSet<string> _nodeNames = new(StringComparer.Ordinal);
    private readonly Dictionary<Tensor, Value> _initializers = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<Value, Value> _remap = new(ReferenceEqualityComparer.Instance);
    private bool _built;

    /// <summary>
    /// Tensors to register in place of others: an initializer declared with a key of this map holds the mapped tensor
    /// instead (<see cref="Nn.ModuleReplica"/> builds its source's graph over its own parameter copies this way).
    /// </summary>
    internal IReadOnlyDictionary<Tensor, Tensor>? Substitutes { get; set; }

    /// <summary>Declares the next graph input.</summary>
    public Value Input(string name = "input")
    {
        var v = NewValue(name, ValueKind.Input, null, null, 0);
        _inputs.Add(v);
        return v;
    }

    /// <summary>A trainable tensor (the live tensor: optimisers update it in place).</summary>
    public Value Parameter(string name, Tensor data) => Initializer(name, ValueKind.Parameter, data);

    /// <summary>Non-trainable state that ops may update in training (e.g. running statistics).</summary>
    public Value Buffer(string name, Tensor data) => Initializer(name, ValueKind.Buffer, data);

    /// <summary>A fixed tensor.</summary>
    public Value Constant(string name, Tensor data) => Initializer(name, ValueKind.Constant, data);

    /// <summary>True when <paramref name="data"/> is already an initializer of this graph.</summary>
    public bool TryGetInitializer(Tensor data, out Value value)
    {
        var found = _initializers.TryGetValue(data, out var v);
        value = v!;
        return found;
    }

    /// <summary>Adds a node applying a single-output op; returns its output.</summary>
    public Value Apply(Op op, params Value[] inputs) => AddNode(op, inputs, null).Outputs[0];

    /// <summary>Adds a node with an explicit name; returns its output.</summary>
    public Value ApplyNamed(string nodeName, Op op, params Value[] inputs) => AddNode(op, inputs, nodeName).Outputs[0];

    /// <summary>Adds a node and returns it (for multi-output ops, use its <see cref="Node.Outputs"/>).</summary>
    public Node AddNode(Op op, Value[] inputs, string? nodeName = null)
    {
        CheckOpen();
        ArgumentNullException.ThrowIfNull(op);
        if (inputs.Length < op.MinInputs || inputs.Length > op.MaxInputs)
            throw new ArgumentException($"{op.Type}: expected {op.MinInputs}..{op.MaxInputs} inputs, got {inputs.Length}.");
        foreach (var v in inputs) CheckOwned(v);
        string name = UniqueName(_nodeNames, nodeName ?? $"{op.Type}_{_nodes.Count}");
        var node = new Node(_nodes.Count, name, op, (Value[])inputs.Clone());
        var outs = new Value[op.OutputCount];
        for (int i = 0; i < outs.Length; i++)
            outs[i] = NewValue(op.OutputCount == 1 ? name : $"{name}:{i}", ValueKind.Intermediate, null, node, i);
        node.Outputs = outs;
        _nodes.Add(node);
        return node;
    }

    /// <summary>Marks a value as the next graph output.</summary>
    public void Output(Value value)
    {
        CheckOpen();
        _outputs.Add(CheckOwned(value));
    }

    /// <summary>
    /// Finishes the graph. Nodes and initializers that no output depends on are dropped; ids are renumbered
    /// densely. The builder cannot be used afterwards.
    /// </summary>
    public ComputeGraph Build()
    {
        CheckOpen();
        if (_outputs.Count == 0) throw new InvalidOperationException("GraphBuilder.Build: the graph has no outputs; call Output(value) first.");
        _built = true;

        var liveNodes = new bool[_nodes.Count];
        var liveValues = new HashSet<Value>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<Value>(_outputs);
        while (stack.Count > 0)
        {
            var v = stack.Pop();
            if (!liveValues.Add(v)) continue;
            if (v.Producer is { } p && !liveNodes[p.Index])
            {
                liveNodes[p.Index] = true;
                foreach (var o in p.Outputs) liveValues.Add(o);
                foreach (var i in p.Inputs) stack.Push(i);
            }
        }
        foreach (var i in _inputs) liveValues.Add(i);

        var token = new object();
        var values = new List<Value>();
        var nodes = new List<Node>();
        // Ops are appended only after their inputs exist, so creation order is already topological.
        foreach (var v in _values)
        {
            if (!liveValues.Contains(v)) continue;
            var nv = new Value(token, values.Count, v.Name, v.Kind, v.Data, null, v.OutputIndex);
            values.Add(nv);
            _remap[v] = nv;
        }
        foreach (var n in _nodes)
        {
            if (!liveNodes[n.Index]) continue;
            var nn = new Node(nodes.Count, n.Name, n.Op, n.Inputs.Select(i => _remap[i]).ToArray());
            var outs = n.Outputs.Select(o => _remap[o]).ToArray();
            foreach (var o in outs) o.Producer = nn;
            nn.Outputs = outs;
            nodes.Add(nn);
        }
        return new ComputeGraph([.. values], _inputs.Select(v => _remap[v]).ToArray(), _outputs.Select(v => _remap[v]).ToArray(), [.. nodes]);
    }

    private Value Initializer(string name, ValueKind kind, Tensor data)
    {
        CheckOpen();
        ArgumentNullException.ThrowIfNull(data);
        if (Substitutes != null && Substitutes.TryGetValue(data, out var substitute)) data = substitute;
        if (_initializers.TryGetValue(data, out var existing)) return existing;
        var v = NewValue(name, kind, data, null, 0);
        _initializers[data] = v;
        return v;
    }

    private Value NewValue(string name, ValueKind kind, Tensor? data, Node? producer, int outputIndex)
    {
        CheckOpen();
        var v = new Value(this, _values.Count, UniqueName(_names, name), kind, data, producer, outputIndex);
        _values.Add(v);
        return v;
    }

    private static string UniqueName(HashSet<string> used, string name)
    {
        if (used.Add(name)) return name;
        for (int k = 1; ; k++)
            if (used.Add($"{name}_{k}")) return $"{name}_{k}";
    }

    private Value CheckOwned(Value v)
    {
        ArgumentNullException.ThrowIfNull(v);
        if (!ReferenceEquals(v.Owner, this)) throw new ArgumentException($"Value '{v.Name}' belongs to another graph or builder.");
        return v;
    }

    private void CheckOpen()
    {
        if (_built) throw new InvalidOperationException("GraphBuilder: Build() was already called; start a new builder.");
    }
}
