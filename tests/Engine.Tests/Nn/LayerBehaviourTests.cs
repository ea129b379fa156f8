using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Nn;

public class LayerBehaviourTests
{
    [Test]
    public void LinearAndConvHavePyTorchShapesNamesAndInitBounds()
    {
        var lin = new Linear(50, 20, generator: new Generator(1));
        Assert.That(lin.NamedParameters().Select(p => (p.Name, p.Tensor.Shape)), Is.EqualTo(new[] { ("weight", new[] { 20, 50 }), ("bias", new[] { 20 }) }));
        float bound = 1 / MathF.Sqrt(50);
        Assert.That(lin.Weight.ToArray().Max(MathF.Abs), Is.LessThanOrEqualTo(bound));
        Assert.That(lin.Bias!.ToArray().Max(MathF.Abs), Is.LessThanOrEqualTo(bound));
        Assert.That(new Linear(3, 2, bias: false).Parameters().Count(), Is.EqualTo(1));

        var conv = new Conv2d(4, 6, 3, stride: 2, padding: 1, groups: 2, generator: new Generator(2));
        Assert.That(conv.Weight.Shape, Is.EqualTo(new[] { 6, 2, 3, 3 }));
        Assert.That(conv.Weight.ToArray().Max(MathF.Abs), Is.LessThanOrEqualTo(1 / MathF.Sqrt(18)));
        var y = conv.Forward(Tensor.Ones(2, 4, 7, 7));
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 6, 4, 4 }));
        Assert.Throws<ArgumentException>(() => new Conv2d(3, 4, 3, groups: 2));
    }

    [Test]
    public void LinearComputesXWtPlusB()
    {
        var lin = new Linear(2, 2);
        lin.Weight.CopyFrom(Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2));
        lin.Bias!.CopyFrom(Tensor.FromArray([0.5f, -0.5f], 2));
        Assert.That(lin.Forward(Tensor.FromArray([1f, 1f], 1, 2)).ToArray(), Is.EqualTo(new[] { 3.5f, 6.5f }));
        var ex = Assert.Throws<ArgumentException>(() => lin.Forward(Tensor.Ones(1, 3)));
        Assert.That(ex!.Message, Does.Contain("[1, 3]"));
    }

    private static readonly float[] X = [1f, 2f, 3f, 6f, -1f, 0f, 5f, 4f]; // [4, 2]

    [Test]
    public void BatchNorm1dTrainNormalisesWithBatchStatsAndUpdatesRunningStats()
    {
        var bn = new BatchNorm1d(2);
        bn.Weight.CopyFrom(Tensor.FromArray([2f, 1f], 2));
        bn.Bias.CopyFrom(Tensor.FromArray([0f, 1f], 2));
        var y = bn.Forward(Tensor.FromArray(X, 4, 2)).ToArray();
        for (int c = 0; c < 2; c++)
        {
            var col = Enumerable.Range(0, 4).Select(i => (double)X[i * 2 + c]).ToArray();
            double mean = col.Average();
            double varBiased = col.Select(v => (v - mean) * (v - mean)).Average();
            double varUnbiased = varBiased * 4 / 3;
            double w = c == 0 ? 2 : 1, b = c == 0 ? 0 : 1;
            for (int i = 0; i < 4; i++)
                Assert.That(y[i * 2 + c], Is.EqualTo((col[i] - mean) / Math.Sqrt(varBiased + 1e-5) * w + b).Within(1e-5), $"y[{i},{c}]");
            Assert.That(bn.RunningMean!.ToArray()[c], Is.EqualTo(0.1 * mean).Within(1e-6));
            Assert.That(bn.RunningVar!.ToArray()[c], Is.EqualTo(0.9 + 0.1 * varUnbiased).Within(1e-5));
        }
        Assert.That(bn.NumBatchesTracked!.Item(), Is.EqualTo(1f));
    }

    [Test]
    public void BatchNormEvalUsesRunningStatsAndDoesNotUpdateThem()
    {
        var bn = new BatchNorm1d(2);
        bn.RunningMean!.CopyFrom(Tensor.FromArray([1f, -2f], 2));
        bn.RunningVar!.CopyFrom(Tensor.FromArray([4f, 0.25f], 2));
        bn.Bias.CopyFrom(Tensor.FromArray([0.5f, 0f], 2));
        bn.Eval();
        var y = bn.Forward(Tensor.FromArray(X, 4, 2)).ToArray();
        for (int i = 0; i < 4; i++)
        {
            Assert.That(y[i * 2], Is.EqualTo((X[i * 2] - 1) / Math.Sqrt(4 + 1e-5) + 0.5).Within(1e-5));
            Assert.That(y[i * 2 + 1], Is.EqualTo((X[i * 2 + 1] + 2) / Math.Sqrt(0.25 + 1e-5)).Within(1e-4));
        }
        Assert.That(bn.RunningMean.ToArray(), Is.EqualTo(new[] { 1f, -2f }));
        Assert.That(bn.NumBatchesTracked!.Item(), Is.EqualTo(0f));
    }

    [Test]
    public void BatchNorm2dRunningStatsOverSeveralSteps()
    {
        var bn = new BatchNorm2d(3, momentum: 0.3f);
        var g = new Generator(3);
        double[] rm = [0, 0, 0], rv = [1, 1, 1];
        for (int step = 0; step < 3; step++)
        {
            var x = Tensor.Normal([2, 3, 2, 3], step, 1 + step, g);
            bn.Forward(x);
            var a = x.ToArray();
            for (int c = 0; c < 3; c++)
            {
                var vals = new List<double>();
                for (int n = 0; n < 2; n++) for (int k = 0; k < 6; k++) vals.Add(a[(n * 3 + c) * 6 + k]);
                double m = vals.Average(), v = vals.Select(z => (z - m) * (z - m)).Sum() / (vals.Count - 1);
                rm[c] = 0.7 * rm[c] + 0.3 * m; rv[c] = 0.7 * rv[c] + 0.3 * v;
            }
        }
        Assert.That(bn.RunningMean!.ToArray().Select(v => (double)v), Is.EqualTo(rm).Within(1e-5));
        Assert.That(bn.RunningVar!.ToArray().Select(v => (double)v), Is.EqualTo(rv).Within(1e-4));
        Assert.That(bn.StateDict().Keys, Is.EqualTo(new[] { "weight", "bias", "running_mean", "running_var", "num_batches_tracked" }));
    }

    [Test]
    public void SubModuleInEvalStaysInEvalInsideATrainingModel()
    {
        var bn = new BatchNorm1d(2);
        var drop = new Dropout(0.9f, new Generator(11));
        var net = new Sequential(bn, drop);
        bn.Eval();
        drop.Eval();
        Assert.That(net.Training, Is.True);
        var x = Tensor.FromArray(X, 4, 2);
        var y = net.Forward(x).ToArray();
        Assert.That(bn.RunningMean!.ToArray(), Is.EqualTo(new[] { 0f, 0f }));
        for (int i = 0; i < X.Length; i++) Assert.That(y[i], Is.EqualTo(X[i] / Math.Sqrt(1 + 1e-5)).Within(1e-5));
        net.Train();
        net.Forward(x);
        Assert.That(bn.NumBatchesTracked!.Item(), Is.EqualTo(1f));
    }

    [Test]
    public void BatchNormRejectsBadInputs()
    {
        Assert.That(Assert.Throws<ArgumentException>(() => new BatchNorm2d(3).Forward(Tensor.Ones(4, 3)))!.Message, Does.Contain("rank 4"));
        Assert.That(Assert.Throws<ArgumentException>(() => new BatchNorm1d(3).Forward(Tensor.Ones(4, 2)))!.Message, Does.Contain("[3]"));
        Assert.That(Assert.Throws<ArgumentException>(() => new BatchNorm1d(3).Forward(Tensor.Ones(1, 3)))!.Message, Does.Contain("more than 1 value"));
        var frozen = new BatchNorm1d(3, affine: false, trackRunningStats: false);
        Assert.That(frozen.Parameters(), Is.Empty);
        Assert.That(frozen.StateDict(), Is.Empty);
        frozen.Eval();
        var y = frozen.Forward(Tensor.FromArray([1f, 2f, 3f, 3f, 2f, 1f], 2, 3)).ToArray();
        Assert.That(y[0], Is.EqualTo(-1f).Within(1e-3));   // batch statistics even in eval without running stats
    }

    [Test]
    public void DropoutZeroesAboutPAndScalesSurvivors()
    {
        var d = new Dropout(0.3f, new Generator(4));
        var y = d.Forward(Tensor.Ones(200_000)).ToArray();
        double zeros = y.Count(v => v == 0) / (double)y.Length;
        Assert.That(zeros, Is.EqualTo(0.3).Within(0.005));
        Assert.That(y.Where(v => v != 0), Is.All.EqualTo(1f / 0.7f).Within(1e-6));
        Assert.That(y.Average(), Is.EqualTo(1.0).Within(0.01));
        d.Eval();
        var x = Tensor.Normal([5, 7], 0, 1, new Generator(5));
        Assert.That(d.Forward(x).ToArray(), Is.EqualTo(x.ToArray()));
        Assert.That(new Dropout(1f).Forward(Tensor.Ones(10)).ToArray(), Is.All.EqualTo(0f));
    }

    [Test]
    public void DropoutMasksAreReproducibleFromTheSeed()
    {
        var a = new Dropout(0.5f, new Generator(6)).Forward(Tensor.Ones(1000)).ToArray();
        var b = new Dropout(0.5f, new Generator(6)).Forward(Tensor.Ones(1000)).ToArray();
        var d = new Dropout(0.5f, new Generator(6));
        d.Forward(Tensor.Ones(1000));
        var c = d.Forward(Tensor.Ones(1000)).ToArray();
        Assert.That(a, Is.EqualTo(b));
        Assert.That(c, Is.Not.EqualTo(a));
    }

    [Test]
    public void PoolingAndActivationModulesComputeTheRightValues()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 16).Select(i => (float)i).ToArray(), 1, 1, 4, 4);
        Assert.That(new MaxPool2d(2).Forward(x).ToArray(), Is.EqualTo(new[] { 5f, 7f, 13f, 15f }));
        Assert.That(new AvgPool2d(2).Forward(x).ToArray(), Is.EqualTo(new[] { 2.5f, 4.5f, 10.5f, 12.5f }));
        var v = Tensor.FromArray([-2f, 0.5f], 2);
        Assert.That(new Sequential(new ReLU()).Forward(v).ToArray(), Is.EqualTo(new[] { 0f, 0.5f }));
        Assert.That(new LeakyReLU(0.1f).Forward(v).ToArray()[0], Is.EqualTo(-0.2f).Within(1e-7));
        Assert.That(new Sigmoid().Forward(v).ToArray()[1], Is.EqualTo(1 / (1 + Math.Exp(-0.5))).Within(1e-6));
        Assert.That(new Tanh().Forward(v).ToArray()[0], Is.EqualTo(Math.Tanh(-2)).Within(1e-6));
        var lin = new Linear(2, 2);
        lin.Weight.Fill_(0); lin.Bias!.Fill_(1);
        Assert.That(new Residual(lin).Forward(Tensor.FromArray([3f, 4f], 1, 2)).ToArray(), Is.EqualTo(new[] { 4f, 5f }));
    }

    [Test]
    public void ModelGraphIsTheIrWithNamedInitializers()
    {
        var net = new Sequential(new Conv2d(1, 2, 3), new BatchNorm2d(2), new ReLU(), new Flatten(), new Linear(8, 3));
        var g = net.Graph;
        Assert.That(g.Nodes.Select(n => n.Op.Type), Is.EqualTo(new[] { "Conv", "BatchNormalization", "Relu", "Flatten", "Linear" }));
        Assert.That(g["1.running_mean"].Kind, Is.EqualTo(ValueKind.Buffer));
        Assert.That(g["4.weight"].Data, Is.SameAs(((Linear)net[4]).Weight));
        Assert.That(g.Nodes[0].Inputs.Select(v => v.Name), Is.EqualTo(new[] { "input", "0.weight", "0.bias" }));
        var y = Executor.Forward(g, Tensor.Ones(2, 1, 4, 4), training: true);
        Assert.That(y.Shape, Is.EqualTo(new[] { 2, 3 }));
    }
}
