using Engine.Autograd;
using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class ReluOp
{
    /// <inheritdoc/>
    public override bool NeedsInputBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options) =>
        inputs[0].IsConstant ? inputs[0].MapMonotone(t => t.Relu()) : IbpFused.Relu(inputs[0], options.RoundingRelative, throughCombine: options.IbpOnly);

    /// <inheritdoc/>
    public override Tensor? BoundSensitiveMask(Interval input) => Tensor.Lt(input.Lower, 0f) * Tensor.Gt(input.Upper, 0f);

    /// <inheritdoc/>
    internal override int[]? BoundOutputShape(Interval[] inputs) => inputs[0].Shape;

    /// <summary>CROWN's adaptive lower slope: 1 when u ≥ −l, else 0 (stable neurons: their exact slope).</summary>
    public override Tensor? InitialAlpha(Interval input)
    {
        var l = input.Lower.Detach(); var u = input.Upper.Detach();
        return Tensor.Where(Tensor.Ge(l, 0f), 1f, Tensor.Where(Tensor.Le(u, 0f), 0f, Tensor.Ge(u, -l)));
    }

    /// <summary>Upper line: the chord u/(u−l)·(x − l); lower line: slope alpha (default adaptive 0/1) through 0.</summary>
    public override void BoundBackward(BackwardStep step)
    {
        var input = step.Inputs[0];
        var (l, u) = (input.Lower, input.Upper);
        // The three tensors below from one kernel (same numbers; with one backward kernel where a gradient flows into
        // the bounds), kept on the interval for the next pass over it (alpha-CROWN's 21 passes; CROWN's refinements
        // and final pass).
        if ((input.ReluRelaxation ?? FusedBounds.ReluRelaxation(l, u)) is { } fused)
        {
            input.ReluRelaxation = fused;
            if (step.Alpha is not { } a)
            {
                step.Relax(fused.LowSlope, null, fused.UpSlope, fused.UpBias);
                return;
            }
            // alpha-CROWN: the optimised slope where the neuron is unstable, the exact one (the upper slope) elsewhere.
            fused.Unstable ??= Tensor.Lt(l, 0f) * Tensor.Gt(u, 0f);
            step.Relax(Tensor.Where(BackwardStep.PerRow(fused.Unstable), a, BackwardStep.PerRow(fused.UpSlope)), null, fused.UpSlope, fused.UpBias);
            return;
        }
        var unstable = Tensor.Lt(l, 0f) * Tensor.Gt(u, 0f);
        var active = Tensor.Ge(l, 0f);
        var aU = Tensor.Where(unstable, u / Tensor.Where(unstable, u - l, 1f), active);
        var bU = Tensor.Where(unstable, -aU * l, 0f);
        var aL = step.Alpha is { } alpha
            ? Tensor.Where(BackwardStep.PerRow(unstable), alpha, BackwardStep.PerRow(active))
            : Tensor.Where(unstable, Tensor.Ge(u, -l), active);
        step.Relax(aL, null, aU, bU);
    }
}

public sealed partial class LeakyReluOp
{
    /// <inheritdoc/>
    public override bool NeedsInputBounds => true;

    /// <inheritdoc/>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        CheckSlope();
        return inputs[0].MapMonotone(t => t.LeakyRelu(NegativeSlope));
    }

    /// <inheritdoc/>
    public override Tensor? BoundSensitiveMask(Interval input) => Tensor.Lt(input.Lower, 0f) * Tensor.Gt(input.Upper, 0f);

    /// <summary>
    /// For 0 ≤ slope ≤ 1 the function is convex: upper line = the chord through (l, slope·l) and (u, u); lower line =
    /// a line through 0 with slope 1 (u ≥ −l) or the negative slope (otherwise), both below a convex function
    /// that they touch at 0.
    /// </summary>
    public override void BoundBackward(BackwardStep step)
    {
        CheckSlope();
        float s = NegativeSlope;
        var (l, u) = (step.Inputs[0].Lower, step.Inputs[0].Upper);
        var unstable = Tensor.Lt(l, 0f) * Tensor.Gt(u, 0f);
        var stableSlope = Tensor.Where(Tensor.Ge(l, 0f), 1f, Tensor.Full([], s, l.Device));
        var k = (u - l * s) / Tensor.Where(unstable, u - l, 1f);
        var aU = Tensor.Where(unstable, k, stableSlope);
        var bU = Tensor.Where(unstable, l * (s - k), 0f);
        var aL = Tensor.Where(unstable, Tensor.Ge(u, -l) * (1f - s) + s, stableSlope);
        step.Relax(aL, null, aU, bU);
    }

    private void CheckSlope()
    {
        if (!(NegativeSlope >= 0 && NegativeSlope <= 1))
            throw new NotSupportedException($"LeakyRelu: bounds support negative slopes in [0, 1], got {NegativeSlope}.");
    }
}

public sealed partial class SigmoidOp
{
    /// <inheritdoc/>
    public override bool NeedsInputBounds => true;

    /// <summary>Monotone: [f(l), f(u)], widened by a few ulps for the kernel's rounding.</summary>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
        => inputs[0].IsConstant ? Interval.Constant(inputs[0].Lower.Sigmoid())
         : new Interval(inputs[0].Lower.Sigmoid() - SShapeRelaxation.Slack, inputs[0].Upper.Sigmoid() + SShapeRelaxation.Slack);

    /// <summary>Tangent / chord relaxation (see SShapeRelaxation).</summary>
    public override void BoundBackward(BackwardStep step)
    {
        var (aL, bL, aU, bU) = SShapeRelaxation.Relax(SShapeRelaxation.Sigmoid, step.Inputs[0].Lower, step.Inputs[0].Upper);
        step.Relax(aL, bL, aU, bU);
    }
}

public sealed partial class TanhOp
{
    /// <inheritdoc/>
    public override bool NeedsInputBounds => true;

    /// <summary>Monotone: [f(l), f(u)], widened by a few ulps for the kernel's rounding.</summary>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
        => inputs[0].IsConstant ? Interval.Constant(inputs[0].Lower.Tanh())
         : new Interval(inputs[0].Lower.Tanh() - SShapeRelaxation.Slack, inputs[0].Upper.Tanh() + SShapeRelaxation.Slack);

    /// <summary>Tangent / chord relaxation (see SShapeRelaxation).</summary>
    public override void BoundBackward(BackwardStep step)
    {
        var (aL, bL, aU, bU) = SShapeRelaxation.Relax(SShapeRelaxation.Tanh, step.Inputs[0].Lower, step.Inputs[0].Upper);
        step.Relax(aL, bL, aU, bU);
    }
}
