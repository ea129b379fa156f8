using Engine.Tensors;

namespace Engine.Graph;

/// <summary>2-D max pooling over NCHW (ONNX MaxPool; padding is -infinity).</summary>
public sealed partial class MaxPool2dOp : Op
{
    /// <summary>Creates the op; stride defaults to the kernel size.</summary>
    public MaxPool2dOp((int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null)
    {
        Kernel = kernel; Stride = stride ?? kernel; Padding = padding ?? (0, 0);
    }

    /// <summary>(height, width) window.</summary>
    public (int H, int W) Kernel { get; }
    /// <summary>(height, width) stride.</summary>
    public (int H, int W) Stride { get; }
    /// <summary>(height, width) padding.</summary>
    public (int H, int W) Padding { get; }

    /// <inheritdoc/>
    public override string Type => "MaxPool";
    /// <inheritdoc/>
    protected override string Attributes => $"kernel={Kernel}, stride={Stride}, padding={Padding}";
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        return Tensor.MaxPool2d(inputs[0], Kernel, Stride, Padding);
    }
}

/// <summary>2-D average pooling over NCHW (ONNX AveragePool).</summary>
public sealed partial class AvgPool2dOp : Op
{
    /// <summary>Creates the op; stride defaults to the kernel size.</summary>
    public AvgPool2dOp((int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null, bool countIncludePad = true)
    {
        Kernel = kernel; Stride = stride ?? kernel; Padding = padding ?? (0, 0); CountIncludePad = countIncludePad;
    }

    /// <summary>(height, width) window.</summary>
    public (int H, int W) Kernel { get; }
    /// <summary>(height, width) stride.</summary>
    public (int H, int W) Stride { get; }
    /// <summary>(height, width) zero padding.</summary>
    public (int H, int W) Padding { get; }
    /// <summary>Whether padded zeros count in the divisor.</summary>
    public bool CountIncludePad { get; }

    /// <inheritdoc/>
    public override string Type => "AveragePool";
    /// <inheritdoc/>
    protected override string Attributes => $"kernel={Kernel}, stride={Stride}, padding={Padding}, count_include_pad={CountIncludePad}";
    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        return Tensor.AvgPool2d(inputs[0], Kernel, Stride, Padding, CountIncludePad);
    }
}
