using Engine.Autograd;
using Engine.Bounds;
using NUnit.Framework;

namespace Engine.Tests.BoundProp;

using B = Engine.Bounds.Bounds;

public partial class FastBoundsTests
{
    /// <summary>
    /// Above four examples the affine layers run in lane layout (ChainLanes.cs) and, for IBP, values stay in lanes
    /// between layers: every case (element-wise layers and a convolution last included, so layouts switch) against
    /// the generic path at batch sizes that fill one, two and three lane groups partly. CROWN and CROWN-IBP agree to
    /// rounding; IBP to 1e-3 of the bounds' scale (its first Linear bounds the rounding magnitude by Cauchy–Schwarz).
    /// </summary>
    [Test]
    public void LaneBatchesMatchTheGenericPath([Values(5, 17, 33)] int batch)
    {
        using var _ = new NoGrad();
        foreach (var c in Cases(batch))
            foreach (var set in Sets)
            {
                var p = Scaled(set, c.Eps);
                var x = Input(c.InShape, batch, batch);
                foreach (var m in Methods)
                    foreach (int variant in new[] { 0, 2 })
                    {
                        var spec = variant == 2 ? null : SpecFor(variant, c.Graph, x, batch);
                        string what = $"{c.Name} batch {batch} {p} {m} spec {variant}";
                        var fast = Fast(c.Graph, x, p, m, spec, BoundOptions.Default, what);
                        var generic = B.Compute(c.Graph, x, p, m, spec, new BoundOptions { FastPath = false });
                        if (m != BoundMethod.Ibp) { AssertSame(fast, generic, what); continue; }
                        var fl = fast.Lower.ToArray(); var gl = generic.Lower.ToArray(); var fu = fast.Upper.ToArray(); var gu = generic.Upper.ToArray();
                        double scale = Math.Max(1e-3, gl.Concat(gu).Max(v => Math.Abs(v)));
                        for (int i = 0; i < fl.Length; i++)
                        {
                            Assert.That(Math.Abs(fl[i] - gl[i]), Is.LessThanOrEqualTo(1e-3 * scale), $"{what}: lower[{i}] fast {fl[i]} generic {gl[i]}");
                            Assert.That(Math.Abs(fu[i] - gu[i]), Is.LessThanOrEqualTo(1e-3 * scale), $"{what}: upper[{i}] fast {fu[i]} generic {gu[i]}");
                        }
                    }
            }
    }
}
