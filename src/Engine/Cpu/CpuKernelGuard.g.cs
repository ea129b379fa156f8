// Generated from IKernels by reflection (see CpuKernelGuard.cs): every member forwards to CpuKernels and then
// keeps its buffers' storages alive, so no storage can be finalized (and its array recycled) mid-kernel.
using Engine.Tensors;

namespace Engine.Cpu;

internal sealed partial class CpuKernelGuard
{
    public void AdamUpdate(Engine.Tensors.Buf param, Engine.Tensors.Buf grad, Engine.Tensors.Buf expAvg, Engine.Tensors.Buf expAvgSq, int n, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupledWeightDecay, int step)
    {
        Inner.AdamUpdate(param, grad, expAvg, expAvgSq, n, lr, beta1, beta2, eps, weightDecay, decoupledWeightDecay, step);
        GC.KeepAlive(param.Storage);
        GC.KeepAlive(grad.Storage);
        GC.KeepAlive(expAvg.Storage);
        GC.KeepAlive(expAvgSq.Storage);
    }

    public void AddBias(Engine.Tensors.Buf y, Engine.Tensors.Buf bias, int outer, int channels, int inner)
    {
        Inner.AddBias(y, bias, outer, channels, inner);
        GC.KeepAlive(y.Storage);
        GC.KeepAlive(bias.Storage);
    }

    public void ArgMax(Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int size, int inner)
    {
        Inner.ArgMax(x, y, outer, size, inner);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void ArgMin(Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int size, int inner)
    {
        Inner.ArgMin(x, y, outer, size, inner);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void AvgPool2dBackward(Engine.Tensors.Buf dy, Engine.Tensors.Buf dx, in Engine.Tensors.Pool2dGeometry g, bool countIncludePad)
    {
        Inner.AvgPool2dBackward(dy, dx, in g, countIncludePad);
        GC.KeepAlive(dy.Storage);
        GC.KeepAlive(dx.Storage);
    }

    public void AvgPool2dForward(Engine.Tensors.Buf x, Engine.Tensors.Buf y, in Engine.Tensors.Pool2dGeometry g, bool countIncludePad)
    {
        Inner.AvgPool2dForward(x, y, in g, countIncludePad);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void Axpy(float alpha, Engine.Tensors.Buf x, Engine.Tensors.Buf y, int n)
    {
        Inner.Axpy(alpha, x, y, n);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void BiasGrad(Engine.Tensors.Buf dy, Engine.Tensors.Buf db, int outer, int channels, int inner)
    {
        Inner.BiasGrad(dy, db, outer, channels, inner);
        GC.KeepAlive(dy.Storage);
        GC.KeepAlive(db.Storage);
    }

    public void Binary(Engine.Tensors.BinaryOp op, Engine.Tensors.Buf a, int[] aStrides, Engine.Tensors.Buf b, int[] bStrides, Engine.Tensors.Buf y, int[] shape)
    {
        Inner.Binary(op, a, aStrides, b, bStrides, y, shape);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(b.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void BoundConvSelect(Engine.Tensors.Buf w, Engine.Tensors.Buf code, Engine.Tensors.Buf y, int count, in Engine.Tensors.Conv2dGeometry g)
    {
        Inner.BoundConvSelect(w, code, y, count, in g);
        GC.KeepAlive(w.Storage);
        GC.KeepAlive(code.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void BoundConvTranspose(Engine.Tensors.Buf a, Engine.Tensors.Buf w, Engine.Tensors.Buf dx, in Engine.Tensors.Conv2dGeometry g)
    {
        Inner.BoundConvTranspose(a, w, dx, in g);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(w.Storage);
        GC.KeepAlive(dx.Storage);
    }

    public void BoundDot(Engine.Tensors.Buf a, Engine.Tensors.Buf c, int cBatchStride, Engine.Tensors.Buf radius, int radiusBatchStride, float eps, Engine.Tensors.Buf value, Engine.Tensors.Buf mag, int batch, int rows, int n, bool accumulate)
    {
        Inner.BoundDot(a, c, cBatchStride, radius, radiusBatchStride, eps, value, mag, batch, rows, n, accumulate);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(c.Storage);
        GC.KeepAlive(radius.Storage);
        GC.KeepAlive(value.Storage);
        GC.KeepAlive(mag.Storage);
    }

    public void BoundMerge(Engine.Tensors.Buf ibpLower, Engine.Tensors.Buf ibpUpper, Engine.Tensors.Buf rows, int rowCount, int[] index, Engine.Tensors.Buf lower, Engine.Tensors.Buf upper, int n)
    {
        Inner.BoundMerge(ibpLower, ibpUpper, rows, rowCount, index, lower, upper, n);
        GC.KeepAlive(ibpLower.Storage);
        GC.KeepAlive(ibpUpper.Storage);
        GC.KeepAlive(rows.Storage);
        GC.KeepAlive(lower.Storage);
        GC.KeepAlive(upper.Storage);
    }

    public void BoundSelectRows(Engine.Tensors.Buf x, int xRows, int cols, int[] code, int divisor, Engine.Tensors.Buf y, Engine.Tensors.Buf abs)
    {
        Inner.BoundSelectRows(x, xRows, cols, code, divisor, y, abs);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
        GC.KeepAlive(abs.Storage);
    }

    public void IbpCenterMarginBackward(Engine.Tensors.Buf gCenter, Engine.Tensors.Buf gMargin, Engine.Tensors.Buf gLower, Engine.Tensors.Buf gUpper, int n, float rho)
    {
        Inner.IbpCenterMarginBackward(gCenter, gMargin, gLower, gUpper, n, rho);
        GC.KeepAlive(gCenter.Storage);
        GC.KeepAlive(gMargin.Storage);
        GC.KeepAlive(gLower.Storage);
        GC.KeepAlive(gUpper.Storage);
    }

    public void IbpCombineBackward(Engine.Tensors.Buf gLower, Engine.Tensors.Buf gUpper, Engine.Tensors.Buf gCenter, Engine.Tensors.Buf gRad, int n)
    {
        Inner.IbpCombineBackward(gLower, gUpper, gCenter, gRad, n);
        GC.KeepAlive(gLower.Storage);
        GC.KeepAlive(gUpper.Storage);
        GC.KeepAlive(gCenter.Storage);
        GC.KeepAlive(gRad.Storage);
    }

    public void ReluRelaxationBackward(Engine.Tensors.Buf lower, Engine.Tensors.Buf upper, Engine.Tensors.Buf gUpSlope, Engine.Tensors.Buf gUpBias, Engine.Tensors.Buf gLower, Engine.Tensors.Buf gUpper, int n)
    {
        Inner.ReluRelaxationBackward(lower, upper, gUpSlope, gUpBias, gLower, gUpper, n);
        GC.KeepAlive(lower.Storage);
        GC.KeepAlive(upper.Storage);
        GC.KeepAlive(gUpSlope.Storage);
        GC.KeepAlive(gUpBias.Storage);
        GC.KeepAlive(gLower.Storage);
        GC.KeepAlive(gUpper.Storage);
    }

    public void BoundRelaxBackward(Engine.Tensors.Buf a, Engine.Tensors.Buf lowSlope, int lowSlopeRows, Engine.Tensors.Buf lowBias, int lowBiasRows, Engine.Tensors.Buf upSlope, int upSlopeRows, Engine.Tensors.Buf upBias, int upBiasRows, Engine.Tensors.Buf gy, Engine.Tensors.Buf gBias, Engine.Tensors.Buf gA, Engine.Tensors.Buf gLowSlope, Engine.Tensors.Buf gUpSlope, Engine.Tensors.Buf gLowBias, Engine.Tensors.Buf gUpBias, int batch, int rows, int n)
    {
        Inner.BoundRelaxBackward(a, lowSlope, lowSlopeRows, lowBias, lowBiasRows, upSlope, upSlopeRows, upBias, upBiasRows, gy, gBias, gA, gLowSlope, gUpSlope, gLowBias, gUpBias, batch, rows, n);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(lowSlope.Storage);
        GC.KeepAlive(lowBias.Storage);
        GC.KeepAlive(upSlope.Storage);
        GC.KeepAlive(upBias.Storage);
        GC.KeepAlive(gy.Storage);
        GC.KeepAlive(gBias.Storage);
        GC.KeepAlive(gA.Storage);
        GC.KeepAlive(gLowSlope.Storage);
        GC.KeepAlive(gUpSlope.Storage);
        GC.KeepAlive(gLowBias.Storage);
        GC.KeepAlive(gUpBias.Storage);
    }

    public void BoundDotBackward(Engine.Tensors.Buf a, Engine.Tensors.Buf c, int cBatchStride, Engine.Tensors.Buf radius, int radiusBatchStride, float eps, Engine.Tensors.Buf g, Engine.Tensors.Buf gA, int batch, int rows, int n)
    {
        Inner.BoundDotBackward(a, c, cBatchStride, radius, radiusBatchStride, eps, g, gA, batch, rows, n);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(c.Storage);
        GC.KeepAlive(radius.Storage);
        GC.KeepAlive(g.Storage);
        GC.KeepAlive(gA.Storage);
    }

    public void IbpRelu(Engine.Tensors.Buf lower, Engine.Tensors.Buf upper, Engine.Tensors.Buf lo, Engine.Tensors.Buf hi, Engine.Tensors.Buf center, Engine.Tensors.Buf margin, int n, float rho)
    {
        Inner.IbpRelu(lower, upper, lo, hi, center, margin, n, rho);
        GC.KeepAlive(lower.Storage);
        GC.KeepAlive(upper.Storage);
        GC.KeepAlive(lo.Storage);
        GC.KeepAlive(hi.Storage);
        GC.KeepAlive(center.Storage);
        GC.KeepAlive(margin.Storage);
    }

    public void IbpReluBackward(Engine.Tensors.Buf lower, Engine.Tensors.Buf upper, Engine.Tensors.Buf gLo, Engine.Tensors.Buf gHi, Engine.Tensors.Buf gCenter, Engine.Tensors.Buf gMargin, Engine.Tensors.Buf gLower, Engine.Tensors.Buf gUpper, int n, float rho)
    {
        Inner.IbpReluBackward(lower, upper, gLo, gHi, gCenter, gMargin, gLower, gUpper, n, rho);
        GC.KeepAlive(lower.Storage);
        GC.KeepAlive(upper.Storage);
        GC.KeepAlive(gLo.Storage);
        GC.KeepAlive(gHi.Storage);
        GC.KeepAlive(gCenter.Storage);
        GC.KeepAlive(gMargin.Storage);
        GC.KeepAlive(gLower.Storage);
        GC.KeepAlive(gUpper.Storage);
    }

    public void BoundRelax(Engine.Tensors.Buf a, Engine.Tensors.Buf lowSlope, int lowSlopeRows, Engine.Tensors.Buf lowBias, int lowBiasRows, Engine.Tensors.Buf upSlope, int upSlopeRows, Engine.Tensors.Buf upBias, int upBiasRows, Engine.Tensors.Buf y, Engine.Tensors.Buf bias, Engine.Tensors.Buf mag, int batch, int rows, int n, bool accumulate)
    {
        Inner.BoundRelax(a, lowSlope, lowSlopeRows, lowBias, lowBiasRows, upSlope, upSlopeRows, upBias, upBiasRows, y, bias, mag, batch, rows, n, accumulate);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(lowSlope.Storage);
        GC.KeepAlive(lowBias.Storage);
        GC.KeepAlive(upSlope.Storage);
        GC.KeepAlive(upBias.Storage);
        GC.KeepAlive(y.Storage);
        GC.KeepAlive(bias.Storage);
        GC.KeepAlive(mag.Storage);
    }

    public void Col2Im(Engine.Tensors.Buf col, Engine.Tensors.Buf image, in Engine.Tensors.Conv2dGeometry g)
    {
        Inner.Col2Im(col, image, in g);
        GC.KeepAlive(col.Storage);
        GC.KeepAlive(image.Storage);
    }

    public void Conv2dBackwardInput(Engine.Tensors.Buf dy, Engine.Tensors.Buf w, Engine.Tensors.Buf dx, in Engine.Tensors.Conv2dGeometry g)
    {
        Inner.Conv2dBackwardInput(dy, w, dx, in g);
        GC.KeepAlive(dy.Storage);
        GC.KeepAlive(w.Storage);
        GC.KeepAlive(dx.Storage);
    }

    public void Conv2dBackwardWeight(Engine.Tensors.Buf x, Engine.Tensors.Buf dy, Engine.Tensors.Buf dw, in Engine.Tensors.Conv2dGeometry g)
    {
        Inner.Conv2dBackwardWeight(x, dy, dw, in g);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(dy.Storage);
        GC.KeepAlive(dw.Storage);
    }

    public void Conv2dForward(Engine.Tensors.Buf x, Engine.Tensors.Buf w, Engine.Tensors.Buf? bias, Engine.Tensors.Buf y, in Engine.Tensors.Conv2dGeometry g)
    {
        Inner.Conv2dForward(x, w, bias, y, in g);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(w.Storage);
        GC.KeepAlive(bias?.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void Copy(Engine.Tensors.Buf src, Engine.Tensors.Buf dst, int n)
    {
        Inner.Copy(src, dst, n);
        GC.KeepAlive(src.Storage);
        GC.KeepAlive(dst.Storage);
    }

    public void Expand(Engine.Tensors.Buf x, int[] xStrides, Engine.Tensors.Buf y, int[] shape)
    {
        Inner.Expand(x, xStrides, y, shape);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void Fill(Engine.Tensors.Buf y, int n, float value)
    {
        Inner.Fill(y, n, value);
        GC.KeepAlive(y.Storage);
    }

    public void Gemm(bool transA, bool transB, int batch, int m, int n, int k, float alpha, Engine.Tensors.Buf a, int lda, long strideA, Engine.Tensors.Buf b, int ldb, long strideB, float beta, Engine.Tensors.Buf c, int ldc, long strideC)
    {
        Inner.Gemm(transA, transB, batch, m, n, k, alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(b.Storage);
        GC.KeepAlive(c.Storage);
    }

    public void IbpCenterMargin(Engine.Tensors.Buf lower, Engine.Tensors.Buf upper, Engine.Tensors.Buf center, Engine.Tensors.Buf margin, int n, float rho)
    {
        Inner.IbpCenterMargin(lower, upper, center, margin, n, rho);
        GC.KeepAlive(lower.Storage);
        GC.KeepAlive(upper.Storage);
        GC.KeepAlive(center.Storage);
        GC.KeepAlive(margin.Storage);
    }

    public void IbpCombine(Engine.Tensors.Buf center, Engine.Tensors.Buf rad, Engine.Tensors.Buf bias, int channels, int inner, float rho, float abs, Engine.Tensors.Buf lower, Engine.Tensors.Buf upper, int n)
    {
        Inner.IbpCombine(center, rad, bias, channels, inner, rho, abs, lower, upper, n);
        GC.KeepAlive(center.Storage);
        GC.KeepAlive(rad.Storage);
        GC.KeepAlive(bias.Storage);
        GC.KeepAlive(lower.Storage);
        GC.KeepAlive(upper.Storage);
    }

    public void Im2Col(Engine.Tensors.Buf image, Engine.Tensors.Buf col, in Engine.Tensors.Conv2dGeometry g)
    {
        Inner.Im2Col(image, col, in g);
        GC.KeepAlive(image.Storage);
        GC.KeepAlive(col.Storage);
    }

    public void IndexAdd(Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int dimOut, int inner, int[] indices)
    {
        Inner.IndexAdd(x, y, outer, dimOut, inner, indices);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void IndexSelect(Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int dimIn, int inner, int[] indices)
    {
        Inner.IndexSelect(x, y, outer, dimIn, inner, indices);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void MaxPool2dBackward(Engine.Tensors.Buf dy, Engine.Tensors.Buf indices, Engine.Tensors.Buf dx, in Engine.Tensors.Pool2dGeometry g)
    {
        Inner.MaxPool2dBackward(dy, indices, dx, in g);
        GC.KeepAlive(dy.Storage);
        GC.KeepAlive(indices.Storage);
        GC.KeepAlive(dx.Storage);
    }

    public void MaxPool2dForward(Engine.Tensors.Buf x, Engine.Tensors.Buf y, Engine.Tensors.Buf indices, in Engine.Tensors.Pool2dGeometry g)
    {
        Inner.MaxPool2dForward(x, y, indices, in g);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
        GC.KeepAlive(indices.Storage);
    }

    public void OneHot(Engine.Tensors.Buf labels, Engine.Tensors.Buf y, int n, int numClasses)
    {
        Inner.OneHot(labels, y, n, numClasses);
        GC.KeepAlive(labels.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void Permute(Engine.Tensors.Buf x, int[] shape, int[] perm, Engine.Tensors.Buf y)
    {
        Inner.Permute(x, shape, perm, y);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void RandomNormal(Engine.Tensors.Buf y, int n, ulong seed, ulong counter, float mean, float std)
    {
        Inner.RandomNormal(y, n, seed, counter, mean, std);
        GC.KeepAlive(y.Storage);
    }

    public void RandomUniform(Engine.Tensors.Buf y, int n, ulong seed, ulong counter, float low, float high)
    {
        Inner.RandomUniform(y, n, seed, counter, low, high);
        GC.KeepAlive(y.Storage);
    }

    public void Reduce(Engine.Tensors.ReduceOp op, Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int size, int inner)
    {
        Inner.Reduce(op, x, y, outer, size, inner);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void ReluRelaxation(Engine.Tensors.Buf lower, Engine.Tensors.Buf upper, Engine.Tensors.Buf lowSlope, Engine.Tensors.Buf upSlope, Engine.Tensors.Buf upBias, int n)
    {
        Inner.ReluRelaxation(lower, upper, lowSlope, upSlope, upBias, n);
        GC.KeepAlive(lower.Storage);
        GC.KeepAlive(upper.Storage);
        GC.KeepAlive(lowSlope.Storage);
        GC.KeepAlive(upSlope.Storage);
        GC.KeepAlive(upBias.Storage);
    }

    public void ScaleInPlace(Engine.Tensors.Buf x, int n, float alpha)
    {
        Inner.ScaleInPlace(x, n, alpha);
        GC.KeepAlive(x.Storage);
    }

    public void SgdUpdate(Engine.Tensors.Buf param, Engine.Tensors.Buf grad, Engine.Tensors.Buf momentumBuffer, int n, float lr, float momentum, float dampening, float weightDecay, bool nesterov, bool firstStep)
    {
        Inner.SgdUpdate(param, grad, momentumBuffer, n, lr, momentum, dampening, weightDecay, nesterov, firstStep);
        GC.KeepAlive(param.Storage);
        GC.KeepAlive(grad.Storage);
        GC.KeepAlive(momentumBuffer.Storage);
    }

    public void SliceCopy(Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int dimIn, int inner, int start, int step, int count)
    {
        Inner.SliceCopy(x, y, outer, dimIn, inner, start, step, count);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void SliceScatter(Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int dimOut, int inner, int start, int step, int count)
    {
        Inner.SliceScatter(x, y, outer, dimOut, inner, start, step, count);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void Softmax(Engine.Tensors.Buf x, Engine.Tensors.Buf y, int outer, int size, int inner, bool log)
    {
        Inner.Softmax(x, y, outer, size, inner, log);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void SoftmaxBackward(Engine.Tensors.Buf y, Engine.Tensors.Buf dy, Engine.Tensors.Buf dx, int outer, int size, int inner, bool log)
    {
        Inner.SoftmaxBackward(y, dy, dx, outer, size, inner, log);
        GC.KeepAlive(y.Storage);
        GC.KeepAlive(dy.Storage);
        GC.KeepAlive(dx.Storage);
    }

    public double SumOfSquares(Engine.Tensors.Buf x, int n)
    {
        var r = Inner.SumOfSquares(x, n);
        GC.KeepAlive(x.Storage);
        return r;
    }

    public void Unary(Engine.Tensors.UnaryOp op, Engine.Tensors.Buf x, Engine.Tensors.Buf y, int n, float alpha, float beta)
    {
        Inner.Unary(op, x, y, n, alpha, beta);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
    }

    public void UnaryBackward(Engine.Tensors.UnaryOp op, Engine.Tensors.Buf x, Engine.Tensors.Buf y, Engine.Tensors.Buf dy, Engine.Tensors.Buf dx, int n, float alpha, float beta)
    {
        Inner.UnaryBackward(op, x, y, dy, dx, n, alpha, beta);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(y.Storage);
        GC.KeepAlive(dy.Storage);
        GC.KeepAlive(dx.Storage);
    }

    public void Where(Engine.Tensors.Buf cond, int[] condStrides, Engine.Tensors.Buf a, int[] aStrides, Engine.Tensors.Buf b, int[] bStrides, Engine.Tensors.Buf y, int[] shape)
    {
        Inner.Where(cond, condStrides, a, aStrides, b, bStrides, y, shape);
        GC.KeepAlive(cond.Storage);
        GC.KeepAlive(a.Storage);
        GC.KeepAlive(b.Storage);
        GC.KeepAlive(y.Storage);
    }

}
