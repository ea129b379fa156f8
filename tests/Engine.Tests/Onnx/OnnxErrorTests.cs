using NUnit.Framework;
using Engine.Onnx;
using Engine.Onnx.Protobuf;
using Google.Protobuf;

namespace Engine.Tests.Onnx;

/// <summary>Malformed and unsupported models give clear InvalidDataException / NotSupportedException messages, never a crash.</summary>
[TestFixture]
public class OnnxErrorTests
{
    private static OnnxTestModel Mlp() => new OnnxTestModel()
        .Input("x", 1, 4).Output("y").Rand("W", 4, 3).Rand("B", 3)
        .Node("MatMul", ["x", "W"], ["mm"]).Node("Add", ["mm", "B"], ["h"]).Node("Relu", "h", "y");

    [Test]
    public void GarbageBytesAreInvalidData()
    {
        var ex = Assert.Throws<InvalidDataException>(() => OnnxModel.Load([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02]));
        Assert.That(ex!.Message, Does.Contain("ONNX"));
        Assert.Throws<InvalidDataException>(() => OnnxModel.Load([]));
        Assert.Throws<InvalidDataException>(() => OnnxModel.Load("not a model"u8.ToArray()));
    }

    [Test]
    public void MissingFileIsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => OnnxModel.Load(Path.Combine(Path.GetTempPath(), "no-such-model-4711.onnx")));
    }

    [Test]
    public void UnsupportedOpNamesOpAndNode()
    {
        var b = Mlp().Node("Erf", "y", "z");
        b.Proto.Graph.Output[0].Name = "z";
        var ex = Assert.Throws<NotSupportedException>(() => OnnxModel.Load(b.Bytes()));
        Assert.That(ex!.Message, Does.Contain("'Erf'").And.Contain("Erf_3"));
    }

    [Test]
    public void ForeignDomainIsNotSupported()
    {
        var b = Mlp();
        b.Proto.Graph.Node[2].Domain = "com.microsoft";
        var ex = Assert.Throws<NotSupportedException>(() => OnnxModel.Load(b.Bytes()));
        Assert.That(ex!.Message, Does.Contain("com.microsoft"));
    }

    [Test]
    public void MissingInitializerIsNamed()
    {
        var b = Mlp();
        b.Proto.Graph.Initializer.RemoveAt(1); // B
        var ex = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(b.Bytes()));
        Assert.That(ex!.Message, Does.Contain("'B'").And.Contain("Add_1"));
    }

    [Test]
    public void WrongAttributeTypeIsInvalidData()
    {
        var b = new OnnxTestModel().Input("x", 1, 1, 5, 5).Output("y").Rand("w", 1, 1, 3, 3)
            .Node("Conv", ["x", "w"], ["y"], ("strides", 2f));
        var ex = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(b.Bytes()));
        Assert.That(ex!.Message, Does.Contain("strides").And.Contain("INTS").And.Contain("Conv_0"));
    }

    [Test]
    public void BadAttributeValuesAreInvalidData()
    {
        var b = new OnnxTestModel().Input("x", 1, 1, 5, 5).Output("y").Rand("w", 1, 1, 3, 3)
            .Node("Conv", ["x", "w"], ["y"], ("strides", new long[] { 0, 1 }));
        Assert.Throws<InvalidDataException>(() => OnnxModel.Load(b.Bytes()));
        var pads = new OnnxTestModel().Input("x", 1, 1, 5, 5).Output("y").Rand("w", 1, 1, 3, 3)
            .Node("Conv", ["x", "w"], ["y"], ("pads", new long[] { 1, 1 }));
        Assert.Throws<InvalidDataException>(() => OnnxModel.Load(pads.Bytes()));
        var asym = new OnnxTestModel().Input("x", 1, 1, 5, 5).Output("y").Rand("w", 1, 1, 3, 3)
            .Node("Conv", ["x", "w"], ["y"], ("pads", new long[] { 0, 0, 1, 1 }));
        Assert.That(Assert.Throws<NotSupportedException>(() => OnnxModel.Load(asym.Bytes()))!.Message, Does.Contain("asymmetric"));
    }

    [Test]
    public void RawDataOfWrongLengthIsInvalidData()
    {
        var b = Mlp();
        var w = b.Proto.Graph.Initializer[0];
        w.RawData = ByteString.CopyFrom(w.RawData.ToByteArray()[..10]);
        var ex = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(b.Bytes()));
        Assert.That(ex!.Message, Does.Contain("'W'").And.Contain("raw_data"));
    }

    [Test]
    public void ShapeMismatchNamesTheNode()
    {
        var b = new OnnxTestModel().Input("x", 1, 5).Output("y").Rand("W", 4, 3).Node("MatMul", ["x", "W"], ["y"]);
        var ex = Assert.Throws<InvalidDataException>(() => OnnxModel.Load(b.Bytes()));
        Assert.That(ex!.Message, Does.Contain("MatMul_0").And.Contain("[1, 5]"));
    }

    [Test]
    public void NonConstantReshapeTargetIsNotSupported()
    {
        var b = new OnnxTestModel().Input("x", 1, 4).Input("s", 2).Output("y").Node("Reshape", ["x", "s"], ["y"]);
        var ex = Assert.Throws<NotSupportedException>(() => OnnxModel.Load(b.Bytes()));
        Assert.That(ex!.Message, Does.Contain("constant"));
    }

    [Test]
    public void CyclesAndUndefinedOutputsAreInvalidData()
    {
        var cyc = new OnnxTestModel().Input("x", 1, 4).Output("y")
            .Node("Add", ["x", "b"], ["a"]).Node("Relu", "a", "b").Node("Relu", "b", "y");
        Assert.That(Assert.Throws<InvalidDataException>(() => OnnxModel.Load(cyc.Bytes()))!.Message, Does.Contain("cycle"));
        var noOut = new OnnxTestModel().Input("x", 1, 4).Output("nothing").Node("Relu", "x", "y");
        Assert.That(Assert.Throws<InvalidDataException>(() => OnnxModel.Load(noOut.Bytes()))!.Message, Does.Contain("'nothing'"));
    }

    [Test]
    public void NodesOutOfOrderAreSorted()
    {
        var b = Mlp();
        var nodes = b.Proto.Graph.Node.Reverse().ToArray();
        b.Proto.Graph.Node.Clear();
        b.Proto.Graph.Node.AddRange(nodes);
        Assert.That(OnnxModel.Load(b.Bytes()).Graph.Nodes.Select(n => n.Op.Type), Is.EqualTo(new[] { "Linear", "Relu" }));
    }

    [Test]
    public void HugeDeclaredDimensionsAreRefused()
    {
        var b = new OnnxTestModel().Input("x", 1, 4).Output("y").Node("Relu", "x", "y");
        b.Proto.Graph.Initializer.Add(new TensorProto { Name = "big", DataType = 1, Dims = { 1L << 40, 1L << 40 } });
        Assert.Throws<InvalidDataException>(() => OnnxModel.Load(b.Bytes()));
        var c = new OnnxTestModel().Input("x", 100000, 100000, 100).Output("y").Node("Relu", "x", "y");
        Assert.Throws<InvalidDataException>(() => OnnxModel.Load(c.Bytes()));
    }

    [Test]
    public void NonFloatInputIsNotSupported()
    {
        var b = Mlp();
        b.Proto.Graph.Input[0].Type.TensorType.ElemType = 7;
        Assert.That(Assert.Throws<NotSupportedException>(() => OnnxModel.Load(b.Bytes()))!.Message, Does.Contain("INT64"));
    }

    /// <summary>Byte flips, truncations and splices of valid models only ever raise the documented exceptions.</summary>
    [Test]
    public void MutatedModelsFailCleanly()
    {
        var seeds = new List<byte[]> { Mlp().Bytes(), CnnBytes() };
        var root = VnnCompData.Root;
        if (root != null) seeds.Add(File.ReadAllBytes(Path.Combine(root, "test", "test_small.onnx")));
        int ok = 0, invalid = 0, unsupported = 0;
        for (int s = 0; s < seeds.Count; s++)
        {
            var rng = new Random(1000 + s);
            for (int trial = 0; trial < 300; trial++)
            {
                var bytes = Mutate(seeds[s], rng);
                try { OnnxModel.Load(bytes); ok++; }
                catch (InvalidDataException) { invalid++; }
                catch (NotSupportedException) { unsupported++; }
                catch (Exception ex)
                {
                    Assert.Fail($"seed {s} trial {trial}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        }
        Assert.That(invalid + unsupported, Is.GreaterThan(0));
        TestContext.Out.WriteLine($"loaded {ok}, invalid {invalid}, unsupported {unsupported}");
    }

    private static byte[] CnnBytes() => new OnnxTestModel()
        .Input("x", 1, 2, 6, 6).Output("y").Rand("w", 3, 2, 3, 3).Rand("b", 3).Rand("s", 3).Rand("t", 3).Rand("m", 3)
        .RandRange("v", 0.5f, 1f, 3).Rand("fw", 12, 4).Ints("shape", 1, -1)
        .Node("Conv", ["x", "w", "b"], ["c"], ("pads", new long[] { 1, 1, 1, 1 }))
        .Node("BatchNormalization", ["c", "s", "t", "m", "v"], ["n"])
        .Node("Relu", "n", "r")
        .Node("MaxPool", ["r"], ["p"], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 3, 3 }))
        .Node("Reshape", ["p", "shape"], ["f"])
        .Node("MatMul", ["f", "fw"], ["y"]).Bytes();

    internal static byte[] Mutate(byte[] src, Random rng)
    {
        var b = (byte[])src.Clone();
        switch (rng.Next(4))
        {
            case 0:
                for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1:
                for (int k = rng.Next(1, 4); k > 0; k--) b[rng.Next(b.Length)] = (byte)rng.Next(256);
                return b;
            case 2:
                return b[..rng.Next(b.Length)];
            default:
                // Duplicate a random slice somewhere else.
                int start = rng.Next(b.Length), len = rng.Next(1, Math.Min(64, b.Length - start) + 1), at = rng.Next(b.Length);
                return [.. b[..at], .. b.AsSpan(start, len).ToArray(), .. b[at..]];
        }
    }
}
