namespace Engine.Tensors;

// Fused passes of CROWN's backward sweep (Engine.Bounds). Coefficient tensors are [batch, rows, n]; per-element
// operands are [batch, r, n] with r either 1 (shared by every row of an example) or rows. Each kernel reads the
// coefficients once and also returns Σ |terms| (the magnitude the float32 rounding margin is scaled by).
public partial interface IKernels
{
    /// <summary>
    /// Element-wise linear relaxation pushed through coefficients a: y = a·(a ≥ 0 ? lowSlope : upSlope) and
    /// bias[b, r] = Σₙ a·(a ≥ 0 ? lowBias : upBias), mag[b, r] = Σₙ |a·(a ≥ 0 ? lowBias : upBias)|. Slopes and biases
    /// have lowSlopeRows (etc.) rows, 1 or rows; an empty bias buffer means zero and then bias and mag may be empty too.
    /// With <paramref name="accumulate"/> each row's bias and mag are added to what bias and mag hold (one float add,
    /// as a tensor add of the results would round) instead of overwriting it.
    /// </summary>
    void BoundRelax(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                    Buf upBias, int upBiasRows, Buf y, Buf bias, Buf mag, int batch, int rows, int n, bool accumulate);

    /// <summary>
    /// The backward pass of <see cref="BoundRelax"/> (certified training) from gy [batch, rows, n] and gBias
    /// [batch, rows] (either may be empty: zeros): gA = gy·(a ≥ 0 ? lowSlope : upSlope) + gBias·(a ≥ 0 ? lowBias :
    /// upBias) (the second term only when a bias is given; an absent one reads as 0); gLowSlope = Σ gy·a over a ≥ 0 and
    /// gUpSlope = Σ gy·a over a &lt; 0, gLowBias and gUpBias likewise with gBias — summed over the rows, in row order,
    /// where the operand has one row per example. Each output may be empty (not wanted); the operands' gradients are
    /// written, not added to.
    /// </summary>
    void BoundRelaxBackward(Buf a, Buf lowSlope, int lowSlopeRows, Buf lowBias, int lowBiasRows, Buf upSlope, int upSlopeRows,
                            Buf upBias, int upBiasRows, Buf gy, Buf gBias, Buf gA, Buf gLowSlope, Buf gUpSlope, Buf gLowBias,
                            Buf gUpBias, int batch, int rows, int n);

    /// <summary>
    /// CROWN's ReLU relaxation from pre-activation bounds, element-wise over n: for an unstable neuron (l &lt; 0 &lt; u)
    /// upSlope = u / (u − l), upBias = (−upSlope)·l and lowSlope = (u ≥ −l ? 1 : 0); otherwise upSlope = lowSlope =
    /// (l ≥ 0 ? 1 : 0) and upBias = 0. The same float operations as the element-wise composition in ReluOp, so the
    /// results are bit-identical to it (a NaN bound counts as neither unstable nor active).
    /// </summary>
    void ReluRelaxation(Buf lower, Buf upper, Buf lowSlope, Buf upSlope, Buf upBias, int n);

    /// <summary>
    /// The backward pass of <see cref="ReluRelaxation"/> (certified training; lowSlope is piecewise constant and has no
    /// gradient): for an unstable neuron, with d = u − l, s = u / d and g = gUpSlope + gUpBias·(−l),
    /// gLower = g·(s / d) − gUpBias·s and gUpper = g·((1 − s) / d); 0 for every other neuron. An empty gUpSlope or
    /// gUpBias reads as zeros; an empty gLower or gUpper is not written.
    /// </summary>
    void ReluRelaxationBackward(Buf lower, Buf upper, Buf gUpSlope, Buf gUpBias, Buf gLower, Buf gUpper, int n);

    /// <summary>
    /// CROWN's refined intermediate bounds merged into IBP's, element-wise over n: lower[i] = max(rows[index[i]],
    /// ibpLower[i]) where index[i] ≥ 0, else ibpLower[i]; upper[i] = min(−rows[index[n + i]], ibpUpper[i]) where
    /// index[n + i] ≥ 0, else ibpUpper[i] (rows hold lower bounds; an upper bound is the negated lower bound of −v).
    /// max and min are IEEE 754-2019 maximum and minimum, as <see cref="BinaryOp.Maximum"/>'s. index has 2n entries,
    /// each −1 or in [0, rowCount).
    /// </summary>
    void BoundMerge(Buf ibpLower, Buf ibpUpper, Buf rows, int rowCount, int[] index, Buf lower, Buf upper, int n);

    /// <summary>
    /// IBP's step from an interval to an affine layer's operands, element-wise over n: center = (l + u)·0.5 and
    /// margin = ((u − l)·0.5)·(1 + rho) + |center|·rho (the radius widened by the rounding margin), the float operations
    /// of the composition in BoundRules.Affine in the same order, so bit-identical to it.
    /// </summary>
    void IbpCenterMargin(Buf lower, Buf upper, Buf center, Buf margin, int n, float rho);

    /// <summary>
    /// IBP's ReLU fused with the step the next affine layer starts with, element-wise over n: lo = max(l, 0),
    /// hi = max(u, 0) (IEEE maximum: NaN propagates), center = (lo + hi)·0.5 and margin = ((hi − lo)·0.5)·(1 + rho) +
    /// |center|·rho — the operations of ReLU followed by <see cref="IbpCenterMargin"/>, so bit-identical to them.
    /// </summary>
    void IbpRelu(Buf lower, Buf upper, Buf lo, Buf hi, Buf center, Buf margin, int n, float rho);

    /// <summary>
    /// The backward pass of <see cref="IbpRelu"/>: with a = gCenter·0.5 and b = gMargin·(0.5·(1 + rho)),
    /// gLower = (l &gt; 0 ? gLo + (a − b) : 0) and gUpper = (u &gt; 0 ? gHi + (a + b) : 0). Empty gradients read as
    /// zeros; an empty gLower or gUpper is not written.
    /// </summary>
    void IbpReluBackward(Buf lower, Buf upper, Buf gLo, Buf gHi, Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho);

    /// <summary>
    /// The backward pass of <see cref="IbpCenterMargin"/> (certified training; the |center|·rho term is detached, as in
    /// the composition): with a = gCenter·0.5 and b = gMargin·(0.5·(1 + rho)), gLower = a − b and gUpper = a + b. An
    /// empty gCenter or gMargin reads as zeros; an empty gLower or gUpper is not written.
    /// </summary>
    void IbpCenterMarginBackward(Buf gCenter, Buf gMargin, Buf gLower, Buf gUpper, int n, float rho);

    /// <summary>
    /// IBP's step back from an affine layer's two products to an interval, element-wise over n: with the rounding
    /// margin e = |bias[(i / inner) mod channels]|·rho + abs (e = abs when bias is empty) and r = rad[i] + e,
    /// lower = center[i] − r and upper = center[i] + r. Each operation rounded on its own, as in the composition, so
    /// bit-identical to it.
    /// </summary>
    void IbpCombine(Buf center, Buf rad, Buf bias, int channels, int inner, float rho, float abs, Buf lower, Buf upper, int n);

    /// <summary>
    /// The backward pass of <see cref="IbpCombine"/> (the bias's margin is detached): gCenter = gLower + gUpper and
    /// gRad = gUpper − gLower. Both gradients must be given; an empty gCenter or gRad is not written.
    /// </summary>
    void IbpCombineBackward(Buf gLower, Buf gUpper, Buf gCenter, Buf gRad, int n);

    /// <summary>
    /// Row dot products with a dual-norm term: value[b, r] = Σₙ a·c − spread and mag[b, r] = Σₙ |a|·|c| + spread, where
    /// spread = Σₙ |a|·radius (radius non-empty) or eps·Σₙ |a|. c and radius are [batch, n] when their batch stride is
    /// n, or one [n] vector shared by the batch when it is 0. With <paramref name="accumulate"/> each row's value and mag
    /// are added to what value and mag hold (one float add each) instead of overwriting it.
    /// </summary>
    void BoundDot(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf value, Buf mag, int batch, int rows, int n, bool accumulate);

    /// <summary>
    /// The backward pass of <see cref="BoundDot"/>'s value with respect to a, for its gradient g [batch, rows]:
    /// gA = g·(c − sign(a)·radius) (radius non-empty) or g·(c − sign(a)·eps), sign(0) = 0; c and radius as in BoundDot.
    /// </summary>
    void BoundDotBackward(Buf a, Buf c, int cBatchStride, Buf radius, int radiusBatchStride, float eps, Buf g, Buf gA, int batch, int rows, int n);

    /// <summary>
    /// Rows of the transposed convolution applied to signed one-hot coefficients (CROWN's start on selected neurons of
    /// a convolution's output): code[i] = ±(p + 1) selects output position p (flat in [OutChannels, OutH, OutW]) with
    /// that sign, and y[i] ([InChannels, Height, Width]) = ±(the kernel of p's output channel laid over p's window);
    /// code 0 gives a zero row. Exact: each input element receives at most one kernel tap.
    /// </summary>
    void BoundConvSelect(Buf w, Buf code, Buf y, int count, in Conv2dGeometry g);

    /// <summary>
    /// Signed rows of x [xRows, cols] (CROWN's start on selected neurons of an affine layer: rows of its weight or
    /// bias), one per code: code[i] = ±(p + 1) gives y[i, :] = x[p / divisor, :]·(±1) (a multiplication by ±1, so
    /// exact), code 0 a row of +0. When abs is non-empty, abs[i, :] = |y[i, :]| too. y (and abs) hold
    /// code.Length·cols floats; every nonzero code must select a row below xRows.
    /// </summary>
    void BoundSelectRows(Buf x, int xRows, int cols, int[] code, int divisor, Buf y, Buf abs);

    /// <summary>
    /// The same map as <see cref="Conv2dBackwardInput"/> (dx = convolutionᵀ of a, g.Batch images), for the many small
    /// images of CROWN's coefficient rows: the images run 16 at a time as the lanes of one vector, so every kernel tap
    /// is one vector FMA whatever the channel counts, and all-zero coefficient vectors are skipped.
    /// </summary>
    void BoundConvTranspose(Buf a, Buf w, Buf dx, in Conv2dGeometry g);
}
