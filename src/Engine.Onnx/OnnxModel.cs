using Engine.Graph;
using Engine.Onnx.Import;

namespace Engine.Onnx;

/// <summary>
/// An ONNX model imported as an Engine <see cref="ComputeGraph"/>. Constants are folded at import time (Shape,
/// Gather, Unsqueeze, Concat, ... on constants disappear), a MatMul or Gemm by a constant becomes a
/// <see cref="LinearOp"/> (with the following constant Add as its bias), Div by a constant stays a
/// <see cref="DivOp"/> (x·(1/c) could differ from x/c by an ulp) unless every 1/c is exact in float32 (c = ±2^k), where
/// it becomes the identical Mul, and inference-form BatchNormalization is folded into the preceding layer where possible; see
/// <see cref="SupportedOps"/>. ONNX initializers that end up as layer weights are graph parameters, other constants
/// are graph constants. The graph's input and output values carry the ONNX names.
/// </summary>
public sealed class OnnxModel
{
    internal OnnxModel(ComputeGraph graph, OnnxTensorInfo[] inputs, OnnxTensorInfo[] outputs, long opset, long irVersion, string producer)
    {
        Graph = graph; Inputs = inputs; Outputs = outputs; OpsetVersion = opset; IrVersion = irVersion; ProducerName = producer;
    }

    /// <summary>The imported graph.</summary>
    public ComputeGraph Graph { get; }

    /// <summary>The model's inputs (initializers listed as inputs, as in IR version 3 files, are not inputs).</summary>
    public IReadOnlyList<OnnxTensorInfo> Inputs { get; }

    /// <summary>The model's outputs, with the shapes the importer computed for the declared input shapes.</summary>
    public IReadOnlyList<OnnxTensorInfo> Outputs { get; }

    /// <summary>The version of the default ONNX operator set the model was written for.</summary>
    public long OpsetVersion { get; }

    /// <summary>The model file's IR version.</summary>
    public long IrVersion { get; }

    /// <summary>The producer_name field (e.g. "pytorch"); empty when absent.</summary>
    public string ProducerName { get; }

    /// <summary>The ONNX operator types the importer understands (some only on constant inputs, as documented in each message).</summary>
    public static IReadOnlyList<string> SupportedOps => OnnxImporter.SupportedOps;

    /// <summary>
    /// Imports a model file. Throws <see cref="InvalidDataException"/> for a file that is not a valid ONNX model
    /// (bad protobuf, missing initializer, wrong attribute, inconsistent shapes) and <see cref="NotSupportedException"/>
    /// for a valid model that uses something the importer does not support; both messages name the node and op.
    /// </summary>
    public static OnnxModel Load(string path, OnnxImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = File.OpenRead(path);
        return Load(stream, options, Path.GetFileName(path));
    }

    /// <summary>Imports a model from a stream (read to its end); see <see cref="Load(string, OnnxImportOptions?)"/>.</summary>
    public static OnnxModel Load(Stream stream, OnnxImportOptions? options = null) => Load(stream, options, "stream");

    /// <summary>Imports a model from its serialized bytes; see <see cref="Load(string, OnnxImportOptions?)"/>.</summary>
    public static OnnxModel Load(byte[] bytes, OnnxImportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Load(new MemoryStream(bytes, writable: false), options, "bytes");
    }

    private static OnnxModel Load(Stream stream, OnnxImportOptions? options, string source)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return OnnxImporter.Import(stream, options ?? OnnxImportOptions.Default, source);
    }
}
