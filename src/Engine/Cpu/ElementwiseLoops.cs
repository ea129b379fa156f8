using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using V256 = System.Runtime.Intrinsics.Vector256<float>;
using V512 = System.Runtime.Intrinsics.Vector512<float>;

namespace Engine.Cpu;

/// <summary>
/// The vectorised driver loops of the elementwise kernels, generic over the operator structs in
/// <see cref="ElementwiseOps"/>: a Vector512 body, at most one Vector256 step, then a scalar tail (no overlapping
/// re-computation, so outputs may alias inputs). Single-threaded; the kernels split work with <see cref="CpuThreads"/>.
/// </summary>
internal static unsafe class ElementwiseLoops
{
    public static void Unary<T>(T op, float* x, float* y, int n) where T : struct, IUnaryOp
    {
        int i = 0;
        if (Simd.Use512)
            for (; i <= n - V512.Count; i += V512.Count) op.Invoke(Vector512.Load(x + i)).Store(y + i);
        if (Simd.Use256)
            for (; i <= n - V256.Count; i += V256.Count) op.Invoke(Vector256.Load(x + i)).Store(y + i);
        for (; i < n; i++) y[i] = op.Invoke(x[i]);
    }

    public static void UnaryGrad<T>(T op, float* x, float* y, float* dy, float* dx, int n) where T : struct, IUnaryGradOp
    {
        int i = 0;
        if (Simd.Use512)
            for (; i <= n - V512.Count; i += V512.Count) op.Invoke(Vector512.Load(x + i), Vector512.Load(y + i), Vector512.Load(dy + i)).Store(dx + i);
        if (Simd.Use256)
            for (; i <= n - V256.Count; i += V256.Count) op.Invoke(Vector256.Load(x + i), Vector256.Load(y + i), Vector256.Load(dy + i)).Store(dx + i);
        for (; i < n; i++) dx[i] = op.Invoke(x[i], y[i], dy[i]);
    }

    /// <summary>y[i] = op(a[i*sa], b[i*sb]); strides 0 (broadcast) and 1 (contiguous) take vector paths.</summary>
    public static void Binary<T>(T op, float* a, long sa, float* b, long sb, float* y, int n) where T : struct, IBinaryOp
    {
        if (sa == 1 && sb == 1) BinaryVV(op, a, b, y, n);
        else if (sa == 1 && sb == 0) BinaryVS(op, a, *b, y, n);
        else if (sa == 0 && sb == 1) BinarySV(op, *a, b, y, n);
        else if (sa == 0 && sb == 0) new Span<float>(y, n).Fill(op.Invoke(*a, *b));
        else for (int i = 0; i < n; i++) y[i] = op.Invoke(a[i * sa], b[i * sb]);
    }

    private static void BinaryVV<T>(T op, float* a, float* b, float* y, int n) where T : struct, IBinaryOp
    {
        int i = 0;
        if (Simd.Use512)
            for (; i <= n - V512.Count; i += V512.Count) op.Invoke(Vector512.Load(a + i), Vector512.Load(b + i)).Store(y + i);
        if (Simd.Use256)
            for (; i <= n - V256.Count; i += V256.Count) op.Invoke(Vector256.Load(a + i), Vector256.Load(b + i)).Store(y + i);
        for (; i < n; i++) y[i] = op.Invoke(a[i], b[i]);
    }

    private static void BinaryVS<T>(T op, float* a, float b, float* y, int n) where T : struct, IBinaryOp
    {
        int i = 0;
        if (Simd.Use512)
        {
            var vb = Vector512.Create(b);
            for (; i <= n - V512.Count; i += V512.Count) op.Invoke(Vector512.Load(a + i), vb).Store(y + i);
        }
        if (Simd.Use256)
        {
            var vb = Vector256.Create(b);
            for (; i <= n - V256.Count; i += V256.Count) op.Invoke(Vector256.Load(a + i), vb).Store(y + i);
        }
        for (; i < n; i++) y[i] = op.Invoke(a[i], b);
    }

    private static void BinarySV<T>(T op, float a, float* b, float* y, int n) where T : struct, IBinaryOp
    {
        int i = 0;
        if (Simd.Use512)
        {
            var va = Vector512.Create(a);
            for (; i <= n - V512.Count; i += V512.Count) op.Invoke(va, Vector512.Load(b + i)).Store(y + i);
        }
        if (Simd.Use256)
        {
            var va = Vector256.Create(a);
            for (; i <= n - V256.Count; i += V256.Count) op.Invoke(va, Vector256.Load(b + i)).Store(y + i);
        }
        for (; i < n; i++) y[i] = op.Invoke(a, b[i]);
    }

    /// <summary>y[i] = c[i*sc] != 0 ? a[i*sa] : b[i*sb] (NaN counts as true, like a bool cast).</summary>
    public static void Where(float* c, long sc, float* a, long sa, float* b, long sb, float* y, int n)
    {
        bool fast = (sc | 1) == 1 && (sa | 1) == 1 && (sb | 1) == 1;
        int i = 0;
        if (fast && Simd.Use512)
        {
            V512 c0 = Vector512.Create(*c), a0 = Vector512.Create(*a), b0 = Vector512.Create(*b);
            for (; i <= n - V512.Count; i += V512.Count)
            {
                var vc = sc == 0 ? c0 : Vector512.Load(c + i);
                var va = sa == 0 ? a0 : Vector512.Load(a + i);
                var vb = sb == 0 ? b0 : Vector512.Load(b + i);
                Vector512.ConditionalSelect(Vector512.Equals(vc, V512.Zero), vb, va).Store(y + i);
            }
        }
        if (fast && Simd.Use256)
        {
            V256 c0 = Vector256.Create(*c), a0 = Vector256.Create(*a), b0 = Vector256.Create(*b);
            for (; i <= n - V256.Count; i += V256.Count)
            {
                var vc = sc == 0 ? c0 : Vector256.Load(c + i);
                var va = sa == 0 ? a0 : Vector256.Load(a + i);
                var vb = sb == 0 ? b0 : Vector256.Load(b + i);
                Vector256.ConditionalSelect(Vector256.Equals(vc, V256.Zero), vb, va).Store(y + i);
            }
        }
        for (; i < n; i++) y[i] = c[i * sc] != 0 ? a[i * sa] : b[i * sb];
    }

    /// <summary>y[i] = x[i*sx]: a copy (sx 1), a fill (sx 0) or a strided gather.</summary>
    public static void Copy(float* x, long sx, float* y, int n)
    {
        if (sx == 1) Buffer.MemoryCopy(x, y, (long)n * sizeof(float), (long)n * sizeof(float));
        else if (sx == 0) new Span<float>(y, n).Fill(*x);
        else for (int i = 0; i < n; i++) y[i] = x[i * sx];
    }

    /// <summary>Runs a unary op over n contiguous elements, split over threads for large n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnaryParallel<T>(T op, float* x, float* y, int n) where T : struct, IUnaryOp
        => CpuThreads.For(n, Simd.MinChunk, (s, e) => Unary(op, x + s, y + s, e - s));

    /// <summary>Runs a unary gradient op over n contiguous elements, split over threads for large n.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnaryGradParallel<T>(T op, float* x, float* y, float* dy, float* dx, int n) where T : struct, IUnaryGradOp
        => CpuThreads.For(n, Simd.MinChunk, (s, e) => UnaryGrad(op, x + s, y + s, dy + s, dx + s, e - s));
}
