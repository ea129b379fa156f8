using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// Rigorous float64 bounds of a <see cref="RigorousNetwork"/> over one input box: the bounds of every layer (valid
/// for the network in exact real arithmetic) and CROWN lower bounds of linear functions of the output.
/// </summary>
public sealed class RigorousBox
{
    private readonly RigorousLayer[] _layers;
    // _lo[k], _hi[k]: bounds of the value entering layer k (k = 0: the input box); index Length: the output.
    private readonly double[][] _lo, _hi;

    internal RigorousBox(RigorousLayer[] layers, double[] lower, double[] upper)
    {
        _layers = layers;
        _lo = new double[layers.Length + 1][];
        _hi = new double[layers.Length + 1][];
        _lo[0] = lower; _hi[0] = upper;
        for (int k = 0; k < layers.Length; k++)
        {
            var (l, h) = Interval(layers[k], _lo[k], _hi[k]);
            _lo[k + 1] = l; _hi[k + 1] = h;
            // A ReLU's relaxation depends on its input bounds: tighten the unstable ones by CROWN.
            if (k + 1 < layers.Length && layers[k + 1] is ReluLayer && layers[k] is not ReluLayer) Refine(k + 1);
            if (!AllFinite(_lo[k + 1]) || !AllFinite(_hi[k + 1])) { Failed = true; break; }
        }
    }

    /// <summary>True when some bound overflowed or became NaN; every bound query then returns −∞ (proves nothing).</summary>
    public bool Failed { get; }

    /// <summary>Rigorous lower bounds of the network outputs over the box.</summary>
    public ReadOnlySpan<double> OutputLower => _lo[^1];

    /// <summary>Rigorous upper bounds of the network outputs over the box.</summary>
    public ReadOnlySpan<double> OutputUpper => _hi[^1];

    /// <summary>Number of ReLU neurons whose input bounds straddle zero.</summary>
    public int UnstableCount
    {
        get
        {
            int u = 0;
            for (int k = 0; k < _layers.Length; k++)
                if (_layers[k] is ReluLayer)
                    for (int i = 0; i < _lo[k].Length; i++) if (_lo[k][i] < 0 && _hi[k][i] > 0) u++;
            return u;
        }
    }

    private static bool AllFinite(double[] v)
    {
        foreach (var x in v) if (!double.IsFinite(x)) return false;
        return true;
    }

    /// <summary>
    /// A rigorous lower bound of c·y over the box (y the network output), the larger of the CROWN and the interval
    /// bound; <paramref name="inputCoefficients"/> receives the CROWN coefficients on the input (a sensitivity
    /// used to choose which input to split). −∞ when <see cref="Failed"/>.
    /// </summary>
    public double LowerBound(ReadOnlySpan<double> c, out double[] inputCoefficients)
    {
        if (c.Length != _lo[^1].Length) throw new ArgumentException($"RigorousBox.LowerBound: expected {_lo[^1].Length} coefficients, got {c.Length}.");
        inputCoefficients = new double[_lo[0].Length];
        if (Failed) return double.NegativeInfinity;
        double crown = Backward(_layers.Length, c.ToArray(), out inputCoefficients);
        double ibp = IntervalDot(c, _lo[^1], _hi[^1]);
        double r = Math.Max(crown, ibp);
        return double.IsNaN(r) ? double.NegativeInfinity : r;
    }

    /// <summary>mu += a·row and t += |a·row| (each product rounded once, as the error bound assumes).</summary>
    private static void AxpyAbs(ReadOnlySpan<double> row, double a, Span<double> mu, Span<double> t)
    {
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            int w = System.Numerics.Vector<double>.Count;
            var va = new System.Numerics.Vector<double>(a);
            for (; i + w <= row.Length; i += w)
            {
                var p = new System.Numerics.Vector<double>(row[i..]) * va;
                (new System.Numerics.Vector<double>(mu[i..]) + p).CopyTo(mu[i..]);
                (new System.Numerics.Vector<double>(t[i..]) + System.Numerics.Vector.Abs(p)).CopyTo(t[i..]);
            }
        }
        for (; i < row.Length; i++) { double p = row[i] * a; mu[i] += p; t[i] += Math.Abs(p); }
    }

    /// <summary>Lower bound of Σ c_i v_i for v in [lo, hi].</summary>
    private static double IntervalDot(ReadOnlySpan<double> c, double[] lo, double[] hi)
    {
        double s = 0, t = 0;
        for (int i = 0; i < c.Length; i++)
        {
            double p = c[i] >= 0 ? c[i] * lo[i] : c[i] * hi[i];
            s += p; t += Math.Abs(p);
        }
        return Down(s - DotSlack(t, c.Length));
    }

    private static (double[] Lo, double[] Hi) Interval(RigorousLayer layer, double[] lo, double[] hi)
    {
        var l = new double[layer.Out];
        var h = new double[layer.Out];
        switch (layer)
        {
            case DenseLayer d:
                for (int o = 0; o < d.Out; o++)
                {
                    var row = d.W.AsSpan(o * d.In, d.In);
                    double sl = d.B?[o] ?? 0, sh = sl, t = Math.Abs(sl);
                    for (int i = 0; i < row.Length; i++)
                    {
                        double w = row[i];
                        double a = w * lo[i], b = w * hi[i];
                        if (w >= 0) { sl += a; sh += b; } else { sl += b; sh += a; }
                        t += Math.Max(Math.Abs(a), Math.Abs(b));
                    }
                    double slack = DotSlack(t, d.In + 1);
                    l[o] = Down(sl - slack); h[o] = Up(sh + slack);
                }
                break;
            case DiagLayer g:
                for (int i = 0; i < l.Length; i++)
                {
                    double a = g.A?[i] ?? 1, c = g.C?[i] ?? 0;
                    double pl, ph;
                    if (g.A == null) { pl = lo[i]; ph = hi[i]; }
                    else
                    {
                        double p1 = a * lo[i], p2 = a * hi[i];
                        pl = Down(Math.Min(p1, p2)); ph = Up(Math.Max(p1, p2));
                    }
                    l[i] = g.C == null ? pl : AddDown(pl, c);
                    h[i] = g.C == null ? ph : AddUp(ph, c);
                }
                break;
            case PermLayer p:
                for (int i = 0; i < l.Length; i++) { l[i] = lo[p.Src[i]]; h[i] = hi[p.Src[i]]; }
                break;
            default:
                for (int i = 0; i < l.Length; i++) { l[i] = Math.Max(lo[i], 0); h[i] = Math.Max(hi[i], 0); }
                break;
        }
        return (l, h);
    }

    /// <summary>CROWN bounds for the unstable neurons of the value entering layer k, intersected with its interval bounds.</summary>
    private void Refine(int k)
    {
        var lo = _lo[k]; var hi = _hi[k];
        var unit = new double[lo.Length];
        for (int i = 0; i < lo.Length; i++)
        {
            if (!(lo[i] < 0 && hi[i] > 0)) continue;
            unit[i] = 1;
            double l = Backward(k, unit, out _);
            unit[i] = -1;
            double u = Backward(k, unit, out _);
            unit[i] = 0;
            if (l > lo[i]) lo[i] = l;
            if (!double.IsNaN(u) && -u < hi[i]) hi[i] = -u;
        }
    }

    /// <summary>
    /// CROWN: a rigorous lower bound of λ·z over the box, z the value entering layer <paramref name="k"/>. Keeps
    /// c·z ≥ λ·v + β for the value v entering each earlier layer, with every rounding charged to β.
    /// </summary>
    private double Backward(int k, double[] lambda, out double[] inputCoefficients)
    {
        var lam = (double[])lambda.Clone();
        double beta = 0;
        for (int j = k - 1; j >= 0; j--)
        {
            var layer = _layers[j];
            var lo = _lo[j]; var hi = _hi[j];
            var mu = new double[layer.In];
            switch (layer)
            {
                case DenseLayer d:
                    {
                        var t = new double[d.In];
                        for (int o = 0; o < d.Out; o++)
                        {
                            double a = lam[o];
                            if (a == 0) continue;
                            AxpyAbs(d.W.AsSpan(o * d.In, d.In), a, mu, t);
                        }
                        // (Wᵀλ)·v ≥ μ·v − Σᵢ errᵢ·max|vᵢ|.
                        double charge = 0;
                        for (int i = 0; i < d.In; i++)
                            if (t[i] != 0) charge = AddUp(charge, MulUp(DotSlack(t[i], d.Out), Math.Max(Math.Abs(lo[i]), Math.Abs(hi[i]))));
                        if (d.B != null) beta = AddDown(beta, Directed.DotDown(lam, d.B));
                        beta = AddDown(beta, -charge);
                        break;
                    }
                case DiagLayer g:
                    {
                        double charge = 0;
                        for (int i = 0; i < g.In; i++)
                        {
                            if (g.A == null) { mu[i] = lam[i]; continue; }
                            double p = lam[i] * g.A[i];
                            mu[i] = p;
                            // |fl(λa) − λa| ≤ u|fl(λa)| (+ underflow).
                            double err = Up(Math.Abs(p) * Ulp1 + Tiny);
                            charge = AddUp(charge, MulUp(err, Math.Max(Math.Abs(lo[i]), Math.Abs(hi[i]))));
                        }
                        if (g.C != null) beta = AddDown(beta, Directed.DotDown(lam, g.C));
                        beta = AddDown(beta, -charge);
                        break;
                    }
                case PermLayer p:
                    for (int i = 0; i < p.Out; i++) mu[p.Src[i]] += lam[i];
                    break;
                default:
                    {
                        double charge = 0;
                        for (int i = 0; i < layer.In; i++)
                        {
                            double a = lam[i], l = lo[i], u = hi[i];
                            if (a == 0 || u <= 0) continue; // inactive: relu = 0
                            if (l >= 0) { mu[i] = a; continue; } // active: relu = identity
                            if (a > 0)
                            {
                                // relu(v) ≥ α·v for any α in [0, 1]; 0/1 keeps α·λ exact.
                                mu[i] = u > -l ? a : 0;
                                continue;
                            }
                            // relu(v) ≤ s·v + t on [l, u] when the line is above relu at l and at u (relu is convex).
                            double s = u / (u - l);
                            if (!(s >= 0 && s <= 1)) s = Math.Clamp(double.IsNaN(s) ? 1 : s, 0, 1);
                            double t = Math.Max(Up(-(s * l)), Up(u - Down(s * u)));
                            t = Math.Max(t, 0);
                            double m = a * s;
                            mu[i] = m;
                            charge = AddUp(charge, MulUp(Up(Math.Abs(m) * Ulp1 + Tiny), Math.Max(Math.Abs(l), Math.Abs(u))));
                            beta = AddDown(beta, MulDown(a, t));
                        }
                        beta = AddDown(beta, -charge);
                        break;
                    }
            }
            lam = mu;
        }
        inputCoefficients = lam;
        // Concretise over the input box.
        double s0 = 0, t0 = 0;
        for (int i = 0; i < lam.Length; i++)
        {
            double p = lam[i] >= 0 ? lam[i] * _lo[0][i] : lam[i] * _hi[0][i];
            s0 += p; t0 += Math.Abs(p);
        }
        double r = AddDown(beta, Down(s0 - DotSlack(t0, lam.Length)));
        return double.IsNaN(r) ? double.NegativeInfinity : r;
    }
}
