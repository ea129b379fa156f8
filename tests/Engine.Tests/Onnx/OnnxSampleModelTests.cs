using NUnit.Framework;
using Engine.Graph;
using Engine.Onnx;
using Engine.Tensors;

namespace Engine.Tests.Onnx;

/// <summary>The VNN-COMP 2021 sample networks import and compute what ONNX Runtime computes.</summary>
[TestFixture]
public class OnnxSampleModelTests
{
    private static IEnumerable<string> Models() => VnnCompData.Files("*.onnx");

    [TestCaseSource(nameof(Models))]
    public void SampleModelMatchesOnnxRuntime(string relative)
    {
        var path = Path.Combine(VnnCompData.RequireRoot(), relative);
        var bytes = File.ReadAllBytes(path);
        for (int seed = 0; seed < 3; seed++)
            OrtOracle.AssertMatches(bytes, seed);
    }

    [Test]
    public void SampleModelsAreFound()
    {
        VnnCompData.RequireRoot();
        Assert.That(Models().Count(), Is.GreaterThanOrEqualTo(8));
    }

    [Test]
    public void AcasXuImportsAsLinearLayers()
    {
        var path = Path.Combine(VnnCompData.RequireRoot(), "acasxu", "ACASXU_run2a_1_1_batch_2000.onnx");
        var m = OnnxModel.Load(path);
        Assert.That(m.Inputs, Has.Count.EqualTo(1));
        Assert.That(m.Inputs[0].Name, Is.EqualTo("input"));
        Assert.That(m.Inputs[0].Shape, Is.EqualTo(new[] { 1, 1, 1, 5 }));
        Assert.That(m.Outputs[0].Shape, Is.EqualTo(new[] { 1, 5 }));
        var ops = m.Graph.Nodes.Select(n => n.Op.Type).ToArray();
        // Sub (input normalisation), Flatten, then 7 MatMul+Add pairs fused into Linear with 6 Relu between.
        Assert.That(ops.Count(t => t == "Linear"), Is.EqualTo(7));
        Assert.That(ops.Count(t => t == "Relu"), Is.EqualTo(6));
        Assert.That(ops.Count(t => t == "Add" || t == "MatMul"), Is.EqualTo(0));
        Assert.That(ops[0], Is.EqualTo("Sub"));
        Assert.That(m.Graph.Parameters.Count(), Is.EqualTo(14));
        Assert.That(m.OpsetVersion, Is.EqualTo(8));
    }

    [Test]
    public void AcasXuRunsBatched()
    {
        var path = Path.Combine(VnnCompData.RequireRoot(), "acasxu", "ACASXU_run2a_1_1_batch_2000.onnx");
        var m = OnnxModel.Load(path);
        var x = Tensor.FromArray(OrtOracle.RandomInput(4 * 5, 3, -0.5f, 0.5f), 4, 1, 1, 5);
        var batched = Executor.Forward(m.Graph, x).ToArray();
        Assert.That(batched, Has.Length.EqualTo(20));
        for (int b = 0; b < 4; b++)
        {
            var one = Executor.Forward(m.Graph, Tensor.FromArray(x.ToArray()[(b * 5)..(b * 5 + 5)], 1, 1, 1, 5)).ToArray();
            OrtOracle.AssertClose(batched[(b * 5)..(b * 5 + 5)], one, 1e-5, $"row {b}");
        }
    }
}
