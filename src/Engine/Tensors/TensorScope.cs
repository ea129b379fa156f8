namespace Engine.Tensors;

/// <summary>
/// Deterministic release of device memory: storages allocated while a scope is the innermost one on this thread are
/// disposed when it ends, except those of tensors passed to <see cref="Keep(Tensor)"/>.
/// <code>
/// using (var scope = TensorScope.Begin())
/// {
///     var loss = model.Forward(x).CrossEntropy(y);
///     loss.Backward();
///     optimizer.Step();
///     lastLoss = scope.Keep(loss);   // survives; every other temporary's memory is freed here
/// }
/// </code>
/// <para>
/// Backends whose memory is worth freeing early register storages: CUDA always; the CPU only in scopes begun with
/// <c>includeCpu: true</c> (its pooled arrays then go straight back to the CPU pool when the scope ends, instead of
/// when the GC finalizes their storages, which in a training loop means fewer forced collections; a CPU tensor used
/// after its scope ended throws). Scopes nest: a kept
/// storage moves to the enclosing scope, which disposes it in turn unless it is kept there too. Scopes are per
/// thread and must end in reverse order of beginning. State that must outlive the scope but is created inside it
/// (optimizer buffers, gradients of parameters) must be kept or created under <see cref="Suspend"/>.
/// </para>
/// Using a tensor whose storage a scope disposed throws ObjectDisposedException.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] private static TensorScope? t_top;

    private readonly TensorScope? _parent;
    private readonly bool _collects;
    private readonly bool _includeCpu;
    private List<Storage>? _owned = [];
    private HashSet<Storage>? _kept;

    private TensorScope(TensorScope? parent, bool collects, bool includeCpu)
    {
        _parent = parent;
        _collects = collects;
        _includeCpu = includeCpu;
    }

    /// <summary>Starts a scope on this thread; dispose it (a <c>using</c>) to free what was allocated inside.</summary>
    /// <param name="includeCpu">Also dispose the CPU storages made inside (their arrays return to the CPU pool at once).</param>
    public static TensorScope Begin(bool includeCpu = false) => t_top = new TensorScope(t_top, collects: true, includeCpu);

    /// <summary>True when the innermost scope on this thread collects CPU storages (see <see cref="Begin"/>).</summary>
    internal static bool CollectsCpu => t_top is { _collects: true, _includeCpu: true };

    /// <summary>
    /// Starts a section in which new storages belong to no scope (they live until disposed or collected), e.g. for
    /// optimizer state created lazily during a step. Dispose it to resume the enclosing scope.
    /// </summary>
    public static TensorScope Suspend() => t_top = new TensorScope(t_top, collects: false, includeCpu: false);

    /// <summary>The innermost scope on this thread, or null.</summary>
    public static TensorScope? Current => t_top;

    /// <summary>Storages this scope will dispose (those registered and not kept so far).</summary>
    public int Count => _owned == null ? 0 : _owned.Count(s => _kept == null || !_kept.Contains(s));

    /// <summary>
    /// Called by device implementations for each new storage: it joins the innermost collecting scope, if any (a CPU
    /// storage only when that scope includes the CPU).
    /// </summary>
    public static void Register(Storage storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        if (t_top is { _collects: true, _owned: { } owned } top && (top._includeCpu || storage is not CpuStorage)) owned.Add(storage);
    }

    /// <summary>Exempts <paramref name="tensor"/>'s storage (shared by its views) from this scope's disposal; returns the tensor.</summary>
    public Tensor Keep(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (_owned == null) throw new ObjectDisposedException(nameof(TensorScope), "Keep was called on a scope that has ended.");
        (_kept ??= new HashSet<Storage>(ReferenceEqualityComparer.Instance)).Add(tensor.Storage);
        return tensor;
    }

    /// <summary>Keeps every tensor of <paramref name="tensors"/> (e.g. a module's parameters and their gradients).</summary>
    public void Keep(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) Keep(t);
    }

    /// <summary>Ends the scope: disposes every registered storage not kept; kept ones move to the enclosing scope.</summary>
    public void Dispose()
    {
        if (_owned == null) return;
        if (!ReferenceEquals(t_top, this))
            throw new InvalidOperationException("TensorScope ended out of order (or on another thread): end inner scopes first, on the thread that began them.");
        t_top = _parent;
        var owned = _owned;
        _owned = null;
        foreach (var s in owned)
        {
            if (_kept != null && _kept.Contains(s)) Register(s);   // the enclosing scope owns it now
            else s.Dispose();
        }
    }
}
