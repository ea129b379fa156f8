using System.Diagnostics;
using Engine.Attacks;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Data;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Certify;

/// <summary>
/// The certification report of a classifier over a dataset at one radius: per example, clean correctness (margin
/// f_y − max_{j≠y} f_j &gt; 0 at the input), PGD robustness (clean, and the attack's point, projected into the set
/// and re-evaluated by a forward pass, is still correct) and verification (a certifier proves every input of the set
/// correct). Every verified example is cross-checked: a verified example that is misclassified, or whose attack
/// point is misclassified, raises a <see cref="CertificationSoundnessException"/> naming it. So every report
/// satisfies verified ≤ PGD ≤ clean example by example.
/// </summary>
public static class Certification
{
    /// <summary>See <see cref="Run(ComputeGraph, TensorDataset, CertificationOptions, IRobustnessCertifier?, Action{int}?)"/>.</summary>
    public static CertificationReport Run(Module model, TensorDataset data, CertificationOptions options, IRobustnessCertifier? certifier = null, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Run(model.Graph, data, options, certifier, progress);
    }

    /// <summary>
    /// Certifies every example of <paramref name="data"/> (inputs in the domain, targets class indices). The batches
    /// go to the device of the model's weights.
    /// </summary>
    /// <param name="model">The classifier (one input, logits out), evaluated in evaluation mode.</param>
    /// <param name="data">The examples.</param>
    /// <param name="options">Threat model, attack, bound method.</param>
    /// <param name="certifier">Who decides "verified"; null: a <see cref="BoundCertifier"/> with the options' method.</param>
    /// <param name="progress">Called after each batch with the number of examples done so far.</param>
    /// <exception cref="CertificationSoundnessException">The certifier verified an example that is not robust.</exception>
    public static CertificationReport Run(ComputeGraph model, TensorDataset data, CertificationOptions options, IRobustnessCertifier? certifier = null, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var clock = Stopwatch.StartNew();
        certifier ??= new BoundCertifier(model, options.Method, options.BoundOptions, options.RecheckBelow, options.ClipLow, options.ClipHigh);
        var device = ModelDevice(model);
        var perturbation = options.Perturbation;
        var attackModel = AttackModel.FromGraph(model);
        var examples = new List<ExampleCertificate>(data.Count);
        int rechecked = 0, rejected = 0;
        BabStatistics? bab = null;
        for (int start = 0, batchNo = 0; start < data.Count; start += options.BatchSize, batchNo++)
        {
            int count = Math.Min(options.BatchSize, data.Count - start);
            var x = data.Inputs.NarrowRows(start, count);
            var yt = data.Targets.NarrowRows(start, count);
            if (x.Device != device) x = x.To(device);
            if (yt.Device != device) yt = yt.To(device);
            var labels = Labels(yt);
            Checks(x, options);

            float[] cleanMargins, preds;
            using (new NoGrad())
            {
                var logits = Executor.Forward(model, x);
                cleanMargins = Margins(logits, labels, out preds);
            }
            var attackMargins = Attack(attackModel, model, x, yt, labels, options with { Seed = options.Seed + (ulong)batchNo });
            var verdict = certifier.Certify(x, labels, perturbation);
            if (verdict.Verified.Length != count || verdict.MarginLowerBound.Length != count)
                throw new InvalidOperationException($"Certification: the certifier '{certifier.Name}' answered {verdict.Verified.Length} verdicts for a batch of {count}.");
            rechecked += verdict.Rechecked;
            rejected += verdict.RecheckRejected;
            if (verdict.Bab is { } stages) bab = bab == null ? stages : bab + stages;
            for (int i = 0; i < count; i++)
            {
                int index = start + i;
                bool clean = cleanMargins[i] > 0;
                bool pgd = clean && attackMargins[i] > 0;
                bool verified = verdict.Verified[i];
                float bound = verdict.MarginLowerBound[i];
                if (verified && !clean)
                    throw new CertificationSoundnessException(index,
                        $"Soundness bug: example {index} (label {labels[i]}) is verified by {certifier.Name} at eps {options.Eps} (margin lower bound {bound}), " +
                        $"but the clean input is misclassified (margin {cleanMargins[i]}, predicted {preds[i]}).");
                if (verified && !pgd)
                    throw new CertificationSoundnessException(index,
                        $"Soundness bug: example {index} (label {labels[i]}) is verified by {certifier.Name} at eps {options.Eps} (margin lower bound {bound}), " +
                        $"but {options.DescribeAttack()} found an input of the set with margin {attackMargins[i]}.");
                examples.Add(new ExampleCertificate(index, labels[i], (int)preds[i], clean, pgd, verified, bound, attackMargins[i]));
            }
            progress?.Invoke(start + count);
        }
        return new CertificationReport(examples, options.Eps, NormName(options.Norm), certifier.Name, options.DescribeAttack(),
                                       clock.Elapsed.TotalSeconds, rechecked: rechecked, recheckRejected: rejected, bab: bab,
                                       recheckUnavailable: certifier.RecheckUnavailableReason);
    }

    /// <summary>
    /// Reports at several radii (e.g. for a plot of verified and PGD accuracy against eps); <paramref name="progress"/>
    /// counts examples over all radii.
    /// </summary>
    public static IReadOnlyList<CertificationReport> Sweep(ComputeGraph model, TensorDataset data, CertificationOptions options, IReadOnlyList<float> epsilons,
                                                           Func<CertificationOptions, IRobustnessCertifier>? certifier = null, Action<int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(epsilons);
        ArgumentNullException.ThrowIfNull(data);
        var reports = new List<CertificationReport>();
        for (int k = 0; k < epsilons.Count; k++)
        {
            int done = k * data.Count;
            var o = options with { Eps = epsilons[k] };
            reports.Add(Run(model, data, o, certifier?.Invoke(o), progress == null ? null : n => progress(done + n)));
        }
        return reports;
    }

    /// <summary>Evenly spaced radii 0, E/(k−1), ..., E (k ≥ 2 points).</summary>
    public static float[] Radii(float eps, int points)
    {
        if (points < 2) throw new ArgumentOutOfRangeException(nameof(points), $"Certification.Radii: need at least 2 points, got {points}.");
        var r = new float[points];
        for (int i = 0; i < points; i++) r[i] = i == points - 1 ? eps : eps * i / (points - 1);
        return r;
    }

    /// <summary>"inf" or "2".</summary>
    public static string NormName(PerturbationNorm norm) => norm == PerturbationNorm.L2 ? "2" : "inf";

    /// <summary>Per row f_y − max_{j≠y} f_j of logits [B, C] (and the argmax, first on ties).</summary>
    internal static float[] Margins(Tensor logits, int[] labels, out float[] predictions)
    {
        int b = labels.Length;
        if (logits.Rank != 2 || logits.Dims[0] != b || logits.Dims[1] < 2)
            throw new ArgumentException($"Certification: the model must return logits [{b}, C] with C >= 2, got {ShapeUtil.Format(logits.Dims)}.");
        int c = logits.Dims[1];
        var l = logits.ToArray();
        var m = new float[b];
        predictions = new float[b];
        for (int i = 0; i < b; i++)
        {
            if (labels[i] >= c) throw new ArgumentException($"Certification: label {labels[i]} of a batch row {i} is not one of the model's {c} classes.");
            var row = l.AsSpan(i * c, c);
            float other = float.NegativeInfinity;
            int best = 0;
            for (int j = 0; j < c; j++)
            {
                if (row[j] > row[best]) best = j;
                if (j != labels[i]) other = Math.Max(other, row[j]);
            }
            predictions[i] = best;
            // NaN logits give a NaN margin, which is never > 0: not correct.
            m[i] = float.IsNaN(row[labels[i]]) ? float.NaN : row[labels[i]] - other;
        }
        return m;
    }

    internal static int[] Labels(Tensor targets)
    {
        var t = targets.ToArray();
        var labels = new int[t.Length];
        for (int i = 0; i < t.Length; i++)
        {
            if (!(t[i] >= 0) || t[i] != MathF.Floor(t[i]) || t[i] > int.MaxValue)
                throw new ArgumentException($"Certification: target {i} is {t[i]}, not a class index.");
            labels[i] = (int)t[i];
        }
        return labels;
    }

    internal static Device ModelDevice(ComputeGraph model)
        => model.Initializers.Select(v => v.Data!.Device).FirstOrDefault() ?? Device.Cpu;

    private static void Checks(Tensor x, CertificationOptions o)
    {
        if (x.Rank < 2) throw new ArgumentException($"Certification: inputs must be [N, ...] examples, got {ShapeUtil.Format(x.Dims)}.");
        float lo = x.Min().Item(), hi = x.Max().Item();
        if (float.IsNaN(lo) || float.IsNaN(hi)) throw new ArgumentException("Certification: the inputs contain NaN.");
        if (lo < o.ClipLow || hi > o.ClipHigh)
            throw new ArgumentException($"Certification: the inputs span [{lo}, {hi}], outside the domain [{o.ClipLow}, {o.ClipHigh}].");
    }

    // PGD, then the attack's point is projected into the exact set the bounds use and re-evaluated by a forward pass:
    // the margin reported is that of a real member of the set, not the attack's own bookkeeping.
    private static float[] Attack(AttackModel attackModel, ComputeGraph model, Tensor x, Tensor yt, int[] labels, CertificationOptions o)
    {
        Tensor point;
        if (o.Eps == 0) point = x;
        else
        {
            var r = Pgd.Attack(attackModel, x, yt, o.Pgd);
            using (new NoGrad()) point = Project(r.Adversarial, x, o);
        }
        using (new NoGrad())
            return Margins(Executor.Forward(model, point), labels, out _);
    }

    internal static Tensor Project(Tensor point, Tensor x, CertificationOptions o)
    {
        if (o.Norm == PerturbationNorm.LInf)
        {
            // The same float32 box as Perturbation.InputInterval: [fl(x − eps), fl(x + eps)] ∩ domain.
            var lower = (x - o.Eps).Clamp(o.ClipLow, null);
            var upper = (x + o.Eps).Clamp(null, o.ClipHigh);
            return Tensor.Minimum(Tensor.Maximum(point, lower), upper);
        }
        int n = x.Dims[0];
        var delta = (point - x).Reshape(n, -1);
        var norms = delta.Square().Sum(1).Sqrt();
        // Shrink a delta that the float32 arithmetic left just outside the ball (by a relative 1e-6, well below any
        // attack step), then clip to the domain, which only moves elements towards x (x lies in the domain).
        var scale = Tensor.Minimum(Tensor.Scalar(1f, x.Device), (o.Eps * (1 - 1e-6f)) / Tensor.Maximum(norms, Tensor.Scalar(1e-30f, x.Device)));
        var shrunk = x + (delta * scale.Reshape(n, 1)).Reshape(x.Dims);
        return shrunk.Clamp(o.ClipLow, o.ClipHigh);
    }
}
