namespace Engine.Cpu.Reference;

/// <summary>Scalar, double-accumulating definitions of <see cref="Tensors.IKernels.BoundRelax"/> and <see cref="Tensors.IKernels.BoundDot"/>.</summary>
public static class BoundsReference
{
    /// <summary>
    /// See <see cref="Tensors.IKernels.ReluRelaxation"/>: ReluOp's element-wise composition written out per element
    /// (unstable = (l &lt; 0)·(u &gt; 0), the 1 in the denominator's Where, −aU times l). Returns (lowSlope, upSlope, upBias).
    /// </summary>
    public static (float[] LowSlope, float[] UpSlope, float[] UpBias) ReluRelaxation(float[] lower, float[] upper)
    {
        int n = lower.Length;
        var aL = new float[n]; var aU = new float[n]; var bU = new float[n];
        for (int i = 0; i < n; i++)
        {
            float l = lower[i], u = upper[i];
            float unstable = (l < 0f ? 1f : 0f) * (u > 0f ? 1f : 0f);
            float active = l >= 0f ? 1f : 0f;
            float den = unstable != 0f ? u - l : 1f;
            aU[i] = unstable != 0f ? u / den : active;
            bU[i] = unstable != 0f ? -aU[i] * l : 0f;
            aL[i] = unstable != 0f ? (u >= -l ? 1f : 0f) : active;
        }
        return (aL, aU, bU);
    }

    /// <summary>
    /// See <see cref="Tensors.IKernels.ReluRelaxationBackward"/>: the chain rule through the composition's unstable
    /// branch (upSlope = u / (u − l), upBias = −upSlope·l); null gradients are zeros. Returns (gLower, gUpper).
    /// </summary>
    public static (float[] GLower, float[] GUpper) ReluRelaxationBackward(float[] lower, float[] upper, float[]? gUpSlope, float[]? gUpBias)
    {
        int n = lower.Length;
        var gl = new float[n]; var gu = new float[n];
        for (int i = 0; i < n; i++)
        {
            float l = lower[i], u = upper[i];
            if (!(l < 0f) || !(u > 0f)) continue;
            float gs = gUpSlope == null ? 0f : gUpSlope[i], gb = gUpBias == null ? 0f : gUpBias[i];
            float d = u - l;
            float s = u / d;
            // d upBias / d upSlope = −l; d upSlope / d l = u / d² = s / d; d upSlope / d u = −l / d² = (1 − s) / d.
            float g = gs + gb * -l;
            gl[i] = g * (s / d) - gb * s;
            gu[i] = g * ((1f - s) / d);
        }
        return (gl, gu);
    }

    /// <summary>See <see cref="Tensors.IKernels.IbpCenterMargin"/>: BoundRules.Affine's Center, Radius and r·(1 + ρ) + |c|·ρ per element.</summary>
    public static (float[] Center, float[] Margin) IbpCenterMargin(float[] lower, float[] upper, float rho)
    {
        int n = lower.Length;
        var c = new float[n]; var m = new float[n];
        for (int i = 0; i < n; i++)
        {
            float center = (lower[i] + upper[i]) * 0.5f, radius = (upper[i] - lower[i]) * 0.5f;
            c[i] = center;
            m[i] = radius * (1 + rho) + MathF.Abs(center) * rho;
        }
        return (c, m);
    }

    /// <summary>See <see cref="Tensors.IKernels.IbpRelu"/>: ReLU, then <see cref="IbpCenterMargin"/>. Returns (lo, hi, center, margin).</summary>
    public static (float[] Lo, float[] Hi, float[] Center, float[] Margin) IbpRelu(float[] lower, float[] upper, float rho)
    {
        var lo = lower.Select(v => MathF.Max(v, 0f)).ToArray();
        var hi = upper.Select(v => MathF.Max(v, 0f)).ToArray();
        var (c, m) = IbpCenterMargin(lo, hi, rho);
        return (lo, hi, c, m);
    }

    /// <summary>See <see cref="Tensors.IKernels.IbpReluBackward"/>; null gradients are zeros. Returns (gLower, gUpper).</summary>
    public static (float[] GLower, float[] GUpper) IbpReluBackward(float[] lower, float[] upper, float[]? gLo, float[]? gHi, float[]? gCenter, float[]? gMargin, float rho)
    {
        int n = lower.Length;
        var (a, b) = IbpCenterMarginBackward(gCenter, gMargin, n, rho);   // a = gc/2 − hk·gm (for lo), b = gc/2 + hk·gm (for hi)
        var gl = new float[n]; var gu = new float[n];
        for (int i = 0; i < n; i++)
        {
            gl[i] = lower[i] > 0f ? (gLo == null ? 0f : gLo[i]) + a[i] : 0f;
            gu[i] = upper[i] > 0f ? (gHi == null ? 0f : gHi[i]) + b[i] : 0f;
        }
        return (gl, gu);
    }

    /// <summary>See <see cref="Tensors.IKernels.IbpCenterMarginBackward"/>; a null gradient reads as zeros. Returns (gLower, gUpper).</summary>
    public static (float[] GLower, float[] GUpper) IbpCenterMarginBackward(float[]? gCenter, float[]? gMargin, int n, float rho)
    {
        var gl = new float[n]; var gu = new float[n];
        float hk = 0.5f * (1 + rho);
        for (int i = 0; i < n; i++)
        {
            float a = gCenter == null ? 0f : gCenter[i] * 0.5f, b = gMargin == null ? 0f : gMargin[i] * hk;
            gl[i] = a - b;
            gu[i] = a + b;
        }
        return (gl, gu);
    }

    /// <summary>See <see cref="Tensors.IKernels.IbpCombineBackward"/>. Returns (gCenter, gRad).</summary>
    public static (float[] GCenter, float[] GRad) IbpCombineBackward(float[] gLower, float[] gUpper)
    {
        int n = gLower.Length;
        var gc = new float[n]; var gr = new float[n];
        for (int i = 0; i < n; i++)
        {
            gc[i] = gLower[i] + gUpper[i];
            gr[i] = gUpper[i] - gLower[i];
        }
        return (gc, gr);
    }

    /// <summary>See <see cref="Tensors.IKernels.IbpCombine"/>: center ∓ (rad + (|bias|·ρ + abs)), the bias entry of element i at (i / inner) mod channels.</summary>
    public static (float[] Lower, float[] Upper) IbpCombine(float[] center, float[] rad, float[]? bias, int channels, int inner, float rho, float abs)
    {
        int n = center.Length;
        var lo = new float[n]; var hi = new float[n];
        for (int i = 0; i < n; i++)
        {
            float margin = bias == null ? abs : MathF.Abs(bias[i / inner % channels]) * rho + abs;
            float r = rad[i] + margin;
            lo[i] = center[i] - r;
            hi[i] = center[i] + r;
        }
        return (lo, hi);
    }

    /// <summary>See <see cref="Tensors.IKernels.BoundSelectRows"/>: returns (y, |y|).</summary>
    public static (float[] Rows, float[] Abs) SelectRows(float[] x, int cols, int[] code, int divisor)
    {
        var y = new float[code.Length * cols];
        var abs = new float[y.Length];
        for (int i = 0; i < code.Length; i++)
            for (int j = 0; j < cols; j++)
            {
                int c = code[i];
                float v = c == 0 ? 0f : x[(Math.Abs(c) - 1) / divisor * cols + j] * (c > 0 ? 1f : -1f);
                y[i * cols + j] = v;
                abs[i * cols + j] = MathF.Abs(v);
            }
        return (y, abs);
    }

    /// <summary>See <see cref="Tensors.IKernels.BoundMerge"/>: the gathers and the maximum / minimum of the composition it replaces.</summary>
    public static (float[] Lower, float[] Upper) BoundMerge(float[] ibpLower, float[] ibpUpper, float[] rows, int[] index)
    {
        int n = ibpLower.Length;
        var lo = new float[n]; var hi = new float[n];
        for (int i = 0; i < n; i++)
        {
            lo[i] = MathF.Max(index[i] < 0 ? ibpLower[i] : rows[index[i]], ibpLower[i]);
            hi[i] = MathF.Min(index[n + i] < 0 ? ibpUpper[i] : -rows[index[n + i]], ibpUpper[i]);
        }
        return (lo, hi);
    }

    /// <summary>See <see cref="Tensors.IKernels.BoundRelax"/>; null biases are zero. Returns (y, bias, mag).</summary>
    public static (float[] Y, float[] Bias, float[] Mag) Relax(float[] a, float[] lowSlope, int lowSlopeRows, float[]? lowBias, int lowBiasRows,
        float[] upSlope, int upSlopeRows, float[]? upBias, int upBiasRows, int batch, int rows, int n)
    {
        var y = new float[a.Length];
        var bias = new float[batch * rows];
        var mag = new float[batch * rows];
        static float At(float[]? t, int tr, int b, int r, int i, int n) => t == null ? 0f : t[((long)b * tr + (tr == 1 ? 0 : r)) * n + i];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
            {
                double s = 0, m = 0;
                for (int i = 0; i < n; i++)
                {
                    long k = ((long)b * rows + r) * n + i;
                    float v = a[k];
                    bool pos = v >= 0;
                    y[k] = v * (pos ? At(lowSlope, lowSlopeRows, b, r, i, n) : At(upSlope, upSlopeRows, b, r, i, n));
                    double t = (double)v * (pos ? At(lowBias, lowBiasRows, b, r, i, n) : At(upBias, upBiasRows, b, r, i, n));
                    s += t; m += Math.Abs(t);
                }
                bias[b * rows + r] = (float)s; mag[b * rows + r] = (float)m;
            }
        return (y, bias, mag);
    }

    /// <summary>
    /// See <see cref="Tensors.IKernels.BoundRelaxBackward"/>; null gradients and biases are zeros. Returns (gA, gLowSlope,
    /// gUpSlope, gLowBias, gUpBias), the operands' gradients shaped as the operands (an absent bias: its rows' shape).
    /// </summary>
    public static (float[] GA, float[] GLowSlope, float[] GUpSlope, float[] GLowBias, float[] GUpBias) RelaxBackward(
        float[] a, float[] lowSlope, int lowSlopeRows, float[]? lowBias, int lowBiasRows, float[] upSlope, int upSlopeRows,
        float[]? upBias, int upBiasRows, float[]? gy, float[]? gBias, int batch, int rows, int n)
    {
        var ga = new float[a.Length];
        var gls = new float[batch * lowSlopeRows * n]; var gus = new float[batch * upSlopeRows * n];
        var glb = new float[batch * lowBiasRows * n]; var gub = new float[batch * upBiasRows * n];
        bool withBias = lowBias != null || upBias != null;
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < n; i++)
                {
                    int at = (b * rows + r) * n + i;
                    int Of(int tRows) => (b * tRows + (tRows == 1 ? 0 : r)) * n + i;
                    float v = a[at], g = gy == null ? 0f : gy[at], gb = gBias == null ? 0f : gBias[b * rows + r];
                    bool pos = v >= 0f;
                    float t = g * (pos ? lowSlope[Of(lowSlopeRows)] : upSlope[Of(upSlopeRows)]);
                    if (withBias) t += gb * (pos ? (lowBias == null ? 0f : lowBias[Of(lowBiasRows)]) : (upBias == null ? 0f : upBias[Of(upBiasRows)]));
                    ga[at] = t;
                    if (pos) { gls[Of(lowSlopeRows)] += g * v; glb[Of(lowBiasRows)] += gb * v; }
                    else { gus[Of(upSlopeRows)] += g * v; gub[Of(upBiasRows)] += gb * v; }
                }
        return (ga, gls, gus, glb, gub);
    }

    /// <summary>See <see cref="Tensors.IKernels.BoundDotBackward"/>.</summary>
    public static float[] DotBackward(float[] a, float[] c, int cBatchStride, float[]? radius, int radiusBatchStride, float eps, float[] g, int batch, int rows, int n)
    {
        var ga = new float[a.Length];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
                for (int i = 0; i < n; i++)
                {
                    int at = (b * rows + r) * n + i;
                    float v = a[at];
                    float sign = v > 0f ? 1f : v < 0f ? -1f : 0f;
                    float spread = sign * (radius == null ? eps : radius[b * radiusBatchStride + i]);
                    ga[at] = g[b * rows + r] * (c[b * cBatchStride + i] - spread);
                }
        return ga;
    }

    /// <summary>See <see cref="Tensors.IKernels.BoundDot"/>; a null radius means eps·Σ|a|. Returns (value, mag).</summary>
    public static (float[] Value, float[] Mag) Dot(float[] a, float[] c, int cBatchStride, float[]? radius, int radiusBatchStride, float eps, int batch, int rows, int n)
    {
        var value = new float[batch * rows];
        var mag = new float[batch * rows];
        for (int b = 0; b < batch; b++)
            for (int r = 0; r < rows; r++)
            {
                double d = 0, m = 0, sp = 0;
                for (int i = 0; i < n; i++)
                {
                    double v = a[((long)b * rows + r) * n + i], cv = c[(long)b * cBatchStride + i];
                    d += v * cv; m += Math.Abs(v) * Math.Abs(cv);
                    sp += Math.Abs(v) * (radius == null ? eps : radius[(long)b * radiusBatchStride + i]);
                }
                value[b * rows + r] = (float)(d - sp); mag[b * rows + r] = (float)(m + sp);
            }
        return (value, mag);
    }

    /// <summary>See <see cref="Tensors.IKernels.BoundConvSelect"/>: the transposed convolution of the signed one-hot rows, computed densely.</summary>
    public static float[] ConvSelect(float[] w, float[] code, int count, Tensors.Conv2dGeometry g)
    {
        int outN = g.OutChannels * g.OutH * g.OutW;
        var onehot = new float[count * outN];
        for (int i = 0; i < count; i++)
            if (code[i] != 0) onehot[(long)i * outN + (int)Math.Abs(code[i]) - 1] = Math.Sign(code[i]);
        var geo = new Tensors.Conv2dGeometry(count, g.InChannels, g.Height, g.Width, g.OutChannels, g.KernelH, g.KernelW, g.StrideH, g.StrideW,
                                             g.PadH, g.PadW, g.DilationH, g.DilationW, g.Groups);
        return ConvReference.Conv2dBackwardInput(onehot, w, geo);
    }
}
