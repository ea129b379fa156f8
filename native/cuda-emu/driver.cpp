// The driver API's device, context, module and launch entry points (CUresult is an int; the codes are CUDA's).
#include "emu.h"

#include <cstdio>
#include <cstdlib>

using namespace emu;

namespace {
// A context is its device's primary context; CUDA binds the current one to the calling thread.
struct Context { int device; };
Context Contexts[8] = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};
thread_local Context* CurrentContext = nullptr;

// A function handle belongs to its module, and the module to the context it was loaded in.
struct Function { const EmuKernel* kernel; int device; };
struct Module { std::string ptx; int device; std::map<std::string, Function> functions; };
struct Stream { int device; };

bool ValidDevice(int dev) { return dev >= 0 && dev < DeviceCount(); }
} // namespace

int emu::DeviceCount()
{
    static int n = [] {
        const char* s = getenv("ENGINE_CUDA_EMU_DEVICES");
        int v = s ? atoi(s) : 1;
        return v < 1 ? 1 : v > 8 ? 8 : v;
    }();
    return n;
}

int emu::CurrentDevice() { return CurrentContext ? CurrentContext->device : -1; }

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
        case 201: return "CUDA_ERROR_INVALID_CONTEXT";
        case 218: return "CUDA_ERROR_INVALID_PTX";
        case 400: return "CUDA_ERROR_INVALID_HANDLE";
        case 500: return "CUDA_ERROR_NOT_FOUND";
        case 600: return "CUDA_ERROR_NOT_READY";
        case 700: return "CUDA_ERROR_ILLEGAL_ADDRESS";
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
int cuDeviceGetCount(int* c) { *c = DeviceCount(); return 0; }
int cuDeviceGet(int* d, int ordinal) { if (!ValidDevice(ordinal)) return 101; *d = ordinal; return 0; }
int cuDeviceGetName(char* name, int len, int dev)
{
    if (!ValidDevice(dev)) return 101;
    snprintf(name, (size_t)len, "CUDA emulator on the CPU (native/cuda-emu)");
    return 0;
}
int cuDeviceGetAttribute(int* v, int attribute, int dev)
{
    if (!ValidDevice(dev)) return 101;
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
int cuDeviceTotalMem_v2(size_t* bytes, int dev) { if (!ValidDevice(dev)) return 101; *bytes = DeviceTotal(); return 0; }
int cuDevicePrimaryCtxRetain(void** ctx, int dev) { if (!ValidDevice(dev)) return 101; *ctx = &Contexts[dev]; return 0; }
int cuDevicePrimaryCtxRelease_v2(int dev) { return ValidDevice(dev) ? 0 : 101; }
int cuCtxSetCurrent(void* ctx)
{
    auto* c = (Context*)ctx;
    if (c && (c < Contexts || c >= Contexts + DeviceCount())) return 201;
    CurrentContext = c;
    return 0;
}
int cuCtxGetCurrent(void** ctx) { *ctx = CurrentContext; return 0; }

int cuModuleLoadData(void** module, const void* image)
{
    if (CurrentDevice() < 0) return ErrorInvalidContext;
    const char* ptx = (const char*)image;
    if (!ptx || !strstr(ptx, ".version")) return 218;   // not PTX text
    *module = new Module{ptx, CurrentDevice(), {}};
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
    auto f = m->functions.emplace(name, Function{&it->second, m->device}).first;
    *function = &f->second;
    return 0;
}

int cuStreamCreate(void** stream, unsigned)
{
    if (CurrentDevice() < 0) return ErrorInvalidContext;
    *stream = new Stream{CurrentDevice()};
    return 0;
}

int cuStreamDestroy_v2(void* stream)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Flush();
    delete (Stream*)stream;
    return 0;
}

int cuOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void*, int blockSize, size_t)
{
    *blocks = blockSize > 0 ? 2048 / blockSize : 0;
    return 0;
}

int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
    unsigned sharedBytes, void* stream, void** kernelParams, void** extra)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    auto* f = (const Function*)function;
    if (!f) return 400;
    const EmuKernel* k = f->kernel;
    std::string name = k->name;
    char buf[320];
    int dev = CurrentDevice();
    if (dev < 0) return ErrorInvalidContext;
    // A function, or a stream, of another context than the current one is not a handle this context knows.
    if (f->device != dev || (stream && ((const Stream*)stream)->device != dev))
    {
        snprintf(buf, sizeof buf, "cuLaunchKernel(%s): the %s belongs to device %d, but device %d's context is current", k->name,
            f->device != dev ? "function (its module)" : "stream", f->device != dev ? f->device : ((const Stream*)stream)->device, dev);
        Diagnose(buf);
        return 400;
    }
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
    // Device memory of another GPU, without peer access: the kernel faults with an illegal address when it runs.
    std::string foreign = ForeignAddress(params, size, dev);
    if (!foreign.empty())
    {
        k->release(pack);
        Queue.push_back([name, dev, foreign] { Fail(ErrorIllegalAddress, "kernel " + name + " on device " + std::to_string(dev) + ": " + foreign); });
        return 0;
    }
    uint3 grid{gx, gy, gz}, block{bx, by, bz};
    std::vector<unsigned char> bytes;
    if (RaceCheck()) bytes.assign(params, params + size);
    Queue.push_back([k, pack, grid, block, name, bytes] { Timed(name, [&] { RunChecked(k, pack, grid, block, name, bytes); }); k->release(pack); });
    return 0;
}

} // extern "C"
