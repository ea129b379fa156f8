using NUnit.Framework;
using Engine.Onnx.Protobuf;
using Google.Protobuf;
using AttrType = Engine.Onnx.Protobuf.AttributeProto.Types.AttributeType;
using DataType = Engine.Onnx.Protobuf.TensorProto.Types.DataType;

namespace Engine.Tests.Onnx;

/// <summary>Hand-builds small ONNX models through the generated protobuf classes.</summary>
internal sealed class OnnxTestModel
{
    private readonly ModelProto _model;
    private readonly GraphProto _g = new() { Name = "test" };
    private readonly Random _rng;

    public OnnxTestModel(long opset = 13, int seed = 1)
    {
        _rng = new Random(seed);
        _model = new ModelProto { IrVersion = opset >= 13 ? 7 : 6, ProducerName = "engine-tests", Graph = _g };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    public ModelProto Proto => _model;

    /// <summary>Declares a float input; a negative dimension is symbolic ("N").</summary>
    public OnnxTestModel Input(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "N" } : new TensorShapeProto.Types.Dimension { DimValue = d });
        _g.Input.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1, Shape = shape } } });
        return this;
    }

    public OnnxTestModel Output(string name)
    {
        _g.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        return this;
    }

    /// <summary>A float initializer in raw_data (or float_data) with the given values.</summary>
    public OnnxTestModel Init(string name, float[] data, long[] dims, bool rawData = true)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Float };
        t.Dims.AddRange(dims);
        if (rawData)
        {
            var bytes = new byte[data.Length * 4];
            Buffer.BlockCopy(data, 0, bytes, 0, bytes.Length);
            t.RawData = ByteString.CopyFrom(bytes);
        }
        else t.FloatData.AddRange(data);
        _g.Initializer.Add(t);
        return this;
    }

    /// <summary>A float initializer of uniform random values in [-scale, scale].</summary>
    public OnnxTestModel Rand(string name, params long[] dims) => RandScaled(name, 1f, dims);

    public OnnxTestModel RandScaled(string name, float scale, params long[] dims)
    {
        long n = dims.Aggregate(1L, (a, b) => a * b);
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)((_rng.NextDouble() * 2 - 1) * scale);
        return Init(name, data, dims);
    }

    /// <summary>A float initializer of uniform random values in [lo, hi] (e.g. BatchNorm variances).</summary>
    public OnnxTestModel RandRange(string name, float lo, float hi, params long[] dims)
    {
        long n = dims.Aggregate(1L, (a, b) => a * b);
        var data = new float[n];
        for (int i = 0; i < n; i++) data[i] = (float)(lo + _rng.NextDouble() * (hi - lo));
        return Init(name, data, dims);
    }

    public OnnxTestModel Ints(string name, params long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        t.Dims.Add(values.Length);
        t.Int64Data.AddRange(values);
        _g.Initializer.Add(t);
        return this;
    }

    public OnnxTestModel Doubles(string name, double[] data, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)DataType.Double };
        t.Dims.AddRange(dims);
        t.DoubleData.AddRange(data);
        _g.Initializer.Add(t);
        return this;
    }

    public OnnxTestModel Tensor(TensorProto t)
    {
        _g.Initializer.Add(t);
        return this;
    }

    /// <summary>Adds a node; attribute values may be long, float, string, long[], float[] or TensorProto.</summary>
    public OnnxTestModel Node(string op, string[] inputs, string[] outputs, params (string Name, object Value)[] attrs)
    {
        var n = new NodeProto { OpType = op, Name = $"{op}_{_g.Node.Count}" };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        foreach (var (name, value) in attrs) n.Attribute.Add(Attr(name, value));
        _g.Node.Add(n);
        return this;
    }

    public OnnxTestModel Node(string op, string input, string output, params (string Name, object Value)[] attrs)
        => Node(op, [input], [output], attrs);

    public static AttributeProto Attr(string name, object value)
    {
        var a = new AttributeProto { Name = name };
        switch (value)
        {
            case int i: a.Type = AttrType.Int; a.I = i; break;
            case long l: a.Type = AttrType.Int; a.I = l; break;
            case float f: a.Type = AttrType.Float; a.F = f; break;
            case string s: a.Type = AttrType.String; a.S = ByteString.CopyFromUtf8(s); break;
            case long[] ls: a.Type = AttrType.Ints; a.Ints.AddRange(ls); break;
            case float[] fs: a.Type = AttrType.Floats; a.Floats.AddRange(fs); break;
            case TensorProto t: a.Type = AttrType.Tensor; a.T = t; break;
            default: throw new ArgumentException($"attribute type {value.GetType()}");
        }
        return a;
    }

    public byte[] Bytes() => _model.ToByteArray();
}
