using Engine.Cpu;

namespace Engine.Bounds;

/// <summary>
/// CROWN's backward pass of a compiled chain for one example (one worker per thread). The rows being bounded sit
/// in the vector lanes (<see cref="ChainKernels"/>); the coefficients on a value are stored as
/// <list type="bullet">
/// <item>full rows: one row of lanes per element, compacted to the elements listed in an index (after a
/// relaxation, dead neurons drop out of every later product);</item>
/// <item>a window (patch): for rows that start at one neuron of a convolution, the coefficients of each row on a
/// C×h×w window of the value, at a per-row origin (auto_LiRPA's patches), so early convolution layers cost the
/// receptive field, not the image;</item>
/// <item>paired rows: a row r stands for itself and its negation (intermediate bounds need both ends, and
/// CROWN's upper bound is the negated lower bound of −A). Up to the first relaxation both are the same numbers up
/// to sign, and after it they share every exactly relaxed element: that shared part (P) goes through the next
/// linear layer once for both, only the unstable elements (Q) are pushed separately.</item>
/// </list>
/// The numbers are the generic rules': lower slope for A ≥ 0, chord for A &lt; 0, bias and Σ|terms| collected
/// for the same terms (the rounding margin), then the concretisation at the input.
/// </summary>
internal sealed unsafe class ChainBackward
{
    private readonly ChainRun _run;
    private readonly ChainPlan _plan;
    private readonly Pinned<float>[] _buf = [new(), new(), new(), new(), new()];
    private readonly Pinned<float> _wg = new(), _tmp = new();
    private readonly Pinned<double> _bias = new(), _mag = new(), _acc = new(), _chan = new();
    private readonly Pinned<int> _idxA = new(), _idxB = new(), _idxC = new(), _oy = new(), _ox = new();

    // The state: coefficients on value _value (−1: the input).
    private int _value, _lanes, _ex;
    private bool _paired, _split, _patch;
    private float* _a; private int _cnt; private int* _idx; private int _aBuf;
    private float* _q; private int _qcnt; private int* _qidx; private int _qBuf;
    // Window rows: channels × height × width of the window, and the grid (height, width) of the value it lies on.
    private int _pc, _ph, _pw, _gh, _gw;
    private double* _bsum, _msum;

    public ChainBackward(ChainRun run)
    {
        _run = run; _plan = run.Plan;
        // Index lists never exceed the largest value: allocated once, so their pointers stay distinct and valid.
        int max = _plan.InputSize;
        foreach (var l in _plan.Layers) max = Math.Max(max, Math.Max(l.InSize, l.OutSize));
        _idxA.Get(max); _idxB.Get(max); _idxC.Get(max);
    }

    private static int Pad(int n) => (n + 15) & ~15;

    private float* Take(long size, out int id, int also = -1)
    {
        for (int i = 0; i < _buf.Length; i++)
            if (i != _aBuf && (!_split || i != _qBuf) && i != also) { id = i; return _buf[i].Get(size); }
        throw new InvalidOperationException("ChainBackward: out of buffers.");
    }

    private static int* Ints(Pinned<int> p, long n) => p.Get(Math.Max(1, n));

    /// <summary>An index list that is neither of the two in use (all three are allocated for the largest value).</summary>
    private int* FreeIndex(int* avoid1, int* avoid2)
    {
        int* a = _idxA.Get(0), b = _idxB.Get(0);
        if (a != avoid1 && a != avoid2) return a;
        if (b != avoid1 && b != avoid2) return b;
        return _idxC.Get(0);
    }

    private void Reset(int ex, int lanes)
    {
        _ex = ex; _lanes = lanes;
        _paired = _split = _patch = false;
        _aBuf = _qBuf = -1; _idx = null; _qidx = null;
        _bsum = _bias.Get(2L * lanes); _msum = _mag.Get(2L * lanes);
        // Window origins for up to both signs of every row (Expand copies them, it must not reallocate).
        _oy.Get(2L * lanes); _ox.Get(2L * lanes);
        new Span<double>(_bsum, 2 * lanes).Clear();
        new Span<double>(_msum, 2 * lanes).Clear();
    }

    /// <summary>
    /// CROWN lower bounds of ± element rows[r] (r &lt; count) of value v of example ex: lower[r] bounds the element
    /// from below, upNeg[r] bounds its negation from below.
    /// </summary>
    public void Refine(int ex, int v, int* rows, int count, float* lower, float* upNeg)
    {
        int lanes = Pad(count);
        Reset(ex, lanes);
        _paired = true;
        var layer = _plan.Layers[v];
        if (layer is DenseLayer d)
        {
            int nin = d.InSize;
            _a = Take((long)nin * lanes, out _aBuf);
            ChainKernels.RowsToLanes(ChainBounds.Ptr(d.W), nin, rows, count, lanes, _a);
            _cnt = nin; _idx = null; _value = v - 1;
            if (d.B != null)
            {
                float* b = ChainBounds.Ptr(d.B);
                for (int r = 0; r < count; r++) { _bsum[r] = b[rows[r]]; _msum[r] = Math.Abs(b[rows[r]]); }
            }
            GC.KeepAlive(d);
            Walk(v - 1);
        }
        else if (layer is ConvLayer g)
        {
            int wh = (g.KH - 1) * g.DH + 1, ww = (g.KW - 1) * g.DW + 1, opix = g.OH * g.OW, kk = g.KH * g.KW;
            long size = (long)g.Cin * wh * ww * lanes;
            _a = Take(size, out _aBuf);
            ChainKernels.Clear(_a, size);
            int* oy = Ints(_oy, lanes), ox = Ints(_ox, lanes);
            float* w = ChainBounds.Ptr(g.W);
            float* b = g.B == null ? null : ChainBounds.Ptr(g.B);
            for (int r = 0; r < lanes; r++)
            {
                if (r >= count) { oy[r] = ox[r] = 0; continue; }
                int co = rows[r] / opix, p = rows[r] - co * opix, y = p / g.OW, x = p - y * g.OW;
                oy[r] = y * g.SH - g.PH; ox[r] = x * g.SW - g.PW;
                for (int ci = 0; ci < g.Cin; ci++)
                    for (int kh = 0; kh < g.KH; kh++)
                        for (int kw = 0; kw < g.KW; kw++)
                            _a[((long)(ci * wh + kh * g.DH) * ww + kw * g.DW) * lanes + r] = w[((long)co * g.Cin + ci) * kk + kh * g.KW + kw];
                if (b != null) { _bsum[r] = b[co]; _msum[r] = Math.Abs(b[co]); }
            }
            GC.KeepAlive(g);
            _patch = true; _pc = g.Cin; _ph = wh; _pw = ww; _gh = g.H; _gw = g.Wd; _value = v - 1;
            ChainKernels.MaskWindow(_a, _pc, _ph, _pw, lanes, oy, ox, g.H, g.Wd);
            Walk(v - 1);
        }
        else
        {
            // One-hot rows on the value itself, pushed through its producer by the ordinary steps.
            var shape = layer.OutShape;
            _value = v;
            if (shape.Length == 3 && shape[1] * shape[2] > 1)
            {
                int c = shape[0], h = shape[1], w = shape[2];
                long size = (long)c * lanes;
                _a = Take(size, out _aBuf);
                ChainKernels.Clear(_a, size);
                int* oy = Ints(_oy, lanes), ox = Ints(_ox, lanes);
                for (int r = 0; r < lanes; r++)
                {
                    if (r >= count) { oy[r] = ox[r] = 0; continue; }
                    int ch = rows[r] / (h * w), p = rows[r] - ch * h * w;
                    oy[r] = p / w; ox[r] = p - oy[r] * w;
                    _a[(long)ch * lanes + r] = 1f;
                }
                _patch = true; _pc = c; _ph = 1; _pw = 1; _gh = h; _gw = w;
            }
            else
            {
                int n = layer.OutSize;
                long size = (long)n * lanes;
                _a = Take(size, out _aBuf);
                ChainKernels.Clear(_a, size);
                for (int r = 0; r < count; r++) _a[(long)rows[r] * lanes + r] = 1f;
                _cnt = n; _idx = null;
            }
            Walk(v);
        }
        double* lb = Finish();
        for (int r = 0; r < count; r++) { lower[r] = (float)lb[r]; upNeg[r] = (float)lb[lanes + r]; }
    }

    /// <summary>
    /// CROWN lower bounds of the rows of c ([count, outputs] row-major) times the output of example ex; with
    /// <paramref name="paired"/>, also of their negations (out[count + r]).
    /// </summary>
    public void Final(int ex, float* c, int count, bool paired, float* outLb)
    {
        int lanes = Pad(count);
        Reset(ex, lanes);
        _paired = paired;
        int last = _plan.Layers.Length - 1;
        var layer = _plan.Layers[last];
        int nout = layer.OutSize;
        if (layer is DenseLayer d)
        {
            int nin = d.InSize;
            _a = Take((long)nin * lanes, out _aBuf);
            Sgemm.Run(true, true, nin, count, nout, 1f, ChainBounds.Ptr(d.W), nin, c, nout, 0f, _a, lanes);
            if (count < lanes)
                for (int i = 0; i < nin; i++) ChainKernels.Clear(_a + (long)i * lanes + count, lanes - count);
            if (d.B != null)
            {
                float* b = ChainBounds.Ptr(d.B);
                for (int r = 0; r < count; r++)
                {
                    double s = 0, m = 0;
                    for (int j = 0; j < nout; j++) { double t = (double)c[(long)r * nout + j] * b[j]; s += t; m += Math.Abs(t); }
                    _bsum[r] = s; _msum[r] = m;
                }
            }
            GC.KeepAlive(d);
            _cnt = nin; _idx = null; _value = last - 1;
            Walk(last - 1);
        }
        else
        {
            _a = Take((long)nout * lanes, out _aBuf);
            ChainKernels.MatrixToLanes(c, nout, count, lanes, _a);
            _cnt = nout; _idx = null; _value = last;
            Walk(last);
        }
        double* lb = Finish();
        for (int r = 0; r < count; r++)
        {
            outLb[r] = (float)lb[r];
            if (paired) outLb[count + r] = (float)lb[lanes + r];
        }
    }

    private void Walk(int from)
    {
        for (int k = from; k >= 0; k--)
        {
            switch (_plan.Layers[k])
            {
                case ActLayer: RelaxStep(k); break;
                case DenseLayer d: DenseStep(d); break;
                case ConvLayer g: ConvStep(g); break;
                case ElemLayer: ElemStep(k); break;
            }
            _value = k - 1;
        }
    }

    /// <summary>Paired bias → 2·lanes entries (upper rows are the negation).</summary>
    private void ExpandBias()
    {
        for (int r = 0; r < _lanes; r++) { _bsum[_lanes + r] = -_bsum[r]; _msum[_lanes + r] = _msum[r]; }
    }

    /// <summary>Paired full or window rows → explicit rows for both signs (2·lanes).</summary>
    private void Expand()
    {
        long rows = _patch ? (long)_pc * _ph * _pw : _cnt;
        float* dst = Take(rows * 2 * _lanes, out int id);
        ChainKernels.ExpandPaired(_a, dst, rows, _lanes);
        if (_patch)
        {
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            for (int r = 0; r < _lanes; r++) { oy[_lanes + r] = oy[r]; ox[_lanes + r] = ox[r]; }
        }
        ExpandBias();
        _a = dst; _aBuf = id; _lanes *= 2; _paired = false;
    }

    /// <summary>Split (P shared, Q unstable) rows → explicit full rows of the value (zeros elsewhere).</summary>
    private void Unsplit()
    {
        int n = _plan.Size(_value), l2 = 2 * _lanes;
        float* dst = Take((long)n * l2, out int id);
        ChainKernels.Clear(dst, (long)n * l2);
        for (int j = 0; j < _cnt; j++)
        {
            float* s = _a + (long)j * _lanes, d = dst + (long)_idx[j] * l2;
            for (int r = 0; r < _lanes; r++) { d[r] = s[r]; d[_lanes + r] = -s[r]; }
        }
        for (int j = 0; j < _qcnt; j++)
            Buffer.MemoryCopy(_q + (long)j * l2, dst + (long)_qidx[j] * l2, l2 * 4L, l2 * 4L);
        _split = false; _qBuf = -1;
        _a = dst; _aBuf = id; _cnt = n; _idx = null; _lanes = l2;
    }

    private void RelaxStep(int k)
    {
        int n = _plan.Layers[k].InSize;
        long off = (long)_ex * n;
        byte* cls = _run.Cls[k].Get(0) + off;
        float* dl = _run.Dl[k].Get(0) + off, du = _run.Du[k].Get(0) + off, bu = _run.Bu[k].Get(0) + off;
        if (_split) Unsplit();
        if (_patch)
        {
            if (_paired) Expand();
            RelaxWindow(k, dl, du, bu);
            return;
        }
        float* tb = _tmp.Get(4L * _lanes), tm = tb + 2 * _lanes;
        if (_paired)
        {
            ExpandBias();
            float* p = Take((long)_cnt * _lanes, out int pid);
            float* q = Take((long)_cnt * 2 * _lanes, out int qid, pid);
            int* pIdx = FreeIndex(_idx, null);
            int* qIdx = FreeIndex(_idx, pIdx);
            ChainKernels.RelaxPaired(_a, _cnt, _idx, _lanes, cls, dl, du, bu, p, pIdx, out int pc, q, qIdx, out int qc, _bsum, _msum, tb, tm);
            _a = p; _aBuf = pid; _cnt = pc; _idx = pIdx;
            _q = q; _qBuf = qid; _qcnt = qc; _qidx = qIdx;
            _split = true; _paired = false;
            return;
        }
        float* y = Take((long)_cnt * _lanes, out int yid);
        int* outIdx = FreeIndex(_idx, null);
        int cnt = ChainKernels.Relax(_a, _cnt, _idx, _lanes, cls, dl, du, bu, y, outIdx, _bsum, _msum, tb, tm);
        _a = y; _aBuf = yid; _cnt = cnt; _idx = outIdx;
    }

    private void RelaxWindow(int k, float* dl, float* du, float* bu)
    {
        int h = _gh, w = _gw, lanes = _lanes;
        int* oy = _oy.Get(0), ox = _ox.Get(0);
        float* g = _tmp.Get(5L * lanes), gl = g, gu = g + lanes, gb = g + 2 * lanes, tb = g + 3 * lanes, tm = g + 4 * lanes;
        ChainKernels.Clear(tb, 2L * lanes);
        int inBlock = 0;
        for (int c = 0; c < _pc; c++)
            for (int y = 0; y < _ph; y++)
                for (int x = 0; x < _pw; x++)
                {
                    float* row = _a + ((long)(c * _ph + y) * _pw + x) * lanes;
                    ChainKernels.GatherWindow(dl, c, y, x, lanes, oy, ox, h, w, gl);
                    ChainKernels.GatherWindow(du, c, y, x, lanes, oy, ox, h, w, gu);
                    ChainKernels.GatherWindow(bu, c, y, x, lanes, oy, ox, h, w, gb);
                    for (int r = 0; r < lanes; r++)
                    {
                        float a = row[r];
                        if (a >= 0) row[r] = a * gl[r];
                        else
                        {
                            row[r] = a * gu[r];
                            float t = a * gb[r];
                            tb[r] += t; tm[r] += MathF.Abs(t);
                        }
                    }
                    if (++inBlock == ChainKernels.Block) { ChainKernels.Flush(tb, _bsum, lanes); ChainKernels.Flush(tm, _msum, lanes); inBlock = 0; }
                }
        ChainKernels.Flush(tb, _bsum, lanes); ChainKernels.Flush(tm, _msum, lanes);
    }

    /// <summary>Window rows → full rows of the value (for a layer that needs them, e.g. a Linear).</summary>
    private void WindowToFull()
    {
        int h = _gh, w = _gw, n = _plan.Size(_value), lanes = _lanes;
        int* oy = _oy.Get(0), ox = _ox.Get(0);
        float* dst = Take((long)n * lanes, out int id);
        ChainKernels.Clear(dst, (long)n * lanes);
        for (int c = 0; c < _pc; c++)
            for (int y = 0; y < _ph; y++)
                for (int x = 0; x < _pw; x++)
                {
                    float* row = _a + ((long)(c * _ph + y) * _pw + x) * lanes;
                    for (int r = 0; r < lanes; r++)
                    {
                        int yy = oy[r] + y, xx = ox[r] + x;
                        if ((uint)yy < (uint)h && (uint)xx < (uint)w) dst[((long)(c * h + yy) * w + xx) * lanes + r] += row[r];
                    }
                }
        _patch = false; _a = dst; _aBuf = id; _cnt = n; _idx = null;
    }

    /// <summary>Wᵀ·rows: rows (compact over idx) of the Linear's output → full rows of its input.</summary>
    private void DenseT(DenseLayer d, float* a, int cnt, int* idx, int lanes, float* outp)
    {
        int nin = d.InSize, nout = d.OutSize;
        float* w = ChainBounds.Ptr(d.W);
        if (cnt == 0) ChainKernels.Clear(outp, (long)nin * lanes);
        else if (idx == null && cnt == nout) Sgemm.Run(true, false, nin, lanes, nout, 1f, w, nin, a, lanes, 0f, outp, lanes);
        else
        {
            float* wg = _wg.Get((long)cnt * nin);
            if (idx == null) wg = w;
            else ChainKernels.GatherRows(w, nin, idx, cnt, wg);
            Sgemm.Run(true, false, nin, lanes, cnt, 1f, wg, nin, a, lanes, 0f, outp, lanes);
        }
        GC.KeepAlive(d);
    }

    private void DenseStep(DenseLayer d)
    {
        if (_patch) { if (_paired) Expand(); WindowToFull(); }
        int nin = d.InSize;
        float* tb = _tmp.Get(4L * _lanes), tm = tb + 2 * _lanes;
        float* b = d.B == null ? null : ChainBounds.Ptr(d.B);
        if (_split)
        {
            int l2 = 2 * _lanes;
            if (b != null)
            {
                double* pb = _acc.Get(2L * _lanes), pm = pb + _lanes;
                new Span<double>(pb, 2 * _lanes).Clear();
                ChainKernels.RowsDot(_a, _cnt, _idx, _lanes, b, pb, pm, tb, tm);
                for (int r = 0; r < _lanes; r++) { _bsum[r] += pb[r]; _bsum[_lanes + r] -= pb[r]; _msum[r] += pm[r]; _msum[_lanes + r] += pm[r]; }
                ChainKernels.RowsDot(_q, _qcnt, _qidx, l2, b, _bsum, _msum, tb, tm);
            }
            float* pOut = Take((long)nin * _lanes, out int pid);
            DenseT(d, _a, _cnt, _idx, _lanes, pOut);
            float* qOut = Take((long)nin * l2, out int qid, pid);
            DenseT(d, _q, _qcnt, _qidx, l2, qOut);
            ChainKernels.Combine(pOut, qOut, nin, _lanes);
            _split = false; _qBuf = -1;
            _a = qOut; _aBuf = qid; _cnt = nin; _idx = null; _lanes = l2;
            GC.KeepAlive(d);
            return;
        }
        if (b != null) ChainKernels.RowsDot(_a, _cnt, _idx, _lanes, b, _bsum, _msum, tb, tm);
        float* o = Take((long)nin * _lanes, out int oid);
        DenseT(d, _a, _cnt, _idx, _lanes, o);
        _a = o; _aBuf = oid; _cnt = nin; _idx = null;
        GC.KeepAlive(d);
    }

    private void ConvStep(ConvLayer g)
    {
        float* w = ChainBounds.Ptr(g.W);
        float* b = g.B == null ? null : ChainBounds.Ptr(g.B);
        int opix = g.OH * g.OW, nin = g.InSize;
        float* t = _tmp.Get(2L * _lanes);
        if (_patch)
        {
            if (b != null)
            {
                double* sums = _chan.Get((long)g.Cout * _lanes);
                ChainKernels.ChannelSums(_a, _pc * _ph * _pw, null, _lanes, _ph * _pw, g.Cout, sums, t);
                ChainKernels.ChannelBias(sums, g.Cout, _lanes, b, _bsum, _msum);
            }
            int wh = (_ph - 1) * g.SH + (g.KH - 1) * g.DH + 1, ww = (_pw - 1) * g.SW + (g.KW - 1) * g.DW + 1;
            long size = (long)g.Cin * wh * ww * _lanes;
            float* o = Take(size, out int oid);
            ChainKernels.Clear(o, size);
            ChainKernels.ConvTransposePatch(g, w, _a, _ph, _pw, _lanes, o, wh, ww);
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            for (int r = 0; r < _lanes; r++) { oy[r] = oy[r] * g.SH - g.PH; ox[r] = ox[r] * g.SW - g.PW; }
            _a = o; _aBuf = oid; _pc = g.Cin; _ph = wh; _pw = ww; _gh = g.H; _gw = g.Wd;
            ChainKernels.MaskWindow(_a, _pc, _ph, _pw, _lanes, oy, ox, g.H, g.Wd);
            GC.KeepAlive(g);
            return;
        }
        if (_split)
        {
            int l2 = 2 * _lanes;
            if (b != null)
            {
                double* sp = _chan.Get((long)g.Cout * 3 * _lanes), sq = sp + (long)g.Cout * _lanes;
                ChainKernels.ChannelSums(_a, _cnt, _idx, _lanes, opix, g.Cout, sp, t);
                ChainKernels.ChannelSums(_q, _qcnt, _qidx, l2, opix, g.Cout, sq, t);
                for (int c = 0; c < g.Cout; c++)
                    for (int r = 0; r < _lanes; r++)
                    {
                        double p = sp[(long)c * _lanes + r];
                        sq[(long)c * l2 + r] += p; sq[(long)c * l2 + _lanes + r] -= p;
                    }
                ChainKernels.ChannelBias(sq, g.Cout, l2, b, _bsum, _msum);
            }
            float* pOut = Take((long)nin * _lanes, out int pid);
            ChainKernels.Clear(pOut, (long)nin * _lanes);
            ChainKernels.ConvTransposeFull(g, w, _a, _cnt, _idx, _lanes, pOut);
            float* qOut = Take((long)nin * l2, out int qid, pid);
            ChainKernels.Clear(qOut, (long)nin * l2);
            ChainKernels.ConvTransposeFull(g, w, _q, _qcnt, _qidx, l2, qOut);
            ChainKernels.Combine(pOut, qOut, nin, _lanes);
            _split = false; _qBuf = -1;
            _a = qOut; _aBuf = qid; _cnt = nin; _idx = null; _lanes = l2;
            GC.KeepAlive(g);
            return;
        }
        if (b != null)
        {
            double* sums = _chan.Get((long)g.Cout * _lanes);
            ChainKernels.ChannelSums(_a, _cnt, _idx, _lanes, opix, g.Cout, sums, t);
            ChainKernels.ChannelBias(sums, g.Cout, _lanes, b, _bsum, _msum);
        }
        float* outp = Take((long)nin * _lanes, out int id);
        ChainKernels.Clear(outp, (long)nin * _lanes);
        ChainKernels.ConvTransposeFull(g, w, _a, _cnt, _idx, _lanes, outp);
        _a = outp; _aBuf = id; _cnt = nin; _idx = null;
        GC.KeepAlive(g);
    }

    private void ElemStep(int k)
    {
        if (_split) Unsplit();
        float* s = _run.HasS[k] ? _run.S[k].Get(0) : null;
        float* t = _run.HasT[k] ? _run.T[k].Get(0) : null;
        if (_patch)
        {
            int h = _gh, w = _gw, lanes = _lanes;
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            float* g = _tmp.Get(4L * lanes), gs = g, gt = g + lanes, tb = g + 2 * lanes, tm = g + 3 * lanes;
            ChainKernels.Clear(tb, 2L * lanes);
            int inBlock = 0;
            double* pb = _bsum, pm = _msum;
            for (int c = 0; c < _pc; c++)
                for (int y = 0; y < _ph; y++)
                    for (int x = 0; x < _pw; x++)
                    {
                        float* row = _a + ((long)(c * _ph + y) * _pw + x) * lanes;
                        if (t != null)
                        {
                            ChainKernels.GatherWindow(t, c, y, x, lanes, oy, ox, h, w, gt);
                            for (int r = 0; r < lanes; r++) { float v = row[r] * gt[r]; tb[r] += v; tm[r] += MathF.Abs(v); }
                            if (++inBlock == ChainKernels.Block) { ChainKernels.Flush(tb, pb, lanes); ChainKernels.Flush(tm, pm, lanes); inBlock = 0; }
                        }
                        if (s != null)
                        {
                            ChainKernels.GatherWindow(s, c, y, x, lanes, oy, ox, h, w, gs);
                            for (int r = 0; r < lanes; r++) row[r] *= gs[r];
                        }
                    }
            ChainKernels.Flush(tb, pb, lanes); ChainKernels.Flush(tm, pm, lanes);
            return;
        }
        if (t != null)
        {
            float* tb = _tmp.Get(4L * _lanes), tm = tb + 2 * _lanes;
            ChainKernels.RowsDot(_a, _cnt, _idx, _lanes, t, _bsum, _msum, tb, tm);
        }
        if (s != null) ChainKernels.ScaleRows(_a, _cnt, _idx, _lanes, s, _a);
    }

    /// <summary>Concretises the rows at the input; returns the lower bound per lane (value + bias − margin).</summary>
    private double* Finish()
    {
        if (_split) Unsplit();
        if (_paired) Expand();
        int lanes = _lanes;
        double* acc = _acc.Get(4L * lanes), dot = acc, spread = acc + lanes, mag = acc + 2 * lanes, sq = acc + 3 * lanes;
        new Span<double>(acc, 4 * lanes).Clear();
        var run = _run;
        int n0 = _plan.InputSize;
        bool l2 = run.Norm == PerturbationNorm.L2;
        float* center = run.Ball ? run.X0.Get(0) + (long)_ex * n0 : run.BoxC.Get(0) + (long)_ex * n0;
        float* radius = run.Ball ? null : run.BoxR.Get(0) + (long)_ex * n0;
        float* t = _tmp.Get(4L * lanes);
        if (_patch)
        {
            int h = _gh, w = _gw;
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            float* gc = _wg.Get(2L * lanes), gr = gc + lanes;
            for (int c = 0; c < _pc; c++)
                for (int y = 0; y < _ph; y++)
                    for (int x = 0; x < _pw; x++)
                    {
                        float* row = _a + ((long)(c * _ph + y) * _pw + x) * lanes;
                        ChainKernels.GatherWindow(center, c, y, x, lanes, oy, ox, h, w, gc);
                        if (radius != null) ChainKernels.GatherWindow(radius, c, y, x, lanes, oy, ox, h, w, gr);
                        for (int r = 0; r < lanes; r++)
                        {
                            double a = row[r], aa = Math.Abs(a);
                            dot[r] += a * gc[r]; mag[r] += aa * Math.Abs(gc[r]);
                            spread[r] += radius == null ? aa : aa * gr[r];
                            sq[r] += a * a;
                        }
                    }
        }
        else ChainKernels.Concretise(_a, _cnt, _idx, lanes, center, radius, l2, dot, spread, mag, sq, t, t + lanes, t + 2 * lanes, t + 3 * lanes);
        double rho = run.Rho, alpha = run.Alpha, eps = run.Eps;
        double* lb = _acc.Get(4L * lanes);
        for (int r = 0; r < lanes; r++)
        {
            double sp = l2 ? eps * Math.Sqrt(sq[r] + 1e-30) : radius == null ? eps * spread[r] : spread[r];
            double value = dot[r] - sp + _bsum[r];
            double m = mag[r] + sp + _msum[r];
            lb[r] = value - (m * rho + alpha);
        }
        return lb;
    }
}
