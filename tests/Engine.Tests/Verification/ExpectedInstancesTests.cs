using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Verification;

[TestFixture]
public class ExpectedInstancesTests
{
    [Explicit("the whole list; scripts/verify_expected.sh runs it from the CLI")]
    [Test]
    public void AllExpected()
    {
        foreach (var (onnx, vnnlib, t, expected) in VerifyInstances.Expected())
        {
            var r = VerifyInstances.Run(onnx, vnnlib, t);
            TestContext.Out.WriteLine($"{onnx} {vnnlib} expected {expected} got {r.VerdictText} in {r.Elapsed.TotalSeconds:0.00}s boxes {r.Boxes}: {r.Detail}");
            Assert.That(r.VerdictText == "holds" && expected == "violated" || r.VerdictText == "violated" && expected == "holds", Is.False);
        }
    }
}
