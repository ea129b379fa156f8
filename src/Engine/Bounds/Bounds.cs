using Engine.Autograd;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Bounds;

/// <summary>
/// Bounds on what a network can output over a set of inputs: <c>Bounds.Compute(model, x, Perturbation.LInf(eps),
/// BoundMethod.Crown, Spec.Margins(labels, 10))</c> returns lower and upper bounds on C·f(x') for every x' in the
/// set around each example of the batch x. Everything is written with the engine's differentiable tensor ops, so a
/// loss on IBP or CROWN-IBP bounds trains the network (certified training). The network is always bounded in
/// evaluation mode (BatchNorm with running statistics, Dropout off). Inside a namespace under Engine, name the class
/// as Engine.Bounds.Bounds (or alias it): the bare name there means the namespace.
/// <para>
/// Float32 soundness. A bound is sound in exact arithmetic by construction; float32 adds rounding wherever a sum of
/// products is formed (matrix products, convolutions, the concretisation), whose error is at most a small multiple
/// of the unit roundoff times the sum of the absolute values of the terms. Every bound that such a sum produced is
/// therefore widened outward by ρ·M + α, where M is that sum of absolute terms, tracked alongside the bound
/// (|A|·|x| and ε‖A‖ at the input, |A|·|b| for every constant term of the backward pass, |W|(|c| + r) + |b| for an
/// IBP affine layer) and ρ = <see cref="BoundOptions.RoundingRelative"/> (1e-5, about 170 units of roundoff),
/// α = <see cref="BoundOptions.RoundingAbsolute"/>. Element-wise monotone steps (ReLU, max, sums of two bounds) need
/// no margin: rounding is monotone, so the rounded bound still bounds the rounded value. Sigmoid and tanh lines get
/// an absolute slack of a few ulps. A "verified" verdict (lower bound &gt; 0) computed this way survives the float32
/// evaluation of the bound; the margin costs about 1e-5 relative tightness.
/// </para>
/// </summary>
public static class Bounds
{
    /// <summary>Bounds of a module's graph (see the class summary); the module's own training flag is ignored.</summary>
    public static BoundResult Compute(Module model, Tensor x, Perturbation perturbation, BoundMethod method, Spec? spec = null, BoundOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Compute(model.Graph, x, perturbation, method, spec, options);
    }

    /// <summary>
    /// Bounds of a one-input, one-output graph over the perturbation set around each example of x ([B, ...]):
    /// [B, specs] for a spec, else [B, outputs] (the output flattened per example).
    /// </summary>
    public static BoundResult Compute(ComputeGraph graph, Tensor x, Perturbation perturbation, BoundMethod method, Spec? spec = null, BoundOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(perturbation);
        var o = options ?? BoundOptions.Default;
        if (o.AlphaIterations < 0) throw new ArgumentOutOfRangeException(nameof(options), $"Bounds: AlphaIterations must be >= 0, got {o.AlphaIterations}.");
        if (!(o.AlphaLearningRate > 0) || !(o.AlphaLearningRateDecay > 0 && o.AlphaLearningRateDecay <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), $"Bounds: AlphaLearningRate must be > 0 and AlphaLearningRateDecay in (0, 1], got {o.AlphaLearningRate} and {o.AlphaLearningRateDecay}.");
        if (!(o.RoundingRelative >= 0) || !(o.RoundingAbsolute >= 0)) throw new ArgumentOutOfRangeException(nameof(options), "Bounds: rounding margins must be >= 0.");
        if (ChainBounds.TryCompute(graph, x, perturbation, method, spec, o) is { } fast)
        {
            CheckFinite(fast);
            return fast;
        }
        var result = method switch
        {
            BoundMethod.Ibp => Ibp(new BoundPropagator(graph, perturbation, o.ForIbpOnly()), x, spec),
            BoundMethod.Crown => Crown(new BoundPropagator(graph, perturbation, o), x, spec, refine: true, o),
            BoundMethod.CrownIbp => Crown(new BoundPropagator(graph, perturbation, o), x, spec, refine: false, o),
            BoundMethod.AlphaCrown => AlphaCrown(graph, x, perturbation, spec, o),
            _ => throw new ArgumentOutOfRangeException(nameof(method), $"Bounds: unknown method {method}."),
        };
        // Without upper bounds CROWN's are +infinity by construction: reading them would be one more device copy.
        CheckFinite(result, checkUpper: o.ComputeUpper || method == BoundMethod.Ibp);
        return result;
    }

    /// <summary>
    /// The mixed bound used by CROWN-IBP training: kappa·IBP + (1 − kappa)·CROWN-IBP, for both ends (a convex
    /// combination of two sound bounds is sound). One IBP pass serves both.
    /// </summary>
    public static BoundResult ComputeMixed(ComputeGraph graph, Tensor x, Perturbation perturbation, float kappa, Spec? spec = null, BoundOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(graph);
        if (!(kappa >= 0 && kappa <= 1)) throw new ArgumentOutOfRangeException(nameof(kappa), $"Bounds.ComputeMixed: kappa must be in [0, 1], got {kappa}.");
        var o = options ?? BoundOptions.Default;
        var p = new BoundPropagator(graph, perturbation, kappa == 1 ? o.ForIbpOnly() : o);
        var ibp = Ibp(p, x, spec);
        if (kappa == 1) return ibp;
        var crown = Crown(p, x, spec, refine: false, o, forwardDone: true);
        return Mix(ibp, crown, kappa);
    }

    /// <summary>kappa·a + (1 − kappa)·b, for lower and upper bounds.</summary>
    public static BoundResult Mix(BoundResult a, BoundResult b, float kappa)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (!(kappa >= 0 && kappa <= 1)) throw new ArgumentOutOfRangeException(nameof(kappa), $"Bounds.Mix: kappa must be in [0, 1], got {kappa}.");
        if (kappa == 1) return a;
        if (kappa == 0) return b;
        return new BoundResult(a.Lower * kappa + b.Lower * (1 - kappa), a.Upper * kappa + b.Upper * (1 - kappa));
    }

    /// <summary>Settable so tests can compare the fused spec fold (<see cref="IbpSpecFold"/>) with the composition.</summary>
    internal static bool UseFusedSpecFold = true;

    private static BoundResult Ibp(BoundPropagator p, Tensor x, Spec? spec)
    {
        p.Forward(x, refine: false);
        var outV = p.Output;
        var ob = p.Bounds(outV);
        int b = ob.Shape[0];
        if (spec == null)
            return new BoundResult(ob.Lower.Reshape(b, ob.Lower.Numel / b), ob.Upper.Reshape(b, ob.Upper.Numel / b));
        var c = CheckSpec(spec, b, ob.Lower.Numel / b, ob.Lower.Device);
        // Fold C into a last Linear layer ((C·W) h + C·b), much tighter than C applied to the output box.
        if (outV.Producer is { Op: LinearOp } last && p.Bounds(last.Inputs[0]) is { IsConstant: false, Shape.Length: 2 } h
            && p.Bounds(last.Inputs[1]).IsConstant && (last.Inputs.Count < 3 || p.Bounds(last.Inputs[2]).IsConstant))
        {
            var w = p.Bounds(last.Inputs[1]).Lower;
            var wb = last.Inputs.Count > 2 ? p.Bounds(last.Inputs[2]).Lower : null;
            // The preceding ReLU's (centre, widened radius): the fold in one fused pass (same formula, CPU). Not over the
            // perturbed input itself (a one-layer network), where an L2 ball takes the affine rule's exact ball form.
            if (h.Prepared is { } pc && h.Ball == null && pc.Rho == p.Options.RoundingRelative && UseFusedSpecFold && IbpSpecFold.Applies(pc.C, pc.M, w, wb, c))
            {
                var (foldLower, foldUpper) = IbpSpecFold.Compute(pc.C, pc.M, w, wb, c, pc.Rho, p.Options.RoundingAbsolute);
                return new BoundResult(foldLower, foldUpper);
            }
            var cw = Tensor.Matmul(c, w); // [B, S, in]
            var fold = BoundRules.Affine(h,
                z => BatchedLinear(cw, z, wb == null ? null : Tensor.Matmul(c, wb.Unsqueeze(-1)).Squeeze(-1)),
                r => BatchedLinear(cw.Abs(), r, null),
                wb == null ? null : Tensor.Matmul(c.Abs(), wb.Abs().Unsqueeze(-1)).Squeeze(-1),
                () => (cw * cw).Sum(-1).Sqrt(), p.Options);
            return new BoundResult(fold.Lower, fold.Upper);
        }
        var (lo, hi) = (ob.Lower.Reshape(b, -1, 1), ob.Upper.Reshape(b, -1, 1));
        var pos = c.Relu(); var neg = c - pos;
        var lower = (Tensor.Matmul(pos, lo) + Tensor.Matmul(neg, hi)).Squeeze(-1);
        var upper = (Tensor.Matmul(pos, hi) + Tensor.Matmul(neg, lo)).Squeeze(-1);
        var mag = Tensor.Matmul(c.Abs(), Tensor.Maximum(lo.Abs(), hi.Abs())).Squeeze(-1).Detach() * p.Options.RoundingRelative + p.Options.RoundingAbsolute;
        return new BoundResult(lower - mag, upper + mag);
    }

    /// <summary>y[b, s] = Σ_i m[b, s, i] z[b, i] (+ bias[b, s]).</summary>
    private static Tensor BatchedLinear(Tensor m, Tensor z, Tensor? bias)
    {
        var y = Tensor.Matmul(m, z.Unsqueeze(-1)).Squeeze(-1);
        return bias == null ? y : y + bias;
    }

    private static BoundResult Crown(BoundPropagator p, Tensor x, Spec? spec, bool refine, BoundOptions o, bool forwardDone = false)
    {
        if (!forwardDone) p.Forward(x, refine, lazy: true);
        var a = StartCoefficients(p, spec, o.ComputeUpper, out int s);
        var lb = p.Backward(p.Output, a, null);
        return Split(lb, s, o.ComputeUpper);
    }

    private static BoundResult AlphaCrown(ComputeGraph graph, Tensor x, Perturbation perturbation, Spec? spec, BoundOptions o)
    {
        // Intermediate bounds stay at their CROWN values (auto_LiRPA's fix_interm_bounds), and the weights are
        // detached so that the optimisation's backward passes reach the slopes only.
        var p = new BoundPropagator(graph, perturbation, o, detachConstants: true);
        Tensor a;
        int s;
        using (new NoGrad())
        {
            p.Forward(x, refine: true, lazy: true);
            a = StartCoefficients(p, spec, o.ComputeUpper, out s);
        }
        a = a.Detach();
        var alphas = new Dictionary<int, Tensor>();
        Tensor? AlphaFor(Node node, Interval input, int rows)
        {
            if (alphas.TryGetValue(node.Index, out var t)) return t;
            var init = node.Op.InitialAlpha(input);
            if (init == null) return null;
            var shape = init.Shape;
            int[] target = [shape[0], o.AlphaPerSpec ? rows : 1, .. shape.AsSpan(1)];
            t = init.Detach().Unsqueeze(1).Expand(target).Detach();
            t.RequiresGrad_();
            alphas[node.Index] = t;
            return t;
        }
        Tensor? best = null;
        Adam? opt = null;
        int depth = GradMode.Suspend();
        try
        {
            for (int it = 0; it <= o.AlphaIterations; it++)
            {
                var lb = p.Backward(p.Output, a, AlphaFor);
                var lbd = lb.Detach();
                best = best == null ? lbd.Clone() : Tensor.Maximum(best, lbd);
                if (it == o.AlphaIterations || alphas.Count == 0) break;
                opt ??= new Adam(alphas.Values.ToList(), o.AlphaLearningRate);
                opt.ZeroGrad();
                (-lb.Sum()).Backward();
                opt.Step();
                opt.LearningRate *= o.AlphaLearningRateDecay;
                using (new NoGrad())
                    foreach (var t in alphas.Values) t.CopyFrom(t.Detach().Clamp(0f, 1f));
            }
        }
        finally { GradMode.Resume(depth); }
        return Split(best!, s, o.ComputeUpper);
    }

    /// <summary>The initial coefficients [B, S (or 2S with upper rows −C), ...output shape]; s = S.</summary>
    private static Tensor StartCoefficients(BoundPropagator p, Spec? spec, bool upper, out int s)
    {
        // The output's shape only: CROWN may have left its IBP bounds unmade (see BoundPropagator.Forward).
        var shape = p.Bounds(p.Output).Shape;
        int b = shape[0], n = ShapeUtil.Numel(shape) / Math.Max(1, b);
        var device = p.InputDevice;
        Tensor c;
        if (spec == null)
        {
            var eye = new float[n * n];
            for (int i = 0; i < n; i++) eye[i * n + i] = 1f;
            c = Tensor.FromSpan(eye, [n, n], device).Unsqueeze(0).Expand(b, n, n);
        }
        else c = CheckSpec(spec, b, n, device);
        s = c.Dims[1];
        if (upper) c = Tensor.Concat([c, -c], 1);
        return c.Reshape([b, c.Dims[1], .. shape.AsSpan(1)]);
    }

    private static Tensor CheckSpec(Spec spec, int batch, int outputs, Device device)
    {
        if (spec.Outputs != outputs)
            throw new ArgumentException($"Bounds: the spec has {spec.Outputs} output columns (C {ShapeUtil.Format(spec.C.Dims)}) but the network has {outputs} outputs per example.");
        // Spec.Margins builds C on the CPU: follow the network's device (To is differentiable, so a learned C still trains).
        var c = spec.Batched(batch);
        return c.Device == device ? c : c.To(device);
    }

    private static BoundResult Split(Tensor lb, int s, bool upper)
    {
        var lower = upper ? lb.Narrow(1, 0, s) : lb;   // without upper rows lb is the lower bounds already
        var up = upper ? -lb.Narrow(1, s, s) : Tensor.Full(lower.Shape, float.PositiveInfinity, lower.Device);
        return new BoundResult(lower, up);
    }

    private static void CheckFinite(BoundResult r, bool checkUpper = true)
    {
        // Off the CPU by a reduction each (NaN propagates through min) and one copy of both: one GPU synchronisation.
        bool lowerNaN, upperNaN = false;
        if (r.Lower.Device == Device.Cpu || r.Lower.Numel == 0)
        {
            lowerNaN = r.Lower.ToArray().Any(float.IsNaN);
            if (checkUpper) upperNaN = r.Upper.ToArray().Any(float.IsNaN);
        }
        else
        {
            var t = r.Lower.NewEmpty([2]);
            r.Lower.K.Reduce(ReduceOp.Min, r.Lower.Buf, t.Buf, 1, r.Lower.Numel, 1);
            if (checkUpper) r.Lower.K.Reduce(ReduceOp.Min, r.Upper.Buf, t.Buf.At(1), 1, r.Upper.Numel, 1);
            Span<float> h = stackalloc float[2];
            t.CopyTo(h);
            lowerNaN = float.IsNaN(h[0]);
            upperNaN = checkUpper && float.IsNaN(h[1]);
        }
        if (lowerNaN) throw new InvalidOperationException("Bounds: a lower bound is NaN; the network's weights or the input contain NaN or infinity.");
        if (upperNaN) throw new InvalidOperationException("Bounds: an upper bound is NaN; the network's weights or the input contain NaN or infinity.");
    }
}
