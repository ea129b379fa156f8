namespace Engine.Tensors;

public sealed partial class Tensor
{
    /// <summary>
    /// Moves a leaf's data to <paramref name="device"/> in place, as torch's <c>module.to(device)</c> does with
    /// <c>param.data</c>: the tensor object stays the same, so the layers, graphs and optimisers that hold it see the
    /// new storage. Views taken before the move keep reading the old storage. Clears <see cref="Grad"/>.
    /// </summary>
    internal void MoveDataTo(Device device)
    {
        if (device == Device) return;
        if (!IsLeaf) throw new InvalidOperationException("Only a leaf tensor (a parameter, buffer or constant) can be moved in place; use To(device) for a copy.");
        var host = ToArray();
        // A parameter outlives any TensorScope the move happens in: its new storage must not be registered there.
        using var outside = TensorScope.Suspend();
        var storage = device.Allocate(Numel);
        device.CopyFromHost(host, storage, 0);
        Storage = storage;
        Offset = 0;
        Grad = null;
    }
}
