using Engine.Autograd;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Certify;

/// <summary>One prediction of the smoothed classifier: the class (−1: abstain), its count, the lower bound pA and the certified radius.</summary>
/// <param name="Class">The top class chosen by the selection samples, or −1 when the smoothed classifier abstains.</param>
/// <param name="Count">How many of the n estimation samples the base classifier gave that class.</param>
/// <param name="PALower">Clopper–Pearson lower confidence bound on the class's probability under noise.</param>
/// <param name="Radius">Certified L2 radius σ·Φ⁻¹(pA) (NaN when abstaining).</param>
public readonly record struct SmoothedPrediction(int Class, long Count, double PALower, double Radius)
{
    /// <summary>True when the smoothed classifier abstained (pA &lt; ½).</summary>
    public bool Abstained => Class < 0;
}

/// <summary>
/// Randomized smoothing (Cohen, Rosenfeld and Kolter 2019): g(x) = argmax_c P(f(x + δ) = c), δ ~ N(0, σ²I), for a base
/// classifier f. <see cref="Certify"/> is their CERTIFY: n0 noise samples choose the top class ĉ, n fresh samples
/// count how often f returns ĉ, pA is the one-sided Clopper–Pearson lower bound of that proportion at confidence
/// 1 − alpha; the classifier abstains when pA &lt; ½, and otherwise g is constant, with probability at least 1 − alpha
/// over the sampling, on the L2 ball of radius σ·Φ⁻¹(pA) around x.
/// </summary>
public sealed class SmoothedClassifier
{
    private readonly ComputeGraph _graph;

    /// <summary>Smooths <paramref name="baseClassifier"/> (one input, logits out) with noise of standard deviation <paramref name="sigma"/>.</summary>
    public SmoothedClassifier(ComputeGraph baseClassifier, float sigma)
    {
        ArgumentNullException.ThrowIfNull(baseClassifier);
        if (!(sigma > 0) || float.IsInfinity(sigma)) throw new ArgumentException($"SmoothedClassifier: sigma must be finite and > 0, got {sigma}.");
        _graph = baseClassifier;
        Sigma = sigma;
    }

    /// <summary>Smooths a module's graph.</summary>
    public SmoothedClassifier(Module baseClassifier, float sigma) : this((baseClassifier ?? throw new ArgumentNullException(nameof(baseClassifier))).Graph, sigma) { }

    /// <summary>The noise standard deviation.</summary>
    public float Sigma { get; }

    /// <summary>The base classifier.</summary>
    public ComputeGraph BaseClassifier => _graph;

    /// <summary>
    /// How often the base classifier returns each class on <paramref name="samples"/> noisy copies of the single
    /// example <paramref name="x"/> ([1, ...] or unbatched), evaluated <paramref name="batchSize"/> copies at a time.
    /// </summary>
    public long[] Counts(Tensor x, int samples, int batchSize, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(generator);
        if (samples < 0) throw new ArgumentException($"SmoothedClassifier.Counts: samples must be >= 0, got {samples}.");
        if (batchSize < 1) throw new ArgumentException($"SmoothedClassifier.Counts: batchSize must be >= 1, got {batchSize}.");
        var one = x.Rank >= 1 && x.Dims[0] == 1 ? x : x.Unsqueeze(0);
        long[]? counts = null;
        using (new NoGrad())
            for (int done = 0; done < samples;)
            {
                int m = Math.Min(batchSize, samples - done);
                int[] shape = [m, .. one.Dims.AsSpan(1)];
                var noisy = one + Tensor.Normal(shape, 0f, Sigma, generator, one.Device);
                var logits = Executor.Forward(_graph, noisy);
                if (logits.Rank != 2 || logits.Dims[0] != m || logits.Dims[1] < 2)
                    throw new ArgumentException($"SmoothedClassifier: the base classifier must return logits [{m}, C] with C >= 2, got {ShapeUtil.Format(logits.Dims)}.");
                counts ??= new long[logits.Dims[1]];
                foreach (var c in logits.ArgMax(1).ToArray()) counts[(int)c]++;
                done += m;
            }
        return counts ?? [];
    }

    /// <summary>Cohen et al.'s CERTIFY for one example (see the class summary).</summary>
    /// <param name="x">The example, [1, ...] or unbatched.</param>
    /// <param name="n0">Selection samples (≥ 1).</param>
    /// <param name="n">Estimation samples (≥ 1).</param>
    /// <param name="alpha">Failure probability in (0, 1).</param>
    /// <param name="batchSize">Noisy copies per forward pass.</param>
    /// <param name="generator">Noise source.</param>
    public SmoothedPrediction Certify(Tensor x, int n0, int n, double alpha, int batchSize, Generator generator)
    {
        if (n0 < 1) throw new ArgumentException($"SmoothedClassifier.Certify: n0 must be >= 1, got {n0}.");
        if (n < 1) throw new ArgumentException($"SmoothedClassifier.Certify: n must be >= 1, got {n}.");
        if (!(alpha > 0 && alpha < 1)) throw new ArgumentException($"SmoothedClassifier.Certify: alpha must be in (0, 1), got {alpha}.");
        var selection = Counts(x, n0, batchSize, generator);
        int top = 0;
        for (int c = 1; c < selection.Length; c++) if (selection[c] > selection[top]) top = c;
        var estimate = Counts(x, n, batchSize, generator);
        return Decide(top, estimate[top], n, alpha, Sigma);
    }

    /// <summary>
    /// The decision of CERTIFY from the counts: pA = ClopperPearsonLower(count, n, alpha); abstain (class −1) when
    /// pA &lt; ½, else the class with radius σ·Φ⁻¹(pA).
    /// </summary>
    public static SmoothedPrediction Decide(int topClass, long count, long n, double alpha, double sigma)
    {
        double pA = SmoothingStatistics.ClopperPearsonLower(count, n, alpha);
        return SmoothingStatistics.CertifiedRadius(pA, sigma) is double r
            ? new SmoothedPrediction(topClass, count, pA, r)
            : new SmoothedPrediction(-1, count, pA, double.NaN);
    }

    /// <summary>
    /// The soft smoothed classifier's log-probabilities, log E_δ[softmax f(x + δ)], estimated with
    /// <paramref name="samples"/> noise draws per example of the batch <paramref name="x"/> [B, ...]; differentiable in
    /// x (the attack of Salman et al. 2019 ascends its cross-entropy).
    /// </summary>
    public Tensor SoftLogProbabilities(Tensor x, int samples, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(generator);
        if (samples < 1) throw new ArgumentException($"SmoothedClassifier.SoftLogProbabilities: samples must be >= 1, got {samples}.");
        int b = x.Dims[0];
        int[] expanded = [b, samples, .. x.Dims.AsSpan(1)];
        int[] flat = [b * samples, .. x.Dims.AsSpan(1)];
        var copies = x.Unsqueeze(1).Expand(expanded).Reshape(flat);
        var noisy = copies + Tensor.Normal(flat, 0f, Sigma, generator, x.Device);
        var logits = Executor.Forward(_graph, noisy);
        int classes = logits.Dims[^1];
        var probs = logits.Softmax(1).Reshape(b, samples, classes).Mean(1);
        // A class no draw gives any mass would be log 0; the floor keeps the gradient finite.
        return (probs + 1e-30f).Log();
    }
}
