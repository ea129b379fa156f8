using Engine.Graph;
using Engine.Tensors;

namespace Engine.Nn;

/// <summary>
/// 2-D convolution over NCHW with weight [out, in/groups, kH, kW] (torch.nn.Conv2d), initialised as PyTorch
/// does: W ~ kaiming_uniform(a = sqrt 5), b ~ U(±1/sqrt(fan_in)).
/// </summary>
public sealed class Conv2d : Module
{
    /// <summary>Creates a layer with square kernel and equal stride / padding / dilation on both axes.</summary>
    public Conv2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, int groups = 1,
                  bool bias = true, Generator? generator = null)
        : this(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), (dilation, dilation), groups, bias, generator) { }

    /// <summary>Creates a layer with (height, width) kernel, stride, padding and dilation.</summary>
    public Conv2d(int inChannels, int outChannels, (int H, int W) kernel, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation,
                  int groups = 1, bool bias = true, Generator? generator = null)
    {
        if (inChannels < 1 || outChannels < 1 || groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv2d: channels in={inChannels}, out={outChannels} must be positive multiples of groups={groups}.");
        if (kernel.H < 1 || kernel.W < 1) throw new ArgumentException($"Conv2d: kernel {kernel} must be positive.");
        InChannels = inChannels; OutChannels = outChannels; KernelSize = kernel;
        Op = new Conv2dOp(stride, padding, dilation, groups);
        Weight = RegisterParameter("weight", Init.KaimingUniform(Tensor.Empty([outChannels, inChannels / groups, kernel.H, kernel.W]), MathF.Sqrt(5), generator: generator));
        if (bias)
        {
            float bound = 1f / MathF.Sqrt(inChannels / groups * kernel.H * kernel.W);
            Bias = RegisterParameter("bias", Init.Uniform(Tensor.Empty([outChannels]), -bound, bound, generator));
        }
    }

    /// <summary>Input channels.</summary>
    public int InChannels { get; }
    /// <summary>Output channels.</summary>
    public int OutChannels { get; }
    /// <summary>(height, width) of the kernel.</summary>
    public (int H, int W) KernelSize { get; }
    /// <summary>The convolution op with stride, padding, dilation and groups.</summary>
    public Conv2dOp Op { get; }
    /// <summary>Weight [out, in/groups, kH, kW].</summary>
    public Tensor Weight { get; }
    /// <summary>Bias [out], or null.</summary>
    public Tensor? Bias { get; }

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input)
    {
        var w = builder.Parameter("weight", Weight);
        return Bias == null ? builder.Apply(Op, input, w) : builder.Apply(Op, input, w, builder.Parameter("bias", Bias));
    }

    /// <inheritdoc/>
    protected override string ExtraRepr => $"{InChannels}, {OutChannels}, kernel_size={KernelSize}, stride={Op.Stride}, padding={Op.Padding}, dilation={Op.Dilation}, groups={Op.Groups}, bias={Bias != null}";
}
