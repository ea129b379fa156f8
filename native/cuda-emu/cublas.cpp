// cuBLAS (column-major; scalars from host memory, cuBLAS's default pointer mode). Each product sums over k in order
// in float, as one GPU thread would.
#include "emu.h"

#include <vector>

using namespace emu;

extern "C" {


// A handle belongs to the device whose context was current when it was made (a null handle: the current device).
int cublasCreate_v2(void** handle) { if (CurrentDevice() < 0) return 1; *handle = new int(CurrentDevice()); return 0; }
int cublasDestroy_v2(void* handle) { delete (int*)handle; return 0; }

// Operands in another device's memory than the handle's: the GEMM kernel faults with an illegal address when it runs.
static bool ForeignOperands(void* handle, const void* a, const void* b, const void* c, const char* call)
{
    int dev = handle ? *(int*)handle : CurrentDevice();
    const void* ops[] = {a, b, c};
    for (int i = 0; i < 3; i++)
    {
        const Allocation* m = FindDevice((uintptr_t)ops[i]);
        if (!m || m->device == dev) continue;
        std::string what = std::string(call) + " on device " + std::to_string(dev) + ": operand " + "ABC"[i] + " is in device "
            + std::to_string(m->device) + "'s memory";
        Queue.push_back([what] { Fail(ErrorIllegalAddress, what); });
        return true;
    }
    return false;
}
int cublasSetStream_v2(void*, void*) { return 0; }
int cublasSetMathMode(void*, int) { return 0; }
int cublasGetVersion_v2(void*, int* version) { *version = 130000; return 0; }

static int GemmChecks(int ta, int tb, int m, int n, int k, uint64_t a, int lda, uint64_t b, int ldb, uint64_t c, int ldc,
    long long sa, long long sb, long long sc, int batch, const char* call)
{
    if (m < 0 || n < 0 || k < 0 || batch < 0 || ta < 0 || ta > 1 || tb < 0 || tb > 1) return 7;
    int rowsA = ta ? k : m, rowsB = tb ? n : k;
    if (lda < (rowsA > 1 ? rowsA : 1) || ldb < (rowsB > 1 ? rowsB : 1) || ldc < (m > 1 ? m : 1)) return 7;
    if (m == 0 || n == 0 || batch == 0) return 0;
    auto extent = [](long long rows, long long cols, long long ld) { return (size_t)((cols - 1) * ld + rows) * 4; };
    int colsA = ta ? m : k, colsB = tb ? k : n;
    for (int i = 0; i < batch; i++)
    {
        if (k > 0 && CheckRange(a + (uint64_t)(sa * i * 4), extent(rowsA, colsA, lda), call, "A")) return 13;
        if (k > 0 && CheckRange(b + (uint64_t)(sb * i * 4), extent(rowsB, colsB, ldb), call, "B")) return 13;
        if (CheckRange(c + (uint64_t)(sc * i * 4), extent(m, n, ldc), call, "C")) return 13;
    }
    return 0;
}

static void Gemm(int ta, int tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
    float beta, float* c, int ldc)
{
    // op(A) packed column-major; four columns of C at a time share each column of it (the sum over p stays in order).
    std::vector<float> pa((size_t)m * k), acc((size_t)m * 4);
    for (int p = 0; p < k; p++)
        for (int i = 0; i < m; i++) pa[(size_t)p * m + i] = ta ? a[(size_t)i * lda + p] : a[(size_t)p * lda + i];
    auto bAt = [&](int p, int j) { return tb ? b[(size_t)p * ldb + j] : b[(size_t)j * ldb + p]; };
    for (int j0 = 0; j0 < n; j0 += 4)
    {
        int w = n - j0 < 4 ? n - j0 : 4;
        float *a0 = &acc[0], *a1 = a0 + m, *a2 = a1 + m, *a3 = a2 + m;
        for (size_t i = 0; i < acc.size(); i++) acc[i] = 0.f;
        for (int p = 0; p < k; p++)
        {
            const float* col = &pa[(size_t)p * m];
            float b0 = bAt(p, j0), b1 = w > 1 ? bAt(p, j0 + 1) : 0.f, b2 = w > 2 ? bAt(p, j0 + 2) : 0.f, b3 = w > 3 ? bAt(p, j0 + 3) : 0.f;
            for (int i = 0; i < m; i++)
            {
                float v = col[i];
                a0[i] += v * b0; a1[i] += v * b1; a2[i] += v * b2; a3[i] += v * b3;
            }
        }
        for (int jj = 0; jj < w; jj++)
        {
            float* cj = c + (size_t)(j0 + jj) * ldc;
            const float* s = &acc[(size_t)jj * m];
            for (int i = 0; i < m; i++) cj[i] = beta == 0.f ? alpha * s[i] : alpha * s[i] + beta * cj[i];   // beta 0: C is not read
        }
    }
}

int cublasSgemm_v2(void* handle, int ta, int tb, int m, int n, int k, const float* alpha, const float* a, int lda, const float* b,
    int ldb, const float* beta, float* c, int ldc)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    if (int r = GemmChecks(ta, tb, m, n, k, (uint64_t)a, lda, (uint64_t)b, ldb, (uint64_t)c, ldc, 0, 0, 0, 1, "cublasSgemm")) return r;
    float al = *alpha, be = *beta;
    Counters.blasCalls++;
    if (ForeignOperands(handle, a, b, c, "cublasSgemm")) return 0;
    Queue.push_back([=] {
        if (StickyError) return;
        SetLibraryCall("cublasSgemm");
        Timed("cublasSgemm", [&] { Gemm(ta, tb, m, n, k, al, a, lda, b, ldb, be, c, ldc); });
        SetLibraryCall(nullptr);
    });
    return 0;
}

int cublasSgemmStridedBatched(void* handle, int ta, int tb, int m, int n, int k, const float* alpha, const float* a, int lda,
    long long sa, const float* b, int ldb, long long sb, const float* beta, float* c, int ldc, long long sc, int batch)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    if (int r = GemmChecks(ta, tb, m, n, k, (uint64_t)a, lda, (uint64_t)b, ldb, (uint64_t)c, ldc, sa, sb, sc, batch, "cublasSgemmStridedBatched")) return r;
    float al = *alpha, be = *beta;
    Counters.blasCalls++;
    if (ForeignOperands(handle, a, b, c, "cublasSgemmStridedBatched")) return 0;
    Queue.push_back([=] {
        if (StickyError) return;
        SetLibraryCall("cublasSgemmStridedBatched");
        Timed("cublasSgemmStridedBatched", [&] {
            for (int i = 0; i < batch; i++) Gemm(ta, tb, m, n, k, al, a + sa * i, lda, b + sb * i, ldb, be, c + sc * i, ldc);
        });
        SetLibraryCall(nullptr);
    });
    return 0;
}

} // extern "C"
