using Engine.Tensors;

namespace Engine.Cuda;

// Layout kernels on CUDA (kernels/shape.cu). Permute first simplifies the permutation as the CPU does (size-1
// dimensions dropped, dimensions that stay adjacent merged); a permutation that moves the innermost dimension becomes a
// batch of 2-D transposes through shared-memory tiles (coalesced reads and writes), anything else a gather with
// coalesced writes. IndexAdd is planned on the host: the distinct target indices, each with its source positions in
// ascending order, so that one thread per target element sums its sources in the CPU's order (no atomics).
internal sealed partial class CudaKernels
{
    // Both transposed extents at least this large use the tiled transpose; below it most of a 32-wide tile would idle.
    private const int TransposeMinExtent = 8;

    /// <inheritdoc/>
    public void Permute(Buf x, int[] shape, int[] perm, Buf y)
    {
        const string K = nameof(Permute);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(perm);
        int rank = shape.Length;
        if (perm.Length != rank) throw new ArgumentException($"{K}: permutation of length {perm.Length} for shape {ShapeUtil.Format(shape)}.");
        var seen = new bool[rank];
        foreach (int d in perm)
        {
            if (d < 0 || d >= rank || seen[d]) throw new ArgumentException($"{K}: [{string.Join(", ", perm)}] is not a permutation of the {rank} dimensions of {ShapeUtil.Format(shape)}.");
            seen[d] = true;
        }
        int n = ShapeUtil.Numel(shape);
        NeedElements(x, n, K, "x");
        NeedElements(y, n, K, "y");
        if (n == 0) return;
        var (dims, p) = ShapeUtil.CoalescePermutation(shape, perm);
        int r = dims.Length;
        var pr = new KernelParams();
        if (r <= 1)
        {
            pr.Pointer(Ptr(x)); pr.Pointer(Ptr(y)); pr.Int(n);
            Launch1D("shape", "shape_copy", n, ref pr);
            return;
        }
        if (r > 8) throw new NotSupportedException($"{K}: shape {ShapeUtil.Format(shape)} by [{string.Join(", ", perm)}] needs {r} dimensions after merging; CUDA supports 8.");
        var inStrides = ShapeUtil.Strides(dims);
        var outSizes = new int[r];
        for (int k = 0; k < r; k++) outSizes[k] = dims[p[k]];
        var outStrides = ShapeUtil.Strides(outSizes);
        int ka = Array.IndexOf(p, r - 1), b = p[r - 1];
        int na = dims[r - 1], nb = b == r - 1 ? 0 : dims[b];
        if (b == r - 1 || na < TransposeMinExtent || nb < TransposeMinExtent)
        {
            var srcStride = new int[r];
            for (int k = 0; k < r; k++) srcStride[k] = inStrides[p[k]];
            pr.Pointer(Ptr(x)); pr.Pointer(Ptr(y)); pr.Int(r); pr.Ints(outSizes, 8); pr.Ints(srcStride, 8); pr.Int(n);
            Launch1D("shape", "permute_gather", n, ref pr);
            return;
        }
        // Transposes between input dimension a = r-1 (innermost in x) and b (innermost in y); the rest is the batch.
        int otherRank = r - 2;
        var oSize = new int[otherRank]; var oxs = new int[otherRank]; var oys = new int[otherRank];
        for (int k = 0, q = 0; k < r - 1; k++)
        {
            if (k == ka) continue;
            oSize[q] = outSizes[k]; oxs[q] = inStrides[p[k]]; oys[q] = outStrides[k]; q++;
        }
        long items = (long)(n / ((long)na * nb)) * ((na + 31) / 32) * ((nb + 31) / 32);
        pr.Pointer(Ptr(x)); pr.Pointer(Ptr(y)); pr.Int(na); pr.Int(nb); pr.Int(inStrides[b]); pr.Int(outStrides[ka]);
        pr.Int(otherRank); pr.Ints(oSize, 8); pr.Ints(oxs, 8); pr.Ints(oys, 8); pr.Long(items);
        uint blocks = (uint)Math.Min(items, Math.Max(1L, Context.MaxResidentBlocks256));
        Launch("shape", "permute_transpose", new Dim3(blocks), new Dim3(32, 8), 0, ref pr);
    }

    /// <summary>Checks an [outer, dim, inner] block copy's sizes and that the slices start + j*step lie in [0, dim).</summary>
    private static long CheckSlices(string kernel, int outer, int dim, int inner, int start, int step, int count)
    {
        if (outer < 0 || dim < 0 || inner < 0 || count < 0)
            throw new ArgumentException($"{kernel}: negative size (outer {outer}, dim {dim}, inner {inner}, count {count}).");
        long total = (long)outer * count * inner;
        if (total == 0) return 0;
        if (step < 1) throw new ArgumentException($"{kernel}: step must be positive, got {step}.");
        if (start < 0 || start + (long)(count - 1) * step >= dim)
            throw new ArgumentException($"{kernel}: slices {start} + j*{step} for j < {count} do not fit a dimension of {dim}.");
        return total;
    }

    /// <inheritdoc/>
    public void SliceCopy(Buf x, Buf y, int outer, int dimIn, int inner, int start, int step, int count)
    {
        const string K = nameof(SliceCopy);
        long total = CheckSlices(K, outer, dimIn, inner, start, step, count);
        if (total == 0) return;
        NeedElements(x, (long)outer * dimIn * inner, K, "x");
        NeedElements(y, total, K, "y");
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Pointer(Ptr(y)); p.Int(dimIn); p.Int(inner); p.Int(start); p.Int(step); p.Int(count); p.Int(Items(total, K));
        Launch1D("shape", "slice_copy", total, ref p);
    }

    /// <inheritdoc/>
    public void SliceScatter(Buf x, Buf y, int outer, int dimOut, int inner, int start, int step, int count)
    {
        const string K = nameof(SliceScatter);
        long total = CheckSlices(K, outer, dimOut, inner, start, step, count);
        if (total == 0) return;
        NeedElements(x, total, K, "x");
        NeedElements(y, (long)outer * dimOut * inner, K, "y");
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Pointer(Ptr(y)); p.Int(dimOut); p.Int(inner); p.Int(start); p.Int(step); p.Int(count); p.Int(Items(total, K));
        Launch1D("shape", "slice_scatter", total, ref p);
    }

    /// <summary>Checks sizes and that every index lies in [0, dim) (an index outside would address other memory).</summary>
    private static long CheckIndices(string kernel, int outer, int dim, int inner, int[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (outer < 0 || dim < 0 || inner < 0) throw new ArgumentException($"{kernel}: negative size (outer {outer}, dim {dim}, inner {inner}).");
        IndexChecks.InRange(indices, 0, dim - 1L, kernel, $"index (dimension of {dim})");
        return (long)outer * indices.Length * inner;
    }

    /// <inheritdoc/>
    public void IndexSelect(Buf x, Buf y, int outer, int dimIn, int inner, int[] indices)
    {
        const string K = nameof(IndexSelect);
        long total = CheckIndices(K, outer, dimIn, inner, indices);
        if (total == 0) return;
        NeedElements(x, (long)outer * dimIn * inner, K, "x");
        NeedElements(y, total, K, "y");
        using var idx = Upload<int>(indices);
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Pointer(Ptr(y)); p.Pointer(idx.Address); p.Int(dimIn); p.Int(inner); p.Int(indices.Length); p.Int(Items(total, K));
        Launch1D("shape", "index_select", total, ref p);
    }

    /// <inheritdoc/>
    public void IndexAdd(Buf x, Buf y, int outer, int dimOut, int inner, int[] indices)
    {
        const string K = nameof(IndexAdd);
        long total = CheckIndices(K, outer, dimOut, inner, indices);
        if (total == 0) return;
        int count = indices.Length;
        NeedElements(x, total, K, "x");
        NeedElements(y, (long)outer * dimOut * inner, K, "y");
        // Counting sort by target: plan = [distinct targets | their source ranges' starts (+ end) | source positions].
        var perTarget = new int[dimOut];
        foreach (int i in indices) perTarget[i]++;
        int distinct = 0;
        foreach (int c in perTarget) if (c > 0) distinct++;
        var plan = new int[2 * distinct + 1 + count];
        var slot = new int[dimOut];
        for (int t = 0, k = 0, at = 0; t < dimOut; t++)
        {
            if (perTarget[t] == 0) continue;
            plan[k] = t; plan[distinct + k] = at; slot[t] = at;
            at += perTarget[t]; k++;
        }
        plan[2 * distinct] = count;
        int sources = 2 * distinct + 1;
        for (int j = 0; j < count; j++) plan[sources + slot[indices[j]]++] = j;   // ascending j within each target
        long work = (long)outer * distinct * inner;
        using var dev = Upload<int>(plan);
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Pointer(Ptr(y)); p.Pointer(dev.Address); p.Int(distinct); p.Int(count); p.Int(dimOut); p.Int(inner); p.Int(Items(work, K));
        Launch1D("shape", "index_add", work, ref p);
    }
}
