using Engine.Graph;
using Engine.Tensors;

namespace Engine.Onnx.Import;

/// <summary>
/// What an ONNX tensor name stands for during import: a constant (folded, no graph value yet) or a graph value
/// together with a probe tensor, its concrete value for a zero input of the declared shape, which gives every
/// value a static shape and checks each op as it is added.
/// </summary>
internal sealed class Sym
{
    private Sym(ConstTensor? c, Value? v, Tensor? probe, AffineLayer? affine)
    {
        Const = c; Value = v; Probe = probe; Affine = affine;
    }

    public ConstTensor? Const { get; }
    public Value? Value { get; }
    public Tensor? Probe { get; }

    /// <summary>Set when the value is the output of a Linear or Conv with constant weights, so a bias or BatchNorm can be folded in.</summary>
    public AffineLayer? Affine { get; }

    public bool IsConst => Const != null;

    public int[] Shape => Const?.Dims ?? Probe!.Shape;

    public int Rank => Shape.Length;

    public static Sym Of(ConstTensor c) => new(c, null, null, null);

    public static Sym Of(Value v, Tensor probe, AffineLayer? affine = null) => new(null, v, probe, affine);
}

/// <summary>A Linear or Conv node with constant weights [out, ...] and optional constant bias [out].</summary>
internal sealed record AffineLayer(Op Op, Sym Input, ConstTensor Weight, ConstTensor? Bias);
