using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// One step of a compiled chain (<see cref="ChainPlan"/>): the ops of a sequential graph with shape-only ops
/// (Flatten, Reshape, Identity, Dropout) dropped, since they do not move elements in the row-major per-example
/// layout. Value k is the output of layer k; value −1 is the input. Weights are the graph's live tensors, read
/// on every call, so an update between calls is always seen (nothing derived from them is cached across calls).
/// </summary>
internal abstract class ChainLayer
{
    /// <summary>Per-example shape of the layer's input and output.</summary>
    public int[] InShape = [], OutShape = [];

    /// <summary>Elements per example of the input and output.</summary>
    public int InSize, OutSize;
}

/// <summary>y = W x + b with W [out, in] (LinearOp on a [B, in] value).</summary>
internal sealed class DenseLayer(Tensor w, Tensor? b) : ChainLayer
{
    public readonly Tensor W = w;
    public readonly Tensor? B = b;
}

/// <summary>2-D convolution with one group (Conv2dOp), NCHW.</summary>
internal sealed class ConvLayer(Tensor w, Tensor? b, int cin, int h, int wd, int cout, int oh, int ow, int kh, int kw,
                                (int H, int W) stride, (int H, int W) pad, (int H, int W) dil) : ChainLayer
{
    public readonly Tensor W = w;
    public readonly Tensor? B = b;
    public readonly int Cin = cin, H = h, Wd = wd, Cout = cout, OH = oh, OW = ow, KH = kh, KW = kw;
    public readonly int SH = stride.H, SW = stride.W, PH = pad.H, PW = pad.W, DH = dil.H, DW = dil.W;

    /// <summary>Taps per output channel (Cin·KH·KW).</summary>
    public int Taps => Cin * KH * KW;

    /// <summary>
    /// For each input row ih, the (kh, oh) pairs with oh·SH − PH + kh·DH = ih (CSR: TapH[ih] .. TapH[ih + 1] index
    /// TapHK / TapHO); the same for columns. The transposed convolution gathers over these.
    /// </summary>
    public readonly int[] TapH = new int[h + 1], TapW = new int[wd + 1];
    public int[] TapHK = [], TapHO = [], TapWK = [], TapWO = [];

    /// <summary>
    /// For each input element q (CSR: Reach[q] .. Reach[q + 1]): the output elements of the convolution that read
    /// it (ReachOut, flat co·OH·OW + oh·OW + ow) and the flat index of the weight that multiplies it (ReachW). The
    /// transposed convolution of a row gathers exactly these; the weight values are read on every call.
    /// </summary>
    public int[] Reach = [], ReachOut = [], ReachW = [];

    public ConvLayer Init()
    {
        (TapHK, TapHO) = Taps1(H, OH, KH, SH, PH, DH, TapH);
        (TapWK, TapWO) = Taps1(Wd, OW, KW, SW, PW, DW, TapW);
        int hw = H * Wd, opix = OH * OW, kk = KH * KW;
        Reach = new int[Cin * hw + 1];
        var outs = new List<int>(); var ws = new List<int>();
        for (int q = 0; q < Cin * hw; q++)
        {
            Reach[q] = outs.Count;
            int ci = q / hw, ih = q % hw / Wd, iw = q % Wd;
            for (int a = TapH[ih]; a < TapH[ih + 1]; a++)
                for (int b = TapW[iw]; b < TapW[iw + 1]; b++)
                    for (int co = 0; co < Cout; co++)
                    {
                        outs.Add(co * opix + TapHO[a] * OW + TapWO[b]);
                        ws.Add((co * Cin + ci) * kk + TapHK[a] * KW + TapWK[b]);
                    }
        }
        Reach[Cin * hw] = outs.Count;
        ReachOut = [.. outs]; ReachW = [.. ws];
        return this;
    }

    private static (int[], int[]) Taps1(int n, int outN, int k, int s, int p, int d, int[] start)
    {
        var kk = new List<int>(); var oo = new List<int>();
        for (int i = 0; i < n; i++)
        {
            start[i] = kk.Count;
            for (int t = 0; t < k; t++)
            {
                int num = i + p - t * d;
                if (num < 0 || num % s != 0 || num / s >= outN) continue;
                kk.Add(t); oo.Add(num / s);
            }
        }
        start[n] = kk.Count;
        return ([.. kk], [.. oo]);
    }
}

/// <summary>
/// An element-wise affine map y = s ⊙ x + t (BatchNorm in evaluation, Add / Sub / Mul by a constant), with s and t
/// expanded to one value per element of an example on every call. <see cref="Exact"/> marks k + x and k − x, whose
/// interval rule is the exact shifted (or mirrored) interval, as in the generic rule.
/// </summary>
internal sealed class ElemLayer : ChainLayer
{
    public enum Source { Add, Sub, ReverseSub, Mul, BatchNorm }

    public Source Kind;
    /// <summary>The constant (Add, Sub, Mul) and, per element of an example, the index of its value in the constant.</summary>
    public Tensor? K;
    public int[]? KIndex;
    /// <summary>BatchNorm: weight, bias, running mean, running variance, eps and elements per channel.</summary>
    public Tensor? BnW, BnB, BnMean, BnVar;
    public float BnEps;
    public int Spatial;

    /// <summary>k + x or k − x: the interval is shifted (mirrored) exactly, no rounding margin (the generic rule).</summary>
    public bool Exact => Kind == Source.ReverseSub || (Kind == Source.Add && ReverseAdd);

    /// <summary>Add with the perturbed value as the second operand.</summary>
    public bool ReverseAdd;

    /// <summary>
    /// Fills s (null when s ≡ 1) and t (null when t ≡ 0), one value per element, from the live constants; the
    /// float arithmetic is the generic rules' (BatchNormOp.EvalAffine: scale = w / sqrt(var + eps), shift = b − mean·scale).
    /// </summary>
    public void Fill(Span<float> s, Span<float> t, out bool hasS, out bool hasT)
    {
        hasS = hasT = false;
        switch (Kind)
        {
            case Source.BatchNorm:
            {
                var w = ChainPlan.Data(BnW!); var b = ChainPlan.Data(BnB!); var m = ChainPlan.Data(BnMean!); var v = ChainPlan.Data(BnVar!);
                for (int c = 0; c < w.Length; c++)
                {
                    float scale = w[c] / MathF.Sqrt(v[c] + BnEps);
                    float shift = b[c] - m[c] * scale;
                    s.Slice(c * Spatial, Spatial).Fill(scale);
                    t.Slice(c * Spatial, Spatial).Fill(shift);
                }
                hasS = hasT = true;
                return;
            }
            case Source.Mul:
            {
                var k = ChainPlan.Data(K!);
                for (int i = 0; i < OutSize; i++) s[i] = k[KIndex![i]];
                hasS = true;
                return;
            }
            default:
            {
                var k = ChainPlan.Data(K!);
                // x − k enters as x + (−k): the float sum is the same; k − x is −x + k.
                bool negate = Kind == Source.Sub;
                for (int i = 0; i < OutSize; i++) t[i] = negate ? -k[KIndex![i]] : k[KIndex![i]];
                hasT = true;
                if (Kind == Source.ReverseSub) { s.Slice(0, OutSize).Fill(-1f); hasS = true; }
                return;
            }
        }
    }
}

/// <summary>ReLU (slope 0) or LeakyReLU (slope in (0, 1]).</summary>
internal sealed class ActLayer(float slope) : ChainLayer
{
    public readonly float Slope = slope;

    /// <summary>CROWN refines this layer's input (it is not the output of the first affine layer).</summary>
    public bool RefineInput;
}
