using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// The base of every graph operation: one class per operator type (auto_LiRPA's design), and each class owns
/// all of its rules in one place. This file fixes the concrete forward; other interpretations of the graph
/// (interval propagation, CROWN's linear back-substitution, ...) attach to the same classes as further virtual
/// members declared in partial files (Op is partial, and so is every op in Graph/Ops), and are driven by
/// <see cref="Executor.Interpret{T}"/> (forward walks) or a reverse walk over <see cref="ComputeGraph.Nodes"/>.
/// Ops hold attributes only (stride, slope, ...); weights are graph values (initializers) passed as inputs,
/// like ONNX, so every interpretation sees parameters and activations the same way.
/// </summary>
public abstract partial class Op
{
    /// <summary>Operator type name, the ONNX op_type where one exists ("Relu", "Conv", ...).</summary>
    public abstract string Type { get; }

    /// <summary>Smallest number of inputs the op accepts.</summary>
    public virtual int MinInputs => 1;

    /// <summary>Largest number of inputs the op accepts.</summary>
    public virtual int MaxInputs => MinInputs;

    /// <summary>Number of outputs.</summary>
    public virtual int OutputCount => 1;

    /// <summary>
    /// Concrete forward of a single-output op, written with differentiable tensor ops so that training records
    /// the backward pass. Inputs are in node order (absent optional inputs are not passed).
    /// </summary>
    public abstract Tensor Forward(ForwardContext ctx, Tensor[] inputs);

    /// <summary>Concrete forward returning every output; multi-output ops override this.</summary>
    public virtual Tensor[] ForwardOutputs(ForwardContext ctx, Tensor[] inputs) => [Forward(ctx, inputs)];

    /// <summary>Attributes for display, e.g. "stride=2, padding=1"; empty when there are none.</summary>
    protected virtual string Attributes => "";

    /// <inheritdoc/>
    public override string ToString() => Attributes.Length == 0 ? Type : $"{Type}[{Attributes}]";

    /// <summary>
    /// Set by the module that created the op: its own training flag, so that a sub-module switched to Eval()
    /// (e.g. frozen BatchNorm) stays in evaluation inside a model that trains.
    /// </summary>
    internal Func<bool>? TrainingGate { get; set; }

    /// <summary>Training mode for this op: the context's mode, unless the owning module is in evaluation mode.</summary>
    protected bool IsTraining(ForwardContext ctx) => ctx.Training && (TrainingGate?.Invoke() ?? true);

    /// <summary>Throws unless <paramref name="inputs"/> has between MinInputs and MaxInputs tensors.</summary>
    protected void CheckArity(Tensor[] inputs)
    {
        if (inputs.Length < MinInputs || inputs.Length > MaxInputs)
            throw new ArgumentException($"{Type}: expected {(MinInputs == MaxInputs ? MinInputs.ToString() : $"{MinInputs} to {MaxInputs}")} inputs, got {inputs.Length}.");
    }
}
