using Engine.Cpu;
using Engine.Cpu.Reference;
using Engine.Tensors;
using NUnit.Framework;

namespace Engine.Tests.Shape;

public class PermuteKernelTests
{
    private static IEnumerable<int[]> Permutations(int n)
    {
        if (n == 0) { yield return []; yield break; }
        foreach (var p in Permutations(n - 1))
            for (int pos = 0; pos <= p.Length; pos++)
            {
                var l = p.ToList(); l.Insert(pos, n - 1);
                yield return [.. l];
            }
    }

    private static void Check(Random rng, int[] shape, int[] perm)
    {
        var x = TestData.Tensor(rng, shape);
        var outShape = perm.Select(d => shape[d]).ToArray();
        var y = Tensor.Zeros(outShape);
        CpuKernels.Instance.Permute(x.Buf, shape, perm, y.Buf);
        var expected = ShapeReference.Permute(x.ToArray(), shape, perm);
        Assert.That(y.ToArray(), Is.EqualTo(expected), $"shape {ShapeUtil.Format(shape)} perm {ShapeUtil.Format(perm)}");
    }

    [Test]
    public void EveryPermutationOfRankOneToFourMatchesReference()
    {
        var rng = new Random(1);
        for (int rank = 1; rank <= 4; rank++)
            foreach (var perm in Permutations(rank))
                for (int trial = 0; trial < 3; trial++)
                {
                    // Odd sizes, size-1 dimensions (dropped by coalescing) and sizes past the 8x8 register tile.
                    var shape = Enumerable.Range(0, rank).Select(_ => new[] { 1, 2, 3, 5, 7, 9, 13, 17 }[rng.Next(8)]).ToArray();
                    Check(rng, shape, perm);
                }
    }

    [Test]
    public void RandomRankFivePermutationsMatchReference()
    {
        var rng = new Random(2);
        var perms = Permutations(5).ToArray();
        for (int trial = 0; trial < 40; trial++)
        {
            var shape = Enumerable.Range(0, 5).Select(_ => rng.Next(1, 7)).ToArray();
            Check(rng, shape, perms[rng.Next(perms.Length)]);
        }
    }

    [Test]
    public void LargeTransposesWithTailsMatchReference()
    {
        var rng = new Random(3);
        Check(rng, [67, 45], [1, 0]);
        Check(rng, [3, 33, 71], [0, 2, 1]);
        Check(rng, [2, 40, 9, 24], [0, 3, 1, 2]);   // NCHW -> NWCH-like with a merged pair
        Check(rng, [4, 16, 17, 19], [0, 2, 3, 1]);  // NCHW -> NHWC
        Check(rng, [300, 257], [1, 0]);             // big enough to run on several threads
        Check(rng, [96, 256], [1, 0]);              // power-of-two stride: tiles go through the buffer
        Check(rng, [3, 512, 45], [0, 2, 1]);        // buffered full tiles and direct partial ones
        Check(rng, [130, 3, 256], [2, 1, 0]);
    }

    [Test]
    public void CoalescingMergesAdjacentDimensionsAndDropsOnes()
    {
        var (dims, perm) = ShapeUtil.CoalescePermutation([2, 1, 3, 4, 5], [0, 3, 4, 1, 2]);
        Assert.That(dims, Is.EqualTo(new[] { 2, 3, 20 }));
        Assert.That(perm, Is.EqualTo(new[] { 0, 2, 1 }));
    }
}
