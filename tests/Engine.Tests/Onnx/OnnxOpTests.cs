using NUnit.Framework;
using Engine.Graph;
using Engine.Onnx;
using Engine.Onnx.Protobuf;
using Engine.Tensors;

namespace Engine.Tests.Onnx;

/// <summary>Hand-built models covering each supported operator, compared against ONNX Runtime.</summary>
[TestFixture]
public class OnnxOpTests
{
    private static string[] OpTypes(OnnxModel m) => m.Graph.Nodes.Select(n => n.Op.Type).ToArray();

    [Test]
    public void MlpWithGemmVariantsAndActivations()
    {
        var b = OnnxOpModels.MlpWithGemmVariants();
        var m = OrtOracle.AssertMatches(b.Bytes(), batch: 2);
        var ops = OpTypes(m);
        Assert.That(ops.Count(t => t == "Linear"), Is.EqualTo(4));
        Assert.That(ops.Count(t => t == "Add"), Is.EqualTo(1));
        Assert.That(m.Inputs[0].Shape, Is.EqualTo(new[] { -1, 6 }));
    }

    [Test]
    public void GemmWithTransposedDynamicA()
    {
        var b = OnnxOpModels.GemmWithTransposedA();
        var m = OrtOracle.AssertMatches(b.Bytes());
        Assert.That(OpTypes(m), Does.Contain("Transpose").And.Contain("MatMul"));
    }

    [Test]
    public void MatMulOfTwoComputedValuesAndVectorForms()
    {
        var b = OnnxOpModels.MatMulOfComputedValues();
        var m = OrtOracle.AssertMatches(b.Bytes());
        Assert.That(OpTypes(m), Does.Contain("Linear"));
    }

    [Test]
    public void ConvBatchNormPoolConcatNetwork()
    {
        var b = OnnxOpModels.ConvBatchNormPoolConcat();
        var m = OrtOracle.AssertMatches(b.Bytes(), batch: 2);
        var ops = OpTypes(m);
        Assert.That(ops, Does.Not.Contain("BatchNormalization"), "BatchNorm folds into the convolution");
        Assert.That(ops, Does.Contain("Div"), "division by a constant that is not a power of two stays a division");
        Assert.That(ops, Does.Contain("Concat").And.Contain("MaxPool").And.Contain("AveragePool"));
        Assert.That(ops.Count(t => t == "Conv"), Is.EqualTo(2));
    }

    [Test]
    public void DivByConstantKeepsFloat32SemanticsAndBounds()
    {
        // x / c with c not a power of two stays Div (x·(1/c) can be an ulp off); x / 0.25 becomes the identical x·4.
        float[] c = OnnxOpModels.Divisors;
        var b = OnnxOpModels.DivByConstant();
        var m = OrtOracle.AssertMatches(b.Bytes(), batch: 3);
        Assert.That(OpTypes(m), Is.EqualTo(new[] { "Div", "Mul", "Relu", "Linear" }));

        // The division alone is bit-for-bit ONNX Runtime's, where the product by the rounded reciprocal is not.
        var div = new OnnxTestModel().Input("x", -1, 6).Output("y").Init("c", c, [6]).Node("Div", ["x", "c"], ["y"]).Bytes();
        var xs = OrtOracle.RandomInput(6 * 64, 5, -3f, 3f);
        var ort = OrtOracle.Run(div, [("x", xs, [64, 6])])[0].Data;
        var engine = Executor.Run(OnnxModel.Load(div).Graph, ForwardContext.Eval, [Tensor.FromArray(xs, 64, 6)])[0].ToArray();
        Assert.That(engine, Is.EqualTo(ort), "x / c as ONNX Runtime computes it");
        int differ = 0;
        for (int i = 0; i < xs.Length; i++) if (xs[i] * (1f / c[i % 6]) != ort[i]) differ++;
        Assert.That(differ, Is.GreaterThan(0), "the reciprocal form differs somewhere, so the check above can fail");

        // The imported network is bounded through the Div.
        var x0 = Tensor.FromArray(OrtOracle.RandomInput(12, 9), 2, 6);
        var r = Engine.Bounds.Bounds.Compute(m.Graph, x0, Engine.Bounds.Perturbation.LInf(0.05f), Engine.Bounds.BoundMethod.Crown);
        var y0 = Executor.Run(m.Graph, ForwardContext.Eval, [x0])[0].ToArray();
        var lo = r.Lower.ToArray(); var hi = r.Upper.ToArray();
        for (int i = 0; i < y0.Length; i++) Assert.That(y0[i], Is.InRange(lo[i], hi[i]), $"output {i}");
    }

    [Test]
    public void BatchNormFoldedAndUnfolded()
    {
        var bytes = OnnxOpModels.BatchNorm(3).Bytes();
        var folded = OrtOracle.AssertMatches(bytes, batch: 3);
        Assert.That(OpTypes(folded).Count(t => t == "BatchNormalization"), Is.EqualTo(1), "the first BatchNorm has no layer to fold into");
        var kept = OrtOracle.AssertMatches(bytes, batch: 3, options: new OnnxImportOptions { FoldBatchNorm = false });
        var bn = kept.Graph.Nodes.Where(n => n.Op is BatchNormOp).ToArray();
        Assert.That(bn, Has.Length.EqualTo(2));
        Assert.That(((BatchNormOp)bn[1].Op).Momentum, Is.EqualTo(0.2f).Within(1e-6));
        Assert.That(bn[0].Inputs.Select(v => v.Kind), Is.EqualTo(new[] { ValueKind.Input, ValueKind.Parameter, ValueKind.Parameter, ValueKind.Buffer, ValueKind.Buffer }));
    }

    [Test]
    public void PyTorchFlattenPatternFolds()
    {
        // torch.flatten as exported by older PyTorch: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
        var b = new OnnxTestModel(opset: 11)
            .Input("x", 1, 2, 3, 3).Output("y").Rand("w", 7, 18)
            .Node("Relu", "x", "r")
            .Node("Shape", "r", "shape")
            .Node("Constant", [], ["zero"], ("value", Scalar64(0)))
            .Node("Gather", ["shape", "zero"], ["batch"], ("axis", 0L))
            .Node("Unsqueeze", ["batch"], ["batch1"], ("axes", new long[] { 0 }))
            .Node("Constant", [], ["minus1"], ("value_ints", new long[] { -1 }))
            .Node("Concat", ["batch1", "minus1"], ["target"], ("axis", 0L))
            .Node("Reshape", ["r", "target"], ["flat"])
            .Node("Gemm", ["flat", "w"], ["y"], ("transB", 1L));
        var m = OrtOracle.AssertMatches(b.Bytes());
        Assert.That(OpTypes(m), Is.EqualTo(new[] { "Relu", "Reshape", "Linear" }));
        // The folded batch dimension passes through, so the graph also runs on a batch of 3.
        var y = Executor.Forward(m.Graph, Tensor.Zeros(3, 2, 3, 3));
        Assert.That(y.Shape, Is.EqualTo(new[] { 3, 7 }));
    }

    [Test]
    public void LayoutOpsOnComputedValues()
    {
        // NHWC input transposed to NCHW (a real permutation), Unsqueeze / Squeeze (opset 13: axes as input),
        // Identity and Dropout pass-throughs, Reshape with 0 and -1.
        var b = OnnxOpModels.LayoutOps();
        var m = OrtOracle.AssertMatches(b.Bytes());
        Assert.That(OpTypes(m).Count(t => t == "Transpose"), Is.EqualTo(1), "a transpose of a unit dimension is a reshape");
    }

    [Test]
    public void ArithmeticBetweenComputedValues()
    {
        var b = OnnxOpModels.ArithmeticBetweenComputedValues();
        var m = OrtOracle.AssertMatches(b.Bytes());
        Assert.That(OpTypes(m), Does.Contain("Div").And.Contain("LeakyRelu"));
    }

    [Test]
    public void ConstantSubgraphsFold()
    {
        // Weights computed from constants (Slice, Cast, ConstantOfShape, Transpose, Mul, Unsqueeze, Squeeze) fold away.
        var b = new OnnxTestModel()
            .Input("x", 2, 3).Output("y")
            .Rand("big", 4, 6).Ints("st", 1, 0).Ints("en", 4, 3).Ints("axes", 0, 1).Ints("oshape", 3)
            .Node("Slice", ["big", "st", "en", "axes"], ["w"])            // [3, 3]
            .Node("Transpose", ["w"], ["wt"])
            .Node("ConstantOfShape", ["oshape"], ["ones"], ("value", FloatTensor(2f)))
            .Node("Cast", ["ones"], ["onesd"], ("to", 1L))
            .Node("Mul", ["wt", "onesd"], ["w2"])
            .Node("Unsqueeze", ["w2", "st"], ["w3"])
            .Node("Squeeze", ["w3"], ["w4"])
            .Node("MatMul", ["x", "w4"], ["y"]);
        var m = OrtOracle.AssertMatches(b.Bytes());
        Assert.That(OpTypes(m), Is.EqualTo(new[] { "Linear" }));
    }

    [Test]
    public void InitializerEncodingsAgree()
    {
        var w = new[] { 0.5f, -1.25f, 2f, 0.1f, 3f, -0.7f };
        var raw = new OnnxTestModel().Input("x", 1, 3).Output("y").Init("w", w, [3, 2]).Node("MatMul", ["x", "w"], ["y"]);
        var fl = new OnnxTestModel().Input("x", 1, 3).Output("y").Init("w", w, [3, 2], rawData: false).Node("MatMul", ["x", "w"], ["y"]);
        var db = new OnnxTestModel().Input("x", 1, 3).Output("y").Doubles("w", w.Select(v => (double)v).ToArray(), 3, 2).Node("MatMul", ["x", "w"], ["y"]);
        var x = Tensor.FromArray([1f, 2f, 3f], 1, 3);
        var expected = new[] { 0.5f + 4f + 9f, -1.25f + 0.2f - 2.1f };
        foreach (var model in new[] { raw, fl, db })
            Assert.That(Executor.Forward(OnnxModel.Load(model.Bytes()).Graph, x).ToArray(), Is.EqualTo(expected).Within(1e-5));
        OrtOracle.AssertMatches(raw.Bytes());
        OrtOracle.AssertMatches(fl.Bytes());
    }

    [Test]
    public void GraphValuesCarryOnnxNames()
    {
        var b = new OnnxTestModel().Input("img", 1, 4).Output("logits").Rand("W", 4, 3).Rand("B", 3)
            .Node("MatMul", ["img", "W"], ["mm"]).Node("Add", ["mm", "B"], ["logits"]);
        var m = OnnxModel.Load(b.Bytes());
        Assert.That(m.Graph.Inputs[0].Name, Is.EqualTo("img"));
        Assert.That(m.Graph.Outputs[0].Name, Is.EqualTo("logits"));
        Assert.That(m.Graph.Parameters.Select(p => p.Name), Is.EquivalentTo(new[] { "W", "B" }));
        Assert.That(m.Outputs[0].Shape, Is.EqualTo(new[] { 1, 3 }));
        Assert.That(m.ProducerName, Is.EqualTo("engine-tests"));
    }

    [Test]
    public void BiasIsNotFusedWhenTheProductIsReadTwice()
    {
        var b = new OnnxTestModel().Input("x", 1, 4).Output("y").Output("mm").Rand("W", 4, 3).Rand("B", 3)
            .Node("MatMul", ["x", "W"], ["mm"]).Node("Add", ["mm", "B"], ["y"]);
        var m = OrtOracle.AssertMatches(b.Bytes());
        Assert.That(OpTypes(m), Is.EqualTo(new[] { "Linear", "Add" }));
    }

    [Test]
    public void ImportedGraphIsDifferentiable()
    {
        var b = new OnnxTestModel().Input("x", 2, 3).Output("y").Rand("W", 3, 2).Rand("B", 2)
            .Node("Gemm", ["x", "W", "B"], ["h"]).Node("Tanh", "h", "y");
        var m = OnnxModel.Load(b.Bytes());
        var w = m.Graph.Parameters.Single(p => p.Name == "W").Data!;
        w.RequiresGrad_();
        var y = Executor.Forward(m.Graph, Tensor.FromArray([0.1f, 0.2f, 0.3f, -0.4f, 0.5f, -0.6f], 2, 3));
        y.Sum().Backward();
        Assert.That(w.Grad, Is.Not.Null);
        Assert.That(w.Grad!.Shape, Is.EqualTo(new[] { 2, 3 }), "Gemm's B [in, out] is stored as a Linear weight [out, in]");
    }

    internal static TensorProto Scalar64(long v)
    {
        var t = new TensorProto { DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Int64Data.Add(v);
        return t;
    }

    internal static TensorProto FloatTensor(float v)
    {
        var t = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.Add(1);
        t.FloatData.Add(v);
        return t;
    }
}
