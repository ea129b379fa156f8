using System.Runtime.Intrinsics;
using Engine.Cpu;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// CPU gradients of the fused CROWN kernels (<see cref="FusedBounds"/>): certified training differentiates through
/// every coefficient tensor of the backward sweep, and the composed rules read each [B, R, n] tensor several times and
/// allocate as many temporaries. These read it once. The products are the composition's, so the results agree with it
/// up to the order of the sums over rows.
/// </summary>
internal static unsafe class FusedBoundsCpu
{
    /// <summary>
    /// Backward of <see cref="FusedBounds.Relax"/> with gy [B, R, n] (gradient of y, or null) and gb [B, R] (of the
    /// bias, or null). ins = [a, lowSlope, upSlope, lowBias, upBias] ([B, 1 or R, n]; a bias absent when its flag is
    /// false). Returns gradients for the inputs that require them.
    /// </summary>
    public static Tensor?[] RelaxBackward(Tensor? gy, Tensor? gb, Tensor[] ins, bool hasLowBias, bool hasUpBias, int batch, int rows, int n)
    {
        var a = ins[0];
        var ga = a.RequiresGrad ? a.NewEmpty(a.Dims) : null;
        Tensor? Acc(int i, bool present) => present && ins[i].RequiresGrad ? Tensor.Zeros(ins[i].Dims, a.Device) : null;
        var gls = Acc(1, true); var gus = Acc(2, true);
        var glb = gb == null ? null : Acc(3, hasLowBias); var gub = gb == null ? null : Acc(4, hasUpBias);
        if (gy == null) { gls = null; gus = null; }
        int lsRows = ins[1].Dims[1], usRows = ins[2].Dims[1];
        int lbRows = hasLowBias ? ins[3].Dims[1] : 1, ubRows = hasUpBias ? ins[4].Dims[1] : 1;
        float* pa = Ptr(a), pls = Ptr(ins[1]), pus = Ptr(ins[2]);
        float* plb = hasLowBias ? Ptr(ins[3]) : null, pub = hasUpBias ? Ptr(ins[4]) : null;
        float* pgy = gy == null ? null : Ptr(gy), pgb = gb == null ? null : Ptr(gb), pga = ga == null ? null : Ptr(ga);
        float* pgls = gls == null ? null : Ptr(gls), pgus = gus == null ? null : Ptr(gus);
        float* pglb = glb == null ? null : Ptr(glb), pgub = gub == null ? null : Ptr(gub);
        // By example: the gradients of per-example operands ([B, 1, n]) are sums over that example's rows only.
        CpuThreads.For(batch, 1, (s, e) =>
        {
            for (int b = s; b < e; b++)
                for (int r = 0; r < rows; r++)
                {
                    long row = (long)b * rows + r;
                    RelaxBackwardRow(pa + row * n, n,
                        pgy == null ? null : pgy + row * n, pgb == null ? 0f : pgb[row],
                        pls + Off(b, r, lsRows, n), pus + Off(b, r, usRows, n),
                        plb == null ? null : plb + Off(b, r, lbRows, n), pub == null ? null : pub + Off(b, r, ubRows, n),
                        pga == null ? null : pga + row * n,
                        pgls == null ? null : pgls + Off(b, r, lsRows, n), pgus == null ? null : pgus + Off(b, r, usRows, n),
                        pglb == null ? null : pglb + Off(b, r, lbRows, n), pgub == null ? null : pgub + Off(b, r, ubRows, n));
                }
        });
        GC.KeepAlive(gy); GC.KeepAlive(gb); GC.KeepAlive(ins);
        return [ga, gls, gus, glb, gub];
    }

    private static long Off(int b, int r, int tRows, int n) => ((long)b * tRows + (tRows == 1 ? 0 : r)) * n;

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
            if (pos)
            {
                if (gls != null) gls[i] += gv;
                if (glb != null) glb[i] += bv;
            }
            else
            {
                if (gus != null) gus[i] += gv;
                if (gub != null) gub[i] += bv;
            }
        }
    }

    /// <summary>
    /// Backward of <see cref="FusedBounds.Dot"/> for g [B, R]: d/da = g·(c − sign(a)·radius) (or sign(a)·eps) in one
    /// pass; the gradients of c and radius (rarely needed: they are usually data) use the composition.
    /// </summary>
    public static Tensor?[] DotBackward(Tensor g, Tensor[] xs, float eps, int batch, int rows, int n)
    {
        var grads = new Tensor?[xs.Length];
        var av = xs[0].Detach();
        var g3 = g.Reshape(batch, rows, 1);
        if (xs[0].RequiresGrad)
        {
            var ga = av.NewEmpty(av.Dims);
            int cStride = xs[1].Dims[0] == 1 && batch > 1 ? 0 : n;
            bool withRadius = xs.Length > 2;
            int rStride = withRadius ? (xs[2].Dims[0] == 1 && batch > 1 ? 0 : n) : 0;
            float* pa = Ptr(av), pc = Ptr(xs[1]), pr = withRadius ? Ptr(xs[2]) : null, pg = Ptr(g), pga = Ptr(ga);
            CpuThreads.For(batch * rows, Math.Max(1, 16384 / Math.Max(1, n)), (s, e) =>
            {
                for (int row = s; row < e; row++)
                {
                    int b = row / rows;
                    float* ar = pa + (long)row * n, gr = pga + (long)row * n, c = pc + (long)b * cStride;
                    float* rad = pr == null ? null : pr + (long)b * rStride;
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
                            (vg * (Vector512.Load(c + i) - spread)).Store(gr + i);
                        }
                    }
                    for (; i < n; i++)
                    {
                        float v = ar[i];
                        float sign = v > 0 ? 1f : v < 0 ? -1f : 0f;
                        gr[i] = gv * (c[i] - sign * (rad == null ? eps : rad[i]));
                    }
                }
            });
            GC.KeepAlive(av); GC.KeepAlive(xs); GC.KeepAlive(g);
            grads[0] = ga;
        }
        if (xs[1].RequiresGrad) grads[1] = (g3 * av).SumToShape(xs[1].Dims);
        if (xs.Length > 2 && xs[2].RequiresGrad) grads[2] = -(g3 * av.Abs()).SumToShape(xs[2].Dims);
        return grads;
    }

    private static float* Ptr(Tensor t) => ((CpuStorage)t.Storage).RawPointer + t.Offset;
}
