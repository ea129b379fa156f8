using Engine.Attacks;
using Engine.Autograd;
using Engine.Bounds;
using Engine.Certify;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Diagnostics;

// End-to-end checks through the tensor API: training steps, bounds on the graph path, a PGD attack.
public sealed partial class KernelSelfTest
{
    private const int Classes = 10;

    private void RegisterEndToEnd()
    {
        AddE2E("E2E/MlpTrainStep", c => TrainStepCheck(c, Mlp(), c.U(16 * 20, -1f, 1f), [16, 20], adam: true));
        AddE2E("E2E/CnnTrainStep", c => TrainStepCheck(c, Cnn(), c.U(6 * 144, 0f, 1f), [6, 1, 12, 12], adam: false));
        foreach (var method in Enum.GetValues<BoundMethod>())
            AddE2E($"E2E/Bounds/{method}", c => BoundsCheck(c, method));
        AddE2E("E2E/GraphBounds", GraphBoundsCheck);
        AddE2E("E2E/CertifiedTrainStep", CertifiedTrainStepCheck);
        AddE2E("E2E/Pgd", PgdCheck);
    }

    private void AddE2E(string name, Action<Check> body) => Add(name, c =>
    {
        // The scalar reference covers kernels only: on the CPU the tensor-level checks compare the CPU with itself.
        if (Device == Tensors.Device.Cpu) c.Note("CPU against itself: shows the path runs and is deterministic");
        body(c);
    });

    private static Module Mlp()
    {
        var g = new Generator(11);
        return new Sequential(new Linear(20, 32, generator: g), new ReLU(), new Linear(32, 16, generator: g), new ReLU(), new Linear(16, Classes, generator: g));
    }

    private static Module Cnn()
    {
        var g = new Generator(12);
        return new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: g), new ReLU(), new MaxPool2d(2),
                              new Conv2d(4, 8, 3, padding: 1, generator: g), new ReLU(), new AvgPool2d(2),
                              new Flatten(), new Linear(8 * 3 * 3, Classes, generator: g));
    }

    // The same model on CPU and on the device: independent copies of the module's graph (the module itself is not touched).
    private (ComputeGraph Cpu, ComputeGraph Dev) Copies(Module m) => (CopyGraph(m.Graph, Tensors.Device.Cpu), CopyGraph(m.Graph, Device));

    /// <summary>A copy of <paramref name="graph"/> with every initializer copied to <paramref name="device"/> (parameters as fresh leaves).</summary>
    internal static ComputeGraph CopyGraph(ComputeGraph graph, Device device)
    {
        var b = new GraphBuilder();
        var map = new Dictionary<Value, Value>(ReferenceEqualityComparer.Instance);
        foreach (var v in graph.Inputs) map[v] = b.Input(v.Name);
        foreach (var v in graph.Initializers)
        {
            var t = Tensor.FromSpan(v.Data!.ToArray(), v.Data.Shape, device);
            map[v] = v.Kind switch
            {
                ValueKind.Parameter => b.Parameter(v.Name, t.RequiresGrad_()),
                ValueKind.Buffer => b.Buffer(v.Name, t),
                _ => b.Constant(v.Name, t),
            };
        }
        foreach (var n in graph.Nodes)
        {
            var node = b.AddNode(n.Op, n.Inputs.Select(i => map[i]).ToArray(), n.Name);
            for (int i = 0; i < node.Outputs.Count; i++) map[n.Outputs[i]] = node.Outputs[i];
        }
        foreach (var o in graph.Outputs) b.Output(map[o]);
        return b.Build();
    }

    private float[] Labels(Check c, int n) => c.Ints(n, 0, Classes - 1);

    private void TrainStepCheck(Check c, Module model, float[] xh, int[] shape, bool adam)
    {
        var (gc, gd) = Copies(model);
        var lh = Labels(c, shape[0]);
        c.Case($"forward + loss, input {ShapeUtil.Format(shape)}");
        var sides = new[] { (G: gc, D: Tensors.Device.Cpu), (G: gd, D: Device) }.Select(s =>
        {
            var x = Tensor.FromSpan(xh, shape, s.D);
            var y = Tensor.FromSpan(lh, [shape[0]], s.D);
            var logits = Executor.Run(s.G, new ForwardContext(training: true), x)[0];
            var loss = Losses.CrossEntropy(logits, y);
            return (s.G, Logits: logits, Loss: loss);
        }).ToArray();
        CheckOnDevice(c, sides[1].Logits, "logits");
        c.CompareValues("logits", sides[1].Logits.ToArray(), sides[0].Logits.ToArray(), new Tol(1e-5, 1e-4, 1e-5));
        c.CompareValues("loss", [sides[1].Loss.Item()], [sides[0].Loss.Item()], new Tol(1e-6, 1e-5));

        c.Case("backward: every parameter's gradient");
        foreach (var s in sides) s.Loss.Backward();
        var pc = gc.Parameters.ToArray(); var pd = gd.Parameters.ToArray();
        for (int i = 0; i < pc.Length; i++)
        {
            var gdv = pd[i].Data!.Grad ?? throw new InvalidOperationException($"parameter {pd[i].Name} got no gradient on {Device.Name}");
            CheckOnDevice(c, gdv, $"grad {pd[i].Name}");
            c.CompareValues($"grad {pd[i].Name}", gdv.ToArray(), pc[i].Data!.Grad!.ToArray(), new Tol(1e-6, 1e-4, 1e-4));
        }

        c.Case(adam ? "Adam step (eps 1e-3 so tiny gradients cannot flip a step)" : "SGD step (momentum 0.9, nesterov, weight decay)");
        foreach (var s in sides)
        {
            var ps = s.G.Parameters.Select(v => v.Data!).ToArray();
            Optimizer opt = adam ? new Adam(ps, lr: 1e-2f, eps: 1e-3f, weightDecay: 1e-4f) : new Sgd(ps, lr: 0.1f, momentum: 0.9f, weightDecay: 1e-3f, nesterov: true);
            opt.Step();
            opt.Step();   // the second step uses the optimiser state of the first
        }
        for (int i = 0; i < pc.Length; i++)
        {
            CheckOnDevice(c, pd[i].Data!, $"param {pd[i].Name}");
            c.CompareValues($"param {pd[i].Name}", pd[i].Data!.ToArray(), pc[i].Data!.ToArray(), new Tol(1e-5, 1e-4));
        }
    }

    private static void CheckOnDevice(Check c, Tensor t, string what)
    {
        if (t.Device != c.Device) c.Fail($"{c.CaseLabel} {what}: came back on {t.Device.Name}, not {c.Device.Name}");
    }

    private void BoundsCheck(Check c, BoundMethod method)
    {
        var opts = new BoundOptions { FastPath = false, AlphaIterations = 5 };
        // alpha-CROWN optimises through 5 Adam steps, which amplify rounding differences; the others are one pass.
        var tol = method == BoundMethod.AlphaCrown ? new Tol(1e-4, 1e-3, 1e-3) : method == BoundMethod.Ibp ? new Tol(1e-5, 1e-4, 1e-5) : new Tol(1e-5, 1e-4, 1e-4);
        foreach (var (label, model, shape, eps) in new[] { ("MLP", Mlp(), new[] { 4, 20 }, 0.05f), ("CNN", Cnn(), new[] { 3, 1, 12, 12 }, 0.02f) })
        {
            var (gc, gd) = Copies(model);
            var xh = c.U(ShapeUtil.Numel(shape), 0f, 1f);
            var labels = Labels(c, shape[0]).Select(v => (int)v).ToArray();
            // The MLP runs every (spec, perturbation) pair; the CNN, slower to bound, two of them.
            var runs = from withSpec in new[] { true, false }
                       from p in new[] { Perturbation.LInf(eps), Perturbation.LInf(eps, 0f, 1f), Perturbation.L2(eps * 4) }
                       where label == "MLP" || (withSpec ? p.ClipLow != null : p.Norm == PerturbationNorm.L2)
                       select (withSpec, p);
            foreach (var (withSpec, p) in runs)
                {
                    c.Case($"{label} {(withSpec ? "margin spec" : "raw outputs")} {p.Norm} eps={p.Eps}{(p.ClipLow != null ? " clipped" : "")}");
                    var spec = withSpec ? Spec.Margins(labels, Classes) : null;
                    var rc = Engine.Bounds.Bounds.Compute(gc, Tensor.FromSpan(xh, shape, Tensors.Device.Cpu), p, method, spec, opts);
                    var rd = Engine.Bounds.Bounds.Compute(gd, Tensor.FromSpan(xh, shape, Device), p, method,
                                                          spec == null ? null : new Spec(spec.C.To(Device)), opts);
                    CheckOnDevice(c, rd.Lower, "lower");
                    c.CompareValues("lower", rd.Lower.ToArray(), rc.Lower.ToArray(), tol);
                    c.CompareValues("upper", rd.Upper.ToArray(), rc.Upper.ToArray(), tol);
                }
        }
    }

    /// <summary>
    /// A DAG of the operators imported ONNX models use beyond the sequential nets (input normalisation by Sub and Div,
    /// BatchNorm in eval mode, a grouped dilated convolution, LeakyReLU, a residual Add, Concat of max- and
    /// average-pooled branches, Sigmoid and Tanh heads joined by Sub) as `engine bounds | certify --device` run it.
    /// </summary>
    private static ComputeGraph Dag(Device device)
    {
        var g = new Generator(13);
        var b = new GraphBuilder();
        Value P(string name, int[] shape, float scale) => b.Parameter(name, Tensor.Uniform(shape, -scale, scale, g).To(device));
        Value C(string name, float[] data, int[] shape) => b.Constant(name, Tensor.FromArray(data, shape).To(device));
        var x = b.Input("x");
        var xs = b.Apply(new SubOp(), x, C("mean", [0.4f, 0.5f], [1, 2, 1, 1]));
        var xn = b.Apply(new DivOp(), xs, C("std", [0.3f, 0.7f], [1, 2, 1, 1]));
        var c1 = b.Apply(new Conv2dOp(padding: 1), xn, P("c1.w", [4, 2, 3, 3], 0.4f), P("c1.b", [4], 0.1f));
        var bn = b.Apply(new BatchNormOp(1e-3f), c1, P("bn.w", [4], 1f), P("bn.b", [4], 0.2f),
                         b.Buffer("bn.mean", Tensor.Uniform([4], -0.2f, 0.2f, g).To(device)), b.Buffer("bn.var", Tensor.Uniform([4], 0.5f, 2f, g).To(device)));
        var r1 = b.Apply(new LeakyReluOp(0.1f), bn);
        var c2 = b.Apply(new Conv2dOp(stride: 1, padding: 2, dilation: 2, groups: 2), r1, P("c2.w", [4, 2, 3, 3], 0.4f));
        var res = b.Apply(new AddOp(), b.Apply(new ReluOp(), c2), r1);
        var mp = b.Apply(new MaxPool2dOp((2, 2)), res);
        var ap = b.Apply(new AvgPool2dOp((3, 3), (2, 2), (1, 1), countIncludePad: false), res);
        var cat = b.Apply(new FlattenOp(), b.Apply(new ConcatOp(1), mp, ap));
        var h = b.Apply(new LinearOp(), cat, P("fc1.w", [12, 8 * 4 * 4], 0.15f), P("fc1.b", [12], 0.1f));
        var gate = b.Apply(new SigmoidOp(), h);
        var val = b.Apply(new TanhOp(), b.Apply(new LinearOp(), cat, P("fc2.w", [12, 8 * 4 * 4], 0.15f)));
        var y = b.Apply(new LinearOp(), b.Apply(new SubOp(), gate, val), P("out.w", [Classes, 12], 0.4f), P("out.b", [Classes], 0.1f));
        b.Output(y);
        return b.Build();
    }

    // The DAG forward and bounded by every method on the graph path, against the CPU.
    private void GraphBoundsCheck(Check c)
    {
        var (gc, gd) = (Dag(Tensors.Device.Cpu), Dag(Device));
        int[] shape = [3, 2, 8, 8];
        var xh = c.U(ShapeUtil.Numel(shape), 0f, 1f);
        c.Case("forward, input " + ShapeUtil.Format(shape));
        using (new NoGrad())
        {
            var yc = Executor.Forward(gc, Tensor.FromSpan(xh, shape, Tensors.Device.Cpu));
            var yd = Executor.Forward(gd, Tensor.FromSpan(xh, shape, Device));
            CheckOnDevice(c, yd, "output");
            c.CompareValues("output", yd.ToArray(), yc.ToArray(), new Tol(1e-5, 1e-4, 1e-4));
        }
        var labels = Labels(c, shape[0]).Select(v => (int)v).ToArray();
        foreach (var method in Enum.GetValues<BoundMethod>())
        {
            c.Case($"{method}, margin spec, eps=0.01 clipped");
            var opts = new BoundOptions { FastPath = false, AlphaIterations = 5 };
            var tol = method == BoundMethod.AlphaCrown ? new Tol(1e-4, 1e-3, 1e-3) : new Tol(1e-5, 1e-4, 1e-4);
            var p = Perturbation.LInf(0.01f, 0f, 1f);
            var spec = Spec.Margins(labels, Classes);
            var rc = Engine.Bounds.Bounds.Compute(gc, Tensor.FromSpan(xh, shape, Tensors.Device.Cpu), p, method, spec, opts);
            var rd = Engine.Bounds.Bounds.Compute(gd, Tensor.FromSpan(xh, shape, Device), p, method, new Spec(spec.C.To(Device)), opts);
            CheckOnDevice(c, rd.Lower, "lower");
            if (rc.Lower.ToArray().Concat(rc.Upper.ToArray()).Any(v => !float.IsFinite(v))) c.Fail($"{c.CaseLabel}: a CPU bound is not finite");
            c.CompareValues("lower", rd.Lower.ToArray(), rc.Lower.ToArray(), tol);
            c.CompareValues("upper", rd.Upper.ToArray(), rc.Upper.ToArray(), tol);
        }
    }

    // The loss of a certified training step (IBP, and CROWN-IBP mixed with IBP at beta 0.5) and every parameter's
    // gradient through the bounds: the fused bound kernels' backward passes end to end, against the CPU.
    private void CertifiedTrainStepCheck(Check c)
    {
        foreach (var (label, make, shape, eps) in new[] { ("MLP", (Func<Module>)Mlp, new[] { 8, 20 }, 0.05f), ("CNN", (Func<Module>)Cnn, new[] { 4, 1, 12, 12 }, 0.02f) })
            foreach (var beta in new[] { 0f, 0.5f })
            {
                c.Case($"{label} {(beta == 0 ? "IBP" : "CROWN-IBP, beta 0.5")} loss, eps={eps} clipped");
                var xh = c.U(ShapeUtil.Numel(shape), 0f, 1f);
                var lh = Labels(c, shape[0]);
                var sides = new[] { (M: make(), D: Tensors.Device.Cpu), (M: make().To(Device), D: Device) }.Select(s =>
                {
                    var loss = CertifiedLosses.CrownIbpLoss(s.M, Tensor.FromSpan(xh, shape, s.D), Tensor.FromSpan(lh, [shape[0]], s.D),
                                                            Perturbation.LInf(eps, 0f, 1f), beta);
                    loss.Backward();
                    return (s.M, Loss: loss);
                }).ToArray();
                CheckOnDevice(c, sides[1].Loss, "loss");
                c.CompareValues("loss", [sides[1].Loss.Item()], [sides[0].Loss.Item()], new Tol(1e-6, 1e-5));
                var pc = sides[0].M.NamedParameters().ToArray(); var pd = sides[1].M.NamedParameters().ToArray();
                for (int i = 0; i < pc.Length; i++)
                {
                    var g = pd[i].Tensor.Grad ?? throw new InvalidOperationException($"parameter {pd[i].Name} got no gradient on {Device.Name}");
                    CheckOnDevice(c, g, $"grad {pd[i].Name}");
                    c.CompareValues($"grad {pd[i].Name}", g.ToArray(), pc[i].Tensor.Grad!.ToArray(), new Tol(1e-6, 1e-4, 1e-4));
                }
            }
    }

    private void PgdCheck(Check c)
    {
        var (_, gd) = Copies(Mlp());
        const int n = 8;
        const float eps = 0.1f;
        var x = Tensor.FromSpan(c.U(n * 20, 0f, 1f), [n, 20], Device);
        var y = Tensor.FromSpan(Labels(c, n), [n], Device);
        foreach (var norm in new[] { Norm.LInf, Norm.L2 })
            foreach (var loss in new[] { AttackLoss.CrossEntropy, AttackLoss.Margin })
            {
                c.Case($"{norm} {loss}");
                var r = Pgd.Attack(gd, x, y, new PgdOptions { Norm = norm, Eps = eps, Steps = 5, Restarts = 2, Loss = loss, Seed = 3 });
                CheckOnDevice(c, r.Adversarial, "adversarial");
                if (!ShapeUtil.SameShape(r.Adversarial.Dims, x.Dims)) c.Fail($"{c.CaseLabel}: adversarial shape {ShapeUtil.Format(r.Adversarial.Dims)}, expected {ShapeUtil.Format(x.Dims)}");
                if (r.Margins.Length != n || r.Success.Length != n) c.Fail($"{c.CaseLabel}: {r.Margins.Length} margins / {r.Success.Length} flags for {n} examples");
                if (r.Margins.Any(m => !float.IsFinite(m))) c.Fail($"{c.CaseLabel}: a margin is not finite");
                var adv = r.Adversarial.ToArray(); var xs = x.ToArray();
                double worst = 0;
                for (int i = 0; i < n; i++)
                {
                    double norm2 = 0, normInf = 0;
                    for (int j = 0; j < 20; j++)
                    {
                        double d = adv[i * 20 + j] - xs[i * 20 + j];
                        norm2 += d * d; normInf = Math.Max(normInf, Math.Abs(d));
                        if (!(adv[i * 20 + j] >= 0f && adv[i * 20 + j] <= 1f)) c.Fail($"{c.CaseLabel}: adversarial value {adv[i * 20 + j]} outside the domain [0, 1]");
                    }
                    worst = Math.Max(worst, norm == Norm.LInf ? normInf : Math.Sqrt(norm2));
                }
                if (worst > eps * (1 + 1e-5) + 1e-6) c.Fail($"{c.CaseLabel}: the adversarial example is {worst} from x, outside the {norm} ball of radius {eps}");
                // The reported margins are the model's margins at the adversarial points (recomputed here on the device).
                using (new NoGrad())
                {
                    var logits = Executor.Forward(gd, r.Adversarial).ToArray();
                    var lab = y.ToArray();
                    var recomputed = new float[n];
                    for (int i = 0; i < n; i++)
                    {
                        int t = (int)lab[i];
                        float best = float.NegativeInfinity;
                        for (int j = 0; j < Classes; j++) if (j != t) best = Math.Max(best, logits[i * Classes + j]);
                        recomputed[i] = logits[i * Classes + t] - best;
                    }
                    c.CompareValues("margins", r.Margins, recomputed, new Tol(1e-5, 1e-4));
                }
            }
    }
}
