using Engine.Autograd;
using Engine.Data;
using Engine.Graph;
using Engine.Nn;
using Engine.Tensors;

namespace Engine.Cli;

/// <summary>The pieces of the training loop the CLI commands share: one optimisation step, accuracy, data loading.</summary>
internal static class Training
{
    /// <summary>Embedded subset when <paramref name="dir"/> is null, else the full set from the directory.</summary>
    public static (TrainTestSplit Data, string Source) LoadData(string? dir)
        => dir is null
            ? (FashionMnist.LoadEmbedded(), "embedded Fashion-MNIST subset")
            : (FashionMnist.Load(dir), $"Fashion-MNIST from {dir}");

    /// <summary>
    /// Zero grads, forward, cross-entropy, backward, update; returns the batch's mean loss and the logits.
    /// On a device that frees memory early (CUDA), the step's temporaries (activations, gradients) go back to the
    /// allocator when it ends, rather than when the GC finalizes them: each step then reuses the last one's blocks.
    /// The gradients are among them, so read them inside the step or not at all (ZeroGrad drops them anyway);
    /// optimiser state created lazily by the first update is exempt, and so are the returned logits.
    /// </summary>
    public static float Step(Module model, Optimizer optimizer, Tensor x, Tensor y, out Tensor logits)
    {
#if ENGINE_CUDA
        // TensorScope comes with the CUDA backend's core changes; on the CPU it registers nothing (a no-op).
        using var scope = TensorScope.Begin();
#endif
        optimizer.ZeroGrad();
        logits = model.Forward(x);
        var loss = Losses.CrossEntropy(logits, y);
        loss.Backward();
#if ENGINE_CUDA
        using (TensorScope.Suspend()) optimizer.Step();
        scope.Keep(logits);
#else
        optimizer.Step();
#endif
        return loss.Item();
    }

    /// <summary>
    /// Accuracy of <paramref name="model"/> on <paramref name="data"/> in eval mode without recording gradients; the
    /// batches are moved to <paramref name="device"/> (the model's device; default CPU).
    /// </summary>
    public static (int Correct, int Total) Evaluate(Module model, TensorDataset data, int batch = 500, Device? device = null)
    {
        bool wasTraining = model.Training;
        model.Eval();
        try { return Evaluate(model.Forward, data, batch, device); }
        finally { model.Train(wasTraining); }
    }

    /// <summary>Accuracy of a graph (an imported ONNX classifier) as <see cref="Evaluate(Module, TensorDataset, int, Device?)"/>.</summary>
    public static (int Correct, int Total) Evaluate(ComputeGraph graph, TensorDataset data, int batch = 500, Device? device = null)
        => Evaluate(x => Executor.Forward(graph, x), data, batch, device);

    private static (int Correct, int Total) Evaluate(Func<Tensor, Tensor> forward, TensorDataset data, int batch, Device? device)
    {
        int correct = 0;
        using (new NoGrad())
            foreach (var (x, y) in new DataLoader(data, batch, shuffle: false))
            {
                // Each batch's activations go back to the pool when it is counted, not to the finalizer queue: left to
                // the GC, the 10,000 test images' ~400 MB of activations slowed the next epoch's training by up to 20 %.
                using (TensorScope.Begin(includeCpu: true))
                    correct += Accuracy.CountCorrect(forward(device is null ? x : x.To(device)), y);
                x.Storage.Dispose();
                y.Storage.Dispose();
            }
        return (correct, data.Count);
    }
}
