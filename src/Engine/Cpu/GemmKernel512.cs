// Rows are unrolled by hand, every row in the same pattern, so the JIT keeps every accumulator in a register.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// AVX-512 micro-kernel: a TR×TW tile of C (TR ≤ 14 rows, TW = 16 or 32 columns) from an A panel packed TR floats per k
/// and B rows of TW floats ldb apart (ldb = TW for a packed panel; a row-major B is read in place when only one A panel uses it). 14×32 keeps 28 zmm accumulators + 2 B vectors + 1 broadcast in the 32 registers.
/// </summary>
internal static unsafe class GemmKernel512
{
    /// <summary>Rows of the largest tile.</summary>
    internal const int MaxRows = 14;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Tile<TR, TW>(int kc, float* ap, float* bp, nint ldb, float* c, nint ldc, float alpha, float beta)
        where TR : struct, IGemmConst where TW : struct, IGemmConst
    {
        // TR (rows) and TW (columns) are JIT-time constants, so every unused accumulator and branch folds away.
        bool two = TW.Value == 32;
        Vector512<float> r0a = default, r0b = default;
        Vector512<float> r1a = default, r1b = default;
        Vector512<float> r2a = default, r2b = default;
        Vector512<float> r3a = default, r3b = default;
        Vector512<float> r4a = default, r4b = default;
        Vector512<float> r5a = default, r5b = default;
        Vector512<float> r6a = default, r6b = default;
        Vector512<float> r7a = default, r7b = default;
        Vector512<float> r8a = default, r8b = default;
        Vector512<float> r9a = default, r9b = default;
        Vector512<float> r10a = default, r10b = default;
        Vector512<float> r11a = default, r11b = default;
        Vector512<float> r12a = default, r12b = default;
        Vector512<float> r13a = default, r13b = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Vector512.Load(bp);
            Vector512<float> b1 = two ? Vector512.Load(bp + 16) : default;
            Vector512<float> a;
            { a = Vector512.Create(ap[0]); r0a = Avx512F.FusedMultiplyAdd(a, b0, r0a); if (two) r0b = Avx512F.FusedMultiplyAdd(a, b1, r0b); }
            if (TR.Value > 1) { a = Vector512.Create(ap[1]); r1a = Avx512F.FusedMultiplyAdd(a, b0, r1a); if (two) r1b = Avx512F.FusedMultiplyAdd(a, b1, r1b); }
            if (TR.Value > 2) { a = Vector512.Create(ap[2]); r2a = Avx512F.FusedMultiplyAdd(a, b0, r2a); if (two) r2b = Avx512F.FusedMultiplyAdd(a, b1, r2b); }
            if (TR.Value > 3) { a = Vector512.Create(ap[3]); r3a = Avx512F.FusedMultiplyAdd(a, b0, r3a); if (two) r3b = Avx512F.FusedMultiplyAdd(a, b1, r3b); }
            if (TR.Value > 4) { a = Vector512.Create(ap[4]); r4a = Avx512F.FusedMultiplyAdd(a, b0, r4a); if (two) r4b = Avx512F.FusedMultiplyAdd(a, b1, r4b); }
            if (TR.Value > 5) { a = Vector512.Create(ap[5]); r5a = Avx512F.FusedMultiplyAdd(a, b0, r5a); if (two) r5b = Avx512F.FusedMultiplyAdd(a, b1, r5b); }
            if (TR.Value > 6) { a = Vector512.Create(ap[6]); r6a = Avx512F.FusedMultiplyAdd(a, b0, r6a); if (two) r6b = Avx512F.FusedMultiplyAdd(a, b1, r6b); }
            if (TR.Value > 7) { a = Vector512.Create(ap[7]); r7a = Avx512F.FusedMultiplyAdd(a, b0, r7a); if (two) r7b = Avx512F.FusedMultiplyAdd(a, b1, r7b); }
            if (TR.Value > 8) { a = Vector512.Create(ap[8]); r8a = Avx512F.FusedMultiplyAdd(a, b0, r8a); if (two) r8b = Avx512F.FusedMultiplyAdd(a, b1, r8b); }
            if (TR.Value > 9) { a = Vector512.Create(ap[9]); r9a = Avx512F.FusedMultiplyAdd(a, b0, r9a); if (two) r9b = Avx512F.FusedMultiplyAdd(a, b1, r9b); }
            if (TR.Value > 10) { a = Vector512.Create(ap[10]); r10a = Avx512F.FusedMultiplyAdd(a, b0, r10a); if (two) r10b = Avx512F.FusedMultiplyAdd(a, b1, r10b); }
            if (TR.Value > 11) { a = Vector512.Create(ap[11]); r11a = Avx512F.FusedMultiplyAdd(a, b0, r11a); if (two) r11b = Avx512F.FusedMultiplyAdd(a, b1, r11b); }
            if (TR.Value > 12) { a = Vector512.Create(ap[12]); r12a = Avx512F.FusedMultiplyAdd(a, b0, r12a); if (two) r12b = Avx512F.FusedMultiplyAdd(a, b1, r12b); }
            if (TR.Value > 13) { a = Vector512.Create(ap[13]); r13a = Avx512F.FusedMultiplyAdd(a, b0, r13a); if (two) r13b = Avx512F.FusedMultiplyAdd(a, b1, r13b); }
            ap += TR.Value;
            bp += ldb;
        }
        Vector512<float> va = Vector512.Create(alpha);
        { Put(c + 0 * ldc, r0a, va, beta); if (two) Put(c + 0 * ldc + 16, r0b, va, beta); }
        if (TR.Value > 1) { Put(c + 1 * ldc, r1a, va, beta); if (two) Put(c + 1 * ldc + 16, r1b, va, beta); }
        if (TR.Value > 2) { Put(c + 2 * ldc, r2a, va, beta); if (two) Put(c + 2 * ldc + 16, r2b, va, beta); }
        if (TR.Value > 3) { Put(c + 3 * ldc, r3a, va, beta); if (two) Put(c + 3 * ldc + 16, r3b, va, beta); }
        if (TR.Value > 4) { Put(c + 4 * ldc, r4a, va, beta); if (two) Put(c + 4 * ldc + 16, r4b, va, beta); }
        if (TR.Value > 5) { Put(c + 5 * ldc, r5a, va, beta); if (two) Put(c + 5 * ldc + 16, r5b, va, beta); }
        if (TR.Value > 6) { Put(c + 6 * ldc, r6a, va, beta); if (two) Put(c + 6 * ldc + 16, r6b, va, beta); }
        if (TR.Value > 7) { Put(c + 7 * ldc, r7a, va, beta); if (two) Put(c + 7 * ldc + 16, r7b, va, beta); }
        if (TR.Value > 8) { Put(c + 8 * ldc, r8a, va, beta); if (two) Put(c + 8 * ldc + 16, r8b, va, beta); }
        if (TR.Value > 9) { Put(c + 9 * ldc, r9a, va, beta); if (two) Put(c + 9 * ldc + 16, r9b, va, beta); }
        if (TR.Value > 10) { Put(c + 10 * ldc, r10a, va, beta); if (two) Put(c + 10 * ldc + 16, r10b, va, beta); }
        if (TR.Value > 11) { Put(c + 11 * ldc, r11a, va, beta); if (two) Put(c + 11 * ldc + 16, r11b, va, beta); }
        if (TR.Value > 12) { Put(c + 12 * ldc, r12a, va, beta); if (two) Put(c + 12 * ldc + 16, r12b, va, beta); }
        if (TR.Value > 13) { Put(c + 13 * ldc, r13a, va, beta); if (two) Put(c + 13 * ldc + 16, r13b, va, beta); }
    }

    /// <summary>c = alpha*acc (beta 0: C unread), fma(alpha, acc, C) (beta 1) or fma(alpha, acc, beta*C): the exact formulas of <see cref="Sgemm"/>'s edge merge, so tile shape never changes a result.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Put(float* c, Vector512<float> acc, Vector512<float> va, float beta)
    {
        if (beta == 0) Vector512.Store(acc * va, c);
        else if (beta == 1) Vector512.Store(Avx512F.FusedMultiplyAdd(va, acc, Vector512.Load(c)), c);
        else Vector512.Store(Avx512F.FusedMultiplyAdd(va, acc, Vector512.Load(c) * Vector512.Create(beta)), c);
    }
}
