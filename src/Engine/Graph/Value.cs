using Engine.Tensors;

namespace Engine.Graph;

/// <summary>What a <see cref="Value"/> is: fed at run time, a stored tensor, or computed by a node.</summary>
public enum ValueKind
{
    /// <summary>A graph input, supplied to every run.</summary>
    Input,
    /// <summary>A trainable tensor (weight, bias); its data is stored on the value.</summary>
    Parameter,
    /// <summary>Non-trainable state that ops may update in training (e.g. BatchNorm running statistics).</summary>
    Buffer,
    /// <summary>A fixed tensor that is neither trained nor updated (e.g. a constant from an ONNX file).</summary>
    Constant,
    /// <summary>The output of a node.</summary>
    Intermediate,
}

/// <summary>
/// An edge of the graph: one tensor-valued slot, produced by a node or held by the graph (inputs and
/// initializers, as in ONNX). Values are handles; the tensors flowing through them at run time are kept by
/// whoever interprets the graph, indexed by <see cref="Id"/>.
/// </summary>
public sealed class Value
{
    internal Value(object owner, int id, string name, ValueKind kind, Tensor? data, Node? producer, int outputIndex)
    {
        Owner = owner; Id = id; Name = name; Kind = kind; Data = data; Producer = producer; OutputIndex = outputIndex;
    }

    // The builder that created this value; used to reject values from another graph.
    internal object Owner { get; }

    /// <summary>Dense index of the value inside its graph (0 .. Values.Count-1).</summary>
    public int Id { get; }

    /// <summary>Unique name within the graph (dotted PyTorch-style names for parameters, e.g. "0.weight").</summary>
    public string Name { get; }

    /// <summary>What kind of value this is.</summary>
    public ValueKind Kind { get; }

    /// <summary>The stored tensor of a parameter, buffer or constant (the live tensor, not a copy); null otherwise.</summary>
    public Tensor? Data { get; }

    /// <summary>The node computing this value; null for inputs and initializers.</summary>
    public Node? Producer { get; internal set; }

    /// <summary>Which output of <see cref="Producer"/> this is.</summary>
    public int OutputIndex { get; }

    /// <summary>True for parameters, buffers and constants: values whose tensor is stored in the graph.</summary>
    public bool IsInitializer => Data != null;

    /// <inheritdoc/>
    public override string ToString() => Data != null ? $"%{Name}:{Kind}{ShapeUtil.Format(Data.Dims)}" : $"%{Name}";
}
