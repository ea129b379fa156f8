using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Engine.Autograd;
using Engine.Graph;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// A sequential graph compiled for the fast bound path (<see cref="ChainBounds"/>): the chain of layers from the
/// input to the output, with per-example shapes, for one input shape. A graph qualifies when every node has
/// exactly one input that depends on the perturbed input, that input is the previous node's output and nobody
/// else reads it (no branches), every other input is an initializer on the CPU, and every op is one the chain
/// supports (Linear on [B, in], Conv with one group, BatchNorm with running statistics, Add / Sub / Mul by a
/// constant that does not vary over the batch, ReLU, LeakyReLU with slope in [0, 1], and the shape-only ops).
/// Plans are cached per graph (weakly) and input shape; they hold the structure only, never weight values.
/// </summary>
internal sealed class ChainPlan
{
    private static readonly ConditionalWeakTable<ComputeGraph, Shapes> Cache = new();

    /// <summary>A graph's plans by input shape, with the last one looked up kept aside (calls repeat one shape).</summary>
    private sealed class Shapes
    {
        public readonly ConcurrentDictionary<string, ChainPlan?> ByKey = new();
        public volatile Tuple<int[], ChainPlan?>? Last;
    }
    private readonly ConcurrentBag<ChainRun> _runs = [];

    private ChainPlan(ChainLayer[] layers, int[] inputShape, Tensor[] constants)
    {
        Layers = layers; InputShape = inputShape; Constants = constants;
        InputSize = ShapeUtil.Numel(inputShape);
        int last = -1;
        for (int k = 0; k < layers.Length; k++) if (layers[k] is ActLayer) last = k;
        LastAct = last;
    }

    /// <summary>The layers; value k is the output of layer k.</summary>
    public ChainLayer[] Layers { get; }

    /// <summary>Per-example input shape and size.</summary>
    public int[] InputShape { get; }
    public int InputSize { get; }

    /// <summary>Every graph constant the layers read (for the gradient check).</summary>
    public Tensor[] Constants { get; }

    /// <summary>Index of the last activation layer (−1 when there is none).</summary>
    public int LastAct { get; }

    /// <summary>Elements per example of value k (k = −1: the input).</summary>
    public int Size(int k) => k < 0 ? InputSize : Layers[k].OutSize;

    /// <summary>A reusable set of buffers for one call (returned with <see cref="Return"/>).</summary>
    public ChainRun Rent() => _runs.TryTake(out var r) ? r : new ChainRun(this);

    public void Return(ChainRun run) { if (_runs.Count < 4) _runs.Add(run); }

    /// <summary>The plan of <paramref name="graph"/> for inputs of shape <paramref name="xShape"/>, or null when the graph is not a supported chain.</summary>
    public static ChainPlan? For(ComputeGraph graph, int[] xShape)
    {
        var shapes = Cache.GetValue(graph, _ => new Shapes());
        if (shapes.Last is { } last && last.Item1.AsSpan().SequenceEqual(xShape)) return last.Item2;
        string key = string.Join(",", xShape);
        if (!shapes.ByKey.TryGetValue(key, out var plan))
        {
            plan = Compile(graph, xShape);
            if (shapes.ByKey.Count > 16) shapes.ByKey.Clear();
            shapes.ByKey[key] = plan;
        }
        shapes.Last = Tuple.Create((int[])xShape.Clone(), plan);
        return plan;
    }

    /// <summary>The live data of a CPU tensor (the tensor must stay referenced while the span is used).</summary>
    public static ReadOnlySpan<float> Data(Tensor t) => ((CpuStorage)t.Storage).RawData.AsSpan(t.Offset, t.Numel);

    private static ChainPlan? Compile(ComputeGraph g, int[] xShape)
    {
        if (g.Inputs.Count != 1 || g.Outputs.Count != 1 || xShape.Length < 2 || xShape[0] < 1) return null;
        foreach (var n in g.Nodes) if (n.Outputs.Count != 1) return null;
        foreach (var v in g.Values)
            if (v.IsInitializer && v.Data!.Storage is not CpuStorage) return null;
        // Shapes of every value at this batch size, from the ops' own forward (so a reshape that fixes the batch
        // size is only accepted where it holds).
        Tensor[] vals;
        try
        {
            using (new NoGrad()) vals = Executor.RunAll(g, ForwardContext.Eval, Tensor.Zeros(xShape));
        }
        // Whatever stops the forward (a bad shape, an unsupported op) is reported by the generic path instead.
        catch (Exception e) when (e is not OutOfMemoryException) { return null; }
        int batch = xShape[0];
        var layers = new List<ChainLayer>();
        var constants = new List<Tensor>();
        var tail = g.Inputs[0];
        bool sawLayer = false, tailIsFirstAffine = false;
        foreach (var node in g.Nodes)
        {
            int at = -1;
            for (int i = 0; i < node.Inputs.Count; i++)
            {
                var v = node.Inputs[i];
                if (v == tail) { if (at >= 0) return null; at = i; }
                else if (!v.IsInitializer) return null;
            }
            if (at < 0 || g.Consumers(tail).Count != 1) return null;
            var inFull = vals[tail.Id].Dims; var outFull = vals[node.Outputs[0].Id].Dims;
            if (inFull.Length < 1 || outFull.Length < 1 || inFull[0] != batch || outFull[0] != batch) return null;
            int[] inShape = inFull[1..], outShape = outFull[1..];
            Tensor Const(int i) => node.Inputs[i].Data!;
            ChainLayer? layer;
            bool affine = true;
            switch (node.Op)
            {
                case FlattenOp or ReshapeOp or IdentityOp or DropoutOp:
                    if (ShapeUtil.Numel(inShape) != ShapeUtil.Numel(outShape)) return null;
                    tailIsFirstAffine = false;
                    tail = node.Outputs[0];
                    continue;
                case LinearOp:
                {
                    if (at != 0 || inShape.Length != 1) return null;
                    var w = Const(1);
                    if (w.Rank != 2 || w.Dims[1] != inShape[0] || outShape.Length != 1 || w.Dims[0] != outShape[0]) return null;
                    var b = node.Inputs.Count > 2 ? Const(2) : null;
                    if (b != null && b.Numel != w.Dims[0]) return null;
                    layer = new DenseLayer(w, b);
                    constants.Add(w); if (b != null) constants.Add(b);
                    break;
                }
                case Conv2dOp conv:
                {
                    if (at != 0 || inShape.Length != 3 || outShape.Length != 3 || conv.Groups != 1) return null;
                    var w = Const(1);
                    if (w.Rank != 4 || w.Dims[1] != inShape[0] || w.Dims[0] != outShape[0]) return null;
                    var b = node.Inputs.Count > 2 ? Const(2) : null;
                    if (b != null && b.Numel != w.Dims[0]) return null;
                    layer = new ConvLayer(w, b, inShape[0], inShape[1], inShape[2], outShape[0], outShape[1], outShape[2], w.Dims[2], w.Dims[3],
                                          conv.Stride, conv.Padding, conv.Dilation).Init();
                    constants.Add(w); if (b != null) constants.Add(b);
                    break;
                }
                case BatchNormOp bn:
                {
                    if (at != 0 || node.Inputs.Count < 5 || inShape.Length < 1) return null;
                    int c = inShape[0];
                    for (int i = 1; i < 5; i++) if (Const(i).Numel != c) return null;
                    layer = new ElemLayer
                    {
                        Kind = ElemLayer.Source.BatchNorm, BnW = Const(1), BnB = Const(2), BnMean = Const(3), BnVar = Const(4),
                        BnEps = bn.Eps, Spatial = ShapeUtil.Numel(inShape) / Math.Max(1, c),
                    };
                    for (int i = 1; i < 5; i++) constants.Add(Const(i));
                    break;
                }
                case AddOp or SubOp or MulOp:
                {
                    var k = Const(1 - at);
                    var index = BroadcastIndex(k.Dims, inFull);
                    if (index == null || !ShapeUtil.SameShape(inShape, outShape)) return null;
                    var kind = node.Op switch
                    {
                        MulOp => ElemLayer.Source.Mul,
                        AddOp => ElemLayer.Source.Add,
                        _ => at == 0 ? ElemLayer.Source.Sub : ElemLayer.Source.ReverseSub,
                    };
                    layer = new ElemLayer { Kind = kind, K = k, KIndex = index, ReverseAdd = node.Op is AddOp && at == 1 };
                    constants.Add(k);
                    break;
                }
                case ReluOp:
                    layer = new ActLayer(0f) { RefineInput = !tailIsFirstAffine };
                    affine = false;
                    break;
                case LeakyReluOp leaky:
                    if (!(leaky.NegativeSlope >= 0 && leaky.NegativeSlope <= 1)) return null;
                    layer = new ActLayer(leaky.NegativeSlope) { RefineInput = !tailIsFirstAffine };
                    affine = false;
                    break;
                default:
                    return null;
            }
            layer.InShape = inShape; layer.OutShape = outShape;
            layer.InSize = ShapeUtil.Numel(inShape); layer.OutSize = ShapeUtil.Numel(outShape);
            if (layer.InSize == 0 || layer.OutSize == 0) return null;
            if (layer is ActLayer && layer.InSize != layer.OutSize) return null;
            // The generic path takes IBP at the first affine layer of the input as exact and does not refine it.
            tailIsFirstAffine = affine && !sawLayer;
            sawLayer = true;
            layers.Add(layer);
            tail = node.Outputs[0];
        }
        if (tail != g.Outputs[0] || layers.Count == 0) return null;
        return new ChainPlan([.. layers], xShape[1..], [.. constants]);
    }

    /// <summary>
    /// For a constant k broadcast against a perturbed value of full shape <paramref name="full"/> ([B, ...]): the index
    /// into k's data of each element of one example; null when k would vary over the batch or enlarge the value.
    /// </summary>
    private static int[]? BroadcastIndex(int[] k, int[] full)
    {
        if (k.Length > full.Length) return null;
        if (k.Length == full.Length && k[0] != 1) return null;
        int[] strides;
        try { strides = ShapeUtil.BroadcastStrides(k, full); }
        catch (ArgumentException) { return null; }
        int n = ShapeUtil.Numel(full) / Math.Max(1, full[0]);
        var idx = new int[n];
        int rank = full.Length;
        var pos = new int[rank];
        for (int i = 0; i < n; i++)
        {
            int off = 0;
            for (int d = 1; d < rank; d++) off += pos[d] * strides[d];
            idx[i] = off;
            for (int d = rank - 1; d >= 1; d--)
            {
                if (++pos[d] < full[d]) break;
                pos[d] = 0;
            }
        }
        return idx;
    }
}
