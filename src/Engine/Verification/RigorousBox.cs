using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// Rigorous float64 bounds of a <see cref="RigorousNetwork"/> over one input box: the bounds of every node (valid
/// for the network in exact real arithmetic) and CROWN lower bounds of linear functions of the output.
/// </summary>
public sealed partial class RigorousBox
{
    private readonly RigorousNode[] _nodes;
    // Per node: bounds of its value, and max(|lo|, |hi|) (the magnitude rounding errors of λ are charged against).
    internal readonly double[][] Lo, Hi, MaxAbs;
    // Per dense node: Σᵢ colAbsᵢ·max|xᵢ| and Σᵢ max|xᵢ| over its input x, rounded up.
    private readonly double[] _k1, _k2;
    // Per ReLU node: the upper line s·v + t of unstable neurons. Per sigmoid / tanh node: both lines.
    private readonly double[]?[] _upS, _upT, _loS, _loT;
    // Per ReLU node, per neuron: the factor λ is multiplied by when λ > 0 (CROWN's slope) and when λ < 0, the upper
    // line's intercept (0 unless unstable), and max|v| of unstable neurons (0 elsewhere: their products are exact).
    private readonly double[]?[] _fPos, _fNeg, _tNeg, _magU;
    private readonly double[] _magUSum;
    // Per max node: the member with the largest lower bound, whether it dominates its window, the window's max upper bound.
    private readonly int[]?[] _argMax;
    private readonly bool[]?[] _dominant;
    private readonly double[]?[] _maxHi;

    internal RigorousBox(RigorousNetwork net, double[] lower, double[] upper, RigorousBox? enclosing)
    {
        Network = net;
        _nodes = net.Nodes;
        int n = _nodes.Length;
        Lo = new double[n][]; Hi = new double[n][]; MaxAbs = new double[n][];
        _k1 = new double[n]; _k2 = new double[n];
        _upS = new double[n][]; _upT = new double[n][]; _loS = new double[n][]; _loT = new double[n][];
        _argMax = new int[n][]; _dominant = new bool[n][]; _maxHi = new double[n][];
        _fPos = new double[n][]; _fNeg = new double[n][]; _tNeg = new double[n][]; _magU = new double[n][]; _magUSum = new double[n];
        Lo[0] = lower; Hi[0] = upper;
        MaxAbs[0] = Magnitudes(lower, upper);
        int first = 1;
        if (enclosing is { CutNode: > 0 } e && !e.Failed && lower.AsSpan().SequenceEqual(e.Lo[0]) && upper.AsSpan().SequenceEqual(e.Hi[0]))
        {
            // A ReLU split of the enclosing domain over the same input box: the nodes before the cut read nothing the
            // cut changed, so computing them again would give the enclosing domain's bounds and relaxations; they are
            // taken from it (valid here: this domain is part of that one), and the cut node takes the cut bounds.
            if (e.Infeasible) { Infeasible = true; return; }
            int k = e.CutNode;
            for (int v = 1; v <= k; v++)
            {
                Lo[v] = e.Lo[v]; Hi[v] = e.Hi[v]; MaxAbs[v] = e.MaxAbs[v]; _k1[v] = e._k1[v]; _k2[v] = e._k2[v];
                _upS[v] = e._upS[v]; _upT[v] = e._upT[v]; _loS[v] = e._loS[v]; _loT[v] = e._loT[v];
                _argMax[v] = e._argMax[v]; _dominant[v] = e._dominant[v]; _maxHi[v] = e._maxHi[v];
                _fPos[v] = e._fPos[v]; _fNeg[v] = e._fNeg[v]; _tNeg[v] = e._tNeg[v]; _magU[v] = e._magU[v]; _magUSum[v] = e._magUSum[v];
            }
            MaxAbs[k] = Magnitudes(Lo[k], Hi[k]);
            first = k + 1;
        }
        for (int v = first; v < n; v++)
        {
            var node = _nodes[v];
            if (node is DenseNode d)
            {
                // The charge constants read the input's final bounds.
                var m = MaxAbs[d.Inputs[0]];
                double s1 = 0, s2 = 0;
                for (int i = 0; i < m.Length; i++) { s1 += d.ColAbs[i] * m[i]; s2 += m[i]; }
                _k1[v] = Up(s1 + DotSlack(s1, m.Length));
                _k2[v] = Up(s2 + DotSlack(s2, m.Length));
            }
            var (l, h) = Interval(v);
            if (enclosing != null)
            {
                // The enclosing domain's bounds hold here too; disjoint bounds mean that no input reaches this domain.
                var el = enclosing.Lo[v]; var eh = enclosing.Hi[v];
                for (int i = 0; i < l.Length; i++)
                {
                    double a = Math.Max(l[i], el[i]), b = Math.Min(h[i], eh[i]);
                    if (a <= b) { l[i] = a; h[i] = b; }
                    else Infeasible = true;
                }
            }
            Lo[v] = l; Hi[v] = h;
            if (Infeasible) break;
            if (!AllFinite(l) || !AllFinite(h)) { Failed = true; break; }
            Relax(v);
            if (net.Refine[v] != 0) RefineNode(v, net.Refine[v]);
            if (Infeasible) break;
            MaxAbs[v] = Magnitudes(Lo[v], Hi[v]);
        }
    }

    /// <summary>A copy whose bounds of neuron <paramref name="index"/> of node <paramref name="node"/> are cut at 0 (kept ≥ 0, or ≤ 0): the bounds of the part of the domain where that neuron has that sign, used as the enclosing bounds of that part (a ReLU split).</summary>
    internal RigorousBox WithSign(int node, int index, bool nonNegative) => new(this, node, index, nonNegative);

    private RigorousBox(RigorousBox src, int node, int index, bool nonNegative)
    {
        Network = src.Network; _nodes = src._nodes;
        Lo = (double[][])src.Lo.Clone(); Hi = (double[][])src.Hi.Clone(); MaxAbs = src.MaxAbs;
        _k1 = src._k1; _k2 = src._k2; _upS = src._upS; _upT = src._upT; _loS = src._loS; _loT = src._loT;
        _argMax = src._argMax; _dominant = src._dominant; _maxHi = src._maxHi;
        _fPos = src._fPos; _fNeg = src._fNeg; _tNeg = src._tNeg; _magU = src._magU; _magUSum = src._magUSum;
        Lo[node] = (double[])Lo[node].Clone(); Hi[node] = (double[])Hi[node].Clone();
        if (nonNegative) Lo[node][index] = Math.Max(Lo[node][index], 0);
        else Hi[node][index] = Math.Min(Hi[node][index], 0);
        Failed = src.Failed;
        Infeasible = src.Infeasible || Lo[node][index] > Hi[node][index];
        CutNode = node;
    }

    /// <summary>For a box made by <see cref="WithSign"/>: the node whose bounds were cut (every earlier node's bounds and relaxations are those of the box it was cut from); 0 otherwise.</summary>
    internal int CutNode { get; }

    internal RigorousNetwork Network { get; }

    /// <summary>True when the bounds show that no input of the box lies in the domain (the box cut by ReLU signs): every property holds there.</summary>
    internal bool Infeasible { get; private set; }

    /// <summary>True when some bound overflowed or became NaN; every bound query then returns −∞ (proves nothing).</summary>
    public bool Failed { get; }

    /// <summary>Rigorous lower bounds of the network outputs over the box.</summary>
    public ReadOnlySpan<double> OutputLower => Lo[^1];

    /// <summary>Rigorous upper bounds of the network outputs over the box.</summary>
    public ReadOnlySpan<double> OutputUpper => Hi[^1];

    /// <summary>Rigorous lower bounds of the network inputs (the box).</summary>
    internal double[] InputLower => Lo[0];

    /// <summary>Rigorous upper bounds of the network inputs (the box).</summary>
    internal double[] InputUpper => Hi[0];

    /// <summary>Number of ReLU neurons whose input bounds straddle zero.</summary>
    public int UnstableCount
    {
        get
        {
            int u = 0;
            for (int v = 0; v < _nodes.Length; v++)
                if (_nodes[v] is ReluNode && Lo[_nodes[v].Inputs[0]] != null)
                {
                    var l = Lo[_nodes[v].Inputs[0]]; var h = Hi[_nodes[v].Inputs[0]];
                    for (int i = 0; i < l.Length; i++) if (l[i] < 0 && h[i] > 0) u++;
                }
            return u;
        }
    }

    private static bool AllFinite(double[] v)
    {
        foreach (var x in v) if (!double.IsFinite(x)) return false;
        return true;
    }

    private static double[] Magnitudes(double[] lo, double[] hi)
    {
        var m = new double[lo.Length];
        for (int i = 0; i < m.Length; i++) m[i] = Math.Max(Math.Abs(lo[i]), Math.Abs(hi[i]));
        return m;
    }

    /// <summary>
    /// A rigorous lower bound of c·y over the box (y the network output), the larger of the CROWN and the interval
    /// bound; <paramref name="inputCoefficients"/> receives the CROWN coefficients on the input (a sensitivity
    /// used to choose which input to split). −∞ when <see cref="Failed"/>.
    /// </summary>
    public double LowerBound(ReadOnlySpan<double> c, out double[] inputCoefficients) => LowerBound(c, null, out inputCoefficients);

    /// <summary>
    /// As <see cref="LowerBound(ReadOnlySpan{double}, out double[])"/>, with the lower slopes of the unstable ReLU
    /// neurons given: <paramref name="reluLowerSlopes"/> holds one array per ReLU of the network (in graph order,
    /// one slope in [0, 1] per neuron; null: CROWN's choice, 1 where the upper bound exceeds −lower, else 0). Any
    /// slope in [0, 1] gives a sound bound (relu(v) ≥ α·v for every v), so the slopes may come from an optimiser.
    /// </summary>
    public double LowerBound(ReadOnlySpan<double> c, IReadOnlyList<double[]>? reluLowerSlopes, out double[] inputCoefficients)
    {
        if (c.Length != OutputSize) throw new ArgumentException($"RigorousBox.LowerBound: expected {OutputSize} coefficients, got {c.Length}.");
        foreach (var x in c) if (!double.IsFinite(x)) throw new ArgumentException("RigorousBox.LowerBound: the coefficients must be finite.");
        double[]?[]? alpha = null;
        if (reluLowerSlopes != null)
        {
            var relus = Enumerable.Range(0, _nodes.Length).Where(v => _nodes[v] is ReluNode).ToArray();
            if (reluLowerSlopes.Count != relus.Length) throw new ArgumentException($"RigorousBox.LowerBound: the network has {relus.Length} ReLUs, got {reluLowerSlopes.Count} slope arrays.");
            alpha = new double[_nodes.Length][];
            for (int q = 0; q < relus.Length; q++)
            {
                var a = reluLowerSlopes[q];
                if (a == null) continue;
                if (a.Length != _nodes[relus[q]].Size) throw new ArgumentException($"RigorousBox.LowerBound: ReLU {q} has {_nodes[relus[q]].Size} neurons, got {a.Length} slopes.");
                foreach (var s in a) if (!(s >= 0 && s <= 1)) throw new ArgumentException($"RigorousBox.LowerBound: ReLU slope {s} is outside [0, 1].");
                alpha[relus[q]] = a;
            }
        }
        inputCoefficients = new double[InputSize];
        if (Failed) return double.NegativeInfinity;
        var res = new double[1];
        Backward(_nodes.Length - 1, 1, c, null, null, alpha, res, inputCoefficients);
        double r = Math.Max(res[0], Math.Max(IntervalDot(c, Lo[^1], Hi[^1]), FoldedIntervalDot(c)));
        return double.IsNaN(r) ? double.NegativeInfinity : r;
    }

    /// <summary>Length of the network output.</summary>
    internal int OutputSize => Network.OutputSize;

    /// <summary>Length of the network input.</summary>
    internal int InputSize => Network.InputSize;

    /// <summary>
    /// A rigorous lower bound of c·y (y the network output) from the interval bounds of the last layer's input when
    /// the output is a dense layer y = W·h + b of one node: (cᵀW)·h + c·b over h in its bounds, each coefficient of
    /// cᵀW an interval around its rounded value and each corner product rounded once (rounding is monotone, so the
    /// least rounded corner product is the rounded least exact one; the sum's rounding is charged). Far tighter than
    /// the interval of c·y from the outputs' own intervals when the outputs share their inputs (a margin y_a − y_b);
    /// −∞ when the last node is of another kind.
    /// </summary>
    internal double FoldedIntervalDot(ReadOnlySpan<double> c)
    {
        if (Failed || _nodes[^1] is not DenseNode { Inputs.Length: 1 } d) return double.NegativeInfinity;
        var lo = Lo[d.Inputs[0]]; var hi = Hi[d.Inputs[0]];
        int n = d.In, m = d.Size;
        double sum = 0, abs = 0;
        for (int i = 0; i < n; i++)
        {
            double s = 0, t = 0;
            for (int j = 0; j < m; j++)
            {
                if (c[j] == 0) continue;
                double p = c[j] * d.W[j * n + i];
                s += p; t += Math.Abs(p);
            }
            double err = DotSlack(t, m);
            double al = Down(s - err), ah = Up(s + err);
            double q = Math.Min(Math.Min(al * lo[i], al * hi[i]), Math.Min(ah * lo[i], ah * hi[i]));
            sum += q; abs += Math.Abs(q);
        }
        double bias = d.B == null ? 0 : DotDown(c, d.B);
        double r = AddDown(Down(sum - DotSlack(abs, n)), bias);
        return double.IsNaN(r) ? double.NegativeInfinity : r;
    }

    /// <summary>Lower bound of Σ c_i v_i for v in [lo, hi].</summary>
    internal static double IntervalDot(ReadOnlySpan<double> c, double[] lo, double[] hi)
    {
        double s = 0, t = 0;
        for (int i = 0; i < c.Length; i++)
        {
            double p = c[i] >= 0 ? c[i] * lo[i] : c[i] * hi[i];
            s += p; t += Math.Abs(p);
        }
        double r = Down(s - DotSlack(t, c.Length));
        return double.IsNaN(r) ? double.NegativeInfinity : r;
    }

    private (double[] Lo, double[] Hi) Interval(int v)
    {
        var node = _nodes[v];
        var lo = Lo[node.Inputs[0]]; var hi = Hi[node.Inputs[0]];
        var l = new double[node.Size];
        var h = new double[node.Size];
        switch (node)
        {
            case DenseNode d:
                {
                    // Centre-radius form: W·x + b over x ∈ [m − r, m + r] is W·m + b ± |W|·r, each sum's rounding charged.
                    var ws = _workspace ??= new Workspace();
                    var mid = Workspace.Grow(ref ws.Mid, d.In);
                    var amid = Workspace.Grow(ref ws.AbsMid, d.In);
                    var rad = Workspace.Grow(ref ws.Rad, d.In);
                    for (int i = 0; i < d.In; i++)
                    {
                        double m = lo[i] + 0.5 * (hi[i] - lo[i]);
                        mid[i] = m; amid[i] = Math.Abs(m);
                        rad[i] = Up(Math.Max(hi[i] - m, m - lo[i]));
                    }
                    for (int o = 0; o < d.Size; o++)
                    {
                        var (c, t, r) = d.Runs is { } sr ? Dot3(sr, o, mid, amid, rad) : Dot3(d.W.AsSpan(o * d.In, d.In), d.AbsW.AsSpan(o * d.In, d.In), mid, amid, rad);
                        double b = d.B?[o] ?? 0;
                        c += b; t += Math.Abs(b);
                        double w = AddUp(AddUp(r, DotSlack(t, d.In + 1)), DotSlack(r, d.In));
                        l[o] = Down(c - w); h[o] = Up(c + w);
                    }
                    break;
                }
            case DiagNode g:
                for (int i = 0; i < l.Length; i++)
                {
                    double pl = lo[i], ph = hi[i];
                    if (g.A != null)
                    {
                        double p1 = g.A[i] * lo[i], p2 = g.A[i] * hi[i];
                        pl = Down(Math.Min(p1, p2)); ph = Up(Math.Max(p1, p2));
                        if (g.ARad != null)
                        {
                            double e = MulUp(g.ARad[i], Math.Max(Math.Abs(lo[i]), Math.Abs(hi[i])));
                            pl = AddDown(pl, -e); ph = AddUp(ph, e);
                        }
                    }
                    if (g.C != null)
                    {
                        double cr = g.CRad?[i] ?? 0;
                        pl = AddDown(pl, cr == 0 ? g.C[i] : AddDown(g.C[i], -cr));
                        ph = AddUp(ph, cr == 0 ? g.C[i] : AddUp(g.C[i], cr));
                    }
                    l[i] = pl; h[i] = ph;
                }
                break;
            case PermNode p:
                for (int i = 0; i < l.Length; i++) { l[i] = lo[p.Src[i]]; h[i] = hi[p.Src[i]]; }
                break;
            case AddNode a:
                {
                    var lo2 = Lo[a.Inputs[1]]; var hi2 = Hi[a.Inputs[1]];
                    for (int i = 0; i < l.Length; i++)
                    {
                        if (a.Subtract) { l[i] = AddDown(lo[i], -hi2[i]); h[i] = AddUp(hi[i], -lo2[i]); }
                        else { l[i] = AddDown(lo[i], lo2[i]); h[i] = AddUp(hi[i], hi2[i]); }
                    }
                    break;
                }
            case SShapeNode s:
                for (int i = 0; i < l.Length; i++) { l[i] = SShapeLines.F(s.Kind, lo[i]).Lo; h[i] = SShapeLines.F(s.Kind, hi[i]).Hi; }
                break;
            case GroupNode g:
                for (int o = 0; o < l.Length; o++)
                {
                    int s0 = g.Start[o], s1 = g.Start[o + 1];
                    if (g.IsMax)
                    {
                        double ml = double.NegativeInfinity, mh = double.NegativeInfinity;
                        for (int q = s0; q < s1; q++) { ml = Math.Max(ml, lo[g.Index[q]]); mh = Math.Max(mh, hi[g.Index[q]]); }
                        l[o] = ml; h[o] = mh;
                        continue;
                    }
                    double sl = 0, sh = 0, tl = 0, th = 0;
                    for (int q = s0; q < s1; q++) { sl += lo[g.Index[q]]; sh += hi[g.Index[q]]; tl += Math.Abs(lo[g.Index[q]]); th += Math.Abs(hi[g.Index[q]]); }
                    l[o] = Down(sl - DotSlack(tl, s1 - s0)); h[o] = Up(sh + DotSlack(th, s1 - s0));
                }
                break;
            default:
                for (int i = 0; i < l.Length; i++) { l[i] = Math.Max(lo[i], 0); h[i] = Math.Max(hi[i], 0); }
                break;
        }
        return (l, h);
    }

    /// <summary>(Σ w·m, Σ |w|·|m|, Σ |w|·r) over one row (any summation order; callers charge the rounding).</summary>
    private static (double C, double T, double R) Dot3(ReadOnlySpan<double> w, ReadOnlySpan<double> aw, double[] m, double[] am, double[] r)
    {
        int i = 0, n = w.Length;
        double c = 0, t = 0, s = 0;
        if (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && n >= 8)
        {
            var vc = System.Runtime.Intrinsics.Vector512<double>.Zero; var vt = vc; var vs = vc;
            for (; i + 8 <= n; i += 8)
            {
                var x = System.Runtime.Intrinsics.Vector512.Create(w[i..]);
                var ax = System.Runtime.Intrinsics.Vector512.Create(aw[i..]);
                vc = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(x, System.Runtime.Intrinsics.Vector512.Create(m.AsSpan(i)), vc);
                vt = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(ax, System.Runtime.Intrinsics.Vector512.Create(am.AsSpan(i)), vt);
                vs = System.Runtime.Intrinsics.Vector512.FusedMultiplyAdd(ax, System.Runtime.Intrinsics.Vector512.Create(r.AsSpan(i)), vs);
            }
            c = System.Runtime.Intrinsics.Vector512.Sum(vc); t = System.Runtime.Intrinsics.Vector512.Sum(vt); s = System.Runtime.Intrinsics.Vector512.Sum(vs);
        }
        for (; i < n; i++) { c += w[i] * m[i]; t += aw[i] * am[i]; s += aw[i] * r[i]; }
        return (c, t, s);
    }

    /// <summary>As the dense Dot3 over row o of a sparse matrix (its exact zeros skipped: they add nothing).</summary>
    private static (double C, double T, double R) Dot3(SparseRuns s, int o, double[] m, double[] am, double[] r)
    {
        double c = 0, t = 0, q = 0;
        for (int k = s.RunStart[o]; k < s.RunStart[o + 1]; k++)
        {
            int i0 = s.RunCol[k], v0 = s.RunVal[k], len = s.RunLen[k];
            for (int j = 0; j < len; j++)
            {
                double w = s.Val[v0 + j], aw = s.AbsVal[v0 + j];
                c += w * m[i0 + j]; t += aw * am[i0 + j]; q += aw * r[i0 + j];
            }
        }
        return (c, t, q);
    }

    /// <summary>The linear relaxation of a nonlinear node, from its input's final bounds.</summary>
    private void Relax(int v)
    {
        var node = _nodes[v];
        var lo = Lo[node.Inputs[0]]; var hi = Hi[node.Inputs[0]];
        int n = node.Size;
        switch (node)
        {
            case ReluNode:
                {
                    var s = new double[n]; var t = new double[n];
                    var fp = new double[n]; var fn = new double[n]; var mg = new double[n];
                    var mag = MaxAbs[node.Inputs[0]];
                    double mgSum = 0;
                    for (int i = 0; i < n; i++)
                    {
                        double l = lo[i], u = hi[i];
                        if (u <= 0) continue;
                        if (l >= 0) { fp[i] = fn[i] = 1; continue; }
                        fp[i] = u > -l ? 1 : 0;
                        mg[i] = mag[i]; mgSum += mag[i];
                        // relu(v) ≤ s·v + t on [l, u] when the line is above relu at l and at u (relu is convex).
                        double si = u / (u - l);
                        if (!(si >= 0 && si <= 1)) si = Math.Clamp(double.IsNaN(si) ? 1 : si, 0, 1);
                        s[i] = si; fn[i] = si;
                        t[i] = Math.Max(0, Math.Max(Up(-(si * l)), Up(u - Down(si * u))));
                    }
                    _upS[v] = s; _upT[v] = t;
                    _fPos[v] = fp; _fNeg[v] = fn; _tNeg[v] = t; _magU[v] = mg;
                    _magUSum[v] = Up(mgSum + DotSlack(mgSum, n));
                    break;
                }
            case SShapeNode sh:
                {
                    var us = new double[n]; var ut = new double[n]; var ls = new double[n]; var lt = new double[n];
                    for (int i = 0; i < n; i++)
                    {
                        (us[i], ut[i]) = SShapeLines.Upper(sh.Kind, lo[i], hi[i]);
                        (ls[i], lt[i]) = SShapeLines.Lower(sh.Kind, lo[i], hi[i]);
                    }
                    _upS[v] = us; _upT[v] = ut; _loS[v] = ls; _loT[v] = lt;
                    break;
                }
            case GroupNode { IsMax: true } g:
                {
                    var am = new int[n]; var dom = new bool[n]; var mh = new double[n];
                    for (int o = 0; o < n; o++)
                    {
                        int best = g.Index[g.Start[o]];
                        double hMax = double.NegativeInfinity;
                        for (int q = g.Start[o]; q < g.Start[o + 1]; q++)
                        {
                            int k = g.Index[q];
                            if (lo[k] > lo[best]) best = k;
                            hMax = Math.Max(hMax, hi[k]);
                        }
                        double others = double.NegativeInfinity;
                        for (int q = g.Start[o]; q < g.Start[o + 1]; q++)
                            if (g.Index[q] != best) others = Math.Max(others, hi[g.Index[q]]);
                        am[o] = best; dom[o] = lo[best] >= others; mh[o] = hMax;
                    }
                    _argMax[v] = am; _dominant[v] = dom; _maxHi[v] = mh;
                    break;
                }
        }
    }

    /// <summary>CROWN bounds for the neurons of node v that a nonlinearity needs, intersected with its interval bounds.</summary>
    private void RefineNode(int v, byte mode)
    {
        var lo = Lo[v]; var hi = Hi[v];
        var idx = new List<int>();
        for (int i = 0; i < lo.Length; i++)
            if (mode == 1 ? lo[i] < 0 && hi[i] > 0 : lo[i] < hi[i]) idx.Add(i);
        if (idx.Count == 0) return;
        int size = _nodes[v].Size;
        // Rows +eᵢ (lower bound) and −eᵢ (minus the upper bound), a bounded number at a time.
        int per = Math.Max(1, Math.Min(idx.Count, (1 << 20) / Math.Max(1, 2 * size)));
        var ws = _workspace ??= new Workspace();
        for (int s = 0; s < idx.Count; s += per)
        {
            int c = Math.Min(per, idx.Count - s);
            var res = Workspace.Grow(ref ws.RefRes, 2 * c);
            if (_nodes[v] is DenseNode d)
            {
                // ±eᵢ through the dense layer is ±(row i of W) and ±bᵢ exactly: start at its input.
                int inN = d.In;
                var lam = Workspace.Grow(ref ws.RefLam, 2L * c * inN);
                var b0 = Workspace.Grow(ref ws.RefBeta, 2 * c);
                for (int q = 0; q < c; q++)
                {
                    var row = d.W.AsSpan(idx[s + q] * inN, inN);
                    row.CopyTo(lam.AsSpan(2 * q * inN, inN));
                    var neg = lam.AsSpan((2 * q + 1) * inN, inN);
                    for (int k = 0; k < inN; k++) neg[k] = -row[k];
                    double bi = d.B?[idx[s + q]] ?? 0;
                    b0[2 * q] = bi; b0[2 * q + 1] = -bi;
                }
                Backward(d.Inputs[0], 2 * c, lam, b0, null, null, res, null);
            }
            else
            {
                var lam = Workspace.Grow(ref ws.RefLam, 2L * c * size);
                Array.Clear(lam, 0, 2 * c * size);
                for (int q = 0; q < c; q++) { lam[2 * q * size + idx[s + q]] = 1; lam[(2 * q + 1) * size + idx[s + q]] = -1; }
                Backward(v, 2 * c, lam, null, null, null, res, null);
            }
            for (int q = 0; q < c; q++)
            {
                int i = idx[s + q];
                double l = res[2 * q], u = -res[2 * q + 1];
                if (l > hi[i] || u < lo[i]) { Infeasible = true; return; }
                if (l > lo[i]) lo[i] = l;
                if (u < hi[i]) hi[i] = u;
            }
        }
    }
}
