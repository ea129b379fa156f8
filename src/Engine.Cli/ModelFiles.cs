using Engine.Graph;
using Engine.Nn;
using Engine.Onnx;
using Engine.Serialization;
using Engine.Data;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>Loading a model file for `engine eval` and `engine certify`: weights saved by `engine train`, or an ONNX model.</summary>
internal static class ModelFiles
{
    /// <summary>A loaded classifier: its graph, the module behind it (null for ONNX), a name, and the per-example input shape.</summary>
    public sealed record Loaded(ComputeGraph Graph, Module? Module, string Name, int[] ExampleShape);

    /// <summary>
    /// Weights saved by `engine train` (safetensors; the architecture from <paramref name="model"/> or the file's
    /// "model" metadata key, built by <see cref="ModelZoo.Create"/>). Missing or mismatched files are clear errors.
    /// </summary>
    public static (Module Net, string Name) LoadWeights(string path, string? model)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Weights file '{path}' does not exist.", path);
        var (tensors, metadata) = SafeTensors.LoadWithMetadata(path);
        string name = model
            ?? (metadata.TryGetValue("model", out var m) ? m : throw new ArgumentException($"'{path}' does not record its architecture; pass --model {string.Join('|', ModelZoo.Names)}."));
        var net = ModelZoo.Create(name);
        try { net.LoadStateDict(tensors); }
        catch (ArgumentException e) { throw new InvalidDataException($"'{path}' does not hold {name} weights: {e.Message}", e); }
        net.Eval();
        return (net, name);
    }

    /// <summary>A safetensors file as <see cref="LoadWeights"/>, or an .onnx file (imported; one input, one output).</summary>
    public static Loaded Load(string path, string? model)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"Model file '{path}' does not exist.", path);
        if (!path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
        {
            var (net, name) = LoadWeights(path, model);
            return new Loaded(net.Graph, net, name, [1, 28, 28]);
        }
        OnnxModel m;
        try { m = OnnxModel.Load(path); }
        catch (NotSupportedException e) { throw new InvalidDataException(e.Message, e); }
        if (m.Inputs.Count != 1 || m.Outputs.Count != 1)
            throw new InvalidDataException($"{path}: a classifier needs one input and one output, the model has {m.Inputs.Count} and {m.Outputs.Count}.");
        var shape = m.Inputs[0].Shape;
        // The first dimension is the batch, whatever the file declares (often 1).
        int[] example = shape.Length > 1 ? shape[1..] : shape;
        if (example.Any(d => d <= 0)) throw new InvalidDataException($"{path}: the input shape [{string.Join(", ", shape)}] is not fixed.");
        return new Loaded(m.Graph, null, Path.GetFileNameWithoutExtension(path), example);
    }

    /// <summary>
    /// The first <paramref name="limit"/> examples of <paramref name="test"/> (all when null), each reshaped to the
    /// model's per-example input shape (an ONNX classifier may take the images flattened); a size mismatch names
    /// <paramref name="file"/>.
    /// </summary>
    public static TensorDataset Examples(TensorDataset test, int[] exampleShape, int? limit, string file)
    {
        int count = Math.Min(limit ?? test.Count, test.Count);
        var x = test.Inputs.NarrowRows(0, count);
        var y = test.Targets.NarrowRows(0, count);
        int per = x.Numel / Math.Max(1, count);
        if (ShapeUtil.Numel(exampleShape) != per)
            throw new InvalidDataException($"{file}: the model takes inputs of shape [{string.Join(", ", exampleShape)}], the data has {per} values per image.");
        return new TensorDataset(x.Reshape([count, .. exampleShape]), y);
    }
}
