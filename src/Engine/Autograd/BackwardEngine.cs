using Engine.Tensors;

namespace Engine.Autograd;

/// <summary>Walks the tape from one output in reverse topological order and accumulates leaf gradients.</summary>
internal static class BackwardEngine
{
    public static void Run(Tensor root, Tensor? gradient)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException("Backward(): the tensor does not require grad (no input had RequiresGrad, or it was computed under NoGrad).");
        if (gradient == null)
        {
            if (root.Numel != 1) throw new InvalidOperationException($"Backward() without a gradient needs a scalar output, not shape {ShapeUtil.Format(root.Dims)}.");
            gradient = Tensor.Full(root.Dims, 1f, root.Device);
        }
        else
        {
            if (!ShapeUtil.SameShape(gradient.Dims, root.Dims))
                throw new ArgumentException($"Backward(): gradient shape {ShapeUtil.Format(gradient.Dims)} does not match output shape {ShapeUtil.Format(root.Dims)}.");
            Tensor.CheckSameDevice(root, gradient, "Backward");
        }

        using var _ = new NoGrad();
        if (root.GradFn == null) { AccumulateLeaf(root, gradient); return; }

        var order = TopologicalOrder(root.GradFn);
        var pending = new Dictionary<GradFn, Tensor>(ReferenceEqualityComparer.Instance) { [root.GradFn] = gradient };
        Dictionary<MultiOutputGradFn, Tensor?[]>? multi = null;
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var node = order[i];
            if (!pending.Remove(node, out var gOut)) continue;
            if (node is OutputSlotGradFn slot)
            {
                // Every slot precedes its parent in this order (the parent is the slot's child), so the parent
                // runs once, with all its outputs' gradients.
                multi ??= new(ReferenceEqualityComparer.Instance);
                if (!multi.TryGetValue(slot.Parent, out var got)) multi[slot.Parent] = got = new Tensor?[slot.Parent.Outputs];
                got[slot.Index] = got[slot.Index] is { } prev ? Sum(prev, gOut) : gOut;
                pending.TryAdd(slot.Parent, gOut);
                continue;
            }
            var grads = node is MultiOutputGradFn m ? m.BackwardAll(multi![m]) : node.Backward(gOut);
            if (node is MultiOutputGradFn done) multi!.Remove(done);
            if (grads.Length != node.Inputs.Length)
                throw new InvalidOperationException($"Backward rule of {node.Name} returned {grads.Length} gradients for {node.Inputs.Length} inputs.");
            for (int j = 0; j < grads.Length; j++)
            {
                var input = node.Inputs[j];
                var g = grads[j];
                if (g == null || !input.RequiresGrad) continue;
                if (!ShapeUtil.SameShape(g.Dims, input.Dims))
                    throw new InvalidOperationException($"Backward rule of {node.Name} produced gradient {ShapeUtil.Format(g.Dims)} for input {j} of shape {ShapeUtil.Format(input.Dims)}.");
                if (input.GradFn == null) AccumulateLeaf(input, g);
                else if (pending.TryGetValue(input.GradFn, out var acc)) pending[input.GradFn] = Sum(acc, g);
                else pending[input.GradFn] = g;
            }
        }
    }

    private static Tensor Sum(Tensor a, Tensor b)
    {
        // A fresh tensor: gradients may alias each other (Add hands the same g to both inputs). One pass.
        return a.Detach() + b.Detach();
    }

    /// <summary>
    /// For a backward rule whose gradient for <paramref name="t"/> is a product it can add in place (a GEMM with beta
    /// 1): t's own gradient buffer when t is a leaf that requires grad (made here, uninitialised, when it has none:
    /// <paramref name="fresh"/>, so the rule overwrites it), else null and the rule returns its gradient as usual. The
    /// rule then returns null for t. Saves the separate buffer and the add that <see cref="AccumulateLeaf"/> would cost.
    /// </summary>
    internal static Tensor? LeafGradTarget(Tensor t, out bool fresh)
    {
        fresh = false;
        if (t.GradFn != null || !t.RequiresGrad) return null;
        if (t.Grad is { } have) return have.Device == t.Device && ShapeUtil.SameShape(have.Dims, t.Dims) ? have : null;
        fresh = true;
        return t.Grad = t.NewEmpty(t.Dims);
    }

    private static void AccumulateLeaf(Tensor leaf, Tensor g)
    {
        // Leaf grads are owned copies so optimisers and clipping may scale them in place, and later gradients are
        // added into them in place (as torch accumulates .grad): a weight used several times in one pass (a layer's
        // weight in the clean, centre and radius passes of certified training) costs one buffer, not one per use.
        if (leaf.Grad is { } have && have.Device == g.Device && ShapeUtil.SameShape(have.Dims, g.Dims) && !ReferenceEquals(have.Storage, g.Storage))
            have.K.Axpy(1f, g.Buf, have.Buf, have.Numel);
        else
            leaf.Grad = leaf.Grad == null ? g.Clone() : Sum(leaf.Grad, g);
    }

    private static List<GradFn> TopologicalOrder(GradFn root)
    {
        var order = new List<GradFn>();
        var visited = new HashSet<GradFn>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(GradFn node, int next)>();
        stack.Push((root, 0)); visited.Add(root);
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            if (node is OutputSlotGradFn slot)
            {
                if (next == 0)
                {
                    stack.Push((node, 1));
                    if (visited.Add(slot.Parent)) stack.Push((slot.Parent, 0));
                }
                else order.Add(node);
            }
            else if (next < node.Inputs.Length)
            {
                stack.Push((node, next + 1));
                var child = node.Inputs[next].GradFn;
                if (child != null && visited.Add(child)) stack.Push((child, 0));
            }
            else order.Add(node);
        }
        return order;
    }
}
