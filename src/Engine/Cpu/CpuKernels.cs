using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Tensors;

namespace Engine.Cpu;

/// <summary>
/// The CPU implementation of <see cref="IKernels"/>. Partial: each kernel family lives in its own file
/// (CpuKernels.Elementwise.cs, CpuKernels.Reduce.cs, ...), beside its scalar reference.
/// </summary>
public sealed unsafe partial class CpuKernels : IKernels
{
    /// <summary>The single instance.</summary>
    public static readonly CpuKernels Instance = new();
    private CpuKernels() { }

    /// <summary>Pointer to a buffer's first element (CPU storage is pinned).</summary>
    internal static float* P(Buf b) => ((CpuStorage)b.Storage).RawPointer + b.Offset;

    /// <summary>A buffer as a span of n elements.</summary>
    internal static Span<float> S(Buf b, int n) => ((CpuStorage)b.Storage).RawData.AsSpan(b.Offset, n);

    /// <inheritdoc/>
    public void Fill(Buf y, int n, float value) => S(y, n).Fill(value);

    /// <inheritdoc/>
    public void Copy(Buf src, Buf dst, int n) => S(src, n).CopyTo(S(dst, n));

    /// <inheritdoc/>
    public void Axpy(float alpha, Buf x, Buf y, int n)
    {
        var ys = S(y, n);
        if (alpha == 1f) TensorPrimitives.Add(ys, S(x, n), ys);
        else TensorPrimitives.MultiplyAdd(S(x, n), alpha, ys, ys);
    }

    /// <inheritdoc/>
    public void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha,
                     Buf a, int lda, long strideA, Buf b, int ldb, long strideB, float beta, Buf c, int ldc, long strideC)
    {
        float* pa = P(a), pb = P(b), pc = P(c);
        int threads = CpuThreads.Count;
        double flops = 2.0 * m * n * k;
        // Small GEMMs split poorly inside (few panels, dispatch per call), so run whole GEMMs side by side instead.
        // Sgemm's results do not depend on its thread count, so either schedule gives bit-identical output.
        if (threads > 1 && batch > 1 && (flops < 2.0 * 160 * 160 * 160 || batch % threads == 0 || batch >= 4 * threads))
        {
            int minChunk = (int)Math.Clamp(Sgemm.SerialFlops / Math.Max(1, flops), 1, batch);
            CpuThreads.For(batch, minChunk, (s, e) =>
            {
                for (int i = s; i < e; i++)
                    Sgemm.Run(transA, transB, m, n, k, alpha, pa + i * strideA, lda, pb + i * strideB, ldb, beta, pc + i * strideC, ldc, 1);
            });
            return;
        }
        for (int i = 0; i < batch; i++)
            Sgemm.Run(transA, transB, m, n, k, alpha, pa + i * strideA, lda, pb + i * strideB, ldb, beta, pc + i * strideC, ldc);
    }

    /// <inheritdoc/>
    public void RandomUniform(Buf y, int n, ulong seed, ulong counter, float low, float high)
    {
        float* p = P(y);
        float scale = high - low;
        CpuThreads.For((n + 3) / 4, 4096, (s, e) =>
        {
            int q = s;
            if (Avx512F.IsSupported)
            {
                // Eight counters (32 numbers) at a time; t = (w >> 8) * 2^-24 is exact in float32, and low + scale * t
                // rounds twice as the scalar loop below does (no fused multiply-add), so the numbers are the same.
                var unit = Vector256.Create(1.0f / 16777216.0f);
                var vs = Vector256.Create(scale);
                var vl = Vector256.Create(low);
                float* t = stackalloc float[32];
                for (; q + 8 <= e && 4L * (q + 8) <= n; q += 8)
                {
                    Philox.Generate8(seed, counter + (ulong)q, out var w0, out var w1, out var w2, out var w3);
                    Unit(w0, t); Unit(w1, t + 8); Unit(w2, t + 16); Unit(w3, t + 24);
                    float* d = p + 4L * q;
                    for (int l = 0; l < 8; l++)
                    {
                        d[4 * l] = t[l]; d[4 * l + 1] = t[8 + l]; d[4 * l + 2] = t[16 + l]; d[4 * l + 3] = t[24 + l];
                    }
                }

                void Unit(Vector512<ulong> w, float* dst)
                {
                    var bits = Avx512F.ConvertToVector256Int32(w >> 8);
                    var f = Avx.ConvertToVector256Single(bits) * unit;
                    (vl + vs * f).Store(dst);
                }
            }
            for (; q < e; q++)
            {
                var (w0, w1, w2, w3) = Philox.Generate(seed, counter + (ulong)q);
                int i = q * 4;
                p[i] = low + scale * Philox.ToUnit(w0);
                if (i + 1 < n) p[i + 1] = low + scale * Philox.ToUnit(w1);
                if (i + 2 < n) p[i + 2] = low + scale * Philox.ToUnit(w2);
                if (i + 3 < n) p[i + 3] = low + scale * Philox.ToUnit(w3);
            }
        });
    }

    /// <inheritdoc/>
    public void RandomNormal(Buf y, int n, ulong seed, ulong counter, float mean, float std)
    {
        float* p = P(y);
        CpuThreads.For((n + 1) / 2, 2048, (s, e) =>
        {
            for (int q = s; q < e; q++)
            {
                var (w0, w1, _, _) = Philox.Generate(seed, counter + (ulong)q);
                double r = Math.Sqrt(-2.0 * Math.Log(Philox.ToUnitOpen(w0)));
                double th = 2.0 * Math.PI * Philox.ToUnit(w1);
                int i = q * 2;
                p[i] = mean + std * (float)(r * Math.Cos(th));
                if (i + 1 < n) p[i + 1] = mean + std * (float)(r * Math.Sin(th));
            }
        });
    }
}
