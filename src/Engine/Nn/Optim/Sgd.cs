using Engine.Tensors;

namespace Engine.Nn;

/// <summary>Stochastic gradient descent with optional momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD).</summary>
public sealed class Sgd : Optimizer
{
    private readonly Tensor?[] _momentum;

    /// <summary>Creates the optimiser.</summary>
    public Sgd(IEnumerable<Tensor> parameters, float lr, float momentum = 0, float dampening = 0, float weightDecay = 0, bool nesterov = false)
        : base(parameters, lr)
    {
        Momentum = NonNegative(momentum, nameof(momentum));
        Dampening = dampening;
        WeightDecay = NonNegative(weightDecay, nameof(weightDecay));
        Nesterov = nesterov;
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException("Sgd: Nesterov momentum requires momentum > 0 and zero dampening.");
        _momentum = new Tensor?[Params.Count];
    }

    /// <summary>Momentum factor.</summary>
    public float Momentum { get; }
    /// <summary>Dampening for momentum.</summary>
    public float Dampening { get; }
    /// <summary>L2 penalty added to the gradient.</summary>
    public float WeightDecay { get; }
    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    /// <summary>The momentum buffer of parameter <paramref name="index"/> (null before its first update or without momentum).</summary>
    public Tensor? MomentumBuffer(int index) => _momentum[index];

    /// <inheritdoc/>
    protected override void Update(int index, Tensor param, Tensor grad)
    {
        bool first = false;
        Buf buf = default;
        if (Momentum != 0)
        {
            if (_momentum[index] == null) { _momentum[index] = Tensor.ZerosLike(param); first = true; }
            buf = _momentum[index]!.Buf;
        }
        param.K.SgdUpdate(param.Buf, grad.Buf, buf, param.Numel, LearningRate, Momentum, Dampening, WeightDecay, Nesterov, first);
    }
}
