using System.Collections;
using Engine.Tensors;

namespace Engine.Data;

/// <summary>One mini-batch: inputs [B, ...] and targets [B, ...], freshly allocated (safe to keep).</summary>
/// <param name="Inputs">The batch's inputs.</param>
/// <param name="Targets">The batch's targets.</param>
public readonly record struct Batch(Tensor Inputs, Tensor Targets);

/// <summary>
/// Iterates a <see cref="TensorDataset"/> in mini-batches, like torch's DataLoader. Every enumeration is one epoch;
/// with <c>shuffle</c> each epoch draws a fresh permutation (Fisher-Yates on a Philox <see cref="Generator"/>), so the
/// sequence of epochs depends only on the seed. Samples are gathered by copying rows into the batch tensors (the
/// only per-batch allocations) when the dataset is on the CPU, or by the IndexSelect kernel on the dataset's own
/// device; batches are moved to <c>device</c> when one is given.
/// </summary>
public sealed class DataLoader : IEnumerable<Batch>
{
    private readonly TensorDataset _dataset;
    private readonly Generator _generator;
    private readonly Device _device;
    private readonly int _inputRow, _targetRow;

    /// <summary>Creates a loader.</summary>
    /// <param name="dataset">The samples (on any device; a dataset already on the batches' device is gathered there).</param>
    /// <param name="batchSize">Samples per batch (the last batch may be smaller unless <paramref name="dropLast"/>).</param>
    /// <param name="shuffle">Draw a new random order each epoch; otherwise keep dataset order.</param>
    /// <param name="dropLast">Skip a final batch smaller than <paramref name="batchSize"/>.</param>
    /// <param name="seed">Seed of the shuffling stream.</param>
    /// <param name="device">Where batches are delivered (default CPU).</param>
    /// <exception cref="ArgumentException">The batch size is not positive.</exception>
    public DataLoader(TensorDataset dataset, int batchSize, bool shuffle = true, bool dropLast = false, ulong seed = 0, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (batchSize < 1) throw new ArgumentException($"DataLoader: batch size must be at least 1, got {batchSize}.", nameof(batchSize));
        _dataset = dataset;
        BatchSize = batchSize;
        Shuffle = shuffle;
        DropLast = dropLast;
        _generator = new Generator(seed);
        _device = device ?? Device.Cpu;
        int n = dataset.Count;
        _inputRow = n == 0 ? 0 : dataset.Inputs.Numel / n;
        _targetRow = n == 0 ? 0 : dataset.Targets.Numel / n;
    }

    /// <summary>Samples per full batch.</summary>
    public int BatchSize { get; }
    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }
    /// <summary>Whether a final partial batch is skipped.</summary>
    public bool DropLast { get; }
    /// <summary>The dataset being iterated.</summary>
    public TensorDataset Dataset => _dataset;
    /// <summary>Epochs started so far (enumerations begun).</summary>
    public int Epoch { get; private set; }

    /// <summary>Batches per epoch.</summary>
    public int Count => DropLast ? _dataset.Count / BatchSize : (_dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>The sample order of the next epoch (advances the epoch and the generator, like enumerating).</summary>
    public int[] NextOrder()
    {
        int n = _dataset.Count;
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        if (Shuffle)
            for (int i = n - 1; i > 0; i--)
            {
                int j = _generator.NextInt(i + 1);
                (order[i], order[j]) = (order[j], order[i]);
            }
        Epoch++;
        return order;
    }

    /// <summary>Starts a new epoch and yields its batches.</summary>
    public IEnumerator<Batch> GetEnumerator()
    {
        var order = NextOrder();
        int n = order.Length, batches = Count;
        for (int b = 0; b < batches; b++)
        {
            int start = b * BatchSize, size = Math.Min(BatchSize, n - start);
            yield return Gather(order.AsSpan(start, size));
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>A batch holding the given samples, in that order.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside the dataset.</exception>
    public Batch Gather(ReadOnlySpan<int> indices)
    {
        var x = Take(_dataset.Inputs, _inputRow, indices);
        var y = Take(_dataset.Targets, _targetRow, indices);
        return new Batch(x.To(_device), y.To(_device));
    }

    private Tensor Take(Tensor source, int row, ReadOnlySpan<int> indices)
    {
        var shape = source.Shape;
        shape[0] = indices.Length;
        if (source.Device != Device.Cpu)
        {
            // A dataset kept on a device (e.g. uploaded to the GPU once) is gathered there by the IndexSelect kernel.
            foreach (int k in indices)
                if ((uint)k >= (uint)_dataset.Count) throw new ArgumentOutOfRangeException(nameof(indices), $"DataLoader: sample index {k} is outside the dataset of {_dataset.Count} samples.");
            return source.Detach().IndexSelect(0, indices.ToArray());
        }
        var result = Tensor.Empty(shape);
        // Raw spans, not AsSpan(): that marks the arrays as handed out, and an escaped array is never recycled, so
        // every batch (800 KB for 256 images) came from fresh memory (measured: 0.3-0.65 s an epoch of 235 batches).
        var src = ((CpuStorage)source.Storage).RawData.AsSpan(source.Offset, source.Numel);
        var dst = ((CpuStorage)result.Storage).RawData.AsSpan(result.Offset, result.Numel);
        int n = _dataset.Count;
        for (int i = 0; i < indices.Length; i++)
        {
            int k = indices[i];
            if ((uint)k >= (uint)n) throw new ArgumentOutOfRangeException(nameof(indices), $"DataLoader: sample index {k} is outside the dataset of {n} samples.");
            src.Slice(k * row, row).CopyTo(dst.Slice(i * row, row));
        }
        return result;
    }
}
