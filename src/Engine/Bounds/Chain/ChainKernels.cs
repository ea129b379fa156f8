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
        for (int j = 0; j < cnt; j++)
        {
            int p = idx == null ? j : idx[j];
            byte c = cls[p];
            if (c == 0) continue;
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
        var zero = Vector512<float>.Zero;
        for (int j = 0; j < cnt; j++)
        {
            int e = idx == null ? j : idx[j];
            byte c = cls[e];
            if (c == 0) continue;
            float* row = a + (long)j * lanes;
            if (c == 1)
            {
                float* dst = p + (long)np * lanes;
                pIdx[np++] = e;
                var d = Vector512.Create(dl[e]);
                for (int v = 0; v < lanes; v += V) St(dst + v, Ld(row + v) * d);
                continue;
            }
            float* ql = q + (long)nq * l2, qu = ql + lanes;
            qIdx[nq++] = e;
            var l = Vector512.Create(dl[e]); var u = Vector512.Create(du[e]); var b = Vector512.Create(bu[e]);
            for (int v = 0; v < lanes; v += V)
            {
                var x = Ld(row + v);
                var pos = Vector512.GreaterThanOrEqual(x, zero);
                St(ql + v, x * Vector512.ConditionalSelect(pos, l, u));
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
            if (++inBlock == Block) { Flush(tb, bias, l2); Flush(tm, mag, l2); inBlock = 0; }
        }
        Flush(tb, bias, l2); Flush(tm, mag, l2);
        pCnt = np; qCnt = nq;
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
    /// Concretisation over the input set, per lane: dot = Σ A·c, spread = Σ |A|·r (r null: eps·Σ|A|), mag = Σ |A|·|c|,
    /// sq = Σ A² (for L2). Rows are elements p_j of the input. Results are added (double) to the four accumulators.
    /// </summary>
    public static void Concretise(float* a, int cnt, int* idx, int lanes, float* c, float* r, bool l2,
                                  double* dot, double* spread, double* mag, double* sq, float* t0, float* t1, float* t2, float* t3)
    {
        Clear(t0, lanes); Clear(t1, lanes); Clear(t2, lanes); Clear(t3, lanes);
        for (int j0 = 0; j0 < cnt; j0 += Block)
        {
            int j1 = Math.Min(cnt, j0 + Block);
            for (int v0 = 0; v0 < lanes; v0 += 4 * V)
            {
                int nv = Math.Min(4, (lanes - v0) / V);
                for (int k = 0; k < nv; k++)
                {
                    int v = v0 + k * V;
                    var d = Vector512<float>.Zero; var s = d; var m = d; var q = d;
                    for (int j = j0; j < j1; j++)
                    {
                        int e = idx == null ? j : idx[j];
                        var x = Ld(a + (long)j * lanes + v);
                        var ax = Vector512.Abs(x);
                        float cv = c[e];
                        d = Vector512.FusedMultiplyAdd(x, Vector512.Create(cv), d);
                        m = Vector512.FusedMultiplyAdd(ax, Vector512.Create(MathF.Abs(cv)), m);
                        s = r == null ? s + ax : Vector512.FusedMultiplyAdd(ax, Vector512.Create(r[e]), s);
                        if (l2) q = Vector512.FusedMultiplyAdd(x, x, q);
                    }
                    St(t0 + v, d); St(t1 + v, s); St(t2 + v, m); St(t3 + v, q);
                }
            }
            for (int v = 0; v < lanes; v++) { dot[v] += t0[v]; spread[v] += t1[v]; mag[v] += t2[v]; sq[v] += t3[v]; }
        }
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
    /// conv2dᵀ of lane-major rows onto the full input (out must be zeroed): row j is output element p_j (channel,
    /// y, x) of the convolution; taps that fall in the padding are dropped.
    /// </summary>
    public static void ConvTransposeFull(ConvLayer g, float* w, float* a, int cnt, int* idx, int lanes, float* outp)
    {
        int opix = g.OH * g.OW, kk = g.KH * g.KW;
        for (int j = 0; j < cnt; j++)
        {
            int p = idx == null ? j : idx[j];
            int co = p / opix, rem = p - co * opix, oh = rem / g.OW, ow = rem - oh * g.OW;
            float* src = a + (long)j * lanes;
            float* wc = w + (long)co * g.Cin * kk;
            for (int kh = 0; kh < g.KH; kh++)
            {
                int ih = oh * g.SH - g.PH + kh * g.DH;
                if ((uint)ih >= (uint)g.H) continue;
                for (int kw = 0; kw < g.KW; kw++)
                {
                    int iw = ow * g.SW - g.PW + kw * g.DW;
                    if ((uint)iw >= (uint)g.Wd) continue;
                    for (int ci = 0; ci < g.Cin; ci++)
                    {
                        float wv = wc[ci * kk + kh * g.KW + kw];
                        if (wv == 0) continue;
                        var k = Vector512.Create(wv);
                        float* dst = outp + ((long)(ci * g.H + ih) * g.Wd + iw) * lanes;
                        for (int v = 0; v < lanes; v += V) St(dst + v, Vector512.FusedMultiplyAdd(Ld(src + v), k, Ld(dst + v)));
                    }
                }
            }
        }
    }

    /// <summary>
    /// conv2dᵀ of lane-major window rows [Cout, wh, ww] onto the input window [Cin, (wh−1)·s + (k−1)·d + 1, ...]
    /// (out zeroed); window coordinates, so every tap lands inside.
    /// </summary>
    public static void ConvTransposePatch(ConvLayer g, float* w, float* a, int wh, int ww, int lanes, float* outp, int oh2, int ow2)
    {
        int kk = g.KH * g.KW;
        for (int co = 0; co < g.Cout; co++)
            for (int y = 0; y < wh; y++)
                for (int x = 0; x < ww; x++)
                {
                    float* src = a + ((long)(co * wh + y) * ww + x) * lanes;
                    bool any = false;
                    for (int v = 0; v < lanes; v += V) if (Ld(src + v) != Vector512<float>.Zero) { any = true; break; }
                    if (!any) continue;
                    float* wc = w + (long)co * g.Cin * kk;
                    for (int ci = 0; ci < g.Cin; ci++)
                        for (int kh = 0; kh < g.KH; kh++)
                        {
                            int iy = y * g.SH + kh * g.DH;
                            for (int kw = 0; kw < g.KW; kw++)
                            {
                                float wv = wc[ci * kk + kh * g.KW + kw];
                                if (wv == 0) continue;
                                var k = Vector512.Create(wv);
                                float* dst = outp + ((long)(ci * oh2 + iy) * ow2 + x * g.SW + kw * g.DW) * lanes;
                                for (int v = 0; v < lanes; v += V) St(dst + v, Vector512.FusedMultiplyAdd(Ld(src + v), k, Ld(dst + v)));
                            }
                        }
                }
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

    /// <summary>Zeroes, per lane, the window elements that fall outside the value's H×W grid (window origin oy, ox per lane).</summary>
    public static void MaskWindow(float* a, int c, int wh, int ww, int lanes, int* oy, int* ox, int h, int w)
    {
        for (int y = 0; y < wh; y++)
            for (int x = 0; x < ww; x++)
            {
                bool allIn = true;
                for (int r = 0; r < lanes; r++)
                {
                    int yy = oy[r] + y, xx = ox[r] + x;
                    if ((uint)yy >= (uint)h || (uint)xx >= (uint)w) { allIn = false; break; }
                }
                if (allIn) continue;
                for (int r = 0; r < lanes; r++)
                {
                    int yy = oy[r] + y, xx = ox[r] + x;
                    if ((uint)yy < (uint)h && (uint)xx < (uint)w) continue;
                    for (int ch = 0; ch < c; ch++) a[((long)(ch * wh + y) * ww + x) * lanes + r] = 0f;
                }
            }
    }

    /// <summary>
    /// Gathers a per-element array of the value (channel-major [C, h, w]) for every lane's window element: g[r] =
    /// src[ch, oy_r + y, ox_r + x], 0 outside the grid.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void GatherWindow(float* src, int ch, int y, int x, int lanes, int* oy, int* ox, int h, int w, float* g)
    {
        long plane = (long)ch * h * w;
        for (int r = 0; r < lanes; r++)
        {
            int yy = oy[r] + y, xx = ox[r] + x;
            g[r] = (uint)yy < (uint)h && (uint)xx < (uint)w ? src[plane + yy * w + xx] : 0f;
        }
    }
}
