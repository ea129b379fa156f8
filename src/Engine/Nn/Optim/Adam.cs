using Engine.Tensors;

namespace Engine.Nn;

/// <summary>Adam (torch.optim.Adam): bias-corrected moment estimates, weight decay added to the gradient (L2).</summary>
public class Adam : Optimizer
{
    private readonly Tensor?[] _m, _v;
    private readonly int[] _steps;
    private readonly bool _decoupled;

    /// <summary>Creates the optimiser.</summary>
    public Adam(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 0)
        : this(parameters, lr, beta1, beta2, eps, weightDecay, decoupled: false) { }

    /// <summary>Shared constructor for Adam and AdamW.</summary>
    private protected Adam(IEnumerable<Tensor> parameters, float lr, float beta1, float beta2, float eps, float weightDecay, bool decoupled)
        : base(parameters, lr)
    {
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), $"beta1 must be in [0, 1), got {beta1}.");
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentOutOfRangeException(nameof(beta2), $"beta2 must be in [0, 1), got {beta2}.");
        Beta1 = beta1; Beta2 = beta2;
        Eps = NonNegative(eps, nameof(eps));
        WeightDecay = NonNegative(weightDecay, nameof(weightDecay));
        _decoupled = decoupled;
        _m = new Tensor?[Params.Count];
        _v = new Tensor?[Params.Count];
        _steps = new int[Params.Count];
    }

    /// <summary>Decay rate of the first-moment estimate.</summary>
    public float Beta1 { get; }
    /// <summary>Decay rate of the second-moment estimate.</summary>
    public float Beta2 { get; }
    /// <summary>Term added to the denominator for stability.</summary>
    public float Eps { get; }
    /// <summary>Weight decay (L2 for Adam, decoupled for AdamW).</summary>
    public float WeightDecay { get; }

    /// <summary>First-moment estimate of parameter <paramref name="index"/> (null before its first update).</summary>
    public Tensor? ExpAvg(int index) => _m[index];
    /// <summary>Second-moment estimate of parameter <paramref name="index"/> (null before its first update).</summary>
    public Tensor? ExpAvgSq(int index) => _v[index];

    /// <inheritdoc/>
    protected override void Update(int index, Tensor param, Tensor grad)
    {
        var m = _m[index] ??= Tensor.ZerosLike(param);
        var v = _v[index] ??= Tensor.ZerosLike(param);
        // Per-parameter step counts, as PyTorch keeps them: a parameter skipped for lack of a gradient is not bias-corrected as if updated.
        int step = ++_steps[index];
        param.K.AdamUpdate(param.Buf, grad.Buf, m.Buf, v.Buf, param.Numel, LearningRate, Beta1, Beta2, Eps, WeightDecay, _decoupled, step);
    }
}

/// <summary>AdamW (torch.optim.AdamW): Adam with decoupled weight decay, param *= 1 - lr * weightDecay each step.</summary>
public sealed class AdamW : Adam
{
    /// <summary>Creates the optimiser (PyTorch's default weight decay is 0.01).</summary>
    public AdamW(IEnumerable<Tensor> parameters, float lr = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f, float eps = 1e-8f, float weightDecay = 1e-2f)
        : base(parameters, lr, beta1, beta2, eps, weightDecay, decoupled: true) { }
}
