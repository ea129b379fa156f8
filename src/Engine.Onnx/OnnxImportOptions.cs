namespace Engine.Onnx;

/// <summary>Choices the ONNX importer makes where more than one faithful graph exists.</summary>
public sealed class OnnxImportOptions
{
    /// <summary>
    /// Fold BatchNormalization (inference form) into the weights and bias of the Conv or Gemm / MatMul that feeds it
    /// when nothing else reads that layer's output (default true). Unfolded BatchNormalization becomes a
    /// <see cref="Engine.Graph.BatchNormOp"/> with its running statistics as buffers, which behaves as training-mode
    /// batch normalisation if the graph is later run with training on.
    /// </summary>
    public bool FoldBatchNorm { get; init; } = true;

    /// <summary>
    /// Merge an Add of a constant that follows a Conv or a matrix product by a constant into that layer's bias
    /// (default true), so that a MatMul + Add pair becomes one <see cref="Engine.Graph.LinearOp"/>.
    /// </summary>
    public bool FuseBias { get; init; } = true;

    /// <summary>The defaults.</summary>
    public static OnnxImportOptions Default { get; } = new();
}
