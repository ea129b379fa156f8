using Engine.Autograd;

namespace Engine.Tensors;

// Matrix products on IKernels.Gemm. Transposes are never materialised: backward passes use the GEMM's
// transpose flags, broadcast batch dimensions use batch stride 0, and a gradient that must be summed over
// a broadcast batch dimension is accumulated by the GEMM itself (beta = 1) rather than by a separate sum.
public sealed partial class Tensor
{
    /// <summary>
    /// Matrix product with torch.matmul semantics: 1-D · 1-D is a dot product (rank-0 result); a 1-D left operand is
    /// a row vector and a 1-D right operand a column vector, their unit dimension removed from the result; otherwise
    /// the last two dimensions multiply and the leading (batch) dimensions broadcast. Differentiable.
    /// </summary>
    public static Tensor Matmul(Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        CheckSameDevice(a, b, "Matmul");
        if (a.Rank == 0 || b.Rank == 0)
            throw new ArgumentException($"Matmul: both operands need at least one dimension, got shapes {ShapeUtil.Format(a.Dims)} and {ShapeUtil.Format(b.Dims)}.");
        var A = a.Rank == 1 ? a.Reshape(1, a.Dims[0]) : a;
        var B = b.Rank == 1 ? b.Reshape(b.Dims[0], 1) : b;
        int m = A.Dims[^2], k = A.Dims[^1], n = B.Dims[^1];
        if (B.Dims[^2] != k)
            throw new ArgumentException($"Matmul: inner dimensions do not match for shapes {ShapeUtil.Format(a.Dims)} and {ShapeUtil.Format(b.Dims)} ({k} vs {B.Dims[^2]}).");
        int[] batch;
        try { batch = ShapeUtil.Broadcast(A.Dims.AsSpan(0, A.Rank - 2), B.Dims.AsSpan(0, B.Rank - 2)); }
        catch (ArgumentException)
        {
            throw new ArgumentException($"Matmul: batch dimensions of shapes {ShapeUtil.Format(a.Dims)} and {ShapeUtil.Format(b.Dims)} cannot be broadcast together.");
        }
        var c = BatchedMatmul(A, B, batch, m, n, k);
        if (a.Rank > 1 && b.Rank > 1) return c;
        var shape = new List<int>(batch);
        if (a.Rank > 1) shape.Add(m);
        if (b.Rank > 1) shape.Add(n);
        return c.Reshape([.. shape]);
    }

    /// <summary>C[batch..., m, n] = A[..., m, k] @ B[..., k, n] with broadcast batch dimensions; records its backward rule.</summary>
    private static Tensor BatchedMatmul(Tensor a, Tensor b, int[] batch, int m, int n, int k)
    {
        var c = a.NewEmpty([.. batch, m, n]);
        var sa = BatchStrides(a.Dims, batch, (long)m * k);
        var sb = BatchStrides(b.Dims, batch, (long)k * n);
        var sc = BatchStrides(c.Dims, batch, (long)m * n);
        BatchedGemm(c.K, batch, false, false, m, n, k, a.Buf, k, sa, b.Buf, n, sb, c.Buf, n, sc, c.Numel);
        return GradRecorder.Record(c, a, b, (g, x, y) =>
        {
            Tensor? da = null, db = null;
            if (x.RequiresGrad)
            {
                // dA = dC · Bᵀ, summed over the batch dimensions A was broadcast along (its stride 0 there).
                da = x.NewEmpty(x.Dims);
                BatchedGemm(g.K, batch, false, true, m, k, n, g.Buf, n, sc, y.Buf, n, sb, da.Buf, k, sa, da.Numel);
            }
            if (y.RequiresGrad)
            {
                // dB = Aᵀ · dC.
                db = y.NewEmpty(y.Dims);
                BatchedGemm(g.K, batch, true, false, k, n, m, x.Buf, k, sa, g.Buf, n, sc, db.Buf, n, sb, db.Numel);
            }
            return [da, db];
        }, "Matmul");
    }

    /// <summary>
    /// y = x · weightᵀ + bias, as torch.nn.functional.linear: x [..., in], weight [out, in], bias [out] or null;
    /// one GEMM (weight read transposed in place) plus a bias pass. Differentiable in all three.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        CheckSameDevice(x, weight, "Linear");
        if (bias != null) CheckSameDevice(x, bias, "Linear");
        if (weight.Rank != 2)
            throw new ArgumentException($"Linear: weight must be [out, in], got shape {ShapeUtil.Format(weight.Dims)}.");
        int outF = weight.Dims[0], inF = weight.Dims[1];
        if (x.Rank == 0 || x.Dims[^1] != inF)
            throw new ArgumentException($"Linear: input shape {ShapeUtil.Format(x.Dims)} does not end in {inF}, the input size of weight {ShapeUtil.Format(weight.Dims)}.");
        if (bias != null && (bias.Rank != 1 || bias.Dims[0] != outF))
            throw new ArgumentException($"Linear: bias shape {ShapeUtil.Format(bias.Dims)} does not match weight {ShapeUtil.Format(weight.Dims)} (expected [{outF}]).");
        int rows = 1;
        for (int i = 0; i < x.Rank - 1; i++) rows *= x.Dims[i];
        int[] outShape = [.. x.Dims.AsSpan(0, x.Rank - 1), outF];
        var y = x.NewEmpty(outShape);
        Gemm2d(y.K, false, true, rows, outF, inF, x.Buf, inF, weight.Buf, inF, y.Buf, outF);
        if (bias != null) y.K.AddBias(y.Buf, bias.Buf, rows, outF, 1);
        Tensor[] inputs = bias == null ? [x, weight] : [x, weight, bias];
        return GradRecorder.Record(y, inputs, (g, ins) =>
        {
            var grads = new Tensor?[ins.Length];
            var (xi, wi) = (ins[0], ins[1]);
            if (xi.RequiresGrad)
            {
                var dx = xi.NewEmpty(xi.Dims);
                Gemm2d(g.K, false, false, rows, inF, outF, g.Buf, outF, wi.Buf, inF, dx.Buf, inF);
                grads[0] = dx;
            }
            if (wi.RequiresGrad)
            {
                // A parameter's gradient is added straight into its Grad (the weight of a certified-training network
                // is used three times per pass: clean, centre and radius).
                if (Autograd.BackwardEngine.LeafGradTarget(wi, out bool fresh) is { } target)
                    Gemm2d(g.K, true, false, outF, inF, rows, g.Buf, outF, xi.Buf, inF, target.Buf, inF, fresh ? 0f : 1f);
                else
                {
                    var dw = wi.NewEmpty(wi.Dims);
                    Gemm2d(g.K, true, false, outF, inF, rows, g.Buf, outF, xi.Buf, inF, dw.Buf, inF);
                    grads[1] = dw;
                }
            }
            if (ins.Length == 3 && ins[2].RequiresGrad)
            {
                var db = ins[2].NewEmpty([outF]);
                g.K.BiasGrad(g.Buf, db.Buf, rows, outF, 1);
                grads[2] = db;
            }
            return grads;
        });
    }

    /// <summary>C = op(A) op(B) for one matrix; an empty inner dimension gives zeros.</summary>
    private static void Gemm2d(IKernels k, bool tA, bool tB, int m, int n, int kk, Buf a, int lda, Buf b, int ldb, Buf c, int ldc, float beta = 0f)
    {
        if ((long)m * n == 0) return;
        if (kk == 0) { if (beta == 0) k.Fill(c, m * n, 0f); return; }
        k.Gemm(tA, tB, 1, m, n, kk, 1f, a, lda, 0, b, ldb, 0, beta, c, ldc, 0);
    }

    /// <summary>
    /// Per-dimension batch strides of an operand of shape <paramref name="dims"/> (its last two dimensions one matrix
    /// of <paramref name="matrix"/> elements) inside the broadcast batch shape: 0 where it is broadcast.
    /// </summary>
    private static long[] BatchStrides(int[] dims, int[] batch, long matrix)
    {
        int own = dims.Length - 2, off = batch.Length - own;
        var s = new long[batch.Length];
        long acc = matrix;
        for (int i = batch.Length - 1; i >= 0; i--)
        {
            int j = i - off;
            if (j < 0) { s[i] = 0; continue; }
            s[i] = dims[j] == 1 ? 0 : acc;
            acc *= dims[j];
        }
        return s;
    }

    /// <summary>
    /// For every index of the batch shape: C[i] (+)= op(A[i]) · op(B[i]), X[i] = X + Σ i_d·sx[d]. A zero stride in C
    /// means C is shared along that dimension, so its products are summed into it (C is zeroed first). Batch
    /// dimensions are merged where the strides allow, and the innermost one is folded into the GEMM's M (B shared)
    /// or K (C shared) when the rows line up, so a broadcast weight becomes one large GEMM.
    /// </summary>
    private static void BatchedGemm(IKernels kern, int[] batch, bool tA, bool tB, int m, int n, int k,
                                    Buf a, int lda, long[] sa, Buf b, int ldb, long[] sb, Buf c, int ldc, long[] sc, int cNumel)
    {
        if (cNumel == 0) return;
        var sizes = new List<int>(); var xa = new List<long>(); var xb = new List<long>(); var xc = new List<long>();
        for (int i = 0; i < batch.Length; i++)
        {
            if (batch[i] == 1) continue;
            if (sizes.Count > 0 && xa[^1] == sa[i] * batch[i] && xb[^1] == sb[i] * batch[i] && xc[^1] == sc[i] * batch[i])
            {
                sizes[^1] *= batch[i]; xa[^1] = sa[i]; xb[^1] = sb[i]; xc[^1] = sc[i];
                continue;
            }
            sizes.Add(batch[i]); xa.Add(sa[i]); xb.Add(sb[i]); xc.Add(sc[i]);
        }
        while (sizes.Count > 0)
        {
            int l = sizes.Count - 1;
            if (xb[l] == 0 && xc[l] != 0 && !tA && xa[l] == (long)m * lda && xc[l] == (long)m * ldc) m *= sizes[l];
            else if (xc[l] == 0 && tA && xa[l] == (long)k * lda && !tB && xb[l] == (long)k * ldb) k *= sizes[l];
            else break;
            sizes.RemoveAt(l); xa.RemoveAt(l); xb.RemoveAt(l); xc.RemoveAt(l);
        }
        if (k == 0) { kern.Fill(c, cNumel, 0f); return; }
        bool reduce = xc.Contains(0);
        float beta = 0f;
        if (reduce) { kern.Fill(c, cNumel, 0f); beta = 1f; }
        if (sizes.Count == 0)
        {
            kern.Gemm(tA, tB, 1, m, n, k, 1f, a, lda, 0, b, ldb, 0, beta, c, ldc, 0);
            return;
        }
        int last = sizes.Count - 1, outerCount = 1;
        for (int i = 0; i < last; i++) outerCount *= sizes[i];
        for (int o = 0; o < outerCount; o++)
        {
            long oa = 0, ob = 0, oc = 0;
            int rem = o;
            for (int i = last - 1; i >= 0; i--)
            {
                int idx = rem % sizes[i]; rem /= sizes[i];
                oa += idx * xa[i]; ob += idx * xb[i]; oc += idx * xc[i];
            }
            if (xc[last] != 0)
                kern.Gemm(tA, tB, sizes[last], m, n, k, 1f, a.At((int)oa), lda, xa[last], b.At((int)ob), ldb, xb[last], beta, c.At((int)oc), ldc, xc[last]);
            else
                for (int i = 0; i < sizes[last]; i++)
                    kern.Gemm(tA, tB, 1, m, n, k, 1f, a.At((int)(oa + i * xa[last])), lda, 0, b.At((int)(ob + i * xb[last])), ldb, 0, beta, c.At((int)oc), ldc, 0);
        }
    }
}
