using System.Runtime.Intrinsics;
using System.Numerics.Tensors;
using Engine.Tensors;

namespace Engine.Cpu;

// Fused CROWN backward-sweep passes (IKernels.Bounds.cs). Row sums are accumulated in float vectors over blocks of
// BlockLen elements and the block sums in double, so the accumulation error stays a few units of roundoff times Σ|terms|
// (the rounding margin of Engine.Bounds assumes that) however long the rows are.
public sealed unsafe partial class CpuKernels
{
    private const int BoundBlockLen = 256;

    /// <inheritdoc/>
    public void ReluRelaxation(Buf lower, Buf upper, Buf lowSlope, Buf upSlope, Buf upBias, int n)
    {
        float* pl = P(lower), pu = P(upper), pls = P(lowSlope), pus = P(upSlope), pub = P(upBias);
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            int i = s;
            if (Vector512.IsHardwareAccelerated)
            {
                var zero = Vector512<float>.Zero; var one = Vector512.Create(1f);
                for (; i <= e - 16; i += 16)
                {
                    var l = Vector512.Load(pl + i); var u = Vector512.Load(pu + i);
                    var unstable = Vector512.LessThan(l, zero) & Vector512.GreaterThan(u, zero);
                    var active = Vector512.GreaterThanOrEqual(l, zero) & one;
                    var aU = Vector512.ConditionalSelect(unstable, u / Vector512.ConditionalSelect(unstable, u - l, one), active);
                    Vector512.ConditionalSelect(unstable, -aU * l, zero).Store(pub + i);
                    aU.Store(pus + i);
                    Vector512.ConditionalSelect(unstable, Vector512.GreaterThanOrEqual(u, -l) & one, active).Store(pls + i);
                }
            }
            for (; i < e; i++) ReluRelaxationAt(pl[i], pu[i], out pls[i], out pus[i], out pub[i]);
        });
    }

    /// <inheritdoc/>
    public void ReluRelaxationBackward(Buf lower, Buf upper, Buf gUpSlope, Buf gUpBias, Buf gLower, Buf gUpper, int n)
    {
        float* pl = P(lower), pu = P(upper);
        float* gs = gUpSlope.Storage == null ? null : P(gUpSlope), gb = gUpBias.Storage == null ? null : P(gUpBias);
        float* ol = gLower.Storage == null ? null : P(gLower), ou = gUpper.Storage == null ? null : P(gUpper);
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                ReluRelaxationBackwardAt(pl[i], pu[i], gs == null ? 0f : gs[i], gb == null ? 0f : gb[i], out float dl, out float du);
                if (ol != null) ol[i] = dl;
                if (ou != null) ou[i] = du;
            }
        });
    }

    /// <summary>One element of <see cref="ReluRelaxationBackward"/>.</summary>
    internal static void ReluRelaxationBackwardAt(float l, float u, float gUpSlope, float gUpBias, out float gLower, out float gUpper)
    {
        if (!(l < 0f && u > 0f)) { gLower = 0f; gUpper = 0f; return; }
        float d = u - l, s = u / d;
        float g = gUpSlope + gUpBias * -l;
        gLower = g * (s / d) - gUpBias * s;
        gUpper = g * ((1f - s) / d);
    }

    /// <inheritdoc/>
    public void IbpCenterMargin(Buf lower, Buf upper, Buf center, Buf margin, int n, float rho)
    {
        float* pl = P(lower), pu = P(upper), pc = P(center), pm = P(margin);
        float k = 1 + rho;
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            int i = s;
            if (Vector512.IsHardwareAccelerated)
            {
                var half = Vector512.Create(0.5f); var vk = Vector512.Create(k); var vr = Vector512.Create(rho);
                for (; i <= e - 16; i += 16)
                {
                    var lo = Vector512.Load(pl + i); var up = Vector512.Load(pu + i);
                    var cc = (lo + up) * half;
                    cc.Store(pc + i);
                    ((up - lo) * half * vk + Vector512.Abs(cc) * vr).Store(pm + i);
                }
            }
            for (; i < e; i++)
            {
                float cc = (pl[i] + pu[i]) * 0.5f;
                pc[i] = cc;
                pm[i] = (pu[i] - pl[i]) * 0.5f * k + MathF.Abs(cc) * rho;
            }
        });
    }

    /// <inheritdoc/>
    public void IbpCombine(Buf center, Buf rad, Buf bias, int channels, int inner, float rho, float abs, Buf lower, Buf upper, int n)
    {
        if (channels < 1 || inner < 1) throw new ArgumentException($"IbpCombine: channels {channels} and inner {inner} must be at least 1.");
        float* pc = P(center), pr = P(rad), pl = P(lower), ph = P(upper);
        float* pb = bias.Storage == null ? null : P(bias);
        // Rows of `inner` elements share one bias entry (one margin).
        CpuThreads.For((n + inner - 1) / inner, Math.Max(1, Simd.MinChunk / inner), (s, e) =>
        {
            for (int row = s; row < e; row++)
            {
                long o = (long)row * inner;
                int len = (int)Math.Min(inner, n - o);
                float m = pb == null ? abs : MathF.Abs(pb[row % channels]) * rho + abs;
                int j = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var vm = Vector512.Create(m);
                    for (; j <= len - 16; j += 16)
                    {
                        var cc = Vector512.Load(pc + o + j);
                        var rr = Vector512.Load(pr + o + j) + vm;
                        (cc - rr).Store(pl + o + j);
                        (cc + rr).Store(ph + o + j);
                    }
                }
                for (; j < len; j++)
                {
                    float rr = pr[o + j] + m;
                    pl[o + j] = pc[o + j] - rr;
                    ph[o + j] = pc[o + j] + rr;
                }
            }
        });
    }

    /// <inheritdoc/>
    public void IbpRelu(Buf lower, Buf upper, Buf lo, Buf hi, Buf center, Buf margin, int n, float rho)
    {
        float* pl = P(lower), pu = P(upper), plo = P(lo), phi = P(hi), pc = P(center), pm = P(margin);
        float k = 1 + rho;
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            int i = s;
            if (Vector512.IsHardwareAccelerated)
            {
                var zero = Vector512<float>.Zero; var half = Vector512.Create(0.5f); var vk = Vector512.Create(k); var vr = Vector512.Create(rho);
                for (; i <= e - 16; i += 16)
                {
                    var a = Vector512.Max(Vector512.Load(pl + i), zero);
                    var b = Vector512.Max(Vector512.Load(pu + i), zero);
                    a.Store(plo + i);
                    b.Store(phi + i);
                    var cc = (a + b) * half;
                    cc.Store(pc + i);
                    ((b - a) * half * vk + Vector512.Abs(cc) * vr).Store(pm + i);
                }
            }
            for (; i < e; i++)
            {
                float a = MathF.Max(pl[i], 0f), b = MathF.Max(pu[i], 0f);
                plo[i] = a;
                phi[i] = b;
                float cc = (a + b) * 0.5f, rr = (b - a) * 0.5f;
                pc[i] = cc;
                pm[i] = rr * k + MathF.Abs(cc) * rho;
            }
        });
    }

    /// <inheritdoc/>
    public void IbpReluBackward(Buf lower, Buf upper, Buf gLo, Buf gHi, Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho)
    {
        static float* Opt(Buf b) => b.Storage == null ? null : P(b);
        float* xl = P(lower), xu = P(upper), g0 = Opt(gLo), g1 = Opt(gHi), gc = Opt(gCenter), gm = Opt(gMargin);
        float* p0 = Opt(gLower), p1 = Opt(gUpper);
        float hk = 0.5f * (1 + rho);
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            int i = s;
            if (Vector512.IsHardwareAccelerated && g0 == null && g1 == null && gc != null && gm != null && p0 != null && p1 != null)
            {
                var vh = Vector512.Create(0.5f); var vk = Vector512.Create(hk); var zero = Vector512<float>.Zero;
                for (; i <= e - 16; i += 16)
                {
                    var a = Vector512.Load(gc + i) * vh; var b = Vector512.Load(gm + i) * vk;
                    ((a - b) & Vector512.GreaterThan(Vector512.Load(xl + i), zero)).Store(p0 + i);
                    ((a + b) & Vector512.GreaterThan(Vector512.Load(xu + i), zero)).Store(p1 + i);
                }
            }
            for (; i < e; i++)
            {
                float a = gc == null ? 0f : gc[i] * 0.5f, b = gm == null ? 0f : gm[i] * hk;
                float dlo = (g0 == null ? 0f : g0[i]) + (a - b), dhi = (g1 == null ? 0f : g1[i]) + (a + b);
                if (p0 != null) p0[i] = xl[i] > 0 ? dlo : 0f;
                if (p1 != null) p1[i] = xu[i] > 0 ? dhi : 0f;
            }
        });
    }

    /// <inheritdoc/>
    public void IbpCenterMarginBackward(Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho)
    {
        float* a = gCenter.Storage == null ? null : P(gCenter), b = gMargin.Storage == null ? null : P(gMargin);
        float* ol = gLower.Storage == null ? null : P(gLower), ou = gUpper.Storage == null ? null : P(gUpper);
        float hk = 0.5f * (1 + rho);
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            int i = s;
            if (Vector512.IsHardwareAccelerated && a != null && b != null && ol != null && ou != null)
            {
                var vh = Vector512.Create(0.5f); var vk = Vector512.Create(hk);
                for (; i <= e - 16; i += 16)
                {
                    var x = Vector512.Load(a + i) * vh; var y = Vector512.Load(b + i) * vk;
                    (x - y).Store(ol + i);
                    (x + y).Store(ou + i);
                }
            }
            for (; i < e; i++)
            {
                float x = a == null ? 0f : a[i] * 0.5f, y = b == null ? 0f : b[i] * hk;
                if (ol != null) ol[i] = x - y;
                if (ou != null) ou[i] = x + y;
            }
        });
    }

    /// <inheritdoc/>
    public void IbpCombineBackward(Buf gLower, Buf gUpper, Buf gCenter, Buf gRad, int n)
    {
        float* a = P(gLower), b = P(gUpper);
        float* oc = gCenter.Storage == null ? null : P(gCenter), or = gRad.Storage == null ? null : P(gRad);
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            int i = s;
            if (Vector512.IsHardwareAccelerated && oc != null && or != null)
                for (; i <= e - 16; i += 16)
                {
                    var x = Vector512.Load(a + i); var y = Vector512.Load(b + i);
                    (x + y).Store(oc + i);
                    (y - x).Store(or + i);
                }
            for (; i < e; i++)
            {
                if (oc != null) oc[i] = a[i] + b[i];
                if (or != null) or[i] = b[i] - a[i];
            }
        });
    }

    /// <inheritdoc/>
    public void BoundMerge(Buf ibpLower, Buf ibpUpper, Buf rows, int rowCount, int[] index, Buf lower, Buf upper, int n)
    {
        ArgumentNullException.ThrowIfNull(index);
        if (n < 0 || index.Length != 2 * (long)n) throw new ArgumentException($"BoundMerge: {index.Length} indices for {n} elements (2n wanted).");
        IndexChecks.InRange(index, -1, rowCount - 1L, nameof(BoundMerge), "index");
        float* pl = P(ibpLower), pu = P(ibpUpper), pr = rowCount == 0 ? null : P(rows), ol = P(lower), ou = P(upper);
        CpuThreads.For(n, Simd.MinChunk, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                int kl = index[i], ku = index[n + i];
                ol[i] = kl < 0 ? pl[i] : MathF.Max(pr[kl], pl[i]);
                ou[i] = ku < 0 ? pu[i] : MathF.Min(-pr[ku], pu[i]);
            }
        });
    }

    /// <summary>One element of <see cref="ReluRelaxation"/> (also its scalar reference).</summary>
    internal static void ReluRelaxationAt(float l, float u, out float lowSlope, out float upSlope, out float upBias)
    {
        bool unstable = l < 0f && u > 0f;
        float active = l >= 0f ? 1f : 0f;
        upSlope = unstable ? u / (u - l) : active;
        upBias = unstable ? -upSlope * l : 0f;
        lowSlope = unstable ? (u >= -l ? 1f : 0f) : active;
    }

    /// <inheritdoc/>
    public void BoundRelax(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                           Buf upBias, int upBiasRows, Buf y, Buf bias, Buf mag, int batch, int rows, int n, bool accumulate)
    {
        float* pa = P(a), pls = P(lowSlope), pus = P(upSlope), py = P(y);
        float* plb = lowBias.Storage == null ? null : P(lowBias), pub = upBias.Storage == null ? null : P(upBias);
        bool withBias = plb != null || pub != null;
        float* pbias = withBias ? P(bias) : null, pmag = withBias ? P(mag) : null;
        int total = batch * rows;
        CpuThreads.For(total, Math.Max(1, 16384 / Math.Max(1, n)), (s, e) =>
        {
            for (int row = s; row < e; row++)
            {
                int b = row / rows, r = row % rows;
                float* ar = pa + (long)row * n, yr = py + (long)row * n;
                float* ls = pls + RowOffset(b, r, lowSlopeRows, n), us = pus + RowOffset(b, r, upSlopeRows, n);
                float* lb = plb == null ? null : plb + RowOffset(b, r, lowBiasRows, n);
                float* ub = pub == null ? null : pub + RowOffset(b, r, upBiasRows, n);
                var (bs, bm) = RelaxRow(ar, ls, us, lb, ub, yr, n);
                if (withBias) { pbias[row] = accumulate ? pbias[row] + bs : bs; pmag[row] = accumulate ? pmag[row] + bm : bm; }
            }
        });
    }

    private static long RowOffset(int b, int r, int tRows, int n) => ((long)b * tRows + (tRows == 1 ? 0 : r)) * n;

    private static (float Bias, float Mag) RelaxRow(float* a, float* ls, float* us, float* lb, float* ub, float* y, int n)
    {
        double bias = 0, mag = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var zero = Vector512<float>.Zero;
            while (i <= n - Vector512<float>.Count)
            {
                int last = Math.Min(n - Vector512<float>.Count, i + BoundBlockLen - Vector512<float>.Count);
                var vb = zero; var vm = zero;
                for (; i <= last; i += Vector512<float>.Count)
                {
                    var v = Vector512.Load(a + i);
                    var pos = Vector512.GreaterThanOrEqual(v, zero);
                    Vector512.Store(v * Vector512.ConditionalSelect(pos, Vector512.Load(ls + i), Vector512.Load(us + i)), y + i);
                    if (lb != null || ub != null)
                    {
                        var l = lb == null ? zero : Vector512.Load(lb + i);
                        var u = ub == null ? zero : Vector512.Load(ub + i);
                        var t = v * Vector512.ConditionalSelect(pos, l, u);
                        vb += t; vm += Vector512.Abs(t);
                    }
                }
                bias += Vector512.Sum(vb); mag += Vector512.Sum(vm);
            }
        }
        for (; i < n; i++)
        {
            float v = a[i];
            bool pos = v >= 0;
            y[i] = v * (pos ? ls[i] : us[i]);
            float bv = pos ? (lb == null ? 0f : lb[i]) : (ub == null ? 0f : ub[i]);
            float t = v * bv;
            bias += t; mag += MathF.Abs(t);
        }
        return ((float)bias, (float)mag);
    }

    /// <inheritdoc/>
    public void BoundRelaxBackward(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                                   Buf upBias, int upBiasRows, Buf gy, Buf gBias, Buf gA, Buf gLowSlope, Buf gUpSlope, Buf gLowBias,
                                   Buf gUpBias, int batch, int rows, int n)
    {
        static float* Opt(Buf b) => b.Storage == null ? null : P(b);
        float* pa = P(a), pls = P(lowSlope), pus = P(upSlope), plb = Opt(lowBias), pub = Opt(upBias);
        float* pgy = Opt(gy), pgb = Opt(gBias), pga = Opt(gA);
        float* pgls = Opt(gLowSlope), pgus = Opt(gUpSlope), pglb = Opt(gLowBias), pgub = Opt(gUpBias);
        // The operands' gradients are sums over rows: start from zero.
        if (pgls != null) new Span<float>(pgls, batch * lowSlopeRows * n).Clear();
        if (pgus != null) new Span<float>(pgus, batch * upSlopeRows * n).Clear();
        if (pglb != null) new Span<float>(pglb, batch * lowBiasRows * n).Clear();
        if (pgub != null) new Span<float>(pgub, batch * upBiasRows * n).Clear();
        // By example: the gradients of per-example operands ([B, 1, n]) are sums over that example's rows only, in order.
        CpuThreads.For(batch, 1, (s, e) =>
        {
            for (int b = s; b < e; b++)
                for (int r = 0; r < rows; r++)
                {
                    long row = (long)b * rows + r;
                    RelaxBackwardRow(pa + row * n, n,
                        pgy == null ? null : pgy + row * n, pgb == null ? 0f : pgb[row],
                        pls + RowOffset(b, r, lowSlopeRows, n), pus + RowOffset(b, r, upSlopeRows, n),
                        plb == null ? null : plb + RowOffset(b, r, lowBiasRows, n), pub == null ? null : pub + RowOffset(b, r, upBiasRows, n),
                        pga == null ? null : pga + row * n,
                        pgls == null ? null : pgls + RowOffset(b, r, lowSlopeRows, n), pgus == null ? null : pgus + RowOffset(b, r, upSlopeRows, n),
                        pglb == null ? null : pglb + RowOffset(b, r, lowBiasRows, n), pgub == null ? null : pgub + RowOffset(b, r, upBiasRows, n));
                }
        });
    }

    /// <summary>One row of <see cref="BoundRelaxBackward"/>; the operands' gradients are added to (every element, 0 where the other side applies).</summary>
    private static void RelaxBackwardRow(float* a, int n, float* gy, float gb, float* ls, float* us, float* lb, float* ub,
                                         float* ga, float* gls, float* gus, float* glb, float* gub)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var zero = Vector512<float>.Zero;
            var vgb = Vector512.Create(gb);
            for (; i <= n - 16; i += 16)
            {
                var v = Vector512.Load(a + i);
                var pos = Vector512.GreaterThanOrEqual(v, zero);
                var g = gy == null ? zero : Vector512.Load(gy + i);
                if (ga != null)
                {
                    var t = g * Vector512.ConditionalSelect(pos, Vector512.Load(ls + i), Vector512.Load(us + i));
                    if (lb != null || ub != null)
                        t += vgb * Vector512.ConditionalSelect(pos, lb == null ? zero : Vector512.Load(lb + i), ub == null ? zero : Vector512.Load(ub + i));
                    t.Store(ga + i);
                }
                var gv = g * v;
                if (gls != null) (Vector512.Load(gls + i) + Vector512.ConditionalSelect(pos, gv, zero)).Store(gls + i);
                if (gus != null) (Vector512.Load(gus + i) + Vector512.ConditionalSelect(pos, zero, gv)).Store(gus + i);
                var bv = vgb * v;
                if (glb != null) (Vector512.Load(glb + i) + Vector512.ConditionalSelect(pos, bv, zero)).Store(glb + i);
                if (gub != null) (Vector512.Load(gub + i) + Vector512.ConditionalSelect(pos, zero, bv)).Store(gub + i);
            }
        }
        for (; i < n; i++)
        {
            float v = a[i];
            bool pos = v >= 0;
            float g = gy == null ? 0f : gy[i];
            if (ga != null)
            {
                float t = g * (pos ? ls[i] : us[i]);
                if (lb != null || ub != null) t += gb * (pos ? (lb == null ? 0f : lb[i]) : (ub == null ? 0f : ub[i]));
                ga[i] = t;
            }
            float gv = g * v, bv = gb * v;
            if (gls != null) gls[i] += pos ? gv : 0f;
            if (gus != null) gus[i] += pos ? 0f : gv;
            if (glb != null) glb[i] += pos ? bv : 0f;
            if (gub != null) gub[i] += pos ? 0f : bv;
        }
    }

    /// <inheritdoc/>
    public void BoundDotBackward(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf g, Buf gA, int batch, int rows, int n)
    {
        float* pa = P(a), pc = P(c), pr = radius.Storage == null ? null : P(radius), pg = P(g), pga = P(gA);
        CpuThreads.For(batch * rows, Math.Max(1, 16384 / Math.Max(1, n)), (s, e) =>
        {
            for (int row = s; row < e; row++)
            {
                int b = row / rows;
                float* ar = pa + (long)row * n, gr = pga + (long)row * n, cr = pc + (long)b * cBatchStride;
                float* rad = pr == null ? null : pr + (long)b * radiusBatchStride;
                float gv = pg[row];
                int i = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var vg = Vector512.Create(gv); var ve = Vector512.Create(eps);
                    var one = Vector512.Create(1f); var zero = Vector512<float>.Zero;
                    for (; i <= n - 16; i += 16)
                    {
                        var v = Vector512.Load(ar + i);
                        var sign = Vector512.ConditionalSelect(Vector512.GreaterThan(v, zero), one, zero)
                                 - Vector512.ConditionalSelect(Vector512.LessThan(v, zero), one, zero);
                        var spread = sign * (rad == null ? ve : Vector512.Load(rad + i));
                        (vg * (Vector512.Load(cr + i) - spread)).Store(gr + i);
                    }
                }
                for (; i < n; i++)
                {
                    float v = ar[i];
                    float sign = v > 0 ? 1f : v < 0 ? -1f : 0f;
                    gr[i] = gv * (cr[i] - sign * (rad == null ? eps : rad[i]));
                }
            }
        });
    }

    /// <inheritdoc/>
    public void BoundDot(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf value, Buf mag, int batch, int rows, int n, bool accumulate)
    {
        float* pa = P(a), pc = P(c), pv = P(value), pm = P(mag);
        float* pr = radius.Storage == null ? null : P(radius);
        CpuThreads.For(batch * rows, Math.Max(1, 16384 / Math.Max(1, n)), (s, e) =>
        {
            for (int row = s; row < e; row++)
            {
                int b = row / rows;
                var (d, m, sp) = DotRow(pa + (long)row * n, pc + (long)b * cBatchStride, pr == null ? null : pr + (long)b * radiusBatchStride, n);
                if (pr == null) sp *= eps;
                float v = (float)(d - sp), mg = (float)(m + sp);
                pv[row] = accumulate ? pv[row] + v : v; pm[row] = accumulate ? pm[row] + mg : mg;
            }
        });
    }

    /// <summary>(Σ a·c, Σ |a|·|c|, Σ |a|·r) — or Σ |a| for the last when r is null.</summary>
    private static (double Dot, double Mag, double Spread) DotRow(float* a, float* c, float* r, int n)
    {
        double dot = 0, mag = 0, spread = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var zero = Vector512<float>.Zero;
            while (i <= n - Vector512<float>.Count)
            {
                int last = Math.Min(n - Vector512<float>.Count, i + BoundBlockLen - Vector512<float>.Count);
                var vd = zero; var vm = zero; var vs = zero;
                for (; i <= last; i += Vector512<float>.Count)
                {
                    var v = Vector512.Load(a + i);
                    var cv = Vector512.Load(c + i);
                    var av = Vector512.Abs(v);
                    vd = Vector512.FusedMultiplyAdd(v, cv, vd);
                    vm = Vector512.FusedMultiplyAdd(av, Vector512.Abs(cv), vm);
                    vs = r == null ? vs + av : Vector512.FusedMultiplyAdd(av, Vector512.Load(r + i), vs);
                }
                dot += Vector512.Sum(vd); mag += Vector512.Sum(vm); spread += Vector512.Sum(vs);
            }
        }
        for (; i < n; i++)
        {
            float v = a[i], av = MathF.Abs(v);
            dot += v * c[i]; mag += av * MathF.Abs(c[i]);
            spread += r == null ? av : av * r[i];
        }
        return (dot, mag, spread);
    }

    /// <inheritdoc/>
    public void BoundConvSelect(Buf w, Buf code, Buf y, int count, in Conv2dGeometry g)
    {
        float* pw = P(w), pc = P(code), py = P(y);
        var geo = g;
        long inImage = (long)geo.InChannels * geo.InPixels;
        CpuThreads.For(count, Math.Max(1, 8192 / (int)Math.Max(1, inImage)), (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                float* yr = py + i * inImage;
                new Span<float>(yr, (int)inImage).Clear();
                int c = (int)pc[i];
                if (c == 0) continue;
                float sign = c > 0 ? 1f : -1f;
                int p = Math.Abs(c) - 1, outPix = geo.OutH * geo.OutW;
                int co = p / outPix, oh = p % outPix / geo.OutW, ow = p % geo.OutW;
                int cg = geo.GroupInChannels, gi = co / geo.GroupOutChannels;
                float* wk = pw + (long)co * cg * geo.KernelH * geo.KernelW;
                for (int ci = 0; ci < cg; ci++)
                    for (int kh = 0; kh < geo.KernelH; kh++)
                    {
                        int ih = oh * geo.StrideH - geo.PadH + kh * geo.DilationH;
                        if ((uint)ih >= (uint)geo.Height) continue;
                        float* yrow = yr + ((long)(gi * cg + ci) * geo.Height + ih) * geo.Width;
                        float* wrow = wk + (ci * geo.KernelH + kh) * geo.KernelW;
                        for (int kw = 0; kw < geo.KernelW; kw++)
                        {
                            int iw = ow * geo.StrideW - geo.PadW + kw * geo.DilationW;
                            if ((uint)iw < (uint)geo.Width) yrow[iw] = sign * wrow[kw];
                        }
                    }
            }
        });
    }

    /// <inheritdoc/>
    public void BoundSelectRows(Buf x, int xRows, int cols, int[] code, int divisor, Buf y, Buf abs)
    {
        CheckSelectRows(xRows, cols, code, divisor, nameof(BoundSelectRows));
        float* px = P(x), py = P(y), pa = abs.Storage == null ? null : P(abs);
        CpuThreads.For(code.Length, Math.Max(1, Simd.MinChunk / Math.Max(1, cols)), (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                var yr = new Span<float>(py + (long)i * cols, cols);
                int c = code[i];
                if (c == 0) yr.Clear();
                else TensorPrimitives.Multiply(new ReadOnlySpan<float>(px + (long)((Math.Abs(c) - 1) / divisor) * cols, cols), c > 0 ? 1f : -1f, yr);
                if (pa != null) TensorPrimitives.Abs(yr, new Span<float>(pa + (long)i * cols, cols));
            }
        });
    }

    /// <summary>The argument check of <see cref="BoundSelectRows"/> (shared with the other devices' versions).</summary>
    internal static void CheckSelectRows(int xRows, int cols, int[] code, int divisor, string kernel)
    {
        ArgumentNullException.ThrowIfNull(code);
        if (xRows < 0 || cols < 0 || divisor < 1) throw new ArgumentException($"{kernel}: bad sizes (xRows {xRows}, cols {cols}, divisor {divisor}).");
        // (|c| − 1) / divisor < xRows exactly when |c| ≤ xRows·divisor.
        long limit = (long)xRows * divisor;
        IndexChecks.InRange(code, -limit, limit, kernel, $"code (rows {xRows}, divisor {divisor})");
    }

    /// <inheritdoc/>
    public void BoundConvTranspose(Buf a, Buf w, Buf dx, in Conv2dGeometry g)
    {
        if (!Vector512.IsHardwareAccelerated) { Conv2dBackwardInput(a, w, dx, g); return; }
        const int L = 16;
        float* pa = P(a), pw = P(w), pdx = P(dx);
        var geo = g;
        int outN = geo.OutChannels * geo.OutH * geo.OutW, inN = geo.InChannels * geo.Height * geo.Width;
        int chunks = (geo.Batch + L - 1) / L;
        var (tapStart, tapDst, tapW) = ConvTaps(geo);
        CpuThreads.For(chunks, 1, (s, e) =>
        {
            var atArr = ScratchPool.Rent((long)outN * L);
            var xtArr = ScratchPool.Rent((long)inN * L);
            float* at = ScratchPool.Ptr(atArr), xt = ScratchPool.Ptr(xtArr);
            for (int chunk = s; chunk < e; chunk++)
            {
                int r0 = chunk * L, nr = Math.Min(L, geo.Batch - r0);
                // Images to lanes: at[p, l] = a[r0 + l, p].
                if (nr < L) new Span<float>(at, outN * L).Clear();
                for (int l = 0; l < nr; l++)
                {
                    float* src = pa + (long)(r0 + l) * outN;
                    for (int p = 0; p < outN; p++) at[(long)p * L + l] = src[p];
                }
                new Span<float>(xt, inN * L).Clear();
                ConvTransposeLanes(at, pw, xt, geo, tapStart, tapDst, tapW);
                for (int l = 0; l < nr; l++)
                {
                    float* dst = pdx + (long)(r0 + l) * inN;
                    for (int q = 0; q < inN; q++) dst[q] = xt[(long)q * L + l];
                }
            }
            ScratchPool.Return(atArr); ScratchPool.Return(xtArr);
        });
    }

    /// <summary>xt[ci, ih, iw, :] += W[co, ci, kh, kw] · at[co, oh, ow, :] over every tap (16 lanes).</summary>
    private static void ConvTransposeLanes(float* at, float* pw, float* xt, in Conv2dGeometry geo, int[] tapStart, int[] tapDst, int[] tapW)
    {
        const int L = 16;
        int cg = geo.GroupInChannels, og = geo.GroupOutChannels, kk = geo.KernelH * geo.KernelW, outPix = geo.OutH * geo.OutW;
        long plane = (long)geo.Height * geo.Width * L;
        for (int co = 0; co < geo.OutChannels; co++)
        {
            float* wco = pw + (long)co * cg * kk;
            float* xg = xt + (long)(co / og * cg) * plane;
            float* aco = at + (long)co * outPix * L;
            for (int pix = 0; pix < outPix; pix++)
            {
                var va = *(Vector512<float>*)(aco + (long)pix * L);
                if (va == Vector512<float>.Zero) continue;
                int t0 = tapStart[pix], t1 = tapStart[pix + 1];
                for (int ci = 0; ci < cg; ci++)
                {
                    float* wc = wco + ci * kk;
                    float* xc = xg + ci * plane;
                    for (int t = t0; t < t1; t++)
                    {
                        var dst = (Vector512<float>*)(xc + tapDst[t]);
                        *dst = Vector512.FusedMultiplyAdd(Vector512.Create(wc[tapW[t]]), va, *dst);
                    }
                }
            }
        }
    }

    /// <summary>For each output pixel, its in-range kernel taps: (offset of the input element × 16, tap index), CSR.</summary>
    private static (int[] Start, int[] Dst, int[] W) ConvTaps(in Conv2dGeometry geo)
    {
        int outPix = geo.OutH * geo.OutW;
        var start = new int[outPix + 1];
        var dst = new List<int>(); var wi = new List<int>();
        for (int oh = 0; oh < geo.OutH; oh++)
            for (int ow = 0; ow < geo.OutW; ow++)
            {
                for (int y = 0; y < geo.KernelH; y++)
                {
                    int ih = oh * geo.StrideH - geo.PadH + y * geo.DilationH;
                    if ((uint)ih >= (uint)geo.Height) continue;
                    for (int x = 0; x < geo.KernelW; x++)
                    {
                        int iw = ow * geo.StrideW - geo.PadW + x * geo.DilationW;
                        if ((uint)iw >= (uint)geo.Width) continue;
                        dst.Add((ih * geo.Width + iw) * 16); wi.Add(y * geo.KernelW + x);
                    }
                }
                start[oh * geo.OutW + ow + 1] = dst.Count;
            }
        return (start, [.. dst], [.. wi]);
    }
}
