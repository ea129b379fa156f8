using Engine.Tensors;

namespace Engine.Diagnostics;

// Conv2d forward / backward-input / backward-weight, Im2Col / Col2Im, AddBias / BiasGrad.
public sealed partial class KernelSelfTest
{
    // Geometries: padding, stride, non-square kernels, dilation with groups, pointwise, depthwise, a kernel as large
    // as the input, 1x1 images, and one whose output exceeds 65536 elements. The flag says whether a bias is given.
    private static readonly (string Label, Conv2dGeometry G, bool Bias)[] ConvGeometries =
    [
        ("3x3 pad 1", new Conv2dGeometry(2, 3, 9, 7, 5, 3, 3, 1, 1, 1, 1), true),
        ("3x2 stride 2 no bias", new Conv2dGeometry(1, 2, 8, 9, 4, 3, 2, 2, 2, 0, 0), false),
        ("dilation 2 groups 3 stride 1x2 pad 1x2", new Conv2dGeometry(2, 6, 11, 10, 9, 3, 3, 1, 2, 1, 2, 2, 2, 3), true),
        ("pointwise", new Conv2dGeometry(3, 4, 5, 5, 6, 1, 1), true),
        ("depthwise", new Conv2dGeometry(2, 4, 7, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 4), true),
        ("kernel = input", new Conv2dGeometry(2, 3, 4, 4, 2, 4, 4), false),
        ("1x1 image", new Conv2dGeometry(3, 1, 1, 1, 3, 1, 1), true),
        ("large 8x4x33x33 -> 8", new Conv2dGeometry(8, 4, 33, 33, 8, 3, 3, 1, 1, 1, 1), true),
    ];

    private static int XLen(in Conv2dGeometry g) => g.Batch * g.InChannels * g.InPixels;
    private static int YLen(in Conv2dGeometry g) => g.Batch * g.OutChannels * g.OutPixels;
    private static int WLen(in Conv2dGeometry g) => g.OutChannels * g.GroupInChannels * g.KernelH * g.KernelW;

    private void RegisterConv()
    {
        Add("Conv2dForward", c =>
        {
            foreach (var (label, g, withBias) in ConvGeometries)
            {
                c.Case(label);
                var xh = c.U(XLen(g)); var wh = c.U(WLen(g)); var bh = c.U(g.OutChannels);
                var x = c.In(xh); var w = c.In(wh); var b = withBias ? c.In(bh) : null;
                var y = c.Out(YLen(g));
                c.Run((k, s) => k.Conv2dForward(x[s], w[s], b == null ? null : b[s], y[s], g));
                var xa = c.RefIn(Check.Abs(xh)); var wa = c.RefIn(Check.Abs(wh)); var ba = withBias ? c.RefIn(Check.Abs(bh)) : null;
                var m = c.RefOut(YLen(g));
                c.RunReference((k, s) => k.Conv2dForward(xa[s], wa[s], ba == null ? null : ba[s], m[s], g));
                c.Compare("y", y, Tol.Sum, c.Payload(m, Side.Reference));
            }
        });
        Add("Conv2dBackwardInput", c =>
        {
            foreach (var (label, g, _) in ConvGeometries)
            {
                c.Case(label);
                var dyh = c.U(YLen(g)); var wh = c.U(WLen(g));
                var dy = c.In(dyh); var w = c.In(wh);
                var dx = c.Out(XLen(g));
                c.Run((k, s) => k.Conv2dBackwardInput(dy[s], w[s], dx[s], g));
                var dya = c.RefIn(Check.Abs(dyh)); var wa = c.RefIn(Check.Abs(wh));
                var m = c.RefOut(XLen(g));
                c.RunReference((k, s) => k.Conv2dBackwardInput(dya[s], wa[s], m[s], g));
                c.Compare("dx", dx, Tol.Sum, c.Payload(m, Side.Reference));
            }
        });
        Add("Conv2dBackwardWeight", c =>
        {
            foreach (var (label, g, _) in ConvGeometries)
            {
                c.Case(label);
                var xh = c.U(XLen(g)); var dyh = c.U(YLen(g));
                var x = c.In(xh); var dy = c.In(dyh);
                var dw = c.Out(WLen(g));
                c.Run((k, s) => k.Conv2dBackwardWeight(x[s], dy[s], dw[s], g));
                var xa = c.RefIn(Check.Abs(xh)); var dya = c.RefIn(Check.Abs(dyh));
                var m = c.RefOut(WLen(g));
                c.RunReference((k, s) => k.Conv2dBackwardWeight(xa[s], dya[s], m[s], g));
                c.Compare("dw", dw, Tol.Sum, c.Payload(m, Side.Reference));
            }
        });
        Add("Im2Col", c =>
        {
            foreach (var (label, g, _) in ConvGeometries)
            {
                c.Case(label);
                var image = c.In(c.U(g.GroupInChannels * g.InPixels));
                var col = c.Out(g.ColRows * g.OutPixels);
                c.Run((k, s) => k.Im2Col(image[s], col[s], g));
                c.Compare("col", col, Tol.Exact);
            }
        });
        Add("Col2Im", c =>
        {
            foreach (var (label, g, _) in ConvGeometries)
            {
                c.Case(label);
                var col = c.In(c.U(g.ColRows * g.OutPixels));
                var image = c.InOut(c.U(g.GroupInChannels * g.InPixels));
                c.Run((k, s) => k.Col2Im(col[s], image[s], g));
                c.Compare("image", image, new Tol(1e-6, 1e-5, 1e-6));
            }
        });
        // [outer, channels, inner]: linear (inner 1), convolution (inner > 1), 1s, and one above 65536 elements.
        (int Outer, int Channels, int Inner)[] biasLayouts = [(3, 5, 1), (2, 7, 33), (1, 1, 1), (4, 16, 1200), (70, 3, 1)];
        Add("AddBias", c =>
        {
            foreach (var (outer, ch, inner) in biasLayouts)
            {
                c.Case($"[{outer}, {ch}, {inner}]");
                var y = c.InOut(c.U(outer * ch * inner));
                var b = c.In(c.U(ch));
                c.Run((k, s) => k.AddBias(y[s], b[s], outer, ch, inner));
                c.Compare("y", y, Tol.Exact);
            }
        });
        Add("BiasGrad", c =>
        {
            foreach (var (outer, ch, inner) in biasLayouts)
            {
                c.Case($"[{outer}, {ch}, {inner}]");
                var dyh = c.U(outer * ch * inner);
                var dy = c.In(dyh);
                var db = c.Out(ch);
                c.Run((k, s) => k.BiasGrad(dy[s], db[s], outer, ch, inner));
                var dya = c.RefIn(Check.Abs(dyh));
                var m = c.RefOut(ch);
                c.RunReference((k, s) => k.BiasGrad(dya[s], m[s], outer, ch, inner));
                c.Compare("db", db, Tol.Sum, c.Payload(m, Side.Reference));
            }
        });
    }
}
