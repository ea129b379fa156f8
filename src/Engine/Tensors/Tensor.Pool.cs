using Engine.Autograd;

namespace Engine.Tensors;

// 2-D pooling over [N, C, H, W] (or [C, H, W]) tensors; every (n, c) plane is pooled independently.
public sealed partial class Tensor
{
    /// <summary>
    /// Max over kernel×kernel windows moved by <paramref name="stride"/> (default: the kernel size) over the input
    /// with implicit -inf padding (at most half the kernel), as torch.nn.functional.max_pool2d. Differentiable: the
    /// gradient goes to the (first) maximum of each window.
    /// </summary>
    public static Tensor MaxPool2d(Tensor input, int kernel, int? stride = null, int padding = 0)
        => MaxPool2d(input, (kernel, kernel), stride is int s ? (s, s) : null, (padding, padding));

    /// <summary>Max pooling with separate (height, width) kernel, stride (default: the kernel) and padding (default none).</summary>
    public static Tensor MaxPool2d(Tensor input, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null)
    {
        var (x, geo, squeeze) = PoolSetup(input, kernel, stride ?? kernel, padding ?? (0, 0), "MaxPool2d");
        // Argmax positions are kept as float32, exact only up to 2^24.
        if ((long)geo.Height * geo.Width > 1 << 24)
            throw new ArgumentException($"MaxPool2d: planes of {geo.Height}x{geo.Width} are larger than 2^24 elements; input shape {ShapeUtil.Format(input.Dims)}.");
        var y = x.NewEmpty([x.Dims[0], x.Dims[1], geo.OutH, geo.OutW]);
        var indices = x.NewEmpty(y.Dims);
        x.K.MaxPool2dForward(x.Buf, y.Buf, indices.Buf, geo);
        var r = GradRecorder.Record(y, x, (g, xi) =>
        {
            var dx = xi.NewEmpty(xi.Dims);
            g.K.MaxPool2dBackward(g.Buf, indices.Buf, dx.Buf, geo);
            return [dx];
        });
        return squeeze ? r.Squeeze(0) : r;
    }

    /// <summary>
    /// Mean over kernel×kernel windows moved by <paramref name="stride"/> (default: the kernel size) with implicit zero
    /// padding (at most half the kernel), as torch.nn.functional.avg_pool2d: padded positions count in the divisor
    /// when <paramref name="countIncludePad"/>. Differentiable.
    /// </summary>
    public static Tensor AvgPool2d(Tensor input, int kernel, int? stride = null, int padding = 0, bool countIncludePad = true)
        => AvgPool2d(input, (kernel, kernel), stride is int s ? (s, s) : null, (padding, padding), countIncludePad);

    /// <summary>Average pooling with separate (height, width) kernel, stride (default: the kernel) and padding (default none).</summary>
    public static Tensor AvgPool2d(Tensor input, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null, bool countIncludePad = true)
    {
        var (x, geo, squeeze) = PoolSetup(input, kernel, stride ?? kernel, padding ?? (0, 0), "AvgPool2d");
        var y = x.NewEmpty([x.Dims[0], x.Dims[1], geo.OutH, geo.OutW]);
        x.K.AvgPool2dForward(x.Buf, y.Buf, geo, countIncludePad);
        var r = GradRecorder.Record(y, x, (g, xi) =>
        {
            var dx = xi.NewEmpty(xi.Dims);
            g.K.AvgPool2dBackward(g.Buf, dx.Buf, geo, countIncludePad);
            return [dx];
        });
        return squeeze ? r.Squeeze(0) : r;
    }

    private static (Tensor x, Pool2dGeometry geo, bool squeeze) PoolSetup(Tensor input, (int H, int W) k, (int H, int W) s, (int H, int W) p, string op)
    {
        ArgumentNullException.ThrowIfNull(input);
        bool squeeze = input.Rank == 3;
        var x = squeeze ? input.Unsqueeze(0) : input;
        if (x.Rank != 4) throw new ArgumentException($"{op}: input must be [N, C, H, W] or [C, H, W], got shape {ShapeUtil.Format(input.Dims)}.");
        if (k.H < 1 || k.W < 1 || s.H < 1 || s.W < 1)
            throw new ArgumentException($"{op}: kernel ({k.H}, {k.W}) and stride ({s.H}, {s.W}) must be positive; input shape {ShapeUtil.Format(input.Dims)}.");
        if (p.H < 0 || p.W < 0 || 2 * p.H > k.H || 2 * p.W > k.W)
            throw new ArgumentException($"{op}: padding ({p.H}, {p.W}) must be between 0 and half the kernel ({k.H}, {k.W}); input shape {ShapeUtil.Format(input.Dims)}.");
        int h = x.Dims[2], w = x.Dims[3];
        if (h == 0 || w == 0) throw new ArgumentException($"{op}: input shape {ShapeUtil.Format(input.Dims)} has an empty spatial dimension.");
        if (k.H > h + 2 * p.H || k.W > w + 2 * p.W)
            throw new ArgumentException($"{op}: kernel ({k.H}, {k.W}) is larger than the padded input {h + 2 * p.H}x{w + 2 * p.W}; input shape {ShapeUtil.Format(input.Dims)}.");
        var geo = new Pool2dGeometry(x.Dims[0] * x.Dims[1], h, w, k.H, k.W, s.H, s.W, p.H, p.W);
        return (x, geo, squeeze);
    }
}
