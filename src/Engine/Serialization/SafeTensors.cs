using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Engine.Tensors;

namespace Engine.Serialization;

/// <summary>
/// The safetensors format (huggingface/safetensors), the engine's one documented weight format: an 8-byte
/// little-endian header length N, N bytes of UTF-8 JSON mapping each tensor name to
/// {"dtype", "shape", "data_offsets": [begin, end]} (byte offsets into the data that follows, which the tensors
/// cover back to back) plus an optional "__metadata__" map of strings, then the raw little-endian data.
/// Saving writes F32; loading also accepts F64, F16, BF16 and integer/bool dtypes, converted to float32.
/// Malformed files raise <see cref="InvalidDataException"/> saying what is wrong.
/// </summary>
public static class SafeTensors
{
    /// <summary>The reserved header key holding string metadata.</summary>
    public const string MetadataKey = "__metadata__";

    // The reference implementation refuses larger headers; so do we, so a corrupt length cannot ask for gigabytes.
    private const long MaxHeaderBytes = 100_000_000;

    /// <summary>Writes tensors (in the given order) and optional metadata to a file.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None);
        Save(fs, tensors, metadata);
    }

    /// <summary>Writes tensors (in the given order) and optional metadata to a stream.</summary>
    public static void Save(Stream stream, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, t) in list)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("SafeTensors.Save: tensor names must be non-empty.");
            if (name == MetadataKey) throw new ArgumentException($"SafeTensors.Save: '{MetadataKey}' is reserved for metadata.");
            if (!names.Add(name)) throw new ArgumentException($"SafeTensors.Save: duplicate tensor name '{name}'.");
            ArgumentNullException.ThrowIfNull(t, name);
        }

        var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in list)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", "F32");
                w.WriteStartArray("shape");
                foreach (int d in t.Dims) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                offset += 4L * t.Numel;
                w.WriteNumberValue(offset);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
        long headerLen = (json.Length + 7) / 8 * 8;
        while (json.Length < headerLen) json.WriteByte((byte)' ');

        Span<byte> len = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerLen);
        stream.Write(len);
        json.Position = 0;
        json.CopyTo(stream);
        foreach (var (_, t) in list)
        {
            var data = t.ToArray();
            if (!BitConverter.IsLittleEndian)
                for (int i = 0; i < data.Length; i++)
                    data[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(data[i])));
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
        }
        stream.Flush();
    }

    /// <summary>Reads every tensor of a file (in file order) onto <paramref name="device"/> (default CPU).</summary>
    public static Dictionary<string, Tensor> Load(string path, Device? device = null) => LoadWithMetadata(path, device).Tensors;

    /// <summary>Reads every tensor of a stream (in file order).</summary>
    public static Dictionary<string, Tensor> Load(Stream stream, Device? device = null) => LoadWithMetadata(stream, device).Tensors;

    /// <summary>Reads tensors and metadata from a file.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) LoadWithMetadata(string path, Device? device = null)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            return LoadWithMetadata(fs, device);
        }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }

    /// <summary>Reads tensors and metadata from a stream positioned at the start of a safetensors file.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) LoadWithMetadata(Stream stream, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Span<byte> lenBytes = stackalloc byte[8];
        if (ReadFully(stream, lenBytes) < 8) throw new InvalidDataException("not a safetensors file: truncated before the 8-byte header length.");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > MaxHeaderBytes) throw new InvalidDataException($"header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit (corrupt or not a safetensors file).");
        long? dataLen = stream.CanSeek ? stream.Length - stream.Position - (long)headerLen : null;
        if (dataLen < 0) throw new InvalidDataException($"truncated: the header claims {headerLen} bytes but only {stream.Length - 8} follow the length.");
        var header = new byte[headerLen];
        if (ReadFully(stream, header) < header.Length) throw new InvalidDataException($"truncated inside the {headerLen}-byte header.");

        var entries = ParseHeader(header, out var metadata);
        long covered = 0;
        foreach (var e in entries.OrderBy(e => e.Begin))
        {
            if (e.Begin != covered)
                throw new InvalidDataException(e.Begin > covered
                    ? $"tensor '{e.Name}' starts at byte {e.Begin}, leaving a hole after byte {covered}; tensors must cover the data back to back."
                    : $"tensor '{e.Name}' (bytes {e.Begin}..{e.End}) overlaps the previous tensor, which ends at byte {covered}.");
            covered = e.End;
        }
        if (dataLen is long dl && covered != dl)
            throw new InvalidDataException(covered > dl
                ? $"truncated or offsets out of range: tensors need {covered} data bytes but the file has {dl}."
                : $"the file has {dl} data bytes but the tensors cover only {covered}.");

        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var e in entries.OrderBy(e => e.Begin))
        {
            var raw = new byte[e.End - e.Begin];
            if (ReadFully(stream, raw) < raw.Length)
                throw new InvalidDataException($"truncated inside tensor '{e.Name}' (bytes {e.Begin}..{e.End}).");
            result[e.Name] = Tensor.FromSpan(Decode(raw, e.DType, e.Numel), e.Shape, device);
        }
        // Keep the header's order (what the writer intended), not the storage order.
        var ordered = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var e in entries) ordered[e.Name] = result[e.Name];
        return (ordered, metadata);
    }

    private sealed record Entry(string Name, string DType, int[] Shape, int Numel, long Begin, long End);

    private static List<Entry> ParseHeader(byte[] header, out Dictionary<string, string> metadata)
    {
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"the header is not valid JSON: {ex.Message}", ex);
        }
        using var _ = doc;
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"the header must be a JSON object, not {doc.RootElement.ValueKind}.");

        var entries = new List<Entry>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (!seen.Add(prop.Name)) throw new InvalidDataException($"the header names '{prop.Name}' twice.");
            if (prop.Name == MetadataKey)
            {
                if (prop.Value.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"'{MetadataKey}' must be an object of strings.");
                foreach (var m in prop.Value.EnumerateObject())
                {
                    if (m.Value.ValueKind != JsonValueKind.String) throw new InvalidDataException($"metadata '{m.Name}' must be a string.");
                    metadata[m.Name] = m.Value.GetString()!;
                }
                continue;
            }
            entries.Add(ParseEntry(prop.Name, prop.Value));
        }
        return entries;
    }

    private static Entry ParseEntry(string name, JsonElement e)
    {
        string Bad(string what) => $"tensor '{name}': {what}";
        if (e.ValueKind != JsonValueKind.Object) throw new InvalidDataException(Bad("entry must be an object with dtype, shape and data_offsets."));
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) throw new InvalidDataException(Bad("missing string 'dtype'."));
        string dtype = dt.GetString()!;
        int size = ElementSize(dtype);
        if (size == 0) throw new InvalidDataException(Bad($"unsupported dtype '{dtype}' (supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)."));
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) throw new InvalidDataException(Bad("missing array 'shape'."));
        var shape = new int[sh.GetArrayLength()];
        long numel = 1;
        int k = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int v) || v < 0) throw new InvalidDataException(Bad($"shape entries must be non-negative integers, got {d.GetRawText()}."));
            shape[k++] = v;
            numel *= v;
            if (numel > int.MaxValue) throw new InvalidDataException(Bad("shape has more than 2^31-1 elements."));
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new InvalidDataException(Bad("missing 'data_offsets' [begin, end]."));
        long begin = ReadOffset(off[0], name), end = ReadOffset(off[1], name);
        if (end < begin) throw new InvalidDataException(Bad($"data_offsets [{begin}, {end}] end before they begin."));
        if (end - begin != numel * size)
            throw new InvalidDataException(Bad($"shape {ShapeUtil.Format(shape)} of {dtype} needs {numel * size} bytes but data_offsets [{begin}, {end}] cover {end - begin}."));
        return new Entry(name, dtype, shape, (int)numel, begin, end);
    }

    private static long ReadOffset(JsonElement v, string name)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x) || x < 0)
            throw new InvalidDataException($"tensor '{name}': data_offsets must be non-negative integers, got {v.GetRawText()}.");
        return x;
    }

    private static int ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" => 8,
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => 0,
    };

    private static float[] Decode(byte[] raw, string dtype, int n)
    {
        var r = new float[n];
        ReadOnlySpan<byte> s = raw;
        for (int i = 0; i < n; i++)
        {
            r[i] = dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(s.Slice(4 * i)),
                "F64" => (float)BinaryPrimitives.ReadDoubleLittleEndian(s.Slice(8 * i)),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(s.Slice(2 * i)),
                "BF16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(s.Slice(2 * i)) << 16),
                "I64" => BinaryPrimitives.ReadInt64LittleEndian(s.Slice(8 * i)),
                "I32" => BinaryPrimitives.ReadInt32LittleEndian(s.Slice(4 * i)),
                "I16" => BinaryPrimitives.ReadInt16LittleEndian(s.Slice(2 * i)),
                "I8" => (sbyte)s[i],
                "U8" => s[i],
                "BOOL" => s[i] != 0 ? 1f : 0f,
                _ => throw new InvalidDataException($"unsupported dtype '{dtype}'."),
            };
        }
        return r;
    }

    private static int ReadFully(Stream s, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = s.Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
