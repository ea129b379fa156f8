using Engine.Onnx.Protobuf;
using AttrType = Engine.Onnx.Protobuf.AttributeProto.Types.AttributeType;

namespace Engine.Onnx.Import;

/// <summary>Typed access to a node's attributes; a wrong type is an <see cref="InvalidDataException"/> naming the node.</summary>
internal sealed class OnnxAttributes
{
    private readonly Dictionary<string, AttributeProto> _byName = new(StringComparer.Ordinal);
    private readonly string _where;

    public OnnxAttributes(NodeProto node, string where)
    {
        _where = where;
        foreach (var a in node.Attribute)
        {
            if (a.RefAttrName.Length > 0)
                throw new NotSupportedException($"{where}: attribute '{a.Name}' refers to a function attribute; functions are not supported.");
            if (!_byName.TryAdd(a.Name, a))
                throw new InvalidDataException($"{where}: attribute '{a.Name}' is given twice.");
        }
    }

    public bool Has(string name) => _byName.ContainsKey(name);

    public long Int(string name, long fallback) => Get(name, AttrType.Int) is { } a ? a.I : fallback;

    public float Float(string name, float fallback) => Get(name, AttrType.Float) is { } a ? a.F : fallback;

    public string String(string name, string fallback) => Get(name, AttrType.String) is { } a ? a.S.ToStringUtf8() : fallback;

    public long[]? Ints(string name) => Get(name, AttrType.Ints) is { } a ? a.Ints.ToArray() : null;

    public float[]? Floats(string name) => Get(name, AttrType.Floats) is { } a ? a.Floats.ToArray() : null;

    public TensorProto? Tensor(string name) => Get(name, AttrType.Tensor)?.T;

    /// <summary>The single attribute among <paramref name="names"/> that is present, or null (Constant's value_* family).</summary>
    public string? OneOf(params string[] names)
    {
        var present = names.Where(_byName.ContainsKey).ToArray();
        if (present.Length > 1)
            throw new InvalidDataException($"{_where}: attributes {string.Join(", ", present)} exclude each other.");
        return present.FirstOrDefault();
    }

    private AttributeProto? Get(string name, AttrType type)
    {
        if (!_byName.TryGetValue(name, out var a)) return null;
        // Old writers leave the type out; the set field then tells it.
        var actual = a.Type != AttrType.Undefined ? a.Type : Infer(a);
        if (actual != type)
            throw new InvalidDataException($"{_where}: attribute '{name}' must be {type.ToString().ToUpperInvariant()}, got {actual.ToString().ToUpperInvariant()}.");
        return a;
    }

    private static AttrType Infer(AttributeProto a)
    {
        if (a.Ints.Count > 0) return AttrType.Ints;
        if (a.Floats.Count > 0) return AttrType.Floats;
        if (a.T != null) return AttrType.Tensor;
        if (a.HasS) return AttrType.String;
        if (a.HasF) return AttrType.Float;
        if (a.HasI) return AttrType.Int;
        return AttrType.Undefined;
    }
}
