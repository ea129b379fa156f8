using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Bounds;

/// <summary>A growable pinned scratch array (contents undefined after growth), handed out as a raw pointer.</summary>
internal sealed unsafe class Pinned<T> where T : unmanaged
{
    private T[] _a = [];
    private T* _p;

    /// <summary>A pointer to at least <paramref name="n"/> elements (64-byte aligned start not guaranteed).</summary>
    public T* Get(long n)
    {
        if (_a.Length < n)
        {
            long want = Math.Max(n, Math.Min((long)_a.Length * 3 / 2, Array.MaxLength));
            if (want > Array.MaxLength) throw new InsufficientMemoryException($"Bounds: a scratch buffer of {n} elements is too large.");
            _a = GC.AllocateUninitializedArray<T>((int)Math.Max(want, 16), pinned: true);
            _p = (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_a));
        }
        return _p;
    }
}

/// <summary>The buffers of one call (batched IBP values, relaxations); rented from the plan and reused.</summary>
internal sealed unsafe class ChainRun(ChainPlan plan)
{
    public readonly ChainPlan Plan = plan;
    // The call: batch size, perturbation, options (set by ChainBounds.Prepare).
    public int Batch;
    public float Eps, Rho, Alpha;
    public PerturbationNorm Norm;
    /// <summary>The input set is a ball around x₀ (L2, or L∞ without clipping): the first layer may use x₀ and eps directly.</summary>
    public bool Ball;
    public BoundOptions Options = BoundOptions.Default;
    /// <summary>Form the first layer's rounding magnitude exactly whatever the batch (CROWN; see ChainIbp.cs).</summary>
    public bool ExactMargins;
    /// <summary>The input x₀ of this call, [batch, n₀] (the caller's tensor, alive for the call).</summary>
    public float* X0;
    public readonly Pinned<float> BoxLo = new(), BoxHi = new(), BoxC = new(), BoxR = new();
    public readonly Pinned<float>[] Lo = NewArray(plan.Layers.Length), Hi = NewArray(plan.Layers.Length);
    // Per activation layer (indexed by the layer), per example: class (0 zero, 1 exact, 2 unstable), slopes, intercept.
    public readonly Pinned<byte>[] Cls = NewBytes(plan.Layers.Length);
    public readonly Pinned<float>[] Dl = NewArray(plan.Layers.Length), Du = NewArray(plan.Layers.Length), Bu = NewArray(plan.Layers.Length);
    // Per activation layer, per example: the elements whose class is not zero (ascending) and their count.
    public readonly Pinned<int>[] Alive = NewInts(plan.Layers.Length);
    public readonly int[][] AliveCount = new int[plan.Layers.Length][], ExactCount = new int[plan.Layers.Length][];
    /// <summary>Counts calls, so a worker's per-call caches (gathered weight rows) know when they are stale.</summary>
    public long CallId;
    // Per conv layer: the window-to-window matrices of this call (see ChainBackward's row windows), by window size.
    // Entries persist across calls (the same windows every time) and hold the call they were last built for.
    public readonly Dictionary<(int Layer, int H, int W), (float[] M, long Call)> Transfer = [];
    // Per layer: element-wise s and t, or scratch for the IBP of a layer.
    public readonly Pinned<float>[] S = NewArray(plan.Layers.Length), T = NewArray(plan.Layers.Length);
    public readonly bool[] HasS = new bool[plan.Layers.Length], HasT = new bool[plan.Layers.Length];
    public readonly Pinned<float> C = new(), R = new(), WAbs = new(), Tmp = new(), Tmp2 = new(), Tmp3 = new();
    public readonly Pinned<float> OutLo = new(), OutHi = new();
    /// <summary>Lane layout (ChainLanes.cs): tap offsets, pixel offsets and the double totals of long sums.</summary>
    public readonly Pinned<int> Offsets = new(), PixelOffsets = new();
    /// <summary>Per value: held in lane layout [n, lanes] instead of [batch, n] rows (pure IBP only; see ChainBounds.PlanLanes).</summary>
    public readonly bool[] LaneOut = new bool[plan.Layers.Length];
    /// <summary>Per activation layer: its output is written by the affine layer before it (lane layout, pure IBP).</summary>
    public readonly bool[] ActFused = new bool[plan.Layers.Length];
    /// <summary>
    /// Per value in lane layout: held as the box rule's centre and widened radius of its consumer (layer Consumer[v],
    /// in that convolution's padded planes when it is one) instead of (lo, hi).
    /// </summary>
    public readonly bool[] Centered = new bool[plan.Layers.Length];
    public readonly int[] Consumer = new int[plan.Layers.Length];
    /// <summary>Per output element of a layer that writes its consumer's padded planes: the element's lane row there.</summary>
    public readonly Pinned<int> DstOffsets = new();
    public readonly Pinned<double> DAcc = new();
    private readonly System.Collections.Concurrent.ConcurrentBag<ChainBackward> _workers = [];

    public ChainBackward RentWorker() => _workers.TryTake(out var w) ? w : new ChainBackward(this);

    public void ReturnWorker(ChainBackward w) => _workers.Add(w);

    private static Pinned<float>[] NewArray(int n)
    {
        var a = new Pinned<float>[n];
        for (int i = 0; i < n; i++) a[i] = new Pinned<float>();
        return a;
    }

    private static Pinned<int>[] NewInts(int n)
    {
        var a = new Pinned<int>[n];
        for (int i = 0; i < n; i++) a[i] = new Pinned<int>();
        return a;
    }

    private static Pinned<byte>[] NewBytes(int n)
    {
        var a = new Pinned<byte>[n];
        for (int i = 0; i < n; i++) a[i] = new Pinned<byte>();
        return a;
    }
}
