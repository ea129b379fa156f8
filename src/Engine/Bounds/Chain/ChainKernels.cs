using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Bounds;

/// <summary>
/// Raw-buffer kernels of the chain fast path. The backward pass keeps coefficients "lane-major": one row of
/// <c>lanes</c> floats per element of a value, the bound rows (specs, intermediate neurons) in the lanes, so every
/// per-element operation (relaxation, scaling, concretisation) is a vector operation over the rows with a scalar
/// per element. <c>lanes</c> is always a multiple of 16. Sums over elements are accumulated in float over blocks
/// of at most <see cref="Block"/> elements and the block sums in double, so their rounding error stays a few units
/// of roundoff times Σ|terms| (what the rounding margin assumes), as in the generic kernels.
/// </summary>
internal static unsafe class ChainKernels
{
    public const int Block = 32;
    private const int V = 16;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Ld(float* p) => Vector512.Load(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void St(float* p, Vector512<float> v) => Vector512.Store(v, p);

    /// <summary>Adds float partial sums (lanes) into double accumulators and clears them.</summary>
    public static void Flush(float* part, double* acc, int lanes)
    {
        for (int r = 0; r < lanes; r++) { acc[r] += part[r]; part[r] = 0f; }
    }

    public static void Clear(float* p, long n) => new Span<float>(p, checked((int)n)).Clear();

    /// <summary>
    /// Σ_j A[j]·c[p_j] and Σ_j |A[j]|·|c[p_j]| over the rows of A (row j is element p_j = idx[j], or j when idx is null)
    /// into bias and mag (lanes); c is a per-element constant (a bias vector). Rows with c = 0 are skipped.
    /// </summary>
    public static void RowsDot(float* a, int cnt, int* idx, int lanes, float* c, double* bias, double* mag, float* tb, float* tm)
    {
        Clear(tb, lanes); Clear(tm, lanes);
        int inBlock = 0;
        for (int j = 0; j < cnt; j++)
        {
            float cv = c[idx == null ? j : idx[j]];
            if (cv == 0) continue;
            var vc = Vector512.Create(cv);
            var va = Vector512.Create(MathF.Abs(cv));
            float* row = a + (long)j * lanes;
            for (int v = 0; v < lanes; v += V)
            {
                var x = Ld(row + v);
                St(tb + v, Vector512.FusedMultiplyAdd(x, vc, Ld(tb + v)));
                St(tm + v, Vector512.FusedMultiplyAdd(Vector512.Abs(x), va, Ld(tm + v)));
            }
            if (++inBlock == Block) { Flush(tb, bias, lanes); Flush(tm, mag, lanes); inBlock = 0; }
        }
        Flush(tb, bias, lanes); Flush(tm, mag, lanes);
    }

    /// <summary>
    /// Unpaired relaxation of an activation: rows of A on its output (element p_j per row) become rows on its
    /// input, written compactly to y for the elements whose class is not zero (their indices to outIdx); returns
    /// the count. Lower line for A ≥ 0 (slope dl), upper line (du, intercept bu) for A &lt; 0; the intercepts' sum
    /// goes to bias and its magnitude to mag.
    /// </summary>
    public static int Relax(float* a, int cnt, int* idx, int lanes, byte* cls, float* dl, float* du, float* bu,
                            float* y, int* outIdx, double* bias, double* mag, float* tb, float* tm)
    {
        Clear(tb, lanes); Clear(tm, lanes);
        int o = 0, inBlock = 0;
        var zero = Vector512<float>.Zero;
        // All elements in order: exact ones first, then the unstable ones (the order of ChainRun.Alive); a listed
        // subset keeps its order.
        for (int pass = idx == null ? 1 : 0; pass < 3; pass += idx == null ? 1 : 3)
        for (int j = 0; j < cnt; j++)
        {
            int p = idx == null ? j : idx[j];
            byte c = cls[p];
            if (c == 0 || (pass != 0 && c != pass)) continue;
            float* row = a + (long)j * lanes, dst = y + (long)o * lanes;
            outIdx[o++] = p;
            if (c == 1)
            {
                var d = Vector512.Create(dl[p]);
                for (int v = 0; v < lanes; v += V) St(dst + v, Ld(row + v) * d);
                continue;
            }
            var l = Vector512.Create(dl[p]); var u = Vector512.Create(du[p]); var b = Vector512.Create(bu[p]);
            for (int v = 0; v < lanes; v += V)
            {
                var x = Ld(row + v);
                var pos = Vector512.GreaterThanOrEqual(x, zero);
                St(dst + v, x * Vector512.ConditionalSelect(pos, l, u));
                var t = Vector512.ConditionalSelect(pos, zero, x * b);
                St(tb + v, Ld(tb + v) + t);
                St(tm + v, Ld(tm + v) + Vector512.Abs(t));
            }
            if (++inBlock == Block) { Flush(tb, bias, lanes); Flush(tm, mag, lanes); inBlock = 0; }
        }
        Flush(tb, bias, lanes); Flush(tm, mag, lanes);
        return o;
    }

    /// <summary>
    /// Paired relaxation: the rows stand for A (lower rows) and −A (upper rows, stored as lower bounds of −A). Exact
    /// elements (class 1) give one shared row A·d in p; unstable ones (class 2) give a row of 2·lanes in q: the
    /// relaxation of A in lanes [0, lanes) and that of −A in [lanes, 2·lanes). bias and mag have 2·lanes entries.
    /// </summary>
    public static void RelaxPaired(float* a, int cnt, int* idx, int lanes, byte* cls, float* dl, float* du, float* bu,
                                   float* p, int* pIdx, out int pCnt, float* q, int* qIdx, out int qCnt,
                                   double* bias, double* mag, float* tb, float* tm)
    {
        int l2 = 2 * lanes;
        Clear(tb, l2); Clear(tm, l2);
        int np = 0, nq = 0, inBlock = 0;
        for (int j = 0; j < cnt; j++)
        {
            int e = idx == null ? j : idx[j];
            byte c = cls[e];
            if (c == 0) continue;
            float* row = a + (long)j * lanes;
            if (c == 1) { ExactRow(row, lanes, dl[e], p + (long)np * lanes); pIdx[np++] = e; continue; }
            UnstableRowPair(row, lanes, dl[e], du[e], bu[e], q + (long)nq * l2, tb, tm);
            qIdx[nq++] = e;
            if (++inBlock == Block) { Flush(tb, bias, l2); Flush(tm, mag, l2); inBlock = 0; }
        }
        Flush(tb, bias, l2); Flush(tm, mag, l2);
        pCnt = np; qCnt = nq;
    }

    /// <summary>An exactly relaxed element (slope d on both sides): one shared row dst = row·d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ExactRow(float* row, int lanes, float d, float* dst)
    {
        var vd = Vector512.Create(d);
        for (int v = 0; v < lanes; v += V) St(dst + v, Ld(row + v) * vd);
    }

    /// <summary>
    /// An unstable element (lower slope l, upper line u·x + b): the relaxation of A into q[0, lanes) and of −A into
    /// q[lanes, 2·lanes); the upper line's intercept terms (and their magnitudes) accumulate into tb / tm, 2·lanes each.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UnstableRowPair(float* row, int lanes, float dl, float du, float bu, float* q, float* tb, float* tm)
    {
        var zero = Vector512<float>.Zero;
        float* qu = q + lanes;
        var l = Vector512.Create(dl); var u = Vector512.Create(du); var b = Vector512.Create(bu);
        for (int v = 0; v < lanes; v += V)
        {
            var x = Ld(row + v);
            var pos = Vector512.GreaterThanOrEqual(x, zero);
            St(q + v, x * Vector512.ConditionalSelect(pos, l, u));
            var t = Vector512.ConditionalSelect(pos, zero, x * b);
            St(tb + v, Ld(tb + v) + t);
            St(tm + v, Ld(tm + v) + Vector512.Abs(t));
            var nx = -x;
            var npos = Vector512.GreaterThanOrEqual(nx, zero);
            St(qu + v, nx * Vector512.ConditionalSelect(npos, l, u));
            var tu = Vector512.ConditionalSelect(npos, zero, nx * b);
            St(tb + lanes + v, Ld(tb + lanes + v) + tu);
            St(tm + lanes + v, Ld(tm + lanes + v) + Vector512.Abs(tu));
        }
    }

    /// <summary>q[i, 0:L] += p[i]; q[i, L:2L] −= p[i] over n rows (p has L lanes, q 2L).</summary>
    public static void Combine(float* p, float* q, long n, int lanes)
    {
        for (long i = 0; i < n; i++)
        {
            float* pr = p + i * lanes, ql = q + i * 2 * lanes, qu = ql + lanes;
            for (int v = 0; v < lanes; v += V)
            {
                var x = Ld(pr + v);
                St(ql + v, Ld(ql + v) + x);
                St(qu + v, Ld(qu + v) - x);
            }
        }
    }

    /// <summary>Expands paired rows in place: a holds n rows of 2L floats whose first L lanes are set; the others become their negation.</summary>
    public static void ExpandPaired(float* src, float* dst, long n, int lanes)
    {
        for (long i = n - 1; i >= 0; i--)
        {
            float* s = src + i * lanes, d = dst + i * 2 * lanes;
            for (int v = lanes - V; v >= 0; v -= V)
            {
                var x = Ld(s + v);
                St(d + lanes + v, -x);
                St(d + v, x);
            }
        }
    }

    /// <summary>
    /// Concretisation over the input set, per lane: dot = Σ A·c, spread = Σ |A|·r (r null: eps·Σ|A|; for L2 the sum
    /// of squares Σ A² instead, into sq), mag = Σ |A|·|c|. Rows are elements p_j of the input (idx null: all in order).
    /// The sums are added (double) to the accumulators.
    /// </summary>
    public static void Concretise(float* a, int cnt, int* idx, int lanes, float* c, float* r, bool l2,
                                  double* dot, double* spread, double* mag, double* sq, float* t0, float* t1, float* t2, float* t3)
        => ConcretiseCore(a, null, cnt, idx, lanes, lanes, 1, c, r, l2, dot, l2 ? sq : spread, mag);

    /// <summary>
    /// <see cref="Concretise"/> of the rows P + Q_low (lanes [0, L)) and −P + Q_up (lanes [L, 2L)) without forming
    /// them: p has L lanes, q 2L, both over all n input elements in order. The sums are the same numbers.
    /// </summary>
    public static void ConcretiseSplit(float* p, float* q, int n, int lanes, float* c, float* r, bool l2,
                                      double* dot, double* spread, double* mag, double* sq, float* t)
    {
        ConcretiseCore(q, p, n, null, lanes, 2 * lanes, 1, c, r, l2, dot, l2 ? sq : spread, mag);
        ConcretiseCore(q + lanes, p, n, null, lanes, 2 * lanes, -1, c, r, l2, dot + lanes, l2 ? sq + lanes : spread + lanes, mag + lanes);
    }

    /// <summary>
    /// The concretisation sums of <paramref name="lanes"/> lanes of rows a (row stride lda), plus sign·p (row stride
    /// lanes) when p is given: groups of four vectors of lanes are accumulated in registers over blocks of
    /// <see cref="Block"/> rows, then flushed to double. s2 receives Σ|A|·r (or eps-free Σ|A|, r null) or, for L2, Σ A².
    /// </summary>
    private static void ConcretiseCore(float* a, float* p, int cnt, int* idx, int lanes, int lda, float sign, float* c, float* r, bool l2,
                                       double* dot, double* s2, double* mag)
    {
        var vs = Vector512.Create(sign);
        for (int v0 = 0; v0 < lanes; v0 += 4 * V)
        {
            int nv = Math.Min(4, (lanes - v0) / V);
            for (int j0 = 0; j0 < cnt; j0 += Block)
            {
                int j1 = Math.Min(cnt, j0 + Block);
                var d0 = Vector512<float>.Zero; var d1 = d0; var d2 = d0; var d3 = d0;
                var e0 = d0; var e1 = d0; var e2 = d0; var e3 = d0;
                var m0 = d0; var m1 = d0; var m2 = d0; var m3 = d0;
                for (int j = j0; j < j1; j++)
                {
                    int el = idx == null ? j : idx[j];
                    float* row = a + (long)j * lda + v0;
                    float* prow = p == null ? null : p + (long)j * lanes + v0;
                    var vc = Vector512.Create(c[el]); var vac = Vector512.Abs(vc);
                    var vrr = r == null ? Vector512<float>.One : Vector512.Create(r[el]);
                    var x0 = Ld(row); if (prow != null) x0 = Vector512.FusedMultiplyAdd(Ld(prow), vs, x0);
                    d0 = Vector512.FusedMultiplyAdd(x0, vc, d0); m0 = Vector512.FusedMultiplyAdd(Vector512.Abs(x0), vac, m0);
                    e0 = l2 ? Vector512.FusedMultiplyAdd(x0, x0, e0) : Vector512.FusedMultiplyAdd(Vector512.Abs(x0), vrr, e0);
                    if (nv > 1)
                    {
                        var x1 = Ld(row + V); if (prow != null) x1 = Vector512.FusedMultiplyAdd(Ld(prow + V), vs, x1);
                        d1 = Vector512.FusedMultiplyAdd(x1, vc, d1); m1 = Vector512.FusedMultiplyAdd(Vector512.Abs(x1), vac, m1);
                        e1 = l2 ? Vector512.FusedMultiplyAdd(x1, x1, e1) : Vector512.FusedMultiplyAdd(Vector512.Abs(x1), vrr, e1);
                    }
                    if (nv > 2)
                    {
                        var x2 = Ld(row + 2 * V); if (prow != null) x2 = Vector512.FusedMultiplyAdd(Ld(prow + 2 * V), vs, x2);
                        d2 = Vector512.FusedMultiplyAdd(x2, vc, d2); m2 = Vector512.FusedMultiplyAdd(Vector512.Abs(x2), vac, m2);
                        e2 = l2 ? Vector512.FusedMultiplyAdd(x2, x2, e2) : Vector512.FusedMultiplyAdd(Vector512.Abs(x2), vrr, e2);
                    }
                    if (nv > 3)
                    {
                        var x3 = Ld(row + 3 * V); if (prow != null) x3 = Vector512.FusedMultiplyAdd(Ld(prow + 3 * V), vs, x3);
                        d3 = Vector512.FusedMultiplyAdd(x3, vc, d3); m3 = Vector512.FusedMultiplyAdd(Vector512.Abs(x3), vac, m3);
                        e3 = l2 ? Vector512.FusedMultiplyAdd(x3, x3, e3) : Vector512.FusedMultiplyAdd(Vector512.Abs(x3), vrr, e3);
                    }
                }
                AddTo(d0, dot + v0); AddTo(e0, s2 + v0); AddTo(m0, mag + v0);
                if (nv > 1) { AddTo(d1, dot + v0 + V); AddTo(e1, s2 + v0 + V); AddTo(m1, mag + v0 + V); }
                if (nv > 2) { AddTo(d2, dot + v0 + 2 * V); AddTo(e2, s2 + v0 + 2 * V); AddTo(m2, mag + v0 + 2 * V); }
                if (nv > 3) { AddTo(d3, dot + v0 + 3 * V); AddTo(e3, s2 + v0 + 3 * V); AddTo(m3, mag + v0 + 3 * V); }
            }
        }
    }

    /// <summary>acc[0..16) += v (in double).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddTo(Vector512<float> v, double* acc)
    {
        var (lo, hi) = Vector512.Widen(v);
        Vector512.Store(Vector512.Load(acc) + lo, acc);
        Vector512.Store(Vector512.Load(acc + 8) + hi, acc + 8);
    }

    /// <summary>Rows j of y = rows p_j of a scaled by s[p_j] (s null: copy); idx null means all rows in order.</summary>
    public static void ScaleRows(float* a, int cnt, int* idx, int lanes, float* s, float* y)
    {
        for (int j = 0; j < cnt; j++)
        {
            var k = Vector512.Create(s == null ? 1f : s[idx == null ? j : idx[j]]);
            float* src = a + (long)j * lanes, dst = y + (long)j * lanes;
            for (int v = 0; v < lanes; v += V) St(dst + v, Ld(src + v) * k);
        }
    }

    /// <summary>Rows of W (row-major [rows, cols]) selected by idx, copied contiguously into g.</summary>
    public static void GatherRows(float* w, int cols, int* idx, int cnt, float* g)
    {
        for (int j = 0; j < cnt; j++)
            Buffer.MemoryCopy(w + (long)idx[j] * cols, g + (long)j * cols, (long)cols * 4, (long)cols * 4);
    }

    /// <summary>
    /// Lane-major rows from matrix rows: out[i, r] = sign·w[rows[r], i] for r &lt; count, 0 for the padding lanes
    /// (w row-major with <paramref name="cols"/> columns; out has cols rows of <paramref name="lanes"/>).
    /// </summary>
    public static void RowsToLanes(float* w, int cols, int* rows, int count, int lanes, float* outp)
    {
        const int T = 16;
        for (int i0 = 0; i0 < cols; i0 += T)
        {
            int i1 = Math.Min(cols, i0 + T);
            for (int r0 = 0; r0 < lanes; r0 += T)
            {
                for (int r = r0; r < r0 + T; r++)
                {
                    if (r >= count)
                    {
                        for (int i = i0; i < i1; i++) outp[(long)i * lanes + r] = 0f;
                        continue;
                    }
                    float* src = w + (long)rows[r] * cols;
                    for (int i = i0; i < i1; i++) outp[(long)i * lanes + r] = src[i];
                }
            }
        }
    }

    /// <summary>Lane-major transpose of a row-major [count, cols] matrix: out[i, r] = m[r, i]; padding lanes 0.</summary>
    public static void MatrixToLanes(float* m, int cols, int count, int lanes, float* outp)
    {
        for (int i = 0; i < cols; i++)
        {
            float* o = outp + (long)i * lanes;
            for (int r = 0; r < count; r++) o[r] = m[(long)r * cols + i];
            for (int r = count; r < lanes; r++) o[r] = 0f;
        }
    }

    /// <summary>
    /// The entries of conv2ᵀ gathered per element of its input: for out element j (input element q_j = outList[j],
    /// all in order when null), the rows (map: the row of each output element of the convolution, −1 for a zero row;
    /// null: row = element) and weights W[co, ci, kh, kw] of every tap that reaches q_j, as CSR (off[j] .. off[j + 1]).
    /// </summary>
    public static void ConvReach(ConvLayer g, float* w, int* map, int* outList, int outCnt, int* off, int* rows, float* ws)
    {
        int[] reach = g.Reach, ro = g.ReachOut, rw = g.ReachW;
        int ne = 0;
        for (int j = 0; j < outCnt; j++)
        {
            off[j] = ne;
            int q = outList == null ? j : outList[j];
            for (int e = reach[q], e1 = reach[q + 1]; e < e1; e++)
            {
                int row = map == null ? ro[e] : map[ro[e]];
                rows[ne] = row; ws[ne] = w[rw[e]];
                ne += (row >> 31) + 1; // keeps the entry when row ≥ 0, without a (data-dependent) branch
            }
        }
        off[outCnt] = ne;
    }

    /// <summary>conv2dᵀ of lane-major rows a by the entries of <see cref="ConvReach"/>: out row j = Σ_e ws[e]·a[rows[e]].</summary>
    public static void ConvTransposeRows(int* off, int* rows, float* ws, float* a, int lanes, int outCnt, float* outp)
    {
        for (int j = 0; j < outCnt; j++)
        {
            int e0 = off[j], e1 = off[j + 1];
            float* dst = outp + (long)j * lanes;
            for (int v0 = 0; v0 < lanes; v0 += 8 * V)
            {
                int nv = Math.Min(8, (lanes - v0) / V);
                float* b = a + v0;
                var c0 = Vector512<float>.Zero; var c1 = c0; var c2 = c0; var c3 = c0; var c4 = c0; var c5 = c0; var c6 = c0; var c7 = c0;
                if (nv == 8)
                    for (int e = e0; e < e1; e++)
                    {
                        var k = Vector512.Create(ws[e]);
                        float* src = b + (long)rows[e] * lanes;
                        c0 = Vector512.FusedMultiplyAdd(Ld(src), k, c0); c1 = Vector512.FusedMultiplyAdd(Ld(src + V), k, c1);
                        c2 = Vector512.FusedMultiplyAdd(Ld(src + 2 * V), k, c2); c3 = Vector512.FusedMultiplyAdd(Ld(src + 3 * V), k, c3);
                        c4 = Vector512.FusedMultiplyAdd(Ld(src + 4 * V), k, c4); c5 = Vector512.FusedMultiplyAdd(Ld(src + 5 * V), k, c5);
                        c6 = Vector512.FusedMultiplyAdd(Ld(src + 6 * V), k, c6); c7 = Vector512.FusedMultiplyAdd(Ld(src + 7 * V), k, c7);
                    }
                else if (nv == 4)
                    for (int e = e0; e < e1; e++)
                    {
                        var k = Vector512.Create(ws[e]);
                        float* src = b + (long)rows[e] * lanes;
                        c0 = Vector512.FusedMultiplyAdd(Ld(src), k, c0); c1 = Vector512.FusedMultiplyAdd(Ld(src + V), k, c1);
                        c2 = Vector512.FusedMultiplyAdd(Ld(src + 2 * V), k, c2); c3 = Vector512.FusedMultiplyAdd(Ld(src + 3 * V), k, c3);
                    }
                else if (nv == 1)
                    for (int e = e0; e < e1; e++)
                        c0 = Vector512.FusedMultiplyAdd(Ld(b + (long)rows[e] * lanes), Vector512.Create(ws[e]), c0);
                else
                    for (int e = e0; e < e1; e++)
                    {
                        var k = Vector512.Create(ws[e]);
                        float* src = b + (long)rows[e] * lanes;
                        c0 = Vector512.FusedMultiplyAdd(Ld(src), k, c0);
                        if (nv > 1) c1 = Vector512.FusedMultiplyAdd(Ld(src + V), k, c1);
                        if (nv > 2) c2 = Vector512.FusedMultiplyAdd(Ld(src + 2 * V), k, c2);
                        if (nv > 3) c3 = Vector512.FusedMultiplyAdd(Ld(src + 3 * V), k, c3);
                        if (nv > 4) c4 = Vector512.FusedMultiplyAdd(Ld(src + 4 * V), k, c4);
                        if (nv > 5) c5 = Vector512.FusedMultiplyAdd(Ld(src + 5 * V), k, c5);
                        if (nv > 6) c6 = Vector512.FusedMultiplyAdd(Ld(src + 6 * V), k, c6);
                    }
                St(dst + v0, c0);
                if (nv > 1) St(dst + v0 + V, c1);
                if (nv > 2) St(dst + v0 + 2 * V, c2);
                if (nv > 3) St(dst + v0 + 3 * V, c3);
                if (nv > 4) St(dst + v0 + 4 * V, c4);
                if (nv > 5) St(dst + v0 + 5 * V, c5);
                if (nv > 6) St(dst + v0 + 6 * V, c6);
                if (nv > 7) St(dst + v0 + 7 * V, c7);
            }
        }
    }

    /// <summary>
    /// The first relaxation of rows that are rows of a matrix (a Linear's weights, pushed from one-hot rows): lane r
    /// holds w[off[r] + e] for element e (off[r] &lt; 0: a zero row). Otherwise as <see cref="RelaxPaired"/> over all
    /// n elements in order; row is scratch of <paramref name="lanes"/> floats.
    /// </summary>
    public static void RelaxPairedRows(float* w, int* off, int n, int lanes, byte* cls, float* dl, float* du, float* bu,
                                       float* p, int* pIdx, out int pCnt, float* q, int* qIdx, out int qCnt,
                                       double* bias, double* mag, float* tb, float* tm, float* row)
    {
        int l2 = 2 * lanes;
        Clear(tb, l2); Clear(tm, l2);
        int np = 0, nq = 0, inBlock = 0;
        for (int e = 0; e < n; e++)
        {
            byte c = cls[e];
            if (c == 0) continue;
            for (int r = 0; r < lanes; r++) row[r] = off[r] < 0 ? 0f : w[off[r] + e];
            if (c == 1) { ExactRow(row, lanes, dl[e], p + (long)np * lanes); pIdx[np++] = e; continue; }
            UnstableRowPair(row, lanes, dl[e], du[e], bu[e], q + (long)nq * l2, tb, tm);
            qIdx[nq++] = e;
            if (++inBlock == Block) { Flush(tb, bias, l2); Flush(tm, mag, l2); inBlock = 0; }
        }
        Flush(tb, bias, l2); Flush(tm, mag, l2);
        pCnt = np; qCnt = nq;
    }

    /// <summary>
    /// Per channel, Σ over the channel's rows of A (rows p_j, channel = p_j / plane), into sums [channels, lanes]
    /// (zeroed here). Float accumulation restarts every <see cref="Block"/> rows into double partials (sd).
    /// </summary>
    public static void ChannelSums(float* a, int cnt, int* idx, int lanes, int plane, int channels, double* sd, float* t)
    {
        new Span<double>(sd, channels * lanes).Clear();
        Clear(t, lanes);
        int cur = -1, inBlock = 0;
        for (int j = 0; j < cnt; j++)
        {
            int ch = (idx == null ? j : idx[j]) / plane;
            if (ch != cur || inBlock == Block)
            {
                if (cur >= 0) Flush(t, sd + (long)cur * lanes, lanes);
                cur = ch; inBlock = 0;
            }
            float* row = a + (long)j * lanes;
            for (int v = 0; v < lanes; v += V) St(t + v, Ld(t + v) + Ld(row + v));
            inBlock++;
        }
        if (cur >= 0) Flush(t, sd + (long)cur * lanes, lanes);
    }

    /// <summary>bias += Σ_c b[c]·sums[c], mag += Σ_c |b[c]|·|sums[c]| per lane (the generic conv bias rule).</summary>
    public static void ChannelBias(double* sums, int channels, int lanes, float* b, double* bias, double* mag)
    {
        for (int c = 0; c < channels; c++)
        {
            double bc = b[c], ab = Math.Abs(bc);
            double* s = sums + (long)c * lanes;
            for (int v = 0; v < lanes; v++) { bias[v] += bc * s[v]; mag[v] += ab * Math.Abs(s[v]); }
        }
    }

    // ---- Row-major windows: one row per bound row, the row's coefficients on a C×h×w window of a value whose grid is
    // gh×gw, at the row's origin (oy, ox); window elements outside the grid hold zeros.

    /// <summary>Zeroes the window elements outside the grid.</summary>
    public static void MaskWindowRow(float* a, int c, int wh, int ww, int oy, int ox, int gh, int gw)
    {
        if (oy >= 0 && ox >= 0 && oy + wh <= gh && ox + ww <= gw) return;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < wh; y++)
            {
                float* seg = a + (long)(ch * wh + y) * ww;
                if ((uint)(oy + y) >= (uint)gh) { new Span<float>(seg, ww).Clear(); continue; }
                for (int x = 0; x < ww; x++) if ((uint)(ox + x) >= (uint)gw) seg[x] = 0f;
            }
    }

    /// <summary>The relaxation of one window row in place (dl, du, bu indexed by the grid element); bias and mag accumulate.</summary>
    public static void RelaxWindowRow(float* a, int c, int wh, int ww, int oy, int ox, int gh, int gw,
                                      float* dl, float* du, float* bu, ref double bias, ref double mag)
    {
        double sb = 0, sm = 0;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < wh; y++)
            {
                int yy = oy + y;
                if ((uint)yy >= (uint)gh) continue;
                float* seg = a + (long)(ch * wh + y) * ww;
                long b0 = ((long)ch * gh + yy) * gw + ox;
                int x0 = Math.Max(0, -ox), x1 = Math.Min(ww, gw - ox);
                for (int x = x0; x < x1; x++)
                {
                    // Branch-free (the sign of the coefficient is data): max(v, 0)·dl + min(v, 0)·du; the intercept
                    // enters only for v < 0.
                    float v = seg[x], neg = MathF.Min(v, 0f);
                    long e = b0 + x;
                    seg[x] = MathF.Max(v, 0f) * dl[e] + neg * du[e];
                    float t = neg * bu[e];
                    sb += t; sm += MathF.Abs(t);
                }
            }
        bias += sb; mag += sm;
    }

    /// <summary>One window row scaled by s and its Σ a·t, Σ |a|·|t| (element-wise affine; s or t may be null).</summary>
    public static void AffineWindowRow(float* a, int c, int wh, int ww, int oy, int ox, int gh, int gw,
                                       float* s, float* t, ref double bias, ref double mag)
    {
        double sb = 0, sm = 0;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < wh; y++)
            {
                int yy = oy + y;
                if ((uint)yy >= (uint)gh) continue;
                float* seg = a + (long)(ch * wh + y) * ww;
                long b0 = ((long)ch * gh + yy) * gw + ox;
                for (int x = 0; x < ww; x++)
                {
                    if ((uint)(ox + x) >= (uint)gw) continue;
                    float v = seg[x];
                    if (t != null) { float p = v * t[b0 + x]; sb += p; sm += MathF.Abs(p); }
                    if (s != null) seg[x] = v * s[b0 + x];
                }
            }
        bias += sb; mag += sm;
    }

    /// <summary>Per channel Σ of one window row, folded into the conv bias rule (bias += Σ_c b_c·S_c, mag += Σ_c |b_c|·|S_c|).</summary>
    public static void ConvBiasWindowRow(float* a, int c, int plane, float* b, ref double bias, ref double mag)
    {
        for (int ch = 0; ch < c; ch++)
        {
            double sum = 0;
            float* seg = a + (long)ch * plane;
            for (int i = 0; i < plane; i++) sum += seg[i];
            bias += b[ch] * sum; mag += Math.Abs(b[ch]) * Math.Abs(sum);
        }
    }

    /// <summary>Concretisation sums of one window row on the input (centre c, radius r or null for a uniform one).</summary>
    public static void ConcretiseWindowRow(float* a, int c, int wh, int ww, int oy, int ox, int gh, int gw,
                                           float* cen, float* rad, out double dot, out double spread, out double mag, out double sq)
    {
        double d = 0, sp = 0, m = 0, q = 0;
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < wh; y++)
            {
                int yy = oy + y;
                if ((uint)yy >= (uint)gh) continue;
                float* seg = a + (long)(ch * wh + y) * ww;
                long b0 = ((long)ch * gh + yy) * gw + ox;
                for (int x = 0; x < ww; x++)
                {
                    if ((uint)(ox + x) >= (uint)gw) continue;
                    double v = seg[x], av = Math.Abs(v), cv = cen[b0 + x];
                    d += v * cv; m += av * Math.Abs(cv); q += v * v;
                    sp += rad == null ? av : av * rad[b0 + x];
                }
            }
        dot = d; spread = sp; mag = m; sq = q;
    }

    /// <summary>
    /// The matrix of conv2ᵀ between windows: row (co, y, x) of a wh×ww output window, column (ci, y·SH + kh·DH,
    /// x·SW + kw·DW) of the input window, entry W[co, ci, kh, kw]; so rows·T pushes window rows through the layer.
    /// </summary>
    public static float[] TransferMatrix(ConvLayer g, float* w, int wh, int ww, float[]? reuse)
    {
        int wh2 = (wh - 1) * g.SH + (g.KH - 1) * g.DH + 1, ww2 = (ww - 1) * g.SW + (g.KW - 1) * g.DW + 1;
        int cols = g.Cin * wh2 * ww2, kk = g.KH * g.KW, size = g.Cout * wh * ww * cols;
        var t = reuse != null && reuse.Length == size ? reuse : GC.AllocateArray<float>(size, pinned: true);
        Array.Clear(t);
        for (int co = 0; co < g.Cout; co++)
            for (int y = 0; y < wh; y++)
                for (int x = 0; x < ww; x++)
                {
                    long row = ((long)(co * wh + y) * ww + x) * cols;
                    for (int ci = 0; ci < g.Cin; ci++)
                        for (int kh = 0; kh < g.KH; kh++)
                            for (int kw = 0; kw < g.KW; kw++)
                                t[row + (ci * wh2 + y * g.SH + kh * g.DH) * ww2 + x * g.SW + kw * g.DW] = w[((long)co * g.Cin + ci) * kk + kh * g.KW + kw];
                }
        return t;
    }
}
