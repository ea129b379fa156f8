using System.Diagnostics;
using Engine.Attacks;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Graph;
using Engine.Tensors;
using Engine.Verification;

namespace Engine.Certify;

/// <summary>
/// Verified accuracy the way the certified-training literature reports it: a cascade of cheap bounds, then a
/// complete verifier on what is left ("bab" in reports). Per batch:
/// <list type="number">
/// <item>IBP margin lower bounds for every example, and CROWN's for the correctly classified examples IBP does not
/// prove with room to spare; per example and per margin the larger of the two (each is a valid bound, so their
/// maximum is). An example is verified when every margin's bound is above 0, with the float64 re-check of
/// <see cref="BoundCertifier"/> for a smallest bound in (0, RecheckBelow].</item>
/// <item>alpha-CROWN (float32) on the correctly classified examples still open, joined the same way (optional).</item>
/// <item>A PGD attack (margin loss, random restarts) on those still open: an example it breaks cannot be verified.</item>
/// <item>The float64 complete verifier (<see cref="Verifier"/>: an attack, rigorous CROWN / alpha-CROWN bounds, then
/// branch and bound over ReLU splits) on each remaining example, over the box
/// [max(clipLow, x − eps), min(clipHigh, x + eps)] with the unsafe set "some margin y_label − y_j ≤ 0", with a
/// time limit per example. Only a proof (<see cref="Verdict.Holds"/>) counts.</item>
/// </list>
/// <para>
/// Soundness: every stage is sound on its own (the float32 bounds with the float64 re-check of the near-zero ones,
/// the complete verifier's proofs with every rounding charged), and <see cref="Certification"/> still cross-checks
/// every verified example against the clean prediction and its own attack. L∞ only: the complete verifier works on
/// input boxes, and the box around an L2 ball is far too loose to prove anything there.
/// </para>
/// <para>
/// The complete verifier runs on the CPU: the model must be on the CPU. Its cost depends on how many examples reach
/// it (those that the bounds leave open and the attack cannot break), each up to <see cref="BabOptions.Timeout"/>.
/// </para>
/// </summary>
public sealed class BabCertifier : IRobustnessCertifier
{
    private readonly ComputeGraph _graph;
    private readonly BoundCertifier _ibp, _crown, _alpha;
    private readonly AttackModel _attackModel;
    private RigorousNetwork? _net;
    private int[]? _netShape;
    private string? _netFailure;

    /// <summary>Certifies with the cascade on <paramref name="graph"/> (one input, one output of logits, on the CPU).</summary>
    /// <param name="graph">The classifier.</param>
    /// <param name="options">Attack and complete-verifier settings; null: the defaults.</param>
    /// <param name="boundOptions">Settings of the float32 bounds; null: the defaults without upper bounds.</param>
    /// <param name="recheckBelow">Float32 smallest margin bounds in (0, recheckBelow] are re-checked in float64 (see <see cref="BoundCertifier"/>).</param>
    /// <exception cref="ArgumentException">A bad setting, or the model is not on the CPU.</exception>
    public BabCertifier(ComputeGraph graph, BabOptions? options = null, BoundOptions? boundOptions = null, float recheckBelow = 0.05f)
    {
        ArgumentNullException.ThrowIfNull(graph);
        Options = options ?? new BabOptions();
        Options.Validate();
        if (!(recheckBelow >= 0)) throw new ArgumentException($"BabCertifier: recheckBelow must be >= 0, got {recheckBelow}.");
        var device = Certification.ModelDevice(graph);
        if (device != Device.Cpu)
            throw new ArgumentException($"BabCertifier: the complete verifier runs on the CPU, but the model is on {device.Name}; certify it on the CPU.");
        _graph = graph;
        _ibp = new BoundCertifier(graph, BoundMethod.Ibp, boundOptions, recheckBelow);
        _crown = new BoundCertifier(graph, BoundMethod.Crown, boundOptions, recheckBelow);
        _alpha = new BoundCertifier(graph, BoundMethod.AlphaCrown, boundOptions, recheckBelow);
        _attackModel = AttackModel.FromGraph(graph);
    }

    /// <summary>"bab".</summary>
    public string Name => "bab";

    /// <summary>The attack and complete-verifier settings.</summary>
    public BabOptions Options { get; }

    /// <summary>Float32 smallest margin bounds in (0, RecheckBelow] are re-checked in float64.</summary>
    public float RecheckBelow => _ibp.RecheckBelow;

    /// <inheritdoc/>
    public string? RecheckUnavailableReason => _ibp.RecheckUnavailableReason;

    /// <summary>Why the complete verifier cannot read this graph (null when it can, or before it was first needed); examples that reach it then count as <see cref="BabStatistics.Unknown"/>.</summary>
    public string? BranchAndBoundUnavailableReason => _netFailure;

    /// <inheritdoc/>
    /// <remarks>
    /// <see cref="CertifierResult.MarginLowerBound"/> is the smallest per-margin maximum of the float32 bounds, or 0
    /// for an example the complete verifier proved (its margins are all positive; no value is computed).
    /// <see cref="CertifierResult.RecheckRejected"/> counts the near-zero bounds the float64 re-check did not confirm;
    /// a later stage may still prove those examples. <see cref="CertifierResult.Bab"/> holds the per-stage counts.
    /// </remarks>
    /// <exception cref="ArgumentException">An L2 perturbation, or labels that do not fit the batch.</exception>
    public CertifierResult Certify(Tensor x, int[] labels, Perturbation perturbation)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(perturbation);
        if (perturbation.Norm != PerturbationNorm.LInf)
            throw new ArgumentException("BabCertifier: bab certifies L∞ radii only (its complete verifier works on input boxes); use crown for L2.");
        if (x.Rank < 2) throw new ArgumentException($"BabCertifier: inputs must be [N, ...] examples, got {ShapeUtil.Format(x.Dims)}.");
        int b = x.Dims[0];
        if (labels.Length != b) throw new ArgumentException($"BabCertifier: {labels.Length} labels for a batch of {b}.");
        var clock = Stopwatch.StartNew();
        int classes = _ibp.Classes(x), rows = classes - 1;
        foreach (int y in labels)
            if (y < 0 || y >= classes) throw new ArgumentException($"BabCertifier: label {y} is not one of the model's {classes} classes.");
        var clean = Clean(x, labels, classes);

        // 1. IBP everywhere; CROWN where IBP leaves a correctly classified example open or near zero; per margin the max.
        var ibp = _ibp.LowerBounds(x, labels, perturbation);
        var lower = (float[])ibp.Clone();
        var needCrown = Enumerable.Range(0, b).Where(i => clean[i] && !(Min(ibp, i, rows) > RecheckBelow)).ToArray();
        JoinMax(lower, _crown, x, labels, perturbation, needCrown, rows);
        var first = _ibp.Decide(x, labels, perturbation, lower);
        var verified = first.Verified;
        var bound = first.MarginLowerBound;
        int rechecked = first.Rechecked, rejected = first.RecheckRejected;
        int byIbp = 0, byCrown = 0, byAlpha = 0;
        for (int i = 0; i < b; i++)
            if (verified[i]) { if (Min(ibp, i, rows) > 0) byIbp++; else byCrown++; }

        // 2. alpha-CROWN on the correctly classified examples still open.
        var open = Enumerable.Range(0, b).Where(i => clean[i] && !verified[i]).ToArray();
        if (Options.AlphaCrown && open.Length > 0)
        {
            var sub = Subset(x, open);
            var subLabels = open.Select(i => labels[i]).ToArray();
            var subLower = new float[open.Length * rows];
            for (int q = 0; q < open.Length; q++) Array.Copy(lower, open[q] * rows, subLower, q * rows, rows);
            var alpha = _alpha.LowerBounds(sub, subLabels, perturbation);
            for (int k = 0; k < subLower.Length; k++) subLower[k] = Max(subLower[k], alpha[k]);
            var second = _ibp.Decide(sub, subLabels, perturbation, subLower);
            rechecked += second.Rechecked;
            rejected += second.RecheckRejected;
            for (int q = 0; q < open.Length; q++)
            {
                bound[open[q]] = second.MarginLowerBound[q];
                if (second.Verified[q]) { verified[open[q]] = true; byAlpha++; }
            }
            open = open.Where(i => !verified[i]).ToArray();
        }
        double boundSeconds = clock.Elapsed.TotalSeconds;

        // 3. The screening attack.
        clock.Restart();
        var broken = Attack(x, labels, perturbation, open, classes);
        double attackSeconds = clock.Elapsed.TotalSeconds;
        open = open.Where((_, q) => !broken[q]).ToArray();

        // 4. The complete verifier, one example at a time.
        clock.Restart();
        int proved = 0, counterexamples = 0, timeouts = 0, unknown = 0;
        if (open.Length > 0)
        {
            var net = Guard(x.Dims[1..]);
            var xs = x.ToArray();
            int size = ShapeUtil.Numel(x.Dims[1..]);
            foreach (int i in open)
            {
                var verdict = net == null ? Verdict.Unknown : Complete(net, xs.AsSpan(i * size, size), x.Dims[1..], labels[i], classes, perturbation);
                switch (verdict)
                {
                    case Verdict.Holds:
                        verified[i] = true;
                        bound[i] = Math.Max(bound[i], 0f);
                        proved++;
                        break;
                    case Verdict.Violated: counterexamples++; break;
                    case Verdict.Timeout: timeouts++; break;
                    default: unknown++; break;
                }
            }
        }
        var stats = new BabStatistics
        {
            Ibp = byIbp, Crown = byCrown, AlphaCrown = byAlpha, RecheckRejected = rejected, Attacked = broken.Count(v => v),
            BranchAndBound = open.Length, Proved = proved, Counterexamples = counterexamples, Timeouts = timeouts, Unknown = unknown,
            BoundSeconds = boundSeconds, AttackSeconds = attackSeconds, BranchAndBoundSeconds = open.Length == 0 ? 0 : clock.Elapsed.TotalSeconds,
        };
        return new CertifierResult(verified, bound, rechecked, rejected, stats);
    }

    /// <summary>Per margin, the larger of two lower bounds (NaN, which no bound should be, never wins).</summary>
    internal static float Max(float a, float b) => float.IsNaN(a) ? b : float.IsNaN(b) ? a : Math.Max(a, b);

    private static float Min(float[] lower, int i, int rows)
    {
        float m = float.PositiveInfinity;
        for (int j = 0; j < rows; j++) m = Math.Min(m, lower[i * rows + j]);
        return m;
    }

    private static Tensor Subset(Tensor x, int[] idx)
        => idx.Length == x.Dims[0] ? x : x.IndexSelect(0, idx);

    /// <summary>Raises lower[i, :] to the per-margin max with <paramref name="method"/>'s bounds for the examples <paramref name="idx"/>.</summary>
    private static void JoinMax(float[] lower, BoundCertifier method, Tensor x, int[] labels, Perturbation p, int[] idx, int rows)
    {
        if (idx.Length == 0) return;
        var l = method.LowerBounds(Subset(x, idx), idx.Select(i => labels[i]).ToArray(), p);
        for (int q = 0; q < idx.Length; q++)
            for (int j = 0; j < rows; j++)
                lower[idx[q] * rows + j] = Max(lower[idx[q] * rows + j], l[q * rows + j]);
    }

    /// <summary>Per example: the label is the strict maximum of the logits (as <see cref="Certification"/> counts clean).</summary>
    private bool[] Clean(Tensor x, int[] labels, int classes)
    {
        float[] logits;
        using (new NoGrad()) logits = Executor.Forward(_graph, x).ToArray();
        var ok = new bool[labels.Length];
        for (int i = 0; i < ok.Length; i++)
        {
            var row = logits.AsSpan(i * classes, classes);
            float other = float.NegativeInfinity;
            for (int j = 0; j < classes; j++) if (j != labels[i]) other = Math.Max(other, row[j]);
            ok[i] = row[labels[i]] - other > 0;
        }
        return ok;
    }

    /// <summary>Per open example: whether PGD found a point of the set (projected into it, re-evaluated) that is misclassified.</summary>
    private bool[] Attack(Tensor x, int[] labels, Perturbation p, int[] open, int classes)
    {
        if (open.Length == 0 || p.Eps == 0) return new bool[open.Length];
        var sub = Subset(x, open);
        var yt = Tensor.FromArray(open.Select(i => (float)labels[i]).ToArray(), open.Length);
        var r = Pgd.Attack(_attackModel, sub, yt, new PgdOptions
        {
            Norm = Norm.LInf, Eps = p.Eps, Steps = Options.AttackSteps, Restarts = Options.AttackRestarts, Loss = AttackLoss.Margin,
            ClipLow = p.ClipLow ?? float.NegativeInfinity, ClipHigh = p.ClipHigh ?? float.PositiveInfinity, RandomStart = true,
            Seed = Options.Seed + Fingerprint(sub.ToArray()),
        });
        float[] logits;
        using (new NoGrad())
        {
            // Into the same float32 box as the bounds, [fl(x − eps), fl(x + eps)] ∩ domain, then a forward pass.
            var lo = (sub - p.Eps).Clamp(p.ClipLow, null);
            var hi = (sub + p.Eps).Clamp(null, p.ClipHigh);
            logits = Executor.Forward(_graph, Tensor.Minimum(Tensor.Maximum(r.Adversarial, lo), hi)).ToArray();
        }
        var broken = new bool[open.Length];
        for (int q = 0; q < open.Length; q++)
        {
            var row = logits.AsSpan(q * classes, classes);
            int y = labels[open[q]];
            for (int j = 0; j < classes; j++) if (j != y && !(row[y] > row[j])) broken[q] = true;
        }
        return broken;
    }

    /// <summary>A hash of the inputs (FNV-1a over the float bits): random starts that depend on the example, not on what ran before.</summary>
    private static ulong Fingerprint(ReadOnlySpan<float> x)
    {
        ulong h = 14695981039346656037UL;
        foreach (var v in x) h = (h ^ BitConverter.SingleToUInt32Bits(v)) * 1099511628211UL;
        return h;
    }

    private RigorousNetwork? Guard(int[] shape)
    {
        if (_netShape != null && ShapeUtil.SameShape(_netShape, shape)) return _net;
        _net = RigorousNetwork.TryCreate(_graph, shape, out var why);
        _netShape = (int[])shape.Clone();
        _netFailure = _net == null ? why ?? "unsupported graph" : null;
        return _net;
    }

    /// <summary>The complete verifier on one example: no input of the box may reach y_label − y_j ≤ 0 for any j ≠ label.</summary>
    private Verdict Complete(RigorousNetwork net, ReadOnlySpan<float> x, int[] shape, int label, int classes, Perturbation p)
    {
        double eps = p.Eps;
        double clipLo = p.ClipLow ?? double.NegativeInfinity, clipHi = p.ClipHigh ?? double.PositiveInfinity;
        var lower = new double[x.Length];
        var upper = new double[x.Length];
        for (int k = 0; k < x.Length; k++)
        {
            // [x − eps, x + eps] ∩ domain, exact in double for float32 x and eps (the float32 bounds used
            // fl(x ± eps), within half an ulp of it; the verifier widens the box by an ulp anyway).
            lower[k] = Math.Max(clipLo, x[k] - eps);
            upper[k] = Math.Min(clipHi, x[k] + eps);
        }
        var unsafeSet = new List<UnsafeConjunction>(classes - 1);
        for (int j = 0; j < classes; j++)
        {
            if (j == label) continue;
            var c = new double[1, classes];
            c[0, label] = 1;
            c[0, j] = -1;
            unsafeSet.Add(new UnsafeConjunction(c, [0.0]));
        }
        var problem = new VerificationProblem([new VerificationCase(lower, upper, unsafeSet)]);
        var options = new VerifierOptions
        {
            Timeout = Options.Timeout,
            // The screening attack already ran: one cheap round here, mostly for the counterexample check.
            AttackRestarts = 1, AttackBatch = 16, AttackSteps = 50,
            Seed = Options.Seed + Fingerprint(x),
        };
        return Verifier.VerifyWith(_graph, shape, problem, options, net, _netFailure).Verdict;
    }
}
