namespace Engine.Graph;

/// <summary>One operation in the graph: an <see cref="Graph.Op"/> applied to input values, producing output values.</summary>
public sealed class Node
{
    internal Node(int index, string name, Op op, Value[] inputs)
    {
        Index = index; Name = name; Op = op; Inputs = inputs; Outputs = [];
    }

    /// <summary>Position of the node in its graph's topological order.</summary>
    public int Index { get; internal set; }

    /// <summary>Unique node name (e.g. "3.Relu" or the ONNX node name).</summary>
    public string Name { get; }

    /// <summary>The operation, which owns the rules for every interpretation of this node.</summary>
    public Op Op { get; }

    /// <summary>Input values, in the order the op expects.</summary>
    public IReadOnlyList<Value> Inputs { get; }

    /// <summary>Output values (<see cref="Op.OutputCount"/> of them).</summary>
    public IReadOnlyList<Value> Outputs { get; internal set; }

    /// <inheritdoc/>
    public override string ToString()
        => $"{string.Join(", ", Outputs)} = {Op}({string.Join(", ", Inputs)})  # {Name}";
}
