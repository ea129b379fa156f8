using Engine.Autograd;
using Engine.Bounds;
using Engine.Graph;
using Engine.Tensors;
using Engine.Verification;

namespace Engine.Certify;

/// <summary>
/// The certifier of the certification report: an example is verified when the lower bound of every margin
/// f_y − f_j (j ≠ y) over the perturbation set is above 0, by IBP, CROWN or alpha-CROWN
/// (<see cref="Bounds.Bounds.Compute(ComputeGraph, Tensor, Perturbation, BoundMethod, Spec?, BoundOptions?)"/> under
/// <see cref="NoGrad"/>, so IBP and CROWN take the compiled fast path on the CPU).
/// <para>
/// Soundness. The float32 bounds carry the engine's rounding margins (ρ·Σ|terms| + α on every sum of products), an
/// estimate that covers typical float32 error with a wide factor but is not a proof. An example whose float32 bound is
/// positive yet at most <see cref="RecheckBelow"/> is therefore re-checked by the float64 rigorous guard
/// (<see cref="RigorousNetwork"/>: CROWN in double with every rounding error bounded, valid for the network in exact
/// arithmetic) over the box [x − eps, x + eps] ∩ domain (for L2, the box that contains the ball), and counted only if
/// the guard proves every margin positive as well. Examples with a larger float32 bound are far outside any plausible
/// rounding error (the margins are ~1e-5 relative). When the guard cannot read the graph, the examples in the band
/// are not counted (never the other way round).
/// </para>
/// </summary>
public sealed class BoundCertifier : IRobustnessCertifier
{
    private readonly ComputeGraph _graph;
    private readonly BoundOptions _options;
    private RigorousNetwork? _rigorous;
    private string? _rigorousFailure;
    private int _classes;

    /// <summary>Certifies with <paramref name="method"/> on <paramref name="graph"/> (one input, one output of logits).</summary>
    /// <param name="graph">The classifier.</param>
    /// <param name="method">IBP, CROWN, CROWN-IBP or alpha-CROWN.</param>
    /// <param name="options">Bound settings; null: the defaults without upper bounds (only lower bounds are needed).</param>
    /// <param name="recheckBelow">See <see cref="RecheckBelow"/> (0: no float64 re-check).</param>
    /// <param name="clipLow">Lower end of the input domain, for the guard's box under L2 (L∞ takes it from the perturbation).</param>
    /// <param name="clipHigh">Upper end of the input domain, likewise.</param>
    public BoundCertifier(ComputeGraph graph, BoundMethod method, BoundOptions? options = null, float recheckBelow = 0.05f,
                          float? clipLow = null, float? clipHigh = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (!Enum.IsDefined(method)) throw new ArgumentException($"BoundCertifier: unknown method {method}.");
        if (!(recheckBelow >= 0)) throw new ArgumentException($"BoundCertifier: recheckBelow must be >= 0, got {recheckBelow}.");
        _graph = graph;
        Method = method;
        _options = options ?? new BoundOptions { ComputeUpper = false };
        RecheckBelow = recheckBelow;
        ClipLow = clipLow; ClipHigh = clipHigh;
    }

    /// <summary>The bound method.</summary>
    public BoundMethod Method { get; }

    /// <summary>Float32 margin lower bounds in (0, RecheckBelow] are re-checked in float64 (see the class summary).</summary>
    public float RecheckBelow { get; }

    /// <summary>Lower end of the input domain used by the L2 re-check box (null: unbounded).</summary>
    public float? ClipLow { get; }

    /// <summary>Upper end of the input domain used by the L2 re-check box (null: unbounded).</summary>
    public float? ClipHigh { get; }

    /// <summary>"ibp", "crown", "crown-ibp" or "alpha-crown".</summary>
    public string Name => MethodName(Method);

    /// <summary>The CLI / report name of a bound method.</summary>
    public static string MethodName(BoundMethod method) => method switch
    {
        BoundMethod.Ibp => "ibp",
        BoundMethod.Crown => "crown",
        BoundMethod.CrownIbp => "crown-ibp",
        BoundMethod.AlphaCrown => "alpha-crown",
        _ => method.ToString(),
    };

    /// <inheritdoc/>
    public CertifierResult Certify(Tensor x, int[] labels, Perturbation perturbation)
        => Decide(x, labels, perturbation, LowerBounds(x, labels, perturbation));

    /// <summary>The float32 margin lower bounds [B·(classes − 1)] of <see cref="Method"/>, row-major (margin j of example i at i·(classes − 1) + j).</summary>
    internal float[] LowerBounds(Tensor x, int[] labels, Perturbation perturbation)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(perturbation);
        int b = x.Dims[0];
        if (labels.Length != b) throw new ArgumentException($"BoundCertifier: {labels.Length} labels for a batch of {b}.");
        using (new NoGrad())
        {
            int classes = Classes(x);
            var r = Bounds.Bounds.Compute(_graph, x, perturbation, Method, Spec.Margins(labels, classes), _options);
            return r.Lower.ToArray();
        }
    }

    /// <summary>The number of classes of the model (read from one forward pass, once).</summary>
    internal int Classes(Tensor x)
    {
        if (_classes == 0)
        {
            using (new NoGrad())
            {
                var probe = Executor.Forward(_graph, x.NarrowRows(0, 1));
                _classes = probe.Numel;
            }
            if (_classes < 2) throw new ArgumentException($"BoundCertifier: the model returns {_classes} output per example; a classifier needs at least 2.");
        }
        return _classes;
    }

    /// <summary>
    /// The verdicts from margin lower bounds <paramref name="lower"/> (any valid bounds over the perturbation set,
    /// laid out as <see cref="LowerBounds"/>; e.g. the per-margin maximum of several methods' bounds): an example is
    /// verified when every margin's bound is above 0, and, when its smallest bound is at most
    /// <see cref="RecheckBelow"/>, the float64 guard proves it too.
    /// </summary>
    internal CertifierResult Decide(Tensor x, int[] labels, Perturbation perturbation, float[] lower)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(perturbation);
        ArgumentNullException.ThrowIfNull(lower);
        int b = x.Dims[0];
        if (labels.Length != b) throw new ArgumentException($"BoundCertifier: {labels.Length} labels for a batch of {b}.");
        int rows = Classes(x) - 1;
        if (lower.Length != b * rows) throw new ArgumentException($"BoundCertifier: {lower.Length} margin bounds for {b} examples of {rows + 1} classes.");
        var verified = new bool[b];
        var min = new float[b];
        int rechecked = 0, rejected = 0;
        float[]? xs = null;
        for (int i = 0; i < b; i++)
        {
            float m = float.PositiveInfinity;
            for (int j = 0; j < rows; j++) m = Math.Min(m, lower[i * rows + j]);
            // NaN never verifies (the comparison is false).
            min[i] = m;
            verified[i] = m > 0;
            if (!verified[i] || !(m <= RecheckBelow)) continue;
            rechecked++;
            xs ??= x.ToArray();
            if (!RigorousCheck(xs, i, x.Dims[1..], labels[i], perturbation))
            {
                verified[i] = false;
                rejected++;
            }
        }
        return new CertifierResult(verified, min, rechecked, rejected);
    }

    /// <inheritdoc/>
    public string? RecheckUnavailableReason => _rigorousFailure;

    private bool RigorousCheck(float[] xs, int example, int[] shape, int label, Perturbation p)
    {
        if (_rigorousFailure != null) return false;
        int size = ShapeUtil.Numel(shape);
        if (_rigorous != null && _rigorous.InputSize != size) _rigorous = null;
        if (_rigorous == null)
        {
            _rigorous = RigorousNetwork.TryCreate(_graph, shape, out var why);
            if (_rigorous == null) { _rigorousFailure = why ?? "unsupported graph"; return false; }
        }
        double eps = p.Eps;
        double lo = (p.Norm == PerturbationNorm.LInf ? p.ClipLow : ClipLow) ?? double.NegativeInfinity;
        double hi = (p.Norm == PerturbationNorm.LInf ? p.ClipHigh : ClipHigh) ?? double.PositiveInfinity;
        var lower = new double[size];
        var upper = new double[size];
        for (int k = 0; k < size; k++)
        {
            // The threat model itself, [x − eps, x + eps] ∩ domain: exact in double for float32 x and eps (the float32
            // bounds used fl(x ± eps), which differs from it by half an ulp at most).
            double v = xs[example * size + k];
            lower[k] = Math.Max(lo, v - eps);
            upper[k] = Math.Min(hi, v + eps);
        }
        // First the cheap rigorous check (interval bounds in double, margin folded into the last layer), which settles
        // most IBP verdicts; then the guard's CROWN.
        if (RigorousIbp(_rigorous, lower, upper) is { } penultimate && AllMarginsPositive(penultimate, label)) return true;
        var box = _rigorous.Analyze(lower, upper);
        if (box.Failed) return false;
        var last = box.Network.Nodes[^1] as DenseNode;
        var c = new double[_classes];
        for (int j = 0; j < _classes; j++)
        {
            if (j == label) continue;
            // Per margin the larger of two rigorous bounds: IBP folded into the last layer over the guard's (CROWN-
            // refined) node bounds, which can beat CROWN on IBP-trained networks, and the guard's CROWN.
            if (last is { Inputs.Length: 1 } && FoldedMargin(last, box.Lo[last.Inputs[0]], box.Hi[last.Inputs[0]], label, j) > 0) continue;
            Array.Clear(c);
            c[label] = 1; c[j] = -1;
            if (!(box.LowerBound(c, out _) > 0)) return false;
        }
        return true;
    }

    private bool AllMarginsPositive((RigorousNode Last, double[][] Lo, double[][] Hi) b, int label)
    {
        if (b.Last is not DenseNode d || d.Inputs.Length != 1) return false;
        for (int j = 0; j < _classes; j++)
            if (j != label && !(FoldedMargin(d, b.Lo[d.Inputs[0]], b.Hi[d.Inputs[0]], label, j) > 0)) return false;
        return true;
    }

    /// <summary>
    /// Rigorous interval bounds of every node of a network made of dense layers and ReLUs only (null for any other
    /// node: the full guard handles those): centre-radius form, each dot product charged <see cref="Directed.DotSlack"/>
    /// and every bound stepped outward.
    /// </summary>
    private static (RigorousNode Last, double[][] Lo, double[][] Hi)? RigorousIbp(RigorousNetwork net, double[] lower, double[] upper)
    {
        var nodes = net.Nodes;
        var lo = new double[nodes.Length][];
        var hi = new double[nodes.Length][];
        lo[0] = lower; hi[0] = upper;
        // The last node is never evaluated: the margins fold into it.
        for (int v = 1; v < nodes.Length - 1; v++)
        {
            var node = nodes[v];
            if (node.Inputs.Length != 1) return null;
            var l = lo[node.Inputs[0]];
            var h = hi[node.Inputs[0]];
            switch (node)
            {
                case ReluNode:
                    lo[v] = l.Select(x => Math.Max(x, 0)).ToArray();
                    hi[v] = h.Select(x => Math.Max(x, 0)).ToArray();
                    break;
                case DenseNode d:
                {
                    int n = d.In;
                    var c = new double[n];
                    var r = new double[n];
                    for (int i = 0; i < n; i++)
                    {
                        c[i] = 0.5 * (l[i] + h[i]);
                        // [c − r, c + r] must contain [l, h] whatever the rounding of c.
                        r[i] = Math.Max(Directed.Up(h[i] - c[i]), Directed.Up(c[i] - l[i]));
                    }
                    var ol = new double[d.Size];
                    var oh = new double[d.Size];
                    for (int o = 0; o < d.Size; o++)
                    {
                        var w = d.W.AsSpan(o * n, n);
                        var aw = d.AbsW.AsSpan(o * n, n);
                        double s = 0, t = 0, rad = 0;
                        for (int i = 0; i < n; i++)
                        {
                            double p = w[i] * c[i];
                            s += p; t += Math.Abs(p); rad += aw[i] * r[i];
                        }
                        double slack = Directed.DotSlack(t, n);
                        double radUp = Directed.Up(rad + Directed.DotSlack(rad, n));
                        double b = d.B?[o] ?? 0;
                        ol[o] = Directed.Down(Directed.AddDown(Directed.Down(s - slack), b) - radUp);
                        oh[o] = Directed.Up(Directed.AddUp(Directed.Up(s + slack), b) + radUp);
                        if (!double.IsFinite(ol[o]) || !double.IsFinite(oh[o])) return null;
                    }
                    lo[v] = ol; hi[v] = oh;
                    break;
                }
                default:
                    return null;
            }
        }
        return (nodes[^1], lo, hi);
    }

    /// <summary>
    /// A rigorous lower bound of y_label − y_j for a last dense node: (W_label − W_j)·h + (b_label − b_j) over rigorous
    /// bounds [lo, hi] of its input h, each coefficient an interval [Down(d), Up(d)] and the sum charged its rounding.
    /// </summary>
    private static double FoldedMargin(DenseNode d, double[] lo, double[] hi, int label, int j)
    {
        int n = d.In;
        var wy = d.W.AsSpan(label * n, n);
        var wj = d.W.AsSpan(j * n, n);
        double sum = 0, abs = 0;
        for (int i = 0; i < n; i++)
        {
            double dl = Directed.Down(wy[i] - wj[i]), dh = Directed.Up(wy[i] - wj[i]);
            // Rounding is monotone, so the least rounded corner product is the rounded least exact one: one rounded
            // product per term, as in a dot product, which DotSlack covers.
            double t = Math.Min(Math.Min(dl * lo[i], dl * hi[i]), Math.Min(dh * lo[i], dh * hi[i]));
            sum += t;
            abs += Math.Abs(t);
        }
        double bias = d.B == null ? 0 : Directed.Down(d.B[label] - d.B[j]);
        double r = Directed.AddDown(Directed.Down(sum - Directed.DotSlack(abs, n)), bias);
        return double.IsNaN(r) ? double.NegativeInfinity : r;
    }
}
