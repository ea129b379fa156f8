using System.Diagnostics;
using Engine.Attacks;
using Engine.Autograd;
using Engine.Graph;
using Engine.Tensors;
using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// Decides VNN-COMP style properties of a one-input, one-output graph. Strategy: a PGD attack on the unsafe
/// condition (its best points re-checked by concrete forward passes); then the float64 guard
/// (<see cref="RigorousNetwork"/>) bounds the input box: interval bounds, CROWN per unsafe row, the best non-negative
/// combination of the rows, then alpha-CROWN (projected-gradient steps on the ReLU lower slopes and the row weights);
/// then branch and bound (<see cref="BranchAndBound"/>) splits open domains in half along an input (up to
/// <see cref="VerifierOptions.MaxBranchInputs"/> inputs) or by the sign of an unstable ReLU, choosing the split that
/// lifts the worse half's bound most, and checks each box's centre as a counterexample candidate, until every domain
/// is proven or the time runs out.
/// <para>
/// Soundness. <see cref="Verdict.Holds"/> is only returned when every leaf domain has been proven by the float64
/// guard (whatever slopes and weights the search chose: any of them gives a valid bound), whose bounds hold for the network in exact real arithmetic (every rounding is bounded and charged; see
/// <see cref="RigorousNetwork"/>). The root box is widened outward by one ulp per bound and every unsafe threshold
/// d by a relative 2⁻⁴⁰ (and every non-integer coefficient of C likewise), covering the rounding of VNNLIB decimals
/// into doubles. <see cref="Verdict.Violated"/> is only returned for a float32 input that lies inside the box (in
/// exact comparison) and whose float32 forward pass satisfies an unsafe conjunction with no tolerance, and, when
/// the graph is supported by the guard, whose float64 forward pass does too.
/// </para>
/// </summary>
public static class Verifier
{
    /// <summary>
    /// Verifies <paramref name="problem"/> for <paramref name="graph"/>, whose input is one example of shape
    /// <paramref name="inputShape"/> (without the batch dimension; the graph is run batched).
    /// </summary>
    public static VerificationResult Verify(ComputeGraph graph, int[] inputShape, VerificationProblem problem, VerifierOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(problem);
        var sw = Stopwatch.StartNew();
        var net = RigorousNetwork.TryCreate(graph, inputShape, out var reason);
        return VerifyWith(graph, inputShape, problem, options, net, reason, sw);
    }

    /// <summary>
    /// As <see cref="Verify(ComputeGraph, int[], VerificationProblem, VerifierOptions?)"/> with the float64 guard of
    /// <paramref name="graph"/> already read (null: the graph is not supported, for <paramref name="reason"/>), for
    /// callers that verify many properties of one model; the time limit counts from <paramref name="clock"/>'s start.
    /// </summary>
    internal static VerificationResult VerifyWith(ComputeGraph graph, int[] inputShape, VerificationProblem problem, VerifierOptions? options,
                                              RigorousNetwork? net, string? reason, Stopwatch? clock = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(problem);
        var o = options ?? new VerifierOptions();
        var sw = clock ?? Stopwatch.StartNew();
        int n = ShapeUtil.Numel(inputShape);
        foreach (var c in problem.Cases)
            if (c.InputLower.Length != n) throw new ArgumentException($"Verifier: the property has {c.InputLower.Length} inputs but the model takes {n} ({ShapeUtil.Format(inputShape)}).");
        if (net != null && net.InputSize != n) throw new ArgumentException($"Verifier: the float64 guard takes {net.InputSize} inputs but the model takes {n}.");
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
            var (v, cex, detail) = BranchAndBound.Run(ctx, net, c);
            if (v != Verdict.Holds) return ctx.Result(v, cex, detail);
            details.Add(detail);
        }
        return ctx.Result(Verdict.Holds, null, string.Join("; ", details.DefaultIfEmpty("no case has a non-empty input box")));
    }

    internal sealed class Context(ComputeGraph graph, int[] inputShape, RigorousNetwork? net, VerifierOptions options, Stopwatch sw)
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
    /// leading batch dimension of 1, or a symbolic one (&lt;= 0, as PyTorch exports with dynamic axes), is dropped
    /// ([1, 1, 1, 5] -> [1, 1, 5], [N, 1, 28, 28] -> [1, 28, 28]); a rank-1 shape is one example ([1] -> [1], run as
    /// [B, 1]). Any other dynamic size (&lt;= 0) is refused.
    /// </summary>
    public static int[] ExampleShape(IReadOnlyList<int> declared)
    {
        ArgumentNullException.ThrowIfNull(declared);
        var example = declared.Count >= 2 && declared[0] is 1 or <= 0 ? declared.Skip(1).ToArray() : declared.ToArray();
        if (example.Length == 0 || example.Any(d => d <= 0))
            throw new ArgumentException($"Verifier: the model input shape {ShapeUtil.Format(declared.ToArray())} must be static (but for a leading batch dimension) and non-empty.");
        return example;
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
    internal static (float[] Lo, float[] Hi)? InnerFloatBox(double[] lower, double[] upper)
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
}
