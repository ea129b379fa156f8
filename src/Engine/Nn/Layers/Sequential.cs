using Engine.Graph;

namespace Engine.Nn;

/// <summary>Applies its children in order; they are named "0", "1", ... as in torch.nn.Sequential.</summary>
public sealed class Sequential : Module
{
    private readonly List<Module> _layers = [];

    /// <summary>Creates the container.</summary>
    public Sequential(params Module[] layers)
    {
        ArgumentNullException.ThrowIfNull(layers);
        foreach (var l in layers) Append(l);
    }

    /// <summary>Adds a layer at the end (before the first forward). Returns this.</summary>
    public Sequential Append(Module layer)
    {
        RegisterModule(_layers.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        _layers.Add(layer);
        return this;
    }

    /// <summary>Number of layers.</summary>
    public int Count => _layers.Count;

    /// <summary>The layer at <paramref name="index"/>.</summary>
    public Module this[int index] => _layers[index];

    /// <inheritdoc/>
    public override Value Build(GraphBuilder builder, Value input)
    {
        var x = input;
        foreach (var l in _layers) x = l.Build(builder, x);
        return x;
    }
}
