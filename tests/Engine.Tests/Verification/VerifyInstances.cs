using Engine.Onnx;
using Engine.Tests.Onnx;
using Engine.Verification;

namespace Engine.Tests.Verification;

/// <summary>Loads VNN-COMP instances (ONNX + VNNLIB) as verifier inputs.</summary>
internal static class VerifyInstances
{
    public static VerificationProblem Problem(VnnlibProperty p)
        => new(p.Cases.Select(c => new VerificationCase(c.InputLower, c.InputUpper, c.Unsafe.Select(u => new UnsafeConjunction(u.C, u.D)))));

    public static (OnnxModel Model, int[] Shape, VerificationProblem Problem) Load(string onnx, string vnnlib)
    {
        var root = VnnCompData.RequireRoot();
        var m = OnnxModel.Load(Path.Combine(root, onnx));
        var shape = Verifier.ExampleShape(m.Inputs[0].Shape);
        var p = Engine.Onnx.Vnnlib.Parse(Path.Combine(root, vnnlib), m.Inputs[0].Numel, m.Outputs[0].Numel);
        return (m, shape, Problem(p));
    }

    public static VerificationResult Run(string onnx, string vnnlib, double timeoutS)
    {
        var (m, shape, p) = Load(onnx, vnnlib);
        return Verifier.Verify(m.Graph, shape, p, new VerifierOptions { Timeout = TimeSpan.FromSeconds(timeoutS) });
    }

    public static (string Onnx, string Vnnlib, double Timeout, string Expected)[] Expected()
    {
        var root = VnnCompData.RequireRoot();
        return File.ReadAllLines(Path.Combine(root, "expected.csv")).Skip(1).Where(l => l.Trim().Length > 0)
            .Select(l => l.Split(',')).Select(f => (f[0], f[1], double.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture), f[3].Trim())).ToArray();
    }
}
