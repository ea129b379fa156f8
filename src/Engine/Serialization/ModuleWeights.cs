using Engine.Nn;
using Engine.Tensors;

namespace Engine.Serialization;

/// <summary>Saving and loading a module's parameters and buffers (its state dict) as safetensors.</summary>
public static class ModuleWeights
{
    /// <summary>Writes every parameter and buffer under its dotted name ("0.weight", "1.running_mean", ...).</summary>
    public static void SaveWeights(this Module module, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        SafeTensors.Save(path, module.StateDict(), metadata);
    }

    /// <summary>
    /// Loads weights saved by <see cref="SaveWeights"/> (or by PyTorch's safetensors) into the module in place.
    /// With <paramref name="strict"/>, missing or unexpected names are errors; shapes must always match.
    /// </summary>
    public static void LoadWeights(this Module module, string path, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(module);
        Dictionary<string, Tensor> state = SafeTensors.Load(path);
        try
        {
            module.LoadStateDict(state, strict);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{path}: {ex.Message}", ex);
        }
    }
}
