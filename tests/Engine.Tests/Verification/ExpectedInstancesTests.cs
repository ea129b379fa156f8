using Engine.Verification;
using NUnit.Framework;

namespace Engine.Tests.Verification;

[TestFixture]
public class ExpectedInstancesTests
{
    [Explicit("the whole list; benchmarks/verify_expected.sh runs it from the CLI")]
    [Test]
    public void AllExpected()
    {
        foreach (var (onnx, vnnlib, t, expected) in VerifyInstances.Expected())
        {
            var r = VerifyInstances.Run(onnx, vnnlib, t);
            TestContext.Out.WriteLine($"{onnx} {vnnlib} expected {expected} got {r.VerdictText} in {r.Elapsed.TotalSeconds:0.00}s, {r.Boxes} domains: {r.Detail}");
            Assert.That(r.VerdictText == "holds" && expected == "violated" || r.VerdictText == "violated" && expected == "holds", Is.False);
        }
    }
}

[TestFixture]
public class FastInstancesTests
{
    // Every test/ instance and every ACAS Xu one but 3_3 prop_2 (3-10 s; AllExpected runs it): a few seconds at most
    // each here, with 60 s limits.
    private static readonly (string, string, string)[] Fast =
    [
        ("test/test_nano.onnx", "test/test_nano.vnnlib", "holds"),
        ("test/test_tiny.onnx", "test/test_tiny.vnnlib", "holds"),
        ("test/test_small.onnx", "test/test_small.vnnlib", "holds"),
        ("test/test_sat.onnx", "test/test_prop.vnnlib", "violated"),
        ("test/test_unsat.onnx", "test/test_prop.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_1_batch_2000.onnx", "acasxu/prop_1.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_9_batch_2000.onnx", "acasxu/prop_1.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_3_3_batch_2000.onnx", "acasxu/prop_1.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_1_batch_2000.onnx", "acasxu/prop_2.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_9_batch_2000.onnx", "acasxu/prop_2.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_1_batch_2000.onnx", "acasxu/prop_3.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_9_batch_2000.onnx", "acasxu/prop_3.vnnlib", "violated"),
        ("acasxu/ACASXU_run2a_3_3_batch_2000.onnx", "acasxu/prop_3.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_1_batch_2000.onnx", "acasxu/prop_4.vnnlib", "holds"),
        ("acasxu/ACASXU_run2a_1_9_batch_2000.onnx", "acasxu/prop_4.vnnlib", "violated"),
        ("acasxu/ACASXU_run2a_3_3_batch_2000.onnx", "acasxu/prop_4.vnnlib", "holds"),
    ];

    [Test]
    public void FastInstancesAreDecidedCorrectly()
    {
        var expected = VerifyInstances.Expected().ToDictionary(e => (e.Onnx, e.Vnnlib), e => e.Expected);
        foreach (var (onnx, vnnlib, want) in Fast)
        {
            Assert.That(expected[(onnx, vnnlib)], Is.EqualTo(want), "the list in this test disagrees with expected.csv");
            var r = VerifyInstances.Run(onnx, vnnlib, 60);
            TestContext.Out.WriteLine($"{onnx} {vnnlib}: {r.VerdictText} in {r.Elapsed.TotalSeconds:0.00}s ({r.Detail})");
            Assert.That(r.VerdictText, Is.EqualTo(want), $"{onnx} {vnnlib}: {r.Detail}");
        }
    }

    [Test]
    public void ShortTimeoutsNeverGiveAWrongVerdict()
    {
        // Every instance of expected.csv with a tiny limit: undecided is fine, the wrong answer never is.
        foreach (var (onnx, vnnlib, _, want) in VerifyInstances.Expected())
        {
            var r = VerifyInstances.Run(onnx, vnnlib, 0.3);
            Assert.That(r.Verdict == Verdict.Holds && want == "violated" || r.Verdict == Verdict.Violated && want == "holds", Is.False,
                $"{onnx} {vnnlib}: {r.VerdictText}, expected {want}");
        }
    }

    [Test]
    public void CounterexampleIsCheckedAndItsFileParses()
    {
        var (m, shape, p) = VerifyInstances.Load("acasxu/ACASXU_run2a_1_9_batch_2000.onnx", "acasxu/prop_3.vnnlib");
        var r = Verifier.Verify(m.Graph, shape, p, new VerifierOptions { Timeout = TimeSpan.FromSeconds(20) });
        Assert.That(r.Verdict, Is.EqualTo(Verdict.Violated));
        var text = VnnResultFile.Format(r.Verdict, r.Counterexample);
        var (status, x, y) = VnnResultFile.Parse(text);
        Assert.That(status, Is.EqualTo("sat"));
        Assert.That(x, Has.Length.EqualTo(5));
        Assert.That(y, Has.Length.EqualTo(5));
        var c = p.Cases[0];
        Assert.That(c.Contains(x), Is.True, "counterexample outside the input box");
        // Re-run the model on the parsed point: float32 and float64 outputs both satisfy the unsafe condition.
        float[] y32;
        using (new Engine.Autograd.NoGrad())
            y32 = Engine.Graph.Executor.Forward(m.Graph, Engine.Tensors.Tensor.FromArray(x.Select(v => (float)v).ToArray(), [1, .. shape])).ToArray();
        Assert.That(y32.Select(v => (double)v).ToArray(), Is.EqualTo(y));
        Assert.That(c.IsUnsafe(y), Is.True);
        var g = RigorousNetwork.TryCreate(m.Graph, shape, out _)!;
        Assert.That(c.IsUnsafe(g.Evaluate(x)), Is.True);
    }

    [Test]
    public void CheckCandidateRejectsSafeAndOutsidePoints()
    {
        var (m, shape, p) = VerifyInstances.Load("test/test_sat.onnx", "test/test_prop.vnnlib");
        var c = p.Cases[0];
        var r = Verifier.Verify(m.Graph, shape, p, new VerifierOptions { Timeout = TimeSpan.FromSeconds(20) });
        Assert.That(r.Verdict, Is.EqualTo(Verdict.Violated));
        var x = r.Counterexample!.X.Select(v => (float)v).ToArray();
        Assert.That(Verifier.CheckCandidate(m.Graph, shape, c, x), Is.Not.Null);
        // Just outside the box: rejected whatever the output.
        var outside = (float[])x.Clone();
        outside[0] = (float)(c.InputUpper[0] + 1);
        Assert.That(Verifier.CheckCandidate(m.Graph, shape, c, outside), Is.Null);
        // A property nobody can violate: the same point is not a counterexample.
        var never = new VerificationCase(c.InputLower, c.InputUpper, [new UnsafeConjunction(new double[1, c.Unsafe[0].Outputs], [-1])]);
        Assert.That(Verifier.CheckCandidate(m.Graph, shape, never, x), Is.Null);
    }
}

[TestFixture]
public class InstanceListTests
{
    private static readonly string[] Csv =
    [
        "onnx,vnnlib,timeout_s,expected",
        "a.onnx,p1.vnnlib,60,holds",
        "b.onnx,p2.vnnlib,116,violated",
        "",
        "c.onnx,p3.vnnlib,5",
        "d.onnx,p4.vnnlib,7.5,Holds",
        "e.onnx,p5.vnnlib,10,",
    ];

    [Test]
    public void ParsesHeaderExpectedAndBlankLines()
    {
        var l = InstanceList.Parse(Csv);
        Assert.That(l.Select(i => i.Onnx), Is.EqualTo(new[] { "a.onnx", "b.onnx", "c.onnx", "d.onnx", "e.onnx" }));
        Assert.That(l.Select(i => i.Expected), Is.EqualTo(new string?[] { "holds", "violated", null, "holds", null }));
        Assert.That(l[3].TimeoutSeconds, Is.EqualTo(7.5));
        Assert.That(l.Select(i => i.Index), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        // Without a header too (VNN-COMP's instances.csv).
        Assert.That(InstanceList.Parse(Csv.Skip(1)), Has.Count.EqualTo(5));
    }

    [Test]
    public void ShardsPartitionTheList()
    {
        var l = InstanceList.Parse(Csv);
        var shards = Enumerable.Range(0, 3).Select(i => InstanceList.Shard(l, i, 3)).ToArray();
        Assert.That(shards[0].Select(i => i.Index), Is.EqualTo(new[] { 0, 3 }));
        Assert.That(shards[1].Select(i => i.Index), Is.EqualTo(new[] { 1, 4 }));
        Assert.That(shards[2].Select(i => i.Index), Is.EqualTo(new[] { 2 }));
        Assert.That(shards.SelectMany(s => s).Select(i => i.Index).Order(), Is.EqualTo(Enumerable.Range(0, 5)));
        Assert.That(InstanceList.ParseShard("2/5"), Is.EqualTo((2, 5)));
        Assert.Throws<ArgumentException>(() => InstanceList.ParseShard("5/5"));
        Assert.Throws<ArgumentException>(() => InstanceList.ParseShard("x"));
        Assert.Throws<ArgumentOutOfRangeException>(() => InstanceList.Shard(l, 3, 3));
    }

    [Test]
    public void BadLinesAreErrors()
    {
        Assert.Throws<FormatException>(() => InstanceList.Parse(["a.onnx,p.vnnlib,60", "b.onnx,p.vnnlib"]));
        Assert.Throws<FormatException>(() => InstanceList.Parse(["a.onnx,p.vnnlib,60", "b.onnx,p.vnnlib,-3"]));
    }

    [Test]
    public void ResultFileStatusesAndBadText()
    {
        Assert.That(VnnResultFile.Format(Verdict.Holds, null), Is.EqualTo("unsat\n"));
        Assert.That(VnnResultFile.Format(Verdict.Timeout, null), Is.EqualTo("timeout\n"));
        Assert.That(VnnResultFile.Format(Verdict.Unknown, null), Is.EqualTo("unknown\n"));
        Assert.That(VnnResultFile.Parse("unsat\n").Status, Is.EqualTo("unsat"));
        Assert.Throws<FormatException>(() => VnnResultFile.Parse("maybe\n"));
        Assert.Throws<FormatException>(() => VnnResultFile.Parse("sat\n((X_0 abc))"));
        Assert.Throws<FormatException>(() => VnnResultFile.Parse("sat\n((X_1 0.5))"));
    }
}
