using Engine.Tensors;

namespace Engine.Diagnostics;

// Max / average pooling, forward and backward (count_include_pad both ways).
public sealed partial class KernelSelfTest
{
    private static readonly (string Label, Pool2dGeometry G)[] PoolGeometries =
    [
        ("2x2 stride 2", new Pool2dGeometry(6, 8, 8, 2, 2, 2, 2, 0, 0)),
        ("3x3 stride 2 pad 1 odd input", new Pool2dGeometry(5, 9, 7, 3, 3, 2, 2, 1, 1)),
        ("3x2 stride 1x2 pad 1x0", new Pool2dGeometry(3, 7, 10, 3, 2, 1, 2, 1, 0)),
        ("global 5x5", new Pool2dGeometry(2, 5, 5, 5, 5, 1, 1, 0, 0)),
        ("3x3 stride 3 pad 1", new Pool2dGeometry(4, 6, 6, 3, 3, 3, 3, 1, 1)),
        ("large 64x34x34", new Pool2dGeometry(64, 34, 34, 2, 2, 2, 2, 0, 0)),
    ];

    private static int PoolIn(in Pool2dGeometry g) => g.Planes * g.Height * g.Width;
    private static int PoolOut(in Pool2dGeometry g) => g.Planes * g.OutH * g.OutW;

    private void RegisterPool()
    {
        Add("MaxPool2dForward", c =>
        {
            foreach (var (label, g) in PoolGeometries)
                foreach (string values in new[] { "ties", "uniform", "NaN" })
                {
                    c.Case($"{label} {values}");
                    var xh = values == "uniform" ? c.U(PoolIn(g)) : c.Ints(PoolIn(g), -2, 2);
                    if (values == "NaN") c.Sprinkle(xh, float.NaN, float.NaN, float.NegativeInfinity);
                    var x = c.In(xh);
                    var y = c.Out(PoolOut(g)); var idx = c.Out(PoolOut(g));
                    c.Run((k, s) => k.MaxPool2dForward(x[s], y[s], idx[s], g));
                    c.Compare("y", y, Tol.Exact);
                    c.Compare("indices", idx, Tol.Exact);
                }
        });
        Add("MaxPool2dBackward", c =>
        {
            foreach (var (label, g) in PoolGeometries)
            {
                c.Case(label);
                // Ties make overlapping windows pick the same element, so dx sums several dy there.
                var x = c.In(c.Ints(PoolIn(g), -2, 2));
                var yr = c.RefOut(PoolOut(g)); var ir = c.RefOut(PoolOut(g));
                c.RunReference((k, s) => k.MaxPool2dForward(x[s], yr[s], ir[s], g));
                var idx = c.In(c.Payload(ir, Side.Reference));
                var dy = c.In(c.U(PoolOut(g)));
                var dx = c.Out(PoolIn(g));
                c.Run((k, s) => k.MaxPool2dBackward(dy[s], idx[s], dx[s], g));
                c.Compare("dx", dx, Tol.Ulps with { Abs = 1e-6 });
            }
        });
        foreach (bool include in new[] { true, false })
        {
            string suffix = include ? "/IncludePad" : "/ExcludePad";
            Add("AvgPool2dForward" + suffix, c =>
            {
                foreach (var (label, g) in PoolGeometries)
                {
                    c.Case(label);
                    var x = c.In(c.U(PoolIn(g)));
                    var y = c.Out(PoolOut(g));
                    c.Run((k, s) => k.AvgPool2dForward(x[s], y[s], g, include));
                    c.Compare("y", y, new Tol(1e-6, 1e-5, 1e-6));
                }
            });
            Add("AvgPool2dBackward" + suffix, c =>
            {
                foreach (var (label, g) in PoolGeometries)
                {
                    c.Case(label);
                    var dy = c.In(c.U(PoolOut(g)));
                    var dx = c.Out(PoolIn(g));
                    c.Run((k, s) => k.AvgPool2dBackward(dy[s], dx[s], g, include));
                    c.Compare("dx", dx, new Tol(1e-6, 1e-5, 1e-6));
                }
            });
        }
    }
}
