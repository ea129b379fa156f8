using Engine.Autograd;

namespace Engine.Tensors;

// Softmax, log-softmax and one-hot encoding.
public sealed partial class Tensor
{
    /// <summary>Softmax along <paramref name="axis"/>, max-subtracted (no overflow for large inputs).</summary>
    public Tensor Softmax(int axis) => SoftmaxCore(axis, log: false, "Softmax");

    /// <summary>log(softmax(x)) along <paramref name="axis"/>, computed as x - max - log Σ e^(x-max) (finite for any finite input).</summary>
    public Tensor LogSoftmax(int axis) => SoftmaxCore(axis, log: true, "LogSoftmax");

    private Tensor SoftmaxCore(int axis, bool log, string name)
    {
        int ax = AxisUtil.Check(Dims, axis, name);
        var (outer, size, inner) = AxisUtil.OuterSizeInner(Dims, ax, ax);
        var r = NewEmpty(Dims);
        K.Softmax(Buf, r.Buf, outer, size, inner, log);
        if (!GradRecorder.ShouldRecord(this)) return r;
        var y = r.Detach();
        return GradRecorder.Record(r, this, (g, x) =>
        {
            var dx = x.NewEmpty(x.Dims);
            x.K.SoftmaxBackward(y.Buf, g.Buf, dx.Buf, outer, size, inner, log);
            return [dx];
        }, name);
    }

    /// <summary>
    /// One-hot encoding: shape labels.Shape + [numClasses], 1 at each label's class. Labels hold integer class
    /// indices as floats; anything else (negative, fractional, ≥ numClasses, NaN) is an ArgumentException.
    /// </summary>
    public static Tensor OneHot(Tensor labels, int numClasses)
    {
        if (numClasses <= 0) throw new ArgumentException($"OneHot: numClasses must be positive, not {numClasses}.");
        var shape = new int[labels.Rank + 1];
        labels.Dims.CopyTo(shape, 0);
        shape[^1] = numClasses;
        var r = labels.NewEmpty(shape);
        labels.K.OneHot(labels.Buf, r.Buf, labels.Numel, numClasses);
        return r;
    }
}
