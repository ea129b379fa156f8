using Engine.Tensors;

namespace Engine.Autograd;

/// <summary>
/// Compares autograd gradients with central finite differences, like torch.autograd.gradcheck (in float32,
/// so tolerances are looser). The scalar checked is sum(f(x) * w) for a fixed random w, which exercises
/// every output element with distinct weights.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Returns the worst |analytic - numeric| / (atol + rtol * |numeric|) over checked elements (pass when &lt;= 1).
    /// At most <paramref name="maxPerInput"/> elements per input are probed (chosen by seed) to keep it fast.
    /// </summary>
    public static double MaxError(Func<Tensor[], Tensor> f, Tensor[] inputs, float eps = 1e-2f, double atol = 1e-3, double rtol = 1e-2,
                                  int maxPerInput = 48, ulong seed = 7, bool[]? check = null)
        => Run(f, inputs, eps, atol, rtol, maxPerInput, seed, check).worst;

    /// <summary>Throws with a message naming the input, element, analytic and numeric values when the check fails.</summary>
    public static void Assert(Func<Tensor[], Tensor> f, Tensor[] inputs, float eps = 1e-2f, double atol = 1e-3, double rtol = 1e-2,
                              int maxPerInput = 48, ulong seed = 7, bool[]? check = null)
    {
        var (worst, msg) = Run(f, inputs, eps, atol, rtol, maxPerInput, seed, check);
        if (worst > 1) throw new InvalidOperationException("Gradient check failed: " + msg);
    }

    private static (double worst, string msg) Run(Func<Tensor[], Tensor> f, Tensor[] inputs, float eps, double atol, double rtol,
                                                   int maxPerInput, ulong seed, bool[]? check)
    {
        var leaves = inputs.Select((x, i) => x.Detach().Clone().RequiresGrad_(check == null || check[i])).ToArray();
        var outT = f(leaves);
        var gen = new Generator(seed);
        var w = Tensor.Uniform(outT.Shape, -1f, 1f, gen, outT.Device);
        var wHost = w.ToArray();
        outT.Backward(w);

        double worst = 0; string msg = "ok";
        for (int i = 0; i < leaves.Length; i++)
        {
            if (check != null && !check[i]) continue;
            var analytic = leaves[i].Grad?.ToArray() ?? new float[leaves[i].Numel];
            var baseVals = leaves[i].ToArray();
            int n = baseVals.Length;
            var idx = n <= maxPerInput ? Enumerable.Range(0, n) : Enumerable.Range(0, maxPerInput).Select(_ => gen.NextInt(n)).Distinct();
            foreach (int e in idx)
            {
                double Eval(float delta)
                {
                    var probe = (float[])baseVals.Clone();
                    probe[e] += delta;
                    var xs = leaves.Select((l, j) => j == i ? Tensor.FromSpan(probe, l.Shape, l.Device) : l.Detach()).ToArray();
                    float[] y;
                    using (new NoGrad()) y = f(xs).ToArray();
                    double s = 0;
                    for (int t = 0; t < y.Length; t++) s += (double)y[t] * wHost[t];
                    return s;
                }
                double numeric = (Eval(eps) - Eval(-eps)) / (2.0 * eps);
                double err = Math.Abs(analytic[e] - numeric) / (atol + rtol * Math.Abs(numeric));
                if (double.IsNaN(err)) err = double.PositiveInfinity;
                if (err > worst)
                {
                    worst = err;
                    msg = $"input {i} element {e}: analytic {analytic[e]:G6}, numeric {numeric:G6}";
                }
            }
        }
        return (worst, msg);
    }
}
