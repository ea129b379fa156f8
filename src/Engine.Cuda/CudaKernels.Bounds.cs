using Engine.Tensors;

namespace Engine.Cuda;

// CROWN's fused backward-sweep passes on CUDA (kernels/bounds.cu; BoundConvTranspose uses kernels/conv.cu's direct
// transposed convolution). Row reductions run one warp per row when rows are short or plentiful, else one 256-thread
// block per row, and accumulate in double: the magnitudes (Σ|terms|) that scale the float32 rounding margin are at
// least as accurate as the CPU's, so the margin stays sound.
internal sealed partial class CudaKernels
{
    // Rows at most this long always get one warp each.
    private const int BoundWarpRowMax = 256;

    /// <summary>Whether a row reduction over totalRows rows of n runs one warp per row (else one block per row), and its grid.</summary>
    private (bool WarpPerRow, uint Blocks) BoundRowLaunch(long totalRows, int n)
    {
        long fill = Math.Max(1L, Context.MaxResidentBlocks256);
        bool warp = n <= BoundWarpRowMax || totalRows >= fill * 8;
        long blocks = warp ? (totalRows + 7) / 8 : totalRows;
        return (warp, (uint)Math.Clamp(blocks, 1, fill));
    }

    /// <summary>Checks that a per-element operand of [batch, rows, n] coefficients has 1 or rows rows, and its length.</summary>
    private static void CheckRowOperand(Buf t, int tRows, int batch, int rows, int n, string kernel, string name)
    {
        if (tRows != 1 && tRows != rows) throw new ArgumentException($"{kernel}: {name} has {tRows} rows; it must have 1 or {rows}.");
        NeedElements(t, (long)batch * tRows * n, kernel, name);
    }

    /// <summary>
    /// The checks of BoundRelax's and its backward's shared operands: sizes, a [batch, rows, n] and the slopes and biases
    /// of 1 or rows rows each. Returns a's length and which biases are given.
    /// </summary>
    private static (long Len, bool HasLow, bool HasUp) CheckRelaxOperands(string kernel, Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows,
                                                                          Buf upSlope, int upSlopeRows, Buf upBias, int upBiasRows, int batch, int rows, int n)
    {
        if (batch < 0 || rows < 0 || n < 0) throw new ArgumentException($"{kernel}: negative size (batch {batch}, rows {rows}, n {n}).");
        long len = (long)batch * rows * n;
        Items(len, kernel);
        NeedElements(a, len, kernel, "a");
        CheckRowOperand(lowSlope, lowSlopeRows, batch, rows, n, kernel, "lowSlope");
        CheckRowOperand(upSlope, upSlopeRows, batch, rows, n, kernel, "upSlope");
        bool hasLow = lowBias.Storage is not null, hasUp = upBias.Storage is not null;
        if (hasLow) CheckRowOperand(lowBias, lowBiasRows, batch, rows, n, kernel, "lowBias");
        if (hasUp) CheckRowOperand(upBias, upBiasRows, batch, rows, n, kernel, "upBias");
        return (len, hasLow, hasUp);
    }

    /// <summary>
    /// The checks of an element-wise bound kernel over n elements: n is not negative and each buffer holds n elements
    /// from its offset. False when n is 0 (nothing to launch).
    /// </summary>
    private static bool ElementwiseBuffers(string kernel, int n, params ReadOnlySpan<(Buf Buffer, string Name)> buffers)
    {
        if (n < 0) throw new ArgumentException($"{kernel}: negative size {n}.");
        if (n == 0) return false;
        foreach (var (b, name) in buffers) NeedElements(b, n, kernel, name);
        return true;
    }

    /// <inheritdoc/>
    public void ReluRelaxation(Buf lower, Buf upper, Buf lowSlope, Buf upSlope, Buf upBias, int n)
    {
        if (!ElementwiseBuffers(nameof(ReluRelaxation), n, (lower, "lower"), (upper, "upper"), (lowSlope, "lowSlope"), (upSlope, "upSlope"), (upBias, "upBias")))
            return;
        var p = new KernelParams();
        p.Pointer(Ptr(lower)); p.Pointer(Ptr(upper)); p.Pointer(Ptr(lowSlope)); p.Pointer(Ptr(upSlope)); p.Pointer(Ptr(upBias)); p.Int(n);
        Launch1D("bounds", "relu_relaxation", n, ref p);
    }

    /// <inheritdoc/>
    public void ReluRelaxationBackward(Buf lower, Buf upper, Buf gUpSlope, Buf gUpBias, Buf gLower, Buf gUpper, int n)
    {
        const string K = nameof(ReluRelaxationBackward);
        if (!ElementwiseBuffers(K, n, (lower, "lower"), (upper, "upper"))) return;
        bool hasS = Optional(gUpSlope, n, K, "gUpSlope"), hasB = Optional(gUpBias, n, K, "gUpBias");
        bool hasL = Optional(gLower, n, K, "gLower"), hasU = Optional(gUpper, n, K, "gUpper");
        if (!hasL && !hasU) return;
        var p = new KernelParams();
        p.Pointer(Ptr(lower)); p.Pointer(Ptr(upper)); p.Pointer(hasS ? Ptr(gUpSlope) : 0UL); p.Pointer(hasB ? Ptr(gUpBias) : 0UL);
        p.Pointer(hasL ? Ptr(gLower) : 0UL); p.Pointer(hasU ? Ptr(gUpper) : 0UL);
        p.Int(hasS ? 1 : 0); p.Int(hasB ? 1 : 0); p.Int(hasL ? 1 : 0); p.Int(hasU ? 1 : 0); p.Int(n);
        Launch1D("bounds", "relu_relaxation_backward", n, ref p);
    }

    /// <inheritdoc/>
    public void IbpCenterMargin(Buf lower, Buf upper, Buf center, Buf margin, int n, float rho)
    {
        if (!ElementwiseBuffers(nameof(IbpCenterMargin), n, (lower, "lower"), (upper, "upper"), (center, "center"), (margin, "margin"))) return;
        var p = new KernelParams();
        p.Pointer(Ptr(lower)); p.Pointer(Ptr(upper)); p.Pointer(Ptr(center)); p.Pointer(Ptr(margin)); p.Int(n); p.Float(rho);
        Launch1D("bounds", "ibp_center_margin", n, ref p);
    }

    /// <inheritdoc/>
    public void IbpCombine(Buf center, Buf rad, Buf bias, int channels, int inner, float rho, float abs, Buf lower, Buf upper, int n)
    {
        const string K = nameof(IbpCombine);
        if (channels < 1 || inner < 1) throw new ArgumentException($"{K}: bad sizes (n {n}, channels {channels}, inner {inner}).");
        if (!ElementwiseBuffers(K, n, (center, "center"), (rad, "rad"), (lower, "lower"), (upper, "upper"))) return;
        bool hasBias = bias.Storage is not null;
        if (hasBias) NeedElements(bias, channels, K, "bias");
        var p = new KernelParams();
        p.Pointer(Ptr(center)); p.Pointer(Ptr(rad)); p.Pointer(hasBias ? Ptr(bias) : 0UL); p.Int(hasBias ? 1 : 0); p.Int(channels); p.Int(inner);
        p.Float(rho); p.Float(abs); p.Pointer(Ptr(lower)); p.Pointer(Ptr(upper)); p.Int(n);
        Launch1D("bounds", "ibp_combine", n, ref p);
    }

    /// <inheritdoc/>
    public void IbpRelu(Buf lower, Buf upper, Buf lo, Buf hi, Buf center, Buf margin, int n, float rho)
    {
        if (!ElementwiseBuffers(nameof(IbpRelu), n, (lower, "lower"), (upper, "upper"), (lo, "lo"), (hi, "hi"), (center, "center"), (margin, "margin"))) return;
        var p = new KernelParams();
        p.Pointer(Ptr(lower)); p.Pointer(Ptr(upper)); p.Pointer(Ptr(lo)); p.Pointer(Ptr(hi)); p.Pointer(Ptr(center)); p.Pointer(Ptr(margin));
        p.Int(n); p.Float(rho);
        Launch1D("bounds", "ibp_relu", n, ref p);
    }

    /// <inheritdoc/>
    public void IbpReluBackward(Buf lower, Buf upper, Buf gLo, Buf gHi, Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho)
    {
        const string K = nameof(IbpReluBackward);
        if (!ElementwiseBuffers(K, n, (lower, "lower"), (upper, "upper"))) return;
        bool hasLo = Optional(gLo, n, K, "gLo"), hasHi = Optional(gHi, n, K, "gHi");
        bool hasC = Optional(gCenter, n, K, "gCenter"), hasM = Optional(gMargin, n, K, "gMargin");
        bool hasL = Optional(gLower, n, K, "gLower"), hasU = Optional(gUpper, n, K, "gUpper");
        if (!hasL && !hasU) return;
        var p = new KernelParams();
        p.Pointer(Ptr(lower)); p.Pointer(Ptr(upper)); p.Pointer(hasLo ? Ptr(gLo) : 0UL); p.Pointer(hasHi ? Ptr(gHi) : 0UL);
        p.Pointer(hasC ? Ptr(gCenter) : 0UL); p.Pointer(hasM ? Ptr(gMargin) : 0UL); p.Pointer(hasL ? Ptr(gLower) : 0UL); p.Pointer(hasU ? Ptr(gUpper) : 0UL);
        p.Int(hasLo ? 1 : 0); p.Int(hasHi ? 1 : 0); p.Int(hasC ? 1 : 0); p.Int(hasM ? 1 : 0); p.Int(hasL ? 1 : 0); p.Int(hasU ? 1 : 0);
        p.Int(n); p.Float(0.5f * (1 + rho));   // the CPU's hk, rounded on the host as there
        Launch1D("bounds", "ibp_relu_backward", n, ref p);
    }

    /// <inheritdoc/>
    public void IbpCenterMarginBackward(Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho)
    {
        const string K = nameof(IbpCenterMarginBackward);
        if (n < 0) throw new ArgumentException($"{K}: negative size {n}.");
        if (n == 0) return;
        bool hasC = Optional(gCenter, n, K, "gCenter"), hasM = Optional(gMargin, n, K, "gMargin");
        bool hasL = Optional(gLower, n, K, "gLower"), hasU = Optional(gUpper, n, K, "gUpper");
        if (!hasL && !hasU) return;
        var p = new KernelParams();
        p.Pointer(hasC ? Ptr(gCenter) : 0UL); p.Pointer(hasM ? Ptr(gMargin) : 0UL); p.Pointer(hasL ? Ptr(gLower) : 0UL); p.Pointer(hasU ? Ptr(gUpper) : 0UL);
        p.Int(hasC ? 1 : 0); p.Int(hasM ? 1 : 0); p.Int(hasL ? 1 : 0); p.Int(hasU ? 1 : 0);
        p.Int(n); p.Float(0.5f * (1 + rho));   // the CPU's hk, rounded on the host as there
        Launch1D("bounds", "ibp_center_margin_backward", n, ref p);
    }

    /// <inheritdoc/>
    public void IbpCombineBackward(Buf gLower, Buf gUpper, Buf gCenter, Buf gRad, int n)
    {
        const string K = nameof(IbpCombineBackward);
        if (!ElementwiseBuffers(K, n, (gLower, "gLower"), (gUpper, "gUpper"))) return;
        bool hasC = Optional(gCenter, n, K, "gCenter"), hasR = Optional(gRad, n, K, "gRad");
        if (!hasC && !hasR) return;
        var p = new KernelParams();
        p.Pointer(Ptr(gLower)); p.Pointer(Ptr(gUpper)); p.Pointer(hasC ? Ptr(gCenter) : 0UL); p.Pointer(hasR ? Ptr(gRad) : 0UL);
        p.Int(hasC ? 1 : 0); p.Int(hasR ? 1 : 0); p.Int(n);
        Launch1D("bounds", "ibp_combine_backward", n, ref p);
    }

    /// <summary>Whether an optional buffer is given (then it must hold n elements).</summary>
    private static bool Optional(Buf b, int n, string kernel, string name)
    {
        if (b.Storage is null) return false;
        NeedElements(b, n, kernel, name);
        return true;
    }

    /// <inheritdoc/>
    public void BoundMerge(Buf ibpLower, Buf ibpUpper, Buf rows, int rowCount, int[] index, Buf lower, Buf upper, int n)
    {
        const string K = nameof(BoundMerge);
        ArgumentNullException.ThrowIfNull(index);
        if (n < 0 || rowCount < 0 || index.Length != 2 * (long)n) throw new ArgumentException($"{K}: {index.Length} indices for {n} elements (2n wanted), {rowCount} rows.");
        IndexChecks.InRange(index, -1, rowCount - 1L, K, "index");
        if (!ElementwiseBuffers(K, n, (ibpLower, "ibpLower"), (ibpUpper, "ibpUpper"), (lower, "lower"), (upper, "upper"))) return;
        if (rowCount > 0) NeedElements(rows, rowCount, K, "rows");
        using var idx = Upload<int>(index);
        var p = new KernelParams();
        p.Pointer(Ptr(ibpLower)); p.Pointer(Ptr(ibpUpper)); p.Pointer(rowCount > 0 ? Ptr(rows) : 0UL); p.Pointer(idx.Address);
        p.Pointer(Ptr(lower)); p.Pointer(Ptr(upper)); p.Int(n);
        Launch1D("bounds", "bound_merge", n, ref p);
    }

    /// <inheritdoc/>
    public void BoundRelax(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                           Buf upBias, int upBiasRows, Buf y, Buf bias, Buf mag, int batch, int rows, int n, bool accumulate)
    {
        const string K = nameof(BoundRelax);
        var (len, hasLow, hasUp) = CheckRelaxOperands(K, a, lowSlope, lowSlopeRows, lowBias, lowBiasRows, upSlope, upSlopeRows, upBias, upBiasRows, batch, rows, n);
        long totalRows = (long)batch * rows;
        NeedElements(y, len, K, "y");
        bool withBias = hasLow || hasUp;
        if (withBias)
        {
            NeedElements(bias, totalRows, K, "bias");
            NeedElements(mag, totalRows, K, "mag");
        }
        if (totalRows == 0) return;
        var (warp, blocks) = BoundRowLaunch(totalRows, n);
        var p = new KernelParams();
        p.Pointer(Ptr(a)); p.Pointer(Ptr(lowSlope)); p.Int(lowSlopeRows); p.Pointer(hasLow ? Ptr(lowBias) : 0UL); p.Int(lowBiasRows);
        p.Pointer(Ptr(upSlope)); p.Int(upSlopeRows); p.Pointer(hasUp ? Ptr(upBias) : 0UL); p.Int(upBiasRows); p.Pointer(Ptr(y));
        p.Pointer(withBias ? Ptr(bias) : 0UL); p.Pointer(withBias ? Ptr(mag) : 0UL); p.Int(withBias ? 1 : 0); p.Int(batch); p.Int(rows); p.Int(n); p.Int(warp ? 1 : 0);
        p.Int(accumulate ? 1 : 0);
        Launch("bounds", "bound_relax", new Dim3(blocks), new Dim3(256), 0, ref p);
    }

    /// <inheritdoc/>
    public void BoundDot(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf value, Buf mag, int batch, int rows, int n, bool accumulate)
    {
        const string K = nameof(BoundDot);
        if (batch < 0 || rows < 0 || n < 0) throw new ArgumentException($"{K}: negative size (batch {batch}, rows {rows}, n {n}).");
        if (cBatchStride < 0 || radiusBatchStride < 0) throw new ArgumentException($"{K}: negative batch stride (c {cBatchStride}, radius {radiusBatchStride}).");
        long len = (long)batch * rows * n, totalRows = (long)batch * rows;
        Items(len, K);
        NeedElements(a, len, K, "a");
        NeedElements(value, totalRows, K, "value");
        NeedElements(mag, totalRows, K, "mag");
        if (totalRows == 0) return;
        NeedElements(c, (long)(batch - 1) * cBatchStride + n, K, "c");
        bool hasRadius = radius.Storage is not null;
        if (hasRadius) NeedElements(radius, (long)(batch - 1) * radiusBatchStride + n, K, "radius");
        var (warp, blocks) = BoundRowLaunch(totalRows, n);
        var p = new KernelParams();
        p.Pointer(Ptr(a)); p.Pointer(Ptr(c)); p.Int(cBatchStride); p.Pointer(hasRadius ? Ptr(radius) : 0UL); p.Int(hasRadius ? 1 : 0); p.Int(radiusBatchStride);
        p.Float(eps); p.Pointer(Ptr(value)); p.Pointer(Ptr(mag)); p.Int(batch); p.Int(rows); p.Int(n); p.Int(warp ? 1 : 0);
        p.Int(accumulate ? 1 : 0);
        Launch("bounds", "bound_dot", new Dim3(blocks), new Dim3(256), 0, ref p);
    }

    /// <inheritdoc/>
    public void BoundRelaxBackward(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                                   Buf upBias, int upBiasRows, Buf gy, Buf gBias, Buf gA, Buf gLowSlope, Buf gUpSlope, Buf gLowBias,
                                   Buf gUpBias, int batch, int rows, int n)
    {
        const string K = nameof(BoundRelaxBackward);
        var (len, hasLow, hasUp) = CheckRelaxOperands(K, a, lowSlope, lowSlopeRows, lowBias, lowBiasRows, upSlope, upSlopeRows, upBias, upBiasRows, batch, rows, n);
        bool hasGy = Optional(gy, (int)len, K, "gy"), hasGb = Optional(gBias, batch * rows, K, "gBias");
        bool hasGa = Optional(gA, (int)len, K, "gA");
        bool Out(Buf b, int tRows, string name) { if (b.Storage is null) return false; CheckRowOperand(b, tRows, batch, rows, n, K, name); return true; }
        bool hasGls = Out(gLowSlope, lowSlopeRows, "gLowSlope"), hasGus = Out(gUpSlope, upSlopeRows, "gUpSlope");
        bool hasGlb = Out(gLowBias, lowBiasRows, "gLowBias"), hasGub = Out(gUpBias, upBiasRows, "gUpBias");
        if ((long)batch * n == 0 || rows == 0 && !(hasGls || hasGus || hasGlb || hasGub)) return;
        var p = new KernelParams();
        p.Pointer(Ptr(a)); p.Pointer(Ptr(lowSlope)); p.Int(lowSlopeRows); p.Pointer(hasLow ? Ptr(lowBias) : 0UL); p.Int(lowBiasRows);
        p.Pointer(Ptr(upSlope)); p.Int(upSlopeRows); p.Pointer(hasUp ? Ptr(upBias) : 0UL); p.Int(upBiasRows);
        p.Pointer(hasGy ? Ptr(gy) : 0UL); p.Pointer(hasGb ? Ptr(gBias) : 0UL); p.Pointer(hasGa ? Ptr(gA) : 0UL);
        p.Pointer(hasGls ? Ptr(gLowSlope) : 0UL); p.Pointer(hasGus ? Ptr(gUpSlope) : 0UL); p.Pointer(hasGlb ? Ptr(gLowBias) : 0UL); p.Pointer(hasGub ? Ptr(gUpBias) : 0UL);
        p.Int(hasLow || hasUp ? 1 : 0); p.Int(hasGy ? 1 : 0); p.Int(hasGb ? 1 : 0); p.Int(hasGa ? 1 : 0);
        p.Int(hasGls ? 1 : 0); p.Int(hasGus ? 1 : 0); p.Int(hasGlb ? 1 : 0); p.Int(hasGub ? 1 : 0);
        p.Int(batch); p.Int(rows); p.Int(n);
        // One thread per (example, element): it walks the rows in order, so sums over rows need no atomics and add in
        // the CPU's order.
        Launch1D("bounds", "bound_relax_backward", (long)batch * n, ref p);
    }

    /// <inheritdoc/>
    public void BoundDotBackward(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf g, Buf gA, int batch, int rows, int n)
    {
        const string K = nameof(BoundDotBackward);
        if (batch < 0 || rows < 0 || n < 0) throw new ArgumentException($"{K}: negative size (batch {batch}, rows {rows}, n {n}).");
        if (cBatchStride < 0 || radiusBatchStride < 0) throw new ArgumentException($"{K}: negative batch stride (c {cBatchStride}, radius {radiusBatchStride}).");
        long len = (long)batch * rows * n;
        Items(len, K);
        if (len == 0) return;
        NeedElements(a, len, K, "a");
        NeedElements(gA, len, K, "gA");
        NeedElements(g, (long)batch * rows, K, "g");
        NeedElements(c, (long)(batch - 1) * cBatchStride + n, K, "c");
        bool hasRadius = radius.Storage is not null;
        if (hasRadius) NeedElements(radius, (long)(batch - 1) * radiusBatchStride + n, K, "radius");
        var p = new KernelParams();
        p.Pointer(Ptr(a)); p.Pointer(Ptr(c)); p.Int(cBatchStride); p.Pointer(hasRadius ? Ptr(radius) : 0UL); p.Int(hasRadius ? 1 : 0); p.Int(radiusBatchStride);
        p.Float(eps); p.Pointer(Ptr(g)); p.Pointer(Ptr(gA)); p.Int(rows); p.Int(n); p.Int((int)len);
        Launch1D("bounds", "bound_dot_backward", len, ref p);
    }

    /// <inheritdoc/>
    public void BoundConvSelect(Buf w, Buf code, Buf y, int count, in Conv2dGeometry g)
    {
        const string K = nameof(BoundConvSelect);
        CheckGeometry(g, K);
        if (count < 0) throw new ArgumentException($"{K}: negative count {count}.");
        long total = (long)count * g.InChannels * g.InPixels;
        NeedElements(w, (long)g.OutChannels * g.ColRows, K, "w");
        NeedElements(code, count, K, "code");
        NeedElements(y, total, K, "y");
        if (total == 0) return;
        var p = new KernelParams();
        p.Pointer(Ptr(w)); p.Pointer(Ptr(code)); p.Pointer(Ptr(y)); ConvArgs(ref p, g); p.Int(Items(total, K));
        Launch1D("bounds", "bound_conv_select", total, ref p);
    }

    /// <inheritdoc/>
    public void BoundSelectRows(Buf x, int xRows, int cols, int[] code, int divisor, Buf y, Buf abs)
    {
        const string K = nameof(BoundSelectRows);
        Engine.Cpu.CpuKernels.CheckSelectRows(xRows, cols, code, divisor, K);
        long total = (long)code.Length * cols;
        if (total == 0) return;
        NeedElements(x, (long)xRows * cols, K, "x");
        NeedElements(y, total, K, "y");
        bool withAbs = abs.Storage is not null;
        if (withAbs) NeedElements(abs, total, K, "abs");
        using var dev = Upload<int>(code);
        var p = new KernelParams();
        p.Pointer(Ptr(x)); p.Int(cols); p.Pointer(dev.Address); p.Int(divisor); p.Pointer(Ptr(y)); p.Pointer(withAbs ? Ptr(abs) : 0UL);
        p.Int(Items(total, K));
        Launch1D("bounds", "bound_select_rows", total, ref p);
    }

    /// <inheritdoc/>
    public void BoundConvTranspose(Buf a, Buf w, Buf dx, in Conv2dGeometry g)
    {
        const string K = nameof(BoundConvTranspose);
        CheckConvBuffers(g, K, dx, "dx", w, a, "a");
        if (g.Batch == 0) return;
        // Direct gather (one thread per dx element): CROWN's many small images with few channels need no GEMM.
        LaunchConvTransposeDirect(a, w, dx, g, K);
    }
}
