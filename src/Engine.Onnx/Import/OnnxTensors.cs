using System.Buffers.Binary;
using Engine.Onnx.Protobuf;
using DataType = Engine.Onnx.Protobuf.TensorProto.Types.DataType;

namespace Engine.Onnx.Import;

/// <summary>Decodes TensorProto payloads (raw_data or the typed repeated fields) into <see cref="ConstTensor"/>s.</summary>
internal static class OnnxTensors
{
    /// <summary>Constants above this many elements are refused, so a corrupt dims field cannot exhaust memory.</summary>
    public const long MaxElements = 1L << 28;

    public static ConstTensor Decode(TensorProto t, string context)
    {
        string name = t.HasName && t.Name.Length > 0 ? t.Name : context;
        if (t.HasDataLocation && t.DataLocation == TensorProto.Types.DataLocation.External)
            throw new NotSupportedException($"ONNX: tensor '{name}' keeps its data in an external file; only embedded data is supported.");
        if (t.Segment != null)
            throw new NotSupportedException($"ONNX: tensor '{name}' is segmented; segmented tensors are not supported.");
        var dims = Dims(t.Dims, $"tensor '{name}'");
        long n = 1;
        foreach (var d in dims) n *= d;
        var type = (DataType)t.DataType;
        var kind = type switch
        {
            DataType.Float or DataType.Double or DataType.Float16 or DataType.Bfloat16 => ConstKind.Real,
            DataType.Int8 or DataType.Uint8 or DataType.Int16 or DataType.Uint16 or DataType.Int32 or DataType.Uint32
                or DataType.Int64 or DataType.Uint64 or DataType.Bool => ConstKind.Integer,
            _ => throw new NotSupportedException($"ONNX: tensor '{name}' has data type {DescribeType(t.DataType)}, which is not supported."),
        };
        var data = new double[n];
        if (t.HasRawData)
        {
            int size = ElementSize(type);
            var raw = t.RawData.Span;
            if (raw.Length != n * size)
                throw new InvalidDataException($"ONNX: tensor '{name}' ({type}, dims {FormatDims(dims)}) has {raw.Length} bytes of raw_data, expected {n * size}.");
            for (int i = 0; i < n; i++) data[i] = ReadRaw(type, raw.Slice(i * size, size));
        }
        else
        {
            int count = type switch
            {
                DataType.Float => t.FloatData.Count,
                DataType.Double => t.DoubleData.Count,
                DataType.Int64 => t.Int64Data.Count,
                DataType.Uint32 or DataType.Uint64 => t.Uint64Data.Count,
                _ => t.Int32Data.Count,
            };
            if (count != n)
                throw new InvalidDataException($"ONNX: tensor '{name}' ({type}, dims {FormatDims(dims)}) has {count} values, expected {n}.");
            for (int i = 0; i < n; i++)
                data[i] = type switch
                {
                    DataType.Float => t.FloatData[i],
                    DataType.Double => t.DoubleData[i],
                    DataType.Int64 => t.Int64Data[i],
                    DataType.Uint32 or DataType.Uint64 => t.Uint64Data[i],
                    // float16 and bfloat16 sit in int32_data as their bit patterns.
                    DataType.Float16 => (double)BitConverter.UInt16BitsToHalf((ushort)t.Int32Data[i]),
                    DataType.Bfloat16 => BitConverter.Int32BitsToSingle(t.Int32Data[i] << 16),
                    _ => t.Int32Data[i],
                };
        }
        return new ConstTensor(dims, data, kind, t.HasName && t.Name.Length > 0 ? t.Name : null);
    }

    /// <summary>Checks ONNX dims (non-negative, bounded) and converts them to int.</summary>
    public static int[] Dims(IReadOnlyList<long> dims, string what)
    {
        if (dims.Count > 16) throw new InvalidDataException($"ONNX: {what} has rank {dims.Count}; at most 16 is supported.");
        var r = new int[dims.Count];
        long n = 1;
        for (int i = 0; i < r.Length; i++)
        {
            long d = dims[i];
            if (d < 0 || d > int.MaxValue) throw new InvalidDataException($"ONNX: {what} has an invalid dimension {d} (dims {FormatDims(dims)}).");
            r[i] = (int)d;
            n = Math.Min(n * Math.Max(d, 1), MaxElements + 1);
        }
        if (n > MaxElements) throw new InvalidDataException($"ONNX: {what} has dims {FormatDims(dims)}, more than {MaxElements} elements.");
        return r;
    }

    public static string FormatDims(IEnumerable<long> dims) => "[" + string.Join(", ", dims) + "]";

    public static string FormatDims(IEnumerable<int> dims) => "[" + string.Join(", ", dims) + "]";

    public static string DescribeType(int type) => Enum.IsDefined(typeof(DataType), type) ? ((DataType)type).ToString().ToUpperInvariant() : $"#{type}";

    private static int ElementSize(DataType type) => type switch
    {
        DataType.Int8 or DataType.Uint8 or DataType.Bool => 1,
        DataType.Int16 or DataType.Uint16 or DataType.Float16 or DataType.Bfloat16 => 2,
        DataType.Float or DataType.Int32 or DataType.Uint32 => 4,
        _ => 8,
    };

    // raw_data is little-endian whatever the host (ONNX IR spec).
    private static double ReadRaw(DataType type, ReadOnlySpan<byte> b) => type switch
    {
        DataType.Float => BinaryPrimitives.ReadSingleLittleEndian(b),
        DataType.Double => BinaryPrimitives.ReadDoubleLittleEndian(b),
        DataType.Float16 => (double)BinaryPrimitives.ReadHalfLittleEndian(b),
        DataType.Bfloat16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16),
        DataType.Int8 => (sbyte)b[0],
        DataType.Uint8 => b[0],
        DataType.Bool => b[0] != 0 ? 1 : 0,
        DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(b),
        DataType.Uint16 => BinaryPrimitives.ReadUInt16LittleEndian(b),
        DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(b),
        DataType.Uint32 => BinaryPrimitives.ReadUInt32LittleEndian(b),
        DataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(b),
        DataType.Uint64 => BinaryPrimitives.ReadUInt64LittleEndian(b),
        _ => throw new NotSupportedException($"ONNX: data type {type} is not supported."),
    };
}
