// Checks of the CUDA emulator itself (run by tests/Engine.Tests/CudaEmulator): the semantics it must share with a
// GPU (barriers, warp shuffles, stream order, cuBLAS) and the faults it must report (out-of-bounds accesses,
// parameter blocks of the wrong size, launch limits, copies past an allocation, divergent synchronisation, races,
// uninitialised memory). Its kernels are in the library (check_kernels.cpp). Prints one line per check and "N passed, M failed"; exit 1 on a failure.
#include "cuda_emu.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern "C" {
int cuInit(unsigned);
int cuDevicePrimaryCtxRetain(void**, int);
int cuCtxSetCurrent(void*);
int cuMemGetInfo_v2(size_t*, size_t*);
int cublasCreate_v2(void**);
int cuStreamSynchronize(void*);
int cuEventCreate(void**, unsigned);
int cuEventRecord(void*, void*);
int cuEventSynchronize(void*);
int cuEventElapsedTime(float*, void*, void*);
int cuMemAlloc_v2(uint64_t*, size_t);
int cuMemFree_v2(uint64_t);
int cuMemAllocHost_v2(void**, size_t);
int cuMemcpyHtoDAsync_v2(uint64_t, const void*, size_t, void*);
int cuMemcpyDtoHAsync_v2(void*, uint64_t, size_t, void*);
int cuMemsetD32Async(uint64_t, unsigned, size_t, void*);
int cuModuleLoadData(void**, const void*);
int cuModuleGetFunction(void**, void*, const char*);
int cuLaunchKernel(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**, void**);
int cublasSgemm_v2(void*, int, int, int, int, int, const float*, const float*, int, const float*, int, const float*, float*, int);
int cublasSgemmStridedBatched(void*, int, int, int, int, int, const float*, const float*, int, long long, const float*, int,
    long long, const float*, float*, int, long long, int);
}


static int passed = 0, failed = 0;
static void check(bool ok, const char* what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    (ok ? passed : failed)++;
}

static void* module()
{
    static void* m = nullptr;
    if (!m)
    {
        static const char ptx[] = ".version 8.0\n.visible .entry emu_test_shuffle(\n.visible .entry emu_test_rotate(\n"
                                  ".visible .entry emu_test_write(\n.visible .entry emu_test_divergent(\n.visible .entry emu_test_racy(\n"
                                  ".visible .entry emu_test_uninit_shared(\n";
        cuModuleLoadData(&m, ptx);
    }
    return m;
}

static void* function(const char* name)
{
    void* f = nullptr;
    return cuModuleGetFunction(&f, module(), name) == 0 ? f : nullptr;
}

struct Params
{
    unsigned char bytes[64];
    size_t size = 0;
    template <class T> Params& add(T v)
    {
        size = (size + alignof(T) - 1) / alignof(T) * alignof(T);
        memcpy(bytes + size, &v, sizeof v);
        size += sizeof v;
        return *this;
    }
};

static int launch(const char* name, unsigned gx, unsigned gy, unsigned bx, Params& p, size_t sizeOverride = (size_t)-1)
{
    size_t size = sizeOverride == (size_t)-1 ? p.size : sizeOverride;
    void* extra[] = {(void*)1, p.bytes, (void*)2, &size, nullptr};
    return cuLaunchKernel(function(name), gx, gy, 1, bx, 1, 1, 0, nullptr, nullptr, extra);
}

static uint64_t upload(const std::vector<float>& v)
{
    uint64_t d = 0;
    cuMemAlloc_v2(&d, v.size() * 4);
    cuMemcpyHtoDAsync_v2(d, v.data(), v.size() * 4, nullptr);
    return d;
}

static std::vector<float> download(uint64_t d, size_t n)
{
    std::vector<float> v(n);
    cuMemcpyDtoHAsync_v2(v.data(), d, n * 4, nullptr);
    return v;
}

// Runs f in a child process; its exit status and what it wrote to stderr.
template <class F> static std::pair<int, std::string> inChild(F f)
{
    int fds[2];
    if (pipe(fds) != 0) return {-1, "pipe failed"};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0)
    {
        dup2(fds[1], 2);
        close(fds[0]);
        f();
        _exit(0);
    }
    close(fds[1]);
    std::string err;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) err.append(buf, (size_t)n);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), err};
}

static void* context(int device)
{
    void* c = nullptr;
    cuDevicePrimaryCtxRetain(&c, device);
    return c;
}

int main()
{
    setenv("ENGINE_CUDA_EMU_DEVICES", "2", 1);   // the multi-device checks below; every other check runs on device 0
    cuInit(0);
    cuCtxSetCurrent(context(0));

    {   // Warp shuffles: down leaves the warp's sum in lane 0 (own value past the warp's end), xor in every lane.
        std::vector<float> x(64);
        for (int i = 0; i < 64; i++) x[i] = (float)i;
        uint64_t dx = upload(x), dd = upload(x), db = upload(x);
        Params p;
        p.add(dx).add(dd).add(db);
        check(launch("emu_test_shuffle", 1, 1, 64, p) == 0, "shuffle kernel launches");
        auto down = download(dd, 64), bf = download(db, 64);
        check(down[0] == 496.f && down[32] == 1520.f, "shfl_down: lane 0 holds its warp's sum");
        check(down[31] == 31.f * 32, "shfl_down: the last lane gets its own value back (no source lane), five times");
        bool all = true;
        for (int i = 0; i < 64; i++) all &= bf[i] == (i < 32 ? 496.f : 1520.f);
        check(all, "shfl_xor: every lane holds its warp's sum");
    }
    {   // __syncthreads orders writes before reads across the block, block after block.
        std::vector<float> x(3 * 200);
        for (size_t i = 0; i < x.size(); i++) x[i] = (float)i;
        uint64_t dx = upload(x), dy = upload(x);
        Params p;
        p.add(dx).add(dy);
        launch("emu_test_rotate", 3, 1, 200, p);
        auto y = download(dy, x.size());
        bool ok = true;
        for (int b = 0; b < 3; b++)
            for (int t = 0; t < 200; t++) ok &= y[b * 200 + t] == x[b * 200 + (t + 1) % 200];
        check(ok, "__syncthreads: every thread reads another thread's shared write");
    }
    {   // Shared memory nothing wrote reads as NaN.
        std::vector<float> z(64, 0.f);
        uint64_t dy = upload(z);
        Params p;
        p.add(dy);
        launch("emu_test_uninit_shared", 1, 1, 64, p);
        auto y = download(dy, 64);
        check(std::isnan(y[0]) && std::isnan(y[63]), "shared memory nothing wrote reads as NaN");
    }
    {   // A fresh allocation reads as NaN; memset and grid-stride loops cover what they should.
        uint64_t d = 0;
        cuMemAlloc_v2(&d, 4000);
        auto fresh = download(d, 1000);
        check(std::isnan(fresh[0]) && std::isnan(fresh[999]), "fresh device memory reads as NaN");
        cuMemsetD32Async(d, 0x3f800000u, 1000, nullptr);
        auto one = download(d, 1000);
        check(one[0] == 1.f && one[999] == 1.f, "cuMemsetD32Async fills every word");
        cuMemFree_v2(d);
    }
    {   // Stream order: a copy from pinned memory reads it when the stream gets there, a copy to pinned memory lands then.
        float* pinned = nullptr;
        cuMemAllocHost_v2((void**)&pinned, 16);
        uint64_t d = 0;
        cuMemAlloc_v2(&d, 16);
        pinned[0] = 1.f;
        cuMemcpyHtoDAsync_v2(d, pinned, 4, nullptr);
        pinned[0] = 2.f;   // before the stream ran the copy
        cuStreamSynchronize(nullptr);
        check(download(d, 1)[0] == 2.f, "a pinned upload reads the host buffer when the stream reaches it");
        pinned[1] = 7.f;
        cuMemcpyDtoHAsync_v2(pinned + 1, d, 4, nullptr);
        check(pinned[1] == 7.f, "a pinned download has not landed before the host synchronises");
        cuStreamSynchronize(nullptr);
        check(pinned[1] == 2.f, "... and has after cuStreamSynchronize");
        void *e0, *e1;
        cuEventCreate(&e0, 0);
        cuEventCreate(&e1, 0);
        cuEventRecord(e0, nullptr);
        cuEventRecord(e1, nullptr);
        float ms = 0;
        check(cuEventElapsedTime(&ms, e0, e1) == 600, "events not reached yet: CUDA_ERROR_NOT_READY");
        cuEventSynchronize(e1);
        check(cuEventElapsedTime(&ms, e0, e1) == 0 && ms >= 0, "events after cuEventSynchronize time the work between them");
    }
    {   // What a GPU would not say clearly.
        uint64_t d = 0;
        cuMemAlloc_v2(&d, 4000);
        std::vector<float> big(1250);
        check(cuMemcpyHtoDAsync_v2(d, big.data(), 5000, nullptr) == 1, "a copy past its allocation is refused");
        Params p;
        p.add(d).add(1000);
        check(launch("emu_test_write", 1, 1, 64, p, 16) == 1, "a parameter block of the wrong size (16 bytes for 12) is refused");
        check(launch("emu_test_write", 1, 70000, 64, p) == 1, "grid y past 65535 is refused");
        check(launch("emu_test_write", 1, 1, 2048, p) == 1, "a block of 2048 threads is refused");
        check(launch("emu_test_write", 2, 1, 64, p) == 0 && cuStreamSynchronize(nullptr) == 0, "an in-bounds launch runs");
        check(download(d, 1000)[999] == 1.f, "... and writes every element");
    }
    {   // cuBLAS: every transpose combination against a double reference; beta = 0 never reads C.
        int m = 5, n = 7, k = 9;
        bool ok = true;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
            {
                int lda = (ta ? k : m) + 1, ldb = (tb ? n : k) + 2, ldc = m + 3;
                std::vector<float> a((size_t)lda * (ta ? m : k)), b((size_t)ldb * (tb ? k : n)), c((size_t)ldc * n, NAN);
                for (size_t i = 0; i < a.size(); i++) a[i] = (float)((i * 7) % 11) - 5.f;
                for (size_t i = 0; i < b.size(); i++) b[i] = (float)((i * 5) % 13) - 6.f;
                uint64_t da = upload(a), db = upload(b), dc = upload(c);
                float alpha = 0.5f, beta = 0.f;
                cublasSgemm_v2(nullptr, ta, tb, m, n, k, &alpha, (const float*)da, lda, (const float*)db, ldb, &beta, (float*)dc, ldc);
                auto r = download(dc, c.size());
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        double s = 0;
                        for (int q = 0; q < k; q++)
                            s += (double)(ta ? a[(size_t)i * lda + q] : a[(size_t)q * lda + i]) * (tb ? b[(size_t)q * ldb + j] : b[(size_t)j * ldb + q]);
                        ok &= std::fabs(r[(size_t)j * ldc + i] - 0.5 * s) < 1e-4;
                    }
            }
        check(ok, "cublasSgemm: all transpose cases, NaN in C ignored when beta = 0");
        std::vector<float> a(2 * 4), b(2 * 4), c(2 * 4, 1.f);
        for (int i = 0; i < 8; i++) { a[i] = (float)i; b[i] = 1.f; }
        uint64_t da = upload(a), db = upload(b), dc = upload(c);
        float alpha = 1.f, beta = 1.f;
        cublasSgemmStridedBatched(nullptr, 0, 0, 2, 2, 2, &alpha, (const float*)da, 2, 4, (const float*)db, 2, 4, &beta, (float*)dc, 2, 4, 2);
        auto r = download(dc, 8);
        // A = [[0, 2], [1, 3]], then [[4, 6], [5, 7]] (column-major), B = ones: C = 1 + A's row sums.
        check(r[0] == 3.f && r[1] == 5.f && r[2] == 3.f && r[4] == 11.f && r[5] == 13.f && r[7] == 13.f, "cublasSgemmStridedBatched: each batch at its stride, C += A·B");
        check(cublasSgemm_v2(nullptr, 0, 0, 2, 2, 2, &alpha, (const float*)da, 1, (const float*)db, 2, &beta, (float*)dc, 2) == 7,
            "cublasSgemm: lda below the rows is CUBLAS_STATUS_INVALID_VALUE");
        check(cublasSgemm_v2(nullptr, 0, 0, 4, 4, 4, &alpha, (const float*)da, 4, (const float*)db, 4, &beta, (float*)dc, 4) == 13,
            "cublasSgemm: operands past their allocations are refused");
    }
    {   // Faults end the process with the kernel, block and thread named (on a GPU: an unnamed illegal address).
        auto r = inChild([] {
            uint64_t d = 0;
            cuMemAlloc_v2(&d, 4000);
            Params p;
            p.add(d).add(1100);
            launch("emu_test_write", 1, 1, 64, p);
            cuStreamSynchronize(nullptr);
        });
        check(r.first == 134 && r.second.find("invalid memory access in kernel emu_test_write") != std::string::npos
            && r.second.find("past the end of an allocation of 4000") != std::string::npos, ("an out-of-bounds write is named: " + r.second).c_str());
        auto s = inChild([] {
            uint64_t d = 0;
            cuMemAlloc_v2(&d, 128);
            Params p;
            p.add(d);
            launch("emu_test_divergent", 1, 1, 32, p);
            int e = cuStreamSynchronize(nullptr);
            _exit(e == 719 ? 3 : 4);
        });
        check(s.first == 3 && s.second.find("wait at different synchronisations") != std::string::npos,
            ("a barrier and a shuffle in divergent branches fail the launch: " + s.second).c_str());
    }
    {   // ENGINE_CUDA_EMU_RACECHECK=1: a kernel whose result depends on its threads' order fails; a correct one does not.
        auto race = [](const char* kernel) {
            return inChild([kernel] {
                setenv("ENGINE_CUDA_EMU_RACECHECK", "1", 1);
                std::vector<float> x(64);
                for (int i = 0; i < 64; i++) x[i] = (float)i;
                uint64_t dx = upload(x), dy = upload(x);
                Params p;
                p.add(dx).add(dy);
                launch(kernel, 1, 1, 64, p);
                _exit(cuStreamSynchronize(nullptr) == 719 ? 3 : 4);
            });
        };
        auto r = race("emu_test_racy");
        check(r.first == 3 && r.second.find("depends on the order its threads run") != std::string::npos,
            ("the race check flags a read of another thread's write without a barrier: " + r.second).c_str());
        auto ok = race("emu_test_rotate");
        check(ok.first == 4 && ok.second.empty(), ("... and passes the same exchange with __syncthreads: " + ok.second).c_str());
    }
    {   // Two devices: contexts bound to threads, memory and handles per device, no access to the other's memory.
        uint64_t d = 0;
        int r = -1;
        std::thread([&] { r = cuMemAlloc_v2(&d, 64); }).join();
        check(r == 201, "a thread with no current context gets CUDA_ERROR_INVALID_CONTEXT");
        size_t free0 = 0, free1 = 0, total = 0;
        cuMemAlloc_v2(&d, 1 << 20);
        cuMemGetInfo_v2(&free0, &total);
        cuCtxSetCurrent(context(1));
        cuMemGetInfo_v2(&free1, &total);
        check(free1 == total && free0 + (1 << 20) <= total, "each device has its own memory");
        Params p;
        p.add(d).add(16);
        check(launch("emu_test_write", 1, 1, 32, p) == 400, "a function of device 0's module, launched in device 1's context, is refused");
        cuCtxSetCurrent(context(0));
        auto k = inChild([] {
            cuCtxSetCurrent(context(1));
            uint64_t other = 0;
            cuMemAlloc_v2(&other, 4096);
            cuCtxSetCurrent(context(0));
            Params q;
            q.add(other).add(16);
            launch("emu_test_write", 1, 1, 32, q);
            _exit(cuStreamSynchronize(nullptr) == 700 ? 3 : 4);
        });
        check(k.first == 3 && k.second.find("emu_test_write on device 0") != std::string::npos && k.second.find("device 1's memory") != std::string::npos,
            ("a kernel given another device's memory fails with CUDA_ERROR_ILLEGAL_ADDRESS: " + k.second).c_str());
        auto g = inChild([] {
            std::vector<float> v(4, 1.f);
            uint64_t a = upload(v), c = upload(v);
            cuCtxSetCurrent(context(1));
            void* handle = nullptr;
            cublasCreate_v2(&handle);
            uint64_t b = upload(v);
            float one = 1.f, zero = 0.f;
            cublasSgemm_v2(handle, 0, 0, 2, 2, 2, &one, (const float*)a, 2, (const float*)b, 2, &zero, (float*)c, 2);
            _exit(cuStreamSynchronize(nullptr) == 700 ? 3 : 4);
        });
        check(g.first == 3 && g.second.find("cublasSgemm on device 1") != std::string::npos && g.second.find("device 0's memory") != std::string::npos,
            ("cuBLAS operands on another device than the handle's fail the same way: " + g.second).c_str());
    }
    {   // Allocations map two regions each: past a budget under vm.max_map_count cuMemAlloc reports out of memory, and the
        // process can still map memory (the .NET runtime maps code as it compiles it).
        auto r = inChild([] {
            int n = 0, e = 0;
            for (uint64_t d = 0; n < 100000 && (e = cuMemAlloc_v2(&d, 256)) == 0; n++) {}
            void* m = mmap(nullptr, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            _exit(e == 2 && n >= 1024 && n < 40000 && m != MAP_FAILED ? 3 : 4);
        });
        check(r.first == 3 && r.second.find("vm.max_map_count") != std::string::npos,
            ("cuMemAlloc reports out of memory before the process runs out of memory mappings: " + r.second).c_str());
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
