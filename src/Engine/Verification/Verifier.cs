using System.Diagnostics;
using Engine.Attacks;
using Engine.Autograd;
using Engine.Graph;
using Engine.Tensors;
using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// Decides VNN-COMP style properties of a one-input, one-output graph. Strategy: a PGD attack on the unsafe
/// condition (its best points re-checked by concrete forward passes), then rigorous float64 CROWN bounds on the
/// input box (<see cref="RigorousNetwork"/>), then, for up to <see cref="VerifierOptions.MaxBranchInputs"/> inputs,
/// branch and bound on the input box (the input with the largest |CROWN coefficient| × width is split), checking
/// each box's centre as a counterexample candidate, until every box is proven or the time runs out.
/// <para>
/// Soundness. <see cref="Verdict.Holds"/> is only returned when every leaf box has been proven by the float64
/// guard, whose bounds hold for the network in exact real arithmetic (every rounding is bounded and charged; see
/// <see cref="RigorousNetwork"/>). The root box is widened outward by one ulp per bound and every unsafe threshold
/// d by a relative 2⁻⁴⁰ (and every non-integer coefficient of C likewise), covering the rounding of VNNLIB decimals
/// into doubles. <see cref="Verdict.Violated"/> is only returned for a float32 input that lies inside the box (in
/// exact comparison) and whose float32 forward pass satisfies an unsafe conjunction with no tolerance, and, when
/// the graph is supported by the guard, whose float64 forward pass does too.
/// </para>
/// </summary>
public static class Verifier
{
    // 2⁻⁴⁰, written out exactly.
    private const double SpecSlack = 9.094947017729282379150390625E-13;

    /// <summary>
    /// Verifies <paramref name="problem"/> for <paramref name="graph"/>, whose input is one example of shape
    /// <paramref name="inputShape"/> (without the batch dimension; the graph is run batched).
    /// </summary>
    public static VerificationResult Verify(ComputeGraph graph, int[] inputShape, VerificationProblem problem, VerifierOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(problem);
        var o = options ?? new VerifierOptions();
        var sw = Stopwatch.StartNew();
        int n = ShapeUtil.Numel(inputShape);
        foreach (var c in problem.Cases)
            if (c.InputLower.Length != n) throw new ArgumentException($"Verifier: the property has {c.InputLower.Length} inputs but the model takes {n} ({ShapeUtil.Format(inputShape)}).");
        var net = RigorousNetwork.TryCreate(graph, inputShape, out var reason);
        if (net != null)
            foreach (var c in problem.Cases)
                foreach (var u in c.Unsafe)
                    if (u.Outputs != net.OutputSize) throw new ArgumentException($"Verifier: the property has {u.Outputs} outputs but the model has {net.OutputSize}.");
        var ctx = new Context(graph, inputShape, net, o, sw);
        var cases = problem.Cases.Where(c => !c.IsEmpty).ToArray();

        // Attack every case first: a counterexample anywhere decides the problem.
        for (int i = 0; i < cases.Length; i++)
        {
            if (ctx.OutOfTime) return ctx.Result(Verdict.Timeout, null, "time ran out during the attack");
            if (Attack(ctx, cases[i], o.Seed + (ulong)i) is { } cex) return ctx.Result(Verdict.Violated, cex, "PGD counterexample");
        }
        if (net == null) return ctx.Result(Verdict.Unknown, null, $"no float64 guard for this graph ({reason}), so no proof is claimed");
        var details = new List<string>();
        foreach (var c in cases)
        {
            var (v, cex, detail) = BranchAndBound(ctx, net, c);
            if (v != Verdict.Holds) return ctx.Result(v, cex, detail);
            details.Add(detail);
        }
        return ctx.Result(Verdict.Holds, null, string.Join("; ", details.DefaultIfEmpty("no case has a non-empty input box")));
    }

    private sealed class Context(ComputeGraph graph, int[] inputShape, RigorousNetwork? net, VerifierOptions options, Stopwatch sw)
    {
        public ComputeGraph Graph { get; } = graph;
        public int[] InputShape { get; } = inputShape;
        public RigorousNetwork? Net { get; } = net;
        public VerifierOptions Options { get; } = options;
        public int Boxes;
        public bool OutOfTime => sw.Elapsed >= Options.Timeout;
        public VerificationResult Result(Verdict v, Counterexample? cex, string detail) => new(v, cex, detail, sw.Elapsed, Boxes);
    }

    /// <summary>
    /// The per-example input shape for a model input declared with <paramref name="declared"/> (as in ONNX): a
    /// leading batch dimension of 1 is dropped ([1, 1, 1, 5] -> [1, 1, 5]); a rank-1 shape is one example ([1] -> [1],
    /// run as [B, 1]). Dynamic sizes (&lt;= 0) are refused.
    /// </summary>
    public static int[] ExampleShape(IReadOnlyList<int> declared)
    {
        ArgumentNullException.ThrowIfNull(declared);
        if (declared.Count == 0 || declared.Any(d => d <= 0))
            throw new ArgumentException($"Verifier: the model input shape {ShapeUtil.Format(declared.ToArray())} must be static and non-empty.");
        return declared.Count >= 2 && declared[0] == 1 ? declared.Skip(1).ToArray() : declared.ToArray();
    }

    /// <summary>
    /// Checks a candidate: inside the case's box exactly, and unsafe by the float32 forward pass and (when the guard
    /// supports the graph) by the float64 one. Returns the counterexample or null.
    /// </summary>
    public static Counterexample? CheckCandidate(ComputeGraph graph, int[] inputShape, VerificationCase c, ReadOnlySpan<float> x, RigorousNetwork? net = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(c);
        var xd = new double[x.Length];
        for (int i = 0; i < x.Length; i++) xd[i] = x[i];
        if (!c.Contains(xd)) return null;
        float[] y;
        using (new NoGrad())
            y = Executor.Forward(graph, Tensor.FromArray(x.ToArray(), [1, .. inputShape])).ToArray();
        var yd = Array.ConvertAll(y, v => (double)v);
        if (!c.IsUnsafe(yd)) return null;
        double[]? y64 = null;
        if (net != null)
        {
            y64 = net.Evaluate(xd);
            if (!c.IsUnsafe(y64)) return null;
        }
        return new Counterexample(xd, yd, y64);
    }

    /// <summary>The float32 box inside [lower, upper] (bounds rounded inward); null when some side holds no float.</summary>
    private static (float[] Lo, float[] Hi)? InnerFloatBox(double[] lower, double[] upper)
    {
        var lo = new float[lower.Length];
        var hi = new float[upper.Length];
        for (int i = 0; i < lo.Length; i++)
        {
            float l = (float)lower[i], h = (float)upper[i];
            if (l < lower[i]) l = MathF.BitIncrement(l);
            if (h > upper[i]) h = MathF.BitDecrement(h);
            if (!(l <= h)) return null;
            lo[i] = l; hi[i] = h;
        }
        return (lo, hi);
    }

    /// <summary>min over conjunctions of max over rows of (C·y − d): ≤ 0 exactly on unsafe outputs.</summary>
    private static Func<Tensor, Tensor> Objective(VerificationCase c)
    {
        var parts = c.Unsafe.Select(u =>
        {
            var cm = new float[u.Rows * u.Outputs];
            for (int r = 0; r < u.Rows; r++) for (int j = 0; j < u.Outputs; j++) cm[r * u.Outputs + j] = (float)u.C[r, j];
            return (Rows: u.Rows, C: Tensor.FromArray(cm, Math.Max(1, u.Rows), u.Outputs), D: Tensor.FromArray(u.D.Select(v => (float)v).DefaultIfEmpty(0f).ToArray(), Math.Max(1, u.Rows)));
        }).ToArray();
        return output =>
        {
            int b = output.Dims[0];
            var y = output.Reshape(b, -1);
            Tensor? best = null;
            foreach (var p in parts)
            {
                var v = p.Rows == 0 ? y.Sum(1) * 0f - 1f : (Tensor.Linear(y, p.C) - p.D).Max(1);
                best = best == null ? v : Tensor.Minimum(best, v);
            }
            return best ?? y.Sum(1) * 0f + 1f;
        };
    }

    private static Counterexample? Attack(Context ctx, VerificationCase c, ulong seed)
    {
        if (c.Unsafe.Count == 0) return null;
        if (InnerFloatBox(c.InputLower, c.InputUpper) is not var (lo, hi)) return null;
        // The centre and the corners nearest to the box's extremes are cheap first candidates.
        var centre = new float[lo.Length];
        for (int i = 0; i < lo.Length; i++) centre[i] = Math.Clamp((float)(0.5 * ((double)lo[i] + hi[i])), lo[i], hi[i]);
        if (CheckCandidate(ctx.Graph, ctx.InputShape, c, centre, ctx.Net) is { } cex0) return cex0;
        int b = ctx.Options.AttackBatch;
        var lt = Tensor.FromArray(Enumerable.Range(0, b).SelectMany(_ => lo).ToArray(), [b, .. ctx.InputShape]);
        var ht = Tensor.FromArray(Enumerable.Range(0, b).SelectMany(_ => hi).ToArray(), [b, .. ctx.InputShape]);
        var model = AttackModel.FromGraph(ctx.Graph);
        var objective = Objective(c);
        for (int r = 0; r < ctx.Options.AttackRestarts && !ctx.OutOfTime; r++)
        {
            var res = Pgd.Minimize(model, lt, ht, objective, new BoxSearchOptions
            {
                Steps = ctx.Options.AttackSteps,
                Restarts = 1,
                RandomStart = true,
                Seed = seed * 1000 + (ulong)r,
                EarlyStop = false,
            });
            var pts = res.Point.ToArray();
            int n = lo.Length;
            foreach (int k in Enumerable.Range(0, b).OrderBy(k => res.Objective[k]).Take(4))
            {
                if (res.Objective[k] > 1e-3f) break;
                if (CheckCandidate(ctx.Graph, ctx.InputShape, c, pts.AsSpan(k * n, n), ctx.Net) is { } cex) return cex;
            }
        }
        return null;
    }

    private sealed record Box(double[] Lo, double[] Hi, bool[] Open, int Depth);

    private static (Verdict, Counterexample?, string) BranchAndBound(Context ctx, RigorousNetwork net, VerificationCase c)
    {
        int n = c.InputLower.Length;
        // Widen the root outward: the box's decimals were rounded to doubles when the property was read.
        var lo0 = c.InputLower.Select(Down).ToArray();
        var hi0 = c.InputUpper.Select(Up).ToArray();
        var rows = c.Unsafe.Select(u => Enumerable.Range(0, u.Rows).Select(u.Row).ToArray()).ToArray();
        var dWide = c.Unsafe.Select(u => u.D.Select(d => Up(Up(d + Math.Abs(d) * SpecSlack) + Tiny)).ToArray()).ToArray();
        var rootWidth = hi0.Zip(lo0, (h, l) => h - l).ToArray();
        var stack = new Stack<Box>();
        stack.Push(new Box(lo0, hi0, Enumerable.Repeat(true, c.Unsafe.Count).ToArray(), 0));
        int maxDepth = 0, leaves = 0;
        bool branch = n <= ctx.Options.MaxBranchInputs;
        (bool[] Open, double[]? Coeffs, double Gap) Evaluate(Box box)
        {
            var rb = net.Analyze(box.Lo, box.Hi);
            var open = (bool[])box.Open.Clone();
            double[]? splitCoeffs = null;
            double bestGap = double.NegativeInfinity;
            var yMax = new double[net.OutputSize];
            for (int j = 0; j < yMax.Length; j++) yMax[j] = Math.Max(Math.Abs(rb.OutputLower[j]), Math.Abs(rb.OutputUpper[j]));
            for (int u = 0; u < open.Length; u++)
            {
                if (!open[u]) continue;
                double bestRow = double.NegativeInfinity;
                double[]? bestCoeffs = null;
                for (int r = 0; r < rows[u].Length; r++)
                {
                    double lb = rb.LowerBound(rows[u][r], out var coeffs);
                    double slack = CoefficientSlack(rows[u][r], yMax);
                    double gap = AddDown(AddDown(lb, -slack), -dWide[u][r]);
                    if (gap > 0) { bestRow = gap; bestCoeffs = null; break; }
                    if (gap > bestRow || bestCoeffs == null) { bestRow = gap; bestCoeffs = coeffs; }
                }
                if (bestRow > 0) { open[u] = false; continue; }
                if (bestCoeffs != null && (splitCoeffs == null || bestRow > bestGap)) { splitCoeffs = bestCoeffs; bestGap = bestRow; }
            }
            return (open, splitCoeffs, bestGap);
        }
        // Boxes are bounded a few at a time on all cores (the bounds are pure), then handled in stack order.
        int group = Math.Max(1, 4 * Cpu.CpuThreads.Count);
        var popped = new List<Box>(group);
        var evals = new (bool[] Open, double[]? Coeffs, double Gap)[group];
        while (stack.Count > 0)
        {
            if (ctx.OutOfTime) return (Verdict.Timeout, null, $"time ran out after {ctx.Boxes} boxes ({leaves} proven, {stack.Count} open, depth {maxDepth})");
            popped.Clear();
            while (popped.Count < group && stack.Count > 0) popped.Add(stack.Pop());
            Cpu.CpuThreads.For(popped.Count, 1, (s0, s1) => { for (int q = s0; q < s1; q++) evals[q] = Evaluate(popped[q]); });
            for (int q = 0; q < popped.Count; q++)
            {
                var box = popped[q];
                var (open, splitCoeffs, bestGap) = evals[q];
                ctx.Boxes++;
                maxDepth = Math.Max(maxDepth, box.Depth);
                if (!open.Any(v => v)) { leaves++; continue; }
                if (!branch)
                    return (Verdict.Unknown, null, $"float64 CROWN leaves the property open (best gap {bestGap:g4}) and {n} inputs are too many for input branch and bound");
                // A box's centre is a cheap counterexample candidate.
                if (InnerFloatBox(box.Lo.Select((v, i) => Math.Max(v, c.InputLower[i])).ToArray(), box.Hi.Select((v, i) => Math.Min(v, c.InputUpper[i])).ToArray()) is var (flo, fhi))
                {
                    var centre = new float[n];
                    for (int i = 0; i < n; i++) centre[i] = Math.Clamp((float)(0.5 * ((double)flo[i] + fhi[i])), flo[i], fhi[i]);
                    if (c.IsUnsafe(net.Evaluate(centre.Select(v => (double)v).ToArray())) && CheckCandidate(ctx.Graph, ctx.InputShape, c, centre, net) is { } cex)
                        return (Verdict.Violated, cex, $"counterexample at a branch-and-bound box centre (depth {box.Depth})");
                }
                int dim = SplitDimension(box, splitCoeffs, rootWidth);
                double mid = box.Lo[dim] + 0.5 * (box.Hi[dim] - box.Lo[dim]);
                if (!(mid > box.Lo[dim] && mid < box.Hi[dim]))
                    return (Verdict.Unknown, null, $"a box can no longer be split (input {dim} is {box.Hi[dim] - box.Lo[dim]:g3} wide) and is not proven");
                var hiL = (double[])box.Hi.Clone(); hiL[dim] = mid;
                var loR = (double[])box.Lo.Clone(); loR[dim] = mid;
                stack.Push(new Box(loR, box.Hi, open, box.Depth + 1));
                stack.Push(new Box(box.Lo, hiL, open, box.Depth + 1));
            }
        }
        return (Verdict.Holds, null, $"float64 CROWN proved {leaves} box{(leaves == 1 ? "" : "es")} (max depth {maxDepth})");
    }

    /// <summary>Σ_j |c_j|·2⁻⁴⁰·max|y_j| over the non-integer coefficients (the rounding of VNNLIB decimals into C).</summary>
    private static double CoefficientSlack(double[] c, double[] yMax)
    {
        double s = 0;
        for (int j = 0; j < c.Length; j++)
            if (c[j] != Math.Round(c[j])) s = AddUp(s, MulUp(MulUp(Math.Abs(c[j]), SpecSlack), yMax[j]));
        return s;
    }

    /// <summary>
    /// The input with the largest |CROWN coefficient| × width among those whose width relative to the root box is
    /// within a factor 8 of the least-split input (so no input is split down to nothing while the looseness comes
    /// from another); the widest relative when there are no coefficients.
    /// </summary>
    private static int SplitDimension(Box box, double[]? coeffs, double[] rootWidth)
    {
        int n = box.Lo.Length;
        var rel = new double[n];
        double maxRel = 0;
        for (int i = 0; i < n; i++)
        {
            rel[i] = rootWidth[i] > 0 ? (box.Hi[i] - box.Lo[i]) / rootWidth[i] : 0;
            maxRel = Math.Max(maxRel, rel[i]);
        }
        int best = 0;
        double bestScore = -1;
        for (int i = 0; i < n; i++)
        {
            if (rel[i] < maxRel / 8 || rel[i] == 0) continue;
            double score = coeffs == null ? rel[i] : Math.Abs(coeffs[i]) * (box.Hi[i] - box.Lo[i]);
            if (score > bestScore) { bestScore = score; best = i; }
        }
        if (bestScore <= 0)
            for (int i = 0; i < n; i++)
                if (rel[i] > rel[best]) best = i;
        return best;
    }
}
