using NUnit.Framework;
using Engine.Onnx;
using Engine.Tests.Onnx;
using VnnlibParser = Engine.Onnx.Vnnlib;

namespace Engine.Tests.Vnnlib;

/// <summary>VNNLIB parsing: the VNN-COMP 2021 samples, every supported construct, and malformed input.</summary>
[TestFixture]
public class VnnlibParserTests
{
    private static VnnlibProperty P(string text, int? nIn = null, int? nOut = null) => VnnlibParser.Parse(new StringReader(text), nIn, nOut, "t.vnnlib");

    private const string Decl2x2 = "(declare-const X_0 Real)(declare-const X_1 Real)(declare-const Y_0 Real)(declare-const Y_1 Real)\n";
    private const string Box2 = "(assert (<= X_0 1))(assert (>= X_0 -1))(assert (<= X_1 0.5))(assert (>= X_1 0))\n";

    private static IEnumerable<string> Samples() => VnnCompData.Files("*.vnnlib");

    [TestCaseSource(nameof(Samples))]
    public void SampleParses(string relative)
    {
        var p = VnnlibParser.Parse(Path.Combine(VnnCompData.RequireRoot(), relative));
        Assert.That(p.Cases, Is.Not.Empty);
        foreach (var c in p.Cases)
        {
            Assert.That(c.InputLower, Has.Length.EqualTo(p.NumInputs));
            for (int i = 0; i < p.NumInputs; i++) Assert.That(c.InputLower[i], Is.LessThanOrEqualTo(c.InputUpper[i]));
            Assert.That(c.Unsafe, Is.Not.Empty);
        }
    }

    [Test]
    public void SamplesAreFound()
    {
        VnnCompData.RequireRoot();
        Assert.That(Samples().Count(), Is.GreaterThanOrEqualTo(8));
    }

    [Test]
    public void AcasXuProperty1()
    {
        var p = VnnlibParser.Parse(Path.Combine(VnnCompData.RequireRoot(), "acasxu", "prop_1.vnnlib"), 5, 5);
        Assert.That(p.NumInputs, Is.EqualTo(5));
        Assert.That(p.NumOutputs, Is.EqualTo(5));
        Assert.That(p.InputLower, Is.EqualTo(new[] { 0.6, -0.5, -0.5, 0.45, -0.5 }));
        Assert.That(p.InputUpper, Is.EqualTo(new[] { 0.679857769, 0.5, 0.5, 0.5, -0.45 }));
        var u = p.Unsafe.Single();
        Assert.That(u.Rows, Is.EqualTo(1));
        // Y_0 >= 3.991125645861615  <=>  -Y_0 <= -3.991125645861615
        Assert.That(Row(u, 0), Is.EqualTo(new[] { -1.0, 0, 0, 0, 0 }));
        Assert.That(u.D[0], Is.EqualTo(-3.991125645861615));
    }

    [Test]
    public void AcasXuProperty3IsAConjunctionOfMargins()
    {
        var p = VnnlibParser.Parse(Path.Combine(VnnCompData.RequireRoot(), "test", "test_prop.vnnlib"));
        var u = p.Unsafe.Single();
        Assert.That(u.Rows, Is.EqualTo(4));
        for (int j = 1; j <= 4; j++)
        {
            var expected = new double[5];
            expected[0] = 1; expected[j] = -1;
            Assert.That(Row(u, j - 1), Is.EqualTo(expected));
            Assert.That(u.D[j - 1], Is.EqualTo(0));
        }
        Assert.That(p.InputLower[0], Is.EqualTo(-0.30353115613746867));
        Assert.That(p.InputUpper[2], Is.EqualTo(0.49999999998567607));
        Assert.That(u.IsSatisfiedBy([0, 1, 2, 3, 4]), Is.True);
        Assert.That(u.IsSatisfiedBy([2, 1, 2, 3, 4]), Is.False);
    }

    [Test]
    public void TopLevelOrWithInputsInside()
    {
        var p = VnnlibParser.Parse(Path.Combine(VnnCompData.RequireRoot(), "test", "test_small.vnnlib"));
        Assert.That(p.InputLower, Is.EqualTo(new[] { -1.0 }));
        Assert.That(p.InputUpper, Is.EqualTo(new[] { 1.0 }));
        Assert.That(Row(p.Unsafe[0], 0), Is.EqualTo(new[] { -1.0 }));
        Assert.That(p.Unsafe[0].D[0], Is.EqualTo(-100));
    }

    [Test]
    public void LinearTermsAndNumberFormats()
    {
        var p = P(Decl2x2 + Box2 + "; a comment (with parens\n" +
                  "(assert (<= (+ (* 2.0 Y_0) Y_1 (- 1.5e1)) (- Y_1 (* -3 Y_0) (/ 1 4))))\n" +
                  "(assert (>= (* 0.5 (- Y_0)) -2E-1))");
        var u = p.Unsafe.Single();
        // 2 Y0 + Y1 - 15 <= Y1 + 3 Y0 - 0.25  <=>  -Y0 <= 14.75
        Assert.That(Row(u, 0), Is.EqualTo(new[] { -1.0, 0.0 }));
        Assert.That(u.D[0], Is.EqualTo(14.75));
        // -0.5 Y0 >= -0.2  <=>  0.5 Y0 <= 0.2
        Assert.That(Row(u, 1), Is.EqualTo(new[] { 0.5, 0.0 }));
        Assert.That(u.D[1], Is.EqualTo(0.2).Within(1e-15));
        Assert.That(p.InputLower, Is.EqualTo(new[] { -1.0, 0.0 }));
    }

    [Test]
    public void StrictAndEqualityConstraints()
    {
        var p = P(Decl2x2 + Box2 + "(assert (< Y_0 Y_1))(assert (> Y_0 -3))(assert (= Y_1 2))");
        var u = p.Unsafe.Single();
        Assert.That(u.Rows, Is.EqualTo(4));
        Assert.That(u.IsSatisfiedBy([1, 2]), Is.True);
        Assert.That(u.IsSatisfiedBy([2, 2]), Is.True, "strict < is read as <=");
        Assert.That(u.IsSatisfiedBy([1, 2.5]), Is.False);
        Assert.That(u.IsSatisfiedBy([-4, 2]), Is.False);
    }

    [Test]
    public void OrOfAndsGivesOneConjunctionPerBranch()
    {
        var p = P(Decl2x2 + Box2 + "(assert (or (and (>= Y_0 Y_1) (>= Y_0 0)) (and (<= Y_1 -1)) (>= Y_1 5)))");
        Assert.That(p.Cases, Has.Count.EqualTo(1));
        Assert.That(p.Unsafe.Select(c => c.Rows), Is.EqualTo(new[] { 2, 1, 1 }));
        Assert.That(p.Cases[0].IsUnsafe([0, 6]), Is.True);
        Assert.That(p.Cases[0].IsUnsafe([-1, 0]), Is.False);
    }

    [Test]
    public void AndOfOrsMultipliesOut()
    {
        var p = P(Decl2x2 + Box2 + "(assert (or (<= Y_0 0) (<= Y_1 0)))(assert (or (>= Y_0 -1) (>= Y_1 -1)))");
        Assert.That(p.Unsafe, Has.Count.EqualTo(4));
        Assert.That(p.Unsafe.All(c => c.Rows == 2));
    }

    [Test]
    public void InputBoxesInsideOrBecomeSeparateCases()
    {
        var p = P(Decl2x2 + "(assert (<= X_1 1))(assert (>= X_1 0))" +
                  "(assert (or (and (>= X_0 0) (<= X_0 1) (>= Y_0 1)) (and (>= X_0 2) (<= X_0 3) (<= Y_1 0)) (and (>= X_0 0) (<= X_0 1) (<= Y_1 -5))))");
        Assert.That(p.Cases, Has.Count.EqualTo(2));
        Assert.That(p.Cases[0].InputLower, Is.EqualTo(new[] { 0.0, 0.0 }));
        Assert.That(p.Cases[0].Unsafe, Has.Count.EqualTo(2));
        Assert.That(p.Cases[1].InputLower, Is.EqualTo(new[] { 2.0, 0.0 }));
        Assert.That(p.Cases[1].ContainsInput([2.5, 0.5]), Is.True);
        Assert.Throws<InvalidOperationException>(() => _ = p.InputLower);
    }

    [Test]
    public void EmptyBoxesAndFalseConstantsDropTerms()
    {
        var p = P(Decl2x2 + Box2 + "(assert (or (and (>= X_0 5) (>= Y_0 1)) (and (<= 1 0) (>= Y_0 2)) (>= Y_1 3)))");
        Assert.That(p.Unsafe.Single().D, Is.EqualTo(new[] { -3.0 }));
        var none = P(Decl2x2 + Box2 + "(assert (>= X_0 2))(assert (>= Y_0 0))");
        Assert.That(none.Cases, Is.Empty);
    }

    [Test]
    public void TighterBoundsWinAndSmtCommandsAreIgnored()
    {
        var p = P("(set-logic QF_LRA)(declare-fun X_0 () Real)(declare-const Y_0 Real)" +
                  "(assert (and (<= X_0 1) (<= X_0 0.5) (>= X_0 -2) (>= (* 2 X_0) -1)))(assert (<= Y_0 0))(check-sat)(exit)");
        Assert.That(p.InputLower, Is.EqualTo(new[] { -0.5 }));
        Assert.That(p.InputUpper, Is.EqualTo(new[] { 0.5 }));
    }

    [Test]
    public void UnsupportedConstructsRaiseNotSupported()
    {
        Assert.Throws<NotSupportedException>(() => P(Decl2x2 + Box2 + "(assert (<= (+ X_0 X_1) 1))(assert (<= Y_0 0))"));
        Assert.Throws<NotSupportedException>(() => P(Decl2x2 + Box2 + "(assert (<= X_0 Y_0))"));
        Assert.Throws<NotSupportedException>(() => P(Decl2x2 + Box2 + "(assert (<= (* Y_0 Y_1) 0))"));
        Assert.Throws<NotSupportedException>(() => P(Decl2x2 + Box2 + "(assert (not (<= Y_0 0)))"));
        var huge = string.Concat(Enumerable.Repeat("(assert (or (<= Y_0 0) (<= Y_1 0) (<= Y_0 1) (<= Y_1 1) (<= Y_0 2) (<= Y_1 2) (<= Y_0 3) (<= Y_1 3) (<= Y_0 4) (<= Y_1 4)))", 6));
        Assert.Throws<NotSupportedException>(() => P(Decl2x2 + Box2 + huge));
    }

    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0 1)", 1, 49, "unbalanced '('")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real))", 1, 49, "unbalanced ')'")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)\n(assert (<= X_0 1))(assert (>= X_0 0))\n(assert (<= Y_1 0))", 3, 13, "unknown variable 'Y_1'")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)\n(assert (<= X_0 1))\n(assert (<= Y_0 0))", 1, 16, "X_0 has no lower bound")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)\n(assert (<= X_0 1.2.3))", 2, 17, "bad number '1.2.3'")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)\n(assert (<= X_0 1e999))", 2, 17, "out of range")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)\n(assert (<= X_0 -.))", 2, 17, "bad number")]
    [TestCase("(declare-const X_0 Int)(declare-const Y_0 Real)", 1, 20, "only Real")]
    [TestCase("(declare-const Z_0 Real)", 1, 16, "neither an input")]
    [TestCase("(declare-const X_0 Real)(declare-const X_0 Real)", 1, 40, "declared twice")]
    [TestCase("(declare-const X_0 Real)(declare-const X_2 Real)(declare-const Y_0 Real)", 1, 40, "except X_1")]
    [TestCase("(declare-const X_0 Real)", 1, 1, "no outputs")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= X_0))", 1, 57, "at least two terms")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (foo X_0 1))", 1, 57, "unknown formula operator 'foo'")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= (sin X_0) 1))", 1, 61, "unknown term operator 'sin'")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= (/ X_0 0) 1))", 1, 61, "division by zero")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)(push 1)", 1, 49, "unknown command 'push'")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real) assert", 1, 50, "expected a command")]
    [TestCase("(declare-const X_0 Real)(declare-const Y_0 Real)(assert (<= |X_0 1))", 1, 61, "unterminated quoted symbol")]
    public void MalformedTextReportsLineAndColumn(string text, int line, int column, string problem)
    {
        var ex = Assert.Throws<VnnlibFormatException>(() => P(text))!;
        Assert.That(ex.Problem, Does.Contain(problem));
        Assert.That((ex.Line, ex.Column), Is.EqualTo((line, column)), ex.Message);
        Assert.That(ex.Message, Does.StartWith($"t.vnnlib:{line}:{column}: "));
    }

    [Test]
    public void DeclaredCountsMustMatchTheModel()
    {
        var text = Decl2x2 + Box2 + "(assert (<= Y_0 0))";
        Assert.That(P(text, 2, 2).NumInputs, Is.EqualTo(2));
        Assert.That(Assert.Throws<VnnlibFormatException>(() => P(text, 3, 2))!.Problem, Does.Contain("expected 3"));
        Assert.Throws<VnnlibFormatException>(() => P(text, 2, 10));
    }

    [Test]
    public void DeepNestingIsAnErrorNotAStackOverflow()
    {
        var deep = Decl2x2 + Box2 + "(assert " + new string('(', 200_000) + new string(')', 200_000) + ")";
        Assert.Throws<VnnlibFormatException>(() => P(deep));
        var deepAnd = Decl2x2 + Box2 + "(assert " + string.Concat(Enumerable.Repeat("(and ", 5000)) + "(<= Y_0 0)" + new string(')', 5000) + ")";
        Assert.That(Assert.Throws<VnnlibFormatException>(() => P(deepAnd))!.Problem, Does.Contain("nested too deeply"));
    }

    /// <summary>Byte flips, truncations, deletions and duplications of the samples only raise the documented exceptions.</summary>
    [Test]
    public void MutatedFilesFailCleanly()
    {
        var seeds = new List<byte[]>
        {
            System.Text.Encoding.ASCII.GetBytes(Decl2x2 + Box2 + "(assert (or (and (>= Y_0 Y_1) (>= (+ Y_0 (* 2 Y_1)) 1e-3)) (<= Y_1 -1)))"),
        };
        var root = VnnCompData.Root;
        if (root != null)
            seeds.AddRange(Samples().Select(f => File.ReadAllBytes(Path.Combine(root, f))));
        int ok = 0, format = 0, unsupported = 0;
        for (int s = 0; s < seeds.Count; s++)
        {
            var rng = new Random(2000 + s);
            for (int trial = 0; trial < 150; trial++)
            {
                var bytes = OnnxErrorTests.Mutate(seeds[s], rng);
                try
                {
                    var p = VnnlibParser.Parse(new StreamReader(new MemoryStream(bytes)));
                    foreach (var c in p.Cases)
                        Assert.That(c.InputLower.Zip(c.InputUpper).All(b => b.First <= b.Second && double.IsFinite(b.First) && double.IsFinite(b.Second)));
                    ok++;
                }
                catch (VnnlibFormatException) { format++; }
                catch (NotSupportedException) { unsupported++; }
                catch (Exception ex) when (ex is not AssertionException)
                {
                    Assert.Fail($"seed {s} trial {trial}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        }
        Assert.That(format, Is.GreaterThan(0));
        TestContext.Out.WriteLine($"parsed {ok}, format errors {format}, unsupported {unsupported}");
    }

    private static double[] Row(VnnlibConstraints c, int r) => Enumerable.Range(0, c.C.GetLength(1)).Select(j => c.C[r, j]).ToArray();
}
