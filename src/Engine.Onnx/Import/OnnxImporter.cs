using Engine.Autograd;
using Engine.Graph;
using Engine.Onnx.Protobuf;
using Engine.Tensors;
using Google.Protobuf;

namespace Engine.Onnx.Import;

/// <summary>
/// Turns a ModelProto into a <see cref="ComputeGraph"/>. Nodes are visited in topological order; each ONNX name maps
/// to a <see cref="Sym"/> (constant or graph value). Constant inputs fold at import time; everything else becomes a
/// node of an existing Engine op, and every added node runs once on a probe (zero input of the declared shape) so that
/// shapes are known and a shape error names the ONNX node that caused it.
/// </summary>
internal sealed partial class OnnxImporter
{
    private readonly ModelProto _model;
    private readonly OnnxImportOptions _options;
    private readonly GraphBuilder _b = new();
    private readonly Dictionary<string, Sym> _env = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _uses = new(StringComparer.Ordinal);
    private readonly HashSet<string> _graphOutputs = new(StringComparer.Ordinal);
    private readonly Dictionary<(ConstTensor, ValueKind), Value> _materialized = [];
    private readonly long _opset;

    // The node being imported, for messages.
    private NodeProto _node = new();
    private string _where = "";

    private OnnxImporter(ModelProto model, OnnxImportOptions options, long opset)
    {
        _model = model; _options = options; _opset = opset;
    }

    public static OnnxModel Import(Stream stream, OnnxImportOptions options, string source)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new InvalidDataException($"ONNX: {source} is not a valid ONNX protobuf: {ex.Message}", ex);
        }
        try
        {
            if (model.Graph == null) throw new InvalidDataException($"ONNX: {source} has no graph (is it an ONNX model file?).");
            long opset = -1;
            foreach (var o in model.OpsetImport)
                if (o.Domain is "" or "ai.onnx") opset = o.Version;
            if (opset < 1)
                throw new InvalidDataException($"ONNX: {source} does not import the default operator set (no opset_import for domain \"\").");
            return new OnnxImporter(model, options, opset).Run();
        }
        catch (Exception ex) when (ex is not (InvalidDataException or NotSupportedException or OutOfMemoryException))
        {
            // Anything else means the file holds something the checks above did not anticipate; say so clearly
            // rather than surfacing an internal exception type.
            throw new InvalidDataException($"ONNX: {source} could not be imported: {ex.Message}", ex);
        }
    }

    private OnnxModel Run()
    {
        var g = _model.Graph;
        var inits = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
        foreach (var t in g.Initializer)
        {
            if (string.IsNullOrEmpty(t.Name)) throw new InvalidDataException("ONNX: an initializer has no name.");
            if (!inits.TryAdd(t.Name, t)) throw new InvalidDataException($"ONNX: initializer '{t.Name}' is defined twice.");
        }
        if (g.SparseInitializer.Count > 0)
            throw new NotSupportedException("ONNX: sparse initializers are not supported.");

        // Initializers listed among the inputs (IR version 3 files do this) are defaults, not inputs.
        var inputs = new List<OnnxTensorInfo>();
        foreach (var vi in g.Input)
        {
            if (inits.ContainsKey(vi.Name)) continue;
            if (string.IsNullOrEmpty(vi.Name)) throw new InvalidDataException("ONNX: a graph input has no name.");
            if (_env.ContainsKey(vi.Name)) throw new InvalidDataException($"ONNX: graph input '{vi.Name}' is declared twice.");
            var shape = InputShape(vi);
            var v = _b.Input(vi.Name);
            var probeShape = shape.Select(d => Math.Max(d, 1)).ToArray();
            if ((long)probeShape.Aggregate(1L, (n, d) => n * d) > OnnxTensors.MaxElements)
                throw new InvalidDataException($"ONNX: graph input '{vi.Name}' has shape {OnnxTensors.FormatDims(shape)}, too large.");
            _env[vi.Name] = Sym.Of(v, Tensor.Zeros(probeShape));
            inputs.Add(new OnnxTensorInfo(vi.Name, shape));
        }
        if (inputs.Count == 0) throw new InvalidDataException("ONNX: the graph has no inputs (every input is an initializer).");
        foreach (var (name, t) in inits)
            _env[name] = Sym.Of(OnnxTensors.Decode(t, name));

        var nodes = TopologicalOrder(g);
        foreach (var n in nodes)
            foreach (var i in n.Input)
                if (i.Length > 0) _uses[i] = _uses.GetValueOrDefault(i) + 1;
        foreach (var o in g.Output) _graphOutputs.Add(o.Name);

        using (new NoGrad())
        {
            foreach (var n in nodes)
            {
                _node = n;
                _where = $"ONNX node '{(n.Name.Length > 0 ? n.Name : n.Output.FirstOrDefault() ?? "?")}' ({n.OpType})";
                if (n.Domain is not ("" or "ai.onnx"))
                    throw new NotSupportedException($"{_where}: operator domain '{n.Domain}' is not supported (only the default ONNX domain).");
                if (n.Output.Count == 0 || n.Output[0].Length == 0)
                    throw new InvalidDataException($"{_where}: the node has no output.");
                ImportNode(n);
                foreach (var o in n.Output)
                    if (o.Length > 0 && !_env.ContainsKey(o) && _uses.ContainsKey(o))
                        throw new NotSupportedException($"{_where}: output '{o}' is read by another node, but the importer only produces the node's main output.");
            }
        }

        if (g.Output.Count == 0) throw new InvalidDataException("ONNX: the graph has no outputs.");
        var outputs = new List<OnnxTensorInfo>();
        foreach (var o in g.Output)
        {
            if (!_env.TryGetValue(o.Name, out var s))
                throw new InvalidDataException($"ONNX: graph output '{o.Name}' is not produced by any node.");
            _b.Output(s.IsConst ? Materialize(s.Const!, ValueKind.Constant, o.Name) : s.Value!);
            var shape = s.Shape;
            // Symbolic dimensions the file declares for an output stay symbolic in the report.
            var declared = o.Type?.TensorType?.Shape?.Dim;
            if (declared != null && declared.Count == shape.Length)
                for (int i = 0; i < shape.Length; i++)
                    if (declared[i].ValueCase != TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue) shape[i] = -1;
            outputs.Add(new OnnxTensorInfo(o.Name, shape));
        }
        long opsetOut = _opset;
        return new OnnxModel(_b.Build(), [.. inputs], [.. outputs], opsetOut, _model.IrVersion, _model.ProducerName ?? "");
    }

    private static int[] InputShape(ValueInfoProto vi)
    {
        var tt = vi.Type?.TensorType
            ?? throw new NotSupportedException($"ONNX: graph input '{vi.Name}' is not a tensor.");
        if (tt.ElemType is not (1 or 11))
            throw new NotSupportedException($"ONNX: graph input '{vi.Name}' has element type {OnnxTensors.DescribeType(tt.ElemType)}; only FLOAT (or DOUBLE, read as float) inputs are supported.");
        if (tt.Shape == null)
            throw new NotSupportedException($"ONNX: graph input '{vi.Name}' has no shape; the importer needs the input's rank and sizes.");
        var dims = new int[tt.Shape.Dim.Count];
        if (dims.Length > 16) throw new InvalidDataException($"ONNX: graph input '{vi.Name}' has rank {dims.Length}.");
        for (int i = 0; i < dims.Length; i++)
        {
            var d = tt.Shape.Dim[i];
            if (d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue)
            {
                if (d.DimValue < 1 || d.DimValue > int.MaxValue)
                    throw new InvalidDataException($"ONNX: graph input '{vi.Name}' has invalid dimension {d.DimValue}.");
                dims[i] = (int)d.DimValue;
            }
            else dims[i] = -1;
        }
        return dims;
    }

    /// <summary>The nodes in an order where each comes after the producers of its inputs (the file's order when it already is one).</summary>
    private static List<NodeProto> TopologicalOrder(GraphProto g)
    {
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < g.Node.Count; i++)
            foreach (var o in g.Node[i].Output)
                if (o.Length > 0 && !producer.TryAdd(o, i))
                    throw new InvalidDataException($"ONNX: tensor '{o}' is produced by more than one node.");
        var state = new byte[g.Node.Count]; // 0 new, 1 on stack, 2 done
        var order = new List<NodeProto>(g.Node.Count);
        var stack = new Stack<(int node, int next)>();
        for (int root = 0; root < g.Node.Count; root++)
        {
            if (state[root] != 0) continue;
            stack.Push((root, 0)); state[root] = 1;
            while (stack.Count > 0)
            {
                var (n, next) = stack.Pop();
                var ins = g.Node[n].Input;
                if (next < ins.Count)
                {
                    stack.Push((n, next + 1));
                    if (producer.TryGetValue(ins[next], out int p))
                    {
                        if (state[p] == 1) throw new InvalidDataException($"ONNX: the graph has a cycle through tensor '{ins[next]}'.");
                        if (state[p] == 0) { state[p] = 1; stack.Push((p, 0)); }
                    }
                    continue;
                }
                state[n] = 2;
                order.Add(g.Node[n]);
            }
        }
        return order;
    }

    // ------------------------------------------------------------------ node inputs and outputs

    private Sym In(int i)
    {
        if (i >= _node.Input.Count || _node.Input[i].Length == 0)
            throw new InvalidDataException($"{_where}: input {i} is missing.");
        return Lookup(_node.Input[i]);
    }

    private Sym? OptIn(int i) => i < _node.Input.Count && _node.Input[i].Length > 0 ? Lookup(_node.Input[i]) : null;

    private Sym Lookup(string name)
        => _env.TryGetValue(name, out var s) ? s
            : throw new InvalidDataException($"{_where}: input '{name}' is neither a graph input, an initializer nor the output of a node.");

    private ConstTensor ConstIn(int i, string what)
    {
        var s = In(i);
        return s.Const ?? throw new NotSupportedException($"{_where}: input {i} ({what}) must be a constant (an initializer or computable from constants).");
    }

    private string Out => _node.Output[0];

    private void SetOut(Sym s) => _env[Out] = s;

    /// <summary>True when only this node reads its input <paramref name="input"/> and it is not a graph output, so the layer that made it may change.</summary>
    private bool SoleUse(int input) => _uses.GetValueOrDefault(_node.Input[input]) == 1 && !_graphOutputs.Contains(_node.Input[input]);

    // ------------------------------------------------------------------ graph construction

    /// <summary>
    /// Adds op applied to ins as a node named <paramref name="name"/>, or, when every input is a constant, evaluates it
    /// and returns the constant. Constant inputs become graph values of the kind given in <paramref name="kinds"/>
    /// (default: constants).
    /// </summary>
    private Sym Emit(string name, Op op, Sym[] ins, ValueKind[]? kinds = null, Func<Sym, AffineLayer>? affine = null)
    {
        if (ins.All(s => s.IsConst))
        {
            var r = RunOp(op, ins.Select(s => s.Const!.ToTensor()).ToArray());
            return Sym.Of(ConstTensor.FromTensor(r));
        }
        var values = new Value[ins.Length];
        for (int i = 0; i < ins.Length; i++)
            values[i] = ins[i].IsConst ? Materialize(ins[i].Const!, kinds?[i] ?? ValueKind.Constant, $"{name}.{i}") : ins[i].Value!;
        var probe = RunOp(op, ins.Select(s => s.Probe ?? s.Const!.ToTensor()).ToArray());
        var v = _b.ApplyNamed(name, op, values);
        var sym = Sym.Of(v, probe);
        return affine == null ? sym : Sym.Of(v, probe, affine(sym));
    }

    private Tensor RunOp(Op op, Tensor[] inputs)
    {
        if (inputs.Any(t => t.Numel > OnnxTensors.MaxElements))
            throw new InvalidDataException($"{_where}: a tensor has more than {OnnxTensors.MaxElements} elements.");
        try
        {
            var r = op.ForwardOutputs(ForwardContext.Eval, inputs)[0];
            if (r.Numel > OnnxTensors.MaxElements)
                throw new InvalidDataException($"{_where}: the result has shape {ShapeUtil.Format(r.Shape)}, more than {OnnxTensors.MaxElements} elements.");
            return r;
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{_where}: {ex.Message} (input shapes {string.Join(", ", inputs.Select(t => ShapeUtil.Format(t.Shape)))})", ex);
        }
    }

    /// <summary>The graph value holding a constant (one value per constant and kind).</summary>
    private Value Materialize(ConstTensor c, ValueKind kind, string fallbackName)
    {
        if (_materialized.TryGetValue((c, kind), out var v)) return v;
        var t = c.ToTensor();
        string name = c.Name ?? fallbackName;
        v = kind switch
        {
            ValueKind.Parameter => _b.Parameter(name, t),
            ValueKind.Buffer => _b.Buffer(name, t),
            _ => _b.Constant(name, t),
        };
        _materialized[(c, kind)] = v;
        return v;
    }
}
