using Engine.Tensors;

namespace Engine.Cuda;

// Elementwise kernels of kernels/elementwise.cu. Broadcasting kernels first coalesce the iteration space on the host
// (as Cpu.StridedPlan: size-1 dimensions dropped, neighbours merged where every operand walks them as one), then
// pick the contiguous float4 kernel, the scalar-broadcast kernel or the general strided kernel (rank <= 8 after
// coalescing, which covers any tensor up to rank 8 and most beyond).
internal sealed partial class CudaKernels
{
    private const string EwModule = "elementwise";
    private const int MaxKernelRank = 8;

    private static readonly string[] UnaryNames =
        ["neg", "abs", "sign", "exp", "log", "sqrt", "square", "pow", "clamp", "relu", "leakyrelu", "sigmoid", "tanh", "softplus", "affine", "reciprocal"];
    private static readonly string[] UnaryKernels = Array.ConvertAll(UnaryNames, s => "unary_" + s);
    private static readonly string[] UnaryGradKernels = Array.ConvertAll(UnaryNames, s => "unary_grad_" + s);

    private static readonly string[] BinaryNames = ["add", "sub", "mul", "div", "maximum", "minimum", "gt", "ge", "lt", "le", "eq", "ne"];
    private static readonly string[] BinaryContig = Array.ConvertAll(BinaryNames, s => $"binary_{s}_contig");
    private static readonly string[] BinaryScalarA = Array.ConvertAll(BinaryNames, s => $"binary_{s}_scalar_a");
    private static readonly string[] BinaryScalarB = Array.ConvertAll(BinaryNames, s => $"binary_{s}_scalar_b");
    private static readonly string[] BinaryStrided = Array.ConvertAll(BinaryNames, s => $"binary_{s}_strided");

    /// <inheritdoc/>
    public void Unary(UnaryOp op, Buf x, Buf y, int n, float alpha, float beta)
    {
        if ((uint)op >= (uint)UnaryKernels.Length) throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown unary op.");
        if (n <= 0) return;
        // The CPU's cheap exact forms for special exponents (same results as its general path would round to).
        if (op == UnaryOp.Pow)
        {
            if (alpha == 2f) op = UnaryOp.Square;
            else if (alpha == 1f) (op, alpha, beta) = (UnaryOp.Affine, 1f, 0f);
            else if (alpha == -1f) (op, alpha) = (UnaryOp.Reciprocal, 1f);
            else if (alpha == 0f) { FillOnDevice(CheckedPtr(y, n, "Unary"), n, 1f); return; }
        }
        var p = new KernelParams();
        p.Pointer(CheckedPtr(x, n, "Unary"));
        p.Pointer(CheckedPtr(y, n, "Unary"));
        p.Int(n); p.Float(alpha); p.Float(beta);
        Launch1D(EwModule, UnaryKernels[(int)op], Quads(n), ref p);
    }

    /// <inheritdoc/>
    public void UnaryBackward(UnaryOp op, Buf x, Buf y, Buf dy, Buf dx, int n, float alpha, float beta)
    {
        if ((uint)op >= (uint)UnaryGradKernels.Length) throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown unary op.");
        if (n <= 0) return;
        if (op == UnaryOp.Pow)
        {
            if (alpha == 2f) op = UnaryOp.Square;
            else if (alpha == 1f) (op, alpha) = (UnaryOp.Affine, 1f);
            else if (alpha == 0f) op = UnaryOp.Sign;   // zero gradient
        }
        if (op == UnaryOp.Sign) { FillOnDevice(CheckedPtr(dx, n, "UnaryBackward"), n, 0f); return; }
        bool readsY = op is UnaryOp.Exp or UnaryOp.Sqrt or UnaryOp.Sigmoid or UnaryOp.Tanh or UnaryOp.Reciprocal;
        bool readsX = op is not (UnaryOp.Neg or UnaryOp.Exp or UnaryOp.Sqrt or UnaryOp.Sigmoid or UnaryOp.Tanh or UnaryOp.Affine);
        var p = new KernelParams();
        p.Pointer(readsX ? CheckedPtr(x, n, "UnaryBackward") : 0UL);
        p.Pointer(readsY ? CheckedPtr(y, n, "UnaryBackward") : 0UL);
        p.Pointer(CheckedPtr(dy, n, "UnaryBackward"));
        p.Pointer(CheckedPtr(dx, n, "UnaryBackward"));
        p.Int(n); p.Float(alpha); p.Float(beta);
        Launch1D(EwModule, UnaryGradKernels[(int)op], Quads(n), ref p);
    }

    /// <inheritdoc/>
    public void Binary(BinaryOp op, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape)
    {
        if ((uint)op >= (uint)BinaryContig.Length) throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown binary op.");
        var plan = CoalescedShape.Create("Binary", shape, aStrides, bStrides);
        if (plan.Numel == 0) return;
        int n = plan.Numel;
        ulong pa = StridedPtr(a, plan, 0, "Binary"), pb = StridedPtr(b, plan, 1, "Binary"), py = CheckedPtr(y, n, "Binary");
        var p = new KernelParams();
        if (plan.Rank == 1 && plan.Stride(0, 0) == 1 && plan.Stride(1, 0) == 1)
        {
            p.Pointer(pa); p.Pointer(pb); p.Pointer(py); p.Int(n);
            Launch1D(EwModule, BinaryContig[(int)op], Quads(n), ref p);
        }
        else if (plan.Rank == 1 && plan.Stride(0, 0) == 1 && plan.Stride(1, 0) == 0)
        {
            p.Pointer(pa); p.Pointer(pb); p.Pointer(py); p.Int(n);
            Launch1D(EwModule, BinaryScalarB[(int)op], Quads(n), ref p);
        }
        else if (plan.Rank == 1 && plan.Stride(0, 0) == 0 && plan.Stride(1, 0) == 1)
        {
            p.Pointer(pa); p.Pointer(pb); p.Pointer(py); p.Int(n);
            Launch1D(EwModule, BinaryScalarA[(int)op], Quads(n), ref p);
        }
        else
        {
            p.Pointer(pa); p.Pointer(pb); p.Pointer(py); p.Int(n); p.Int(plan.Rank);
            p.Ints(plan.Dims, MaxKernelRank); p.Ints(plan.Strides(0), MaxKernelRank); p.Ints(plan.Strides(1), MaxKernelRank);
            Launch1D(EwModule, BinaryStrided[(int)op], n, ref p);
        }
    }

    /// <inheritdoc/>
    public void Where(Buf cond, int[] condStrides, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape)
    {
        var plan = CoalescedShape.Create("Where", shape, condStrides, aStrides, bStrides);
        if (plan.Numel == 0) return;
        int n = plan.Numel;
        ulong pc = StridedPtr(cond, plan, 0, "Where"), pa = StridedPtr(a, plan, 1, "Where"), pb = StridedPtr(b, plan, 2, "Where");
        ulong py = CheckedPtr(y, n, "Where");
        var p = new KernelParams();
        p.Pointer(pc); p.Pointer(pa); p.Pointer(pb); p.Pointer(py); p.Int(n);
        if (plan.Rank == 1 && plan.Stride(0, 0) == 1 && plan.Stride(1, 0) == 1 && plan.Stride(2, 0) == 1)
        {
            Launch1D(EwModule, "where_contig", Quads(n), ref p);
            return;
        }
        p.Int(plan.Rank);
        p.Ints(plan.Dims, MaxKernelRank);
        p.Ints(plan.Strides(0), MaxKernelRank); p.Ints(plan.Strides(1), MaxKernelRank); p.Ints(plan.Strides(2), MaxKernelRank);
        Launch1D(EwModule, "where_strided", n, ref p);
    }

    /// <inheritdoc/>
    public void Expand(Buf x, int[] xStrides, Buf y, int[] shape)
    {
        var plan = CoalescedShape.Create("Expand", shape, xStrides);
        if (plan.Numel == 0) return;
        int n = plan.Numel;
        ulong px = StridedPtr(x, plan, 0, "Expand"), py = CheckedPtr(y, n, "Expand");
        var p = new KernelParams();
        p.Pointer(px); p.Pointer(py); p.Int(n);
        if (plan.Rank == 1 && plan.Stride(0, 0) == 1)
        {
            Launch1D(EwModule, "expand_contig", Quads(n), ref p);
            return;
        }
        p.Int(plan.Rank); p.Ints(plan.Dims, MaxKernelRank); p.Ints(plan.Strides(0), MaxKernelRank);
        Launch1D(EwModule, "expand_strided", n, ref p);
    }

    /// <inheritdoc/>
    public void OneHot(Buf labels, Buf y, int n, int numClasses)
    {
        if (numClasses <= 0) throw new ArgumentException($"OneHot: numClasses must be positive, not {numClasses}.");
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "OneHot: n must not be negative.");
        if (n == 0) return;
        int total = checked(n * numClasses);
        ulong pl = CheckedPtr(labels, n, "OneHot"), py = CheckedPtr(y, total, "OneHot");
        // Validate first so that a bad label leaves y untouched and the message names the first offender, as on
        // the CPU. Reading the verdict back synchronises the stream once per call.
        int bad;
        using (var flag = Upload<int>([int.MaxValue]))
        {
            var pc = new KernelParams();
            pc.Pointer(pl); pc.Int(n); pc.Int(numClasses); pc.Pointer(flag.Address);
            Launch1D(EwModule, "onehot_check", n, ref pc);
            bad = ReadInt(flag.Address);
        }
        if (bad != int.MaxValue)
        {
            float v = ReadFloat(pl + (ulong)bad * sizeof(float));
            throw new ArgumentException($"OneHot: label {v} at index {bad} is not an integer in [0, {numClasses}).");
        }
        var p = new KernelParams();
        p.Pointer(pl); p.Pointer(py); p.Int(total); p.Int(numClasses);
        Launch1D(EwModule, "onehot_fill", total, ref p);
    }

    /// <summary>y[0..n) = value on the device (Pow with exponent 0, Sign's gradient).</summary>
    private void FillOnDevice(ulong y, int n, float value)
    {
        var p = new KernelParams();
        p.Pointer(y); p.Int(n); p.Float(value);
        Launch1D(EwModule, "ew_fill", Quads(n), ref p);
    }

    /// <summary>Work items of a float4 kernel over n floats (sizes its grid; the kernel itself loops over n).</summary>
    private static long Quads(int n) => ((long)n + 3) / 4;

    /// <summary>
    /// The device address of <paramref name="b"/> after checking that elements [Offset, Offset + count) lie inside its
    /// storage: a launch past the end would corrupt other tensors silently, so this is checked on every call.
    /// </summary>
    private ulong CheckedPtr(Buf b, long count, string kernel)
    {
        var s = CudaStorage.Of(b.Storage, Context);
        if (b.Offset < 0 || count < 0 || b.Offset + count > s.Length)
            throw new ArgumentException($"{kernel}: elements [{b.Offset}, {b.Offset + count}) lie outside a CUDA storage of {s.Length} floats.");
        return s.Address + (ulong)b.Offset * sizeof(float);
    }

    /// <summary>As <see cref="CheckedPtr"/> for an operand read through strides: checks its lowest and highest offset.</summary>
    private ulong StridedPtr(Buf b, CoalescedShape plan, int operand, string kernel)
    {
        var (lo, hi) = plan.Extent(operand);
        var s = CudaStorage.Of(b.Storage, Context);
        if (b.Offset + lo < 0 || b.Offset + hi >= s.Length)
            throw new ArgumentException($"{kernel}: operand {operand} reads elements [{b.Offset + lo}, {b.Offset + hi}] outside a CUDA storage of {s.Length} floats.");
        return s.Address + (ulong)b.Offset * sizeof(float);
    }

    private int ReadInt(ulong address)
    {
        Span<byte> bytes = stackalloc byte[sizeof(int)];
        Context.CopyToHost(address, bytes);
        return BitConverter.ToInt32(bytes);
    }

    private float ReadFloat(ulong address)
    {
        Span<byte> bytes = stackalloc byte[sizeof(float)];
        Context.CopyToHost(address, bytes);
        return BitConverter.ToSingle(bytes);
    }

    /// <summary>
    /// A broadcast iteration space after coalescing (size-1 dimensions dropped, neighbours merged where every operand
    /// walks them as one), innermost dimension first, at most <see cref="MaxKernelRank"/> dimensions.
    /// </summary>
    private sealed class CoalescedShape
    {
        private readonly int[] _dims;
        private readonly int[][] _strides;

        private CoalescedShape(int[] dims, int[][] strides, int numel) { _dims = dims; _strides = strides; Numel = numel; }

        /// <summary>Number of output elements.</summary>
        public int Numel { get; }
        /// <summary>Dimensions left (at least 1).</summary>
        public int Rank => _dims.Length;
        /// <summary>The dimensions, innermost first.</summary>
        public ReadOnlySpan<int> Dims => _dims;
        /// <summary>Operand <paramref name="k"/>'s strides, innermost first.</summary>
        public ReadOnlySpan<int> Strides(int k) => _strides[k];
        /// <summary>Operand k's stride along coalesced dimension d.</summary>
        public int Stride(int k, int d) => _strides[k][d];

        /// <summary>The lowest and highest element offset operand k reads.</summary>
        public (long lo, long hi) Extent(int k)
        {
            long lo = 0, hi = 0;
            for (int d = 0; d < _dims.Length; d++)
            {
                long span = (long)(_dims[d] - 1) * _strides[k][d];
                if (span < 0) lo += span; else hi += span;
            }
            return (lo, hi);
        }

        public static CoalescedShape Create(string kernel, int[] shape, params int[][] strides)
        {
            ArgumentNullException.ThrowIfNull(shape);
            long numel = 1;
            foreach (int d in shape)
            {
                if (d < 0) throw new ArgumentException($"{kernel}: negative dimension in shape {ShapeUtil.Format(shape)}.");
                numel *= d;
                if (numel > int.MaxValue) throw new ArgumentException($"{kernel}: shape {ShapeUtil.Format(shape)} has more than {int.MaxValue} elements.");
            }
            int k = strides.Length;
            foreach (var s in strides)
            {
                ArgumentNullException.ThrowIfNull(s, nameof(strides));
                if (s.Length != shape.Length)
                    throw new ArgumentException($"{kernel}: stride list of length {s.Length} does not match the rank of shape {ShapeUtil.Format(shape)}.");
            }
            var dims = new List<int>(shape.Length);
            var st = new List<long[]>(shape.Length);
            for (int i = shape.Length - 1; i >= 0; i--)
            {
                int d = shape[i];
                if (d == 1) continue;
                if (dims.Count > 0)
                {
                    int last = dims.Count - 1;
                    bool merge = true;
                    for (int j = 0; j < k && merge; j++) merge = strides[j][i] == st[last][j] * dims[last];
                    if (merge) { dims[last] *= d; continue; }
                }
                dims.Add(d);
                var s = new long[k];
                for (int j = 0; j < k; j++) s[j] = strides[j][i];
                st.Add(s);
            }
            if (dims.Count == 0) { dims.Add(1); st.Add(new long[k]); }   // a single element
            if (dims.Count > MaxKernelRank)
                throw new NotSupportedException($"{kernel}: shape {ShapeUtil.Format(shape)} still has {dims.Count} dimensions after merging contiguous ones; the CUDA kernels take at most {MaxKernelRank}.");
            var outStrides = new int[k][];
            for (int j = 0; j < k; j++)
            {
                outStrides[j] = new int[dims.Count];
                for (int d = 0; d < dims.Count; d++) outStrides[j][d] = checked((int)st[d][j]);
            }
            return new CoalescedShape(dims.ToArray(), outStrides, (int)numel);
        }
    }
}
