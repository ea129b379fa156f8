using System.Buffers.Binary;
using System.IO.Compression;
using Engine.Tensors;

namespace Engine.Data;

/// <summary>The contents of an unsigned-byte IDX file: its dimensions and its payload in row-major order.</summary>
/// <param name="Dims">The dimensions from the header (outermost first).</param>
/// <param name="Data">The payload, exactly the product of <paramref name="Dims"/> bytes.</param>
public sealed record IdxData(int[] Dims, byte[] Data);

/// <summary>
/// Reads IDX files (the MNIST format: big-endian header 00 00 type ndim, ndim big-endian u32 sizes, then the data),
/// plain or gzip-compressed (detected by the 1f 8b magic, not by the file name). Only the unsigned-byte type (0x08)
/// is supported, which is what MNIST-style image and label files use. Any inconsistency between header and data is
/// an <see cref="InvalidDataException"/> that names the file and the problem; nothing is silently padded or cut.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic number of a label file: unsigned bytes, one dimension.</summary>
    public const int LabelsMagic = 0x0801;
    /// <summary>Magic number of an image file: unsigned bytes, three dimensions (count, rows, columns).</summary>
    public const int ImagesMagic = 0x0803;

    private const byte UnsignedByteType = 0x08;

    /// <summary>Reads an unsigned-byte IDX file of any rank from disk.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a valid unsigned-byte IDX file.</exception>
    public static IdxData Read(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream, path);
    }

    /// <summary>Reads an unsigned-byte IDX file of any rank from a stream; <paramref name="name"/> labels errors.</summary>
    /// <exception cref="InvalidDataException">The stream is not a valid unsigned-byte IDX file.</exception>
    public static IdxData Read(Stream stream, string name)
    {
        byte[] raw = Decompress(stream, name);
        if (raw.Length < 4) throw Bad(name, $"file is {raw.Length} bytes, too short for the 4-byte IDX magic number");
        if (raw[0] != 0 || raw[1] != 0 || raw[2] != UnsignedByteType)
            throw Bad(name, $"bad magic number 0x{BinaryPrimitives.ReadUInt32BigEndian(raw):x8} (expected 0x0000080N: unsigned-byte IDX)");
        int rank = raw[3];
        if (rank < 1 || rank > 4) throw Bad(name, $"unsupported number of dimensions {rank} in the magic number (1 to 4 allowed)");
        int headerBytes = 4 + 4 * rank;
        if (raw.Length < headerBytes) throw Bad(name, $"truncated header: {raw.Length} bytes, the {rank}-dimensional header needs {headerBytes}");

        var dims = new int[rank];
        long expected = 1;
        for (int i = 0; i < rank; i++)
        {
            uint d = BinaryPrimitives.ReadUInt32BigEndian(raw.AsSpan(4 + 4 * i));
            if (d > int.MaxValue) throw Bad(name, $"dimension {i} is {d}, too large");
            dims[i] = (int)d;
            expected *= d;
            if (expected > Array.MaxLength) throw Bad(name, $"dimensions {ShapeUtil.Format(dims[..(i + 1)])} describe more data than fits in memory");
        }

        long actual = raw.Length - headerBytes;
        if (actual < expected)
            throw Bad(name, $"truncated data: header promises {ShapeUtil.Format(dims)} = {expected} bytes, file holds {actual}");
        if (actual > expected)
            throw Bad(name, $"{actual - expected} unexpected bytes after the {ShapeUtil.Format(dims)} data (header and size disagree)");
        return new IdxData(dims, raw.AsSpan(headerBytes).ToArray());
    }

    /// <summary>
    /// Reads an image file (magic 0x0803, N×rows×cols) as a float tensor [N, 1, rows, cols] scaled to [0, 1]; when
    /// <paramref name="normalize"/> is given, each value then becomes (v - mean) / std.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a valid IDX image file.</exception>
    public static Tensor ReadImages(string path, (float Mean, float Std)? normalize = null)
    {
        using var stream = File.OpenRead(path);
        return ReadImages(stream, path, normalize);
    }

    /// <summary>Stream form of <see cref="ReadImages(string, ValueTuple{float, float}?)"/>; <paramref name="name"/> labels errors.</summary>
    /// <exception cref="InvalidDataException">The stream is not a valid IDX image file.</exception>
    public static Tensor ReadImages(Stream stream, string name, (float Mean, float Std)? normalize = null)
    {
        var idx = Read(stream, name);
        if (idx.Dims.Length != 3) throw Bad(name, $"an image file needs 3 dimensions (magic 0x{ImagesMagic:x4}), this one has {idx.Dims.Length}");
        int n = idx.Dims[0], rows = idx.Dims[1], cols = idx.Dims[2];
        if (rows == 0 || cols == 0) throw Bad(name, $"images of size {rows}x{cols} are empty");
        float scale = 1f / 255f, shift = 0f;
        if (normalize is var (mean, std))
        {
            if (!(std > 0) || !float.IsFinite(std) || !float.IsFinite(mean))
                throw new ArgumentException($"ReadImages: normalisation needs a finite mean and a positive std, got mean={mean}, std={std}.");
            // (v/255 - mean)/std folded into one multiply-add per pixel.
            scale = 1f / (255f * std);
            shift = -mean / std;
        }
        var t = Tensor.Empty([n, 1, rows, cols]);
        var dst = t.AsSpan();
        var src = idx.Data;
        for (int i = 0; i < src.Length; i++) dst[i] = src[i] * scale + shift;
        return t;
    }

    /// <summary>
    /// Reads a label file (magic 0x0801) as a float tensor [N] of class indices; every label must be below
    /// <paramref name="numClasses"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a valid IDX label file or holds an out-of-range label.</exception>
    public static Tensor ReadLabels(string path, int numClasses = 256)
    {
        using var stream = File.OpenRead(path);
        return ReadLabels(stream, path, numClasses);
    }

    /// <summary>Stream form of <see cref="ReadLabels(string, int)"/>; <paramref name="name"/> labels errors.</summary>
    /// <exception cref="InvalidDataException">The stream is not a valid IDX label file or holds an out-of-range label.</exception>
    public static Tensor ReadLabels(Stream stream, string name, int numClasses = 256)
    {
        var idx = Read(stream, name);
        if (idx.Dims.Length != 1) throw Bad(name, $"a label file needs 1 dimension (magic 0x{LabelsMagic:x4}), this one has {idx.Dims.Length}");
        var t = Tensor.Empty([idx.Dims[0]]);
        var dst = t.AsSpan();
        var src = idx.Data;
        for (int i = 0; i < src.Length; i++)
        {
            if (src[i] >= numClasses) throw Bad(name, $"label {src[i]} at index {i} is not below the {numClasses} classes");
            dst[i] = src[i];
        }
        return t;
    }

    private static byte[] Decompress(Stream stream, string name)
    {
        using var buffer = new MemoryStream();
        try
        {
            stream.CopyTo(buffer);
        }
        catch (IOException e)
        {
            throw Bad(name, $"read failed: {e.Message}", e);
        }
        byte[] bytes = buffer.ToArray();
        if (bytes.Length < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) return bytes;

        using var output = new MemoryStream();
        try
        {
            using var gz = new GZipStream(new MemoryStream(bytes, writable: false), CompressionMode.Decompress);
            gz.CopyTo(output);
        }
        catch (InvalidDataException e)
        {
            throw Bad(name, $"corrupt gzip data: {e.Message}", e);
        }
        return output.ToArray();
    }

    private static InvalidDataException Bad(string name, string problem, Exception? inner = null)
        => new($"IDX file '{name}': {problem}.", inner);
}
