// Layout kernels (IKernels.Shape.cs): permutation (a general gather and a tiled batched transpose) and the
// [outer, dim, inner] block copies behind Narrow / Slice / Concat / IndexSelect / IndexAdd. Pure data movement, so
// results equal the CPU's bit for bit; IndexAdd sums repeated indices in the CPU's order without atomics.

// A by-value int[8] (KernelParams.Ints(values, 8)): shapes and strides up to rank 8.
struct Int8
{
    int v[8];
};

#define GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); i += (long long)gridDim.x * blockDim.x)

// y[t] = x[Σ_d i_d * srcStride[d]] where (i_0, ..., i_{rank-1}) is t unravelled over outShape. total = numel.
extern "C" __global__ void permute_gather(const float* __restrict__ x, float* __restrict__ y, int rank, Int8 outShape, Int8 srcStride, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        long long src = 0;
#pragma unroll
        for (int d = 7; d >= 0; d--)
            if (d < rank)
            {
                int s = outShape.v[d];
                int i = u % s;
                u /= s;
                src += (long long)i * srcStride.v[d];
            }
        y[t] = x[src];
    }
}

// Batched 2-D transpose, in 32x32 tiles through shared memory so that both the reads (along a, contiguous in x) and
// the writes (along b, contiguous in y) are coalesced: y[yo + ia*sya + ib] = x[xo + ib*sxb + ia] for ia < na, ib < nb,
// and every combination of the other dimensions (sizes oSize, strides oxs in x and oys in y; oRank of them) giving the
// offsets xo, yo. Block (32, 8); blocks walk the (other, tileB, tileA) items grid-stride.
extern "C" __global__ void permute_transpose(const float* __restrict__ x, float* __restrict__ y, int na, int nb, int sxb, int sya,
                                             int oRank, Int8 oSize, Int8 oxs, Int8 oys, long long items)
{
    __shared__ float tile[32][33];
    const int tilesA = (na + 31) / 32, tilesB = (nb + 31) / 32;
    const int tx = threadIdx.x, ty = threadIdx.y;
    for (long long it = blockIdx.x; it < items; it += gridDim.x)
    {
        int ta = (int)(it % tilesA);
        long long rest = it / tilesA;
        int tb = (int)(rest % tilesB);
        long long o = rest / tilesB;
        long long xo = 0, yo = 0;
#pragma unroll
        for (int d = 7; d >= 0; d--)
            if (d < oRank)
            {
                int c = (int)(o % oSize.v[d]);
                o /= oSize.v[d];
                xo += (long long)c * oxs.v[d];
                yo += (long long)c * oys.v[d];
            }
        int a0 = ta * 32, b0 = tb * 32;
        for (int k = ty; k < 32; k += 8)
        {
            int ib = b0 + k, ia = a0 + tx;
            if (ib < nb && ia < na) tile[k][tx] = x[xo + (long long)ib * sxb + ia];
        }
        __syncthreads();
        for (int k = ty; k < 32; k += 8)
        {
            int ia = a0 + k, ib = b0 + tx;
            if (ia < na && ib < nb) y[yo + (long long)ia * sya + ib] = tile[tx][k];
        }
        __syncthreads();
    }
}

// y[o, j, i] = x[o, start + j*step, i]; total = outer*count*inner.
extern "C" __global__ void slice_copy(const float* __restrict__ x, float* __restrict__ y, int dimIn, int inner, int start, int step, int count, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int i = u % inner; u /= inner;
        int j = u % count, o = u / count;
        y[t] = x[((long long)o * dimIn + start + (long long)j * step) * inner + i];
    }
}

// y[o, start + j*step, i] = x[o, j, i]; total = outer*count*inner (one thread per x element).
extern "C" __global__ void slice_scatter(const float* __restrict__ x, float* __restrict__ y, int dimOut, int inner, int start, int step, int count, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int i = u % inner; u /= inner;
        int j = u % count, o = u / count;
        y[((long long)o * dimOut + start + (long long)j * step) * inner + i] = x[t];
    }
}

// y[o, j, i] = x[o, indices[j], i]; total = outer*count*inner.
extern "C" __global__ void index_select(const float* __restrict__ x, float* __restrict__ y, const int* __restrict__ indices,
                                        int dimIn, int inner, int count, int total)
{
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int i = u % inner; u /= inner;
        int j = u % count, o = u / count;
        y[t] = x[((long long)o * dimIn + indices[j]) * inner + i];
    }
}

// y[o, target[k], i] += x[o, j, i] for the positions j in sources[start[k] .. start[k+1]) (ascending: the CPU's order),
// one thread per (o, k, i): repeated indices sum without atomics. plan = [target (distinct) | start (distinct+1) | sources
// (count)]. total = outer*distinct*inner.
extern "C" __global__ void index_add(const float* __restrict__ x, float* __restrict__ y, const int* __restrict__ plan,
                                     int distinct, int count, int dimOut, int inner, int total)
{
    const int* target = plan;
    const int* start = plan + distinct;
    const int* sources = start + distinct + 1;
    GRID_STRIDE(t, total)
    {
        int u = (int)t;
        int i = u % inner; u /= inner;
        int k = u % distinct, o = u / distinct;
        long long at = ((long long)o * dimOut + target[k]) * inner + i;
        float acc = y[at];
        const float* xo = x + (long long)o * count * inner + i;
        for (int s = start[k]; s < start[k + 1]; s++) acc += xo[(long long)sources[s] * inner];
        y[at] = acc;
    }
}

// y[t] = x[t]; a permutation that coalesces to one dimension.
extern "C" __global__ void shape_copy(const float* __restrict__ x, float* __restrict__ y, int total)
{
    GRID_STRIDE(t, total) y[t] = x[t];
}
