using System.Numerics;
using System.Runtime.Intrinsics;
using static Engine.Verification.Directed;

namespace Engine.Verification;

public sealed partial class RigorousBox
{
    /// <summary>Per-thread buffers of <see cref="Backward"/>; Lam[v] (rows × size) holds λ at node v after a call.</summary>
    internal sealed class Workspace
    {
        public double[][] Lam = [];
        public double[][] Abs = [];
        public bool[] Live = [];
        public double[] Temp = [], TempAbs = [], Beta = [], Charge = [], Norm = [], RefLam = [], RefRes = [], RefBeta = [], FPos = [], Mid = [], AbsMid = [], Rad = [];
        public double[][] Fwd = [];

        public static double[] Grow(ref double[] a, long n)
        {
            if (a.LongLength < n) a = new double[Math.Max(n, a.LongLength * 3 / 2)];
            return a;
        }
    }

    [ThreadStatic] private static Workspace? _workspace;

    /// <summary>A term Coef·z added to the objective for neuron Index of node Node (a Lagrangian term of a ReLU split: for the part of the domain where sign·z ≥ 0, the objective minus β·sign·z is no larger, for any β ≥ 0).</summary>
    internal readonly record struct SignTerm(int Node, int Index, double Coef);

    /// <summary>
    /// CROWN back-substitution of <paramref name="rows"/> objectives λ·z_start (λ row-major in
    /// <paramref name="lamStart"/>, rows × size of node <paramref name="start"/>): result[r] is a rigorous lower
    /// bound of λ_r·z_start + beta0[r] − charge0[r] over the box. Keeps λ_r·z_start ≥ λ'·z_v + β_r for the value z_v
    /// of each earlier node, every rounding charged (see <see cref="RigorousNetwork"/>). <paramref name="alpha"/>:
    /// per ReLU node, lower slopes in [0, 1] (null: CROWN's 0/1 choice). <paramref name="inputCoefficients"/>
    /// (rows × input size) receives λ at the input; <paramref name="betaOut"/> the constant β_r (charges
    /// included), so that result[r] = β_r + min over the box of λ_r·x, both rounded down. Returns the thread's
    /// workspace (λ of every node the pass reached, valid until the thread's next call).
    /// </summary>
    internal Workspace Backward(int start, int rows, ReadOnlySpan<double> lamStart, double[]? beta0, double[]? charge0,
        double[]?[]? alpha, Span<double> result, double[]? inputCoefficients, double[]? betaOut = null, SignTerm[]? terms = null)
    {
        if (terms != null && terms.Any(t => t.Node <= 0 || t.Node > start || t.Index < 0 || t.Index >= _nodes[t.Node].Size || !double.IsFinite(t.Coef)))
            throw new ArgumentException("RigorousBox.Backward: a sign term names no neuron of a node between the input and the start.");
        var ws = _workspace ??= new Workspace();
        int n = _nodes.Length;
        if (ws.Lam.Length < n) { ws.Lam = new double[n][]; ws.Abs = new double[n][]; ws.Live = new bool[n]; for (int i = 0; i < n; i++) { ws.Lam[i] = []; ws.Abs[i] = []; } }
        Array.Clear(ws.Live, 0, n);
        var beta = Workspace.Grow(ref ws.Beta, rows);
        var charge = Workspace.Grow(ref ws.Charge, rows);
        Workspace.Grow(ref ws.Norm, rows);
        for (int r = 0; r < rows; r++) { beta[r] = beta0?[r] ?? 0; charge[r] = charge0?[r] ?? 0; }
        int ss = _nodes[start].Size;
        lamStart[..(rows * ss)].CopyTo(Workspace.Grow(ref ws.Lam[start], (long)rows * ss));
        ws.Live[start] = true;
        var fan = Network.FanOut;
        for (int v = start; v >= 1; v--)
        {
            bool hasTerms = terms != null && terms.Any(t => t.Node == v);
            if (!ws.Live[v] && !hasTerms) continue;
            var node = _nodes[v];
            if (!ws.Live[v])
            {
                Array.Clear(Workspace.Grow(ref ws.Lam[v], (long)rows * node.Size), 0, rows * node.Size);
                if (fan[v] > 1) Array.Clear(Workspace.Grow(ref ws.Abs[v], (long)rows * node.Size), 0, rows * node.Size);
                ws.Live[v] = true;
            }
            var lam = ws.Lam[v];
            if (v != start && fan[v] > 1) ChargeMerged(ws.Abs[v], rows, node.Size, fan[v], MaxAbs[v], charge);
            if (hasTerms)
                foreach (var t in terms!)
                {
                    if (t.Node != v) continue;
                    // The objective gains Coef·z_v,i in every row; the rounded sum's error is charged against max|z|.
                    for (int r = 0; r < rows; r++)
                    {
                        double p = lam[r * node.Size + t.Index] + t.Coef;
                        lam[r * node.Size + t.Index] = p;
                        charge[r] = AddUp(charge[r], MulUp(Up(Math.Abs(p) * Ulp1 + Tiny), MaxAbs[v][t.Index]));
                    }
                }
            int u = node.Inputs[0];
            var lo = Lo[u]; var hi = Hi[u]; var mag = MaxAbs[u];
            int inN = _nodes[u].Size;
            switch (node)
            {
                case DenseNode d:
                    {
                        var mu = Target(ws, u, rows);
                        if (d.Runs is { } sr) SparseBack(lam, rows, d.Size, sr, d.In, mu, ws.Norm);
                        else DenseBack(lam, rows, d.Size, d.W, d.In, mu, ws.Norm);
                        // (Wᵀλ)·x ≥ μ·x − Σᵢ errᵢ·max|xᵢ|, errᵢ ≤ DotSlack(‖λ‖∞·colAbsᵢ, Out).
                        double c1 = (d.Size + 2) * Ulp1, c2 = (d.Size + 1) * Tiny;
                        for (int r = 0; r < rows; r++)
                        {
                            if (ws.Norm[r] == 0) continue;
                            charge[r] = AddUp(charge[r], AddUp(MulUp(MulUp(ws.Norm[r], c1), _k1[v]), MulUp(c2, _k2[v])));
                            if (d.B != null) beta[r] = AddDown(beta[r], DotDown(lam.AsSpan(r * d.Size, d.Size), d.B));
                        }
                        Merge(ws, u, rows);
                        break;
                    }
                case DiagNode g:
                    {
                        var mu = Target(ws, u, rows);
                        for (int r = 0; r < rows; r++)
                        {
                            var lr = lam.AsSpan(r * inN, inN);
                            var mr = mu.AsSpan(r * inN, inN);
                            // Plain sums, bounded once per row: Σ|fl(λa)|·max|x| (product rounding), Σ|λ|·ARad·max|x|,
                            // Σ max|x| (underflow), λ·C and Σ|λ·C|, Σ|λ|·CRad.
                            double sAbs = 0, sRad = 0, sMag = 0, cs = 0, ct = 0, crad = 0;
                            for (int i = 0; i < inN; i++)
                            {
                                double a = lr[i];
                                if (a == 0) { mr[i] = 0; continue; }
                                if (g.A == null) mr[i] = a;
                                else
                                {
                                    double p = a * g.A[i];
                                    mr[i] = p;
                                    sAbs += Math.Abs(p) * mag[i];
                                    sMag += mag[i];
                                    if (g.ARad != null) sRad += Math.Abs(a) * g.ARad[i] * mag[i];
                                }
                                if (g.C != null)
                                {
                                    double p = a * g.C[i];
                                    cs += p; ct += Math.Abs(p);
                                    if (g.CRad != null) crad += Math.Abs(a) * g.CRad[i];
                                }
                            }
                            if (g.C != null) beta[r] = AddDown(beta[r], AddDown(Down(cs - DotSlack(ct, inN)), -UpperSum(crad, 2 * inN)));
                            if (g.A != null)
                                charge[r] = AddUp(charge[r], AddUp(AddUp(MulUp(Ulp1, UpperSum(sAbs, 2 * inN)), MulUp(Tiny, UpperSum(sMag, inN))), UpperSum(sRad, 3 * inN)));
                        }
                        Merge(ws, u, rows);
                        break;
                    }
                case PermNode p:
                    {
                        var mu = Target(ws, u, rows);
                        for (int r = 0; r < rows; r++)
                        {
                            var lr = lam.AsSpan(r * p.Size, p.Size);
                            var mr = mu.AsSpan(r * inN, inN);
                            for (int i = 0; i < p.Size; i++) mr[p.Src[i]] = lr[i];
                        }
                        Merge(ws, u, rows);
                        break;
                    }
                case AddNode a:
                    {
                        var mu = Target(ws, u, rows);
                        lam.AsSpan(0, rows * inN).CopyTo(mu);
                        Merge(ws, u, rows);
                        int u2 = a.Inputs[1];
                        mu = Target(ws, u2, rows);
                        var src = lam.AsSpan(0, rows * inN);
                        if (a.Subtract) for (int i = 0; i < src.Length; i++) mu[i] = -src[i];
                        else src.CopyTo(mu);
                        Merge(ws, u2, rows);
                        break;
                    }
                case ReluNode:
                    {
                        var mu = Target(ws, u, rows);
                        // λ > 0: relu(v) ≥ α·v for any α in [0, 1]; λ < 0: relu(v) ≤ s·v + t on [l, u]; stable neurons
                        // are 0 or the identity (factors 0 / 1, exact).
                        var fp = _fPos[v]!;
                        if (alpha?[v] is { } al)
                        {
                            var f = Workspace.Grow(ref ws.FPos, inN);
                            for (int i = 0; i < inN; i++) f[i] = lo[i] < 0 && hi[i] > 0 ? al[i] : fp[i];
                            fp = f;
                        }
                        var fn = _fNeg[v]!; var tn = _tNeg[v]!; var mg = _magU[v]!;
                        double tinyCharge = MulUp(Tiny, _magUSum[v]);
                        for (int r = 0; r < rows; r++)
                        {
                            // Plain sums, bounded once per row: Σ|fl(λf)|·max|v| over the unstable neurons
                            // (|fl(λf) − λf| ≤ u|fl(λf)| + underflow), and λ·t, Σ|λ·t| over the upper lines.
                            var (sAbs, tb, tAbs) = ReluRow(lam.AsSpan(r * inN, inN), mu.AsSpan(r * inN, inN), fp, fn, tn, mg);
                            beta[r] = AddDown(beta[r], Down(tb - DotSlack(tAbs, inN)));
                            charge[r] = AddUp(charge[r], AddUp(MulUp(Ulp1, UpperSum(sAbs, 2 * inN)), tinyCharge));
                        }
                        Merge(ws, u, rows);
                        break;
                    }
                case SShapeNode:
                    {
                        var mu = Target(ws, u, rows);
                        var us = _upS[v]!; var ut = _upT[v]!; var ls = _loS[v]!; var lt = _loT[v]!;
                        for (int r = 0; r < rows; r++)
                        {
                            var lr = lam.AsSpan(r * inN, inN);
                            var mr = mu.AsSpan(r * inN, inN);
                            double sAbs = 0, sMag = 0, tb = 0, tAbs = 0;
                            for (int i = 0; i < inN; i++)
                            {
                                double a = lr[i];
                                if (a == 0) { mr[i] = 0; continue; }
                                double sl = a > 0 ? ls[i] : us[i], t = a > 0 ? lt[i] : ut[i];
                                double m = a * sl;
                                mr[i] = m;
                                double p = a * t;
                                tb += p; tAbs += Math.Abs(p);
                                sAbs += Math.Abs(m) * mag[i];
                                sMag += mag[i];
                            }
                            beta[r] = AddDown(beta[r], Down(tb - DotSlack(tAbs, inN)));
                            charge[r] = AddUp(charge[r], AddUp(MulUp(Ulp1, UpperSum(sAbs, 2 * inN)), MulUp(Tiny, UpperSum(sMag, inN))));
                        }
                        Merge(ws, u, rows);
                        break;
                    }
                case GroupNode g:
                    {
                        var mu = Target(ws, u, rows);
                        bool exact = g.Overlap <= 1;
                        var tabs = exact ? null : Workspace.Grow(ref ws.TempAbs, inN);
                        var am = _argMax[v]; var dom = _dominant[v]; var mh = _maxHi[v];
                        for (int r = 0; r < rows; r++)
                        {
                            var lr = lam.AsSpan(r * g.Size, g.Size);
                            var mr = mu.AsSpan(r * inN, inN);
                            mr.Clear();
                            if (tabs != null) Array.Clear(tabs, 0, inN);
                            double b = 0;
                            for (int o = 0; o < g.Size; o++)
                            {
                                double a = lr[o];
                                if (a == 0) continue;
                                if (g.IsMax)
                                {
                                    // max ≥ the member with the largest lower bound; max ≤ it when it dominates, else ≤ the largest upper bound.
                                    if (a > 0 || dom![o]) { mr[am![o]] += a; if (tabs != null) tabs[am[o]] += Math.Abs(a); }
                                    else b = AddDown(b, MulDown(a, mh![o]));
                                    continue;
                                }
                                for (int q = g.Start[o]; q < g.Start[o + 1]; q++)
                                {
                                    mr[g.Index[q]] += a;
                                    if (tabs != null) tabs[g.Index[q]] += Math.Abs(a);
                                }
                            }
                            if (tabs != null)
                            {
                                // Overlapping windows: the sums into μ were rounded.
                                double ch = 0;
                                for (int i = 0; i < inN; i++) if (tabs[i] != 0) ch = AddUp(ch, MulUp(DotSlack(tabs[i], g.Overlap), mag[i]));
                                charge[r] = AddUp(charge[r], ch);
                            }
                            beta[r] = AddDown(beta[r], b);
                        }
                        Merge(ws, u, rows);
                        break;
                    }
                default:
                    throw new InvalidOperationException($"RigorousBox: node {v} ({node.GetType().Name}) has no backward rule.");
            }
        }
        // Concretise over the input box.
        int n0 = Lo[0].Length;
        if (start == 0 || ws.Live[0])
        {
            if (start != 0 && fan[0] > 1) ChargeMerged(ws.Abs[0], rows, n0, fan[0], MaxAbs[0], charge);
        }
        else Array.Clear(Workspace.Grow(ref ws.Lam[0], (long)rows * n0), 0, rows * n0);
        var lam0 = ws.Lam[0];
        for (int r = 0; r < rows; r++)
        {
            var lr = lam0.AsSpan(r * n0, n0);
            double s0 = 0, t0 = 0;
            for (int i = 0; i < n0; i++)
            {
                double p = lr[i] >= 0 ? lr[i] * Lo[0][i] : lr[i] * Hi[0][i];
                s0 += p; t0 += Math.Abs(p);
            }
            double b = AddDown(beta[r], -charge[r]);
            double res = AddDown(b, Down(s0 - DotSlack(t0, n0)));
            result[r] = double.IsFinite(res) ? res : double.NegativeInfinity;
            if (betaOut != null) betaOut[r] = double.IsFinite(b) ? b : double.NegativeInfinity;
        }
        if (inputCoefficients != null) lam0.AsSpan(0, rows * n0).CopyTo(inputCoefficients);
        return ws;
    }

    /// <summary>One row of the ReLU step: m = λ·(λ &gt; 0 ? fp : fn) into mu; returns (Σ|m|·mg, Σ min(λ, 0)·tn, Σ|min(λ, 0)·tn|).</summary>
    private static (double SAbs, double Tb, double TAbs) ReluRow(ReadOnlySpan<double> lam, Span<double> mu, double[] fp, double[] fn, double[] tn, double[] mg)
    {
        int i = 0, n = lam.Length;
        double sAbs = 0, tb = 0, tAbs = 0;
        if (Vector512.IsHardwareAccelerated && n >= 8)
        {
            var vs = Vector512<double>.Zero; var vt = vs; var va = vs;
            for (; i + 8 <= n; i += 8)
            {
                var a = Vector512.Create(lam[i..]);
                var f = Vector512.ConditionalSelect(Vector512.GreaterThan(a, Vector512<double>.Zero), Vector512.Create(fp.AsSpan(i)), Vector512.Create(fn.AsSpan(i)));
                var m = a * f;
                m.CopyTo(mu[i..]);
                var p = Vector512.Min(a, Vector512<double>.Zero) * Vector512.Create(tn.AsSpan(i));
                vt += p; va += Vector512.Abs(p);
                vs += Vector512.Abs(m) * Vector512.Create(mg.AsSpan(i));
            }
            sAbs = Vector512.Sum(vs); tb = Vector512.Sum(vt); tAbs = Vector512.Sum(va);
        }
        for (; i < n; i++)
        {
            double a = lam[i];
            double m = a * (a > 0 ? fp[i] : fn[i]);
            mu[i] = m;
            double p = Math.Min(a, 0) * tn[i];
            tb += p; tAbs += Math.Abs(p);
            sAbs += Math.Abs(m) * mg[i];
        }
        return (sAbs, tb, tAbs);
    }

    /// <summary>An upper bound of the exact value of a computed sum of n non-negative terms, each a product of up to k rounded factors (n·k ≤ terms): s plus its error bound.</summary>
    private static double UpperSum(double s, int terms) => Up(s + DotSlack(s, terms));

    /// <summary>Where a step writes its λ for node u: straight into u's buffer when u has one reader, else a scratch buffer merged after.</summary>
    private double[] Target(Workspace ws, int u, int rows)
    {
        long len = (long)rows * _nodes[u].Size;
        if (Network.FanOut[u] <= 1) { ws.Live[u] = true; return Workspace.Grow(ref ws.Lam[u], len); }
        return Workspace.Grow(ref ws.Temp, len);
    }

    /// <summary>Adds the scratch contribution into u's λ (and |contribution| into u's absolute sums) when u has several readers.</summary>
    private void Merge(Workspace ws, int u, int rows)
    {
        if (Network.FanOut[u] <= 1) return;
        int len = rows * _nodes[u].Size;
        var lam = Workspace.Grow(ref ws.Lam[u], len);
        var abs = Workspace.Grow(ref ws.Abs[u], len);
        var t = ws.Temp;
        if (!ws.Live[u])
        {
            for (int i = 0; i < len; i++) { lam[i] = t[i]; abs[i] = Math.Abs(t[i]); }
            ws.Live[u] = true;
        }
        else for (int i = 0; i < len; i++) { lam[i] += t[i]; abs[i] += Math.Abs(t[i]); }
    }

    /// <summary>The rounding of λ summed over a node's readers: Σᵢ DotSlack(Σ|terms|ᵢ, readers)·max|zᵢ| per row.</summary>
    private static void ChargeMerged(double[] abs, int rows, int size, int readers, double[] mag, double[] charge)
    {
        for (int r = 0; r < rows; r++)
        {
            double ch = 0;
            var a = abs.AsSpan(r * size, size);
            for (int i = 0; i < size; i++) if (a[i] != 0) ch = AddUp(ch, MulUp(DotSlack(a[i], readers), mag[i]));
            charge[r] = AddUp(charge[r], ch);
        }
    }

    /// <summary>mu[r, :] = Σ_o lam[r, o]·W[o, :] (any summation order: the error bound covers it); norm[r] = max_o |lam[r, o]|.</summary>
    private static void DenseBack(double[] lam, int rows, int outN, double[] w, int inN, double[] mu, double[] norm)
    {
        for (int r = 0; r < rows; r++)
        {
            double nrm = 0;
            foreach (var a in lam.AsSpan(r * outN, outN)) nrm = Math.Max(nrm, Math.Abs(a));
            norm[r] = nrm;
        }
        int r0 = 0;
        if (Vector512.IsHardwareAccelerated && inN >= 8)
        {
            // Four rows at a time, eight columns in registers across the whole sum over o.
            Span<int> nz = outN <= 1024 ? stackalloc int[outN] : new int[outN];
            for (; r0 + 4 <= rows; r0 += 4)
            {
                int cnt = 0;
                for (int o = 0; o < outN; o++)
                    if (lam[r0 * outN + o] != 0 || lam[(r0 + 1) * outN + o] != 0 || lam[(r0 + 2) * outN + o] != 0 || lam[(r0 + 3) * outN + o] != 0) nz[cnt++] = o;
                var l0 = lam.AsSpan(r0 * outN, outN); var l1 = lam.AsSpan((r0 + 1) * outN, outN);
                var l2 = lam.AsSpan((r0 + 2) * outN, outN); var l3 = lam.AsSpan((r0 + 3) * outN, outN);
                // Column blocks of eight; the last one overlaps the one before when inN is not a multiple of 8 (its
                // shared columns are recomputed to the same values).
                for (int i0 = 0; i0 < inN; i0 += 8)
                {
                    int i = Math.Min(i0, inN - 8);
                    var a0 = Vector512<double>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
                    for (int q = 0; q < cnt; q++)
                    {
                        int o = nz[q];
                        var wv = Vector512.Create(w.AsSpan(o * inN + i, 8));
                        a0 = Vector512.FusedMultiplyAdd(Vector512.Create(l0[o]), wv, a0);
                        a1 = Vector512.FusedMultiplyAdd(Vector512.Create(l1[o]), wv, a1);
                        a2 = Vector512.FusedMultiplyAdd(Vector512.Create(l2[o]), wv, a2);
                        a3 = Vector512.FusedMultiplyAdd(Vector512.Create(l3[o]), wv, a3);
                    }
                    a0.CopyTo(mu.AsSpan(r0 * inN + i)); a1.CopyTo(mu.AsSpan((r0 + 1) * inN + i));
                    a2.CopyTo(mu.AsSpan((r0 + 2) * inN + i)); a3.CopyTo(mu.AsSpan((r0 + 3) * inN + i));
                }
            }
        }
        for (int r = r0; r < rows; r++)
        {
            var m = mu.AsSpan(r * inN, inN);
            m.Clear();
            var lr = lam.AsSpan(r * outN, outN);
            for (int o = 0; o < outN; o++)
            {
                double a = lr[o];
                if (a != 0) Axpy(a, w.AsSpan(o * inN, inN), m);
            }
        }
    }

    /// <summary>As <see cref="DenseBack"/> for a matrix stored as runs: each row of λ scatters only its nonzero entries' runs (the skipped products are exact zeros).</summary>
    private static void SparseBack(double[] lam, int rows, int outN, SparseRuns s, int inN, double[] mu, double[] norm)
    {
        for (int r = 0; r < rows; r++)
        {
            var lr = lam.AsSpan(r * outN, outN);
            var m = mu.AsSpan(r * inN, inN);
            m.Clear();
            double nrm = 0;
            for (int o = 0; o < outN; o++)
            {
                double a = lr[o];
                if (a == 0) continue;
                nrm = Math.Max(nrm, Math.Abs(a));
                for (int k = s.RunStart[o]; k < s.RunStart[o + 1]; k++)
                {
                    int len = s.RunLen[k];
                    var x = s.Val.AsSpan(s.RunVal[k], len);
                    var y = m.Slice(s.RunCol[k], len);
                    if (len == 4 && Vector256.IsHardwareAccelerated)
                        Vector256.FusedMultiplyAdd(Vector256.Create(a), Vector256.Create(x), Vector256.Create((ReadOnlySpan<double>)y)).CopyTo(y);
                    else
                        for (int j = 0; j < len; j++) y[j] = Math.FusedMultiplyAdd(a, x[j], y[j]);
                }
            }
            norm[r] = nrm;
        }
    }

    private static void Axpy(double a, ReadOnlySpan<double> x, Span<double> y)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i + 8 <= x.Length; i += 8)
                Vector512.FusedMultiplyAdd(va, Vector512.Create(x[i..]), Vector512.Create(y[i..])).CopyTo(y[i..]);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(a);
            for (; i + 4 <= x.Length; i += 4)
                Vector256.FusedMultiplyAdd(va, Vector256.Create(x[i..]), Vector256.Create(y[i..])).CopyTo(y[i..]);
        }
        for (; i < x.Length; i++) y[i] = Math.FusedMultiplyAdd(a, x[i], y[i]);
    }
}
