using Engine.Graph;

namespace Engine.Nn;

/// <summary>2-D max pooling over NCHW (torch.nn.MaxPool2d); stride defaults to the kernel size.</summary>
public sealed class MaxPool2d : Module
{
    /// <summary>Square window with equal stride and padding on both axes.</summary>
    public MaxPool2d(int kernel, int? stride = null, int padding = 0)
        : this((kernel, kernel), stride is int s ? (s, s) : null, (padding, padding)) { }

    /// <summary>(height, width) window, stride and padding.</summary>
    public MaxPool2d((int H, int W) kernel, (int H, int W)? stride, (int H, int W) padding) { Op = new MaxPool2dOp(kernel, stride, padding); }

    /// <summary>The pooling op with its attributes.</summary>
    public MaxPool2dOp Op { get; }

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(Op, input);

    /// <inheritdoc/>
    protected override string ExtraRepr => $"kernel_size={Op.Kernel}, stride={Op.Stride}, padding={Op.Padding}";
}

/// <summary>2-D average pooling over NCHW (torch.nn.AvgPool2d); stride defaults to the kernel size.</summary>
public sealed class AvgPool2d : Module
{
    /// <summary>Square window with equal stride and padding on both axes.</summary>
    public AvgPool2d(int kernel, int? stride = null, int padding = 0, bool countIncludePad = true)
        : this((kernel, kernel), stride is int s ? (s, s) : null, (padding, padding), countIncludePad) { }

    /// <summary>(height, width) window, stride and padding.</summary>
    public AvgPool2d((int H, int W) kernel, (int H, int W)? stride, (int H, int W) padding, bool countIncludePad = true)
    {
        Op = new AvgPool2dOp(kernel, stride, padding, countIncludePad);
    }

    /// <summary>The pooling op with its attributes.</summary>
    public AvgPool2dOp Op { get; }

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input) => builder.Apply(Op, input);

    /// <inheritdoc/>
    protected override string ExtraRepr => $"kernel_size={Op.Kernel}, stride={Op.Stride}, padding={Op.Padding}";
}
