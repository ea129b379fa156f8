using Engine.Cpu;

namespace Engine.Bounds;

/// <summary>
/// CROWN's backward pass of a compiled chain for one example (one worker per thread). The coefficients of the rows
/// being bounded on the current value are held in one of three forms:
/// <list type="bullet">
/// <item>lanes: one row of <c>lanes</c> floats per element of the value, the bound rows in the vector lanes
/// (<see cref="ChainKernels"/>), compacted to the elements listed in an index: after a relaxation, dead neurons
/// drop out of every later product, and a convolution's transpose only forms the elements that the next
/// relaxation keeps;</item>
/// <item>matrix rows: right after one-hot rows went through a Linear, the rows are rows of its weight matrix; the
/// first relaxation reads them in place;</item>
/// <item>windows: rows that start at one neuron of a convolution only reach its receptive field, so each row holds
/// its coefficients on a C×h×w window at its own origin (auto_LiRPA's patches), and a further convolution maps
/// windows to windows with one matrix product (<see cref="ChainKernels.TransferMatrix"/>).</item>
/// </list>
/// Rows can be paired: a row stands for itself and its negation (intermediate bounds need both ends, and CROWN's
/// upper bound is the negated lower bound of −A). Up to the first relaxation both are the same numbers up to sign;
/// after it they share every exactly relaxed element, and that shared part (P) goes through the next linear layer
/// once for both; only the unstable elements (Q) are pushed separately. The numbers are the generic rules': lower
/// slope for A ≥ 0, chord for A &lt; 0, bias and Σ|terms| collected for the same terms, then the concretisation.
/// </summary>
internal sealed unsafe class ChainBackward
{
    private enum Form { Lanes, MatrixRows, Windows }

    /// <summary>Which list of an activation layer a compacted row set follows (so gathered weight rows can be reused).</summary>
    private enum List { Other, Exact, Unstable, Alive }

    private readonly ChainRun _run;
    private readonly ChainPlan _plan;
    private readonly Pinned<float>[] _buf = [new(), new(), new(), new(), new()];
    private readonly Pinned<float> _wg = new(), _tmp = new();
    private readonly Pinned<double> _bias = new(), _mag = new(), _acc = new(), _chan = new();
    private readonly Pinned<int> _idxA = new(), _idxB = new(), _idxC = new(), _map = new(), _oy = new(), _ox = new(), _off = new();
    // Gathered conv2ᵀ entries (ChainKernels.ConvReach) by (layer, list of the rows): every pass of an example through
    // the layer with rows on the same list reuses them.
    private readonly Dictionary<(int Layer, List Kind), Reach> _reach = [];

    private sealed class Reach
    {
        public readonly Pinned<int> Off = new(), Rows = new();
        public readonly Pinned<float> W = new();
        public long Call = -1;
        public int Example = -1;
    }
    // Per Linear layer: its weight rows at the kept elements of the activation above it ([exact; unstable]), for the
    // example and call they were gathered for; every pass of that example through the layer reuses them.
    private readonly Pinned<float>[] _gathered;
    private readonly (long Call, int Example)[] _gatheredFor;

    private Form _form;
    private int _value, _lanes, _ex;
    private bool _paired, _split;
    // Lanes: rows of _lanes floats for the elements _idx (null: all, in order).
    private float* _a; private int _cnt; private int* _idx; private int _aBuf; private List _kind;
    // The unstable part of a split pair (rows of 2·_lanes floats).
    private float* _q; private int _qcnt; private int* _qidx; private int _qBuf; private List _qkind;
    // A split pair pushed through the first layer: P and Q over all input elements, combined by the concretisation.
    private bool _splitAtInput;
    // Matrix rows: lane r is _src[_off[r] + element].
    private float* _src;
    // Windows: _rows rows of _pc·_ph·_pw floats on a _gh×_gw grid, row r at origin (_oy[r], _ox[r]).
    private int _rows, _pc, _ph, _pw, _gh, _gw;
    private double* _bsum, _msum;

    /// <summary>Scratch of the caller (ChainBounds) for row lists and results, per worker.</summary>
    public readonly Pinned<int> Rows = new();
    public readonly Pinned<float> Scratch = new();

    public ChainBackward(ChainRun run)
    {
        _run = run; _plan = run.Plan;
        // Index lists never exceed the largest value: allocated once, so their pointers stay distinct and valid.
        int max = _plan.InputSize;
        foreach (var l in _plan.Layers) max = Math.Max(max, Math.Max(l.InSize, l.OutSize));
        _idxA.Get(max); _idxB.Get(max); _idxC.Get(max);
        _gathered = new Pinned<float>[_plan.Layers.Length];
        _gatheredFor = new (long, int)[_plan.Layers.Length];
        for (int k = 0; k < _gathered.Length; k++) { _gathered[k] = new Pinned<float>(); _gatheredFor[k] = (-1, -1); }
    }

    /// <summary>conv2ᵀ of rows (compact over idx, on list kind) onto the elements outList of the layer's input.</summary>
    private void ConvT(int k, ConvLayer g, float* w, float* a, int cnt, int* idx, List kind, int lanes, int* outList, int outCnt, float* outp)
    {
        Reach? cache = null;
        if (kind != List.Other || idx == null)
        {
            if (!_reach.TryGetValue((k, kind), out cache)) _reach[(k, kind)] = cache = new Reach();
            if (cache.Call == _run.CallId && cache.Example == _ex)
            {
                ChainKernels.ConvTransposeRows(cache.Off.Get(0), cache.Rows.Get(0), cache.W.Get(0), a, lanes, outCnt, outp);
                return;
            }
        }
        long max = g.Reach[^1];
        var off = cache?.Off ?? _map2; var rows = cache?.Rows ?? _rows2; var ws = cache?.W ?? _ws2;
        int* po = off.Get(outCnt + 1), pr = rows.Get(max);
        float* pw = ws.Get(max);
        ChainKernels.ConvReach(g, w, RowMap(idx, cnt, g.OutSize), outList, outCnt, po, pr, pw);
        if (cache != null) { cache.Call = _run.CallId; cache.Example = _ex; }
        ChainKernels.ConvTransposeRows(po, pr, pw, a, lanes, outCnt, outp);
    }

    private readonly Pinned<int> _map2 = new(), _rows2 = new();
    private readonly Pinned<float> _ws2 = new();

    private static int Pad(int n) => (n + 15) & ~15;

    /// <summary>A scratch buffer that holds neither the current rows nor <paramref name="also"/>.</summary>
    private float* Take(long size, out int id, int also = -1)
    {
        for (int i = 0; i < _buf.Length; i++)
            if (i != _aBuf && (!_split || i != _qBuf) && i != also) { id = i; return _buf[i].Get(Math.Max(16, size)); }
        throw new InvalidOperationException("ChainBackward: out of buffers.");
    }

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
        _ex = ex; _lanes = lanes; _form = Form.Lanes;
        _paired = _split = _splitAtInput = false;
        _aBuf = _qBuf = -1; _idx = null; _qidx = null; _kind = _qkind = List.Other;
        _bsum = _bias.Get(2L * lanes); _msum = _mag.Get(2L * lanes);
        new Span<double>(_bsum, 2 * lanes).Clear();
        new Span<double>(_msum, 2 * lanes).Clear();
        _oy.Get(2L * lanes); _ox.Get(2L * lanes);
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
            float* w = ChainBounds.Ptr(d.W);
            if (d.B != null)
            {
                float* b = ChainBounds.Ptr(d.B);
                for (int r = 0; r < count; r++) { _bsum[r] = b[rows[r]]; _msum[r] = Math.Abs(b[rows[r]]); }
            }
            _value = v - 1;
            if (v > 0 && _plan.Layers[v - 1] is ActLayer)
            {
                int* off = _off.Get(lanes);
                for (int r = 0; r < lanes; r++) off[r] = r < count ? rows[r] * nin : -1;
                _src = w; _form = Form.MatrixRows;
            }
            else
            {
                _a = Take((long)nin * lanes, out _aBuf);
                ChainKernels.RowsToLanes(w, nin, rows, count, lanes, _a);
                _cnt = nin; _idx = null;
            }
            Walk(v - 1);
            GC.KeepAlive(d);
        }
        else if (layer is ConvLayer g)
        {
            // Each row is its output neuron's kernel, laid on the neuron's window of the convolution's input.
            int wh = (g.KH - 1) * g.DH + 1, ww = (g.KW - 1) * g.DW + 1, opix = g.OH * g.OW, kk = g.KH * g.KW, win = g.Cin * wh * ww;
            _a = Take((long)lanes * win, out _aBuf);
            ChainKernels.Clear(_a, (long)lanes * win);
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            float* w = ChainBounds.Ptr(g.W);
            float* b = g.B == null ? null : ChainBounds.Ptr(g.B);
            for (int r = 0; r < lanes; r++)
            {
                oy[r] = ox[r] = 0;
                if (r >= count) continue;
                int co = rows[r] / opix, p = rows[r] - co * opix, y = p / g.OW, x = p - y * g.OW;
                oy[r] = y * g.SH - g.PH; ox[r] = x * g.SW - g.PW;
                float* row = _a + (long)r * win;
                for (int ci = 0; ci < g.Cin; ci++)
                    for (int kh = 0; kh < g.KH; kh++)
                        for (int kw = 0; kw < g.KW; kw++)
                            row[(ci * wh + kh * g.DH) * ww + kw * g.DW] = w[((long)co * g.Cin + ci) * kk + kh * g.KW + kw];
                ChainKernels.MaskWindowRow(row, g.Cin, wh, ww, oy[r], ox[r], g.H, g.Wd);
                if (b != null) { _bsum[r] = b[co]; _msum[r] = Math.Abs(b[co]); }
            }
            _form = Form.Windows; _rows = lanes; _pc = g.Cin; _ph = wh; _pw = ww; _gh = g.H; _gw = g.Wd; _value = v - 1;
            Walk(v - 1);
            GC.KeepAlive(g);
        }
        else
        {
            // One-hot rows on the value itself, pushed through its producer by the ordinary steps.
            var shape = layer.OutShape;
            _value = v;
            if (shape.Length == 3 && shape[1] * shape[2] > 1)
            {
                int c = shape[0], h = shape[1], w = shape[2];
                _a = Take((long)lanes * c, out _aBuf);
                ChainKernels.Clear(_a, (long)lanes * c);
                int* oy = _oy.Get(0), ox = _ox.Get(0);
                for (int r = 0; r < lanes; r++)
                {
                    oy[r] = ox[r] = 0;
                    if (r >= count) continue;
                    int ch = rows[r] / (h * w), p = rows[r] - ch * h * w;
                    oy[r] = p / w; ox[r] = p - oy[r] * w;
                    _a[(long)r * c + ch] = 1f;
                }
                _form = Form.Windows; _rows = lanes; _pc = c; _ph = 1; _pw = 1; _gh = h; _gw = w;
            }
            else
            {
                int n = layer.OutSize;
                _a = Take((long)n * lanes, out _aBuf);
                ChainKernels.Clear(_a, (long)n * lanes);
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
                case DenseLayer d: DenseStep(k, d); break;
                case ConvLayer g: ConvStep(k, g); break;
                case ElemLayer: ElemStep(k); break;
            }
            _value = k - 1;
        }
    }

    /// <summary>Paired bias → 2·lanes entries (the upper rows are the negation).</summary>
    private void ExpandBias()
    {
        for (int r = 0; r < _lanes; r++) { _bsum[_lanes + r] = -_bsum[r]; _msum[_lanes + r] = _msum[r]; }
    }

    /// <summary>Paired rows → explicit rows of both signs.</summary>
    private void Expand()
    {
        if (_form == Form.MatrixRows) ToLanes();
        ExpandBias();
        if (_form == Form.Windows)
        {
            int win = _pc * _ph * _pw;
            float* dst = Take(2L * _rows * win, out int id);
            long n = (long)_rows * win;
            Buffer.MemoryCopy(_a, dst, n * 4, n * 4);
            for (long i = 0; i < n; i++) dst[n + i] = -_a[i];
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            for (int r = 0; r < _rows; r++) { oy[_rows + r] = oy[r]; ox[_rows + r] = ox[r]; }
            _a = dst; _aBuf = id; _rows *= 2;
        }
        else
        {
            float* dst = Take((long)_cnt * 2 * _lanes, out int id);
            ChainKernels.ExpandPaired(_a, dst, _cnt, _lanes);
            _a = dst; _aBuf = id;
        }
        _lanes *= 2;
        _paired = false;
    }

    /// <summary>Matrix rows → lanes (all elements of the value).</summary>
    private void ToLanes()
    {
        int n = _plan.Size(_value);
        float* dst = Take((long)n * _lanes, out int id);
        int* off = _off.Get(0);
        for (int i = 0; i < n; i++)
            for (int r = 0; r < _lanes; r++) dst[(long)i * _lanes + r] = off[r] < 0 ? 0f : _src[off[r] + i];
        _a = dst; _aBuf = id; _cnt = n; _idx = null; _kind = List.Other; _form = Form.Lanes;
    }

    /// <summary>Window rows → lanes over all elements of the value (for a layer that needs every element, e.g. a Linear).</summary>
    private void WindowsToLanes()
    {
        int n = _plan.Size(_value), lanes = _rows, win = _pc * _ph * _pw;
        int* oy = _oy.Get(0), ox = _ox.Get(0);
        float* dst = Take((long)n * lanes, out int id);
        ChainKernels.Clear(dst, (long)n * lanes);
        for (int r = 0; r < lanes; r++)
        {
            float* row = _a + (long)r * win;
            for (int c = 0; c < _pc; c++)
                for (int y = 0; y < _ph; y++)
                {
                    int yy = oy[r] + y;
                    if ((uint)yy >= (uint)_gh) continue;
                    for (int x = 0; x < _pw; x++)
                    {
                        int xx = ox[r] + x;
                        if ((uint)xx < (uint)_gw) dst[((long)(c * _gh + yy) * _gw + xx) * lanes + r] = row[(c * _ph + y) * _pw + x];
                    }
                }
        }
        _a = dst; _aBuf = id; _cnt = n; _idx = null; _kind = List.Other; _form = Form.Lanes; _lanes = lanes;
    }

    /// <summary>Split (P shared, Q unstable) rows → explicit lanes over the union of their elements.</summary>
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
        _a = dst; _aBuf = id; _cnt = n; _idx = null; _kind = List.Other; _lanes = l2;
    }

    private void RelaxStep(int k)
    {
        int n = _plan.Layers[k].InSize;
        long off = (long)_ex * n;
        byte* cls = _run.Cls[k].Get(0) + off;
        float* dl = _run.Dl[k].Get(0) + off, du = _run.Du[k].Get(0) + off, bu = _run.Bu[k].Get(0) + off;
        if (_split) Unsplit();
        if (_form == Form.Windows)
        {
            if (_paired) Expand();
            int win = _pc * _ph * _pw;
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            for (int r = 0; r < _rows; r++)
            {
                double b = _bsum[r], m = _msum[r];
                ChainKernels.RelaxWindowRow(_a + (long)r * win, _pc, _ph, _pw, oy[r], ox[r], _gh, _gw, dl, du, bu, ref b, ref m);
                _bsum[r] = b; _msum[r] = m;
            }
            return;
        }
        float* tb = _tmp.Get(5L * _lanes), tm = tb + 2 * _lanes;
        if (_paired)
        {
            ExpandBias();
            int rowsIn = _form == Form.MatrixRows ? n : _cnt;
            float* p = Take((long)rowsIn * _lanes, out int pid);
            float* q = Take((long)rowsIn * 2 * _lanes, out int qid, pid);
            int* pIdx = FreeIndex(_idx, null);
            int* qIdx = FreeIndex(_idx, pIdx);
            int pc, qc;
            // From all elements in order, or the activation's own list, P and Q are its exact and unstable lists.
            bool own = _form == Form.MatrixRows || _idx == null || _kind == List.Alive;
            if (_form == Form.MatrixRows)
                ChainKernels.RelaxPairedRows(_src, _off.Get(0), n, _lanes, cls, dl, du, bu, p, pIdx, out pc, q, qIdx, out qc, _bsum, _msum, tb, tm, tb + 4 * _lanes);
            else
                ChainKernels.RelaxPaired(_a, _cnt, _idx, _lanes, cls, dl, du, bu, p, pIdx, out pc, q, qIdx, out qc, _bsum, _msum, tb, tm);
            _form = Form.Lanes;
            _a = p; _aBuf = pid; _cnt = pc; _idx = pIdx; _kind = own ? List.Exact : List.Other;
            _q = q; _qBuf = qid; _qcnt = qc; _qidx = qIdx; _qkind = own ? List.Unstable : List.Other;
            _split = true; _paired = false;
            return;
        }
        if (_form == Form.MatrixRows) ToLanes();
        float* y = Take((long)_cnt * _lanes, out int yid);
        int* outIdx = FreeIndex(_idx, null);
        bool whole = _idx == null || _kind == List.Alive;
        int cnt = ChainKernels.Relax(_a, _cnt, _idx, _lanes, cls, dl, du, bu, y, outIdx, _bsum, _msum, tb, tm);
        _a = y; _aBuf = yid; _cnt = cnt; _idx = outIdx; _kind = whole ? List.Alive : List.Other;
    }

    /// <summary>Wᵀ·rows: rows (compact over idx) of the Linear's output → rows of all its inputs.</summary>
    private void DenseT(int k, DenseLayer d, float* a, int cnt, int* idx, List kind, int lanes, float* outp)
    {
        int nin = d.InSize, nout = d.OutSize;
        float* w = ChainBounds.Ptr(d.W);
        if (cnt == 0) ChainKernels.Clear(outp, (long)nin * lanes);
        else if (idx == null && cnt == nout) Sgemm.Run(true, false, nin, lanes, nout, 1f, w, nin, a, lanes, 0f, outp, lanes);
        else
        {
            float* wg;
            if (kind != List.Other && k + 1 < _plan.Layers.Length && _plan.Layers[k + 1] is ActLayer)
            {
                int alive = _run.AliveCount[k + 1][_ex], exact = _run.ExactCount[k + 1][_ex];
                if (_gatheredFor[k] != (_run.CallId, _ex))
                {
                    ChainKernels.GatherRows(w, nin, _run.Alive[k + 1].Get(0) + (long)_ex * nout, alive, _gathered[k].Get((long)alive * nin));
                    _gatheredFor[k] = (_run.CallId, _ex);
                }
                wg = _gathered[k].Get(0) + (kind == List.Unstable ? (long)exact * nin : 0);
            }
            else
            {
                wg = _wg.Get((long)cnt * nin);
                ChainKernels.GatherRows(w, nin, idx, cnt, wg);
            }
            Sgemm.Run(true, false, nin, lanes, cnt, 1f, wg, nin, a, lanes, 0f, outp, lanes);
        }
        GC.KeepAlive(d);
    }

    private void DenseStep(int k, DenseLayer d)
    {
        if (_form == Form.Windows) WindowsToLanes();
        if (_form == Form.MatrixRows) ToLanes();
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
            DenseT(k, d, _a, _cnt, _idx, _kind, _lanes, pOut);
            float* qOut = Take((long)nin * l2, out int qid, pid);
            DenseT(k, d, _q, _qcnt, _qidx, _qkind, l2, qOut);
            if (k == 0)
            {
                // The concretisation combines P and Q itself (one pass less over the largest arrays).
                _a = pOut; _aBuf = pid; _cnt = nin; _idx = null; _kind = List.Other;
                _q = qOut; _qBuf = qid; _qcnt = nin; _qidx = null;
                _splitAtInput = true;
                return;
            }
            ChainKernels.Combine(pOut, qOut, nin, _lanes);
            _split = false; _qBuf = -1;
            _a = qOut; _aBuf = qid; _cnt = nin; _idx = null; _kind = List.Other; _lanes = l2;
            GC.KeepAlive(d);
            return;
        }
        if (b != null) ChainKernels.RowsDot(_a, _cnt, _idx, _lanes, b, _bsum, _msum, tb, tm);
        float* o = Take((long)nin * _lanes, out int oid);
        DenseT(k, d, _a, _cnt, _idx, _kind, _lanes, o);
        _a = o; _aBuf = oid; _cnt = nin; _idx = null; _kind = List.Other;
        GC.KeepAlive(d);
    }

    /// <summary>The row of each output element of the convolution among rows listed by idx (−1: none); null when idx lists them all in order.</summary>
    private int* RowMap(int* idx, int cnt, int n, Pinned<int>? store = null)
    {
        if (idx == null) return null;
        int* map = (store ?? _map).Get(n);
        new Span<int>(map, n).Fill(-1);
        for (int j = 0; j < cnt; j++) map[idx[j]] = j;
        return map;
    }

    private void ConvStep(int k, ConvLayer g)
    {
        float* w = ChainBounds.Ptr(g.W);
        float* b = g.B == null ? null : ChainBounds.Ptr(g.B);
        int opix = g.OH * g.OW, nin = g.InSize;
        if (_form == Form.MatrixRows) ToLanes();
        if (_form == Form.Windows)
        {
            if (_run.Transfer.TryGetValue((k, _ph, _pw), out var tm) && tm.Call == _run.CallId)
            {
                ConvWindows(g, w, b, tm.M);
                GC.KeepAlive(g);
                return;
            }
            WindowsToLanes();
        }
        // The elements of the convolution's input that the step below keeps (all unless it is an activation).
        int* outList = null;
        int outCnt = nin;
        if (k > 0 && _plan.Layers[k - 1] is ActLayer)
        {
            outList = _run.Alive[k - 1].Get(0) + (long)_ex * nin;
            outCnt = _run.AliveCount[k - 1][_ex];
        }
        float* t = _tmp.Get(2L * _lanes);
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
            float* pOut = Take((long)outCnt * _lanes, out int pid);
            ConvT(k, g, w, _a, _cnt, _idx, _kind, _lanes, outList, outCnt, pOut);
            float* qOut = Take((long)outCnt * l2, out int qid, pid);
            ConvT(k, g, w, _q, _qcnt, _qidx, _qkind, l2, outList, outCnt, qOut);
            ChainKernels.Combine(pOut, qOut, outCnt, _lanes);
            _split = false; _qBuf = -1;
            _a = qOut; _aBuf = qid; _cnt = outCnt; _idx = outList; _lanes = l2; _kind = outList == null ? List.Other : List.Alive;
            GC.KeepAlive(g);
            return;
        }
        if (b != null)
        {
            double* sums = _chan.Get((long)g.Cout * _lanes);
            ChainKernels.ChannelSums(_a, _cnt, _idx, _lanes, opix, g.Cout, sums, t);
            ChainKernels.ChannelBias(sums, g.Cout, _lanes, b, _bsum, _msum);
        }
        float* outp = Take((long)outCnt * _lanes, out int id);
        ConvT(k, g, w, _a, _cnt, _idx, _kind, _lanes, outList, outCnt, outp);
        _a = outp; _aBuf = id; _cnt = outCnt; _idx = outList; _kind = outList == null ? List.Other : List.Alive;
        GC.KeepAlive(g);
    }

    /// <summary>Window rows through a convolution: bias from the channel sums, then rows·T, new origins, outside zeroed.</summary>
    private void ConvWindows(ConvLayer g, float* w, float* b, float[] tm)
    {
        int win = _pc * _ph * _pw;
        int wh2 = (_ph - 1) * g.SH + (g.KH - 1) * g.DH + 1, ww2 = (_pw - 1) * g.SW + (g.KW - 1) * g.DW + 1, win2 = g.Cin * wh2 * ww2;
        if (b != null)
            for (int r = 0; r < _rows; r++)
            {
                double bs = _bsum[r], ms = _msum[r];
                ChainKernels.ConvBiasWindowRow(_a + (long)r * win, _pc, _ph * _pw, b, ref bs, ref ms);
                _bsum[r] = bs; _msum[r] = ms;
            }
        float* o = Take((long)_rows * win2, out int oid);
        fixed (float* pt = tm) Sgemm.Run(false, false, _rows, win2, win, 1f, _a, win, pt, win2, 0f, o, win2);
        int* oy = _oy.Get(0), ox = _ox.Get(0);
        for (int r = 0; r < _rows; r++)
        {
            oy[r] = oy[r] * g.SH - g.PH; ox[r] = ox[r] * g.SW - g.PW;
            ChainKernels.MaskWindowRow(o + (long)r * win2, g.Cin, wh2, ww2, oy[r], ox[r], g.H, g.Wd);
        }
        _a = o; _aBuf = oid; _pc = g.Cin; _ph = wh2; _pw = ww2; _gh = g.H; _gw = g.Wd;
    }

    private void ElemStep(int k)
    {
        if (_split) Unsplit();
        if (_form == Form.MatrixRows) ToLanes();
        float* s = _run.HasS[k] ? _run.S[k].Get(0) : null;
        float* t = _run.HasT[k] ? _run.T[k].Get(0) : null;
        if (_form == Form.Windows)
        {
            int win = _pc * _ph * _pw;
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            for (int r = 0; r < _rows; r++)
            {
                double b = _bsum[r], m = _msum[r];
                ChainKernels.AffineWindowRow(_a + (long)r * win, _pc, _ph, _pw, oy[r], ox[r], _gh, _gw, s, t, ref b, ref m);
                _bsum[r] = b; _msum[r] = m;
            }
            return;
        }
        if (t != null)
        {
            float* tb = _tmp.Get(4L * _lanes), tm = tb + 2 * _lanes;
            ChainKernels.RowsDot(_a, _cnt, _idx, _lanes, t, _bsum, _msum, tb, tm);
        }
        if (s != null) ChainKernels.ScaleRows(_a, _cnt, _idx, _lanes, s, _a);
    }

    private double* FinishSplit()
    {
        int lanes = 2 * _lanes;
        double* acc = _acc.Get(4L * lanes), dot = acc, spread = acc + lanes, mag = acc + 2 * lanes, sq = acc + 3 * lanes;
        new Span<double>(acc, 4 * lanes).Clear();
        var run = _run;
        int n0 = _plan.InputSize;
        float* center = run.Ball ? run.X0 + (long)_ex * n0 : run.BoxC.Get(0) + (long)_ex * n0;
        float* radius = run.Ball ? null : run.BoxR.Get(0) + (long)_ex * n0;
        ChainKernels.ConcretiseSplit(_a, _q, n0, _lanes, center, radius, run.Norm == PerturbationNorm.L2, dot, spread, mag, sq, _tmp.Get(8L * lanes));
        _split = _splitAtInput = false; _qBuf = -1; _lanes = lanes;
        return Bound(dot, spread, mag, sq, radius == null);
    }

    /// <summary>value + bias − (Σ|terms|·ρ + α) per lane from the concretisation sums.</summary>
    private double* Bound(double* dot, double* spread, double* mag, double* sq, bool uniform)
    {
        var run = _run;
        bool l2 = run.Norm == PerturbationNorm.L2;
        double rho = run.Rho, alpha = run.Alpha, eps = run.Eps;
        double* lb = dot;
        for (int r = 0; r < _lanes; r++)
        {
            double sp = l2 ? eps * Math.Sqrt(sq[r] + 1e-30) : uniform ? eps * spread[r] : spread[r];
            double value = dot[r] - sp + _bsum[r];
            double m = mag[r] + sp + _msum[r];
            lb[r] = value - (m * rho + alpha);
        }
        return lb;
    }

    /// <summary>Concretises the rows at the input; returns the lower bound per lane / row (value + bias − margin).</summary>
    private double* Finish()
    {
        if (_splitAtInput) return FinishSplit();
        if (_split) Unsplit();
        if (_form == Form.MatrixRows) ToLanes();
        if (_paired) Expand();
        int lanes = _lanes;
        double* acc = _acc.Get(4L * lanes), dot = acc, spread = acc + lanes, mag = acc + 2 * lanes, sq = acc + 3 * lanes;
        new Span<double>(acc, 4 * lanes).Clear();
        var run = _run;
        int n0 = _plan.InputSize;
        bool l2 = run.Norm == PerturbationNorm.L2;
        float* center = run.Ball ? run.X0 + (long)_ex * n0 : run.BoxC.Get(0) + (long)_ex * n0;
        float* radius = run.Ball ? null : run.BoxR.Get(0) + (long)_ex * n0;
        if (_form == Form.Windows)
        {
            int win = _pc * _ph * _pw;
            int* oy = _oy.Get(0), ox = _ox.Get(0);
            for (int r = 0; r < _rows; r++)
                ChainKernels.ConcretiseWindowRow(_a + (long)r * win, _pc, _ph, _pw, oy[r], ox[r], _gh, _gw, center, radius,
                                                 out dot[r], out spread[r], out mag[r], out sq[r]);
        }
        else
        {
            float* t = _tmp.Get(4L * lanes);
            ChainKernels.Concretise(_a, _cnt, _idx, lanes, center, radius, l2, dot, spread, mag, sq, t, t + lanes, t + 2 * lanes, t + 3 * lanes);
        }
        return Bound(dot, spread, mag, sq, radius == null);
    }
}
