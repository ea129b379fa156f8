using Engine.Cpu;
using Engine.Cpu.Reference;
using Engine.Tensors;

namespace Engine.Diagnostics;

/// <summary>
/// <see cref="IKernels"/> over CPU storage built from the scalar reference implementations (Engine.Cpu.Reference,
/// <see cref="SgemmReference"/>, <see cref="OptimReference"/>): the reference side of <see cref="KernelSelfTest"/>
/// when the device under test is the CPU itself. Kernels without a reference implementation (Fill, Copy, Axpy,
/// the Philox RNG, OneHot, ScaleInPlace, the strided loops of Binary / Where / Expand) are plain scalar loops here.
/// Each call copies its buffers out, computes, and copies the results back: slow, obviously correct.
/// </summary>
internal sealed class ScalarReferenceKernels : IKernels
{
    private static float[] R(Buf b, int n)
    {
        var a = new float[n];
        if (n > 0) Device.Cpu.CopyToHost(b.Storage, b.Offset, a);
        return a;
    }

    private static void W(Buf b, ReadOnlySpan<float> data)
    {
        if (data.Length > 0) Device.Cpu.CopyFromHost(data, b.Storage, b.Offset);
    }

    private static float[]? ROpt(Buf b, int n) => b.Storage == null ? null : R(b, n);

    // Offset of element i (row-major over shape) when read through strides.
    private static long StridedOffset(long i, int[] shape, int[] strides)
    {
        long off = 0;
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            off += i % shape[d] * strides[d];
            i /= shape[d];
        }
        return off;
    }

    private static int Extent(int[] shape, int[] strides)
    {
        if (ShapeUtil.Numel(shape) == 0) return 0;
        long e = 1;
        for (int d = 0; d < shape.Length; d++) e += (long)(shape[d] - 1) * strides[d];
        return (int)e;
    }

    public void Fill(Buf y, int n, float value) => W(y, Enumerable.Repeat(value, n).ToArray());

    public void Copy(Buf src, Buf dst, int n) => W(dst, R(src, n));

    public void Axpy(float alpha, Buf x, Buf y, int n)
    {
        var xs = R(x, n); var ys = R(y, n);
        for (int i = 0; i < n; i++) ys[i] += alpha * xs[i];
        W(y, ys);
    }

    public void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha, Buf a, int lda, long strideA,
                     Buf b, int ldb, long strideB, float beta, Buf c, int ldc, long strideC)
    {
        int aLen = (transA ? k : m) == 0 ? 0 : ((transA ? k : m) - 1) * lda + (transA ? m : k);
        int bLen = (transB ? n : k) == 0 ? 0 : ((transB ? n : k) - 1) * ldb + (transB ? k : n);
        int cLen = m == 0 ? 0 : (m - 1) * ldc + n;
        for (int i = 0; i < batch; i++)
        {
            var cs = R(c.At((int)(i * strideC)), cLen);
            SgemmReference.Run(transA, transB, m, n, k, alpha, R(a.At((int)(i * strideA)), aLen), lda, R(b.At((int)(i * strideB)), bLen), ldb, beta, cs, ldc);
            W(c.At((int)(i * strideC)), cs);
        }
    }

    public void RandomUniform(Buf y, int n, ulong seed, ulong counter, float low, float high)
    {
        var ys = new float[n];
        for (int i = 0; i < n; i++)
        {
            var (w0, w1, w2, w3) = Philox.Generate(seed, counter + (ulong)(i / 4));
            uint w = (i % 4) switch { 0 => w0, 1 => w1, 2 => w2, _ => w3 };
            ys[i] = low + (high - low) * Philox.ToUnit(w);
        }
        W(y, ys);
    }

    public void RandomNormal(Buf y, int n, ulong seed, ulong counter, float mean, float std)
    {
        var ys = new float[n];
        for (int i = 0; i < n; i++)
        {
            var (w0, w1, _, _) = Philox.Generate(seed, counter + (ulong)(i / 2));
            double r = Math.Sqrt(-2.0 * Math.Log(Philox.ToUnitOpen(w0)));
            double th = 2.0 * Math.PI * Philox.ToUnit(w1);
            ys[i] = mean + std * (float)(i % 2 == 0 ? r * Math.Cos(th) : r * Math.Sin(th));
        }
        W(y, ys);
    }

    public void Unary(UnaryOp op, Buf x, Buf y, int n, float alpha, float beta)
        => W(y, R(x, n).Select(v => (float)ElementwiseReference.Unary(op, v, alpha, beta)).ToArray());

    public void UnaryBackward(UnaryOp op, Buf x, Buf y, Buf dy, Buf dx, int n, float alpha, float beta)
    {
        var xs = R(x, n); var ys = R(y, n); var dys = R(dy, n);
        // The kernel contract differentiates through the saved output for these ops (so does every device):
        // dy·y for Exp, not dy·e^x, which differs where e^x overflowed to infinity in float.
        double Grad(int i)
        {
            double xv = xs[i], yv = ys[i], d = dys[i];
            return op switch
            {
                UnaryOp.Exp => d * yv,
                UnaryOp.Sqrt => d / (yv + yv),
                UnaryOp.Sigmoid => d * yv * (1 - yv),
                UnaryOp.Tanh => d * (1 - yv * yv),
                UnaryOp.Reciprocal => -d * yv / xv,
                _ => ElementwiseReference.UnaryGrad(op, xv, d, alpha, beta),
            };
        }
        var dxs = new float[n];
        for (int i = 0; i < n; i++) dxs[i] = (float)Grad(i);
        W(dx, dxs);
    }

    public void Binary(BinaryOp op, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        var av = R(a, Extent(shape, aStrides)); var bv = R(b, Extent(shape, bStrides));
        var ys = new float[n];
        for (int i = 0; i < n; i++)
            ys[i] = (float)ElementwiseReference.Binary(op, av[StridedOffset(i, shape, aStrides)], bv[StridedOffset(i, shape, bStrides)]);
        W(y, ys);
    }

    public void Where(Buf cond, int[] condStrides, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        var cv = R(cond, Extent(shape, condStrides)); var av = R(a, Extent(shape, aStrides)); var bv = R(b, Extent(shape, bStrides));
        var ys = new float[n];
        for (int i = 0; i < n; i++)
            ys[i] = cv[StridedOffset(i, shape, condStrides)] != 0 ? av[StridedOffset(i, shape, aStrides)] : bv[StridedOffset(i, shape, bStrides)];
        W(y, ys);
    }

    public void Expand(Buf x, int[] xStrides, Buf y, int[] shape)
    {
        int n = ShapeUtil.Numel(shape);
        var xv = R(x, Extent(shape, xStrides));
        var ys = new float[n];
        for (int i = 0; i < n; i++) ys[i] = xv[StridedOffset(i, shape, xStrides)];
        W(y, ys);
    }

    public void OneHot(Buf labels, Buf y, int n, int numClasses)
    {
        if (numClasses <= 0) throw new ArgumentException($"OneHot: numClasses must be positive, not {numClasses}.");
        var l = R(labels, n);
        var ys = new float[(long)n * numClasses];
        for (int i = 0; i < n; i++)
        {
            float v = l[i];
            if (!(v >= 0 && v < numClasses && v == MathF.Floor(v)))
                throw new ArgumentException($"OneHot: label {v} at index {i} is not an integer in [0, {numClasses}).");
            ys[(long)i * numClasses + (int)v] = 1f;
        }
        W(y, ys);
    }

    public void Reduce(ReduceOp op, Buf x, Buf y, int outer, int size, int inner)
        => W(y, ReduceReference.Reduce(op, R(x, outer * size * inner), outer, size, inner));

    public void ArgMax(Buf x, Buf y, int outer, int size, int inner)
        => W(y, ReduceReference.ArgBest(R(x, outer * size * inner), outer, size, inner, max: true));

    public void ArgMin(Buf x, Buf y, int outer, int size, int inner)
        => W(y, ReduceReference.ArgBest(R(x, outer * size * inner), outer, size, inner, max: false));

    public void Softmax(Buf x, Buf y, int outer, int size, int inner, bool log)
        => W(y, ReduceReference.Softmax(R(x, outer * size * inner), outer, size, inner, log));

    public void SoftmaxBackward(Buf y, Buf dy, Buf dx, int outer, int size, int inner, bool log)
    {
        int n = outer * size * inner;
        W(dx, ReduceReference.SoftmaxBackward(R(y, n), R(dy, n), outer, size, inner, log));
    }

    public void SgdUpdate(Buf param, Buf grad, Buf momentumBuffer, int n, float lr, float momentum, float dampening,
                          float weightDecay, bool nesterov, bool firstStep)
    {
        var p = R(param, n); var buf = momentum != 0 ? R(momentumBuffer, n) : new float[n];
        OptimReference.SgdUpdate(p, R(grad, n), buf, lr, momentum, dampening, weightDecay, nesterov, firstStep);
        W(param, p);
        if (momentum != 0) W(momentumBuffer, buf);
    }

    public void AdamUpdate(Buf param, Buf grad, Buf expAvg, Buf expAvgSq, int n, float lr, float beta1, float beta2, float eps,
                           float weightDecay, bool decoupledWeightDecay, int step)
    {
        var p = R(param, n); var m = R(expAvg, n); var v = R(expAvgSq, n);
        OptimReference.AdamUpdate(p, R(grad, n), m, v, lr, beta1, beta2, eps, weightDecay, decoupledWeightDecay, step);
        W(param, p); W(expAvg, m); W(expAvgSq, v);
    }

    public double SumOfSquares(Buf x, int n) => OptimReference.SumOfSquares(R(x, n));

    public void ScaleInPlace(Buf x, int n, float alpha) => W(x, R(x, n).Select(v => v * alpha).ToArray());

    private static int XLen(in Conv2dGeometry g) => g.Batch * g.InChannels * g.InPixels;
    private static int YLen(in Conv2dGeometry g) => g.Batch * g.OutChannels * g.OutPixels;
    private static int WLen(in Conv2dGeometry g) => g.OutChannels * g.GroupInChannels * g.KernelH * g.KernelW;

    public void Conv2dForward(Buf x, Buf w, Buf? bias, Buf y, in Conv2dGeometry g)
        => W(y, ConvReference.Conv2dForward(R(x, XLen(g)), R(w, WLen(g)), bias is { } b ? R(b, g.OutChannels) : null, g));

    public void Conv2dBackwardInput(Buf dy, Buf w, Buf dx, in Conv2dGeometry g)
        => W(dx, ConvReference.Conv2dBackwardInput(R(dy, YLen(g)), R(w, WLen(g)), g));

    public void Conv2dBackwardWeight(Buf x, Buf dy, Buf dw, in Conv2dGeometry g)
        => W(dw, ConvReference.Conv2dBackwardWeight(R(x, XLen(g)), R(dy, YLen(g)), g));

    public void Im2Col(Buf image, Buf col, in Conv2dGeometry g)
        => W(col, ConvReference.Im2Col(R(image, g.GroupInChannels * g.InPixels), g));

    public void Col2Im(Buf col, Buf image, in Conv2dGeometry g)
    {
        var img = R(image, g.GroupInChannels * g.InPixels);
        ConvReference.Col2Im(R(col, g.ColRows * g.OutPixels), img, g);
        W(image, img);
    }

    public void AddBias(Buf y, Buf bias, int outer, int channels, int inner)
    {
        var ys = R(y, outer * channels * inner);
        ConvReference.AddBias(ys, R(bias, channels), outer, channels, inner);
        W(y, ys);
    }

    public void BiasGrad(Buf dy, Buf db, int outer, int channels, int inner)
        => W(db, ConvReference.BiasGrad(R(dy, outer * channels * inner), outer, channels, inner));

    private static int PoolIn(in Pool2dGeometry g) => g.Planes * g.Height * g.Width;
    private static int PoolOut(in Pool2dGeometry g) => g.Planes * g.OutH * g.OutW;

    public void MaxPool2dForward(Buf x, Buf y, Buf indices, in Pool2dGeometry g)
    {
        var (ys, idx) = PoolReference.MaxPool2dForward(R(x, PoolIn(g)), g);
        W(y, ys); W(indices, idx);
    }

    public void MaxPool2dBackward(Buf dy, Buf indices, Buf dx, in Pool2dGeometry g)
        => W(dx, PoolReference.MaxPool2dBackward(R(dy, PoolOut(g)), R(indices, PoolOut(g)), g));

    public void AvgPool2dForward(Buf x, Buf y, in Pool2dGeometry g, bool countIncludePad)
        => W(y, PoolReference.AvgPool2dForward(R(x, PoolIn(g)), g, countIncludePad));

    public void AvgPool2dBackward(Buf dy, Buf dx, in Pool2dGeometry g, bool countIncludePad)
        => W(dx, PoolReference.AvgPool2dBackward(R(dy, PoolOut(g)), g, countIncludePad));

    public void Permute(Buf x, int[] shape, int[] perm, Buf y)
        => W(y, ShapeReference.Permute(R(x, ShapeUtil.Numel(shape)), shape, perm));

    public void SliceCopy(Buf x, Buf y, int outer, int dimIn, int inner, int start, int step, int count)
    {
        var ys = new float[outer * count * inner];
        ShapeReference.SliceCopy(R(x, outer * dimIn * inner), ys, outer, dimIn, inner, start, step, count);
        W(y, ys);
    }

    public void SliceScatter(Buf x, Buf y, int outer, int dimOut, int inner, int start, int step, int count)
    {
        var ys = R(y, outer * dimOut * inner);
        ShapeReference.SliceScatter(R(x, outer * count * inner), ys, outer, dimOut, inner, start, step, count);
        W(y, ys);
    }

    public void IndexSelect(Buf x, Buf y, int outer, int dimIn, int inner, int[] indices)
    {
        var ys = new float[outer * indices.Length * inner];
        ShapeReference.IndexSelect(R(x, outer * dimIn * inner), ys, outer, dimIn, inner, indices);
        W(y, ys);
    }

    public void IndexAdd(Buf x, Buf y, int outer, int dimOut, int inner, int[] indices)
    {
        var ys = R(y, outer * dimOut * inner);
        ShapeReference.IndexAdd(R(x, outer * indices.Length * inner), ys, outer, dimOut, inner, indices);
        W(y, ys);
    }

    public void BoundRelax(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                           Buf upBias, int upBiasRows, Buf y, Buf bias, Buf mag, int batch, int rows, int n, bool accumulate)
    {
        var (ys, bs, ms) = BoundsReference.Relax(R(a, batch * rows * n), R(lowSlope, batch * lowSlopeRows * n), lowSlopeRows,
            ROpt(lowBias, batch * lowBiasRows * n), lowBiasRows, R(upSlope, batch * upSlopeRows * n), upSlopeRows,
            ROpt(upBias, batch * upBiasRows * n), upBiasRows, batch, rows, n);
        W(y, ys);
        if (lowBias.Storage != null || upBias.Storage != null) { W(bias, Accumulated(bias, bs, accumulate)); W(mag, Accumulated(mag, ms, accumulate)); }
    }

    public void BoundRelaxBackward(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                                   Buf upBias, int upBiasRows, Buf gy, Buf gBias, Buf gA, Buf gLowSlope, Buf gUpSlope, Buf gLowBias,
                                   Buf gUpBias, int batch, int rows, int n)
    {
        int len = batch * rows * n;
        var (ga, gls, gus, glb, gub) = BoundsReference.RelaxBackward(R(a, len), R(lowSlope, batch * lowSlopeRows * n), lowSlopeRows,
            ROpt(lowBias, batch * lowBiasRows * n), lowBiasRows, R(upSlope, batch * upSlopeRows * n), upSlopeRows,
            ROpt(upBias, batch * upBiasRows * n), upBiasRows, ROpt(gy, len), ROpt(gBias, batch * rows), batch, rows, n);
        if (gA.Storage != null) W(gA, ga);
        if (gLowSlope.Storage != null) W(gLowSlope, gls);
        if (gUpSlope.Storage != null) W(gUpSlope, gus);
        if (gLowBias.Storage != null) W(gLowBias, glb);
        if (gUpBias.Storage != null) W(gUpBias, gub);
    }

    public void BoundDotBackward(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf g, Buf gA, int batch, int rows, int n)
    {
        int cLen = (batch - 1) * cBatchStride + n, rLen = (batch - 1) * radiusBatchStride + n;
        W(gA, BoundsReference.DotBackward(R(a, batch * rows * n), R(c, cLen), cBatchStride, ROpt(radius, rLen), radiusBatchStride, eps, R(g, batch * rows), batch, rows, n));
    }

    public void IbpCenterMargin(Buf lower, Buf upper, Buf center, Buf margin, int n, float rho)
    {
        var (c, m) = BoundsReference.IbpCenterMargin(R(lower, n), R(upper, n), rho);
        W(center, c); W(margin, m);
    }

    public void IbpCombine(Buf center, Buf rad, Buf bias, int channels, int inner, float rho, float abs, Buf lower, Buf upper, int n)
    {
        var (lo, hi) = BoundsReference.IbpCombine(R(center, n), R(rad, n), ROpt(bias, channels), channels, inner, rho, abs);
        W(lower, lo); W(upper, hi);
    }

    public void IbpRelu(Buf lower, Buf upper, Buf lo, Buf hi, Buf center, Buf margin, int n, float rho)
    {
        var (l, h, c, m) = BoundsReference.IbpRelu(R(lower, n), R(upper, n), rho);
        W(lo, l); W(hi, h); W(center, c); W(margin, m);
    }

    public void IbpReluBackward(Buf lower, Buf upper, Buf gLo, Buf gHi, Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho)
    {
        var (gl, gu) = BoundsReference.IbpReluBackward(R(lower, n), R(upper, n), ROpt(gLo, n), ROpt(gHi, n), ROpt(gCenter, n), ROpt(gMargin, n), rho);
        if (gLower.Storage != null) W(gLower, gl);
        if (gUpper.Storage != null) W(gUpper, gu);
    }

    public void IbpCenterMarginBackward(Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho)
    {
        var (gl, gu) = BoundsReference.IbpCenterMarginBackward(ROpt(gCenter, n), ROpt(gMargin, n), n, rho);
        if (gLower.Storage != null) W(gLower, gl);
        if (gUpper.Storage != null) W(gUpper, gu);
    }

    public void IbpCombineBackward(Buf gLower, Buf gUpper, Buf gCenter, Buf gRad, int n)
    {
        var (gc, gr) = BoundsReference.IbpCombineBackward(R(gLower, n), R(gUpper, n));
        if (gCenter.Storage != null) W(gCenter, gc);
        if (gRad.Storage != null) W(gRad, gr);
    }

    public void BoundMerge(Buf ibpLower, Buf ibpUpper, Buf rows, int rowCount, int[] index, Buf lower, Buf upper, int n)
    {
        var (lo, hi) = BoundsReference.BoundMerge(R(ibpLower, n), R(ibpUpper, n), rowCount == 0 ? [] : R(rows, rowCount), index);
        W(lower, lo); W(upper, hi);
    }

    public void ReluRelaxation(Buf lower, Buf upper, Buf lowSlope, Buf upSlope, Buf upBias, int n)
    {
        var (aL, aU, bU) = BoundsReference.ReluRelaxation(R(lower, n), R(upper, n));
        W(lowSlope, aL); W(upSlope, aU); W(upBias, bU);
    }

    public void ReluRelaxationBackward(Buf lower, Buf upper, Buf gUpSlope, Buf gUpBias, Buf gLower, Buf gUpper, int n)
    {
        var (gl, gu) = BoundsReference.ReluRelaxationBackward(R(lower, n), R(upper, n), ROpt(gUpSlope, n), ROpt(gUpBias, n));
        if (gLower.Storage != null) W(gLower, gl);
        if (gUpper.Storage != null) W(gUpper, gu);
    }

    public void BoundDot(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf value, Buf mag, int batch, int rows, int n, bool accumulate)
    {
        int cLen = (batch - 1) * cBatchStride + n, rLen = (batch - 1) * radiusBatchStride + n;
        var (v, m) = BoundsReference.Dot(R(a, batch * rows * n), R(c, cLen), cBatchStride, ROpt(radius, rLen), radiusBatchStride, eps, batch, rows, n);
        W(value, Accumulated(value, v, accumulate)); W(mag, Accumulated(mag, m, accumulate));
    }

    /// <summary>The results, or (accumulate) what the buffer holds plus them, one float add each.</summary>
    private static float[] Accumulated(Buf into, float[] results, bool accumulate)
    {
        if (!accumulate) return results;
        var held = R(into, results.Length);
        for (int i = 0; i < results.Length; i++) held[i] += results[i];
        return held;
    }

    public void BoundConvSelect(Buf w, Buf code, Buf y, int count, in Conv2dGeometry g)
        => W(y, BoundsReference.ConvSelect(R(w, WLen(g)), R(code, count), count, g));

    public void BoundSelectRows(Buf x, int xRows, int cols, int[] code, int divisor, Buf y, Buf abs)
    {
        var (rows, absRows) = BoundsReference.SelectRows(R(x, xRows * cols), cols, code, divisor);
        W(y, rows);
        if (abs.Storage != null) W(abs, absRows);
    }

    public void BoundConvTranspose(Buf a, Buf w, Buf dx, in Conv2dGeometry g)
        => W(dx, ConvReference.Conv2dBackwardInput(R(a, YLen(g)), R(w, WLen(g)), g));
}
