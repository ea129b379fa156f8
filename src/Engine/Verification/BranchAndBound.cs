using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// Branch and bound for one verification case, with the float64 guard as the bounding step. A domain is an input
/// box, possibly cut by the signs of some ReLU inputs. Each domain is bounded (<see cref="RigorousBox.SpecBound"/>:
/// per-row CROWN, the best combination of rows, then optimised ReLU slopes and row weights); a domain left open is
/// split in two, either in half along one input or by the sign of one unstable ReLU input, choosing the split whose
/// worse half gains most (every input and the few costliest ReLUs are tried; their halves' bounds are kept). Halves
/// inherit their parent's node bounds (valid on any part of it) and optimised slopes (a warm start). Domains are
/// bounded a few at a time on all cores and handled depth first.
/// <para>
/// A ReLU split is sound because the two halves cover the domain: the half where the neuron's input is ≥ 0 is
/// bounded with that input's lower bound raised to 0 (the ReLU is the identity there), the other with its upper
/// bound lowered to 0; a half whose bounds become contradictory contains no input and holds trivially.
/// </para>
/// </summary>
internal static class BranchAndBound
{
    /// <summary>ReLU neurons tried as split candidates per domain (besides every input).</summary>
    private const int NeuronCandidates = 2;

    /// <summary>Inputs tried as split candidates per domain (the ones with the largest |coefficient| × width, and the relatively widest).</summary>
    private const int InputCandidates = 6;

    private sealed record Domain(double[] Lo, double[] Hi, bool[] Open, int Depth, RigorousBox? Enclosing, double[]?[]?[]? Alpha, double[]?[]? Lambda,
        SignCut[] Cuts, double[]?[]? Beta, Bounded? Done = null);

    private sealed class Bounded(bool[] open, double[]? coeffs, double gap, RigorousBox rb, double[]?[]?[] alpha, double[]?[] lambda, double[]?[] beta, (int, int)[] neurons)
    {
        public double[]?[] Beta { get; } = beta;
        public bool[] Open { get; } = open;
        public bool AnyOpen => Open.Any(v => v);
        public double[]? Coeffs { get; } = coeffs;
        public double Gap { get; } = gap;
        public RigorousBox Rb { get; } = rb;
        public double[]?[]?[] Alpha { get; } = alpha;
        public double[]?[] Lambda { get; } = lambda;
        public (int Node, int Index)[] Neurons { get; } = neurons;
        // The chosen split (an input, or a ReLU input neuron) and its halves' bounds when known.
        public int Dim = -1;
        public (int Node, int Index)? Neuron;
        public Bounded? First, Second;
        public bool Chosen;
    }

    public static (Verdict, Counterexample?, string) Run(Verifier.Context ctx, RigorousNetwork net, VerificationCase c)
    {
        int n = c.InputLower.Length;
        // Widen the root outward: the box's decimals were rounded to doubles when the property was read.
        var lo0 = c.InputLower.Select(Down).ToArray();
        var hi0 = c.InputUpper.Select(Up).ToArray();
        var specs = c.Unsafe.Select(u =>
        {
            var cm = new double[u.Rows * u.Outputs];
            var inexact = new bool[u.Rows];
            for (int r = 0; r < u.Rows; r++)
                for (int j = 0; j < u.Outputs; j++)
                {
                    cm[r * u.Outputs + j] = u.C[r, j];
                    if (u.C[r, j] != Math.Round(u.C[r, j])) inexact[r] = true;
                }
            var dWide = u.D.Select(d => Up(Up(d + Math.Abs(d) * RigorousBox.SpecSlack) + Tiny)).ToArray();
            return new SpecRows(cm, u.Rows, dWide, inexact);
        }).ToArray();
        var rootWidth = hi0.Zip(lo0, (h, l) => h - l).ToArray();
        // Inputs the property fixes (a box a few ulps wide) are never split.
        var splittable = Enumerable.Range(0, n).Where(i => rootWidth[i] > 1e-12 * Math.Max(1, Math.Abs(lo0[i]))).ToArray();
        // Many inputs: ReLU splits only (halving one of hundreds of inputs barely moves a bound), and more slope steps
        // (each domain's bounds cost far more than the steps there).
        bool splitInputs = n <= ctx.Options.MaxBranchInputs;
        int iterations = ctx.Options.SlopeIterations;
        if (!splitInputs && iterations > 0) iterations = Math.Max(iterations, 20);
        var search = new SpecSearch { Iterations = iterations };

        Bounded Evaluate(Domain d)
        {
            var rb = net.Analyze(d.Lo, d.Hi, d.Enclosing);
            var open = (bool[])d.Open.Clone();
            double[]? coeffs = null;
            double gap = double.NegativeInfinity;
            var alpha = new double[]?[]?[open.Length];
            var lambda = new double[]?[open.Length];
            var beta = new double[]?[open.Length];
            (int, int)[] neurons = [];
            for (int u = 0; u < open.Length; u++)
            {
                if (!open[u]) continue;
                // No rows: every output is unsafe, nothing can be proven (the centre check finds the counterexample).
                if (specs[u].Rows == 0) continue;
                var r = rb.SpecBound(specs[u], search, d.Alpha?[u], d.Lambda?[u], NeuronCandidates, d.Cuts, d.Beta?[u]);
                alpha[u] = r.Alpha ?? d.Alpha?[u];
                lambda[u] = r.Lambda ?? d.Lambda?[u];
                beta[u] = r.Beta ?? d.Beta?[u];
                if (r.Bound > 0) { open[u] = false; continue; }
                if (coeffs == null || r.Bound > gap) { coeffs = r.InputCoefficients; gap = r.Bound; neurons = r.Neurons; }
            }
            return new Bounded(open, coeffs, gap, rb, alpha, lambda, beta, neurons);
        }

        (Domain, Domain) Halves(Domain d, Bounded ev, int dim, (int Node, int Index)? neuron)
        {
            if (neuron is var (node, index))
            {
                // The halves carry the cut (for its Lagrangian term) with a fresh multiplier.
                var beta = ev.Beta.Select(b => b == null ? null : (double[]?)[.. b, 0.0]).ToArray();
                return (new Domain(d.Lo, d.Hi, ev.Open, d.Depth + 1, ev.Rb.WithSign(node, index, false), ev.Alpha, ev.Lambda, [.. d.Cuts, new SignCut(node, index, false)], beta),
                        new Domain(d.Lo, d.Hi, ev.Open, d.Depth + 1, ev.Rb.WithSign(node, index, true), ev.Alpha, ev.Lambda, [.. d.Cuts, new SignCut(node, index, true)], beta));
            }
            double mid = d.Lo[dim] + 0.5 * (d.Hi[dim] - d.Lo[dim]);
            var hiL = (double[])d.Hi.Clone(); hiL[dim] = mid;
            var loR = (double[])d.Lo.Clone(); loR[dim] = mid;
            return (new Domain(d.Lo, hiL, ev.Open, d.Depth + 1, ev.Rb, ev.Alpha, ev.Lambda, d.Cuts, ev.Beta),
                    new Domain(loR, d.Hi, ev.Open, d.Depth + 1, ev.Rb, ev.Alpha, ev.Lambda, d.Cuts, ev.Beta));
        }

        // Tries the candidate splits of an open domain and keeps the one whose worse half gains most over the parent
        // (a half's bound is at least its parent's, which holds on it too); with no gain anywhere, the relatively
        // widest input is split.
        void ChooseSplit(Domain d, Bounded ev)
        {
            // Gains under 0.1% of the gap are noise (the slope search's own variation), not progress.
            double parent = ev.Gap, best = 0, tol = 1e-9 + 1e-3 * Math.Abs(parent);
            // The inputs where the linear bound is most sensitive, and always the relatively widest one (a bound can
            // hinge on an input its final coefficients hardly show, through unstable ReLUs).
            var open = (splitInputs ? splittable : []).Where(k => d.Lo[k] + 0.5 * (d.Hi[k] - d.Lo[k]) is var m && m > d.Lo[k] && m < d.Hi[k]).ToArray();
            var inputs = open.OrderByDescending(k => ev.Coeffs == null ? 0 : Math.Abs(ev.Coeffs[k]) * (d.Hi[k] - d.Lo[k])).Take(Math.Max(1, InputCandidates - 1)).ToList();
            if (open.Length > 0)
            {
                int widest = open.MaxBy(k => (d.Hi[k] - d.Lo[k]) / rootWidth[k]);
                if (!inputs.Contains(widest)) inputs.Add(widest);
            }
            var candidates = inputs.Select(k => (Dim: k, Neuron: ((int, int)?)null)).Concat(ev.Neurons.Select(nr => (Dim: -1, Neuron: ((int, int)?)nr)));
            foreach (var (dim, neuron) in candidates)
            {
                if (ctx.OutOfTime) break;
                var (a, b) = Halves(d, ev, dim, neuron);
                var ea = Evaluate(a);
                var eb = Evaluate(b);
                // A proven half counts as lifted to 0; an empty half (a ReLU sign the domain cannot take) is no
                // progress by itself, so such a split scores as its other half.
                double ga = Math.Max(ea.AnyOpen ? ea.Gap : 0, parent) - parent, gb = Math.Max(eb.AnyOpen ? eb.Gap : 0, parent) - parent;
                if (ea.Rb.Infeasible && !eb.Rb.Infeasible) ga = gb;
                if (eb.Rb.Infeasible && !ea.Rb.Infeasible) gb = ga;
                double score = Math.Min(ga, gb) + 1e-3 * Math.Max(ga, gb);
                if (score > best + tol) { best = score; ev.Dim = dim; ev.Neuron = neuron; ev.First = ea; ev.Second = eb; }
                // Both halves proven: nothing can beat it.
                if (!ea.AnyOpen && !eb.AnyOpen) break;
            }
            if (ev.Dim < 0 && ev.Neuron == null && !splitInputs && ev.Neurons.Length > 0)
            {
                // No candidate helps: split the costliest ReLU anyway (its halves are bounded when popped).
                ev.Neuron = ev.Neurons[0];
                ev.First = ev.Second = null;
            }
            else if (ev.Dim < 0 && ev.Neuron == null)
            {
                int w = splittable.Length > 0 ? splittable[0] : 0;
                foreach (int i in splittable) if ((d.Hi[i] - d.Lo[i]) / rootWidth[i] > (d.Hi[w] - d.Lo[w]) / rootWidth[w]) w = i;
                ev.Dim = w;
            }
            ev.Chosen = true;
        }

        var stack = new Stack<Domain>();
        stack.Push(new Domain(lo0, hi0, Enumerable.Repeat(true, c.Unsafe.Count).ToArray(), 0, null, null, null, [], null));
        int maxDepth = 0, leaves = 0, reluSplits = 0;
        // Domains are bounded a few at a time on all cores (the bounds are pure), then handled in stack order.
        int group = Math.Max(1, 4 * Cpu.CpuThreads.Count);
        var popped = new List<Domain>(group);
        var evals = new Bounded[group];
        while (stack.Count > 0)
        {
            if (ctx.OutOfTime) return (Verdict.Timeout, null, $"time ran out after {ctx.Boxes} domains ({leaves} proven, {stack.Count} open, depth {maxDepth})");
            popped.Clear();
            while (popped.Count < group && stack.Count > 0) popped.Add(stack.Pop());
            Cpu.CpuThreads.ForEach(popped.Count, q =>
            {
                var ev = popped[q].Done ?? Evaluate(popped[q]);
                if ((splitInputs || ev.Neurons.Length > 0) && ev.AnyOpen && !ev.Rb.Failed && !ev.Chosen) ChooseSplit(popped[q], ev);
                evals[q] = ev;
            });
            for (int q = 0; q < popped.Count; q++)
            {
                var d = popped[q];
                var ev = evals[q];
                ctx.Boxes++;
                maxDepth = Math.Max(maxDepth, d.Depth);
                if (!ev.AnyOpen) { leaves++; continue; }
                if (ev.Rb.Failed) return (Verdict.Unknown, null, "the float64 bounds overflowed on a domain");
                if (!splitInputs && ev.Neuron == null)
                    return (Verdict.Unknown, null, $"float64 CROWN leaves the property open (best gap {ev.Gap:g4}) with no unstable ReLU to split, and {n} inputs are too many for input splitting");
                // A box's centre is a cheap counterexample candidate.
                if (Verifier.InnerFloatBox(d.Lo.Select((v, i) => Math.Max(v, c.InputLower[i])).ToArray(), d.Hi.Select((v, i) => Math.Min(v, c.InputUpper[i])).ToArray()) is var (flo, fhi))
                {
                    var centre = new float[n];
                    for (int i = 0; i < n; i++) centre[i] = Math.Clamp((float)(0.5 * ((double)flo[i] + fhi[i])), flo[i], fhi[i]);
                    if (c.IsUnsafe(net.Evaluate(centre.Select(v => (double)v).ToArray())) && Verifier.CheckCandidate(ctx.Graph, ctx.InputShape, c, centre, net) is { } cex)
                        return (Verdict.Violated, cex, $"counterexample at a branch-and-bound box centre (depth {d.Depth})");
                }
                if (ev.Neuron == null && !(d.Lo[ev.Dim] + 0.5 * (d.Hi[ev.Dim] - d.Lo[ev.Dim]) is var mid && mid > d.Lo[ev.Dim] && mid < d.Hi[ev.Dim]))
                    return (Verdict.Unknown, null, $"a box can no longer be split (input {ev.Dim} is {d.Hi[ev.Dim] - d.Lo[ev.Dim]:g3} wide) and is not proven");
                if (ev.Neuron != null) reluSplits++;
                var (a, b) = Halves(d, ev, ev.Dim, ev.Neuron);
                stack.Push(b with { Done = ev.Second });
                stack.Push(a with { Done = ev.First });
            }
        }
        return (Verdict.Holds, null, $"float64 CROWN proved {leaves} domain{(leaves == 1 ? "" : "s")} (max depth {maxDepth}, {reluSplits} ReLU splits)");
    }
}
