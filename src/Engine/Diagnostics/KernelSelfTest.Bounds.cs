using Engine.Tensors;

namespace Engine.Diagnostics;

// The fused bound kernels: IbpCenterMargin, IbpCombine, BoundMerge, ReluRelaxation, BoundRelax, BoundDot, BoundSelectRows,
// BoundConvSelect, BoundConvTranspose.
public sealed partial class KernelSelfTest
{
    private void RegisterBounds()
    {
        Add("IbpCenterMargin", c =>
        {
            foreach (var (n, rho) in new[] { (1, 1e-5f), (17, 1e-5f), (1000, 0f), (40001, 3e-4f) })
            {
                c.Case($"n={n} rho={rho}");
                var lo = c.Sprinkle(c.U(n, -2f, 1f), 0f, -0f);
                var width = c.U(n, 0f, 2f);
                var hi = new float[n];
                for (int i = 0; i < n; i++) hi[i] = i % 9 == 4 ? lo[i] : lo[i] + width[i];
                var l = c.In(lo); var u = c.In(hi);
                var center = c.Out(n); var margin = c.Out(n);
                c.Run((k, s) => k.IbpCenterMargin(l[s], u[s], center[s], margin[s], n, rho));
                c.Compare("center", center, Tol.Exact);
                c.Compare("margin", margin, Tol.Exact);
            }
        });
        Add("IbpCombine", c =>
        {
            // (elements, channels, inner, with a bias): a Linear layer's [B, out], a convolution's [B, C, H, W], no bias.
            foreach (var (n, channels, inner, withBias) in new[] { (1, 1, 1, true), (3 * 17, 17, 1, true), (128 * 256, 256, 1, true),
                                                                  (2 * 8 * 49, 8, 49, true), (5 * 1000, 1000, 1, false), (2 * 3 * 40001, 3, 40001, true) })
            {
                c.Case($"n={n} channels={channels} inner={inner} {(withBias ? "bias" : "no bias")}");
                var center = c.In(c.U(n, -3f, 3f)); var rad = c.In(c.U(n, 0f, 1f));
                var bias = withBias ? c.In(c.Sprinkle(c.U(channels, -2f, 2f), -0f, 0f)) : null;
                var lower = c.Out(n); var upper = c.Out(n);
                c.Run((k, s) => k.IbpCombine(center[s], rad[s], bias == null ? default : bias[s], channels, inner, 1e-5f, 1e-7f, lower[s], upper[s], n));
                c.Compare("lower", lower, Tol.Exact);
                c.Compare("upper", upper, Tol.Exact);
            }
        });
        Add("IbpRelu", c =>
        {
            foreach (var (n, rho) in new[] { (1, 1e-5f), (17, 1e-5f), (1000, 0f), (40001, 3e-4f) })
            {
                c.Case($"n={n} rho={rho}");
                var lo = c.Sprinkle(c.U(n, -2f, 1f), 0f, -0f, float.NaN);
                var width = c.U(n, 0f, 2f);
                var hi = new float[n];
                for (int i = 0; i < n; i++) hi[i] = i % 9 == 4 ? lo[i] : lo[i] + width[i];
                var l = c.In(lo); var u = c.In(hi);
                var rl = c.Out(n); var rh = c.Out(n); var center = c.Out(n); var margin = c.Out(n);
                c.Run((k, s) => k.IbpRelu(l[s], u[s], rl[s], rh[s], center[s], margin[s], n, rho));
                c.Compare("lo", rl, Tol.Exact);
                c.Compare("hi", rh, Tol.Exact);
                c.Compare("center", center, Tol.Exact);
                c.Compare("margin", margin, Tol.Exact);
            }
        });
        Add("IbpReluBackward", c =>
        {
            // (n, which gradients come in: bit 1 lo, 2 hi, 4 centre, 8 margin; which go out: 3 both, 1 lower, 2 upper)
            foreach (var (n, gin, gout) in new[] { (1, 15, 3), (17, 12, 3), (1000, 3, 3), (40001, 15, 1), (33, 5, 2), (100, 12, 3) })
            {
                c.Case($"n={n} in {gin} out {gout}");
                var l = c.In(c.Sprinkle(c.U(n, -1f, 1f), 0f, -0f)); var u = c.In(c.Sprinkle(c.U(n, -0.5f, 1.5f), 0f));
                Pair? G(int bit) => (gin & bit) != 0 ? c.In(c.U(n, -2f, 2f)) : null;
                var glo = G(1); var ghi = G(2); var gc = G(4); var gm = G(8);
                var gl = (gout & 1) != 0 ? c.Out(n) : null;
                var gu = (gout & 2) != 0 ? c.Out(n) : null;
                Buf B(Pair? p, Side s) => p == null ? default : p[s];
                c.Run((k, s) => k.IbpReluBackward(l[s], u[s], B(glo, s), B(ghi, s), B(gc, s), B(gm, s), B(gl, s), B(gu, s), n, 1e-5f));
                if (gl != null) c.Compare("gLower", gl, Tol.Exact);
                if (gu != null) c.Compare("gUpper", gu, Tol.Exact);
            }
        });
        Add("IbpCenterMarginBackward", c =>
        {
            // (n, rho, which gradients come in: 3 both, 1 centre only, 2 margin only; which go out: 3 both, 1 lower, 2 upper)
            foreach (var (n, rho, gin, gout) in new[] { (1, 1e-5f, 3, 3), (17, 1e-5f, 1, 3), (1000, 0f, 2, 3), (40001, 3e-4f, 3, 1), (33, 1e-5f, 3, 2) })
            {
                c.Case($"n={n} rho={rho} in {gin} out {gout}");
                var gc = (gin & 1) != 0 ? c.In(c.Sprinkle(c.U(n, -2f, 2f), 0f, -0f)) : null;
                var gm = (gin & 2) != 0 ? c.In(c.U(n, -2f, 2f)) : null;
                var gl = (gout & 1) != 0 ? c.Out(n) : null;
                var gu = (gout & 2) != 0 ? c.Out(n) : null;
                Buf B(Pair? p, Side s) => p == null ? default : p[s];
                c.Run((k, s) => k.IbpCenterMarginBackward(B(gc, s), B(gm, s), B(gl, s), B(gu, s), n, rho));
                if (gl != null) c.Compare("gLower", gl, Tol.Exact);
                if (gu != null) c.Compare("gUpper", gu, Tol.Exact);
            }
        });
        Add("IbpCombineBackward", c =>
        {
            foreach (var (n, gout) in new[] { (1, 3), (17, 3), (1000, 1), (40001, 3), (33, 2) })
            {
                c.Case($"n={n} out {gout}");
                var gl = c.In(c.Sprinkle(c.U(n, -2f, 2f), 0f, -0f, float.NaN)); var gu = c.In(c.U(n, -2f, 2f));
                var gc = (gout & 1) != 0 ? c.Out(n) : null;
                var gr = (gout & 2) != 0 ? c.Out(n) : null;
                Buf B(Pair? p, Side s) => p == null ? default : p[s];
                c.Run((k, s) => k.IbpCombineBackward(gl[s], gu[s], B(gc, s), B(gr, s), n));
                if (gc != null) c.Compare("gCenter", gc, Tol.Exact);
                if (gr != null) c.Compare("gRad", gr, Tol.Exact);
            }
        });
        Add("BoundMerge", c =>
        {
            foreach (var (n, rowCount) in new[] { (1, 1), (17, 5), (1000, 700), (40001, 20000), (9, 0) })
            {
                c.Case($"n={n} rows={rowCount}");
                var lo = c.Sprinkle(c.U(n, -2f, 0.5f), float.NaN, -0f, 0f);
                var hi = new float[n];
                var width = c.U(n, 0f, 2f);
                for (int i = 0; i < n; i++) hi[i] = lo[i] + width[i];
                var rv = c.Sprinkle(c.U(rowCount, -3f, 3f), float.NaN, 0f, -0f);
                // About half of the elements take a row (ties with IBP included), the others keep IBP.
                var index = new int[2 * n];
                for (int i = 0; i < 2 * n; i++) index[i] = rowCount == 0 || i % 3 == 1 ? -1 : (i * 7919) % rowCount;
                if (rowCount > 0 && n > 3) { rv[index[0]] = lo[0]; }
                var l = c.In(lo); var u = c.In(hi); var rows = c.In(rv);
                var lower = c.Out(n); var upper = c.Out(n);
                c.Run((k, s) => k.BoundMerge(l[s], u[s], rows[s], rowCount, index, lower[s], upper[s], n));
                c.Compare("lower", lower, Tol.Exact);
                c.Compare("upper", upper, Tol.Exact);
            }
        });
        Add("BoundSelectRows", c =>
        {
            // (rows of x, cols, codes, divisor, with |y|): a Linear layer's weight and bias rows, a convolution's bias by
            // output position (divisor = its output pixels), codes past 65,536.
            foreach (var (xRows, cols, count, divisor, withAbs) in new[] { (1, 1, 1, 1, true), (7, 17, 23, 1, false), (256, 784, 300, 1, false),
                                                                         (256, 1, 70000, 1, true), (8, 1, 5000, 196, true), (3, 40001, 4, 1, true) })
            {
                c.Case($"x {xRows}x{cols}, {count} codes, divisor {divisor}{(withAbs ? ", abs" : "")}");
                var x = c.In(c.Sprinkle(c.U(xRows * cols, -2f, 2f), float.NaN, -0f, 0f, float.PositiveInfinity));
                var code = new int[count];
                for (int i = 0; i < count; i++)
                {
                    int p = (int)((i * 7919L) % (xRows * divisor));
                    code[i] = i % 5 == 4 ? 0 : i % 2 == 0 ? p + 1 : -(p + 1);
                }
                var y = c.Out(count * cols);
                var abs = withAbs ? c.Out(count * cols) : null;
                c.Run((k, s) => k.BoundSelectRows(x[s], xRows, cols, code, divisor, y[s], abs == null ? default : abs[s]));
                c.Compare("y", y, Tol.Exact);
                if (abs != null) c.Compare("abs", abs, Tol.Exact);
            }
        });
        Add("ReluRelaxation", c =>
        {
            foreach (int n in new[] { 1, 17, 1000, 40001 })
            {
                c.Case($"n={n}");
                var (l, u) = ReluBounds(c, n);
                var aL = c.Out(n); var aU = c.Out(n); var bU = c.Out(n);
                c.Run((k, s) => k.ReluRelaxation(l[s], u[s], aL[s], aU[s], bU[s], n));
                c.Compare("lowSlope", aL, Tol.Exact);
                c.Compare("upSlope", aU, Tol.Exact);
                c.Compare("upBias", bU, Tol.Exact);
            }
        });
        Add("ReluRelaxationBackward", c =>
        {
            // (n, which gradients come in: 3 both, 1 slope only, 2 intercept only; which go out: 3 both, 1 lower, 2 upper)
            foreach (var (n, gin, gout) in new[] { (1, 3, 3), (17, 1, 3), (1000, 2, 3), (40001, 3, 1), (33, 3, 2) })
            {
                c.Case($"n={n} in {gin} out {gout}");
                var (l, u) = ReluBounds(c, n);
                var gs = (gin & 1) != 0 ? c.In(c.U(n, -2f, 2f)) : null;
                var gb = (gin & 2) != 0 ? c.In(c.U(n, -2f, 2f)) : null;
                var gl = (gout & 1) != 0 ? c.Out(n) : null;
                var gu = (gout & 2) != 0 ? c.Out(n) : null;
                Buf B(Pair? p, Side s) => p == null ? default : p[s];
                c.Run((k, s) => k.ReluRelaxationBackward(l[s], u[s], B(gs, s), B(gb, s), B(gl, s), B(gu, s), n));
                if (gl != null) c.Compare("gLower", gl, Tol.Exact);
                if (gu != null) c.Compare("gUpper", gu, Tol.Exact);
            }
        });
        Add("BoundRelax", c =>
        {
            // (batch, rows, n, lowSlopeRows, lowBiasRows (0: empty), upSlopeRows, upBiasRows (0: empty))
            (int, int, int, int, int, int, int)[] cases =
            [
                (2, 3, 17, 1, 1, 3, 3), (1, 5, 1000, 5, 5, 1, 1), (3, 4, 33, 4, 0, 4, 4), (2, 3, 9, 1, 0, 1, 0),
                (1, 2, 40000, 1, 1, 2, 2), (1, 1, 1, 1, 1, 1, 1), (4, 2, 7, 2, 2, 1, 0),
            ];
            int ci = 0;
            foreach (var (batch, rows, n, lsr, lbr, usr, ubr) in cases)
            {
                bool acc = ci++ % 2 == 1;   // every other case adds into held values
                c.Case($"batch={batch} rows={rows} n={n} slope rows {lsr}/{usr} bias rows {lbr}/{ubr} (0 = none){(acc ? " accumulate" : "")}");
                int total = batch * rows * n;
                var a = c.In(c.Sprinkle(c.U(total), 0f, -0f, 0f));
                var ls = c.In(c.U(batch * lsr * n, 0f, 1f)); var us = c.In(c.U(batch * usr * n, 0f, 1f));
                var lb = lbr == 0 ? null : c.In(c.U(batch * lbr * n)); var ub = ubr == 0 ? null : c.In(c.U(batch * ubr * n));
                bool withBias = lb != null || ub != null;
                var y = c.Out(total);
                var bias = !withBias ? null : acc ? c.In(c.U(batch * rows, -3f, 3f)) : c.Out(batch * rows);
                var mag = !withBias ? null : acc ? c.In(c.U(batch * rows, 0f, 3f)) : c.Out(batch * rows);
                Buf B(Pair? p, Side s) => p == null ? default : p[s];
                c.Run((k, s) => k.BoundRelax(a[s], ls[s], lsr, B(lb, s), Math.Max(1, lbr), us[s], usr, B(ub, s), Math.Max(1, ubr),
                                             y[s], B(bias, s), B(mag, s), batch, rows, n, acc));
                c.Compare("y", y, Tol.Exact);
                if (bias == null) continue;
                var m = c.Payload(mag!, Side.Reference);
                c.Compare("bias", bias, Tol.Sum, m);
                c.Compare("mag", mag!, Tol.Sum, m);
            }
        });
        Add("BoundRelaxBackward", c =>
        {
            // (batch, rows, n, lowSlopeRows, lowBiasRows (0: empty), upSlopeRows, upBiasRows (0: empty), gy given, gBias given)
            (int, int, int, int, int, int, int, bool, bool)[] cases =
            [
                (2, 3, 17, 1, 1, 3, 3, true, true), (1, 5, 1000, 5, 5, 1, 1, true, true), (3, 4, 33, 4, 0, 4, 4, true, false),
                (2, 3, 9, 1, 0, 1, 0, true, false), (1, 2, 40000, 1, 1, 2, 2, false, true), (1, 1, 1, 1, 1, 1, 1, true, true),
                (4, 2, 7, 2, 2, 1, 0, true, true),
            ];
            foreach (var (batch, rows, n, lsr, lbr, usr, ubr, withGy, withGb) in cases)
            {
                c.Case($"batch={batch} rows={rows} n={n} slope rows {lsr}/{usr} bias rows {lbr}/{ubr} (0 = none){(withGy ? " gy" : "")}{(withGb ? " gBias" : "")}");
                int total = batch * rows * n;
                var a = c.In(c.Sprinkle(c.U(total), 0f, -0f, 0f));
                var ls = c.In(c.U(batch * lsr * n, 0f, 1f)); var us = c.In(c.U(batch * usr * n, 0f, 1f));
                var lb = lbr == 0 ? null : c.In(c.U(batch * lbr * n)); var ub = ubr == 0 ? null : c.In(c.U(batch * ubr * n));
                var gy = withGy ? c.In(c.U(total)) : null;
                var gb = withGb ? c.In(c.U(batch * rows)) : null;
                var ga = c.Out(total);
                var gls = c.Out(batch * lsr * n); var gus = c.Out(batch * usr * n);
                var glb = lbr == 0 ? null : c.Out(batch * lbr * n); var gub = ubr == 0 ? null : c.Out(batch * ubr * n);
                Buf B(Pair? p, Side s) => p == null ? default : p[s];
                c.Run((k, s) => k.BoundRelaxBackward(a[s], ls[s], lsr, B(lb, s), Math.Max(1, lbr), us[s], usr, B(ub, s), Math.Max(1, ubr),
                                                     B(gy, s), B(gb, s), ga[s], gls[s], gus[s], B(glb, s), B(gub, s), batch, rows, n));
                c.Compare("gA", ga, Tol.Exact);
                c.Compare("gLowSlope", gls, Tol.Sum);
                c.Compare("gUpSlope", gus, Tol.Sum);
                if (glb != null) c.Compare("gLowBias", glb, Tol.Sum);
                if (gub != null) c.Compare("gUpBias", gub, Tol.Sum);
            }
        });
        Add("BoundDotBackward", c =>
        {
            // (batch, rows, n, c shared by the batch, radius: 0 none / 1 per example / 2 shared, eps)
            (int, int, int, bool, int, float)[] cases =
            [
                (2, 3, 17, false, 0, 0.1f), (1, 5, 1000, true, 1, 0f), (3, 4, 33, false, 2, 0.25f), (1, 2, 40000, false, 1, 0f),
                (1, 1, 1, true, 0, 0.5f), (4, 9, 5, true, 2, 0f),
            ];
            foreach (var (batch, rows, n, shared, rad, eps) in cases)
            {
                c.Case($"batch={batch} rows={rows} n={n} c {(shared ? "shared" : "per example")} radius {(rad == 0 ? "none" : rad == 1 ? "per example" : "shared")} eps={eps}");
                int cStride = shared ? 0 : n, rStride = rad == 2 ? 0 : n;
                var a = c.In(c.Sprinkle(c.U(batch * rows * n), 0f, -0f, float.NaN));
                var cv = c.In(c.U(shared ? n : batch * n, -2f, 2f));
                var radius = rad == 0 ? null : c.In(c.U(rad == 2 ? n : batch * n, 0f, 0.3f));
                var g = c.In(c.U(batch * rows, -2f, 2f));
                var ga = c.Out(batch * rows * n);
                c.Run((k, s) => k.BoundDotBackward(a[s], cv[s], cStride, radius == null ? default : radius[s], rStride, eps, g[s], ga[s], batch, rows, n));
                c.Compare("gA", ga, Tol.Exact);
            }
        });
        Add("BoundDot", c =>
        {
            // (batch, rows, n, c shared by the batch, radius: 0 none / 1 per example / 2 shared, eps)
            (int, int, int, bool, int, float)[] cases =
            [
                (2, 3, 17, false, 0, 0.1f), (1, 5, 1000, true, 1, 0f), (3, 4, 33, false, 2, 0.25f), (1, 2, 40000, false, 1, 0f),
                (1, 1, 1, true, 0, 0.5f), (4, 9, 5, true, 2, 0f),
            ];
            int ci = 0;
            foreach (var (batch, rows, n, shared, rad, eps) in cases)
            {
                bool acc = ci++ % 2 == 1;   // every other case adds into held values
                c.Case($"batch={batch} rows={rows} n={n} c {(shared ? "shared" : "per example")} radius {(rad == 0 ? "none" : rad == 1 ? "per example" : "shared")} eps={eps}{(acc ? " accumulate" : "")}");
                int cStride = shared ? 0 : n, rStride = rad == 2 ? 0 : n;
                var a = c.In(c.U(batch * rows * n));
                var cv = c.In(c.U(shared ? n : batch * n, -2f, 2f));
                var radius = rad == 0 ? null : c.In(c.U(rad == 2 ? n : batch * n, 0f, 0.3f));
                var value = acc ? c.In(c.U(batch * rows, -3f, 3f)) : c.Out(batch * rows);
                var mag = acc ? c.In(c.U(batch * rows, 0f, 3f)) : c.Out(batch * rows);
                c.Run((k, s) => k.BoundDot(a[s], cv[s], cStride, radius == null ? default : radius[s], rStride, eps, value[s], mag[s], batch, rows, n, acc));
                var m = c.Payload(mag, Side.Reference);
                c.Compare("value", value, Tol.Sum, m);
                c.Compare("mag", mag, Tol.Sum, m);
            }
        });
        Add("BoundConvSelect", c =>
        {
            foreach (var (label, g, _) in ConvGeometries)
            {
                if (g.Batch * g.InChannels * g.InPixels > 20000) continue;   // rows are whole input images: keep the count small
                c.Case(label);
                int outN = g.OutChannels * g.OutPixels, count = 23;
                var code = new float[count];
                for (int i = 0; i < count; i++)
                    code[i] = i % 7 == 3 ? 0 : (c.Rng.Next(0, 2) * 2 - 1) * c.Rng.Next(1, outN + 1);
                code[0] = outN; code[1] = -1;   // the last and the first position
                var w = c.In(c.U(WLen(g)));
                var cd = c.In(code);
                var y = c.Out(count * g.InChannels * g.InPixels);
                c.Run((k, s) => k.BoundConvSelect(w[s], cd[s], y[s], count, g));
                c.Compare("y", y, Tol.Exact);
            }
        });
        Add("BoundConvTranspose", c =>
        {
            foreach (var (label, g0, _) in ConvGeometries)
            {
                // Many small images (the coefficient rows of CROWN), some of them all zero, and a count that is not a multiple of 16.
                var g = new Conv2dGeometry(37, g0.InChannels, g0.Height, g0.Width, g0.OutChannels, g0.KernelH, g0.KernelW, g0.StrideH, g0.StrideW,
                                           g0.PadH, g0.PadW, g0.DilationH, g0.DilationW, g0.Groups);
                if (YLen(g) > 400000) continue;
                c.Case(label + " x37 images");
                var ah = c.Sprinkle(c.U(YLen(g)), 0f);
                int per = g.OutChannels * g.OutPixels;
                foreach (int img in new[] { 0, 5, 17, 36 }) Array.Clear(ah, img * per, per);
                var wh = c.U(WLen(g));
                var a = c.In(ah); var w = c.In(wh);
                var dx = c.Out(XLen(g));
                c.Run((k, s) => k.BoundConvTranspose(a[s], w[s], dx[s], g));
                var aa = c.RefIn(Check.Abs(ah)); var wa = c.RefIn(Check.Abs(wh));
                var m = c.RefOut(XLen(g));
                c.RunReference((k, s) => k.BoundConvTranspose(aa[s], wa[s], m[s], g));
                c.Compare("dx", dx, Tol.Sum, c.Payload(m, Side.Reference));
            }
        });
    }

    /// <summary>Pre-activation bounds l ≤ u of every kind for the ReLU checks: unstable, active, dead, zero at either end, and u = −l exactly (the tie).</summary>
    private static (Pair L, Pair U) ReluBounds(Check c, int n)
    {
        var lo = c.U(n, -1f, 1f); var width = c.U(n, 0f, 1.5f);
        var hi = new float[n];
        for (int i = 0; i < n; i++) hi[i] = i % 7 == 3 ? -lo[i] : i % 11 == 5 ? 0f : lo[i] + width[i];
        for (int i = 0; i < n; i++) if (i % 13 == 6) lo[i] = i % 2 == 0 ? 0f : -0f;
        for (int i = 0; i < n; i++) if (hi[i] < lo[i]) hi[i] = lo[i];
        return (c.In(lo), c.In(hi));
    }
}
