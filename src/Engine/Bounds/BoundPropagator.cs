using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Engine.Autograd;
using Engine.Graph;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Bound propagation over one graph and one batch of inputs: the interval walk (IBP) that also refines the
/// intermediate bounds CROWN needs, and CROWN's backward pass. Intermediate bounds are kept per value id.
/// </summary>
internal sealed class BoundPropagator
{
    private readonly ComputeGraph _graph;
    private readonly Perturbation _perturbation;
    private readonly BoundOptions _options;
    private readonly Value _input;
    private readonly Interval?[] _bounds;
    private readonly bool _detachConstants;
    private Interval? _inputBox;

    public BoundPropagator(ComputeGraph graph, Perturbation perturbation, BoundOptions options, bool detachConstants = false)
    {
        _graph = graph; _perturbation = perturbation; _options = options; _detachConstants = detachConstants;
        if (graph.Inputs.Count != 1 || graph.Outputs.Count != 1)
            throw new ArgumentException($"Bounds: the graph must have one input and one output, it has {graph.Inputs.Count} and {graph.Outputs.Count}.");
        foreach (var n in graph.Nodes)
            if (n.Outputs.Count != 1)
                throw new NotSupportedException($"Bounds: node '{n.Name}' ({n.Op}) has {n.Outputs.Count} outputs; bound propagation supports single-output ops.");
        _input = graph.Inputs[0];
        _bounds = new Interval?[graph.Values.Count];
    }

    public Interval Bounds(Value v) => _bounds[v.Id] ?? throw new InvalidOperationException($"Bounds: no bounds for value '{v.Name}' yet.");

    public Value Output => _graph.Outputs[0];

    public BoundOptions Options => _options;

    public int Batch => _inputBox!.Shape[0];

    /// <summary>The device of the perturbed input (and so of every perturbed value's bounds).</summary>
    public Device InputDevice => _inputBox!.Lower.Device;

    /// <summary>
    /// The forward walk: IBP for every value; with <paramref name="refine"/>, the inputs of nonlinear ops are
    /// re-bounded by CROWN (intersected with IBP) as soon as they are computed, so later IBP starts from them. With
    /// <paramref name="lazy"/> (CROWN's backward pass follows), values that no relaxation needs get bounds that are
    /// made only if something reads them, where their op can give its output shape (e.g. the last layer's).
    /// </summary>
    public void Forward(Tensor x, bool refine, bool lazy = false)
    {
        if (refine && !Ancestors(Output).Contains(_input.Id))
            refine = false;
        _inputBox = _perturbation.InputInterval(x);
        _bounds[_input.Id] = _inputBox;
        var needs = new bool[_graph.Values.Count];
        foreach (var n in _graph.Nodes)
            if (n.Op.NeedsInputBounds) needs[n.Inputs[0].Id] = true;
        Executor.InterpretAll(_graph, new Walk(this, refine ? needs : null, lazy ? needs : null), [_inputBox]);
    }

    private sealed class Walk(BoundPropagator p, bool[]? refine, bool[]? needed) : IGraphInterpretation<Interval>
    {
        public Interval Initializer(Value value)
        {
            var t = p._detachConstants ? value.Data!.Detach() : value.Data!;
            return p._bounds[value.Id] = Interval.Constant(t);
        }

        public Interval[] Apply(Node node, Interval[] inputs)
        {
            Interval result;
            var v = node.Outputs[0];
            if (inputs.All(i => i.IsConstant))
                result = Interval.Constant(node.Op.Forward(ForwardContext.Eval, [.. inputs.Select(i => i.Lower)]));
            else if (needed != null && !needed[v.Id] && node.Op.BoundOutputShape(inputs) is { } shape)
            {
                // CROWN reads IBP bounds only where a relaxation needs them (and on their way there): the others,
                // e.g. the last layer's, are made only if something reads them (on a GPU, ~15 launches a layer).
                var op = node.Op;
                var options = p._options;
                result = Interval.Lazy(shape, () => { var r = op.IntervalForward(inputs, options); return (r.Lower, r.Upper); });
            }
            else
                result = node.Op.IntervalForward(inputs, p._options);
            p._bounds[v.Id] = result;
            if (refine != null && refine[v.Id] && !result.IsConstant && !p.IsFirstAffine(v))
                p._bounds[v.Id] = result = p.Refine(v, result);
            return [result];
        }
    }

    /// <summary>True when v is one affine op (after shape-only ops) of the perturbed input: IBP is exact there.</summary>
    private bool IsFirstAffine(Value v)
    {
        var n = v.Producer;
        if (n == null || !n.Op.IsAffineForBounds) return false;
        var perturbed = n.Inputs.Where(i => !_bounds[i.Id]!.IsConstant).ToArray();
        if (perturbed.Length != 1) return false;
        var w = perturbed[0];
        while (w.Producer is { } p && p.Op.IsShapeOnlyForBounds) w = p.Inputs[0];
        return w == _input;
    }

    /// <summary>CROWN bounds of value v (for the elements some consumer's relaxation is sensitive to), intersected with IBP.</summary>
    private Interval Refine(Value v, Interval ibp)
    {
        Tensor? mask = null;
        if (_options.SparseIntermediates)
        {
            foreach (var c in _graph.Consumers(v))
            {
                if (!c.Op.NeedsInputBounds || c.Inputs[0] != v) continue;
                var m = c.Op.BoundSensitiveMask(ibp);
                if (m == null) { mask = null; goto all; }
                mask = mask == null ? m : Tensor.Maximum(mask, m);
            }
        }
        all:
        int b = ibp.Shape[0], n = ibp.Lower.Numel / Math.Max(1, b);
        // The selected elements: example i's are pos[i·n ..][.. count[i]], ascending. This host work runs while a GPU
        // waits (the mask was just read), so it is a few flat passes over scratch arrays.
        var pos = HostScratch.Ints(b * n);
        var count = new int[b];
        if (mask != null)
        {
            var mv = HostScratch.Floats(b * n);
            mask.CopyTo(mv);
            for (int i = 0; i < b; i++) count[i] = Compact(mv.AsSpan(i * n, n), pos.AsSpan(i * n, n));
            HostScratch.Return(mv);
        }
        else
        {
            for (int j = 0; j < n; j++) pos[j] = j;
            for (int i = 1; i < b; i++) pos.AsSpan(0, n).CopyTo(pos.AsSpan(i * n, n));
            Array.Fill(count, n);
        }
        var sel = new SelectedRows(pos, count, n);
        if (count.All(x => x == 0)) { HostScratch.Return(pos); return ibp; }

        // Examples have different numbers of rows; a [B, R] pass pads every example to the largest count. So the
        // examples run in chunks of similar counts (sorted), which also bounds the size of the coefficient tensors.
        // index[q] / index[b·n + q]: the row of the chunks' results that bounds flat element q from below / above
        // (-1: IBP's bound stays).
        var index = HostScratch.Ints(2 * b * n);
        Array.Fill(index, -1);
        var parts = new List<Tensor>();
        int offset = 0;
        var order = ByCountDescending(count);
        bool cpu = ibp.Lower.Device == Device.Cpu;
        int maxChunkRows = _options.IntermediateChunkRows ?? (cpu ? MaxChunkRows : AcceleratorChunkRows(v, b, ibp.Lower.Device));
        bool large = maxChunkRows > MaxChunkRows;
        if (maxChunkRows < 1) throw new ArgumentOutOfRangeException(nameof(BoundOptions.IntermediateChunkRows), $"IntermediateChunkRows must be at least 1, got {maxChunkRows}.");
        for (int p0 = 0; p0 < order.Length;)
        {
            int r = count[order[p0]], p1 = p0 + 1;
            // Large chunks (accelerators: a launch costs more than padding rows) also mix more different row counts.
            while (p1 < order.Length && (p1 - p0 + 1) * 2 * r <= maxChunkRows && count[order[p1]] * (large ? 2 : 4) >= r * (large ? 1 : 3)) p1++;
            // In batch order: a chunk's rows are padded to its largest count r anyway, and a chunk of every example
            // then needs no gathers of the bounds it reads (examples = null), which on a GPU saves an index upload
            // and a launch per interval read.
            int[] ex = order[p0..p1];
            Array.Sort(ex);
            int c = ex.Length;
            Tensor lb;
            if (cpu || GradMode.IsEnabled) lb = RefineChunk(v, ibp, sel, ex, r, n, c == b ? null : ex);
            else
            {
                // On an accelerator a chunk's temporaries go back to the device's allocator when it is done (an
                // enclosing TensorScope would hold them until the whole computation ends, so chunks would not bound its
                // memory). No gradient refers to them; what the chunk made for the whole computation (relaxations and
                // bounds cached on the intervals, the input box's centre and radius) moves to the enclosing scope.
                using var scope = TensorScope.Begin();
                lb = scope.Keep(RefineChunk(v, ibp, sel, ex, r, n, c == b ? null : ex));
                foreach (var iv in _bounds)
                    if (iv != null) scope.Keep(iv.HeldTensors());
                if (_inputCenterRadius is { } cr) { scope.Keep(cr.Center); scope.Keep(cr.Radius); }
            }
            for (int j = 0; j < c; j++)
            {
                int i = ex[j], low = offset + j * 2 * r;
                var lowIdx = index.AsSpan(i * n, n);
                var upIdx = index.AsSpan(b * n + i * n, n);
                var list = sel.Of(i);
                for (int k = 0; k < list.Length; k++)
                {
                    lowIdx[list[k]] = low + k;
                    upIdx[list[k]] = low + r + k;
                }
            }
            parts.Add(lb.Reshape(c * 2 * r));
            offset += c * 2 * r;
            p0 = p1;
        }
        HostScratch.Return(pos);
        var refined = parts.Count == 1 ? parts[0] : Tensor.Concat([.. parts], 0);
        var merged = FusedBounds.Merge(ibp.Lower, ibp.Upper, refined, index) ?? MergeRecorded(ibp, refined, index, b * n);
        HostScratch.Return(index);
        return merged;
    }

    /// <summary>
    /// <see cref="FusedBounds.Merge"/> as differentiable tensor ops (where a gradient is recorded): gathers from
    /// [IBP's bounds; the rows], then the intersection with IBP.
    /// </summary>
    private static Interval MergeRecorded(Interval ibp, Tensor all, int[] index, int count)
    {
        var lowerIdx = HostScratch.Ints(count);
        var upperIdx = HostScratch.Ints(count);
        for (int q = 0; q < count; q++)
        {
            lowerIdx[q] = index[q] < 0 ? q : count + index[q];
            upperIdx[q] = index[count + q] < 0 ? q : count + index[count + q];
        }
        var lowerFull = Tensor.Concat([ibp.Lower.Reshape(count), all], 0).IndexSelect(0, lowerIdx).Reshape(ibp.Shape);
        var upperFull = Tensor.Concat([ibp.Upper.Reshape(count), -all], 0).IndexSelect(0, upperIdx).Reshape(ibp.Shape);
        HostScratch.Return(lowerIdx);
        HostScratch.Return(upperIdx);
        return new Interval(Tensor.Maximum(lowerFull, ibp.Lower), Tensor.Minimum(upperFull, ibp.Upper));
    }

    /// <summary>
    /// Rows per chunk of intermediate-bound rows: enough for efficient GEMMs, few enough that a chunk's coefficient
    /// tensors (a few MB) stay in cache and do not churn the allocator (measured: 384 beat 256, 512 and 2048 on both nets).
    /// </summary>
    private const int MaxChunkRows = 384;

    /// <summary>
    /// Rows per chunk on other devices (CUDA): there each chunk costs tens of kernel launches, an index upload and a
    /// launch per bound it gathers, and the host's time for all of it, so small chunks leave the GPU idle (CROWN on the
    /// MLP at batch 128 took 66 ms with 384-row chunks, one example each, on an H100; 3.0 ms with two chunks of
    /// 32,768 rows on an H200, where one chunk saves another ~24 gathers). The cap is by memory instead: a chunk's
    /// coefficient tensors are rows × (the widest value it passes back through) floats, kept under
    /// <see cref="AcceleratorChunkBytes"/> each (a few of them live at once) and under 1/32 of the device's memory
    /// (a small GPU gets smaller chunks instead of running out of memory), between 2^12 and 2^17 rows.
    /// </summary>
    private int AcceleratorChunkRows(Value v, int batch, Device device)
    {
        long widest = 1;
        foreach (int id in Ancestors(v))
            if (_bounds[id] is { IsConstant: false } iv) widest = Math.Max(widest, iv.Lower.Numel / Math.Max(1, batch));
        long cap = device.TotalMemory is long total && total > 0 ? Math.Min(AcceleratorChunkBytes, total / 32) : AcceleratorChunkBytes;
        return (int)Math.Clamp(cap / (sizeof(float) * widest), 1 << 12, 1 << 17);
    }

    /// <summary>Bytes of one coefficient tensor of an accelerator chunk (see <see cref="AcceleratorChunkRows"/>).</summary>
    private const long AcceleratorChunkBytes = 256L << 20;

    /// <summary>
    /// CROWN lower bounds [c, 2r] for the examples <paramref name="ex"/> (null: all, in order): rows k &lt; r bound
    /// example ex[j]'s k-th selected element from below, rows r + k from above (as the lower bound of its negation);
    /// rows past an example's count are zero.
    /// </summary>
    private Tensor RefineChunk(Value v, Interval ibp, SelectedRows selected, int[] ex, int r, int n, int[]? examples)
    {
        int c = ex.Length;
        // code = ±(position + 1), 0 for a zero row.
        var code = HostScratch.Ints(c * 2 * r);
        for (int j = 0; j < c; j++)
        {
            var list = selected.Of(ex[j]);
            var low = code.AsSpan(j * 2 * r, r);
            TensorPrimitives.Add(list, 1, low);
            low[list.Length..].Clear();
            TensorPrimitives.Negate(low, code.AsSpan(j * 2 * r + r, r));
        }
        var prod = v.Producer!;
        var prodIns = prod.Inputs.Select(w => Slice(_bounds[w.Id]!, examples)).ToArray();
        var start = prod.Op.SelectBackward(prodIns, code, c, 2 * r);
        Tensor? a = null;
        if (start == null)
        {
            var sel = new float[(long)c * 2 * r * n];
            for (int q = 0; q < code.Length; q++)
                if (code[q] != 0) sel[(long)q * n + Math.Abs(code[q]) - 1] = Math.Sign(code[q]);
            a = Tensor.FromSpan(sel, [c, 2 * r, .. ibp.Shape.AsSpan(1)], ibp.Lower.Device);
        }
        // SelectBackward has read the codes and kept none of them (its contract), so the array can be reused.
        HostScratch.Return(code);
        return start is { } s
            ? Backward(prod.Inputs[0], s.A, null, s.Bias, s.Mag, examples, ownStart: true)
            : Backward(v, a!, null, null, null, examples);
    }

    /// <summary>
    /// Writes the positions of m's nonzero (or NaN) entries to pos, ascending, and returns how many there are: eight
    /// entries a compare, then one step per selected entry (masks are often sparse), the rest one branch-free step each.
    /// </summary>
    internal static int Compact(ReadOnlySpan<float> m, Span<int> pos)
    {
        int k = 0, j = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float m0 = ref MemoryMarshal.GetReference(m);
            for (; j <= m.Length - 8; j += 8)
            {
                // −0 equals 0 (not selected), NaN equals nothing (selected), as m[j] != 0 below.
                uint bits = ~Vector256.Equals(Vector256.LoadUnsafe(ref m0, (nuint)j), Vector256<float>.Zero).ExtractMostSignificantBits() & 0xFFu;
                for (; bits != 0; bits &= bits - 1) pos[k++] = j + BitOperations.TrailingZeroCount(bits);
            }
        }
        for (; j < m.Length; j++)
        {
            pos[k] = j;
            k += m[j] != 0f ? 1 : 0;
        }
        return k;
    }

    /// <summary>The examples with a nonzero count, by count descending and then by index (a stable sort, without LINQ's allocations).</summary>
    private static int[] ByCountDescending(int[] count)
    {
        var keys = new long[count.Count(x => x > 0)];
        for (int i = 0, k = 0; i < count.Length; i++)
            if (count[i] > 0) keys[k++] = ((long)(int.MaxValue - count[i]) << 32) | (uint)i;
        Array.Sort(keys);
        var order = new int[keys.Length];
        for (int k = 0; k < keys.Length; k++) order[k] = (int)(keys[k] & 0xFFFFFFFF);
        return order;
    }

    /// <summary>Per example i, the selected element positions pos[i·n ..][.. count[i]] (see <see cref="Refine"/>).</summary>
    private readonly record struct SelectedRows(int[] Pos, int[] Count, int N)
    {
        public ReadOnlySpan<int> Of(int i) => Pos.AsSpan(i * N, Count[i]);
    }

    /// <summary>The bounds of the examples <paramref name="examples"/> only (null: all).</summary>
    private static Interval Slice(Interval iv, int[]? examples)
    {
        if (examples == null || iv.IsConstant) return iv;
        return new Interval(iv.Lower.IndexSelect(0, examples), iv.Upper.IndexSelect(0, examples))
        {
            Ball = iv.Ball, BallCenter = iv.BallCenter?.IndexSelect(0, examples),
        };
    }

    private (Tensor Center, Tensor Radius)? _inputCenterRadius;

    /// <summary>
    /// The input box's centre and radius, made once per computation (a clipped box's concretisation reads them in every
    /// backward pass: four launches each on a GPU, twenty-one passes in alpha-CROWN). The box never carries a gradient.
    /// </summary>
    private (Tensor Center, Tensor Radius)? InputCenterRadius()
    {
        if (_perturbation.ClipLow == null && _perturbation.ClipHigh == null || _perturbation.Norm != PerturbationNorm.LInf) return null;
        if (GradRecorder.ShouldRecord(_inputBox!.Lower, _inputBox.Upper)) return null;
        return _inputCenterRadius ??= (_inputBox.Center, _inputBox.Radius);
    }

    private HashSet<int> Ancestors(Value v)
    {
        var seen = new HashSet<int>();
        var stack = new Stack<Value>([v]);
        while (stack.Count > 0)
        {
            var w = stack.Pop();
            if (!seen.Add(w.Id)) continue;
            if (w.Producer is { } p) foreach (var i in p.Inputs) stack.Push(i);
        }
        return seen;
    }

    /// <summary>
    /// CROWN's backward pass: the lower bound over the perturbation set of a·v for each row of <paramref name="a"/>
    /// ([B, R, ...shape of v]), widened by the rounding margin; [B, R]. <paramref name="alphaFor"/> supplies the
    /// slope parameters of optimisable nodes (alpha-CROWN). <paramref name="bias0"/> and <paramref name="mag0"/> ([B, R])
    /// are a constant term already collected on the way to <paramref name="start"/> and its magnitude; with
    /// <paramref name="examples"/>, a's batch holds those examples only. <paramref name="ownStart"/>: bias0 and mag0 are
    /// new tensors nobody else holds, which the pass may add into in place.
    /// </summary>
    public Tensor Backward(Value start, Tensor a, Func<Node, Interval, int, Tensor?>? alphaFor, Tensor? bias0 = null, Tensor? mag0 = null, int[]? examples = null,
                           bool ownStart = false)
    {
        int b = a.Dims[0], rows = a.Dims[1];
        var acc = new Tensor?[_graph.Values.Count];
        acc[start.Id] = a;
        // The constant term and its magnitude start from the first contribution (zeros would cost launches on a GPU).
        // Once they are tensors this pass made (owned) and no gradient is recorded, the fused kernels add into them in
        // place (two launches fewer a step on a GPU; the same float adds).
        Tensor? bias = bias0, mag = mag0;
        bool owned = ownStart && bias0 != null && mag0 != null, inPlace = !GradMode.IsEnabled;
        int from = start.Producer?.Index ?? -1;
        for (int i = from; i >= 0; i--)
        {
            var node = _graph.Nodes[i];
            var outV = node.Outputs[0];
            if (acc[outV.Id] is not { } coeff) continue;
            acc[outV.Id] = null;
            var ins = node.Inputs.Select(w => Slice(_bounds[w.Id]!, examples)).ToArray();
            Tensor? alpha = alphaFor != null && node.Op.NeedsInputBounds ? alphaFor(node, ins[0], rows) : null;
            var step = new BackwardStep(coeff, ins, alpha, _options) { Accumulator = inPlace && owned ? (bias!, mag!) : null };
            try
            {
                node.Op.BoundBackward(step);
            }
            catch (Exception ex) when (ex is ArgumentException or NotSupportedException or InvalidOperationException && !ex.Message.StartsWith("Node '", StringComparison.Ordinal))
            {
                // Name the node. A rule that cannot bound it says so (NotSupported); a failure of the device (out of
                // memory, a CUDA error) or of a state keeps its kind, so that it is reported as what it is.
                string message = $"Node '{node.Name}' ({node.Op}): {ex.Message}";
                if (ex is InvalidOperationException) throw new InvalidOperationException(message, ex);
                throw new NotSupportedException(message, ex);
            }
            for (int j = 0; j < ins.Length; j++)
            {
                if (step.Coefficient(j) is not { } cj) continue;
                var w = node.Inputs[j];
                acc[w.Id] = acc[w.Id] is { } prev ? prev + cj : cj;
            }
            if (step.Bias is { } sb)
            {
                if (bias is null) { bias = sb; mag = step.Magnitude!; owned = step.BiasOwned; }
                else { bias = bias + sb; mag = mag! + step.Magnitude!; owned = true; }
            }
        }
        Tensor? value = bias;
        if (acc[_input.Id] is { } ain)
        {
            var flat = ain.Reshape(b, rows, ain.Numel / Math.Max(1, b * rows));
            var (v, m) = _perturbation.Concretize(flat, Slice(_inputBox!, examples), inPlace && owned ? (bias!, mag!) : null,
                                                  examples == null ? InputCenterRadius() : null);
            bool added = owned && ReferenceEquals(v, bias);   // accumulated in place
            value = value is null || added ? v : v + value;
            mag = mag is null || added ? m : mag + m;
        }
        value ??= Tensor.Zeros([b, rows], a.Device);
        return mag is null ? value - _options.RoundingAbsolute : value - (mag * _options.RoundingRelative + _options.RoundingAbsolute);
    }
}
