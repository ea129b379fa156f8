using Engine.Bounds;
using Engine.Nn;
using Engine.Tensors;
using Engine.Tests.Shape;
using NUnit.Framework;
using static Engine.Tests.BoundProp.BoundTestNets;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

public class MarginSpecFoldTests
{
    private static (float[] Lower, float[] Upper, float[][] Grads) Run(Module net, Tensor x, Spec spec, BoundMethod method)
    {
        net.ZeroGrad();
        var r = method == BoundMethod.CrownIbp
            ? B.ComputeMixed(net.Graph, x, Perturbation.LInf(0.05f, 0f, 1f), 0.5f, spec)
            : B.Compute(net, x, Perturbation.LInf(0.05f, 0f, 1f), method, spec);
        (r.Lower.Square().Sum() + r.Upper.Sum()).Backward();
        return (r.Lower.ToArray(), r.Upper.ToArray(), net.Parameters().Select(p => p.Grad!.ToArray()).ToArray());
    }

    [Test]
    public void MarginRowsGatheredGiveTheProductsBoundsAndGradients([Values(BoundMethod.Ibp, BoundMethod.CrownIbp)] BoundMethod method)
    {
        // The last layer folded with a margin spec gathers rows y and j of W (Spec.Margins keeps the labels); the same
        // C wrapped in a plain Spec goes through C·W. Bounds must agree bit for bit, gradients to rounding.
        var net = Mlp(5, [12, 9, 7]);
        var rng = new Random(6);
        var xs = new float[4 * 12];
        for (int i = 0; i < xs.Length; i++) xs[i] = (float)rng.NextDouble();
        var x = Tensor.FromArray(xs, 4, 12);
        int[] labels = [3, 0, 6, 3];
        var margins = Spec.Margins(labels, 7);
        var gathered = Run(net, x, margins, method);
        var product = Run(net, x, new Spec(margins.C), method);
        Assert.That(gathered.Lower, Is.EqualTo(product.Lower), "lower");
        Assert.That(gathered.Upper, Is.EqualTo(product.Upper), "upper");
        for (int i = 0; i < product.Grads.Length; i++)
            TestData.Close(gathered.Grads[i], product.Grads[i], 1e-5, 1e-5, $"gradient of parameter {i}");

        // A margin spec whose C was changed after it was made is bounded as its C says, not as its labels say.
        var edited = Spec.Margins(labels, 7);
        edited.C.AsSpan()[5] = 0.5f;
        var asEdited = Run(net, x, edited, method);
        var plainEdited = Run(net, x, new Spec(edited.C), method);
        Assert.That(asEdited.Lower, Is.EqualTo(plainEdited.Lower), "edited C: lower");
        Assert.That(asEdited.Lower, Is.Not.EqualTo(gathered.Lower), "the edit changed the bounds");
    }
}
