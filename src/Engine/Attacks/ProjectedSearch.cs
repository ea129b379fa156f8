using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Attacks;

// The projected-gradient loop shared by every PGD entry point: restarts × steps of descent on a per-sample
// objective, keeping per sample the iterate with the lowest score over all steps and restarts. The score
// (what "best" means, e.g. the margin) may differ from the objective that supplies the gradient (e.g. the
// cross-entropy), as in Madry et al.'s PGD evaluated by accuracy.
internal static class ProjectedSearch
{
    public readonly record struct Result(Tensor Point, Tensor Output, float[] Score);

    /// <param name="model">The function attacked.</param>
    /// <param name="set">Where the iterates live.</param>
    /// <param name="objective">Model output → [N] values whose sum is descended.</param>
    /// <param name="score">Model output → [N] values; the lowest per sample is kept. Runs without grad.</param>
    /// <param name="steps">Gradient steps per restart (the score is taken at steps + 1 iterates).</param>
    /// <param name="restarts">Runs; the generator is shared, so run r is the same whatever the total.</param>
    /// <param name="randomStart">False: run 0 starts at the set's start point.</param>
    /// <param name="seed">Seed of the random starts.</param>
    /// <param name="earlyStop">Return once every sample's best score is negative.</param>
    public static Result Run(AttackModel model, InputSet set, Func<Tensor, Tensor> objective, Func<Tensor, Tensor> score,
                             int steps, int restarts, bool randomStart, ulong seed, bool earlyStop)
    {
        var generator = new Generator(seed);
        int n = set.Start.Dims[0];
        Tensor? bestScore = null, bestPoint = null, bestOutput = null;
        using var _ = model.FreezeParameters();
        for (int r = 0; r < restarts; r++)
        {
            Tensor x;
            using (new NoGrad()) x = r == 0 && !randomStart ? set.Start : set.Random(generator);
            for (int s = 0; ; s++)
            {
                var xg = x.Detach().RequiresGrad_();
                var output = model.Forward(xg);
                if (output.Rank < 1 || output.Dims[0] != n)
                    throw new ArgumentException($"The model returned {ShapeUtil.Format(output.Dims)} for a batch of {n}; it must keep the batch dimension first.");
                using (new NoGrad())
                {
                    var detached = output.Detach();
                    var sc = score(detached);
                    if (bestScore == null) { bestScore = sc; bestPoint = x; bestOutput = detached; }
                    else
                    {
                        // NaN scores never replace a finite best (the comparison is false).
                        var better = Tensor.Lt(sc, bestScore);
                        bestScore = Tensor.Where(better, sc, bestScore);
                        bestPoint = Tensor.Where(InputSet.PerSample(better, x), x, bestPoint!);
                        bestOutput = Tensor.Where(InputSet.PerSample(better, detached), detached, bestOutput!);
                    }
                }
                if (s == steps) break;
                if (earlyStop && bestScore.Max().Item() < 0) return Finish();

                var obj = objective(output);
                Tensor grad;
                if (obj.RequiresGrad)
                {
                    obj.Sum().Backward();
                    grad = xg.Grad ?? Tensor.ZerosLike(x);
                }
                else grad = Tensor.ZerosLike(x); // the objective does not depend on the input: nothing to follow
                using (new NoGrad()) x = set.Project(set.Step(x, grad));
            }
        }
        return Finish();

        Result Finish() => new(bestPoint!, bestOutput!, bestScore!.ToArray());
    }
    /// <summary>
    /// <paramref name="steps"/> descent steps of one run from a random start (or the set's start point), returning the
    /// last iterate, detached; the iterates are not scored.
    /// </summary>
    public static Tensor LastIterate(AttackModel model, InputSet set, Func<Tensor, Tensor> objective, int steps, bool randomStart, ulong seed)
    {
        int n = set.Start.Dims[0];
        Tensor x;
        using (new NoGrad()) x = randomStart ? set.Random(new Generator(seed)) : set.Start;
        using var _ = model.FreezeParameters();
        for (int s = 0; s < steps; s++)
        {
            var xg = x.Detach().RequiresGrad_();
            var output = model.Forward(xg);
            if (output.Rank < 1 || output.Dims[0] != n)
                throw new ArgumentException($"The model returned {ShapeUtil.Format(output.Dims)} for a batch of {n}; it must keep the batch dimension first.");
            var obj = objective(output);
            Tensor grad;
            if (obj.RequiresGrad)
            {
                obj.Sum().Backward();
                grad = xg.Grad ?? Tensor.ZerosLike(x);
            }
            else grad = Tensor.ZerosLike(x);
            using (new NoGrad()) x = set.Project(set.Step(x, grad));
        }
        return x.Detach();
    }
}
