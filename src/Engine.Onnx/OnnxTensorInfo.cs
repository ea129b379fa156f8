namespace Engine.Onnx;

/// <summary>A graph input or output of an imported model: its ONNX name and shape.</summary>
/// <param name="Name">The ONNX tensor name (also the name of the graph value).</param>
/// <param name="Shape">The dimensions; -1 marks a symbolic dimension (e.g. a batch size "N").</param>
public sealed record OnnxTensorInfo(string Name, int[] Shape)
{
    /// <summary>Product of the dimensions, counting symbolic ones as 1 (the number of values of one sample).</summary>
    public int Numel => Shape.Aggregate(1, (n, d) => n * Math.Max(d, 1));

    /// <inheritdoc/>
    public override string ToString() => $"{Name}[{string.Join(", ", Shape.Select(d => d < 0 ? "?" : d.ToString()))}]";
}
