// Rows are unrolled by hand, every row in the same pattern, so the JIT keeps every accumulator in a register.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// AVX2+FMA micro-kernel for CPUs without AVX-512: a TR×TW tile (TR ≤ 6 rows, TW = 8 or 16 columns); 6×16 uses
/// 12 ymm accumulators + 2 B vectors + 1 broadcast of the 16 registers.
/// </summary>
internal static unsafe class GemmKernel256
{
    /// <summary>Rows of the largest tile.</summary>
    internal const int MaxRows = 6;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile<TR, TW>(int kc, float* ap, float* bp, nint ldb, float* c, nint ldc, float alpha, float beta)
        where TR : struct, IGemmConst where TW : struct, IGemmConst
    {
        // TR (rows) and TW (columns) are JIT-time constants, so every unused accumulator and branch folds away.
        bool two = TW.Value == 16;
        Vector256<float> r0a = default, r0b = default;
        Vector256<float> r1a = default, r1b = default;
        Vector256<float> r2a = default, r2b = default;
        Vector256<float> r3a = default, r3b = default;
        Vector256<float> r4a = default, r4b = default;
        Vector256<float> r5a = default, r5b = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Vector256.Load(bp);
            Vector256<float> b1 = two ? Vector256.Load(bp + 8) : default;
            Vector256<float> a;
            { a = Vector256.Create(ap[0]); r0a = Fma.MultiplyAdd(a, b0, r0a); if (two) r0b = Fma.MultiplyAdd(a, b1, r0b); }
            if (TR.Value > 1) { a = Vector256.Create(ap[1]); r1a = Fma.MultiplyAdd(a, b0, r1a); if (two) r1b = Fma.MultiplyAdd(a, b1, r1b); }
            if (TR.Value > 2) { a = Vector256.Create(ap[2]); r2a = Fma.MultiplyAdd(a, b0, r2a); if (two) r2b = Fma.MultiplyAdd(a, b1, r2b); }
            if (TR.Value > 3) { a = Vector256.Create(ap[3]); r3a = Fma.MultiplyAdd(a, b0, r3a); if (two) r3b = Fma.MultiplyAdd(a, b1, r3b); }
            if (TR.Value > 4) { a = Vector256.Create(ap[4]); r4a = Fma.MultiplyAdd(a, b0, r4a); if (two) r4b = Fma.MultiplyAdd(a, b1, r4b); }
            if (TR.Value > 5) { a = Vector256.Create(ap[5]); r5a = Fma.MultiplyAdd(a, b0, r5a); if (two) r5b = Fma.MultiplyAdd(a, b1, r5b); }
            ap += TR.Value;
            bp += ldb;
        }
        Vector256<float> va = Vector256.Create(alpha);
        { Put(c + 0 * ldc, r0a, va, beta); if (two) Put(c + 0 * ldc + 8, r0b, va, beta); }
        if (TR.Value > 1) { Put(c + 1 * ldc, r1a, va, beta); if (two) Put(c + 1 * ldc + 8, r1b, va, beta); }
        if (TR.Value > 2) { Put(c + 2 * ldc, r2a, va, beta); if (two) Put(c + 2 * ldc + 8, r2b, va, beta); }
        if (TR.Value > 3) { Put(c + 3 * ldc, r3a, va, beta); if (two) Put(c + 3 * ldc + 8, r3b, va, beta); }
        if (TR.Value > 4) { Put(c + 4 * ldc, r4a, va, beta); if (two) Put(c + 4 * ldc + 8, r4b, va, beta); }
        if (TR.Value > 5) { Put(c + 5 * ldc, r5a, va, beta); if (two) Put(c + 5 * ldc + 8, r5b, va, beta); }
    }

    /// <summary>c = alpha*acc (beta 0: C unread), fma(alpha, acc, C) (beta 1) or fma(alpha, acc, beta*C): the exact formulas of <see cref="Sgemm"/>'s edge merge, so tile shape never changes a result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, Vector256<float> acc, Vector256<float> va, float beta)
    {
        if (beta == 0) Vector256.Store(acc * va, c);
        else if (beta == 1) Vector256.Store(Fma.MultiplyAdd(va, acc, Vector256.Load(c)), c);
        else Vector256.Store(Fma.MultiplyAdd(va, acc, Vector256.Load(c) * Vector256.Create(beta)), c);
    }
}
