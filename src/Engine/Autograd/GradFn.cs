using Engine.Tensors;

namespace Engine.Autograd;

/// <summary>
/// A node of the autograd tape: the backward rule of one recorded op. It holds the op's inputs and maps
/// dL/d(output) to dL/d(input) for each input. Rules are written with differentiable tensor ops, so they
/// run on whatever device the tensors live on.
/// </summary>
public abstract class GradFn
{
    /// <summary>Creates a node over the op's inputs.</summary>
    protected GradFn(Tensor[] inputs) { Inputs = inputs; }

    /// <summary>The op's tensor inputs, in order.</summary>
    public Tensor[] Inputs { get; }

    /// <summary>Op name for messages and ToString.</summary>
    public abstract string Name { get; }

    /// <summary>One gradient per input (null where the input needs none). Each must have its input's shape.</summary>
    public abstract Tensor?[] Backward(Tensor gradOutput);
}

/// <summary>A backward rule given as a delegate; what almost every op uses.</summary>
internal sealed class LambdaGradFn : GradFn
{
    private readonly Func<Tensor, Tensor[], Tensor?[]> _rule;
    private readonly string _name;

    public LambdaGradFn(string name, Tensor[] inputs, Func<Tensor, Tensor[], Tensor?[]> rule) : base(inputs)
    {
        _name = name; _rule = rule;
    }

    public override string Name => _name;
    public override Tensor?[] Backward(Tensor gradOutput) => _rule(gradOutput, Inputs);
}

/// <summary>
/// The backward rule of an op with several outputs (fused bound kernels): one call receives the gradients of all
/// outputs (null for an output that got none), so a fused kernel's backward runs once. Each output tensor's GradFn is
/// an <see cref="OutputSlotGradFn"/> that forwards its gradient here (the engine collects them first).
/// </summary>
internal sealed class MultiOutputGradFn : GradFn
{
    private readonly Func<Tensor?[], Tensor[], Tensor?[]> _rule;
    private readonly string _name;

    public MultiOutputGradFn(string name, Tensor[] inputs, int outputs, Func<Tensor?[], Tensor[], Tensor?[]> rule) : base(inputs)
    {
        _name = name; _rule = rule; Outputs = outputs;
    }

    public int Outputs { get; }

    public override string Name => _name;

    public Tensor?[] BackwardAll(Tensor?[] gradOutputs) => _rule(gradOutputs, Inputs);

    public override Tensor?[] Backward(Tensor gradOutput)
        => throw new InvalidOperationException($"{_name}: a multi-output node is reached through its output slots only.");
}

/// <summary>Output <see cref="Index"/> of a <see cref="MultiOutputGradFn"/>: the engine hands its gradient to the parent.</summary>
internal sealed class OutputSlotGradFn(MultiOutputGradFn parent, int index) : GradFn([])
{
    public MultiOutputGradFn Parent { get; } = parent;
    public int Index { get; } = index;
    public override string Name => $"{Parent.Name}[{Index}]";
    public override Tensor?[] Backward(Tensor gradOutput) => [];
}

/// <summary>Attaches backward rules to op results when grad mode is on and some input requires grad.</summary>
public static class GradRecorder
{
    /// <summary>True when recording an op on <paramref name="a"/> would matter.</summary>
    public static bool ShouldRecord(Tensor a) => GradMode.IsEnabled && a.RequiresGrad;
    /// <summary>True when recording would matter for either input.</summary>
    public static bool ShouldRecord(Tensor a, Tensor b) => GradMode.IsEnabled && (a.RequiresGrad || b.RequiresGrad);

    /// <summary>Records a one-input op. The rule receives (gradOutput, input).</summary>
    public static Tensor Record(Tensor result, Tensor input, Func<Tensor, Tensor, Tensor?[]> rule,
                                [System.Runtime.CompilerServices.CallerMemberName] string name = "")
    {
        if (!ShouldRecord(input)) return result;
        result.GradFn = new LambdaGradFn(name, [input], (g, ins) => rule(g, ins[0]));
        return result;
    }

    /// <summary>Records a two-input op. The rule receives (gradOutput, a, b).</summary>
    public static Tensor Record(Tensor result, Tensor a, Tensor b, Func<Tensor, Tensor, Tensor, Tensor?[]> rule,
                                [System.Runtime.CompilerServices.CallerMemberName] string name = "")
    {
        if (!ShouldRecord(a, b)) return result;
        result.GradFn = new LambdaGradFn(name, [a, b], (g, ins) => rule(g, ins[0], ins[1]));
        return result;
    }

    /// <summary>Records an op with any number of inputs. The rule receives (gradOutput, inputs).</summary>
    public static Tensor Record(Tensor result, Tensor[] inputs, Func<Tensor, Tensor[], Tensor?[]> rule,
                                [System.Runtime.CompilerServices.CallerMemberName] string name = "")
    {
        if (!GradMode.IsEnabled) return result;
        bool any = false;
        foreach (var t in inputs) any |= t.RequiresGrad;
        if (!any) return result;
        result.GradFn = new LambdaGradFn(name, inputs, rule);
        return result;
    }

    /// <summary>
    /// Records an op with several outputs and one backward rule that receives (gradient per output, null where none;
    /// inputs) and returns one gradient per input.
    /// </summary>
    internal static void RecordMulti(Tensor[] outputs, Tensor[] inputs, Func<Tensor?[], Tensor[], Tensor?[]> rule, string name)
    {
        if (!GradMode.IsEnabled) return;
        bool any = false;
        foreach (var t in inputs) any |= t.RequiresGrad;
        if (!any) return;
        var node = new MultiOutputGradFn(name, inputs, outputs.Length, rule);
        for (int k = 0; k < outputs.Length; k++) outputs[k].GradFn = new OutputSlotGradFn(node, k);
    }

    /// <summary>Records a custom node.</summary>
    public static Tensor Record(Tensor result, GradFn node)
    {
        if (!GradMode.IsEnabled) return result;
        bool any = false;
        foreach (var t in node.Inputs) any |= t.RequiresGrad;
        if (any) result.GradFn = node;
        return result;
    }
}
