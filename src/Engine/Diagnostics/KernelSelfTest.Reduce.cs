using Engine.Tensors;

namespace Engine.Diagnostics;

// Reduce (every ReduceOp), ArgMax / ArgMin, Softmax / LogSoftmax forward and backward.
public sealed partial class KernelSelfTest
{
    // [outer, size, inner] layouts: one long row, inner == 1 and inner > 1, size 1, and one above 65536 elements with inner > 1.
    private static readonly (int Outer, int Size, int Inner)[] ReduceLayouts =
        [(1, 70001, 1), (7, 33, 1), (3, 17, 5), (2, 5, 33), (1, 1, 7), (4, 1, 1), (5, 300, 70), (64, 10, 1)];

    private void RegisterReduce()
    {
        foreach (var op in Enum.GetValues<ReduceOp>())
            Add($"Reduce/{op}", c => ReduceCheck(c, op));
        Add("ArgMax", c => ArgCheck(c, max: true));
        Add("ArgMin", c => ArgCheck(c, max: false));
        Add("Softmax", c => SoftmaxCheck(c, log: false));
        Add("Softmax/Log", c => SoftmaxCheck(c, log: true));
        Add("SoftmaxBackward", c => SoftmaxBackwardCheck(c, log: false));
        Add("SoftmaxBackward/Log", c => SoftmaxBackwardCheck(c, log: true));
    }

    private static void ReduceCheck(Check c, ReduceOp op)
    {
        var layouts = ReduceLayouts.Select(l => (l, "")).ToList();
        layouts.Add(((2, 0, 3), " (empty range)"));
        layouts.Add(((3, 17, 5), " with NaN"));
        layouts.Add(((4, 9, 3), " with infinities"));
        foreach (var ((outer, size, inner), extra) in layouts)
        {
            c.Case($"[{outer}, {size}, {inner}]{extra}");
            var xh = c.U(outer * size * inner, -3f, 3f);
            if (extra == " with NaN") c.Sprinkle(xh, float.NaN);
            if (extra == " with infinities") c.Sprinkle(xh, float.PositiveInfinity, float.NegativeInfinity, float.NegativeInfinity);
            var x = c.In(xh);
            var y = c.Out(outer * inner);
            c.Run((k, s) => k.Reduce(op, x[s], y[s], outer, size, inner));
            float[]? mag = null;
            if (op is ReduceOp.Sum or ReduceOp.Mean)
            {
                var xa = c.RefIn(Check.Abs(xh));
                var m = c.RefOut(outer * inner);
                c.RunReference((k, s) => k.Reduce(op, xa[s], m[s], outer, size, inner));
                mag = c.Payload(m, Side.Reference);
            }
            c.Compare("y", y, op switch
            {
                ReduceOp.Max or ReduceOp.Min => Tol.Exact,
                ReduceOp.LogSumExp => Tol.Math,
                _ => Tol.Sum,
            }, mag);
        }
    }

    private static void ArgCheck(Check c, bool max)
    {
        var layouts = ReduceLayouts.Select(l => (l, "")).ToList();
        layouts.Add(((3, 17, 5), " with NaN"));
        layouts.Add(((2, 40, 3), " uniform values"));
        foreach (var ((outer, size, inner), extra) in layouts)
        {
            c.Case($"[{outer}, {size}, {inner}]{extra}");
            // Small integers, so ties are common (the first index must win).
            var xh = extra == " uniform values" ? c.U(outer * size * inner) : c.Ints(outer * size * inner, -3, 3);
            if (extra == " with NaN") c.Sprinkle(xh, float.NaN, float.NaN);
            var x = c.In(xh);
            var y = c.Out(outer * inner);
            c.Run((k, s) => { if (max) k.ArgMax(x[s], y[s], outer, size, inner); else k.ArgMin(x[s], y[s], outer, size, inner); });
            c.Compare("y", y, Tol.Exact);
        }
    }

    private static void SoftmaxCheck(Check c, bool log)
    {
        var layouts = ReduceLayouts.Select(l => (l, "")).ToList();
        layouts.Add(((6, 10, 4), " large logits"));
        layouts.Add(((5, 7, 1), " with -infinity"));
        foreach (var ((outer, size, inner), extra) in layouts)
        {
            c.Case($"[{outer}, {size}, {inner}]{extra}");
            var xh = c.U(outer * size * inner, -4f, 4f);
            if (extra == " large logits") xh = c.U(outer * size * inner, -80f, 80f);
            if (extra == " with -infinity") c.Sprinkle(xh, float.NegativeInfinity, float.NegativeInfinity);
            var x = c.In(xh);
            var y = c.Out(outer * size * inner);
            c.Run((k, s) => k.Softmax(x[s], y[s], outer, size, inner, log));
            c.Compare("y", y, log ? new Tol(1e-5, 1e-5) : Tol.Math);
        }
    }

    private static void SoftmaxBackwardCheck(Check c, bool log)
    {
        foreach (var (outer, size, inner) in ReduceLayouts)
        {
            c.Case($"[{outer}, {size}, {inner}]");
            int n = outer * size * inner;
            var x = c.In(c.U(n, -4f, 4f));
            var yr = c.RefOut(n);
            c.RunReference((k, s) => k.Softmax(x[s], yr[s], outer, size, inner, log));
            var y = c.In(c.Payload(yr, Side.Reference));
            var dy = c.In(c.U(n));
            var dx = c.Out(n);
            c.Run((k, s) => k.SoftmaxBackward(y[s], dy[s], dx[s], outer, size, inner, log));
            // dx = y·(dy − Σ dy·y) (or dy − e^y·Σ dy): a sum per row, so relative to its scale.
            c.Compare("dx", dx, new Tol(1e-6, 1e-5, 1e-5));
        }
    }
}
