using Engine.Tensors;

namespace Engine.Graph;

/// <summary>
/// One interpretation of a graph for a forward walk: what an initializer becomes and how a node maps its input
/// values to output values. The concrete forward uses T = <see cref="Tensor"/>; bound propagation (IBP) uses an
/// interval type with the same walk.
/// </summary>
public interface IGraphInterpretation<T>
{
    /// <summary>The value of a parameter, buffer or constant.</summary>
    T Initializer(Value value);

    /// <summary>The node's outputs (exactly <c>node.Op.OutputCount</c> of them) from its inputs.</summary>
    T[] Apply(Node node, T[] inputs);
}

/// <summary>Runs graphs: the concrete forward (through autograd) and any other forward interpretation.</summary>
public static class Executor
{
    /// <summary>
    /// Concrete forward: runs every node in topological order with differentiable tensor ops, so a loss
    /// computed from the outputs can be back-propagated into the graph's parameters. Returns the outputs.
    /// </summary>
    public static Tensor[] Run(ComputeGraph graph, ForwardContext ctx, params Tensor[] inputs)
        => Interpret(graph, new ConcreteInterpretation(ctx), inputs);

    /// <summary>Concrete forward of a one-input, one-output graph.</summary>
    public static Tensor Forward(ComputeGraph graph, Tensor input, bool training = false)
    {
        if (graph.Outputs.Count != 1) throw new ArgumentException($"Executor.Forward: the graph has {graph.Outputs.Count} outputs; use Run().");
        return Run(graph, training ? new ForwardContext(true) : ForwardContext.Eval, input)[0];
    }

    /// <summary>Concrete forward that keeps every value's tensor (indexed by <see cref="Value.Id"/>), e.g. to inspect activations.</summary>
    public static Tensor[] RunAll(ComputeGraph graph, ForwardContext ctx, params Tensor[] inputs)
        => InterpretAll(graph, new ConcreteInterpretation(ctx), inputs);

    /// <summary>
    /// Walks the graph in topological order under <paramref name="interpretation"/> and returns the outputs.
    /// Values are released after their last use, so peak memory follows the live set, not the whole graph.
    /// </summary>
    public static T[] Interpret<T>(ComputeGraph graph, IGraphInterpretation<T> interpretation, IReadOnlyList<T> inputs)
    {
        var env = Walk(graph, interpretation, inputs, keepAll: false);
        return graph.Outputs.Select(o => env[o.Id]).ToArray();
    }

    /// <summary>Like <see cref="Interpret{T}"/> but returns every value (indexed by <see cref="Value.Id"/>).</summary>
    public static T[] InterpretAll<T>(ComputeGraph graph, IGraphInterpretation<T> interpretation, IReadOnlyList<T> inputs)
        => Walk(graph, interpretation, inputs, keepAll: true);

    private static T[] Walk<T>(ComputeGraph graph, IGraphInterpretation<T> interpretation, IReadOnlyList<T> inputs, bool keepAll)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(interpretation);
        if (inputs.Count != graph.Inputs.Count)
            throw new ArgumentException($"The graph takes {graph.Inputs.Count} input(s) ({string.Join(", ", graph.Inputs.Select(v => v.Name))}), got {inputs.Count}.");

        var env = new T[graph.Values.Count];
        for (int i = 0; i < inputs.Count; i++) env[graph.Inputs[i].Id] = inputs[i];
        foreach (var v in graph.Values)
            if (v.IsInitializer) env[v.Id] = interpretation.Initializer(v);

        int[]? lastUse = keepAll ? null : LastUses(graph);
        foreach (var node in graph.Nodes)
        {
            var ins = new T[node.Inputs.Count];
            for (int i = 0; i < ins.Length; i++) ins[i] = env[node.Inputs[i].Id];
            T[] outs;
            try
            {
                outs = interpretation.Apply(node, ins);
            }
            catch (ArgumentException ex) when (!ex.Message.StartsWith("Node '", StringComparison.Ordinal))
            {
                // Say which node failed: in an imported model the op alone rarely identifies the spot.
                throw new ArgumentException($"Node '{node.Name}' ({node.Op}): {ex.Message}", ex);
            }
            catch (NotSupportedException ex) when (!ex.Message.StartsWith("Node '", StringComparison.Ordinal))
            {
                // The same for an interpretation that has no rule for this node (bounds of Div by zero, ...).
                throw new NotSupportedException($"Node '{node.Name}' ({node.Op}): {ex.Message}", ex);
            }
            if (outs.Length != node.Outputs.Count)
                throw new InvalidOperationException($"Node '{node.Name}' ({node.Op}) produced {outs.Length} outputs, expected {node.Outputs.Count}.");
            for (int i = 0; i < outs.Length; i++) env[node.Outputs[i].Id] = outs[i];
            if (lastUse == null) continue;
            foreach (var v in node.Inputs)
                if (lastUse[v.Id] == node.Index && !v.IsInitializer) env[v.Id] = default!;
        }
        return env;
    }

    private static int[] LastUses(ComputeGraph graph)
    {
        var last = new int[graph.Values.Count];
        Array.Fill(last, -1);
        foreach (var n in graph.Nodes)
            foreach (var v in n.Inputs) last[v.Id] = n.Index;
        foreach (var o in graph.Outputs) last[o.Id] = int.MaxValue;
        return last;
    }

    /// <summary>The concrete forward: each op's <see cref="Op.ForwardOutputs"/>.</summary>
    private sealed class ConcreteInterpretation(ForwardContext ctx) : IGraphInterpretation<Tensor>
    {
        public Tensor Initializer(Value value) => value.Data!;

        public Tensor[] Apply(Node node, Tensor[] inputs) => node.Op.ForwardOutputs(ctx, inputs);
    }
}
