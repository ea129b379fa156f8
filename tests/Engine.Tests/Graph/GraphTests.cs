using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Graph;

public class GraphTests
{
    [Test]
    public void BuilderProducesTopologicalGraphAndPrunesDeadNodes()
    {
        var b = new GraphBuilder();
        var x = b.Input("x");
        var w = b.Parameter("w", Tensor.Full([3], 2f));
        var y = b.Apply(new ColumnScaleOp(), x, w);
        b.Apply(new FlattenOp(0), y);                      // dead: no output reads it
        var z = b.ApplyNamed("flat", new FlattenOp(), y);
        b.Output(z);
        var g = b.Build();

        Assert.That(g.Nodes.Select(n => n.Op.Type), Is.EqualTo(new[] { "ColumnScale", "Flatten" }));
        Assert.That(g.Nodes.Select(n => n.Index), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(g.Values.Select(v => v.Id), Is.EqualTo(Enumerable.Range(0, g.Values.Count)));
        Assert.That(g["w"].Kind, Is.EqualTo(ValueKind.Parameter));
        Assert.That(g.Consumers(g["x"]).Single().Op.Type, Is.EqualTo("ColumnScale"));
        Assert.That(g.Outputs.Single().Producer!.Name, Is.EqualTo("flat"));
        foreach (var n in g.Nodes)
            foreach (var i in n.Inputs)
                Assert.That(i.Producer == null || i.Producer.Index < n.Index);
        Assert.That(g.ToString(), Does.Contain("ColumnScale").And.Contain("Flatten[start=1, end=-1]"));
    }

    [Test]
    public void ExecutorRunsThroughAutograd()
    {
        var b = new GraphBuilder();
        var x = b.Input();
        var wT = Tensor.FromArray([2f, -1f], 2).RequiresGrad_();
        b.Output(b.Apply(new ColumnScaleOp(), x, b.Parameter("w", wT)));
        var g = b.Build();
        var input = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2).RequiresGrad_();
        var y = Executor.Run(g, new ForwardContext(true), input)[0];
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 2f, -2f, 6f, -4f }));
        y.Backward(Tensor.Ones(2, 2));
        Assert.That(wT.Grad!.ToArray(), Is.EqualTo(new[] { 4f, 6f }));
        Assert.That(input.Grad!.ToArray(), Is.EqualTo(new[] { 2f, -1f, 2f, -1f }));
    }

    [Test]
    public void SameTensorRegisteredTwiceIsOneParameter()
    {
        var b = new GraphBuilder();
        var t = Tensor.Ones(2);
        var v1 = b.Parameter("a", t);
        var v2 = b.Parameter("b", t);
        Assert.That(v2, Is.SameAs(v1));
        var v3 = b.Parameter("a", Tensor.Ones(2));
        Assert.That(v3.Name, Is.EqualTo("a_1"));
    }

    [Test]
    public void BadGraphsAndInputsAreRejected()
    {
        var b = new GraphBuilder();
        var x = b.Input();
        Assert.Throws<ArgumentException>(() => b.Apply(new ColumnScaleOp(), x));
        var other = new GraphBuilder().Input();
        Assert.Throws<ArgumentException>(() => b.Apply(new FlattenOp(), other));
        Assert.Throws<InvalidOperationException>(() => new GraphBuilder().Build());
        b.Output(b.Apply(new FlattenOp(2), x));
        var g = b.Build();
        Assert.Throws<InvalidOperationException>(() => b.Input());
        var ex = Assert.Throws<ArgumentException>(() => Executor.Run(g, ForwardContext.Eval));
        Assert.That(ex!.Message, Does.Contain("1 input"));
        // An op failure names the node.
        var ex2 = Assert.Throws<ArgumentException>(() => Executor.Run(g, ForwardContext.Eval, Tensor.Ones(2, 3)));
        Assert.That(ex2!.Message, Does.Contain("Node 'Flatten_0'").And.Contain("[2, 3]"));
        Assert.Throws<KeyNotFoundException>(() => _ = g["nope"]);
    }

    private sealed class CountingInterpretation : IGraphInterpretation<int>
    {
        public int Initializer(Value value) => value.Data!.Numel;
        public int[] Apply(Node node, int[] inputs) => [inputs.Sum() + 1];
    }

    [Test]
    public void InterpretWalksAnyValueType()
    {
        var b = new GraphBuilder();
        var x = b.Input();
        var w = b.Parameter("w", Tensor.Ones(5));
        var y = b.Apply(new ColumnScaleOp(), x, w);
        var z = b.Apply(new ColumnScaleOp(), y, w);
        b.Output(z); b.Output(y);
        var g = b.Build();
        var outs = Executor.Interpret(g, new CountingInterpretation(), [10]);
        Assert.That(outs, Is.EqualTo(new[] { 10 + 5 + 1 + 5 + 1, 16 }));
        var all = Executor.InterpretAll(g, new CountingInterpretation(), [10]);
        Assert.That(all[g["w"].Id], Is.EqualTo(5));
    }

    [Test]
    public void ModuleForwardUsesTrainingFlagAndDottedNames()
    {
        var net = new Sequential(new Flatten(), new ColumnScale(6, 3f), new Sequential(new Identity(), new ColumnScale(6, 0.5f)));
        Assert.That(net.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "1.weight", "2.1.weight" }));
        Assert.That(net.StateDict().Keys, Is.EqualTo(new[] { "1.weight", "2.1.weight", "1.calls", "2.1.calls" }));
        Assert.That(net.Graph.Parameters.Select(v => v.Name), Is.EqualTo(new[] { "1.weight", "2.1.weight" }));
        var x = Tensor.Ones(2, 2, 3);
        var y = net.Forward(x);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 6 }));
        Assert.That(y.ToArray(), Is.All.EqualTo(1.5f));
        var probe = ((ColumnScale)net[1]).Probe;
        Assert.That(probe.LastTraining, Is.True);
        net.Eval();
        Assert.That(((Sequential)net[2])[1].Training, Is.False);
        net.Forward(x);
        Assert.That(probe.LastTraining, Is.False);
        Assert.That(net.ParameterCount(), Is.EqualTo(12));
        Assert.That(net.ToString(), Does.Contain("(2): Sequential(").And.Contain("(1): ColumnScale()"));
    }

    [Test]
    public void ModuleGraphIsBuiltOnce()
    {
        var net = new Sequential(new ColumnScale(3));
        ColumnScaleOp.Calls = 0;
        var g = net.Graph;
        for (int i = 0; i < 3; i++) net.Forward(Tensor.Ones(1, 3));
        Assert.That(net.Graph, Is.SameAs(g));
        Assert.That(ColumnScaleOp.Calls, Is.EqualTo(3));
    }

    [Test]
    public void SharedModuleParametersAppearOnce()
    {
        var shared = new ColumnScale(2, 2f);
        var net = new Sequential(shared, shared);
        Assert.That(net.NamedParameters().Select(p => p.Name), Is.EqualTo(new[] { "0.weight" }));
        var y = net.Forward(Tensor.Ones(1, 2));
        Assert.That(y.ToArray(), Is.EqualTo(new[] { 4f, 4f }));
        y.Backward(Tensor.Ones(1, 2));
        Assert.That(shared.Weight.Grad!.ToArray(), Is.EqualTo(new[] { 4f, 4f }));
    }

    [Test]
    public void LoadStateDictChecksNamesAndShapesBeforeWriting()
    {
        var net = new Sequential(new ColumnScale(2), new ColumnScale(3));
        var state = new Dictionary<string, Tensor>
        {
            ["0.weight"] = Tensor.FromArray([5f, 6f], 2), ["1.weight"] = Tensor.Ones(4), ["0.calls"] = Tensor.Zeros(1), ["extra"] = Tensor.Zeros(1),
        };
        var ex = Assert.Throws<ArgumentException>(() => net.LoadStateDict(state));
        Assert.That(ex!.Message, Does.Contain("missing: 1.calls").And.Contain("unexpected: extra").And.Contain("'1.weight' has shape [4]"));
        Assert.That(((ColumnScale)net[0]).Weight.ToArray(), Is.EqualTo(new[] { 1f, 1f }));
        state["1.weight"] = Tensor.Full([3], 7f);
        net.LoadStateDict(state, strict: false);
        Assert.That(((ColumnScale)net[0]).Weight.ToArray(), Is.EqualTo(new[] { 5f, 6f }));
        Assert.That(((ColumnScale)net[1]).Weight.ToArray(), Is.All.EqualTo(7f));
    }

    [Test]
    public void ZeroGradClearsEveryParameter()
    {
        var net = new Sequential(new ColumnScale(2), new ColumnScale(2));
        net.Forward(Tensor.Ones(1, 2)).Backward(Tensor.Ones(1, 2));
        Assert.That(net.Parameters().All(p => p.Grad != null));
        net.ZeroGrad();
        Assert.That(net.Parameters().All(p => p.Grad == null));
    }
}
