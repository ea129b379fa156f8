namespace Engine.Tests.Onnx;

/// <summary>
/// The hand-built models of <see cref="OnnxOpTests"/> (each supported operator at least once), shared with the tests
/// that run imported graphs on other devices (<c>Devices/OnnxOnDeviceTests</c>, <c>Cuda/OnnxOnCudaTests</c>).
/// </summary>
internal static class OnnxOpModels
{
    /// <summary>MatMul + Add, Gemm with transB / alpha / beta, Relu, Sigmoid, Tanh; batch 2 (the last Gemm's C is [2, 3]).</summary>
    public static OnnxTestModel MlpWithGemmVariants() => new OnnxTestModel()
        .Input("x", -1, 6).Output("y")
        .Rand("w1", 6, 8).Rand("b1", 8)
        .Rand("w2", 5, 8).Rand("b2", 5)
        .Rand("w3", 5, 4).Rand("c3", 1, 4)
        .Rand("w4", 4, 3).Rand("c4", 2, 3)
        .Node("MatMul", ["x", "w1"], ["m1"]).Node("Add", ["m1", "b1"], ["h1"]).Node("Relu", "h1", "r1")
        .Node("Gemm", ["r1", "w2", "b2"], ["h2"], ("transB", 1L), ("alpha", 0.5f), ("beta", 2f)).Node("Sigmoid", "h2", "s2")
        .Node("Gemm", ["s2", "w3", "c3"], ["h3"], ("alpha", 1.5f)).Node("Tanh", "h3", "t3")
        // A full [M, N] C (batch 2) stays a separate Add.
        .Node("Gemm", ["t3", "w4", "c4"], ["y"], ("beta", -1f));

    /// <summary>Normalisation (Sub, Div), Conv, BatchNorm, MaxPool, a grouped dilated Conv, AveragePool, Concat, Flatten, Gemm.</summary>
    public static OnnxTestModel ConvBatchNormPoolConcat() => new OnnxTestModel()
        .Input("x", -1, 3, 9, 9).Output("y")
        .Init("mean", [0.4f, 0.5f, 0.6f], [1, 3, 1, 1]).Init("std", [0.2f, 0.25f, 0.3f], [1, 3, 1, 1])
        .Rand("cw", 4, 3, 3, 3).Rand("cb", 4)
        .RandScaled("bn_s", 1f, 4).Rand("bn_b", 4).Rand("bn_m", 4).RandRange("bn_v", 0.5f, 2f, 4)
        .Rand("gw", 4, 2, 3, 3)
        .Rand("fw", 10, 8 * 5 * 5 + 4 * 5 * 5).Rand("fb", 10)
        .Node("Sub", ["x", "mean"], ["xs"]).Node("Div", ["xs", "std"], ["xn"])
        .Node("Conv", ["xn", "cw", "cb"], ["c1"], ("pads", new long[] { 1, 1, 1, 1 }), ("kernel_shape", new long[] { 3, 3 }))
        .Node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["n1"], ("epsilon", 1e-3f))
        .Node("Relu", "n1", "r1")
        .Node("MaxPool", ["r1"], ["p1"], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 1, 1 }))
        // A grouped, dilated convolution branch and an average-pooled branch, joined along channels.
        .Node("Conv", ["r1", "gw"], ["g1"], ("group", 2L), ("dilations", new long[] { 2, 2 }), ("pads", new long[] { 2, 2, 2, 2 }), ("strides", new long[] { 2, 2 }))
        .Node("AveragePool", ["r1"], ["a1"], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("pads", new long[] { 1, 1, 1, 1 }))
        .Node("Concat", ["p1", "a1"], ["cat"], ("axis", 1L))
        .Node("Relu", "g1", "rg")
        .Node("Flatten", ["cat"], ["f1"]).Node("Flatten", ["rg"], ["f2"])
        .Node("Concat", ["f1", "f2"], ["f"], ("axis", -1L))
        .Node("Gemm", ["f", "fw", "fb"], ["y"], ("transB", 1L));

    /// <summary>A BatchNorm with no layer to fold into, a 1x1 Conv, and a BatchNorm that folds into it.</summary>
    public static OnnxTestModel BatchNorm(int seed) => new OnnxTestModel(seed: seed)
        .Input("x", -1, 4, 5, 5).Output("y")
        .Rand("cw", 4, 4, 1, 1)
        .Rand("s", 4).Rand("bb", 4).Rand("mu", 4).RandRange("var", 0.5f, 2f, 4)
        .Node("BatchNormalization", ["x", "s", "bb", "mu", "var"], ["n0"])
        .Node("Conv", ["n0", "cw"], ["c"])
        .Node("BatchNormalization", ["c", "s", "bb", "mu", "var"], ["y"], ("momentum", 0.8f));

    /// <summary>The divisors of <see cref="DivByConstant"/>: not powers of two, so the division stays a Div.</summary>
    public static readonly float[] Divisors = [0.3f, -1.7f, 2.9f, -0.11f, 5.3f, 7f];

    /// <summary>x / c (a Div), / 0.25 (a Mul by 4), Relu, MatMul.</summary>
    public static OnnxTestModel DivByConstant() => new OnnxTestModel()
        .Input("x", -1, 6).Output("y")
        .Init("c", Divisors, [6]).Init("q", [0.25f], []).Rand("w", 6, 4)
        .Node("Div", ["x", "c"], ["d1"]).Node("Div", ["d1", "q"], ["d2"]).Node("Relu", "d2", "r")
        .Node("MatMul", ["r", "w"], ["y"]);

    /// <summary>NHWC to NCHW, Conv with SAME_UPPER, Identity, Dropout, Squeeze / Unsqueeze, Transpose, Reshape, GlobalAveragePool; two outputs.</summary>
    public static OnnxTestModel LayoutOps() => new OnnxTestModel()
        .Input("x", 1, 4, 5, 2).Output("y").Output("z")
        .Ints("ax0", 0).Ints("ax1", 1).Ints("shape", 0, -1)
        .Rand("cw", 3, 2, 3, 3)
        .Node("Transpose", ["x"], ["nchw"], ("perm", new long[] { 0, 3, 1, 2 }))
        .Node("Conv", ["nchw", "cw"], ["c"], ("auto_pad", "SAME_UPPER"), ("kernel_shape", new long[] { 3, 3 }))
        .Node("Identity", "c", "ci")
        .Node("Dropout", "ci", "cd")
        .Node("Squeeze", ["cd", "ax0"], ["sq"])
        .Node("Unsqueeze", ["sq", "ax1"], ["us"])
        .Node("Transpose", ["us"], ["t"], ("perm", new long[] { 1, 0, 2, 3 }))
        .Node("Reshape", ["t", "shape"], ["y"])
        .Node("GlobalAveragePool", "nchw", "z");

    /// <summary>LeakyRelu, Neg, Mul, Add, Div and Sub between computed values (two inputs).</summary>
    public static OnnxTestModel ArithmeticBetweenComputedValues() => new OnnxTestModel()
        .Input("x", 2, 5).Input("u", 1, 5).Output("y").Rand("k", 5).Init("one", [1f], [])
        .Node("LeakyRelu", ["x"], ["l"], ("alpha", 0.2f))
        .Node("Neg", "l", "n")
        .Node("Mul", ["n", "u"], ["p"])
        .Node("Relu", "x", "r")
        .Node("Add", ["r", "one"], ["den"])
        .Node("Div", ["p", "den"], ["q"])
        .Node("Sub", ["k", "q"], ["s"])
        .Node("Div", ["one", "den"], ["inv"])
        .Node("Add", ["s", "inv"], ["y"]);

    /// <summary>Gemm with transA of the (batch-less) input: a Transpose and a MatMul.</summary>
    public static OnnxTestModel GemmWithTransposedA() => new OnnxTestModel().Input("a", 6, 3).Output("y").Rand("w", 6, 4).Rand("c", 4)
        .Node("Gemm", ["a", "w", "c"], ["y"], ("transA", 1L), ("alpha", 2f));

    /// <summary>MatMul of two computed values and matrix-vector forms (two inputs, two outputs).</summary>
    public static OnnxTestModel MatMulOfComputedValues() => new OnnxTestModel().Input("x", 3, 4).Input("v", 4).Output("y").Output("z").Rand("w", 5, 4)
        .Node("Transpose", ["x"], ["xt"], ("perm", new long[] { 1, 0 }))
        .Node("MatMul", ["x", "xt"], ["y"])
        .Node("MatMul", ["w", "v"], ["z"]);
}
