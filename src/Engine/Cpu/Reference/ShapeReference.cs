using Engine.Tensors;

namespace Engine.Cpu.Reference;

/// <summary>Scalar reference implementations of the layout kernels (<see cref="IKernels.Permute"/> and the slice copies), for tests.</summary>
public static class ShapeReference
{
    /// <summary>Permutes x (of <paramref name="shape"/>) by <paramref name="perm"/>, one element at a time.</summary>
    public static float[] Permute(float[] x, int[] shape, int[] perm)
    {
        int rank = shape.Length, n = ShapeUtil.Numel(shape);
        var inStrides = ShapeUtil.Strides(shape);
        var outShape = new int[rank];
        for (int d = 0; d < rank; d++) outShape[d] = shape[perm[d]];
        var y = new float[n];
        var idx = new int[rank];
        for (int o = 0; o < n; o++)
        {
            int rem = o, src = 0;
            for (int d = rank - 1; d >= 0; d--)
            {
                idx[d] = rem % outShape[d]; rem /= outShape[d];
                src += idx[d] * inStrides[perm[d]];
            }
            y[o] = x[src];
        }
        return y;
    }

    /// <summary>y[o, j, i] = x[o, start + j*step, i].</summary>
    public static void SliceCopy(float[] x, float[] y, int outer, int dimIn, int inner, int start, int step, int count)
    {
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < count; j++)
                for (int i = 0; i < inner; i++)
                    y[(o * count + j) * inner + i] = x[(o * dimIn + start + j * step) * inner + i];
    }

    /// <summary>y[o, start + j*step, i] = x[o, j, i].</summary>
    public static void SliceScatter(float[] x, float[] y, int outer, int dimOut, int inner, int start, int step, int count)
    {
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < count; j++)
                for (int i = 0; i < inner; i++)
                    y[(o * dimOut + start + j * step) * inner + i] = x[(o * count + j) * inner + i];
    }

    /// <summary>y[o, j, i] = x[o, indices[j], i].</summary>
    public static void IndexSelect(float[] x, float[] y, int outer, int dimIn, int inner, int[] indices)
    {
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < indices.Length; j++)
                for (int i = 0; i < inner; i++)
                    y[(o * indices.Length + j) * inner + i] = x[(o * dimIn + indices[j]) * inner + i];
    }

    /// <summary>y[o, indices[j], i] += x[o, j, i].</summary>
    public static void IndexAdd(float[] x, float[] y, int outer, int dimOut, int inner, int[] indices)
    {
        for (int o = 0; o < outer; o++)
            for (int j = 0; j < indices.Length; j++)
                for (int i = 0; i < inner; i++)
                    y[(o * dimOut + indices[j]) * inner + i] += x[(o * indices.Length + j) * inner + i];
    }
}
