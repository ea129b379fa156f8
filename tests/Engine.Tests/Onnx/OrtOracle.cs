using NUnit.Framework;
using Engine.Graph;
using Engine.Onnx;
using Engine.Tensors;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Tests.Onnx;

/// <summary>Runs a model in ONNX Runtime and in Engine on the same inputs and compares the outputs.</summary>
internal static class OrtOracle
{
    /// <summary>ONNX Runtime's outputs (flat values and shapes) for the given inputs.</summary>
    public static (float[] Data, long[] Shape)[] Run(byte[] model, (string Name, float[] Data, long[] Shape)[] inputs)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        var values = inputs.Select(i => OrtValue.CreateTensorValueFromMemory(i.Data, i.Shape)).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputs.Select(i => i.Name).ToArray(), values, session.OutputNames);
            return results.Select(r => (r.GetTensorDataAsSpan<float>().ToArray(), r.GetTensorTypeAndShape().Shape)).ToArray();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Uniform random values in [lo, hi].</summary>
    public static float[] RandomInput(long n, int seed, float lo = -1f, float hi = 1f)
    {
        var rng = new Random(seed);
        var r = new float[n];
        for (int i = 0; i < n; i++) r[i] = (float)(lo + rng.NextDouble() * (hi - lo));
        return r;
    }

    /// <summary>
    /// Imports <paramref name="model"/>, runs both engines on seeded random inputs of the declared shapes (symbolic
    /// dimensions set to <paramref name="batch"/>) and asserts every output agrees within 1e-4 relative. Returns the import.
    /// </summary>
    public static OnnxModel AssertMatches(byte[] model, int seed = 7, int batch = 1, OnnxImportOptions? options = null, float lo = -1f, float hi = 1f, double tol = 1e-4)
    {
        var imported = OnnxModel.Load(model, options);
        var inputs = imported.Inputs.Select((info, k) =>
        {
            var shape = info.Shape.Select(d => (long)(d < 0 ? batch : d)).ToArray();
            return (info.Name, RandomInput(shape.Aggregate(1L, (a, b) => a * b), seed + k, lo, hi), shape);
        }).ToArray();
        var expected = Run(model, inputs);
        var actual = Executor.Run(imported.Graph, ForwardContext.Eval,
            inputs.Select(i => Tensor.FromArray(i.Item2, i.shape.Select(d => (int)d).ToArray())).ToArray());
        Assert.That(actual, Has.Length.EqualTo(expected.Length));
        for (int o = 0; o < expected.Length; o++)
        {
            Assert.That(actual[o].Shape, Is.EqualTo(expected[o].Shape.Select(d => (int)d).ToArray()), $"output {o} shape");
            AssertClose(actual[o].ToArray(), expected[o].Data, tol, $"output {o}");
        }
        return imported;
    }

    public static void AssertClose(float[] actual, float[] expected, double tol, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        double scale = Math.Max(1.0, expected.Max(v => Math.Abs((double)v)));
        for (int i = 0; i < actual.Length; i++)
            if (!(Math.Abs(actual[i] - (double)expected[i]) <= tol * Math.Max(Math.Abs((double)expected[i]), 1e-2 * scale) + 1e-6))
                Assert.Fail($"{what}[{i}]: engine {actual[i]:R}, ONNX Runtime {expected[i]:R} (relative tolerance {tol})");
    }
}
