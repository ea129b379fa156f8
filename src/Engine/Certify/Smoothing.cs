using System.Diagnostics;
using Engine.Attacks;
using Engine.Autograd;
using Engine.Data;
using Engine.Graph;
using Engine.Tensors;

namespace Engine.Certify;

/// <summary>Settings of a randomized smoothing report (<see cref="Smoothing.Run"/>).</summary>
public sealed record SmoothingOptions
{
    /// <summary>Noise standard deviation σ (&gt; 0).</summary>
    public float Sigma { get; init; } = 0.25f;

    /// <summary>Selection samples n0 (≥ 1).</summary>
    public int N0 { get; init; } = 100;

    /// <summary>Estimation samples n (≥ 1); the largest certifiable radius grows with n (σ·Φ⁻¹(alpha^(1/n))).</summary>
    public int N { get; init; } = 1000;

    /// <summary>Failure probability of each certificate, in (0, 1).</summary>
    public double Alpha { get; init; } = 0.001;

    /// <summary>Noisy copies per forward pass.</summary>
    public int BatchSize { get; init; } = 1000;

    /// <summary>The L2 radius the report certifies (≥ 0).</summary>
    public float Eps { get; init; }

    /// <summary>Lower end of the input domain (the attack stays inside it; the noise does not).</summary>
    public float ClipLow { get; init; }

    /// <summary>Upper end of the input domain.</summary>
    public float ClipHigh { get; init; } = 1f;

    /// <summary>PGD steps of the attack on the smoothed classifier.</summary>
    public int PgdSteps { get; init; } = 20;

    /// <summary>PGD restarts.</summary>
    public int PgdRestarts { get; init; } = 1;

    /// <summary>PGD step size (L2 length); null: 2.5·Eps/PgdSteps.</summary>
    public float? PgdStepSize { get; init; }

    /// <summary>Noise draws per example in each attack step (the soft classifier's Monte-Carlo estimate).</summary>
    public int PgdSamples { get; init; } = 8;

    /// <summary>Seed of the noise and the attack's random starts (per example, so results do not depend on batching).</summary>
    public ulong Seed { get; init; }

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        if (!(Sigma > 0) || float.IsInfinity(Sigma)) throw new ArgumentException($"Smoothing: sigma must be finite and > 0, got {Sigma}.");
        if (N0 < 1) throw new ArgumentException($"Smoothing: n0 must be >= 1, got {N0}.");
        if (N < 1) throw new ArgumentException($"Smoothing: n must be >= 1, got {N}.");
        if (!(Alpha > 0 && Alpha < 1)) throw new ArgumentException($"Smoothing: alpha must be in (0, 1), got {Alpha}.");
        if (BatchSize < 1) throw new ArgumentException($"Smoothing: the batch size must be >= 1, got {BatchSize}.");
        if (!(Eps >= 0) || float.IsInfinity(Eps)) throw new ArgumentException($"Smoothing: eps must be finite and >= 0, got {Eps}.");
        if (!(ClipLow <= ClipHigh)) throw new ArgumentException($"Smoothing: the input domain [{ClipLow}, {ClipHigh}] is empty.");
        if (PgdSteps < 1) throw new ArgumentException($"Smoothing: PGD steps must be >= 1, got {PgdSteps}.");
        if (PgdRestarts < 1) throw new ArgumentException($"Smoothing: PGD restarts must be >= 1, got {PgdRestarts}.");
        if (PgdSamples < 1) throw new ArgumentException($"Smoothing: PGD noise samples must be >= 1, got {PgdSamples}.");
        if (PgdStepSize is float s && (!(s > 0) || float.IsInfinity(s))) throw new ArgumentException($"Smoothing: the PGD step size must be finite and > 0, got {s}.");
    }

    /// <summary>The attack as the report prints it.</summary>
    public string DescribeAttack()
        => FormattableString.Invariant(
            $"PGD-{PgdSteps} on the smoothed classifier (L2, step {PgdStepSize ?? 2.5f * Eps / PgdSteps:0.#####}, {PgdRestarts} restart{(PgdRestarts == 1 ? "" : "s")}, cross-entropy of E[softmax] over {PgdSamples} noise draws per step)");
}

/// <summary>
/// The certification report of a randomized-smoothing classifier (<see cref="SmoothedClassifier"/>) at an L2 radius:
/// <list type="bullet">
/// <item>clean: CERTIFY at the clean input returns the true class (does not abstain);</item>
/// <item>verified: clean, and the certified radius is ≥ eps (Cohen et al.'s certified accuracy);</item>
/// <item>pgd: clean, and the smoothed classifier does not return a wrong class at the point found by PGD on the soft
/// smoothed classifier's cross-entropy (Salman et al. 2019), where it is evaluated by CERTIFY's rule with fresh noise
/// (an abstention there is not a successful attack: the attacker needs a wrong answer).</item>
/// </list>
/// PGD ≤ clean and verified ≤ clean hold by definition; verified ≤ PGD holds only with high probability (each
/// certificate fails with probability ≤ alpha, and the prediction at the attack point is itself a Monte-Carlo test),
/// so violations are counted (<see cref="CertificationReport.Inconsistent"/>) instead of raising.
/// </summary>
public static class Smoothing
{
    /// <summary>The report at <see cref="SmoothingOptions.Eps"/>.</summary>
    public static CertificationReport Run(ComputeGraph model, TensorDataset data, SmoothingOptions options, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Sweep(model, data, options, [options.Eps], progress)[0];
    }

    /// <summary>
    /// Reports at several L2 radii: CERTIFY runs once per example (the radii give every eps), the attack once per
    /// positive eps. <paramref name="progress"/> receives (done, total) in example-steps.
    /// </summary>
    public static IReadOnlyList<CertificationReport> Sweep(ComputeGraph model, TensorDataset data, SmoothingOptions options, IReadOnlyList<float> epsilons,
                                                           Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(epsilons);
        options.Validate();
        foreach (var e in epsilons)
            if (!(e >= 0) || float.IsInfinity(e)) throw new ArgumentException($"Smoothing: eps must be finite and >= 0, got {e}.");
        var clock = Stopwatch.StartNew();
        var smoothed = new SmoothedClassifier(model, options.Sigma);
        var device = Certification.ModelDevice(model);
        int count = data.Count;
        int total = count * (1 + epsilons.Count(e => e > 0)), done = 0;
        var inputs = data.Inputs.Device == device ? data.Inputs : data.Inputs.To(device);
        var labels = Certification.Labels(data.Targets);
        float lo = inputs.Min().Item(), hi = inputs.Max().Item();
        if (float.IsNaN(lo) || lo < options.ClipLow || hi > options.ClipHigh)
            throw new ArgumentException($"Smoothing: the inputs span [{lo}, {hi}], outside the domain [{options.ClipLow}, {options.ClipHigh}].");

        var clean = new SmoothedPrediction[count];
        for (int i = 0; i < count; i++)
        {
            clean[i] = smoothed.Certify(inputs.NarrowRows(i, 1), options.N0, options.N, options.Alpha, options.BatchSize, new Generator(Mix(options.Seed, i, 0)));
            progress?.Invoke(++done, total);
        }
        int abstained = clean.Count(p => p.Abstained);
        var summary = new SmoothingSummary(options.Sigma, options.N0, options.N, options.Alpha, abstained);

        var reports = new List<CertificationReport>();
        foreach (var eps in epsilons)
        {
            var o = options with { Eps = eps };
            var attacked = new int[count];
            Array.Fill(attacked, int.MinValue); // not attacked: eps = 0, or misclassified already
            if (eps > 0)
            {
                int per = Math.Max(1, options.BatchSize / options.PgdSamples);
                var todo = Enumerable.Range(0, count).Where(i => clean[i].Class == labels[i]).ToArray();
                for (int s = 0; s < todo.Length; s += per)
                {
                    var idx = todo.AsSpan(s, Math.Min(per, todo.Length - s)).ToArray();
                    AttackBatch(smoothed, inputs, labels, idx, o, attacked);
                    done += idx.Length;
                    progress?.Invoke(done, total);
                }
                done += count - todo.Length;
                progress?.Invoke(done, total);
            }
            var examples = new ExampleCertificate[count];
            for (int i = 0; i < count; i++)
            {
                var p = clean[i];
                bool ok = p.Class == labels[i];
                bool broken = attacked[i] >= 0 && attacked[i] != labels[i];
                examples[i] = new ExampleCertificate(i, labels[i], p.Class, ok, ok && !broken, ok && p.Radius >= eps, float.NaN, float.NaN, p.Radius);
            }
            reports.Add(new CertificationReport(examples, eps, "2", "smoothing", o.DescribeAttack(), clock.Elapsed.TotalSeconds, summary));
        }
        return reports;
    }

    // PGD on the soft smoothed classifier for the examples idx, then CERTIFY's decision at each attack point (fresh
    // noise): attacked[i] = the class returned there, or −1 for an abstention.
    private static void AttackBatch(SmoothedClassifier smoothed, Tensor inputs, int[] labels, int[] idx, SmoothingOptions o, int[] attacked)
    {
        var x = Tensor.Concat(idx.Select(i => inputs.NarrowRows(i, 1)).ToArray(), 0);
        var yt = Tensor.FromArray(idx.Select(i => (float)labels[i]).ToArray(), idx.Length).To(x.Device);
        var noise = new Generator(Mix(o.Seed, idx[0], 1));
        var pgd = new PgdOptions
        {
            Norm = Norm.L2, Eps = o.Eps, Steps = o.PgdSteps, Restarts = o.PgdRestarts, StepSize = o.PgdStepSize,
            Loss = AttackLoss.CrossEntropy, ClipLow = o.ClipLow, ClipHigh = o.ClipHigh, RandomStart = true, Seed = Mix(o.Seed, idx[0], 2),
        };
        Tensor adversarial;
        // The attack differentiates through the base classifier: keep its weights out of the backward pass.
        var frozen = smoothed.BaseClassifier.Initializers.Select(v => v.Data!).Where(t => t.IsLeaf && t.RequiresGrad).Distinct(ReferenceEqualityComparer.Instance).Cast<Tensor>().ToList();
        foreach (var t in frozen) t.RequiresGrad = false;
        try
        {
            var r = Pgd.Attack(AttackModel.FromFunc(b => smoothed.SoftLogProbabilities(b, o.PgdSamples, noise)), x, yt, pgd);
            using (new NoGrad())
                adversarial = Certification.Project(r.Adversarial, x, new CertificationOptions { Eps = o.Eps, Norm = Bounds.PerturbationNorm.L2, ClipLow = o.ClipLow, ClipHigh = o.ClipHigh });
        }
        finally
        {
            foreach (var t in frozen) t.RequiresGrad = true;
        }
        for (int k = 0; k < idx.Length; k++)
        {
            var p = smoothed.Certify(adversarial.NarrowRows(k, 1), o.N0, o.N, o.Alpha, o.BatchSize, new Generator(Mix(o.Seed, idx[k], 3)));
            attacked[idx[k]] = p.Class;
        }
    }

    // A per-example, per-purpose seed (splitmix64 finaliser): independent streams whatever the batching.
    private static ulong Mix(ulong seed, int index, int purpose)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (ulong)(index + 1) + 0xD1B54A32D192ED03UL * (ulong)(purpose + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
