// The driver API's device, context, module and launch entry points (CUresult is an int; the codes are CUDA's).
#include "emu.h"

#include <cstdio>
#include <cstdlib>

using namespace emu;

namespace {
struct Module { std::string ptx; };
} // namespace

extern "C" {

static const char* ErrorName(int e)
{
    switch (e)
    {
        case 0: return "CUDA_SUCCESS";
        case 1: return "CUDA_ERROR_INVALID_VALUE";
        case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
        case 3: return "CUDA_ERROR_NOT_INITIALIZED";
        case 101: return "CUDA_ERROR_INVALID_DEVICE";
        case 218: return "CUDA_ERROR_INVALID_PTX";
        case 400: return "CUDA_ERROR_INVALID_HANDLE";
        case 500: return "CUDA_ERROR_NOT_FOUND";
        case 600: return "CUDA_ERROR_NOT_READY";
        case 701: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
        case 719: return "CUDA_ERROR_LAUNCH_FAILED";
        case 801: return "CUDA_ERROR_NOT_SUPPORTED";
        default: return nullptr;
    }
}

int cuGetErrorName(int e, const char** name) { *name = ErrorName(e); return *name ? 0 : 1; }
int cuGetErrorString(int e, const char** text)
{
    static thread_local std::string s;
    const char* n = ErrorName(e);
    if (!n) { *text = nullptr; return 1; }
    s = std::string("cuda-emu ") + n;
    if (e == StickyError && !StickyReason.empty()) s += ": " + StickyReason;
    *text = s.c_str();
    return 0;
}

int cuInit(unsigned flags) { InstallFaultHandler(); return flags == 0 ? 0 : 1; }
int cuDriverGetVersion(int* v) { *v = 13000; return 0; }
int cuDeviceGetCount(int* c) { *c = 1; return 0; }
int cuDeviceGet(int* d, int ordinal) { if (ordinal != 0) return 101; *d = 0; return 0; }
int cuDeviceGetName(char* name, int len, int dev)
{
    if (dev != 0) return 101;
    snprintf(name, (size_t)len, "CUDA emulator on the CPU (native/cuda-emu)");
    return 0;
}
int cuDeviceGetAttribute(int* v, int attribute, int dev)
{
    if (dev != 0) return 101;
    switch (attribute)
    {
        case 1: *v = 1024; return 0;    // max threads per block
        case 8: *v = 49152; return 0;   // shared memory per block
        case 16: *v = 4; return 0;      // multiprocessors: few, so grid-stride loops take several turns
        case 39: *v = 2048; return 0;   // threads per multiprocessor
        case 75: *v = 9; return 0;      // compute capability 9.0
        case 76: *v = 0; return 0;
        default: return 1;
    }
}
int cuDeviceTotalMem_v2(size_t* bytes, int dev) { if (dev != 0) return 101; *bytes = DeviceTotal(); return 0; }
int cuDevicePrimaryCtxRetain(void** ctx, int dev) { static int c; if (dev != 0) return 101; *ctx = &c; return 0; }
int cuDevicePrimaryCtxRelease_v2(int dev) { return dev == 0 ? 0 : 101; }
static void* CurrentContext;
int cuCtxSetCurrent(void* ctx) { CurrentContext = ctx; return 0; }
int cuCtxGetCurrent(void** ctx) { *ctx = CurrentContext; return 0; }


int cuModuleLoadData(void** module, const void* image)
{
    const char* ptx = (const char*)image;
    if (!ptx || !strstr(ptx, ".version")) return 218;   // not PTX text
    *module = new Module{ptx};
    return 0;
}

int cuModuleGetFunction(void** function, void* module, const char* name)
{
    auto* m = (Module*)module;
    std::string entry = std::string(".entry ") + name + "(";
    bool inPtx = m->ptx.find(entry) != std::string::npos;
    auto it = Registry().find(name);
    if (!inPtx) return 500;
    if (it == Registry().end())
    {
        Diagnose(std::string("kernel ") + name + " is in NVRTC's PTX but not in the emulator: rebuild out/cuda-emu (./build.sh emu)");
        return 500;
    }
    *function = &it->second;
    return 0;
}

int cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void*, int blockSize, size_t)
{
    *blocks = blockSize > 0 ? 2048 / blockSize : 0;
    return 0;
}

int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
    unsigned sharedBytes, void*, void** kernelParams, void** extra)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    auto* k = (const EmuKernel*)function;
    if (!k) return 400;
    std::string name = k->name;
    char buf[320];
    if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0 || gx > 0x7fffffffu || gy > 65535 || gz > 65535
        || bx > 1024 || by > 1024 || bz > 64 || (uint64_t)bx * by * bz > 1024)
    {
        snprintf(buf, sizeof buf, "cuLaunchKernel(%s): grid %ux%ux%u / block %ux%ux%u past the device's limits "
            "(grid x < 2^31, y and z <= 65535; block <= 1024 threads, z <= 64)", k->name, gx, gy, gz, bx, by, bz);
        Diagnose(buf);
        return 1;
    }
    if (sharedBytes > 49152) return 701;
    if (kernelParams) { Diagnose("cuLaunchKernel: only CU_LAUNCH_PARAM_BUFFER_POINTER launches are emulated"); return 801; }
    const unsigned char* params = nullptr;
    size_t size = 0;
    for (void** e = extra; e && *e; e += 2)
    {
        if (e[0] == (void*)1) params = (const unsigned char*)e[1];
        else if (e[0] == (void*)2) size = *(size_t*)e[1];
        else return 1;
    }
    if (size != k->paramBytes || (size && !params))
    {
        snprintf(buf, sizeof buf, "cuLaunchKernel(%s): %zu bytes of parameters passed, the kernel's parameter list takes %zu",
            k->name, size, k->paramBytes);
        Diagnose(buf);
        return 1;
    }
    timer.detail = k->name;
    void* pack = k->unpack(k->fn, params);   // arguments are captured at launch, as the driver does
    Counters.launches++;
    // ENGINE_CUDA_EMU_FAIL_AT=N: the N-th launch faults when it runs, as a kernel's illegal access would on a GPU (a
    // sticky error, reported by the next synchronisation), so that how the host reports it can be tested.
    static const long failAt = [] { const char* e = getenv("ENGINE_CUDA_EMU_FAIL_AT"); return e ? atol(e) : 0L; }();
    if (failAt > 0 && (long)Counters.launches == failAt)
    {
        k->release(pack);
        Queue.push_back([name] { Fail(719, "kernel " + name + ": a fault planted by ENGINE_CUDA_EMU_FAIL_AT"); });
        return 0;
    }
    uint3 grid{gx, gy, gz}, block{bx, by, bz};
    std::vector<unsigned char> bytes;
    if (RaceCheck()) bytes.assign(params, params + size);
    Queue.push_back([k, pack, grid, block, name, bytes] { Timed(name, [&] { RunChecked(k, pack, grid, block, name, bytes); }); k->release(pack); });
    return 0;
}

} // extern "C"
