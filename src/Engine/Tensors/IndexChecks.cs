using System.Numerics.Tensors;

namespace Engine.Tensors;

/// <summary>
/// Range checks of host index arrays that kernels take (gathers, CROWN's row codes and merge indices). They run on
/// the host between a GPU's synchronisation and its next launch, where every microsecond leaves the GPU idle, so the
/// common (valid) case is one vectorised minimum and maximum; the offending entry is looked for only to name it.
/// </summary>
internal static class IndexChecks
{
    /// <summary>Throws ArgumentOutOfRangeException naming the first entry of <paramref name="values"/> outside [min, max].</summary>
    public static void InRange(ReadOnlySpan<int> values, long min, long max, string kernel, string what)
    {
        if (values.IsEmpty || TensorPrimitives.Min(values) >= min && TensorPrimitives.Max(values) <= max) return;
        foreach (int v in values)
            if (v < min || v > max)
                throw new ArgumentOutOfRangeException(what, $"{kernel}: {what} {v} is outside [{min}, {max}].");
    }
}
