using Engine.Tensors;

namespace Engine.Graph;

/// <summary>2-D convolution; inputs (x [N, Cin, H, W], weight [Cout, Cin/groups, kH, kW], optional bias [Cout]) — ONNX Conv.</summary>
public sealed partial class Conv2dOp : Op
{
    /// <summary>Creates the op with (height, width) stride, zero padding and dilation.</summary>
    public Conv2dOp((int H, int W) stride, (int H, int W) padding, (int H, int W) dilation, int groups = 1)
    {
        if (stride.H < 1 || stride.W < 1 || dilation.H < 1 || dilation.W < 1 || padding.H < 0 || padding.W < 0 || groups < 1)
            throw new ArgumentException($"Conv: bad attributes stride={stride}, padding={padding}, dilation={dilation}, groups={groups}.");
        Stride = stride; Padding = padding; Dilation = dilation; Groups = groups;
    }

    /// <summary>Creates the op with the same stride, padding and dilation on both axes.</summary>
    public Conv2dOp(int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
        : this((stride, stride), (padding, padding), (dilation, dilation), groups) { }

    /// <summary>(height, width) stride.</summary>
    public (int H, int W) Stride { get; }
    /// <summary>(height, width) zero padding on each side.</summary>
    public (int H, int W) Padding { get; }
    /// <summary>(height, width) dilation.</summary>
    public (int H, int W) Dilation { get; }
    /// <summary>Channel groups.</summary>
    public int Groups { get; }

    /// <inheritdoc/>
    public override string Type => "Conv";
    /// <inheritdoc/>
    public override int MinInputs => 2;
    /// <inheritdoc/>
    public override int MaxInputs => 3;
    /// <inheritdoc/>
    protected override string Attributes => $"stride={Stride}, padding={Padding}, dilation={Dilation}, groups={Groups}";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        return Tensor.Conv2d(inputs[0], inputs[1], inputs.Length > 2 ? inputs[2] : null, Stride, Padding, Dilation, Groups);
    }
}
