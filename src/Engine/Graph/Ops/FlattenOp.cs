using Engine.Tensors;

namespace Engine.Graph;

/// <summary>Collapses dimensions [StartDim, EndDim] into one (torch.flatten; a view).</summary>
public sealed partial class FlattenOp : Op
{
    /// <summary>Creates the op; the default keeps the batch dimension, like nn.Flatten.</summary>
    public FlattenOp(int startDim = 1, int endDim = -1) { StartDim = startDim; EndDim = endDim; }

    /// <summary>First dimension collapsed.</summary>
    public int StartDim { get; }
    /// <summary>Last dimension collapsed (negative counts from the end).</summary>
    public int EndDim { get; }

    /// <inheritdoc/>
    public override string Type => "Flatten";
    /// <inheritdoc/>
    protected override string Attributes => $"start={StartDim}, end={EndDim}";

    /// <inheritdoc/>
    public override Tensor Forward(ForwardContext ctx, Tensor[] inputs)
    {
        CheckArity(inputs);
        var x = inputs[0];
        int rank = Math.Max(1, x.Rank);
        if (StartDim < -rank || StartDim >= rank || EndDim < -rank || EndDim >= rank)
            throw new ArgumentException($"Flatten: dims [{StartDim}, {EndDim}] are out of range for input of shape {ShapeUtil.Format(x.Dims)}.");
        return x.Flatten(StartDim, EndDim);
    }
}
