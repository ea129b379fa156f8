using Engine.Tensors;

namespace Engine.Diagnostics;

// Fill, Copy, Axpy, Gemm and the two RNG kernels (IKernels.cs).
public sealed partial class KernelSelfTest
{
    // 1-D lengths: a single element, odd sizes that leave vector tails, and one past 65536 so a grid-stride loop wraps.
    private static readonly int[] Lengths = [1, 3, 17, 1000, 70001];

    private void RegisterCore()
    {
        Add("Fill", c =>
        {
            foreach (int n in Lengths)
                foreach (float v in new[] { 0f, -1.5f, float.NaN })
                {
                    c.Case($"n={n} value={v}");
                    var y = c.Out(n);
                    c.Run((k, s) => k.Fill(y[s], n, v));
                    c.Compare("y", y, Tol.Exact);
                }
        });
        Add("Copy", c =>
        {
            foreach (int n in Lengths)
            {
                c.Case($"n={n}");
                var x = c.In(c.Sprinkle(c.U(n), float.NaN, float.NegativeInfinity, -0f));
                var y = c.Out(n);
                c.Run((k, s) => k.Copy(x[s], y[s], n));
                c.Compare("dst", y, Tol.Exact);
            }
        });
        Add("Axpy", c =>
        {
            foreach (int n in Lengths)
                foreach (float alpha in new[] { 0.75f, -2f })
                {
                    c.Case($"n={n} alpha={alpha}");
                    var xh = c.U(n); var yh = c.U(n);
                    var x = c.In(xh); var y = c.InOut(yh);
                    c.Run((k, s) => k.Axpy(alpha, x[s], y[s], n));
                    c.Compare("y", y, Tol.Ulps with { Scale = 1e-6 }, xh.Select((v, i) => MathF.Abs(alpha * v) + MathF.Abs(yh[i])).ToArray());
                }
        });
        Add("Gemm", GemmCheck);
        Add("Upload/Queued", UploadCheck);
        Add("RandomUniform", c =>
        {
            foreach (int n in new[] { 1, 5, 1001, 70001 })
                foreach (var (seed, counter, lo, hi) in new[] { (7UL, 0UL, 0f, 1f), (0xDEADBEEFUL, 12345UL, -3f, 2f) })
                {
                    c.Case($"n={n} seed={seed} counter={counter} [{lo}, {hi})");
                    var y = c.Out(n);
                    c.Run((k, s) => k.RandomUniform(y[s], n, seed, counter, lo, hi));
                    c.Compare("y", y, Tol.Bits);
                }
        });
        Add("RandomNormal", c =>
        {
            foreach (int n in new[] { 1, 3, 1000, 70001 })
                foreach (var (seed, counter, mean, std) in new[] { (7UL, 0UL, 0f, 1f), (0xDEADBEEFUL, 999UL, 2f, 0.5f) })
                {
                    c.Case($"n={n} seed={seed} counter={counter} N({mean}, {std})");
                    var y = c.Out(n);
                    c.Run((k, s) => k.RandomNormal(y[s], n, seed, counter, mean, std));
                    c.Compare("y", y, new Tol(1e-5, 1e-5));
                }
        });
    }

    /// <summary>
    /// Host-to-device copies queued back to back, each source overwritten as soon as the copy returns, then all read
    /// back at the end: on CUDA the small ones go through a pinned staging ring that wraps several times here (a
    /// segment reused before its copies ran would corrupt them), the large ones through the synchronising path.
    /// </summary>
    private static void UploadCheck(Check c)
    {
        c.Case("400 uploads of 1 to 65,536 floats, every 50th of 300,000");
        var expected = new List<float[]>();
        var tensors = new List<Tensor>();
        try
        {
            for (int i = 0; i < 400; i++)
            {
                int n = i % 50 == 49 ? 300_000 : c.Rng.Next(1, 65_537);
                var host = c.U(n);
                expected.Add((float[])host.Clone());
                tensors.Add(Tensor.FromSpan(host, [n], c.Device));
                Array.Fill(host, float.NaN);   // the copy must have taken the data already
            }
            for (int i = 0; i < tensors.Count; i++)
            {
                var back = tensors[i].ToArray();
                int bad = FirstDifference(back, expected[i]);
                if (bad >= 0) { c.Fail($"{c.CaseLabel}: upload {i} ({back.Length} floats) differs at [{bad}]: {back[bad]} instead of {expected[i][bad]}"); break; }
            }
        }
        finally
        {
            foreach (var t in tensors) t.Storage.Dispose();
        }
    }

    private static int FirstDifference(float[] a, float[] b)
    {
        for (int i = 0; i < a.Length; i++) if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i])) return i;
        return -1;
    }

    private void GemmCheck(Check c)
    {
        // (transA, transB, batch, m, n, k, alpha, beta, pad of the leading dimensions, broadcast A, broadcast B)
        var cases = new List<(bool TA, bool TB, int Batch, int M, int N, int K, float Alpha, float Beta, int Pad, bool BcA, bool BcB)>();
        foreach (bool ta in new[] { false, true })
            foreach (bool tb in new[] { false, true })
            {
                cases.Add((ta, tb, 1, 7, 9, 13, 1f, 0f, 0, false, false));
                cases.Add((ta, tb, 3, 33, 65, 17, 0.5f, 1f, 3, false, false));
            }
        cases.Add((false, false, 1, 1, 1, 1, 1f, 0f, 0, false, false));
        cases.Add((false, true, 1, 1, 300, 77, 1f, 0f, 0, false, false));
        cases.Add((true, false, 1, 300, 1, 77, -1f, 0.5f, 0, false, false));
        cases.Add((false, false, 4, 5, 6, 7, 1f, 0f, 2, true, false));
        cases.Add((false, true, 4, 5, 6, 7, 1f, 1f, 0, false, true));
        cases.Add((true, true, 2, 130, 257, 300, 1f, 0f, 0, false, false));
        cases.Add((false, false, 1, 300, 250, 64, 1f, 0f, 0, false, false));
        cases.Add((false, false, 1, 4, 5, 0, 1f, 0f, 0, false, false));
        foreach (var (ta, tb, batch, m, n, kk, alpha, beta, pad, bcA, bcB) in cases)
        {
            c.Case($"transA={ta} transB={tb} batch={batch} m={m} n={n} k={kk} alpha={alpha} beta={beta} ld+{pad}{(bcA ? " A broadcast" : "")}{(bcB ? " B broadcast" : "")}");
            int aRows = ta ? kk : m, aCols = ta ? m : kk, bRows = tb ? n : kk, bCols = tb ? kk : n;
            int lda = Math.Max(1, aCols + pad), ldb = Math.Max(1, bCols + pad), ldc = Math.Max(1, n + pad);
            long aMat = (long)Math.Max(0, aRows - 1) * lda + aCols, bMat = (long)Math.Max(0, bRows - 1) * ldb + bCols, cMat = (long)(m - 1) * ldc + n;
            long strideA = bcA ? 0 : aMat + 1, strideB = bcB ? 0 : bMat + 2, strideC = cMat + 1;
            int aLen = (int)(strideA * (batch - 1) + aMat), bLen = (int)(strideB * (batch - 1) + bMat), cLen = (int)(strideC * (batch - 1) + cMat);
            var ah = c.U(aLen); var bh = c.U(bLen);
            // beta = 0 must not read C: fill it with NaN then.
            var ch = beta == 0 ? Enumerable.Repeat(float.NaN, cLen).ToArray() : c.U(cLen);
            var a = c.In(ah); var b = c.In(bh); var cc = c.InOut(ch);
            c.Run((k, s) => k.Gemm(ta, tb, batch, m, n, kk, alpha, a[s], lda, strideA, b[s], ldb, strideB, beta, cc[s], ldc, strideC));
            // Magnitudes: the same product over |A|, |B|, |C|.
            var aa = c.RefIn(Check.Abs(ah)); var ba = c.RefIn(Check.Abs(bh));
            var ca = c.RefIn(beta == 0 ? new float[cLen] : Check.Abs(ch));
            c.RunReference((k, s) => k.Gemm(ta, tb, batch, m, n, kk, Math.Abs(alpha), aa[s], lda, strideA, ba[s], ldb, strideB, Math.Abs(beta), ca[s], ldc, strideC));
            var mag = c.Payload(ca, Side.Reference);
            // Elements of C between rows (ld padding) and between matrices are not part of the product: they must be kept.
            c.Compare("C", cc, Tol.Sum, mag);
        }
    }
}
