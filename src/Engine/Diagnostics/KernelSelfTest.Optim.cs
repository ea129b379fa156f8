using Engine.Tensors;

namespace Engine.Diagnostics;

// SgdUpdate and AdamUpdate over every flag combination, SumOfSquares, ScaleInPlace.
public sealed partial class KernelSelfTest
{
    private void RegisterOptim()
    {
        Add("SgdUpdate", c =>
        {
            foreach (float momentum in new[] { 0f, 0.9f })
                foreach (float dampening in new[] { 0f, 0.3f })
                    foreach (float wd in new[] { 0f, 0.01f })
                        foreach (bool nesterov in new[] { false, true })
                            foreach (bool first in new[] { true, false })
                            {
                                if (momentum == 0 && (dampening != 0 || nesterov || !first)) continue;   // the buffer is unused then
                                int n = momentum == 0.9f && dampening == 0 && wd == 0 && nesterov && !first ? 70001 : 1003;
                                c.Case($"n={n} momentum={momentum} dampening={dampening} weightDecay={wd} nesterov={nesterov} firstStep={first}");
                                var p = c.InOut(c.U(n)); var g = c.In(c.U(n));
                                var buf = momentum == 0 ? null : c.InOut(c.U(n));
                                c.Run((k, s) => k.SgdUpdate(p[s], g[s], buf == null ? default : buf[s], n, 0.05f, momentum, dampening, wd, nesterov, first));
                                c.Compare("param", p, Tol.Ulps with { Abs = 1e-6 });
                                if (buf != null) c.Compare("momentum buffer", buf, Tol.Ulps with { Abs = 1e-6 });
                            }
        });
        Add("AdamUpdate", c =>
        {
            foreach (bool decoupled in new[] { false, true })
                foreach (float wd in new[] { 0f, 0.05f })
                    foreach (int step in new[] { 1, 7 })
                    {
                        int n = decoupled && wd != 0 && step == 7 ? 70001 : 1003;
                        c.Case($"n={n} decoupled={decoupled} weightDecay={wd} step={step}");
                        var p = c.InOut(c.U(n)); var g = c.In(c.Sprinkle(c.U(n), 0f, 0f));
                        var m = c.InOut(c.U(n, -0.1f, 0.1f)); var v = c.InOut(c.U(n, 0f, 0.01f));
                        c.Run((k, s) => k.AdamUpdate(p[s], g[s], m[s], v[s], n, 1e-2f, 0.9f, 0.999f, 1e-8f, wd, decoupled, step));
                        c.Compare("param", p, new Tol(1e-6, 1e-5));
                        c.Compare("exp_avg", m, Tol.Ulps with { Abs = 1e-7 });
                        c.Compare("exp_avg_sq", v, Tol.Ulps with { Abs = 1e-9 });
                    }
        });
        Add("SumOfSquares", c =>
        {
            foreach (int n in Lengths.Append(0))
            {
                c.Case($"n={n}");
                var xh = c.U(n, -2f, 2f);
                var x = c.In(xh);
                double d = Device.Kernels.SumOfSquares(x[Side.Device], n);
                double r = ReferenceKernels.SumOfSquares(x[Side.Reference], n);
                // Accumulated in double: only the order of the additions may differ.
                c.CompareScalar("sum", d, r, new Tol(1e-12, 1e-6));
                c.Compare("x (unchanged)", x, Tol.Bits);
            }
        });
        Add("ScaleInPlace", c =>
        {
            foreach (int n in Lengths)
                foreach (float alpha in new[] { 0.5f, -3f, 0f })
                {
                    c.Case($"n={n} alpha={alpha}");
                    var x = c.InOut(c.Sprinkle(c.U(n), float.NaN));
                    c.Run((k, s) => k.ScaleInPlace(x[s], n, alpha));
                    c.Compare("x", x, Tol.Exact);
                }
        });
    }
}
