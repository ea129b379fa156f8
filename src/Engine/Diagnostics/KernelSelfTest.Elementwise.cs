using Engine.Tensors;

namespace Engine.Diagnostics;

// Unary / UnaryBackward (every UnaryOp), Binary (every BinaryOp), Where, Expand, OneHot.
public sealed partial class KernelSelfTest
{
    // Edge values every unary op sees once: signed zeros, infinities, NaN, exp's overflow / underflow range, huge magnitudes.
    private static readonly float[] UnarySpecials =
        [0f, -0f, 1f, -1f, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1e-30f, -1e-30f, 88f, 89f, -88f, -104f, -110f,
         1e20f, -1e20f, 20f, -20f, 0.5f, -0.5f, 2f, -3f];

    // The parameter sets each op runs with (alpha, beta).
    private static (float Alpha, float Beta)[] UnaryParams(UnaryOp op) => op switch
    {
        UnaryOp.Pow => [(2f, 0f), (0.5f, 0f), (3f, 0f), (-1.5f, 0f)],
        UnaryOp.Clamp => [(-0.5f, 0.7f), (float.NegativeInfinity, 0.3f), (-0.2f, float.PositiveInfinity)],
        UnaryOp.LeakyRelu => [(0.1f, 0f), (0.01f, 0f)],
        UnaryOp.Softplus => [(1f, 20f), (2f, 5f)],
        UnaryOp.Affine => [(1.5f, -0.25f), (-1f, 3f)],
        UnaryOp.Reciprocal => [(1f, 0f), (2f, 0f)],
        _ => [(0f, 0f)],
    };

    // Inputs inside the op's domain (the specials case covers the rest).
    private static (float Lo, float Hi) UnaryDomain(UnaryOp op) => op switch
    {
        UnaryOp.Log or UnaryOp.Sqrt or UnaryOp.Pow => (0.01f, 5f),
        UnaryOp.Exp => (-10f, 10f),
        UnaryOp.Sigmoid or UnaryOp.Tanh or UnaryOp.Softplus => (-8f, 8f),
        UnaryOp.Reciprocal => (0.1f, 3f),
        _ => (-3f, 3f),
    };

    // Results that are one correctly rounded operation (or none) must match exactly; transcendental ones within a few ulps.
    private static Tol UnaryTol(UnaryOp op) => op switch
    {
        UnaryOp.Neg or UnaryOp.Abs or UnaryOp.Sign or UnaryOp.Square or UnaryOp.Clamp or UnaryOp.Relu or UnaryOp.LeakyRelu => Tol.Exact,
        UnaryOp.Affine => Tol.Ulps with { Scale = 1e-6 },
        _ => Tol.Math,
    };

    private static Tol UnaryBackwardTol(UnaryOp op) => op switch
    {
        UnaryOp.Neg or UnaryOp.Abs or UnaryOp.Sign or UnaryOp.Clamp or UnaryOp.Relu or UnaryOp.LeakyRelu or UnaryOp.Affine => Tol.Exact,
        UnaryOp.Square => Tol.Ulps,
        _ => Tol.Math,
    };

    private void RegisterElementwise()
    {
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            Add($"Unary/{op}", c => UnaryCheck(c, op, backward: false));
        }
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            Add($"UnaryBackward/{op}", c => UnaryCheck(c, op, backward: true));
        }
        foreach (var op in Enum.GetValues<BinaryOp>())
            Add($"Binary/{op}", c => BinaryCheck(c, op));
        Add("Where", WhereCheck);
        Add("Expand", ExpandCheck);
        Add("OneHot", OneHotCheck);
    }

    private static void UnaryCheck(Check c, UnaryOp op, bool backward)
    {
        var (lo, hi) = UnaryDomain(op);
        foreach (var (alpha, beta) in UnaryParams(op))
        {
            var inputs = Lengths.Select(n => (Label: $"n={n}", X: c.U(n, lo, hi))).ToList();
            inputs.Add(("specials", (float[])UnarySpecials.Clone()));
            // Relu / LeakyRelu / Clamp / Sign / Abs derivatives differ at the kinks: make sure exact kinks occur.
            inputs.Add(("kinks", c.Sprinkle(c.Ints(257, -2, 2), alpha, beta, -0f)));
            foreach (var (label, xh) in inputs)
            {
                int n = xh.Length;
                c.Case($"{label} alpha={alpha} beta={beta}");
                var x = c.In(xh);
                if (!backward)
                {
                    var y = c.Out(n);
                    c.Run((k, s) => k.Unary(op, x[s], y[s], n, alpha, beta));
                    c.Compare("y", y, UnaryTol(op), op == UnaryOp.Affine ? xh.Select(v => MathF.Abs(alpha * v) + MathF.Abs(beta)).ToArray() : null);
                    continue;
                }
                // The saved output comes from the reference, so only the backward kernel is compared.
                var yr = c.RefOut(n);
                c.RunReference((k, s) => k.Unary(op, x[s], yr[s], n, alpha, beta));
                var y2 = c.In(c.Payload(yr, Side.Reference));
                var dy = c.In(c.U(n));
                var dx = c.Out(n);
                c.Run((k, s) => k.UnaryBackward(op, x[s], y2[s], dy[s], dx[s], n, alpha, beta));
                c.Compare("dx", dx, UnaryBackwardTol(op));
            }
        }
        // In place (y == x), as the tensor ops' in-place forms use it.
        if (!backward)
        {
            int n = 1001;
            c.Case("in place n=1001");
            var (alpha, beta) = UnaryParams(op)[0];
            var x = c.InOut(c.U(n, lo, hi));
            c.Run((k, s) => k.Unary(op, x[s], x[s], n, alpha, beta));
            c.Compare("x", x, UnaryTol(op));
        }
    }

    // Broadcast layouts: output shape, a's strides, b's strides (0 on broadcast dimensions; one case reads a transposed).
    private static readonly (string Label, int[] Shape, int[] AStrides, int[] BStrides)[] BroadcastLayouts =
    [
        ("contiguous [70001]", [70001], [1], [1]),
        ("[4,1,5] op [1,3,5]", [4, 3, 5], [5, 0, 1], [0, 5, 1]),
        ("[7,9] op scalar", [7, 9], [9, 1], [0, 0]),
        ("transposed a [6,5]", [6, 5], [1, 6], [5, 1]),
        ("rank 5 [2,3,1,4,5] op [1,3,1,1,5]", [2, 3, 1, 4, 5], [60, 20, 20, 5, 1], [0, 5, 0, 0, 1]),
        ("row vector [300,250] op [250]", [300, 250], [250, 1], [0, 1]),
        ("[1]", [1], [1], [1]),
        ("empty [3,0]", [3, 0], [0, 1], [0, 1]),
    ];

    // Elements a strided read touches: 1 + Σ (size − 1)·stride (0 for an empty shape).
    private static int Extent(int[] shape, int[] strides)
    {
        if (shape.Any(s => s == 0)) return 0;
        long e = 1;
        for (int i = 0; i < shape.Length; i++) e += (long)(shape[i] - 1) * strides[i];
        return (int)e;
    }

    private static float[] BinaryInputs(Check c, BinaryOp op, int n, bool right) => op switch
    {
        // Comparisons: small integers so ties happen, plus NaN (unequal to everything).
        BinaryOp.Gt or BinaryOp.Ge or BinaryOp.Lt or BinaryOp.Le or BinaryOp.Eq or BinaryOp.Ne => c.Sprinkle(c.Ints(n, -2, 2), float.NaN),
        BinaryOp.Maximum or BinaryOp.Minimum => c.Sprinkle(c.Ints(n, -3, 3).Select((v, i) => v + (i % 3 == 0 ? 0 : c.Rng.Uniform(-0.5f, 0.5f))).ToArray(), float.NaN, -0f, 0f),
        BinaryOp.Div when right => c.Sprinkle(c.U(n, 0.2f, 3f).Select((v, i) => i % 2 == 0 ? v : -v).ToArray(), 0f, -0f, float.PositiveInfinity),
        _ => c.Sprinkle(c.U(n, -2f, 2f), float.PositiveInfinity, float.NaN),
    };

    private static void BinaryCheck(Check c, BinaryOp op)
    {
        foreach (var (label, shape, aStrides, bStrides) in BroadcastLayouts)
        {
            c.Case(label);
            int n = ShapeUtil.Numel(shape);
            var a = c.In(BinaryInputs(c, op, Extent(shape, aStrides), right: false));
            var b = c.In(BinaryInputs(c, op, Extent(shape, bStrides), right: true));
            var y = c.Out(n);
            c.Run((k, s) => k.Binary(op, a[s], aStrides, b[s], bStrides, y[s], shape));
            // One IEEE operation or a comparison: exact on every device.
            c.Compare("y", y, Tol.Exact);
        }
    }

    private static void WhereCheck(Check c)
    {
        foreach (var (label, shape, aStrides, bStrides) in BroadcastLayouts)
        {
            // cond broadcasts the way b does in the layout, a and b take the other two stride lists.
            c.Case(label);
            int n = ShapeUtil.Numel(shape);
            var condStrides = bStrides;
            var cond = c.In(c.Sprinkle(c.Ints(Extent(shape, condStrides), 0, 1), float.NaN, -0f, 2.5f));
            var a = c.In(c.U(Extent(shape, aStrides)));
            var contiguous = ShapeUtil.Strides(shape);
            var b = c.In(c.U(Extent(shape, contiguous)));
            var y = c.Out(n);
            c.Run((k, s) => k.Where(cond[s], condStrides, a[s], aStrides, b[s], contiguous, y[s], shape));
            c.Compare("y", y, Tol.Exact);
        }
    }

    private static void ExpandCheck(Check c)
    {
        (string, int[], int[])[] cases =
        [
            ("[1,3,1] -> [4,3,5]", [4, 3, 5], [0, 1, 0]),
            ("scalar -> [300,250]", [300, 250], [0, 0]),
            ("[250] -> [300,250]", [300, 250], [0, 1]),
            ("[7] -> [7,1]", [7, 1], [1, 0]),
            ("transpose [5,6]", [6, 5], [1, 6]),
        ];
        foreach (var (label, shape, xStrides) in cases)
        {
            c.Case(label);
            var x = c.In(c.U(Extent(shape, xStrides)));
            var y = c.Out(ShapeUtil.Numel(shape));
            c.Run((k, s) => k.Expand(x[s], xStrides, y[s], shape));
            c.Compare("y", y, Tol.Exact);
        }
    }

    private static void OneHotCheck(Check c)
    {
        foreach (var (n, classes) in new[] { (1000, 10), (1, 1), (7000, 13), (5, 2) })
        {
            c.Case($"n={n} classes={classes}");
            var labels = c.In(c.Ints(n, 0, classes - 1));
            var y = c.Out(n * classes);
            c.Run((k, s) => k.OneHot(labels[s], y[s], n, classes));
            c.Compare("y", y, Tol.Exact);
        }
        foreach (var (what, bad) in new[] { ("a fractional label", 2.5f), ("a label equal to numClasses", 10f), ("a negative label", -1f), ("a NaN label", float.NaN) })
        {
            c.Case($"invalid: {what}");
            var h = c.Ints(50, 0, 9);
            h[37] = bad;
            var labels = c.In(h);
            var y = c.Out(50 * 10);
            c.ExpectThrows<ArgumentException>((k, s) => k.OneHot(labels[s], y[s], 50, 10), $"OneHot with {what}");
        }
    }
}
