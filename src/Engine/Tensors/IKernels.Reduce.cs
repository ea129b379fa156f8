namespace Engine.Tensors;

/// <summary>Reductions of <see cref="IKernels.Reduce"/>.</summary>
public enum ReduceOp
{
    /// <summary>Sum (0 over an empty range).</summary>
    Sum,
    /// <summary>Arithmetic mean (NaN over an empty range).</summary>
    Mean,
    /// <summary>Maximum; NaN if any element is NaN (-infinity over an empty range).</summary>
    Max,
    /// <summary>Minimum; NaN if any element is NaN (+infinity over an empty range).</summary>
    Min,
    /// <summary>log Σ e^x, computed as m + log Σ e^(x-m) with m the maximum (-infinity over an empty range).</summary>
    LogSumExp,
}

// Every kernel here views x as a contiguous [outer, size, inner] array and works along the middle axis:
// the reduced axis (or a run of adjacent reduced axes merged into one) has length size, everything before it
// is outer and everything after it is inner.
public partial interface IKernels
{
    /// <summary>y[o, i] = op over s of x[o, s, i]; y is [outer, inner].</summary>
    void Reduce(ReduceOp op, Buf x, Buf y, int outer, int size, int inner);

    /// <summary>
    /// y[o, i] = the first s where x[o, s, i] is largest, as a float; a NaN counts as larger than everything
    /// (the first NaN wins, like torch.argmax). size must be at least 1.
    /// </summary>
    void ArgMax(Buf x, Buf y, int outer, int size, int inner);

    /// <summary>y[o, i] = the first s where x[o, s, i] is smallest (the first NaN wins). size must be at least 1.</summary>
    void ArgMin(Buf x, Buf y, int outer, int size, int inner);

    /// <summary>
    /// Softmax along the middle axis, max-subtracted: y = e^(x-m) / Σ e^(x-m); with <paramref name="log"/>,
    /// y = x - m - log Σ e^(x-m).
    /// </summary>
    void Softmax(Buf x, Buf y, int outer, int size, int inner, bool log);

    /// <summary>
    /// Gradient of <see cref="Softmax"/> from its output y: dx = y · (dy - Σ dy·y) for softmax,
    /// dx = dy - e^y · Σ dy for log-softmax (sums along the middle axis).
    /// </summary>
    void SoftmaxBackward(Buf y, Buf dy, Buf dx, int outer, int size, int inner, bool log);
}
