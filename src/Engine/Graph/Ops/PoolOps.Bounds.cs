using Engine.Bounds;
using Engine.Tensors;

namespace Engine.Graph;

public sealed partial class AvgPool2dOp
{
    /// <inheritdoc/>
    public override bool IsAffineForBounds => true;

    /// <summary>Average pooling has non-negative weights, so it maps the lower and upper bounds separately.</summary>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
    {
        var x = inputs[0];
        Tensor F(Tensor t) => Tensor.AvgPool2d(t, Kernel, Stride, Padding, CountIncludePad);
        if (x.IsConstant) return Interval.Constant(F(x.Lower));
        // A mean of n terms rounds like any short sum; widen by the relative margin.
        var l = F(x.Lower); var u = F(x.Upper);
        float rho = options.RoundingRelative;
        return new Interval(l - l.Abs() * rho - options.RoundingAbsolute, u + u.Abs() * rho + options.RoundingAbsolute);
    }

    /// <inheritdoc/>
    public override void BoundBackward(BackwardStep step)
    {
        var s = step.Inputs[0].Shape; // [B, C, H, W]
        var a = step.A;               // [B, R, C, OutH, OutW]
        var geo = new Pool2dGeometry(step.Batch * step.Rows * s[1], s[2], s[3], Kernel.H, Kernel.W, Stride.H, Stride.W, Padding.H, Padding.W);
        var back = LinearAdjoints.AvgPoolTranspose(a.Reshape(geo.Planes, geo.OutH, geo.OutW), geo, CountIncludePad);
        step.SetInput(0, back.Reshape(step.Batch, step.Rows, s[1], s[2], s[3]));
    }
}

public sealed partial class MaxPool2dOp
{
    /// <inheritdoc/>
    public override bool NeedsInputBounds => true;

    /// <summary>Max is monotone in every argument, so it maps the lower and upper bounds separately (exactly).</summary>
    public override Interval IntervalForward(Interval[] inputs, BoundOptions options)
        => inputs[0].MapMonotone(t => Tensor.MaxPool2d(t, Kernel, Stride, Padding));

    /// <summary>
    /// Relaxation (a simple sound choice, DeepPoly-like without the "decided window" case): in each window let j* be
    /// the element with the largest lower bound; then x[j*] ≤ y (y is the max of the window) and y ≤ max of the
    /// window's upper bounds (a constant). Positive coefficients take the lower line through j*, negative ones the
    /// constant upper bound.
    /// </summary>
    public override void BoundBackward(BackwardStep step)
    {
        var input = step.Inputs[0];
        var s = input.Shape; // [B, C, H, W]
        int b = step.Batch, r = step.Rows, c = s[1];
        var geoOne = new Pool2dGeometry(b * c, s[2], s[3], Kernel.H, Kernel.W, Stride.H, Stride.W, Padding.H, Padding.W);
        var idx = LinearAdjoints.ArgMaxWindows(input.Lower.Detach().Reshape(b * c, s[2], s[3]), geoOne);
        var uMax = Tensor.MaxPool2d(input.Upper, Kernel, Stride, Padding); // [B, C, OutH, OutW]
        var a = step.A;
        var pos = a.Relu();
        var neg = a - pos;
        var idxRows = idx.Reshape(b, 1, c, geoOne.OutH, geoOne.OutW).Expand(b, r, c, geoOne.OutH, geoOne.OutW);
        var geo = new Pool2dGeometry(b * r * c, s[2], s[3], Kernel.H, Kernel.W, Stride.H, Stride.W, Padding.H, Padding.W);
        var back = LinearAdjoints.Scatter(pos.Reshape(geo.Planes, geo.OutH, geo.OutW), idxRows.Reshape(geo.Planes, geo.OutH, geo.OutW), geo);
        step.SetInput(0, back.Reshape(b, r, c, s[2], s[3]));
        step.AddDot(neg, BackwardStep.PerRow(uMax));
    }
}
