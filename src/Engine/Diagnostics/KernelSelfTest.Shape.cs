using Engine.Tensors;

namespace Engine.Diagnostics;

// Permute, SliceCopy / SliceScatter, IndexSelect / IndexAdd.
public sealed partial class KernelSelfTest
{
    private void RegisterShape()
    {
        Add("Permute", c =>
        {
            (int[] Shape, int[] Perm)[] cases =
            [
                ([2, 3, 4, 5], [0, 2, 1, 3]), ([2, 3, 4, 5], [3, 2, 1, 0]), ([7, 9], [1, 0]), ([70001], [0]),
                ([3, 1, 4], [1, 0, 2]), ([2, 3, 2, 3, 2, 3], [5, 3, 1, 4, 2, 0]), ([300, 250], [1, 0]), ([5, 1, 1], [2, 1, 0]),
                ([33, 65, 3], [2, 0, 1]), ([4, 0, 3], [2, 1, 0]),
            ];
            foreach (var (shape, perm) in cases)
            {
                c.Case($"{ShapeUtil.Format(shape)} perm ({string.Join(",", perm)})");
                int n = ShapeUtil.Numel(shape);
                var x = c.In(c.U(n));
                var y = c.Out(n);
                c.Run((k, s) => k.Permute(x[s], shape, perm, y[s]));
                c.Compare("y", y, Tol.Exact);
            }
        });
        // (outer, dim, inner, start, step, count)
        (int, int, int, int, int, int)[] slices =
            [(3, 10, 7, 1, 3, 3), (1, 70001, 1, 5, 2, 30000), (4, 5, 1, 4, 1, 1), (2, 9, 33, 0, 1, 9), (5, 1, 3, 0, 1, 1), (300, 8, 40, 2, 2, 3)];
        Add("SliceCopy", c =>
        {
            foreach (var (outer, dim, inner, start, step, count) in slices)
            {
                c.Case($"[{outer}, {dim}, {inner}] start={start} step={step} count={count}");
                var x = c.In(c.U(outer * dim * inner));
                var y = c.Out(outer * count * inner);
                c.Run((k, s) => k.SliceCopy(x[s], y[s], outer, dim, inner, start, step, count));
                c.Compare("y", y, Tol.Exact);
            }
        });
        Add("SliceScatter", c =>
        {
            foreach (var (outer, dim, inner, start, step, count) in slices)
            {
                c.Case($"[{outer}, {dim}, {inner}] start={start} step={step} count={count}");
                var x = c.In(c.U(outer * count * inner));
                var y = c.InOut(c.U(outer * dim * inner));
                c.Run((k, s) => k.SliceScatter(x[s], y[s], outer, dim, inner, start, step, count));
                c.Compare("y", y, Tol.Exact);
            }
        });
        (int Outer, int Dim, int Inner, int[] Indices)[] selects =
        [
            (3, 5, 4, [0, 2, 2, 4, 1]), (1, 100, 700, [99, 0, 50, 50]), (2, 10, 4000, [9, 1, 1, 3, 0, 8, 2, 2, 5]),
            (4, 1, 1, [0, 0, 0]), (7, 6, 1, [5, 4, 3, 2, 1, 0]), (2, 3, 5, []),
        ];
        Add("IndexSelect", c =>
        {
            foreach (var (outer, dim, inner, idx) in selects)
            {
                c.Case($"[{outer}, {dim}, {inner}] indices ({string.Join(",", idx)})");
                var x = c.In(c.U(outer * dim * inner));
                var y = c.Out(outer * idx.Length * inner);
                c.Run((k, s) => k.IndexSelect(x[s], y[s], outer, dim, inner, idx));
                c.Compare("y", y, Tol.Exact);
            }
        });
        Add("IndexAdd", c =>
        {
            foreach (var (outer, dim, inner, idx) in selects)
            {
                c.Case($"[{outer}, {dim}, {inner}] indices ({string.Join(",", idx)})");
                var x = c.In(c.U(outer * idx.Length * inner));
                var y = c.InOut(c.U(outer * dim * inner));
                c.Run((k, s) => k.IndexAdd(x[s], y[s], outer, dim, inner, idx));
                // Repeated indices add several values into one element: the order of those additions may differ.
                c.Compare("y", y, Tol.Ulps with { Abs = 1e-6 });
            }
        });
    }
}
