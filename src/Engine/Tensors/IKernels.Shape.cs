namespace Engine.Tensors;

/// <summary>
/// Layout kernels: permutation and the strided block copies behind Narrow / Slice / Concat / Stack / IndexSelect.
/// The copies see a tensor as [outer, dim, inner] around the dimension being cut (inner is contiguous), so
/// one kernel serves every axis.
/// </summary>
public partial interface IKernels
{
    /// <summary>
    /// y = x permuted: x has <paramref name="shape"/>, y has shape[perm[0]], shape[perm[1]], ..., and
    /// y[i0, i1, ...] = x[j] where j[perm[d]] = i[d]. Buffers may not overlap.
    /// </summary>
    void Permute(Buf x, int[] shape, int[] perm, Buf y);

    /// <summary>
    /// Gathers every <paramref name="step"/>-th slice: y[o, j, i] = x[o, start + j*step, i] for o &lt; outer,
    /// j &lt; count, i &lt; inner; x is [outer, dimIn, inner], y is [outer, count, inner].
    /// </summary>
    void SliceCopy(Buf x, Buf y, int outer, int dimIn, int inner, int start, int step, int count);

    /// <summary>
    /// The inverse placement: y[o, start + j*step, i] = x[o, j, i]; x is [outer, count, inner], y is
    /// [outer, dimOut, inner]. Elements of y that no slice lands on are left untouched.
    /// </summary>
    void SliceScatter(Buf x, Buf y, int outer, int dimOut, int inner, int start, int step, int count);

    /// <summary>
    /// y[o, j, i] = x[o, indices[j], i]; x is [outer, dimIn, inner], y is [outer, indices.Length, inner].
    /// Indices must lie in [0, dimIn) (callers check).
    /// </summary>
    void IndexSelect(Buf x, Buf y, int outer, int dimIn, int inner, int[] indices);

    /// <summary>
    /// y[o, indices[j], i] += x[o, j, i]; x is [outer, indices.Length, inner], y is [outer, dimOut, inner].
    /// Repeated indices accumulate (the gradient of <see cref="IndexSelect"/>).
    /// </summary>
    void IndexAdd(Buf x, Buf y, int outer, int dimOut, int inner, int[] indices);
}
