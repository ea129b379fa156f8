using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Engine.Autograd;
using Engine.Cpu;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// The CPU fusion of IBP's last step with a specification folded into the last Linear layer (Bounds.Ibp): for each
/// example b and spec row s, with d = C[b, s]·W (the row's combination of the layer's weight rows),
/// lower/upper = d·c + C[b, s]·bias ∓ (|d|·m + ρ·|C[b, s]|·|bias| + α), where (c, m) is the centre and
/// rounding-widened radius the preceding ReLU prepared (<see cref="PreparedCenter"/>). It is the composition's formula
/// (cw = C·W, then <see cref="BoundRules.Affine"/> over the batched matrix cw and <see cref="IbpFused.Combine"/>), margin
/// included; its sums run in another order, so results agree to float rounding, not bit for bit. The composition runs
/// ~8 small GEMMs and as many element-wise passes per call (forward and backward), each small enough that its fixed
/// costs and the caches the convolutions evicted dominate: here one pass per example each way, d recomputed in the
/// backward pass from W instead of kept. Differentiable in c, m, W and bias (C is a constant; the bias margin is
/// detached, as in the composition). Other devices use the composition.
/// </summary>
internal static unsafe class IbpSpecFold
{
    /// <summary>
    /// True when the fusion applies: CPU tensors, c and m [B, F], w [K, F], spec [B, S, K], bias [K] or none, and
    /// features few enough for a stack buffer.
    /// </summary>
    public static bool Applies(Tensor c, Tensor m, Tensor w, Tensor? bias, Tensor spec)
    {
        if (c.Device != Device.Cpu || m.Device != Device.Cpu || w.Device != Device.Cpu || spec.Device != Device.Cpu || (bias != null && bias.Device != Device.Cpu)) return false;
        if (c.Rank != 2 || w.Rank != 2 || spec.Rank != 3 || !ShapeUtil.SameShape(c.Dims, m.Dims)) return false;
        int b = c.Dims[0], f = c.Dims[1], k = w.Dims[0];
        if (w.Dims[1] != f || spec.Dims[0] != b || spec.Dims[2] != k || f < 1 || f > MaxFeatures || k < 1) return false;
        return bias == null || (bias.Rank == 1 && bias.Dims[0] == k);
    }

    /// <summary>Largest feature count (the stack buffer holds one d of this length).</summary>
    public const int MaxFeatures = 4096;

    /// <summary>The (lower, upper) bounds [B, S] of spec·(W h + bias) over the interval (c, m) of h; see the class summary.</summary>
    public static (Tensor Lower, Tensor Upper) Compute(Tensor c, Tensor m, Tensor w, Tensor? bias, Tensor spec, float rho, float alpha)
    {
        int batch = c.Dims[0], features = c.Dims[1], classes = w.Dims[0], specs = spec.Dims[1];
        var lower = c.NewEmpty([batch, specs]);
        var upper = c.NewEmpty([batch, specs]);
        float* pc = Ptr(c), pm = Ptr(m), pw = Ptr(w), pb = bias == null ? null : Ptr(bias), ps = Ptr(spec), pl = Ptr(lower), pu = Ptr(upper);
        CpuThreads.For(batch, 8, (b0, b1) =>
        {
            float* d = stackalloc float[features];
            for (int b = b0; b < b1; b++)
                for (int s = 0; s < specs; s++)
                {
                    long row = (long)b * specs + s;
                    float* cs = ps + row * classes;
                    Combination(cs, pw, classes, features, d);
                    var (dot, rad) = DotAndAbsDot(d, pc + (long)b * features, pm + (long)b * features, features);
                    float cb = 0f, bm = 0f;
                    if (pb != null)
                        for (int k = 0; k < classes; k++) { cb += cs[k] * pb[k]; bm += MathF.Abs(cs[k]) * MathF.Abs(pb[k]); }
                    float center = dot + cb, half = rad + (pb != null ? bm * rho + alpha : alpha);
                    pl[row] = center - half;
                    pu[row] = center + half;
                }
        });
        GC.KeepAlive(c); GC.KeepAlive(m); GC.KeepAlive(w); GC.KeepAlive(bias); GC.KeepAlive(spec);
        Tensor[] inputs = bias == null ? [c, m, w] : [c, m, w, bias];
        GradRecorder.RecordMulti([lower, upper], inputs, (g, ins) => Backward(g[0], g[1], ins, spec, batch, specs, classes, features), "IbpSpecFold");
        return (lower, upper);
    }

    // Gradients of (lower, upper) with respect to c, m, W and bias: per (b, s), gc = gL + gU on the centre and
    // gr = gU − gL on the radius; dc += gc·d, dm += gr·|d|, dd = gc·c + gr·sign(d)·m, dW[k] += C[b, s, k]·dd,
    // dbias[k] += C[b, s, k]·gc (the bias margin is detached).
    private static Tensor?[] Backward(Tensor? gl, Tensor? gu, Tensor[] ins, Tensor spec, int batch, int specs, int classes, int features)
    {
        var (c, m, w) = (ins[0], ins[1], ins[2]);
        var bias = ins.Length > 3 ? ins[3] : null;
        var dc = c.RequiresGrad ? Tensor.Zeros(c.Dims, c.Device) : null;
        var dm = m.RequiresGrad ? Tensor.Zeros(m.Dims, m.Device) : null;
        var dw = w.RequiresGrad ? Tensor.Zeros(w.Dims, w.Device) : null;
        var db = bias is { RequiresGrad: true } ? Tensor.Zeros(bias.Dims, bias.Device) : null;
        float* pgl = gl == null ? null : Ptr(gl), pgu = gu == null ? null : Ptr(gu);
        float* pc = Ptr(c), pm = Ptr(m), pw = Ptr(w), ps = Ptr(spec);
        float* odc = dc == null ? null : Ptr(dc), odm = dm == null ? null : Ptr(dm), odw = dw == null ? null : Ptr(dw), odb = db == null ? null : Ptr(db);
        float* d = stackalloc float[features];
        float* dd = stackalloc float[features];
        // One thread: W's gradient gathers over every example (the calls are small: a batch of 32 to 256 rows).
        for (int b = 0; b < batch; b++)
        {
            float* cb = pc + (long)b * features, mb = pm + (long)b * features;
            for (int s = 0; s < specs; s++)
            {
                long row = (long)b * specs + s;
                float vl = pgl == null ? 0f : pgl[row], vu = pgu == null ? 0f : pgu[row];
                float gc = vl + vu, gr = vu - vl;
                float* cs = ps + row * classes;
                Combination(cs, pw, classes, features, d);
                if (odc != null) Axpy(gc, d, odc + (long)b * features, features);
                if (odm != null) AbsAxpy(gr, d, odm + (long)b * features, features);
                if (odw != null)
                {
                    DirectionGradient(gc, gr, d, cb, mb, dd, features);
                    for (int k = 0; k < classes; k++)
                        if (cs[k] != 0f) Axpy(cs[k], dd, odw + (long)k * features, features);
                }
                if (odb != null)
                    for (int k = 0; k < classes; k++) odb[k] += cs[k] * gc;
            }
        }
        GC.KeepAlive(gl); GC.KeepAlive(gu); GC.KeepAlive(ins); GC.KeepAlive(spec);
        return bias == null ? [dc, dm, dw] : [dc, dm, dw, db];
    }

    /// <summary>d[f] = Σ_k cs[k]·w[k, f], k in order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Combination(float* cs, float* w, int classes, int features, float* d)
    {
        int f = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; f <= features - 16; f += 16)
            {
                var acc = Vector512<float>.Zero;
                for (int k = 0; k < classes; k++) acc = Vector512.FusedMultiplyAdd(Vector512.Create(cs[k]), Vector512.Load(w + (long)k * features + f), acc);
                acc.Store(d + f);
            }
        for (; f < features; f++)
        {
            float acc = 0f;
            for (int k = 0; k < classes; k++) acc = MathF.FusedMultiplyAdd(cs[k], w[(long)k * features + f], acc);
            d[f] = acc;
        }
    }

    /// <summary>(Σ d·c, Σ |d|·m).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (float Dot, float AbsDot) DotAndAbsDot(float* d, float* c, float* m, int features)
    {
        int f = 0;
        float dot = 0f, abs = 0f;
        if (Vector512.IsHardwareAccelerated)
        {
            var a = Vector512<float>.Zero; var r = Vector512<float>.Zero;
            for (; f <= features - 16; f += 16)
            {
                var dv = Vector512.Load(d + f);
                a = Vector512.FusedMultiplyAdd(dv, Vector512.Load(c + f), a);
                r = Vector512.FusedMultiplyAdd(Vector512.Abs(dv), Vector512.Load(m + f), r);
            }
            dot = Vector512.Sum(a);
            abs = Vector512.Sum(r);
        }
        for (; f < features; f++)
        {
            dot = MathF.FusedMultiplyAdd(d[f], c[f], dot);
            abs = MathF.FusedMultiplyAdd(MathF.Abs(d[f]), m[f], abs);
        }
        return (dot, abs);
    }

    /// <summary>y += a·x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(float a, float* x, float* y, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i <= n - 16; i += 16) Vector512.FusedMultiplyAdd(va, Vector512.Load(x + i), Vector512.Load(y + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(a, x[i], y[i]);
    }

    /// <summary>y += a·|x|.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AbsAxpy(float a, float* x, float* y, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var va = Vector512.Create(a);
            for (; i <= n - 16; i += 16) Vector512.FusedMultiplyAdd(va, Vector512.Abs(Vector512.Load(x + i)), Vector512.Load(y + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] = MathF.FusedMultiplyAdd(a, MathF.Abs(x[i]), y[i]);
    }

    /// <summary>dd = gc·c + gr·sign(d)·m (sign(0) = 0, as the Abs gradient).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void DirectionGradient(float gc, float gr, float* d, float* c, float* m, float* dd, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var vc = Vector512.Create(gc); var vr = Vector512.Create(gr); var zero = Vector512<float>.Zero;
            for (; i <= n - 16; i += 16)
            {
                var dv = Vector512.Load(d + i);
                var rm = vr * Vector512.Load(m + i);
                var signed = Vector512.ConditionalSelect(Vector512.GreaterThan(dv, zero), rm, Vector512.ConditionalSelect(Vector512.LessThan(dv, zero), -rm, zero));
                (vc * Vector512.Load(c + i) + signed).Store(dd + i);
            }
        }
        for (; i < n; i++)
        {
            float rm = gr * m[i];
            dd[i] = gc * c[i] + (d[i] > 0 ? rm : d[i] < 0 ? -rm : 0f);
        }
    }

    private static float* Ptr(Tensor t) => ((CpuStorage)t.Storage).RawPointer + t.Offset;
}
