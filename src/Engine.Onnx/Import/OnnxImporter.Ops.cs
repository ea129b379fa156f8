using Engine.Graph;
using Engine.Onnx.Protobuf;
using Engine.Tensors;

namespace Engine.Onnx.Import;

// One method per ONNX operator (or family). Each reads the current node's inputs and attributes and binds its
// main output.
internal sealed partial class OnnxImporter
{
    public static readonly IReadOnlyList<string> SupportedOps =
    [
        "Add", "AveragePool", "BatchNormalization", "Cast", "Concat", "Constant", "ConstantOfShape", "Conv", "Div",
        "Dropout", "Flatten", "Gather", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Identity", "LeakyRelu", "MatMul",
        "MaxPool", "Mul", "Neg", "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Squeeze", "Sub", "Tanh", "Transpose",
        "Unsqueeze",
    ];

    private void ImportNode(NodeProto n)
    {
        var a = new OnnxAttributes(n, _where);
        switch (n.OpType)
        {
            case "Identity": SetOut(In(0)); break;
            case "Dropout": Dropout(); break;
            case "Relu": SetOut(Emit(Out, new ReluOp(), [In(0)])); break;
            case "Sigmoid": SetOut(Emit(Out, new SigmoidOp(), [In(0)])); break;
            case "Tanh": SetOut(Emit(Out, new TanhOp(), [In(0)])); break;
            case "LeakyRelu": SetOut(Emit(Out, new LeakyReluOp(a.Float("alpha", 0.01f)), [In(0)])); break;
            case "Neg": Neg(); break;
            case "Add": case "Sub": case "Mul": case "Div": Arithmetic(n.OpType); break;
            case "MatMul": MatMul(); break;
            case "Gemm": Gemm(a); break;
            case "Conv": Conv(a); break;
            case "BatchNormalization": BatchNorm(a); break;
            case "MaxPool": case "AveragePool": Pool(n.OpType, a); break;
            case "GlobalAveragePool": case "GlobalMaxPool": GlobalPool(n.OpType); break;
            case "Flatten": Flatten(a); break;
            case "Reshape": Reshape(a); break;
            case "Transpose": Transpose(a); break;
            case "Unsqueeze": Unsqueeze(a); break;
            case "Squeeze": Squeeze(a); break;
            case "Gather": Gather(a); break;
            case "Concat": Concat(a); break;
            case "Shape": Shape(a); break;
            case "Constant": Constant(a); break;
            case "ConstantOfShape": ConstantOfShape(a); break;
            case "Cast": Cast(a); break;
            case "Slice": Slice(a); break;
            default:
                throw new NotSupportedException($"{_where}: operator '{n.OpType}' is not supported. Supported: {string.Join(", ", SupportedOps)}.");
        }
    }

    // ------------------------------------------------------------------ elementwise

    private void Dropout()
    {
        // An imported graph is for inference, where Dropout passes its input through.
        SetOut(In(0));
    }

    private void Neg()
    {
        var x = In(0);
        SetOut(x.IsConst ? Sym.Of(ConstOps.Map(x.Const!, v => -v)) : Emit(Out, new MulOp(), [x, Sym.Of(ConstTensor.ScalarReal(-1))]));
    }

    private void Arithmetic(string type)
    {
        var x = In(0);
        var y = In(1);
        if (x.IsConst && y.IsConst)
        {
            char op = type switch { "Add" => '+', "Sub" => '-', "Mul" => '*', _ => '/' };
            SetOut(Sym.Of(ConstOps.Binary(x.Const!, y.Const!, op, _where)));
            return;
        }
        switch (type)
        {
            case "Add":
                if (_options.FuseBias && TryFuseBias(x, y, 0) is { } fx) { SetOut(fx); return; }
                if (_options.FuseBias && TryFuseBias(y, x, 1) is { } fy) { SetOut(fy); return; }
                SetOut(Emit(Out, new AddOp(), [x, y]));
                break;
            case "Sub": SetOut(Emit(Out, new SubOp(), [x, y])); break;
            case "Mul": SetOut(Emit(Out, new MulOp(), [x, y])); break;
            default:
                // x / c stays a division: x * fl(1/c) can differ from fl(x / c) by an ulp, and the imported network
                // must compute what ONNX Runtime computes (bound propagation handles Div by a constant directly).
                // Where every 1/c is exact in float32 (powers of two), x * (1/c) and x / c are the same correctly
                // rounded value, so the multiplication (cheaper) is emitted.
                SetOut(y.Const is { } yc && ExactReciprocal(yc.WithKind(ConstKind.Real)) is { } inv
                    ? Emit(Out, new MulOp(), [x, Sym.Of(inv)])
                    : Emit(Out, new DivOp(), [x, y]));
                break;
        }
    }

    /// <summary>
    /// 1/c when every entry of c is a float32 whose reciprocal is a float32 too (±2^k in range), else null: then
    /// fl(x·(1/c)) = fl(x/c) for every x, both being the correctly rounded x/c.
    /// </summary>
    private static ConstTensor? ExactReciprocal(ConstTensor c)
    {
        foreach (double v in c.Data)
        {
            // ±2^k: its reciprocal 2^-k is exact in double; it must be a float32 as well (no overflow to ∞).
            if ((double)(float)v != v || !double.IsPow2(Math.Abs(v))) return null;
            double r = 1.0 / v;
            if ((double)(float)r != r) return null;
        }
        return ConstOps.Map(c, v => 1.0 / v);
    }

    /// <summary>layer + c as the layer with c added to its bias, when c is one value per output channel.</summary>
    private Sym? TryFuseBias(Sym layer, Sym c, int layerInput)
    {
        if (layer.Affine is not { } aff || c.Const is not { } bias || !SoleUse(layerInput)) return null;
        int outCh = aff.Weight.Dims[0];
        int channelAxisFromEnd = aff.Op is Conv2dOp ? 3 : 1; // Conv: [N, C, H, W]; Linear: [..., C]
        int r = c.Rank;
        if (r < channelAxisFromEnd || r > layer.Rank || bias.Dims[r - channelAxisFromEnd] != outCh || bias.Numel != outCh) return null;
        var b = new double[outCh];
        for (int i = 0; i < outCh; i++) b[i] = (float)(bias.Data[i] + (aff.Bias?.Data[i] ?? 0));
        return EmitAffine(Out, aff.Op, aff.Input, aff.Weight, new ConstTensor([outCh], b, ConstKind.Real, aff.Bias?.Name ?? bias.Name));
    }

    /// <summary>A Linear or Conv node with constant weight and bias, remembered as foldable.</summary>
    private Sym EmitAffine(string name, Op op, Sym x, ConstTensor w, ConstTensor? bias)
    {
        Sym[] ins = bias == null ? [x, Sym.Of(w)] : [x, Sym.Of(w), Sym.Of(bias)];
        var kinds = new[] { ValueKind.Constant, ValueKind.Parameter, ValueKind.Parameter };
        return Emit(name, op, ins, kinds, _ => new AffineLayer(op, x, w, bias));
    }

    // ------------------------------------------------------------------ matrix products

    private void MatMul()
    {
        var x = In(0);
        var w = In(1);
        if (!x.IsConst && w.Const is { Rank: 2 } wc)
        {
            // x @ W = Linear(x, Wᵀ).
            SetOut(EmitAffine(Out, new LinearOp(), x, ConstOps.Transpose(wc.WithKind(ConstKind.Real), [1, 0]).Named(wc.Name), null));
            return;
        }
        if (x.Const is { Rank: 2 } xc && !w.IsConst && w.Rank == 1)
        {
            // W @ v for a vector v = Linear(v, W).
            SetOut(EmitAffine(Out, new LinearOp(), w, xc.WithKind(ConstKind.Real).Named(xc.Name), null));
            return;
        }
        SetOut(Emit(Out, new MatMulOp(), [x, w], [ValueKind.Parameter, ValueKind.Parameter]));
    }

    private void Gemm(OnnxAttributes a)
    {
        var A = In(0);
        var B = In(1);
        var C = OptIn(2);
        float alpha = a.Float("alpha", 1f), beta = a.Float("beta", 1f);
        bool transA = a.Int("transA", 0) != 0, transB = a.Int("transB", 0) != 0;
        if (A.Rank != 2 || B.Rank != 2)
            throw new InvalidDataException($"{_where}: Gemm needs 2-D A and B, got {ShapeUtil.Format(A.Shape)} and {ShapeUtil.Format(B.Shape)}.");

        if (!A.IsConst && !transA && B.Const is { } bc && (C == null || C.IsConst))
        {
            // alpha · A · op(B) + beta · C = Linear(A, alpha · op(B)ᵀ, beta · C) when C is one value per column.
            var w = transB ? bc.WithKind(ConstKind.Real) : ConstOps.Transpose(bc.WithKind(ConstKind.Real), [1, 0]);
            if (alpha != 1f) w = ConstOps.Map(w, v => v * alpha);
            w = w.Named(bc.Name);
            int n = w.Dims[0];
            ConstTensor? bias = null;
            ConstTensor? rest = null;
            if (C != null)
            {
                var c = beta == 1f ? C.Const!.WithKind(ConstKind.Real) : ConstOps.Map(C.Const!.WithKind(ConstKind.Real), v => v * beta);
                if (c.Numel == n && c.Rank >= 1 && c.Dims[^1] == n) bias = c.Reshaped([n]).Named(C.Const!.Name);
                else if (c.Numel == 1) bias = new ConstTensor([n], Enumerable.Repeat(c.Data[0], n).ToArray(), ConstKind.Real, C.Const!.Name);
                else rest = c;
            }
            string linName = rest == null ? Out : $"{Out}/linear";
            var y = EmitAffine(linName, new LinearOp(), A, w, bias);
            if (rest != null) y = Emit(Out, new AddOp(), [y, Sym.Of(rest)]);
            SetOut(y);
            return;
        }

        var aT = transA ? TransposeSym($"{Out}/transA", A, [1, 0]) : A;
        var bT = transB ? TransposeSym($"{Out}/transB", B, [1, 0]) : B;
        bool more = alpha != 1f || C != null;
        var p = Emit(more ? $"{Out}/matmul" : Out, new MatMulOp(), [aT, bT], [ValueKind.Parameter, ValueKind.Parameter]);
        if (alpha != 1f) p = Emit(C != null ? $"{Out}/alpha" : Out, new MulOp(), [p, Sym.Of(ConstTensor.ScalarReal(alpha))]);
        if (C != null)
        {
            var c = C;
            if (beta != 1f)
                c = c.IsConst ? Sym.Of(ConstOps.Map(c.Const!.WithKind(ConstKind.Real), v => v * beta)) : Emit($"{Out}/beta", new MulOp(), [c, Sym.Of(ConstTensor.ScalarReal(beta))]);
            p = Emit(Out, new AddOp(), [p, c], [ValueKind.Parameter, ValueKind.Parameter]);
        }
        SetOut(p);
    }

    // ------------------------------------------------------------------ convolution, normalisation, pooling

    private void Conv(OnnxAttributes a)
    {
        var x = In(0);
        var w = In(1);
        var b = OptIn(2);
        if (x.Rank != 4 || w.Rank != 4)
            throw new NotSupportedException($"{_where}: only 2-D convolutions (4-D input and weight) are supported, got input {ShapeUtil.Format(x.Shape)} and weight {ShapeUtil.Format(w.Shape)}.");
        var kernel = (w.Shape[2], w.Shape[3]);
        if (a.Ints("kernel_shape") is { } ks && (ks.Length != 2 || ks[0] != kernel.Item1 || ks[1] != kernel.Item2))
            throw new InvalidDataException($"{_where}: kernel_shape {OnnxTensors.FormatDims(ks)} does not match weight {ShapeUtil.Format(w.Shape)}.");
        var stride = Pair(a.Ints("strides"), 1, "strides");
        var dilation = Pair(a.Ints("dilations"), 1, "dilations");
        long group = a.Int("group", 1);
        if (group < 1 || group > int.MaxValue) throw new InvalidDataException($"{_where}: group must be >= 1, got {group}.");
        var pad = Pads(a, x.Shape, kernel, stride, dilation);
        var op = new Conv2dOp(stride, pad, dilation, (int)group);
        if (w.Const is { } wc && (b == null || b.IsConst))
            SetOut(EmitAffine(Out, op, x, wc.WithKind(ConstKind.Real), b?.Const!.WithKind(ConstKind.Real)));
        else
            SetOut(Emit(Out, op, b == null ? [x, w] : [x, w, b], [ValueKind.Constant, ValueKind.Parameter, ValueKind.Parameter]));
    }

    private void BatchNorm(OnnxAttributes a)
    {
        var x = In(0);
        if (a.Int("training_mode", 0) != 0)
            throw new NotSupportedException($"{_where}: training_mode=1 is not supported (the importer builds inference graphs).");
        if (a.Int("spatial", 1) != 1)
            throw new NotSupportedException($"{_where}: spatial=0 is not supported.");
        float eps = a.Float("epsilon", 1e-5f);
        float momentum = a.Float("momentum", 0.9f);
        var scale = ConstIn(1, "scale").WithKind(ConstKind.Real);
        var bias = ConstIn(2, "B").WithKind(ConstKind.Real);
        var mean = ConstIn(3, "input_mean").WithKind(ConstKind.Real);
        var variance = ConstIn(4, "input_var").WithKind(ConstKind.Real);
        if (x.Rank < 2) throw new InvalidDataException($"{_where}: input {ShapeUtil.Format(x.Shape)} has no channel dimension.");
        int c = x.Shape[1];
        foreach (var (t, what) in new[] { (scale, "scale"), (bias, "B"), (mean, "input_mean"), (variance, "input_var") })
            if (t.Numel != c) throw new InvalidDataException($"{_where}: {what} has shape {ShapeUtil.Format(t.Dims)}, expected [{c}] for input {ShapeUtil.Format(x.Shape)}.");

        // y = (x - mean) · s + B with s = scale / sqrt(var + eps), in double and rounded once.
        var s = new double[c];
        var t0 = new double[c];
        for (int i = 0; i < c; i++)
        {
            s[i] = scale.Data[i] / Math.Sqrt(variance.Data[i] + eps);
            t0[i] = bias.Data[i] - mean.Data[i] * s[i];
        }
        if (_options.FoldBatchNorm && x.Affine is { } aff && SoleUse(0) && s.All(double.IsFinite)
            && (aff.Op is Conv2dOp || x.Rank == 2))
        {
            var w = aff.Weight;
            int per = w.Numel / c;
            var nw = new double[w.Numel];
            for (int o = 0; o < c; o++)
                for (int k = 0; k < per; k++) nw[o * per + k] = (float)(w.Data[o * per + k] * s[o]);
            var nb = new double[c];
            for (int o = 0; o < c; o++) nb[o] = (float)((aff.Bias?.Data[o] ?? 0) * s[o] + t0[o]);
            SetOut(EmitAffine(Out, aff.Op, aff.Input, new ConstTensor(w.Dims, nw, ConstKind.Real, w.Name), new ConstTensor([c], nb, ConstKind.Real, aff.Bias?.Name ?? bias.Name)));
            return;
        }
        if (x.IsConst)
        {
            var st = new int[x.Rank]; Array.Fill(st, 1); st[1] = c;
            var scaled = ConstOps.Binary(x.Const!, new ConstTensor(st, s, ConstKind.Real), '*', _where);
            SetOut(Sym.Of(ConstOps.Binary(scaled, new ConstTensor(st, t0, ConstKind.Real), '+', _where)));
            return;
        }
        if (!(eps > 0)) throw new NotSupportedException($"{_where}: epsilon must be > 0 for an unfolded BatchNormalization, got {eps}.");
        if (!(momentum >= 0 && momentum <= 1)) throw new InvalidDataException($"{_where}: momentum must be in [0, 1], got {momentum}.");
        // ONNX momentum weighs the running statistic; Engine's (PyTorch's) weighs the new batch statistic.
        var op = new BatchNormOp(eps, 1f - momentum);
        SetOut(Emit(Out, op, [x, Sym.Of(scale), Sym.Of(bias), Sym.Of(mean), Sym.Of(variance)],
            [ValueKind.Constant, ValueKind.Parameter, ValueKind.Parameter, ValueKind.Buffer, ValueKind.Buffer]));
    }

    private void Pool(string type, OnnxAttributes a)
    {
        var x = In(0);
        if (x.Rank != 4)
            throw new NotSupportedException($"{_where}: only 2-D pooling (4-D input) is supported, got input {ShapeUtil.Format(x.Shape)}.");
        var ks = a.Ints("kernel_shape") ?? throw new InvalidDataException($"{_where}: attribute kernel_shape is required.");
        var kernel = Pair(ks, 1, "kernel_shape");
        var stride = Pair(a.Ints("strides"), 1, "strides");
        var dilation = Pair(a.Ints("dilations"), 1, "dilations");
        if (dilation != (1, 1)) throw new NotSupportedException($"{_where}: dilated pooling is not supported.");
        if (a.Int("ceil_mode", 0) != 0) throw new NotSupportedException($"{_where}: ceil_mode=1 is not supported.");
        var pad = Pads(a, x.Shape, kernel, stride, (1, 1));
        Op op = type == "MaxPool"
            ? new MaxPool2dOp(kernel, stride, pad)
            : new AvgPool2dOp(kernel, stride, pad, a.Int("count_include_pad", 0) != 0);
        SetOut(Emit(Out, op, [x]));
    }

    private void GlobalPool(string type)
    {
        var x = In(0);
        if (x.Rank != 4)
            throw new NotSupportedException($"{_where}: only 4-D inputs are supported, got {ShapeUtil.Format(x.Shape)}.");
        var k = (x.Shape[2], x.Shape[3]);
        Op op = type == "GlobalMaxPool" ? new MaxPool2dOp(k) : new AvgPool2dOp(k);
        SetOut(Emit(Out, op, [x]));
    }

    private (int H, int W) Pair(long[]? v, int fallback, string what)
    {
        if (v == null) return (fallback, fallback);
        if (v.Length != 2) throw new InvalidDataException($"{_where}: {what} {OnnxTensors.FormatDims(v)} must have 2 entries.");
        if (v.Any(e => e < 1 || e > 1 << 20))
            throw new InvalidDataException($"{_where}: {what} {OnnxTensors.FormatDims(v)} must be positive.");
        return ((int)v[0], (int)v[1]);
    }

    /// <summary>Symmetric (height, width) padding from pads or auto_pad; asymmetric padding is not supported.</summary>
    private (int H, int W) Pads(OnnxAttributes a, int[] xShape, (int H, int W) kernel, (int H, int W) stride, (int H, int W) dilation)
    {
        string auto = a.String("auto_pad", "NOTSET");
        long[] p;
        switch (auto)
        {
            case "NOTSET" or "":
                p = a.Ints("pads") ?? [0, 0, 0, 0];
                if (p.Length != 4) throw new InvalidDataException($"{_where}: pads {OnnxTensors.FormatDims(p)} must have 4 entries.");
                if (p.Any(e => e < 0 || e > 1 << 20)) throw new InvalidDataException($"{_where}: pads {OnnxTensors.FormatDims(p)} are out of range.");
                break;
            case "VALID":
                p = [0, 0, 0, 0];
                break;
            case "SAME_UPPER" or "SAME_LOWER":
                long Total(int size, int k, int s, int d) => Math.Max(0, ((size + s - 1) / s - 1) * (long)s + (long)(k - 1) * d + 1 - size);
                long th = Total(xShape[2], kernel.H, stride.H, dilation.H), tw = Total(xShape[3], kernel.W, stride.W, dilation.W);
                bool upper = auto == "SAME_UPPER";
                p = [upper ? th / 2 : th - th / 2, upper ? tw / 2 : tw - tw / 2, upper ? th - th / 2 : th / 2, upper ? tw - tw / 2 : tw / 2];
                break;
            default:
                throw new InvalidDataException($"{_where}: unknown auto_pad '{auto}'.");
        }
        if (p[0] != p[2] || p[1] != p[3])
            throw new NotSupportedException($"{_where}: asymmetric padding {OnnxTensors.FormatDims(p)} (begin != end) is not supported.");
        return ((int)p[0], (int)p[1]);
    }
}
