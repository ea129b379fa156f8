using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>An unsafe conjunction C·y ≤ d as the guard checks it: rows C (row-major, m × outputs), d already widened for the decimal-to-double rounding, and which coefficients were not integers (their rounding is charged per box).</summary>
internal sealed class SpecRows
{
    public SpecRows(double[] c, int rows, double[] dWide, bool[] inexact)
    {
        C = c; Rows = rows; DWide = dWide; Inexact = inexact;
    }

    public double[] C { get; }
    public int Rows { get; }
    public double[] DWide { get; }
    public bool[] Inexact { get; }
    public int Outputs => C.Length / Math.Max(1, Rows);
}

/// <summary>A ReLU split: the part of a domain where neuron Index of node Node (a ReLU's input) is ≥ 0 (or ≤ 0).</summary>
internal readonly record struct SignCut(int Node, int Index, bool NonNegative);

/// <summary>How hard <see cref="RigorousBox.SpecBound"/> works: projected-gradient steps on the ReLU slopes and the row weights.</summary>
internal sealed record SpecSearch
{
    public int Iterations { get; init; } = 12;
    public double AlphaRate { get; init; } = 0.25;
    public double LambdaRate { get; init; } = 0.1;
}

/// <summary>The result of <see cref="RigorousBox.SpecBound"/>.</summary>
internal sealed class SpecOutcome
{
    /// <summary>Rigorous: when &gt; 0, no point of the box satisfies the conjunction.</summary>
    public double Bound;
    /// <summary>The input coefficients of the best objective (where the linear bound is most sensitive).</summary>
    public double[] InputCoefficients = [];
    /// <summary>The best ReLU slopes and row weights found (a warm start for sub-boxes); null when no search ran.</summary>
    public double[]?[]? Alpha;
    public double[]? Lambda;
    /// <summary>The best Lagrange multipliers of the domain's ReLU splits (β-CROWN), one per cut; null when no search ran.</summary>
    public double[]? Beta;
    /// <summary>The unstable ReLU neurons whose relaxation costs the best objective most, most costly first, as (the ReLU's input node, index): candidates for a ReLU split.</summary>
    public (int Node, int Index)[] Neurons = [];
}

public sealed partial class RigorousBox
{
    // 2⁻⁴⁰, written out exactly: the relative rounding of a VNNLIB decimal coefficient into a double (generous).
    internal const double SpecSlack = 9.094947017729282379150390625E-13;

    /// <summary>
    /// A rigorous lower bound of max_r (C_r·y − d_r) over the box, &gt; 0 exactly when it proves that no point of
    /// the box satisfies every row. Tries, cheapest first: each row alone (CROWN and interval bounds); the best
    /// non-negative combination Σ λ_r·(per-row linear bound) (max_r g_r ≥ Σ λ_r g_r for λ in the simplex); then
    /// projected-gradient steps on the combination weights λ and the ReLU lower slopes α of one CROWN pass of
    /// Σ λ_r (C_r y − d_r), with, on a domain cut by ReLU signs (<paramref name="cuts"/>), a Lagrangian term −β_k·s_k·z_k
    /// per cut (β-CROWN: s_k·z_k ≥ 0 on the domain, so it only lowers the objective there, for any β_k ≥ 0). Whatever
    /// λ, α and β the search picks, the bound is computed by the rigorous backward pass.
    /// </summary>
    internal SpecOutcome SpecBound(SpecRows spec, SpecSearch? search, double[]?[]? alphaInit, double[]? lambdaInit, int neuronCandidates = 0,
        SignCut[]? cuts = null, double[]? betaInit = null)
    {
        cuts ??= [];
        int m = spec.Rows, outN = OutputSize, n0 = InputSize;
        var res = new SpecOutcome { Bound = double.NegativeInfinity, InputCoefficients = new double[n0] };
        if (Infeasible) { res.Bound = double.PositiveInfinity; return res; }
        if (Failed || m == 0) return res;
        var b = Offsets(spec);
        // 1. Each row alone.
        var rowBound = new double[m];
        var rowBeta = new double[m];
        var rowA = new double[m * n0];
        Backward(_nodes.Length - 1, m, spec.C, b, null, null, rowBound, rowA, rowBeta);
        int bestRow = 0;
        for (int r = 0; r < m; r++)
        {
            var cr = spec.C.AsSpan(r * outN, outN);
            double ibp = AddDown(Math.Max(IntervalDot(cr, Lo[^1], Hi[^1]), FoldedIntervalDot(cr)), b[r]);
            double g = Math.Max(rowBound[r], ibp);
            if (g > res.Bound) { res.Bound = g; bestRow = r; }
        }
        Array.Copy(rowA, bestRow * n0, res.InputCoefficients, 0, n0);
        if (res.Bound > 0 || m == 1 && search == null) return res;

        // 2. The best combination of the rows' linear bounds g_r(x) ≥ a_r·x + β_r.
        var lambda = m == 1 ? [1.0] : CombineRows(rowA, rowBeta, m, lambdaInit);
        if (m > 1)
        {
            double lp = CombinedValue(rowA, rowBeta, m, lambda, out var coeffs);
            if (lp > res.Bound) { res.Bound = lp; res.InputCoefficients = coeffs; }
            if (res.Bound > 0 || search == null) return res;
        }

        // 3. Projected gradient on (α, λ) for one CROWN pass of Σ λ_r (C_r y + b_r).
        var alpha = new double[_nodes.Length][];
        for (int v = 0; v < _nodes.Length; v++)
        {
            if (_nodes[v] is not ReluNode) continue;
            var lo = Lo[_nodes[v].Inputs[0]]; var hi = Hi[_nodes[v].Inputs[0]];
            var a = new double[lo.Length];
            var init = alphaInit?[v];
            for (int i = 0; i < a.Length; i++) a[i] = init != null ? init[i] : hi[i] > -lo[i] ? 1 : 0;
            alpha[v] = a;
        }
        var adamA = new double[_nodes.Length][];
        var adamA2 = new double[_nodes.Length][];
        for (int v = 0; v < _nodes.Length; v++) if (alpha[v] != null) { adamA[v] = new double[alpha[v].Length]; adamA2[v] = new double[alpha[v].Length]; }
        var mL = new double[m]; var vL = new double[m];
        var lamStart = new double[outN];
        var bound1 = new double[1];
        var beta0 = new double[1];
        var charge0 = new double[1];
        var coeff = new double[n0];
        var gradL = new double[m];
        const double b1 = 0.9, b2 = 0.999, epsAdam = 1e-12;
        double[]?[]? bestAlpha = null;
        double[]? bestLambda = null, bestBeta = null;
        int nc = cuts.Length;
        var beta = new double[nc];
        if (betaInit != null) Array.Copy(betaInit, beta, Math.Min(nc, betaInit.Length));
        var mB = new double[nc]; var vB = new double[nc]; var rateB = new double[nc];
        var terms = nc == 0 ? null : new SignTerm[nc];
        for (int it = 0; it < search!.Iterations; it++)
        {
            CombineHead(spec, b, lambda, lamStart, beta0, charge0);
            for (int k = 0; k < nc; k++) terms![k] = new SignTerm(cuts[k].Node, cuts[k].Index, cuts[k].NonNegative ? -beta[k] : beta[k]);
            var ws = Backward(_nodes.Length - 1, 1, lamStart, beta0, charge0, alpha, bound1, coeff, terms: terms);
            if (bound1[0] > res.Bound)
            {
                res.Bound = bound1[0];
                res.InputCoefficients = (double[])coeff.Clone();
                bestAlpha = alpha.Select(a => a == null ? null : (double[])a.Clone()).ToArray();
                bestLambda = (double[])lambda.Clone();
                bestBeta = (double[])beta.Clone();
            }
            if (it == 0)
                for (int k = 0; k < nc; k++)
                {
                    // β moves on the scale of the multipliers at the cut's node.
                    var l = ws.Lam[cuts[k].Node];
                    double mx = 0;
                    for (int i = 0; i < _nodes[cuts[k].Node].Size; i++) mx = Math.Max(mx, Math.Abs(l[i]));
                    rateB[k] = search.AlphaRate * (mx > 0 ? mx : 1);
                }
            if (res.Bound > 0 || it == search.Iterations - 1) break;
            // The bound equals λ·(C ŷ(x*) + b) for the network with every nonlinearity replaced by the line the pass
            // used, at the input corner x* that minimised it: ∂/∂α_i = λ_v,i·ẑ_i, ∂/∂λ_r = C_r·ŷ(x*) + b_r.
            var z = LineForward(ws, alpha, coeff);
            double corr1 = 1 - Math.Pow(b1, it + 1), corr2 = 1 - Math.Pow(b2, it + 1);
            for (int v = 0; v < _nodes.Length; v++)
            {
                var a = alpha[v];
                if (a == null || !ws.Live[v]) continue;
                var lam = ws.Lam[v];
                var zin = z[_nodes[v].Inputs[0]];
                var lo = Lo[_nodes[v].Inputs[0]]; var hi = Hi[_nodes[v].Inputs[0]];
                var ma = adamA[v]; var va = adamA2[v];
                for (int i = 0; i < a.Length; i++)
                {
                    if (!(lo[i] < 0 && hi[i] > 0)) continue;
                    double g = lam[i] > 0 ? lam[i] * zin[i] : 0;
                    ma[i] = b1 * ma[i] + (1 - b1) * g;
                    va[i] = b2 * va[i] + (1 - b2) * g * g;
                    double step = search.AlphaRate * (ma[i] / corr1) / (Math.Sqrt(va[i] / corr2) + epsAdam);
                    a[i] = Math.Clamp(a[i] + (double.IsFinite(step) ? step : 0), 0, 1);
                }
            }
            if (m > 1)
            {
                var y = z[_nodes.Length - 1];
                for (int r = 0; r < m; r++)
                {
                    double g = b[r];
                    for (int j = 0; j < outN; j++) g += spec.C[r * outN + j] * y[j];
                    gradL[r] = g;
                    mL[r] = b1 * mL[r] + (1 - b1) * g;
                    vL[r] = b2 * vL[r] + (1 - b2) * g * g;
                    double step = search.LambdaRate * (mL[r] / corr1) / (Math.Sqrt(vL[r] / corr2) + epsAdam);
                    lambda[r] += double.IsFinite(step) ? step : 0;
                }
                ProjectSimplex(lambda);
            }
            for (int k = 0; k < nc; k++)
            {
                // ∂/∂β_k = −s_k·ẑ_k(x*).
                double zk = z[cuts[k].Node][cuts[k].Index];
                double g = cuts[k].NonNegative ? -zk : zk;
                mB[k] = b1 * mB[k] + (1 - b1) * g;
                vB[k] = b2 * vB[k] + (1 - b2) * g * g;
                double step = rateB[k] * (mB[k] / corr1) / (Math.Sqrt(vB[k] / corr2) + epsAdam);
                beta[k] = Math.Max(0, beta[k] + (double.IsFinite(step) ? step : 0));
            }
        }
        res.Alpha = bestAlpha;
        res.Lambda = bestLambda;
        res.Beta = bestBeta;
        if (neuronCandidates > 0 && res.Bound <= 0) res.Neurons = CostlyNeurons(spec, b, bestLambda ?? lambda, bestAlpha ?? alpha, neuronCandidates, cuts, bestBeta ?? beta);
        return res;
    }

    /// <summary>
    /// The unstable ReLU neurons with the largest |λᵢ|·(−l·u/(u − l)) in one pass of Σ λ_r (C_r y + b_r) (λᵢ the
    /// pass's multiplier of the neuron, the other factor the height of its triangle relaxation).
    /// </summary>
    private (int, int)[] CostlyNeurons(SpecRows spec, double[] b, double[] lambda, double[]?[] alpha, int count, SignCut[] cuts, double[] beta)
    {
        var lamStart = new double[OutputSize];
        double[] beta0 = new double[1], charge0 = new double[1], bound = new double[1];
        CombineHead(spec, b, lambda, lamStart, beta0, charge0);
        var terms = cuts.Length == 0 ? null : cuts.Select((c, k) => new SignTerm(c.Node, c.Index, c.NonNegative ? -beta[k] : beta[k])).ToArray();
        var ws = Backward(_nodes.Length - 1, 1, lamStart, beta0, charge0, alpha, bound, null, terms: terms);
        var best = new List<(double Score, int Node, int Index)>();
        for (int v = 0; v < _nodes.Length; v++)
        {
            if (_nodes[v] is not ReluNode || !ws.Live[v] || _nodes[v].Inputs[0] == 0) continue;
            var lo = Lo[_nodes[v].Inputs[0]]; var hi = Hi[_nodes[v].Inputs[0]];
            var lam = ws.Lam[v];
            for (int i = 0; i < lo.Length; i++)
            {
                double l = lo[i], u = hi[i];
                if (!(l < 0 && u > 0) || lam[i] == 0) continue;
                double score = Math.Abs(lam[i]) * (-l * u / (u - l));
                if (!(score > 0)) continue;
                best.Add((score, _nodes[v].Inputs[0], i));
            }
        }
        return best.OrderByDescending(t => t.Score).Take(count).Select(t => (t.Node, t.Index)).ToArray();
    }

    /// <summary>b_r = −(d_r + the rounding of the row's inexact coefficients, Σ_j |c_j|·2⁻⁴⁰·max|y_j|), rounded down: C_r·y + b_r ≤ C_r·y − d_r for the exact rows.</summary>
    private double[] Offsets(SpecRows spec)
    {
        int m = spec.Rows, outN = OutputSize;
        var b = new double[m];
        var yMax = MaxAbs[^1];
        for (int r = 0; r < m; r++)
        {
            double s = 0;
            if (spec.Inexact[r])
                for (int j = 0; j < outN; j++)
                {
                    double c = spec.C[r * outN + j];
                    if (c != Math.Round(c)) s = AddUp(s, MulUp(MulUp(Math.Abs(c), SpecSlack), yMax[j]));
                }
            b[r] = -AddUp(spec.DWide[r], s);
        }
        return b;
    }

    /// <summary>
    /// A rigorous lower bound of Σ_r λ_r·(C_r·y − d_r) over the domain for any weights λ ≥ 0 and any ReLU lower
    /// slopes α in [0, 1] (per ReLU node, null: CROWN's choice): one CROWN pass. When it is &gt; 0 with λ ≠ 0, no
    /// point satisfies every row. With <paramref name="beta"/> (one β ≥ 0 per cut), the bound holds on the part of
    /// the domain where every cut's sign holds.
    /// </summary>
    internal double CombinedBound(SpecRows spec, double[] lambda, double[]?[]? alpha, SignCut[]? cuts = null, double[]? beta = null)
    {
        cuts ??= [];
        if (beta != null && (beta.Length != cuts.Length || beta.Any(x => !(x >= 0) || !double.IsFinite(x)))) throw new ArgumentException("RigorousBox.CombinedBound: one finite β ≥ 0 per cut.");
        if (lambda.Length != spec.Rows || lambda.Any(l => !(l >= 0) || !double.IsFinite(l))) throw new ArgumentException("RigorousBox.CombinedBound: the weights must be finite and non-negative, one per row.");
        if (alpha != null)
            for (int v = 0; v < _nodes.Length; v++)
                if (alpha[v] is { } a && (_nodes[v] is not ReluNode || a.Length != _nodes[v].Size || a.Any(x => !(x >= 0 && x <= 1))))
                    throw new ArgumentException($"RigorousBox.CombinedBound: node {v} has no valid slopes (a ReLU's, in [0, 1]).");
        if (Infeasible) return double.PositiveInfinity;
        if (Failed) return double.NegativeInfinity;
        var lamStart = new double[OutputSize];
        double[] beta0 = new double[1], charge0 = new double[1], bound = new double[1];
        CombineHead(spec, Offsets(spec), lambda, lamStart, beta0, charge0);
        var terms = beta == null ? null : cuts.Select((c, k) => new SignTerm(c.Node, c.Index, c.NonNegative ? -beta[k] : beta[k])).ToArray();
        Backward(_nodes.Length - 1, 1, lamStart, beta0, charge0, alpha, bound, null, terms: terms);
        return bound[0];
    }

    /// <summary>Λ_out = Σ_r λ_r C_r (rounded; its rounding charged against max|y|), β = Σ_r λ_r b_r rounded down.</summary>
    private void CombineHead(SpecRows spec, double[] b, double[] lambda, double[] lamStart, double[] beta0, double[] charge0)
    {
        int m = spec.Rows, outN = OutputSize;
        var yMax = MaxAbs[^1];
        double ch = 0;
        for (int j = 0; j < outN; j++)
        {
            double s = 0, t = 0;
            for (int r = 0; r < m; r++) { double p = lambda[r] * spec.C[r * outN + j]; s += p; t += Math.Abs(p); }
            lamStart[j] = s;
            if (t != 0) ch = AddUp(ch, MulUp(DotSlack(t, m), yMax[j]));
        }
        beta0[0] = DotDown(lambda, b);
        charge0[0] = ch;
    }

    /// <summary>Row weights λ in the simplex maximising min over the box of Σ λ_r (a_r·x + β_r) (exponentiated supergradient ascent; approximate).</summary>
    private double[] CombineRows(double[] a, double[] beta, int m, double[]? init)
    {
        int n0 = InputSize;
        var lam = new double[m];
        if (init != null && init.Length == m) Array.Copy(init, lam, m);
        else Array.Fill(lam, 1.0 / m);
        ProjectSimplex(lam);
        var best = (double[])lam.Clone();
        double bestV = double.NegativeInfinity;
        var g = new double[m];
        var comb = new double[n0];
        for (int it = 0; it < 60; it++)
        {
            Array.Clear(comb);
            for (int r = 0; r < m; r++) for (int i = 0; i < n0; i++) comb[i] += lam[r] * a[r * n0 + i];
            double val = 0, scale = 0;
            for (int r = 0; r < m; r++) val += lam[r] * beta[r];
            for (int i = 0; i < n0; i++) val += comb[i] >= 0 ? comb[i] * Lo[0][i] : comb[i] * Hi[0][i];
            if (val > bestV) { bestV = val; Array.Copy(lam, best, m); }
            for (int r = 0; r < m; r++)
            {
                double s = beta[r];
                for (int i = 0; i < n0; i++) s += a[r * n0 + i] * (comb[i] >= 0 ? Lo[0][i] : Hi[0][i]);
                g[r] = s; scale = Math.Max(scale, Math.Abs(s));
            }
            if (!(scale > 0) || !double.IsFinite(scale)) break;
            double eta = 2.0 / Math.Sqrt(it + 1) / scale, sum = 0;
            for (int r = 0; r < m; r++) { lam[r] = Math.Max(lam[r], 1e-9) * Math.Exp(eta * g[r]); sum += lam[r]; }
            for (int r = 0; r < m; r++) lam[r] /= sum;
        }
        return best;
    }

    /// <summary>A rigorous lower bound of min over the box of Σ λ_r g_r(x) from g_r(x) ≥ a_r·x + β_r (λ ≥ 0); the combined coefficients out.</summary>
    private double CombinedValue(double[] a, double[] beta, int m, double[] lambda, out double[] coeffs)
    {
        int n0 = InputSize;
        coeffs = new double[n0];
        double ch = 0;
        for (int i = 0; i < n0; i++)
        {
            double s = 0, t = 0;
            for (int r = 0; r < m; r++) { double p = lambda[r] * a[r * n0 + i]; s += p; t += Math.Abs(p); }
            coeffs[i] = s;
            if (t != 0) ch = AddUp(ch, MulUp(DotSlack(t, m), MaxAbs[0][i]));
        }
        double s0 = 0, t0 = 0;
        for (int i = 0; i < n0; i++)
        {
            double p = coeffs[i] >= 0 ? coeffs[i] * Lo[0][i] : coeffs[i] * Hi[0][i];
            s0 += p; t0 += Math.Abs(p);
        }
        double r0 = AddDown(AddDown(DotDown(lambda, beta), -ch), Down(s0 - DotSlack(t0, n0)));
        return double.IsFinite(r0) ? r0 : double.NegativeInfinity;
    }

    /// <summary>Euclidean projection onto the probability simplex (any λ ≥ 0 would be sound; the simplex keeps the scale fixed).</summary>
    internal static void ProjectSimplex(double[] v)
    {
        int n = v.Length;
        for (int i = 0; i < n; i++) if (!double.IsFinite(v[i])) v[i] = 0;
        var u = v.OrderByDescending(x => x).ToArray();
        double css = 0, theta = 0;
        for (int k = 0; k < n; k++)
        {
            css += u[k];
            double t = (css - 1) / (k + 1);
            if (u[k] - t > 0) theta = t;
        }
        for (int i = 0; i < n; i++) v[i] = Math.Max(v[i] - theta, 0);
    }

    /// <summary>
    /// The value of every node at the input corner x* (x*_i = lower where the pass's input coefficient is ≥ 0) for
    /// the network with each nonlinearity replaced by the line the last backward pass used there (round to nearest:
    /// a search direction, not a bound).
    /// </summary>
    private double[][] LineForward(Workspace ws, double[]?[] alpha, double[] coeff)
    {
        int n = _nodes.Length;
        if (ws.Fwd.Length < n) { ws.Fwd = new double[n][]; for (int v = 0; v < n; v++) ws.Fwd[v] = []; }
        var val = ws.Fwd;
        var x = Workspace.Grow(ref val[0], InputSize);
        for (int i = 0; i < InputSize; i++) x[i] = coeff[i] >= 0 ? Lo[0][i] : Hi[0][i];
        for (int v = 1; v < n; v++)
        {
            var node = _nodes[v];
            var z = val[node.Inputs[0]];
            var y = Workspace.Grow(ref val[v], node.Size);
            var lam = ws.Live[v] ? ws.Lam[v] : null;
            switch (node)
            {
                case DenseNode d:
                    for (int o = 0; o < d.Size; o++)
                        y[o] = (d.B?[o] ?? 0) + d.RowDot(o, z);
                    break;
                case DiagNode g:
                    for (int i = 0; i < node.Size; i++) y[i] = (g.A?[i] ?? 1) * z[i] + (g.C?[i] ?? 0);
                    break;
                case PermNode p:
                    for (int i = 0; i < node.Size; i++) y[i] = z[p.Src[i]];
                    break;
                case AddNode a:
                    var z2 = val[a.Inputs[1]];
                    for (int i = 0; i < node.Size; i++) y[i] = a.Subtract ? z[i] - z2[i] : z[i] + z2[i];
                    break;
                case ReluNode:
                    {
                        var lo = Lo[node.Inputs[0]]; var hi = Hi[node.Inputs[0]];
                        for (int i = 0; i < node.Size; i++)
                        {
                            double l = lo[i], h = hi[i];
                            if (h <= 0) y[i] = 0;
                            else if (l >= 0) y[i] = z[i];
                            else if (lam != null && lam[i] < 0) y[i] = _upS[v]![i] * z[i] + _upT[v]![i];
                            else y[i] = (alpha[v]?[i] ?? (h > -l ? 1 : 0)) * z[i];
                        }
                        break;
                    }
                case SShapeNode:
                    for (int i = 0; i < node.Size; i++)
                        y[i] = lam != null && lam[i] < 0 ? _upS[v]![i] * z[i] + _upT[v]![i] : _loS[v]![i] * z[i] + _loT[v]![i];
                    break;
                case GroupNode g:
                    for (int o = 0; o < node.Size; o++)
                    {
                        if (g.IsMax)
                        {
                            y[o] = lam != null && lam[o] < 0 && !_dominant[v]![o] ? _maxHi[v]![o] : z[_argMax[v]![o]];
                            continue;
                        }
                        double acc = 0;
                        for (int q = g.Start[o]; q < g.Start[o + 1]; q++) acc += z[g.Index[q]];
                        y[o] = acc;
                    }
                    break;
            }
        }
        return val;
    }
}
