using Engine.Graph;
using Engine.Tensors;
using static Engine.Verification.Directed;

namespace Engine.Verification;

/// <summary>
/// The float64 soundness guard: the network (its float32 weights read exactly as doubles) as a DAG of dense,
/// element-wise affine, permutation, sum, ReLU, sigmoid, tanh and max nodes over flattened per-example vectors,
/// bounded with outward rounding so that its bounds hold for the network evaluated in exact real arithmetic.
/// Supported graphs: one input and one output; ops Linear, MatMul by a constant, Add / Sub / Mul by a constant, Div
/// by a constant, Add / Sub of two computed values (residual connections), Relu, Sigmoid, Tanh, Flatten, Reshape,
/// Identity, Dropout, Transpose, Conv (as a dense matrix, read exactly from the float32 kernel with one-hot inputs),
/// MaxPool, AveragePool and inference-form BatchNormalization. <see cref="TryCreate"/> says why a graph is not
/// supported.
/// <para>
/// Method (float64 CROWN with rigorous error terms): interval bounds of every node (IBP, each bound rounded
/// outward), then for every neuron that feeds a nonlinearity and is not fixed by its interval (an unstable ReLU
/// input, any sigmoid / tanh / max input), CROWN back-substitution of ±eᵢ; the bounds of linear functions of the
/// output by CROWN too. Each back-substitution step keeps the invariant cᵀy ≥ λᵀz + β for every reachable z, with λ
/// exactly the stored double vector: the rounding of λ' = fl(Wᵀλ) is charged to β as −Σᵢ errᵢ·max|zᵢ| (errᵢ the
/// dot-product error bound, max|zᵢ| from the node's rigorous bounds), as is every product with a non-exact
/// coefficient and every accumulation at a node read twice; a coefficient known only as an interval a ± r is
/// charged |λ|·r·max|z|. ReLU lower lines use any slope α in [0, 1] (relu(v) ≥ α·v holds for all v), the upper line's
/// intercept is rounded up until it lies above ReLU at both interval ends (by convexity, above it on the whole
/// interval); sigmoid / tanh lines come from <see cref="SShapeLines"/>; constant terms are summed rounding down.
/// </para>
/// </summary>
public sealed class RigorousNetwork
{
    internal RigorousNode[] Nodes { get; }

    /// <summary>Per node: how many times later nodes read it (an accumulation of λ there is charged when &gt; 1).</summary>
    internal int[] FanOut { get; }

    /// <summary>Per node: 0 no CROWN refinement; 1 refine the neurons whose interval straddles 0 (ReLU inputs); 2 refine every non-point neuron.</summary>
    internal byte[] Refine { get; }

    private RigorousNetwork(RigorousNode[] nodes)
    {
        Nodes = nodes;
        InputSize = nodes[0].Size;
        OutputSize = nodes[^1].Size;
        FanOut = new int[nodes.Length];
        Refine = new byte[nodes.Length];
        foreach (var n in nodes)
            foreach (int i in n.Inputs)
            {
                FanOut[i]++;
                if (i == 0 || nodes[i] is ReluNode or SShapeNode || nodes[i] is GroupNode { IsMax: true }) continue;
                byte want = n switch { ReluNode => 1, SShapeNode => 2, GroupNode { IsMax: true } => 2, _ => 0 };
                Refine[i] = Math.Max(Refine[i], want);
            }
    }

    /// <summary>Length of the flattened input of one example.</summary>
    public int InputSize { get; }

    /// <summary>Length of the flattened output of one example.</summary>
    public int OutputSize { get; }

    /// <summary>Number of ReLU neurons.</summary>
    public int ReluCount => Nodes.OfType<ReluNode>().Sum(l => l.Size);

    /// <summary>Largest dense matrix (rows × columns) a Conv is expanded into (also the limit of pooling windows read by probing).</summary>
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
        try
        {
            using (new Autograd.NoGrad())
                return Read(graph, inputShape, out reason);
        }
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
        // Per value: a constant tensor, or a node of the guard with the value's per-example shape.
        var consts = new Tensor?[graph.Values.Count];
        var nodeOf = new int[graph.Values.Count];
        var shapeOf = new int[graph.Values.Count][];
        Array.Fill(nodeOf, -1);
        // The guard computes in double on the host: the constants come to the CPU (a model on a GPU is read as well),
        // and the probes it builds on the CPU then meet them there.
        foreach (var v in graph.Values) if (v.IsInitializer) consts[v.Id] = v.Data!.Detach().ToCpu();
        var nodes = new List<RigorousNode> { new InputNode { Size = ShapeUtil.Numel(inputShape) } };
        nodeOf[graph.Inputs[0].Id] = 0;
        shapeOf[graph.Inputs[0].Id] = (int[])inputShape.Clone();
        foreach (var node in graph.Nodes)
        {
            if (node.Outputs.Count != 1) { reason = $"node '{node.Name}' has {node.Outputs.Count} outputs"; return null; }
            var ins = node.Inputs;
            var outId = node.Outputs[0].Id;
            var perturbed = Enumerable.Range(0, ins.Count).Where(i => consts[ins[i].Id] == null).ToArray();
            if (perturbed.Length == 0)
            {
                consts[outId] = node.Op.Forward(ForwardContext.Eval, ins.Select(v => consts[v.Id]!).ToArray()).Detach();
                continue;
            }
            foreach (int i in perturbed)
                if (nodeOf[ins[i].Id] < 0) { reason = $"node '{node.Name}' ({node.Op.Type}) reads a value that is neither constant nor computed from the input"; return null; }
            int ci = perturbed[0];
            int src = nodeOf[ins[ci].Id];
            var shape = shapeOf[ins[ci].Id];
            Tensor? K(int i) => i < ins.Count ? consts[ins[i].Id] : null;
            int n = ShapeUtil.Numel(shape);
            Built b;
            if (perturbed.Length == 2 && node.Op is AddOp or SubOp)
                b = Sum(node.Op, ins[0].Id, ins[1].Id, nodeOf, shapeOf);
            else if (perturbed.Length != 1)
                b = Built.No($"node '{node.Name}' ({node.Op.Type}) combines {perturbed.Length} computed values (only Add / Sub of two is supported by the float64 guard)");
            else
                b = node.Op switch
                {
                    LinearOp when ci == 0 => Linear(shape, K(1)!, K(2)),
                    MatMulOp when ci == 0 && K(1) is { Rank: 2 } w => Linear(shape, w.Permute(1, 0), null),
                    AddOp or SubOp or MulOp => Elementwise(node.Op, shape, ci, K(1 - ci)!),
                    DivOp when ci == 0 => Divide(shape, K(1)!),
                    ReluOp => new Built(new ReluNode { Size = n }, shape),
                    SigmoidOp => new Built(new SShapeNode { Size = n, Kind = SShapeKind.Sigmoid }, shape),
                    TanhOp => new Built(new SShapeNode { Size = n, Kind = SShapeKind.Tanh }, shape),
                    FlattenOp or ReshapeOp or IdentityOp or DropoutOp => Reshaped(node.Op, shape),
                    TransposeOp => Transposed(node.Op, shape),
                    Conv2dOp when ci == 0 => Conv(node.Op, shape, K(1)!, K(2)),
                    BatchNormOp bn when ci == 0 => BatchNorm(bn, shape, ins.Skip(1).Select(v => consts[v.Id]!).ToArray()),
                    MaxPool2dOp or AvgPool2dOp => Pool(node.Op, shape),
                    _ => Built.No($"op {node.Op.Type} (node '{node.Name}') is not supported by the float64 guard"),
                };
            if (b.Why != null) { reason = b.Why; return null; }
            if (b.Nodes.Length == 0) nodeOf[outId] = src;
            else
            {
                // The first new node reads src (unless it says otherwise), each later one the node before it.
                for (int k = 0; k < b.Nodes.Length; k++)
                {
                    var nd = b.Nodes[k];
                    if (nd.Inputs.Length == 0) nd.Inputs = k == 0 ? [src] : [nodes.Count - 1];
                    nodes.Add(nd);
                }
                nodeOf[outId] = nodes.Count - 1;
            }
            shapeOf[outId] = b.Shape;
        }
        int outNode = nodeOf[graph.Outputs[0].Id];
        if (outNode < 0) { reason = "the graph output does not depend on the input"; return null; }
        if (outNode != nodes.Count - 1 || outNode == 0)
            nodes.Add(new DiagNode { Size = nodes[outNode].Size, Inputs = [outNode] });
        return new RigorousNetwork([.. nodes]);
    }

    /// <summary>The nodes an op becomes (none: the value is an alias of its input), its output shape, or why it cannot be read.</summary>
    private readonly record struct Built(RigorousNode[] Nodes, int[] Shape, string? Why = null)
    {
        public Built(RigorousNode node, int[] shape) : this([node], shape) { }
        public static Built No(string why) => new([], [], why);
    }

    private static double[] D(Tensor t) => Array.ConvertAll(t.ToArray(), f => (double)f);

    private static DenseNode Dense(int inN, int outN, double[] w, double[]? b)
    {
        var col = new double[inN];
        var cnt = new int[inN];
        for (int o = 0; o < outN; o++)
            for (int i = 0; i < inN; i++) col[i] += Math.Abs(w[(long)o * inN + i]);
        // Sums of non-negative terms: the exact sum is at most the computed one plus its error bound.
        for (int i = 0; i < inN; i++) col[i] = Up(col[i] + DotSlack(col[i], outN));
        return new DenseNode { Size = outN, In = inN, W = w, B = b, ColAbs = col, AbsW = Array.ConvertAll(w, Math.Abs), Runs = SparseRuns.TryCreate(w, outN, inN) };
    }

    private static Built Linear(int[] shape, Tensor w, Tensor? b)
    {
        if (shape.Length != 1) return Built.No($"Linear on a per-example shape {ShapeUtil.Format(shape)} (only vectors are supported by the float64 guard)");
        if (w.Rank != 2 || w.Dims[1] != shape[0]) return Built.No($"Linear weight {ShapeUtil.Format(w.Dims)} does not fit input {ShapeUtil.Format(shape)}");
        int o = w.Dims[0];
        if (b != null && b.Numel != o) return Built.No($"Linear bias {ShapeUtil.Format(b.Dims)} does not fit {o} outputs");
        return new Built(Dense(shape[0], o, D(w), b == null ? null : D(b)), [o]);
    }

    /// <summary>The constant broadcast against one example [1, ...shape] (adding it to zeros or multiplying ones is exact); null when it does not fit.</summary>
    private static double[]? Broadcast(Tensor k, int[] shape, bool ones)
    {
        int[] full = [1, .. shape];
        Tensor kk;
        try { kk = ones ? Tensor.Ones(full) * k : Tensor.Zeros(full) + k; }
        catch (ArgumentException) { return null; }
        return ShapeUtil.SameShape(kk.Dims, full) ? D(kk) : null;
    }

    private static Built Elementwise(Graph.Op op, int[] shape, int ci, Tensor k)
    {
        var v = Broadcast(k, shape, op is MulOp);
        if (v == null) return Built.No($"{op.Type} constant {ShapeUtil.Format(k.Dims)} does not broadcast to the per-example shape {ShapeUtil.Format(shape)}");
        int n = v.Length;
        RigorousNode node = op switch
        {
            MulOp => new DiagNode { Size = n, A = v },
            AddOp => new DiagNode { Size = n, C = v },
            // x − k, or k − x.
            _ when ci == 0 => new DiagNode { Size = n, C = Array.ConvertAll(v, x => -x) },
            _ => new DiagNode { Size = n, A = Enumerable.Repeat(-1.0, n).ToArray(), C = v },
        };
        return new Built(node, shape);
    }

    private static Built Divide(int[] shape, Tensor k)
    {
        var v = Broadcast(k, shape, ones: true);
        if (v == null) return Built.No($"Div constant {ShapeUtil.Format(k.Dims)} does not broadcast to the per-example shape {ShapeUtil.Format(shape)}");
        var a = new double[v.Length];
        var r = new double[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] == 0 || !double.IsFinite(v[i])) return Built.No($"Div by a constant with the value {v[i]}");
            // 1/c rounded once: the exact reciprocal is within one step of it.
            (a[i], r[i]) = MidRad(Down(1 / v[i]), Up(1 / v[i]));
        }
        return new Built(new DiagNode { Size = v.Length, A = a, ARad = r }, shape);
    }

    /// <summary>A midpoint and a radius (rounded up) whose interval contains [lo, hi].</summary>
    private static (double Mid, double Rad) MidRad(double lo, double hi)
    {
        double m = lo + 0.5 * (hi - lo);
        return (m, Up(Math.Max(hi - m, m - lo)));
    }

    private static Built BatchNorm(BatchNormOp op, int[] shape, Tensor[] p)
    {
        if (p.Length < 4) return Built.No("BatchNormalization without running statistics (batch statistics are not a per-example function)");
        if (shape.Length < 1) return Built.No("BatchNormalization of a scalar");
        int c = shape[0], per = ShapeUtil.Numel(shape) / Math.Max(1, c);
        double[] w = D(p[0]), b = D(p[1]), mean = D(p[2]), var = D(p[3]);
        if (w.Length != c || b.Length != c || mean.Length != c || var.Length != c) return Built.No($"BatchNormalization parameters do not fit {c} channels");
        double eps = op.Eps;
        int n = c * per;
        double[] am = new double[n], ar = new double[n], cm = new double[n], cr = new double[n];
        for (int ch = 0; ch < c; ch++)
        {
            // y = (x − mean)·w/√(var + eps) + b = a·x + (b − mean·a), in interval arithmetic.
            double vl = AddDown(var[ch], eps), vh = AddUp(var[ch], eps);
            if (!(vl > 0) || !double.IsFinite(vh)) return Built.No($"BatchNormalization channel {ch} has variance + eps = {var[ch] + eps}");
            double sl = Down(Math.Sqrt(vl)), sh = Up(Math.Sqrt(vh));
            double al, ah;
            if (w[ch] >= 0) { al = Down(w[ch] / sh); ah = Up(w[ch] / sl); }
            else { al = Down(w[ch] / sl); ah = Up(w[ch] / sh); }
            // mean·a over a in [al, ah].
            double p1 = MulDown(mean[ch], al), p2 = MulDown(mean[ch], ah), q1 = MulUp(mean[ch], al), q2 = MulUp(mean[ch], ah);
            double ml = Math.Min(p1, p2), mh = Math.Max(q1, q2);
            double cl = AddDown(b[ch], -mh), ch2 = AddUp(b[ch], -ml);
            var (a0, a1) = MidRad(al, ah);
            var (c0, c1) = MidRad(cl, ch2);
            for (int i = 0; i < per; i++) { int k = ch * per + i; am[k] = a0; ar[k] = a1; cm[k] = c0; cr[k] = c1; }
        }
        return new Built(new DiagNode { Size = n, A = am, ARad = ar, C = cm, CRad = cr }, shape);
    }

    private static Built Sum(Graph.Op op, int a, int b, int[] nodeOf, int[][] shapeOf)
    {
        if (!ShapeUtil.SameShape(shapeOf[a], shapeOf[b]))
            return Built.No($"{op.Type} of two computed values of shapes {ShapeUtil.Format(shapeOf[a])} and {ShapeUtil.Format(shapeOf[b])} (broadcasting between computed values is not supported by the float64 guard)");
        return new Built(new AddNode { Size = ShapeUtil.Numel(shapeOf[a]), Subtract = op is SubOp, Inputs = [nodeOf[a], nodeOf[b]] }, shapeOf[a]);
    }

    private static Built Reshaped(Graph.Op op, int[] shape)
    {
        var y = op.Forward(ForwardContext.Eval, [Tensor.Zeros([1, .. shape])]);
        if (y.Dims.Length == 0 || y.Dims[0] != 1 || y.Numel != ShapeUtil.Numel(shape))
            return Built.No($"{op} mixes the batch dimension (per-example shape {ShapeUtil.Format(shape)} -> {ShapeUtil.Format(y.Dims)})");
        return new Built([], y.Dims[1..]);
    }

    private static Built Transposed(Graph.Op op, int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        if (n > 1 << 24) return Built.No("Transpose of more than 2^24 elements");
        var idx = Tensor.Arange(n).Reshape([1, .. shape]);
        var y = op.Forward(ForwardContext.Eval, [idx]);
        if (y.Dims.Length == 0 || y.Dims[0] != 1) return Built.No($"{op} moves the batch dimension");
        var src = Array.ConvertAll(y.ToArray(), f => (int)f);
        return new Built(new PermNode { Size = n, Src = src }, y.Dims[1..]);
    }

    /// <summary>The op applied to one-hot inputs, in chunks: (output length, output shape, y[o, i] for input i).</summary>
    private static (int M, int[] Shape, Func<long, float> At)? Probe(Graph.Op op, int[] shape, Tensor? w)
    {
        int n = ShapeUtil.Numel(shape);
        Tensor Run(Tensor x) => op.Forward(ForwardContext.Eval, w == null ? [x] : [x, w]);
        var probe = Run(Tensor.Zeros([1, .. shape]));
        int m = probe.Numel;
        if ((long)n * m > MaxDenseElements) return null;
        var mat = new float[(long)m * n];
        const int chunk = 256;
        for (int s = 0; s < n; s += chunk)
        {
            int c = Math.Min(chunk, n - s);
            var basis = new float[c * n];
            for (int i = 0; i < c; i++) basis[i * n + s + i] = 1f;
            var y = Run(Tensor.FromArray(basis, [c, .. shape])).ToArray();
            for (int i = 0; i < c; i++)
                for (int o = 0; o < m; o++) mat[(long)o * n + s + i] = y[i * m + o];
        }
        return (m, probe.Dims[1..], k => mat[k]);
    }

    private static Built Conv(Graph.Op op, int[] shape, Tensor w, Tensor? b)
    {
        int n = ShapeUtil.Numel(shape);
        // One-hot inputs: each output is one weight plus exact zeros, so the float32 kernel returns the weights exactly.
        if (Probe(op, shape, w) is not var (m, outShape, at)) return Built.No($"Conv on {ShapeUtil.Format(shape)} is too large for the dense float64 guard");
        var mat = new double[(long)m * n];
        for (long k = 0; k < mat.LongLength; k++) mat[k] = at(k);
        double[]? bias = null;
        if (b != null)
        {
            int ch = outShape[0], per = m / ch;
            var bv = b.ToArray();
            if (bv.Length != ch) return Built.No($"Conv bias {ShapeUtil.Format(b.Dims)} does not fit {ch} channels");
            bias = new double[m];
            for (int o = 0; o < m; o++) bias[o] = bv[o / per];
        }
        return new Built(Dense(n, m, mat, bias), outShape);
    }

    private static Built Pool(Graph.Op op, int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        // A one-hot input shows each window: max pooling returns 1 where the input is in the window, average
        // pooling fl(1/count).
        if (Probe(op, shape, null) is not var (m, outShape, at)) return Built.No($"{op.Type} on {ShapeUtil.Format(shape)} is too large for the float64 guard");
        var start = new int[m + 1];
        var index = new List<int>();
        var count = new int[m];
        var member = new int[n];
        for (int o = 0; o < m; o++)
        {
            float v = 0;
            for (int i = 0; i < n; i++)
            {
                float y = at((long)o * n + i);
                if (y == 0) continue;
                if (v != 0 && y != v) return Built.No($"{op.Type} weights its window unevenly");
                v = y; index.Add(i); member[i]++;
            }
            start[o + 1] = index.Count;
            if (v == 0) return Built.No($"{op.Type} output {o} has an empty window");
            if (op is MaxPool2dOp) { if (v != 1) return Built.No($"{op.Type} does not return a window's maximum"); continue; }
            int k = (int)Math.Round(1 / (double)v);
            if (k < start[o + 1] - start[o] || 1f / k != v) return Built.No($"{op.Type} output {o} divides by {1 / (double)v}, not by a window count");
            count[o] = k;
        }
        var g = new GroupNode { Size = m, IsMax = op is MaxPool2dOp, Start = start, Index = [.. index], Overlap = member.Max() };
        // Max pooling pads with −∞ and average pooling with 0, so the windows' in-range members are the whole story;
        // one random input confirms it.
        var x = Tensor.Uniform([1, .. shape], -1, 1, new Generator(1));
        var y32 = op.Forward(ForwardContext.Eval, [x]).ToArray();
        var xs = x.ToArray();
        for (int o = 0; o < m; o++)
        {
            double want = g.IsMax ? double.NegativeInfinity : 0;
            for (int q = start[o]; q < start[o + 1]; q++) want = g.IsMax ? Math.Max(want, xs[g.Index[q]]) : want + xs[g.Index[q]];
            if (!g.IsMax) want /= count[o];
            if (Math.Abs(y32[o] - want) > 1e-5) return Built.No($"{op.Type} is not the max / average of its windows (output {o}: {y32[o]} vs {want})");
        }
        if (g.IsMax) return new Built(g, outShape);
        var a = new double[m];
        var r = new double[m];
        for (int o = 0; o < m; o++) (a[o], r[o]) = MidRad(Down(1.0 / count[o]), Up(1.0 / count[o]));
        return new Built([g, new DiagNode { Size = m, A = a, ARad = r }], outShape);
    }

    /// <summary>Float64 forward pass of one example (round to nearest; for re-checking a counterexample, not a bound).</summary>
    public double[] Evaluate(ReadOnlySpan<double> x) => EvaluateAll(x)[^1];

    /// <summary>Float64 forward pass of one example: the value of every node.</summary>
    internal double[][] EvaluateAll(ReadOnlySpan<double> x)
    {
        if (x.Length != InputSize) throw new ArgumentException($"RigorousNetwork.Evaluate: expected {InputSize} inputs, got {x.Length}.");
        var val = new double[Nodes.Length][];
        val[0] = x.ToArray();
        for (int v = 1; v < Nodes.Length; v++)
        {
            var node = Nodes[v];
            var z = val[node.Inputs[0]];
            var y = new double[node.Size];
            switch (node)
            {
                case DenseNode d:
                    for (int o = 0; o < d.Size; o++) y[o] = (d.B?[o] ?? 0) + d.RowDot(o, z);
                    break;
                case DiagNode g:
                    for (int i = 0; i < y.Length; i++) y[i] = (g.A?[i] ?? 1) * z[i] + (g.C?[i] ?? 0);
                    break;
                case PermNode p:
                    for (int i = 0; i < y.Length; i++) y[i] = z[p.Src[i]];
                    break;
                case AddNode a:
                    var z2 = val[a.Inputs[1]];
                    for (int i = 0; i < y.Length; i++) y[i] = a.Subtract ? z[i] - z2[i] : z[i] + z2[i];
                    break;
                case SShapeNode s:
                    for (int i = 0; i < y.Length; i++) y[i] = SShapeLines.Eval(s.Kind, z[i]);
                    break;
                case GroupNode g:
                    for (int o = 0; o < y.Length; o++)
                    {
                        double acc = g.IsMax ? double.NegativeInfinity : 0;
                        for (int q = g.Start[o]; q < g.Start[o + 1]; q++) acc = g.IsMax ? Math.Max(acc, z[g.Index[q]]) : acc + z[g.Index[q]];
                        y[o] = acc;
                    }
                    break;
                default:
                    for (int i = 0; i < y.Length; i++) y[i] = Math.Max(z[i], 0);
                    break;
            }
            val[v] = y;
        }
        return val;
    }

    /// <summary>
    /// Rigorous bounds over the input box [lower, upper] (every node's bounds, by IBP refined with CROWN where a
    /// nonlinearity needs them); ask the result for the bounds of linear functions of the output.
    /// </summary>
    public RigorousBox Analyze(ReadOnlySpan<double> lower, ReadOnlySpan<double> upper) => Analyze(lower, upper, null);

    /// <summary>As <see cref="Analyze(ReadOnlySpan{double}, ReadOnlySpan{double})"/>, intersecting every node's bounds with those of <paramref name="enclosing"/>, the bounds of a box that contains this one.</summary>
    internal RigorousBox Analyze(ReadOnlySpan<double> lower, ReadOnlySpan<double> upper, RigorousBox? enclosing)
    {
        if (lower.Length != InputSize || upper.Length != InputSize)
            throw new ArgumentException($"RigorousNetwork.Analyze: expected {InputSize} input bounds, got {lower.Length} and {upper.Length}.");
        for (int i = 0; i < lower.Length; i++)
            if (!(lower[i] <= upper[i]) || !double.IsFinite(lower[i]) || !double.IsFinite(upper[i]))
                throw new ArgumentException($"RigorousNetwork.Analyze: input {i} has bounds [{lower[i]}, {upper[i]}], not a finite non-empty interval.");
        if (enclosing != null && !ReferenceEquals(enclosing.Network, this)) throw new ArgumentException("RigorousNetwork.Analyze: the enclosing box belongs to another network.");
        return new RigorousBox(this, lower.ToArray(), upper.ToArray(), enclosing);
    }
}
