using Engine.Autograd;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// |W| of the layers' weights made once per data-parallel shard instead of once per micro-batch, in the manner of
/// torch.nn.utils.parametrize.cached(): the IBP radius pass of every piece multiplies by |W| (a 157K-float weight in
/// the certified-training CNN, whose |W| and Abs backward cost two weight-sized passes per piece). While a cache is
/// active on a thread, <see cref="Abs"/> of a weight that is a leaf requiring a gradient returns one |W| leaf; the
/// pieces' backward passes add their gradients into its buffer (in place, as into any leaf), and
/// <see cref="Dispose"/> folds the sum into the weight's gradient once (Grad += sign(W)·Grad(|W|): the Abs rule, by
/// the same kernel) and releases |W|. The weights must not change while the cache is active (DataParallel's shards:
/// the replicas are synced before and read only during a batch). Other tensors, no-grad code and threads without a
/// cache get a plain <see cref="Tensor.Abs"/>.
/// </summary>
internal sealed class AbsWeightCache : IDisposable
{
    [ThreadStatic] private static AbsWeightCache? t_current;

    private readonly AbsWeightCache? _outer;
    private readonly List<(Tensor Weight, Tensor Abs)> _entries = [];
    private bool _disposed;

    private AbsWeightCache(AbsWeightCache? outer) => _outer = outer;

    /// <summary>Starts a cache on this thread (dispose it, a <c>using</c>, to fold the gradients back).</summary>
    public static AbsWeightCache Begin() => t_current = new AbsWeightCache(t_current);

    /// <summary>|w|: the cached leaf while a cache is active and w is a leaf that requires a gradient, else w.Abs().</summary>
    public static Tensor Abs(Tensor w)
    {
        var cache = t_current;
        if (cache == null || !GradMode.IsEnabled || !w.RequiresGrad || !w.IsLeaf) return w.Abs();
        foreach (var (weight, abs) in cache._entries)
            if (ReferenceEquals(weight, w)) return abs;
        // Made outside the caller's scopes (a piece's scope ends before the next piece uses |W|).
        using var outlive = TensorScope.Suspend();
        var a = w.Detach().Abs();
        a.RequiresGrad = true;
        a.Grad = Tensor.Zeros(a.Dims, a.Device);
        cache._entries.Add((w, a));
        return a;
    }

    /// <summary>Adds sign(W)·Grad(|W|) to each cached weight's gradient, releases the |W| tensors and ends the cache.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        if (!ReferenceEquals(t_current, this))
            throw new InvalidOperationException("AbsWeightCache ended out of order (or on another thread): end inner caches first, on the thread that began them.");
        _disposed = true;
        t_current = _outer;
        using var outlive = TensorScope.Suspend();
        foreach (var (w, a) in _entries)
        {
            var ga = a.Grad!;
            var dw = w.NewEmpty(w.Dims);
            w.K.UnaryBackward(UnaryOp.Abs, w.Buf, a.Buf, ga.Buf, dw.Buf, w.Numel, 0f, 0f);
            if (w.Grad is { } g && g.Device == w.Device && ShapeUtil.SameShape(g.Dims, w.Dims))
            {
                g.K.Axpy(1f, dw.Buf, g.Buf, g.Numel);
                dw.Storage.Dispose();
            }
            else w.Grad = w.Grad == null ? dw : w.Grad + dw;
            a.Storage.Dispose();
            ga.Storage.Dispose();
        }
        _entries.Clear();
    }
}
