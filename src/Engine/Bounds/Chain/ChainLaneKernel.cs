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
/// The micro-kernel of the lane layout (ChainLanes.cs), written out for up to 12 rows: a block of TM rows of an affine
/// map times TG groups of 16 lanes, accumulated over taps [t0, t1) in registers (each tap: one or two input vectors,
/// TM broadcast weights, TM·TG fused multiply-adds), then handed to <see cref="ChainBounds.Emit"/>. TA = 1 multiplies
/// by |W| instead of W. Every accumulator lane is one output's float sum over the taps in order, starting from zero.
/// </summary>
internal static unsafe class ChainLaneKernel
{
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
}
