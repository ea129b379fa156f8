using Engine.Graph;
using Engine.Tensors;
using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// The float64 soundness guard: the network (its float32 weights read exactly as doubles) as a chain of dense,
/// element-wise affine, permutation and ReLU layers over the flattened input, bounded with outward rounding so that
/// its bounds hold for the network evaluated in exact real arithmetic. Supported graphs: one input and one output,
/// each node with one perturbed input, ops Linear, MatMul by a constant, Add / Sub / Mul by a constant, Relu,
/// Flatten, Reshape, Identity, Dropout, Transpose and Conv (as a dense matrix, read exactly from the float32 kernel
/// with one-hot inputs) of moderate size. <see cref="TryCreate"/> says why a graph is not supported.
/// <para>
/// Method (float64 CROWN with rigorous error terms): interval bounds of every layer (IBP, each bound rounded
/// outward), then for every ReLU input neuron that IBP leaves unstable, CROWN back-substitution of ±eᵢ; the bounds
/// of the output spec rows by CROWN too. Each back-substitution step keeps the invariant cᵀy ≥ λᵀz + β for every
/// reachable z, with λ exactly the stored double vector: the rounding of λ' = fl(Wᵀλ) is charged to β as
/// −Σⱼ eⱼ·max|zⱼ| (eⱼ the dot-product error bound, max|zⱼ| from the layer's rigorous bounds); ReLU relaxations use
/// 0/1 lower slopes (exact products) and an upper line whose intercept is rounded up until it lies above ReLU at
/// both interval ends (by convexity, above it on the whole interval); constant terms are summed rounding down.
/// </para>
/// </summary>
public sealed class RigorousNetwork
{
    private readonly RigorousLayer[] _layers;

    private RigorousNetwork(RigorousLayer[] layers, int inputSize, int outputSize)
    {
        _layers = layers; InputSize = inputSize; OutputSize = outputSize;
    }

    /// <summary>Length of the flattened input of one example.</summary>
    public int InputSize { get; }

    /// <summary>Length of the flattened output of one example.</summary>
    public int OutputSize { get; }

    /// <summary>Number of ReLU neurons.</summary>
    public int ReluCount => _layers.OfType<ReluLayer>().Sum(l => l.In);

    /// <summary>Largest dense matrix (rows × columns) a Conv is expanded into.</summary>
    public const long MaxDenseElements = 20_000_000;

    /// <summary>
    /// Reads a one-input, one-output graph whose input is one example of shape <paramref name="inputShape"/>
    /// (without the batch dimension); null with the reason when the graph has an op or structure the guard does
    /// not support.
    /// </summary>
    public static RigorousNetwork? TryCreate(ComputeGraph graph, int[] inputShape, out string? reason)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(inputShape);
        try { return Read(graph, inputShape, out reason); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or InvalidOperationException)
        {
            reason = $"the graph could not be read for the float64 guard: {e.Message}";
            return null;
        }
    }

    private static RigorousNetwork? Read(ComputeGraph graph, int[] inputShape, out string? reason)
    {
        reason = null;
        if (graph.Inputs.Count != 1 || graph.Outputs.Count != 1) { reason = "the graph must have one input and one output"; return null; }
        // Per value: a constant tensor, or the chain (the current perturbed value) with its per-example shape.
        var consts = new Tensor?[graph.Values.Count];
        foreach (var v in graph.Values) if (v.IsInitializer) consts[v.Id] = v.Data!.Detach();
        int chain = graph.Inputs[0].Id;
        int[] shape = (int[])inputShape.Clone();
        int inputSize = ShapeUtil.Numel(shape);
        var layers = new List<RigorousLayer>();
        foreach (var node in graph.Nodes)
        {
            if (node.Outputs.Count != 1) { reason = $"node '{node.Name}' has {node.Outputs.Count} outputs"; return null; }
            var ins = node.Inputs;
            int perturbed = 0;
            foreach (var v in ins) if (consts[v.Id] == null) perturbed++;
            var outId = node.Outputs[0].Id;
            if (perturbed == 0)
            {
                using (new Autograd.NoGrad())
                    consts[outId] = node.Op.Forward(ForwardContext.Eval, ins.Select(v => consts[v.Id]!).ToArray()).Detach();
                continue;
            }
            if (perturbed != 1 || ins.All(v => v.Id != chain))
            {
                reason = $"node '{node.Name}' ({node.Op.Type}) is not on a single chain from the input (branches are not supported by the float64 guard)";
                return null;
            }
            int ci = ins.ToList().FindIndex(v => v.Id == chain);
            Tensor? K(int i) => i < ins.Count ? consts[ins[i].Id] : null;
            int n = ShapeUtil.Numel(shape);
            string? why;
            RigorousLayer? layer;
            int[] outShape;
            using (new Autograd.NoGrad())
                (layer, outShape, why) = node.Op switch
                {
                    LinearOp when ci == 0 => Linear(shape, K(1)!, K(2)),
                    MatMulOp when ci == 0 && K(1) is { Rank: 2 } w => Linear(shape, w.Permute(1, 0), null),
                    AddOp or SubOp => Elementwise(node.Op, shape, ci, K(1 - ci)!),
                    MulOp => Elementwise(node.Op, shape, ci, K(1 - ci)!),
                    ReluOp => (new ReluLayer { In = n, Out = n }, shape, null),
                    FlattenOp or ReshapeOp or IdentityOp or DropoutOp => Reshaped(node.Op, shape),
                    TransposeOp => Transposed(node.Op, shape),
                    Conv2dOp when ci == 0 => Conv(node.Op, shape, K(1)!, K(2)),
                    _ => (null, shape, $"op {node.Op.Type} (node '{node.Name}') is not supported by the float64 guard"),
                };
            if (why != null) { reason = why; return null; }
            if (layer != null) layers.Add(layer);
            shape = outShape;
            chain = outId;
        }
        if (graph.Outputs[0].Id != chain) { reason = "the graph output does not depend on the input along the chain"; return null; }
        return new RigorousNetwork([.. layers], inputSize, ShapeUtil.Numel(shape));
    }

    private static double[] D(Tensor t) => Array.ConvertAll(t.ToArray(), f => (double)f);

    private static (RigorousLayer?, int[], string?) Linear(int[] shape, Tensor w, Tensor? b)
    {
        if (shape.Length != 1) return (null, shape, $"Linear on a per-example shape {ShapeUtil.Format(shape)} (only vectors are supported by the float64 guard)");
        if (w.Rank != 2 || w.Dims[1] != shape[0]) return (null, shape, $"Linear weight {ShapeUtil.Format(w.Dims)} does not fit input {ShapeUtil.Format(shape)}");
        int o = w.Dims[0];
        if (b != null && b.Numel != o) return (null, shape, $"Linear bias {ShapeUtil.Format(b.Dims)} does not fit {o} outputs");
        return (new DenseLayer { In = shape[0], Out = o, W = D(w), B = b == null ? null : D(b) }, [o], null);
    }

    private static (RigorousLayer?, int[], string?) Elementwise(Graph.Op op, int[] shape, int ci, Tensor k)
    {
        // The constant broadcast against one example [1, ...shape]; adding it to zeros (or multiplying ones) is exact.
        int[] full = [1, .. shape];
        Tensor kk;
        try { kk = op is MulOp ? Tensor.Ones(full) * k : Tensor.Zeros(full) + k; }
        catch (ArgumentException) { return (null, shape, $"{op.Type} constant {ShapeUtil.Format(k.Dims)} does not broadcast to {ShapeUtil.Format(full)}"); }
        if (!ShapeUtil.SameShape(kk.Dims, full)) return (null, shape, $"{op.Type} constant {ShapeUtil.Format(k.Dims)} changes the per-example shape {ShapeUtil.Format(shape)}");
        var v = D(kk);
        int n = v.Length;
        return op switch
        {
            MulOp => (new DiagLayer { In = n, Out = n, A = v }, shape, null),
            AddOp => (new DiagLayer { In = n, Out = n, C = v }, shape, null),
            // x − k, or k − x.
            _ when ci == 0 => (new DiagLayer { In = n, Out = n, C = Array.ConvertAll(v, x => -x) }, shape, null),
            _ => (new DiagLayer { In = n, Out = n, A = Enumerable.Repeat(-1.0, n).ToArray(), C = v }, shape, null),
        };
    }

    private static (RigorousLayer?, int[], string?) Reshaped(Graph.Op op, int[] shape)
    {
        var y = op.Forward(ForwardContext.Eval, [Tensor.Zeros([1, .. shape])]);
        if (y.Dims.Length == 0 || y.Dims[0] != 1 || y.Numel != ShapeUtil.Numel(shape))
            return (null, shape, $"{op} mixes the batch dimension (per-example shape {ShapeUtil.Format(shape)} -> {ShapeUtil.Format(y.Dims)})");
        return (null, y.Dims[1..], null);
    }

    private static (RigorousLayer?, int[], string?) Transposed(Graph.Op op, int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        if (n > 1 << 24) return (null, shape, "Transpose of more than 2^24 elements");
        var idx = Tensor.Arange(n).Reshape([1, .. shape]);
        var y = op.Forward(ForwardContext.Eval, [idx]);
        if (y.Dims.Length == 0 || y.Dims[0] != 1) return (null, shape, $"{op} moves the batch dimension");
        var src = Array.ConvertAll(y.ToArray(), f => (int)f);
        return (new PermLayer { In = n, Out = n, Src = src }, y.Dims[1..], null);
    }

    private static (RigorousLayer?, int[], string?) Conv(Graph.Op op, int[] shape, Tensor w, Tensor? b)
    {
        int n = ShapeUtil.Numel(shape);
        var probe = op.Forward(ForwardContext.Eval, [Tensor.Zeros([1, .. shape]), w]);
        int m = probe.Numel;
        if ((long)n * m > MaxDenseElements) return (null, shape, $"Conv {ShapeUtil.Format(shape)} -> {ShapeUtil.Format(probe.Dims[1..])} is too large for the dense float64 guard");
        // One-hot inputs: each output is one weight plus exact zeros, so the float32 kernel returns the weights exactly.
        var mat = new double[(long)m * n];
        const int chunk = 256;
        for (int s = 0; s < n; s += chunk)
        {
            int c = Math.Min(chunk, n - s);
            var basis = new float[c * n];
            for (int i = 0; i < c; i++) basis[i * n + s + i] = 1f;
            var y = op.Forward(ForwardContext.Eval, [Tensor.FromArray(basis, [c, .. shape]), w]).ToArray();
            for (int i = 0; i < c; i++)
                for (int o = 0; o < m; o++) mat[(long)o * n + s + i] = y[i * m + o];
        }
        double[]? bias = null;
        if (b != null)
        {
            int ch = probe.Dims[1], per = m / ch;
            var bv = b.ToArray();
            if (bv.Length != ch) return (null, shape, $"Conv bias {ShapeUtil.Format(b.Dims)} does not fit {ch} channels");
            bias = new double[m];
            for (int o = 0; o < m; o++) bias[o] = bv[o / per];
        }
        return (new DenseLayer { In = n, Out = m, W = mat, B = bias }, probe.Dims[1..], null);
    }

    /// <summary>Float64 forward pass of one example (round to nearest; for re-checking a counterexample, not a bound).</summary>
    public double[] Evaluate(ReadOnlySpan<double> x)
    {
        if (x.Length != InputSize) throw new ArgumentException($"RigorousNetwork.Evaluate: expected {InputSize} inputs, got {x.Length}.");
        var z = x.ToArray();
        foreach (var layer in _layers)
        {
            var y = new double[layer.Out];
            switch (layer)
            {
                case DenseLayer d:
                    for (int o = 0; o < d.Out; o++)
                    {
                        double s = d.B?[o] ?? 0;
                        var row = d.W.AsSpan(o * d.In, d.In);
                        for (int i = 0; i < d.In; i++) s += row[i] * z[i];
                        y[o] = s;
                    }
                    break;
                case DiagLayer g:
                    for (int i = 0; i < y.Length; i++) y[i] = (g.A?[i] ?? 1) * z[i] + (g.C?[i] ?? 0);
                    break;
                case PermLayer p:
                    for (int i = 0; i < y.Length; i++) y[i] = z[p.Src[i]];
                    break;
                default:
                    for (int i = 0; i < y.Length; i++) y[i] = Math.Max(z[i], 0);
                    break;
            }
            z = y;
        }
        return z;
    }

    /// <summary>
    /// Rigorous bounds over the input box [lower, upper] (every layer's output bounds, by IBP refined with CROWN
    /// where a ReLU is unstable); ask the result for the bounds of linear functions of the output.
    /// </summary>
    public RigorousBox Analyze(ReadOnlySpan<double> lower, ReadOnlySpan<double> upper)
    {
        if (lower.Length != InputSize || upper.Length != InputSize)
            throw new ArgumentException($"RigorousNetwork.Analyze: expected {InputSize} input bounds, got {lower.Length} and {upper.Length}.");
        for (int i = 0; i < lower.Length; i++)
            if (!(lower[i] <= upper[i]) || !double.IsFinite(lower[i]) || !double.IsFinite(upper[i]))
                throw new ArgumentException($"RigorousNetwork.Analyze: input {i} has bounds [{lower[i]}, {upper[i]}], not a finite non-empty interval.");
        return new RigorousBox(_layers, lower.ToArray(), upper.ToArray());
    }
}
