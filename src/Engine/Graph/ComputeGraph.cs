using System.Text;

namespace Engine.Graph;

/// <summary>
/// A model as a DAG, the same shape as ONNX: graph inputs, initializers (parameters, buffers, constants) and
/// nodes whose outputs feed later nodes. Immutable once built (<see cref="GraphBuilder.Build"/>); the tensors of
/// initializers are live, so training updates them in place. Named ComputeGraph so that it does not collide with
/// the Engine.Graph namespace inside other Engine namespaces.
/// </summary>
public sealed class ComputeGraph
{
    private readonly Dictionary<string, Value> _byName;
    private readonly Node[][] _consumers;

    internal ComputeGraph(Value[] values, Value[] inputs, Value[] outputs, Node[] nodes)
    {
        Values = values; Inputs = inputs; Outputs = outputs; Nodes = nodes;
        _byName = values.ToDictionary(v => v.Name, StringComparer.Ordinal);
        var lists = values.Select(_ => new List<Node>()).ToArray();
        foreach (var n in nodes)
            foreach (var v in n.Inputs.Distinct())
                lists[v.Id].Add(n);
        _consumers = lists.Select(l => l.ToArray()).ToArray();
    }

    /// <summary>
    /// Moves every initializer (parameters, buffers, constants) to <paramref name="device"/> in place, so that the
    /// graph runs and is bounded on inputs of that device. The tensors stay the same objects (a module whose graph
    /// this is follows). Returns this.
    /// </summary>
    public ComputeGraph To(Engine.Tensors.Device device)
    {
        ArgumentNullException.ThrowIfNull(device);
        foreach (var v in Initializers) v.Data!.MoveDataTo(device);
        return this;
    }

    /// <summary>Every value, indexed by <see cref="Value.Id"/>.</summary>
    public IReadOnlyList<Value> Values { get; }

    /// <summary>The values supplied to each run, in order.</summary>
    public IReadOnlyList<Value> Inputs { get; }

    /// <summary>The values a run returns, in order.</summary>
    public IReadOnlyList<Value> Outputs { get; }

    /// <summary>The nodes in topological order (every node after the producers of its inputs).</summary>
    public IReadOnlyList<Node> Nodes { get; }

    /// <summary>Parameters, buffers and constants.</summary>
    public IEnumerable<Value> Initializers => Values.Where(v => v.IsInitializer);

    /// <summary>Trainable parameters (values of kind <see cref="ValueKind.Parameter"/>).</summary>
    public IEnumerable<Value> Parameters => Values.Where(v => v.Kind == ValueKind.Parameter);

    /// <summary>The nodes that read <paramref name="value"/>, in topological order.</summary>
    public IReadOnlyList<Node> Consumers(Value value) => _consumers[CheckOwned(value).Id];

    /// <summary>The value with this name; throws <see cref="KeyNotFoundException"/> naming it when absent.</summary>
    public Value this[string name]
        => _byName.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"The graph has no value named '{name}'.");

    /// <summary>Looks a value up by name.</summary>
    public bool TryGetValue(string name, out Value value)
    {
        var found = _byName.TryGetValue(name, out var v);
        value = v!;
        return found;
    }

    private Value CheckOwned(Value v)
    {
        if (v.Id >= Values.Count || !ReferenceEquals(Values[v.Id], v))
            throw new ArgumentException($"Value '{v.Name}' does not belong to this graph.");
        return v;
    }

    /// <summary>A readable listing: inputs, initializers, one line per node, outputs.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append("graph(").Append(string.Join(", ", Inputs)).AppendLine(") {");
        foreach (var v in Initializers) sb.Append("  ").AppendLine(v.ToString());
        foreach (var n in Nodes) sb.Append("  ").AppendLine(n.ToString());
        sb.Append("  return ").AppendLine(string.Join(", ", Outputs));
        return sb.Append('}').ToString();
    }
}
