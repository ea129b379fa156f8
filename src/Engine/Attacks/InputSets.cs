using Engine.Tensors;

namespace Engine.Attacks;

// The sets an attack searches: an axis-aligned box (a VNNLIB property, or an LInf ball already clipped to the
// domain) and an L2 ball clipped to the domain. Each knows its start point, its descent step, its projection
// and how to draw a random member; all batched over the leading dimension and written with tensor ops.
internal abstract class InputSet
{
    /// <summary>The clean input (ball) or the box centre.</summary>
    public abstract Tensor Start { get; }

    /// <summary>One descent step on an objective with gradient <paramref name="grad"/> (not yet projected).</summary>
    public abstract Tensor Step(Tensor x, Tensor grad);

    /// <summary>A point of the set near <paramref name="x"/> (the nearest one for the box).</summary>
    public abstract Tensor Project(Tensor x);

    /// <summary>A random member of the set.</summary>
    public abstract Tensor Random(Generator generator);

    /// <summary>[N] → [N, 1, ..., 1] matching <paramref name="like"/>'s rank, for per-sample scaling.</summary>
    public static Tensor PerSample(Tensor v, Tensor like)
    {
        var shape = new int[like.Rank];
        Array.Fill(shape, 1);
        shape[0] = like.Dims[0];
        return v.Reshape(shape);
    }

    /// <summary>Per-sample L2 norm as [N, 1, ..., 1].</summary>
    public static Tensor Norms(Tensor t)
    {
        int n = t.Dims[0];
        return PerSample(t.Reshape(n, -1).Square().Sum(1).Sqrt(), t);
    }
}

internal sealed class BoxSet : InputSet
{
    private readonly Tensor _lower, _upper, _step;

    /// <param name="lower">Lower corner, shape of the batch.</param>
    /// <param name="upper">Upper corner, same shape, ≥ lower.</param>
    /// <param name="start">Where a non-random restart begins (inside the box).</param>
    /// <param name="step">Sign-step length, broadcastable to the batch (a scalar or one per element).</param>
    public BoxSet(Tensor lower, Tensor upper, Tensor start, Tensor step)
    {
        _lower = lower; _upper = upper; Start = start; _step = step;
    }

    public override Tensor Start { get; }

    public override Tensor Step(Tensor x, Tensor grad) => x - _step * grad.Sign();

    public override Tensor Project(Tensor x) => Tensor.Minimum(Tensor.Maximum(x, _lower), _upper);

    public override Tensor Random(Generator generator)
    {
        var u = Tensor.Uniform(_lower.Shape, 0f, 1f, generator, _lower.Device);
        // lower + u·width can round past upper; the projection brings it back.
        return Project(_lower + u * (_upper - _lower));
    }
}

internal sealed class L2BallSet(Tensor center, float eps, float clipLow, float clipHigh, float step) : InputSet
{
    // Guards the divisions by a norm: a zero gradient or a zero perturbation stays zero instead of NaN.
    private const float Tiny = 1e-12f;

    public override Tensor Start => center;

    public override Tensor Step(Tensor x, Tensor grad)
        => x - grad * (step / Tensor.Maximum(Norms(grad), Tensor.Scalar(Tiny, grad.Device)));

    public override Tensor Project(Tensor x)
    {
        var delta = x - center;
        var scale = Tensor.Minimum(Tensor.Scalar(1f, x.Device),
                                   eps / Tensor.Maximum(Norms(delta), Tensor.Scalar(Tiny, x.Device)));
        // Clamping each coordinate towards the domain moves it towards the centre (which lies in the domain),
        // so the clipped point stays in the ball.
        return (center + delta * scale).Clamp(clipLow, clipHigh);
    }

    public override Tensor Random(Generator generator)
    {
        int n = center.Dims[0];
        var dir = Tensor.Normal(center.Shape, 0f, 1f, generator, center.Device);
        var radius = PerSample(Tensor.Uniform([n], 0f, eps, generator, center.Device), center);
        return Project(center + dir * (radius / Tensor.Maximum(Norms(dir), Tensor.Scalar(Tiny, center.Device))));
    }
}
