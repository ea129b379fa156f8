using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Attacks;

/// <summary>
/// Projected gradient descent (Madry et al. 2018): iterated gradient steps projected back onto the input set,
/// with random restarts; per sample the most violating iterate over all steps and restarts is returned.
/// Runs the model in evaluation mode and is reproducible for a given seed.
/// </summary>
public static class Pgd
{
    /// <summary>
    /// Untargeted attack on a classifier within an LInf or L2 ball of radius Eps around <paramref name="x"/>,
    /// clipped to [ClipLow, ClipHigh]. Ascends the chosen loss; keeps per sample the iterate with the lowest margin.
    /// </summary>
    /// <param name="model">Maps a batch [N, ...] to logits [N, C].</param>
    /// <param name="x">Clean inputs [N, ...], inside the domain.</param>
    /// <param name="labels">True classes [N] (integers stored as floats).</param>
    /// <param name="options">Settings; null uses the defaults of <see cref="PgdOptions"/>.</param>
    public static AttackResult Attack(AttackModel model, Tensor x, Tensor labels, PgdOptions? options = null)
    {
        var (set, objective, margin, o) = Prepare("Pgd.Attack", model, x, labels, options);
        var r = ProjectedSearch.Run(model, set, objective, margin, o.Steps, o.Restarts, o.RandomStart, o.Seed, o.EarlyStop);
        return new AttackResult(r.Point, r.Score);
    }

    /// <summary>
    /// The point adversarial training uses (Madry et al.): <see cref="PgdOptions.Steps"/> steps of one restart that
    /// ascend the options' loss, returning the last iterate (detached). Unlike <see cref="Attack"/> the iterates are
    /// not scored, which saves a forward pass per step; restarts and early stopping do not apply.
    /// </summary>
    /// <param name="model">Maps a batch [N, ...] to logits [N, C].</param>
    /// <param name="x">Clean inputs [N, ...], inside the domain.</param>
    /// <param name="labels">True classes [N] (integers stored as floats).</param>
    /// <param name="options">Settings; null uses the defaults of <see cref="PgdOptions"/>.</param>
    public static Tensor TrainingPoint(AttackModel model, Tensor x, Tensor labels, PgdOptions? options = null)
    {
        var (set, objective, _, o) = Prepare("Pgd.TrainingPoint", model, x, labels, options);
        return ProjectedSearch.LastIterate(model, set, objective, o.Steps, o.RandomStart, o.Seed);
    }

    /// <summary>The checked settings, the ball, the loss to descend and the margin (the score) of a classifier attack.</summary>
    private static (InputSet Set, Func<Tensor, Tensor> Objective, Func<Tensor, Tensor> Margin, PgdOptions Options) Prepare(
        string op, AttackModel model, Tensor x, Tensor labels, PgdOptions? options)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new PgdOptions();
        options.Validate(op);
        Checks.Batch(op, x);
        Checks.Labels(op, x, labels);
        var set = Ball(op, x, options);
        Tensor? oneHot = null;
        Tensor OneHot(Tensor logits) => oneHot ??= Checks.LogitsAndLabels(op, logits, labels);
        Func<Tensor, Tensor> margin = logits => Objectives.Margin(logits, OneHot(logits));
        Func<Tensor, Tensor> objective = options.Loss == AttackLoss.Margin ? margin : logits => Objectives.LogProbTrue(logits, OneHot(logits));
        return (set, objective, margin, options);
    }

    /// <summary>
    /// Searches the box [<paramref name="lower"/>, <paramref name="upper"/>] for points violating C·f(x) ≤ d: minimises
    /// min_k (d − C·f(x))_k per sample, negative meaning a counterexample.
    /// </summary>
    /// <param name="model">Maps a batch [N, ...] to outputs [N, ...] (flattened to [N, O] for the spec).</param>
    /// <param name="lower">Lower corner [N, ...] (N boxes searched at once).</param>
    /// <param name="upper">Upper corner, same shape, ≥ lower.</param>
    /// <param name="c">Spec rows [K, O], or [N, K, O] for one spec per sample.</param>
    /// <param name="d">Thresholds [K] or [N, K].</param>
    /// <param name="options">Settings; null uses the defaults of <see cref="BoxSearchOptions"/>.</param>
    public static SearchResult MinimizeSpec(AttackModel model, Tensor lower, Tensor upper, Tensor c, Tensor d, BoxSearchOptions? options = null)
    {
        Checks.Box("Pgd.MinimizeSpec", lower, upper);
        Objectives.CheckSpec("Pgd.MinimizeSpec", c, d, lower);
        return Minimize(model, lower, upper, Objectives.Spec(c, d), options);
    }

    /// <summary>
    /// Searches the ε-ball of <paramref name="options"/> around <paramref name="x"/> (clipped to the domain) for
    /// points violating C·f(x) ≤ d; see the box overload for the objective.
    /// </summary>
    /// <param name="model">Maps a batch [N, ...] to outputs [N, ...].</param>
    /// <param name="x">Centres [N, ...], inside the domain.</param>
    /// <param name="c">Spec rows [K, O] or [N, K, O].</param>
    /// <param name="d">Thresholds [K] or [N, K].</param>
    /// <param name="options">Norm, radius, domain and search settings (Loss is not used).</param>
    public static SearchResult MinimizeSpec(AttackModel model, Tensor x, Tensor c, Tensor d, PgdOptions options)
    {
        Checks.Batch("Pgd.MinimizeSpec", x);
        Objectives.CheckSpec("Pgd.MinimizeSpec", c, d, x);
        return Minimize(model, x, Objectives.Spec(c, d), options);
    }

    /// <summary>
    /// Minimises an arbitrary per-sample objective of the model output over the box [lower, upper]; e.g. for a
    /// VNNLIB disjunction of conjunctions, min over disjuncts of max over their rows of (A·y − b).
    /// </summary>
    /// <param name="model">Maps a batch [N, ...] to outputs.</param>
    /// <param name="lower">Lower corner [N, ...].</param>
    /// <param name="upper">Upper corner, same shape, ≥ lower.</param>
    /// <param name="objective">Model output → [N] differentiable values to minimise; negative counts as violated.</param>
    /// <param name="options">Settings; null uses the defaults of <see cref="BoxSearchOptions"/>.</param>
    public static SearchResult Minimize(AttackModel model, Tensor lower, Tensor upper, Func<Tensor, Tensor> objective, BoxSearchOptions? options = null)
    {
        const string op = "Pgd.Minimize";
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(objective);
        options ??= new BoxSearchOptions();
        options.Validate(op);
        Checks.Box(op, lower, upper);
        float rel = options.RelativeStepSize ?? 2.5f / options.Steps;
        InputSet set;
        using (new NoGrad())
        {
            var lo = lower.Detach();
            var hi = upper.Detach();
            var centre = Tensor.Minimum(Tensor.Maximum((lo + hi) * 0.5f, lo), hi);
            set = new BoxSet(lo, hi, centre, (hi - lo) * (0.5f * rel));
        }
        return Search(op, model, set, objective, options.Steps, options.Restarts, options.RandomStart, options.Seed, options.EarlyStop);
    }

    /// <summary>Minimises an arbitrary per-sample objective of the model output over the ε-ball of <paramref name="options"/>.</summary>
    /// <param name="model">Maps a batch [N, ...] to outputs.</param>
    /// <param name="x">Centres [N, ...], inside the domain.</param>
    /// <param name="objective">Model output → [N] differentiable values to minimise; negative counts as violated.</param>
    /// <param name="options">Norm, radius, domain and search settings (Loss is not used).</param>
    public static SearchResult Minimize(AttackModel model, Tensor x, Func<Tensor, Tensor> objective, PgdOptions options)
    {
        const string op = "Pgd.Minimize";
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(objective);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(op);
        Checks.Batch(op, x);
        var set = Ball(op, x, options);
        return Search(op, model, set, objective, options.Steps, options.Restarts, options.RandomStart, options.Seed, options.EarlyStop);
    }

    private static SearchResult Search(string op, AttackModel model, InputSet set, Func<Tensor, Tensor> objective,
                                       int steps, int restarts, bool randomStart, ulong seed, bool earlyStop)
    {
        int n = set.Start.Dims[0];
        Tensor Checked(Tensor output)
        {
            var v = objective(output);
            if (v == null || v.Rank != 1 || v.Dims[0] != n)
                throw new ArgumentException($"{op}: the objective must return one value per sample [{n}], got {(v == null ? "null" : ShapeUtil.Format(v.Dims))}.");
            return v;
        }
        var r = ProjectedSearch.Run(model, set, Checked, Checked, steps, restarts, randomStart, seed, earlyStop);
        return new SearchResult(r.Point, r.Output, r.Score);
    }

    /// <summary>The options' ball around x, clipped to the domain: an exact box for LInf.</summary>
    internal static InputSet Ball(string op, Tensor x, PgdOptions o)
    {
        Checks.Domain(op, x, o.ClipLow, o.ClipHigh);
        float step = o.StepSize ?? 2.5f * o.Eps / o.Steps;
        using var _ = new NoGrad();
        var centre = x.Detach();
        if (o.Norm == Norm.L2) return new L2BallSet(centre, o.Eps, o.ClipLow, o.ClipHigh, step);
        var lo = (centre - o.Eps).Clamp(o.ClipLow, o.ClipHigh);
        var hi = (centre + o.Eps).Clamp(o.ClipLow, o.ClipHigh);
        return new BoxSet(lo, hi, centre, Tensor.Scalar(step, x.Device));
    }
}
