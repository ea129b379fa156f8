using Engine.Autograd;

namespace Engine.Tensors;

// 2-D convolution. The whole-batch kernels (IKernels.Conv2dForward / BackwardInput / BackwardWeight) choose the
// device's schedule; this file checks shapes, builds the geometry and wires the backward rule, which skips the
// input gradient when the input needs none (e.g. the first layer of a network).
public sealed partial class Tensor
{
    /// <summary>
    /// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d): input [N, Cin, H, W] (or unbatched
    /// [Cin, H, W]), weight [Cout, Cin/groups, kH, kW], optional bias [Cout]; the same stride, zero padding and
    /// dilation on both axes. Output [N, Cout, OutH, OutW] with Out = (In + 2*padding - dilation*(k-1) - 1) / stride + 1.
    /// Differentiable in input, weight and bias.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
        => Conv2d(input, weight, bias, (stride, stride), (padding, padding), (dilation, dilation), groups);

    /// <summary>
    /// 2-D convolution with separate (height, width) stride, padding (default none) and dilation (default 1);
    /// otherwise as <see cref="Conv2d(Tensor, Tensor, Tensor?, int, int, int, int)"/>.
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, Tensor? bias, (int H, int W) stride, (int H, int W)? padding = null,
                                (int H, int W)? dilation = null, int groups = 1)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(weight);
        var pad = padding ?? (0, 0);
        var dil = dilation ?? (1, 1);
        CheckSameDevice(input, weight, "Conv2d");
        if (bias != null) CheckSameDevice(input, bias, "Conv2d");
        if (input.Rank == 3)
            return Conv2d(input.Unsqueeze(0), weight, bias, stride, pad, dil, groups).Squeeze(0);
        string shapes = $"input {ShapeUtil.Format(input.Dims)}, weight {ShapeUtil.Format(weight.Dims)}";
        if (input.Rank != 4) throw new ArgumentException($"Conv2d: input must be [N, C, H, W] or [C, H, W]; got {shapes}.");
        if (weight.Rank != 4) throw new ArgumentException($"Conv2d: weight must be [Cout, Cin/groups, kH, kW]; got {shapes}.");
        if (stride.H < 1 || stride.W < 1 || dil.H < 1 || dil.W < 1 || pad.H < 0 || pad.W < 0)
            throw new ArgumentException($"Conv2d: stride ({stride.H}, {stride.W}) and dilation ({dil.H}, {dil.W}) must be positive and padding ({pad.H}, {pad.W}) non-negative; {shapes}.");
        int n = input.Dims[0], c = input.Dims[1], h = input.Dims[2], w = input.Dims[3];
        int cout = weight.Dims[0], kh = weight.Dims[2], kw = weight.Dims[3];
        if (groups < 1) throw new ArgumentException($"Conv2d: groups must be positive, got {groups}; {shapes}.");
        if (c % groups != 0 || cout % groups != 0)
            throw new ArgumentException($"Conv2d: groups = {groups} must divide the input channels ({c}) and output channels ({cout}); {shapes}.");
        if (weight.Dims[1] * groups != c)
            throw new ArgumentException($"Conv2d: channel mismatch: input has {c} channels but weight expects {weight.Dims[1]} x {groups} groups = {weight.Dims[1] * groups}; {shapes}.");
        if (kh < 1 || kw < 1) throw new ArgumentException($"Conv2d: empty kernel; {shapes}.");
        long effH = (long)dil.H * (kh - 1) + 1, effW = (long)dil.W * (kw - 1) + 1;
        if (effH > h + 2L * pad.H || effW > w + 2L * pad.W)
            throw new ArgumentException($"Conv2d: kernel {kh}x{kw} (dilation {dil.H}x{dil.W}, extent {effH}x{effW}) is larger than the padded input {h + 2L * pad.H}x{w + 2L * pad.W}; {shapes}.");
        if (bias != null && (bias.Rank != 1 || bias.Dims[0] != cout))
            throw new ArgumentException($"Conv2d: bias shape {ShapeUtil.Format(bias.Dims)} does not match {cout} output channels; {shapes}.");

        var geo = new Conv2dGeometry(n, c, h, w, cout, kh, kw, stride.H, stride.W, pad.H, pad.W, dil.H, dil.W, groups);
        var y = input.NewEmpty([n, cout, geo.OutH, geo.OutW]);
        input.K.Conv2dForward(input.Buf, weight.Buf, bias?.Buf, y.Buf, geo);
        Tensor[] inputs = bias == null ? [input, weight] : [input, weight, bias];
        return GradRecorder.Record(y, inputs, (g, ins) =>
        {
            var grads = new Tensor?[ins.Length];
            if (ins[0].RequiresGrad)
            {
                var dx = ins[0].NewEmpty(ins[0].Dims);
                g.K.Conv2dBackwardInput(g.Buf, ins[1].Buf, dx.Buf, geo);
                grads[0] = dx;
            }
            if (ins[1].RequiresGrad)
            {
                var dw = ins[1].NewEmpty(ins[1].Dims);
                g.K.Conv2dBackwardWeight(ins[0].Buf, g.Buf, dw.Buf, geo);
                grads[1] = dw;
            }
            if (ins.Length == 3 && ins[2].RequiresGrad)
            {
                var db = ins[2].NewEmpty(ins[2].Dims);
                g.K.BiasGrad(g.Buf, db.Buf, n, cout, geo.OutPixels);
                grads[2] = db;
            }
            return grads;
        });
    }
}
