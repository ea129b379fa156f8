using System.Buffers.Binary;
using System.IO.Compression;
using Engine.Data;
using NUnit.Framework;

namespace Engine.Tests.Data;

public class IdxReaderTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "engine-idx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static byte[] Idx(int magic, int[] dims, byte[] payload)
    {
        var bytes = new byte[4 + 4 * dims.Length + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), dims[i]);
        payload.CopyTo(bytes, 4 + 4 * dims.Length);
        return bytes;
    }

    private static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(data);
        return ms.ToArray();
    }

    private string Write(string name, byte[] bytes)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    private static byte[] Pixels(int n) => Enumerable.Range(0, n).Select(i => (byte)(i * 37 % 256)).ToArray();

    [TestCase(false)]
    [TestCase(true)]
    public void ReadsImagesPlainAndGzipped(bool gzip)
    {
        var pix = Pixels(3 * 4 * 5);
        var raw = Idx(IdxReader.ImagesMagic, [3, 4, 5], pix);
        // The name carries no .gz on purpose: compression is detected from the content.
        var path = Write("images", gzip ? Gzip(raw) : raw);
        var t = IdxReader.ReadImages(path);
        Assert.That(t.Shape, Is.EqualTo(new[] { 3, 1, 4, 5 }));
        var v = t.ToArray();
        for (int i = 0; i < pix.Length; i++) Assert.That(v[i], Is.EqualTo(pix[i] / 255f).Within(1e-7f));
    }

    [Test]
    public void NormalisesImages()
    {
        var pix = new byte[] { 0, 51, 255, 128 };
        var path = Write("images.gz", Gzip(Idx(IdxReader.ImagesMagic, [1, 2, 2], pix)));
        var v = IdxReader.ReadImages(path, (0.5f, 0.25f)).ToArray();
        for (int i = 0; i < pix.Length; i++) Assert.That(v[i], Is.EqualTo((pix[i] / 255f - 0.5f) / 0.25f).Within(1e-5f));
        Assert.Throws<ArgumentException>(() => IdxReader.ReadImages(path, (0.5f, 0f)));
    }

    [Test]
    public void ReadsLabelsAndRejectsOutOfRangeOnes()
    {
        var path = Write("labels", Idx(IdxReader.LabelsMagic, [5], [3, 0, 9, 1, 7]));
        var t = IdxReader.ReadLabels(path, 10);
        Assert.That(t.Shape, Is.EqualTo(new[] { 5 }));
        Assert.That(t.ToArray(), Is.EqualTo(new float[] { 3, 0, 9, 1, 7 }));
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(path, 8));
        Assert.That(ex!.Message, Does.Contain("label 9").And.Contain(path));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void TruncatedDataIsReported(bool gzip)
    {
        var raw = Idx(IdxReader.ImagesMagic, [2, 28, 28], Pixels(2 * 28 * 28));
        var cut = raw[..(raw.Length - 100)];
        var path = Write("truncated", gzip ? Gzip(cut) : cut);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(path));
        Assert.That(ex!.Message, Does.Contain(path).And.Contain("truncated data").And.Contain("[2, 28, 28]"));
    }

    [Test]
    public void TruncatedGzipStreamIsReported()
    {
        var gz = Gzip(Idx(IdxReader.ImagesMagic, [4, 28, 28], Pixels(4 * 28 * 28)));
        var path = Write("cut.gz", gz[..(gz.Length / 2)]);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        Assert.That(ex!.Message, Does.Contain(path));
    }

    [Test]
    public void TruncatedHeaderIsReported()
    {
        var raw = Idx(IdxReader.ImagesMagic, [2, 28, 28], []);
        var path = Write("header", raw[..9]);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        Assert.That(ex!.Message, Does.Contain(path).And.Contain("truncated header"));
        var tiny = Write("tiny", [0, 0]);
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.Read(tiny))!.Message, Does.Contain("too short"));
    }

    [Test]
    public void TrailingBytesAreReported()
    {
        var path = Write("long", Idx(IdxReader.LabelsMagic, [3], [1, 2, 3, 4]));
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(path));
        Assert.That(ex!.Message, Does.Contain("1 unexpected bytes"));
    }

    [TestCase(0x00000d03, "bad magic")]      // float type, not unsigned byte
    [TestCase(0x12340803, "bad magic")]      // non-zero leading bytes
    [TestCase(0x00000800, "dimensions")]     // zero dimensions
    [TestCase(0x00000809, "dimensions")]     // too many dimensions
    public void BadMagicIsReported(int magic, string expected)
    {
        var raw = Idx(IdxReader.LabelsMagic, [4], [1, 2, 3, 4]);
        BinaryPrimitives.WriteInt32BigEndian(raw, magic);
        var path = Write("magic", raw);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        Assert.That(ex!.Message, Does.Contain(path).And.Contain(expected));
    }

    [Test]
    public void WrongRankForImagesOrLabelsIsReported()
    {
        var labels = Write("labels", Idx(IdxReader.LabelsMagic, [4], [1, 2, 3, 4]));
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(labels))!.Message, Does.Contain("3 dimensions"));
        var images = Write("images", Idx(IdxReader.ImagesMagic, [1, 2, 2], [1, 2, 3, 4]));
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.ReadLabels(images))!.Message, Does.Contain("1 dimension"));
        var empty = Write("empty", Idx(IdxReader.ImagesMagic, [3, 0, 5], []));
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.ReadImages(empty))!.Message, Does.Contain("empty"));
    }

    [Test]
    public void HugeDimensionsAreReportedWithoutAllocating()
    {
        var path = Write("huge", Idx(IdxReader.ImagesMagic, [int.MaxValue, 65536, 65536], [1, 2, 3]));
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        Assert.That(ex!.Message, Does.Contain(path).And.Contain("more data than fits"));
    }

    [Test]
    public void CorruptGzipIsReported()
    {
        var gz = Gzip(Idx(IdxReader.LabelsMagic, [64], Pixels(64)));
        gz[gz.Length / 2] ^= 0x55;
        gz[gz.Length - 6] ^= 0xff;  // also break the CRC, so the damage cannot decode to something plausible
        var path = Write("corrupt.gz", gz);
        var ex = Assert.Throws<InvalidDataException>(() => IdxReader.Read(path));
        Assert.That(ex!.Message, Does.Contain(path));
        var garbage = Write("garbage.gz", [0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7]);
        Assert.That(Assert.Throws<InvalidDataException>(() => IdxReader.Read(garbage))!.Message, Does.Contain("corrupt gzip"));
    }

    [Test]
    public void MissingFileThrowsFileNotFound()
        => Assert.Throws<FileNotFoundException>(() => IdxReader.Read(Path.Combine(_dir, "nope")));
}
