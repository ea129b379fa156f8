using System.Buffers.Binary;
using System.Text;
using Engine.Nn;
using Engine.Serialization;
using Engine.Tensors;
using Engine.Tests.Graph;
using NUnit.Framework;

namespace Engine.Tests.Serialization;

public class SafeTensorsTests
{
    private static byte[] Save(IEnumerable<KeyValuePair<string, Tensor>> tensors, Dictionary<string, string>? meta = null)
    {
        var ms = new MemoryStream();
        SafeTensors.Save(ms, tensors, meta);
        return ms.ToArray();
    }

    private static byte[] File(string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var r = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(r, (ulong)h.Length);
        h.CopyTo(r, 8);
        data.CopyTo(r, 8 + h.Length);
        return r;
    }

    private static InvalidDataException Bad(byte[] bytes) => Assert.Throws<InvalidDataException>(() => SafeTensors.Load(new MemoryStream(bytes)))!;

    [Test]
    public void RoundTripKeepsNamesOrderShapesValuesAndMetadata()
    {
        var tensors = new Dictionary<string, Tensor>
        {
            ["b"] = Tensor.Normal([3, 4, 5], 0, 1, new Generator(1)),
            ["a"] = Tensor.FromArray([float.MaxValue, -0f, float.Epsilon], 3),
            ["scalar"] = Tensor.Scalar(2.5f),
            ["empty"] = Tensor.Zeros(0, 3),
        };
        var bytes = Save(tensors, new() { ["format"] = "pt" });
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(n % 8, Is.EqualTo(0UL));
        var (loaded, meta) = SafeTensors.LoadWithMetadata(new MemoryStream(bytes));
        Assert.That(loaded.Keys, Is.EqualTo(tensors.Keys));
        foreach (var (k, t) in tensors)
        {
            Assert.That(loaded[k].Shape, Is.EqualTo(t.Shape), k);
            Assert.That(loaded[k].ToArray(), Is.EqualTo(t.ToArray()), k);
        }
        Assert.That(meta["format"], Is.EqualTo("pt"));
    }

    [Test]
    public void ReadsTheReferenceLayoutAndOtherDtypes()
    {
        // Written by hand as the spec describes; the data section is in a different order from the header.
        var data = new List<byte>();
        data.AddRange(BitConverter.GetBytes((double)1.5));                               // F64 [1] at 0..8
        data.AddRange(BitConverter.GetBytes((Half)(-2.0f)));                             // F16 [1] at 8..10
        data.AddRange(BitConverter.GetBytes((ushort)(BitConverter.SingleToInt32Bits(3f) >> 16))); // BF16 at 10..12
        data.AddRange(BitConverter.GetBytes(7L));                                         // I64 at 12..20
        data.AddRange(new byte[] { 1, 0 });                                               // BOOL [2] at 20..22
        data.AddRange(BitConverter.GetBytes(0.25f));                                      // F32 at 22..26
        string header = """
            {"f32":{"dtype":"F32","shape":[1],"data_offsets":[22,26]},
             "f64":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},
             "f16":{"dtype":"F16","shape":[],"data_offsets":[8,10]},
             "bf16":{"dtype":"BF16","shape":[1],"data_offsets":[10,12]},
             "i64":{"dtype":"I64","shape":[1],"data_offsets":[12,20]},
             "mask":{"dtype":"BOOL","shape":[2],"data_offsets":[20,22]}}  
            """;
        var t = SafeTensors.Load(new MemoryStream(File(header, [.. data])));
        Assert.That(t.Keys, Is.EqualTo(new[] { "f32", "f64", "f16", "bf16", "i64", "mask" }));
        Assert.That(t["f32"].Item(), Is.EqualTo(0.25f));
        Assert.That(t["f64"].Item(), Is.EqualTo(1.5f));
        Assert.That(t["f16"].Item(), Is.EqualTo(-2f));
        Assert.That(t["f16"].Rank, Is.EqualTo(0));
        Assert.That(t["bf16"].Item(), Is.EqualTo(3f));
        Assert.That(t["i64"].Item(), Is.EqualTo(7f));
        Assert.That(t["mask"].ToArray(), Is.EqualTo(new[] { 1f, 0f }));
    }

    [Test]
    public void CorruptFilesGiveClearErrors()
    {
        var good = Save(new Dictionary<string, Tensor> { ["w"] = Tensor.Ones(2, 3), ["b"] = Tensor.Ones(3) });
        Assert.That(Bad(good[..5]).Message, Does.Contain("truncated"));
        Assert.That(Bad(good[..20]).Message, Does.Contain("truncated"));
        Assert.That(Bad(good[..^4]).Message, Does.Contain("truncated").Or.Contain("out of range"));
        Assert.That(Bad([.. good, 0, 0, 0, 0]).Message, Does.Contain("cover only"));
        var huge = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(huge, ulong.MaxValue);
        Assert.That(Bad(huge).Message, Does.Contain("exceeds"));

        var four = new byte[4];
        Assert.That(Bad(File("{\"w\": {\"dtype\": \"F32\",", four)).Message, Does.Contain("not valid JSON"));
        Assert.That(Bad(File("[1, 2]", four)).Message, Does.Contain("JSON object"));
        Assert.That(Bad(File("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}""", four)).Message, Does.Contain("needs 4 bytes"));
        Assert.That(Bad(File("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", four)).Message, Does.Contain("out of range"));
        Assert.That(Bad(File("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", new byte[8])).Message, Does.Contain("hole"));
        Assert.That(Bad(File("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"v":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}""", new byte[6])).Message, Does.Contain("overlaps"));
        Assert.That(Bad(File("""{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}""", new byte[8])).Message, Does.Contain("unsupported dtype 'C64'"));
        Assert.That(Bad(File("""{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}""", four)).Message, Does.Contain("non-negative"));
        Assert.That(Bad(File("""{"w":{"dtype":"F32","shape":[1]}}""", four)).Message, Does.Contain("data_offsets"));
        Assert.That(Bad(File("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", new byte[8])).Message, Does.Contain("twice"));
        Assert.That(Bad(File("""{"__metadata__":{"a":1}}""", [])).Message, Does.Contain("string"));
    }

    [Test]
    public void SaveRejectsBadNames()
    {
        Assert.Throws<ArgumentException>(() => Save([new("x", Tensor.Ones(1)), new("x", Tensor.Ones(1))]));
        Assert.Throws<ArgumentException>(() => Save([new(SafeTensors.MetadataKey, Tensor.Ones(1))]));
    }

    [Test]
    public void ModuleWeightsRoundTripThroughAFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"engine-nn-{Guid.NewGuid():N}.safetensors");
        try
        {
            var a = new Sequential(new ColumnScale(3, 2f), new ColumnScale(3, -1f));
            Init.Normal(((ColumnScale)a[0]).Weight, 0, 1, new Generator(5));
            a.SaveWeights(path, new Dictionary<string, string> { ["arch"] = "test" });
            var b = new Sequential(new ColumnScale(3), new ColumnScale(3));
            b.LoadWeights(path);
            var x = Tensor.Normal([4, 3], 0, 1, new Generator(6));
            Assert.That(b.Forward(x).ToArray(), Is.EqualTo(a.Forward(x).ToArray()));
            Assert.That(SafeTensors.LoadWithMetadata(path).Metadata["arch"], Is.EqualTo("test"));

            var c = new Sequential(new ColumnScale(3), new ColumnScale(4));
            var ex = Assert.Throws<InvalidDataException>(() => c.LoadWeights(path));
            Assert.That(ex!.Message, Does.Contain("1.weight").And.Contain("[4]").And.Contain(path));
            var d = new Sequential(new ColumnScale(3));
            Assert.That(Assert.Throws<InvalidDataException>(() => d.LoadWeights(path))!.Message, Does.Contain("unexpected: 1.weight"));
            d.LoadWeights(path, strict: false);
            Assert.That(((ColumnScale)d[0]).Weight.ToArray(), Is.EqualTo(((ColumnScale)a[0]).Weight.ToArray()));
        }
        finally
        {
            System.IO.File.Delete(path);
        }
    }
}
