using Engine.Tensors;
using O = Engine.Cpu.ElementwiseOps;

namespace Engine.Cpu;

public sealed unsafe partial class CpuKernels
{
    /// <inheritdoc/>
    public void Unary(UnaryOp op, Buf x, Buf y, int n, float alpha, float beta)
    {
        if (n <= 0) return;
        float* px = P(x), py = P(y);
        switch (op)
        {
            case UnaryOp.Neg: ElementwiseLoops.UnaryParallel(new O.Neg(), px, py, n); break;
            case UnaryOp.Abs: ElementwiseLoops.UnaryParallel(new O.Abs(), px, py, n); break;
            case UnaryOp.Sign: ElementwiseLoops.UnaryParallel(new O.Sign(), px, py, n); break;
            case UnaryOp.Exp: ElementwiseLoops.UnaryParallel(new O.Exp(), px, py, n); break;
            case UnaryOp.Log: ElementwiseLoops.UnaryParallel(new O.Log(), px, py, n); break;
            case UnaryOp.Sqrt: ElementwiseLoops.UnaryParallel(new O.Sqrt(), px, py, n); break;
            case UnaryOp.Square: ElementwiseLoops.UnaryParallel(new O.Square(), px, py, n); break;
            case UnaryOp.Pow: PowForward(px, py, n, alpha); break;
            case UnaryOp.Clamp: ElementwiseLoops.UnaryParallel(new O.Clamp(alpha, beta), px, py, n); break;
            case UnaryOp.Relu: ElementwiseLoops.UnaryParallel(new O.Relu(), px, py, n); break;
            case UnaryOp.LeakyRelu: ElementwiseLoops.UnaryParallel(new O.LeakyRelu(alpha), px, py, n); break;
            case UnaryOp.Sigmoid: ElementwiseLoops.UnaryParallel(new O.Sigmoid(), px, py, n); break;
            case UnaryOp.Tanh: ElementwiseLoops.UnaryParallel(new O.Tanh(), px, py, n); break;
            case UnaryOp.Softplus: ElementwiseLoops.UnaryParallel(new O.Softplus(alpha, beta), px, py, n); break;
            case UnaryOp.Affine: ElementwiseLoops.UnaryParallel(new O.Affine(alpha, beta), px, py, n); break;
            case UnaryOp.Reciprocal: ElementwiseLoops.UnaryParallel(new O.Reciprocal(alpha), px, py, n); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown unary op.");
        }
    }

    // Exponents with an exact cheap form skip the exp/log path (which is correct for all of them, only slower).
    private static void PowForward(float* x, float* y, int n, float p)
    {
        if (p == 2f) ElementwiseLoops.UnaryParallel(new O.Square(), x, y, n);
        else if (p == 1f) ElementwiseLoops.UnaryParallel(new O.Affine(1f, 0f), x, y, n);
        else if (p == -1f) ElementwiseLoops.UnaryParallel(new O.Reciprocal(1f), x, y, n);
        else if (p == 0f) new Span<float>(y, n).Fill(1f);   // pow(x, 0) == 1 even for NaN
        else ElementwiseLoops.UnaryParallel(new O.Pow(p), x, y, n);
    }

    /// <inheritdoc/>
    public void UnaryBackward(UnaryOp op, Buf x, Buf y, Buf dy, Buf dx, int n, float alpha, float beta)
    {
        if (n <= 0) return;
        float* px = P(x), py = P(y), pdy = P(dy), pdx = P(dx);
        switch (op)
        {
            case UnaryOp.Neg: ElementwiseLoops.UnaryGradParallel(new O.NegGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Abs: ElementwiseLoops.UnaryGradParallel(new O.AbsGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Sign: new Span<float>(pdx, n).Clear(); break;
            case UnaryOp.Exp: ElementwiseLoops.UnaryGradParallel(new O.ExpGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Log: ElementwiseLoops.UnaryGradParallel(new O.LogGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Sqrt: ElementwiseLoops.UnaryGradParallel(new O.SqrtGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Square: ElementwiseLoops.UnaryGradParallel(new O.SquareGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Pow:
                if (alpha == 2f) ElementwiseLoops.UnaryGradParallel(new O.SquareGrad(), px, py, pdy, pdx, n);
                else if (alpha == 1f) ElementwiseLoops.UnaryGradParallel(new O.AffineGrad(1f), px, py, pdy, pdx, n);
                else if (alpha == 0f) new Span<float>(pdx, n).Clear();
                else ElementwiseLoops.UnaryGradParallel(new O.PowGrad(alpha), px, py, pdy, pdx, n);
                break;
            case UnaryOp.Clamp: ElementwiseLoops.UnaryGradParallel(new O.ClampGrad(alpha, beta), px, py, pdy, pdx, n); break;
            case UnaryOp.Relu: ElementwiseLoops.UnaryGradParallel(new O.ReluGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.LeakyRelu: ElementwiseLoops.UnaryGradParallel(new O.LeakyReluGrad(alpha), px, py, pdy, pdx, n); break;
            case UnaryOp.Sigmoid: ElementwiseLoops.UnaryGradParallel(new O.SigmoidGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Tanh: ElementwiseLoops.UnaryGradParallel(new O.TanhGrad(), px, py, pdy, pdx, n); break;
            case UnaryOp.Softplus: ElementwiseLoops.UnaryGradParallel(new O.SoftplusGrad(alpha, beta), px, py, pdy, pdx, n); break;
            case UnaryOp.Affine: ElementwiseLoops.UnaryGradParallel(new O.AffineGrad(alpha), px, py, pdy, pdx, n); break;
            case UnaryOp.Reciprocal: ElementwiseLoops.UnaryGradParallel(new O.ReciprocalGrad(), px, py, pdy, pdx, n); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown unary op.");
        }
    }

    /// <inheritdoc/>
    public void Binary(BinaryOp op, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape)
    {
        float* pa = P(a), pb = P(b), py = P(y);
        switch (op)
        {
            case BinaryOp.Add: BinaryRun(new O.Add(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Sub: BinaryRun(new O.Sub(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Mul: BinaryRun(new O.Mul(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Div: BinaryRun(new O.Div(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Maximum: BinaryRun(new O.Max(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Minimum: BinaryRun(new O.Min(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Gt: BinaryRun(new O.Gt(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Ge: BinaryRun(new O.Ge(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Lt: BinaryRun(new O.Lt(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Le: BinaryRun(new O.Le(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Eq: BinaryRun(new O.Eq(), pa, aStrides, pb, bStrides, py, shape); break;
            case BinaryOp.Ne: BinaryRun(new O.Ne(), pa, aStrides, pb, bStrides, py, shape); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, "Unknown binary op.");
        }
    }

    private static void BinaryRun<T>(T op, float* a, int[] aStrides, float* b, int[] bStrides, float* y, int[] shape) where T : struct, IBinaryOp
    {
        if (ShapeUtil.Numel(shape) == 0) return;
        var plan = StridedPlan.Create(shape, aStrides, bStrides);
        int inner = plan.Inner;
        long ia = plan.InnerStrides[0], ib = plan.InnerStrides[1];
        if (plan.Rows == 1)
        {
            CpuThreads.For(inner, Simd.MinChunk, (s, e) => ElementwiseLoops.Binary(op, a + s * ia, ia, b + s * ib, ib, y + s, e - s));
            return;
        }
        CpuThreads.For(plan.Rows, Math.Max(1, Simd.MinChunk / inner), (r0, r1) =>
        {
            var c = plan.At(r0);
            for (int r = r0; r < r1; r++, c.Next())
                ElementwiseLoops.Binary(op, a + c.Offsets[0], ia, b + c.Offsets[1], ib, y + (long)r * inner, inner);
        });
    }

    /// <inheritdoc/>
    public void Where(Buf cond, int[] condStrides, Buf a, int[] aStrides, Buf b, int[] bStrides, Buf y, int[] shape)
    {
        if (ShapeUtil.Numel(shape) == 0) return;
        float* pc = P(cond), pa = P(a), pb = P(b), py = P(y);
        var plan = StridedPlan.Create(shape, condStrides, aStrides, bStrides);
        int inner = plan.Inner;
        long ic = plan.InnerStrides[0], ia = plan.InnerStrides[1], ib = plan.InnerStrides[2];
        if (plan.Rows == 1)
        {
            CpuThreads.For(inner, Simd.MinChunk, (s, e) => ElementwiseLoops.Where(pc + s * ic, ic, pa + s * ia, ia, pb + s * ib, ib, py + s, e - s));
            return;
        }
        CpuThreads.For(plan.Rows, Math.Max(1, Simd.MinChunk / inner), (r0, r1) =>
        {
            var c = plan.At(r0);
            for (int r = r0; r < r1; r++, c.Next())
                ElementwiseLoops.Where(pc + c.Offsets[0], ic, pa + c.Offsets[1], ia, pb + c.Offsets[2], ib, py + (long)r * inner, inner);
        });
    }

    /// <inheritdoc/>
    public void Expand(Buf x, int[] xStrides, Buf y, int[] shape)
    {
        if (ShapeUtil.Numel(shape) == 0) return;
        float* px = P(x), py = P(y);
        var plan = StridedPlan.Create(shape, xStrides);
        int inner = plan.Inner;
        long ix = plan.InnerStrides[0];
        if (plan.Rows == 1)
        {
            CpuThreads.For(inner, Simd.MinChunk, (s, e) => ElementwiseLoops.Copy(px + s * ix, ix, py + s, e - s));
            return;
        }
        CpuThreads.For(plan.Rows, Math.Max(1, Simd.MinChunk / inner), (r0, r1) =>
        {
            var c = plan.At(r0);
            for (int r = r0; r < r1; r++, c.Next())
                ElementwiseLoops.Copy(px + c.Offsets[0], ix, py + (long)r * inner, inner);
        });
    }

    /// <inheritdoc/>
    public void OneHot(Buf labels, Buf y, int n, int numClasses)
    {
        if (numClasses <= 0) throw new ArgumentException($"OneHot: numClasses must be positive, not {numClasses}.");
        float* pl = P(labels), py = P(y);
        // Validate first so that a bad label leaves y untouched and the message names the first offender.
        for (int i = 0; i < n; i++)
        {
            float v = pl[i];
            if (!(v >= 0 && v < numClasses) || v != MathF.Floor(v))
                throw new ArgumentException($"OneHot: label {v} at index {i} is not an integer in [0, {numClasses}).");
        }
        new Span<float>(py, checked(n * numClasses)).Clear();
        for (int i = 0; i < n; i++) py[(long)i * numClasses + (int)pl[i]] = 1f;
    }
}
