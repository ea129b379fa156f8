using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Bounds;

internal struct C3 : IConst { public static int Value => 3; }
internal struct C4 : IConst { public static int Value => 4; }
internal struct C5 : IConst { public static int Value => 5; }
internal struct C6 : IConst { public static int Value => 6; }
internal struct C7 : IConst { public static int Value => 7; }
internal struct C8 : IConst { public static int Value => 8; }
internal struct C9 : IConst { public static int Value => 9; }
internal struct C10 : IConst { public static int Value => 10; }
internal struct C11 : IConst { public static int Value => 11; }
internal struct C12 : IConst { public static int Value => 12; }

/// <summary>
/// The micro-kernels of the lane layout (ChainLanes.cs), written out by hand for each row count (the JIT drops the
/// branches of a specialisation, so a block's accumulators stay in registers). Every accumulator lane is one output's
/// float sum over the taps in order, starting from zero.
/// </summary>
internal static unsafe class ChainLaneKernel
{
    /// <summary>
    /// One product: a block of TM (≤ 12) rows of an affine map times TG groups of 16 lanes over taps [t0, t1) (each tap:
    /// one or two input vectors, TM broadcast weights, TM·TG fused multiply-adds), then handed to
    /// <see cref="ChainBounds.Emit"/>. TA = 1 multiplies by |W| instead of W.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Block<TM, TG, TA>(float* x, int* toff, int t0, int t1, float* w, long ldw, float* y, double* d, long ldy, int emit)
        where TM : struct, IConst where TG : struct, IConst where TA : struct, IConst
    {
        var a0 = Vector512<float>.Zero;
        var b0 = a0;
        var a1 = a0;
        var b1 = a0;
        var a2 = a0;
        var b2 = a0;
        var a3 = a0;
        var b3 = a0;
        var a4 = a0;
        var b4 = a0;
        var a5 = a0;
        var b5 = a0;
        var a6 = a0;
        var b6 = a0;
        var a7 = a0;
        var b7 = a0;
        var a8 = a0;
        var b8 = a0;
        var a9 = a0;
        var b9 = a0;
        var a10 = a0;
        var b10 = a0;
        var a11 = a0;
        var b11 = a0;
        // Three row pointers walk the taps; rows 4k + 1..3 are reached through byte offsets held in registers.
        nint l1 = (nint)(ldw * sizeof(float)), l2 = 2 * l1, l3 = 3 * l1;
        byte* pa = (byte*)(w + t0), pb = (byte*)(w + 4 * ldw + t0), pc = (byte*)(w + 8 * ldw + t0);
        int* to = toff + t0, end = toff + t1;
        for (; to < end; to++, pa += sizeof(float), pb += sizeof(float), pc += sizeof(float))
        {
            float* p = x + *to;
            var x0 = Vector512.Load(p);
            var x1 = TG.Value > 1 ? Vector512.Load(p + 16) : x0;
            if (TM.Value > 0)
            {
                var v = Vector512.Create(*(float*)(pa));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a0 = Vector512.FusedMultiplyAdd(v, x0, a0);
                if (TG.Value > 1) b0 = Vector512.FusedMultiplyAdd(v, x1, b0);
            }
            if (TM.Value > 1)
            {
                var v = Vector512.Create(*(float*)(pa + l1));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a1 = Vector512.FusedMultiplyAdd(v, x0, a1);
                if (TG.Value > 1) b1 = Vector512.FusedMultiplyAdd(v, x1, b1);
            }
            if (TM.Value > 2)
            {
                var v = Vector512.Create(*(float*)(pa + l2));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a2 = Vector512.FusedMultiplyAdd(v, x0, a2);
                if (TG.Value > 1) b2 = Vector512.FusedMultiplyAdd(v, x1, b2);
            }
            if (TM.Value > 3)
            {
                var v = Vector512.Create(*(float*)(pa + l3));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a3 = Vector512.FusedMultiplyAdd(v, x0, a3);
                if (TG.Value > 1) b3 = Vector512.FusedMultiplyAdd(v, x1, b3);
            }
            if (TM.Value > 4)
            {
                var v = Vector512.Create(*(float*)(pb));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a4 = Vector512.FusedMultiplyAdd(v, x0, a4);
                if (TG.Value > 1) b4 = Vector512.FusedMultiplyAdd(v, x1, b4);
            }
            if (TM.Value > 5)
            {
                var v = Vector512.Create(*(float*)(pb + l1));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a5 = Vector512.FusedMultiplyAdd(v, x0, a5);
                if (TG.Value > 1) b5 = Vector512.FusedMultiplyAdd(v, x1, b5);
            }
            if (TM.Value > 6)
            {
                var v = Vector512.Create(*(float*)(pb + l2));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a6 = Vector512.FusedMultiplyAdd(v, x0, a6);
                if (TG.Value > 1) b6 = Vector512.FusedMultiplyAdd(v, x1, b6);
            }
            if (TM.Value > 7)
            {
                var v = Vector512.Create(*(float*)(pb + l3));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a7 = Vector512.FusedMultiplyAdd(v, x0, a7);
                if (TG.Value > 1) b7 = Vector512.FusedMultiplyAdd(v, x1, b7);
            }
            if (TM.Value > 8)
            {
                var v = Vector512.Create(*(float*)(pc));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a8 = Vector512.FusedMultiplyAdd(v, x0, a8);
                if (TG.Value > 1) b8 = Vector512.FusedMultiplyAdd(v, x1, b8);
            }
            if (TM.Value > 9)
            {
                var v = Vector512.Create(*(float*)(pc + l1));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a9 = Vector512.FusedMultiplyAdd(v, x0, a9);
                if (TG.Value > 1) b9 = Vector512.FusedMultiplyAdd(v, x1, b9);
            }
            if (TM.Value > 10)
            {
                var v = Vector512.Create(*(float*)(pc + l2));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a10 = Vector512.FusedMultiplyAdd(v, x0, a10);
                if (TG.Value > 1) b10 = Vector512.FusedMultiplyAdd(v, x1, b10);
            }
            if (TM.Value > 11)
            {
                var v = Vector512.Create(*(float*)(pc + l3));
                if (TA.Value != 0) v = Vector512.Abs(v);
                a11 = Vector512.FusedMultiplyAdd(v, x0, a11);
                if (TG.Value > 1) b11 = Vector512.FusedMultiplyAdd(v, x1, b11);
            }
        }
        ChainBounds.Emit(a0, y + 0 * ldy, d + 0 * ldy, emit);
        if (TG.Value > 1) ChainBounds.Emit(b0, y + 0 * ldy + 16, d + 0 * ldy + 16, emit);
        if (TM.Value > 1)
        {
            ChainBounds.Emit(a1, y + 1 * ldy, d + 1 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b1, y + 1 * ldy + 16, d + 1 * ldy + 16, emit);
        }
        if (TM.Value > 2)
        {
            ChainBounds.Emit(a2, y + 2 * ldy, d + 2 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b2, y + 2 * ldy + 16, d + 2 * ldy + 16, emit);
        }
        if (TM.Value > 3)
        {
            ChainBounds.Emit(a3, y + 3 * ldy, d + 3 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b3, y + 3 * ldy + 16, d + 3 * ldy + 16, emit);
        }
        if (TM.Value > 4)
        {
            ChainBounds.Emit(a4, y + 4 * ldy, d + 4 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b4, y + 4 * ldy + 16, d + 4 * ldy + 16, emit);
        }
        if (TM.Value > 5)
        {
            ChainBounds.Emit(a5, y + 5 * ldy, d + 5 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b5, y + 5 * ldy + 16, d + 5 * ldy + 16, emit);
        }
        if (TM.Value > 6)
        {
            ChainBounds.Emit(a6, y + 6 * ldy, d + 6 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b6, y + 6 * ldy + 16, d + 6 * ldy + 16, emit);
        }
        if (TM.Value > 7)
        {
            ChainBounds.Emit(a7, y + 7 * ldy, d + 7 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b7, y + 7 * ldy + 16, d + 7 * ldy + 16, emit);
        }
        if (TM.Value > 8)
        {
            ChainBounds.Emit(a8, y + 8 * ldy, d + 8 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b8, y + 8 * ldy + 16, d + 8 * ldy + 16, emit);
        }
        if (TM.Value > 9)
        {
            ChainBounds.Emit(a9, y + 9 * ldy, d + 9 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b9, y + 9 * ldy + 16, d + 9 * ldy + 16, emit);
        }
        if (TM.Value > 10)
        {
            ChainBounds.Emit(a10, y + 10 * ldy, d + 10 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b10, y + 10 * ldy + 16, d + 10 * ldy + 16, emit);
        }
        if (TM.Value > 11)
        {
            ChainBounds.Emit(a11, y + 11 * ldy, d + 11 * ldy, emit);
            if (TG.Value > 1) ChainBounds.Emit(b11, y + 11 * ldy + 16, d + 11 * ldy + 16, emit);
        }
    }

    /// <summary>Block&lt;TM, TG, TA&gt; by [(TA · 2 + TG − 1) · 12 + TM − 1].</summary>
    public static readonly delegate*<float*, int*, int, int, float*, long, float*, double*, long, int, void>[] Blocks =
    [
        &Block<One, One, Any>, &Block<Two, One, Any>, &Block<C3, One, Any>, &Block<C4, One, Any>, &Block<C5, One, Any>, &Block<C6, One, Any>, &Block<C7, One, Any>, &Block<C8, One, Any>, &Block<C9, One, Any>, &Block<C10, One, Any>, &Block<C11, One, Any>, &Block<C12, One, Any>,
        &Block<One, Two, Any>, &Block<Two, Two, Any>, &Block<C3, Two, Any>, &Block<C4, Two, Any>, &Block<C5, Two, Any>, &Block<C6, Two, Any>, &Block<C7, Two, Any>, &Block<C8, Two, Any>, &Block<C9, Two, Any>, &Block<C10, Two, Any>, &Block<C11, Two, Any>, &Block<C12, Two, Any>,
        &Block<One, One, One>, &Block<Two, One, One>, &Block<C3, One, One>, &Block<C4, One, One>, &Block<C5, One, One>, &Block<C6, One, One>, &Block<C7, One, One>, &Block<C8, One, One>, &Block<C9, One, One>, &Block<C10, One, One>, &Block<C11, One, One>, &Block<C12, One, One>,
        &Block<One, Two, One>, &Block<Two, Two, One>, &Block<C3, Two, One>, &Block<C4, Two, One>, &Block<C5, Two, One>, &Block<C6, Two, One>, &Block<C7, Two, One>, &Block<C8, Two, One>, &Block<C9, Two, One>, &Block<C10, Two, One>, &Block<C11, Two, One>, &Block<C12, Two, One>,
    ];

    /// <summary>
    /// Centre and radius together: a block of TM (≤ 6) rows times TG groups of 16 lanes, W·c into one set of
    /// accumulators and |W|·r' into another over taps [t0, t1) (each input vector and weight loaded once for both),
    /// then handed to <see cref="ChainBounds.EmitPair"/>: stored or added as a chunk total, or finished by the epilogue.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Pair<TM, TG>(float* xc, float* xr, int* toff, int t0, int t1, float* w, long ldw, float* yc, float* yr, long ldy,
                                    int emit, ChainBounds.LaneEpilogue* ep, int j0, int jstride, int lane0)
        where TM : struct, IConst where TG : struct, IConst
    {
        var c00 = Vector512<float>.Zero;
        var r00 = c00;
        var c01 = c00;
        var r01 = c00;
        var c10 = c00;
        var r10 = c00;
        var c11 = c00;
        var r11 = c00;
        var c20 = c00;
        var r20 = c00;
        var c21 = c00;
        var r21 = c00;
        var c30 = c00;
        var r30 = c00;
        var c31 = c00;
        var r31 = c00;
        var c40 = c00;
        var r40 = c00;
        var c41 = c00;
        var r41 = c00;
        var c50 = c00;
        var r50 = c00;
        var c51 = c00;
        var r51 = c00;
        nint l1 = (nint)(ldw * sizeof(float)), l2 = 2 * l1;
        byte* pa = (byte*)(w + t0), pb = (byte*)(w + 3 * ldw + t0);
        int* to = toff + t0, end = toff + t1;
        for (; to < end; to++, pa += sizeof(float), pb += sizeof(float))
        {
            int at = *to;
            var x0 = Vector512.Load(xc + at); var u0 = Vector512.Load(xr + at);
            var x1 = TG.Value > 1 ? Vector512.Load(xc + at + 16) : x0; var u1 = TG.Value > 1 ? Vector512.Load(xr + at + 16) : u0;
            if (TM.Value > 0)
            {
                var v = Vector512.Create(*(float*)(pa)); var a = Vector512.Abs(v);
                c00 = Vector512.FusedMultiplyAdd(v, x0, c00); r00 = Vector512.FusedMultiplyAdd(a, u0, r00);
                if (TG.Value > 1) { c01 = Vector512.FusedMultiplyAdd(v, x1, c01); r01 = Vector512.FusedMultiplyAdd(a, u1, r01); }
            }
            if (TM.Value > 1)
            {
                var v = Vector512.Create(*(float*)(pa + l1)); var a = Vector512.Abs(v);
                c10 = Vector512.FusedMultiplyAdd(v, x0, c10); r10 = Vector512.FusedMultiplyAdd(a, u0, r10);
                if (TG.Value > 1) { c11 = Vector512.FusedMultiplyAdd(v, x1, c11); r11 = Vector512.FusedMultiplyAdd(a, u1, r11); }
            }
            if (TM.Value > 2)
            {
                var v = Vector512.Create(*(float*)(pa + l2)); var a = Vector512.Abs(v);
                c20 = Vector512.FusedMultiplyAdd(v, x0, c20); r20 = Vector512.FusedMultiplyAdd(a, u0, r20);
                if (TG.Value > 1) { c21 = Vector512.FusedMultiplyAdd(v, x1, c21); r21 = Vector512.FusedMultiplyAdd(a, u1, r21); }
            }
            if (TM.Value > 3)
            {
                var v = Vector512.Create(*(float*)(pb)); var a = Vector512.Abs(v);
                c30 = Vector512.FusedMultiplyAdd(v, x0, c30); r30 = Vector512.FusedMultiplyAdd(a, u0, r30);
                if (TG.Value > 1) { c31 = Vector512.FusedMultiplyAdd(v, x1, c31); r31 = Vector512.FusedMultiplyAdd(a, u1, r31); }
            }
            if (TM.Value > 4)
            {
                var v = Vector512.Create(*(float*)(pb + l1)); var a = Vector512.Abs(v);
                c40 = Vector512.FusedMultiplyAdd(v, x0, c40); r40 = Vector512.FusedMultiplyAdd(a, u0, r40);
                if (TG.Value > 1) { c41 = Vector512.FusedMultiplyAdd(v, x1, c41); r41 = Vector512.FusedMultiplyAdd(a, u1, r41); }
            }
            if (TM.Value > 5)
            {
                var v = Vector512.Create(*(float*)(pb + l2)); var a = Vector512.Abs(v);
                c50 = Vector512.FusedMultiplyAdd(v, x0, c50); r50 = Vector512.FusedMultiplyAdd(a, u0, r50);
                if (TG.Value > 1) { c51 = Vector512.FusedMultiplyAdd(v, x1, c51); r51 = Vector512.FusedMultiplyAdd(a, u1, r51); }
            }
        }
        ChainBounds.EmitPair(c00, r00, yc + 0 * ldy, yr + 0 * ldy, emit, ep, j0 + 0 * jstride, lane0);
        if (TG.Value > 1) ChainBounds.EmitPair(c01, r01, yc + 0 * ldy + 16, yr + 0 * ldy + 16, emit, ep, j0 + 0 * jstride, lane0 + 16);
        if (TM.Value > 1)
        {
            ChainBounds.EmitPair(c10, r10, yc + 1 * ldy, yr + 1 * ldy, emit, ep, j0 + 1 * jstride, lane0);
            if (TG.Value > 1) ChainBounds.EmitPair(c11, r11, yc + 1 * ldy + 16, yr + 1 * ldy + 16, emit, ep, j0 + 1 * jstride, lane0 + 16);
        }
        if (TM.Value > 2)
        {
            ChainBounds.EmitPair(c20, r20, yc + 2 * ldy, yr + 2 * ldy, emit, ep, j0 + 2 * jstride, lane0);
            if (TG.Value > 1) ChainBounds.EmitPair(c21, r21, yc + 2 * ldy + 16, yr + 2 * ldy + 16, emit, ep, j0 + 2 * jstride, lane0 + 16);
        }
        if (TM.Value > 3)
        {
            ChainBounds.EmitPair(c30, r30, yc + 3 * ldy, yr + 3 * ldy, emit, ep, j0 + 3 * jstride, lane0);
            if (TG.Value > 1) ChainBounds.EmitPair(c31, r31, yc + 3 * ldy + 16, yr + 3 * ldy + 16, emit, ep, j0 + 3 * jstride, lane0 + 16);
        }
        if (TM.Value > 4)
        {
            ChainBounds.EmitPair(c40, r40, yc + 4 * ldy, yr + 4 * ldy, emit, ep, j0 + 4 * jstride, lane0);
            if (TG.Value > 1) ChainBounds.EmitPair(c41, r41, yc + 4 * ldy + 16, yr + 4 * ldy + 16, emit, ep, j0 + 4 * jstride, lane0 + 16);
        }
        if (TM.Value > 5)
        {
            ChainBounds.EmitPair(c50, r50, yc + 5 * ldy, yr + 5 * ldy, emit, ep, j0 + 5 * jstride, lane0);
            if (TG.Value > 1) ChainBounds.EmitPair(c51, r51, yc + 5 * ldy + 16, yr + 5 * ldy + 16, emit, ep, j0 + 5 * jstride, lane0 + 16);
        }
    }

    /// <summary>Pair&lt;TM, TG&gt; by [(TG − 1) · 6 + TM − 1].</summary>
    public static readonly delegate*<float*, float*, int*, int, int, float*, long, float*, float*, long, int, ChainBounds.LaneEpilogue*, int, int, int, void>[] Pairs =
    [
        &Pair<One, One>, &Pair<Two, One>, &Pair<C3, One>, &Pair<C4, One>, &Pair<C5, One>, &Pair<C6, One>,
        &Pair<One, Two>, &Pair<Two, Two>, &Pair<C3, Two>, &Pair<C4, Two>, &Pair<C5, Two>, &Pair<C6, Two>,
    ];
}
