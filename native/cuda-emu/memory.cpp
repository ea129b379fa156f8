// Device memory (every allocation ends at a PROT_NONE page, so an out-of-bounds access faults and the fault handler
// names the kernel), pinned host memory (copies from and to it run in stream order, later, as on a GPU), and the
// driver's memory entry points.
#include "emu.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sys/mman.h>
#include <unistd.h>

namespace emu {

namespace {
std::map<uintptr_t, Allocation> Device;   // by start
std::map<uintptr_t, size_t> Pinned;       // by start
size_t DeviceUsed[8] = {};   // by device
struct sigaction PreviousSegv, PreviousBus;
void OnFault(int sig, siginfo_t* info, void* ctx);
} // namespace

size_t DeviceTotal()
{
    static size_t total = [] {
        const char* s = getenv("ENGINE_CUDA_EMU_MEMORY_MIB");
        long mib = s ? atol(s) : 0;
        return (size_t)(mib > 0 ? mib : 8192) << 20;   // 8 GiB: 1/32 of it is the 256 MiB chunk cap of a large GPU
    }();
    return total;
}

// Each allocation is two memory mappings (its pages and the guard page); the process may hold vm.max_map_count of
// them (65530 by default), the .NET runtime's own among them. Past this many live allocations cuMemAlloc reports out
// of memory, as a full GPU would, so the backend's allocator collects garbage and empties its cache and retries
// rather than the runtime failing to map code.
static size_t MaxAllocations()
{
    static size_t n = [] {
        long limit = 65530;
        if (FILE* f = fopen("/proc/sys/vm/max_map_count", "r")) { if (fscanf(f, "%ld", &limit) != 1) limit = 65530; fclose(f); }
        long n = (limit - 16384) / 2;
        return (size_t)(n < 1024 ? 1024 : n);
    }();
    return n;
}

const Allocation* FindDevice(uintptr_t p)
{
    auto it = Device.upper_bound(p);
    if (it == Device.begin()) return nullptr;
    --it;
    return p < it->second.start + it->second.bytes ? &it->second : nullptr;
}

std::string ForeignAddress(const unsigned char* bytes, size_t size, int device)
{
    for (size_t at = 0; at + 8 <= size; at += 8)
    {
        uint64_t v;
        memcpy(&v, bytes + at, 8);
        const Allocation* a = FindDevice((uintptr_t)v);
        if (!a || a->device == device) continue;
        char buf[200];
        snprintf(buf, sizeof buf, "the value at byte %zu is an address of device %d's memory (%s), not device %d's", at, a->device,
            Describe((uintptr_t)v).c_str(), device);
        return buf;
    }
    return "";
}

bool InDevice(uintptr_t p, size_t bytes)
{
    if (bytes == 0) return true;
    const Allocation* a = FindDevice(p);
    return a && p + bytes <= a->start + a->bytes;
}

bool InPinned(const void* p, size_t bytes)
{
    uintptr_t a = (uintptr_t)p;
    auto it = Pinned.upper_bound(a);
    if (it == Pinned.begin()) return false;
    --it;
    return a >= it->first && a + bytes <= it->first + it->second;
}

std::string Describe(uintptr_t p)
{
    char buf[160];
    const Allocation* a = FindDevice(p);
    if (a) { snprintf(buf, sizeof buf, "%zu bytes into an allocation of %zu", (size_t)(p - a->start), a->bytes); return buf; }
    auto it = Device.upper_bound(p);
    if (it != Device.begin())
    {
        --it;
        snprintf(buf, sizeof buf, "%zu bytes past the end of an allocation of %zu", (size_t)(p - it->second.start - it->second.bytes), it->second.bytes);
        return buf;
    }
    return "outside every allocation";
}

int CheckRange(uint64_t p, size_t bytes, const char* call, const char* operand)
{
    if (InDevice((uintptr_t)p, bytes)) return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s: the %s range (%zu bytes at %#lx) is not inside one allocation (%s)", call, operand, bytes,
        (unsigned long)p, Describe((uintptr_t)p).c_str());
    Diagnose(buf);
    return 1;
}

void InstallFaultHandler()
{
    static bool done = false;
    if (done) return;
    done = true;
    struct sigaction sa{};
    sa.sa_sigaction = OnFault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &PreviousSegv);
    sigaction(SIGBUS, &sa, &PreviousBus);
}

namespace {
void OnFault(int sig, siginfo_t* info, void* ctx)
{
    Running now = Current();
    if (now.active && pthread_equal(now.thread, pthread_self()))
    {
        uintptr_t a = (uintptr_t)info->si_addr;
        if (now.kernel)
            fprintf(stderr, "cuda-emu: invalid memory access in kernel %s, block (%u,%u,%u), thread (%u,%u,%u): address %#lx, %s\n",
                now.kernel->name, emu_blockIdx.x, emu_blockIdx.y, emu_blockIdx.z, emu_threadIdx.x, emu_threadIdx.y, emu_threadIdx.z,
                (unsigned long)a, Describe(a).c_str());
        else
            fprintf(stderr, "cuda-emu: invalid memory access in %s: address %#lx, %s\n", now.what, (unsigned long)a, Describe(a).c_str());
        fflush(stderr);
        _exit(134);
    }
    struct sigaction& prev = sig == SIGSEGV ? PreviousSegv : PreviousBus;
    if (prev.sa_flags & SA_SIGINFO) { prev.sa_sigaction(sig, info, ctx); return; }
    if (prev.sa_handler == SIG_IGN) return;
    if (prev.sa_handler == SIG_DFL) { signal(sig, SIG_DFL); return; }   // the fault repeats, now fatal
    prev.sa_handler(sig);
}
} // namespace

} // namespace emu

using namespace emu;

extern "C" {

int cuMemAlloc_v2(uint64_t* address, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    int dev = CurrentDevice();
    if (dev < 0) return ErrorInvalidContext;
    if (bytes == 0) return 1;
    if (DeviceUsed[dev] + bytes > DeviceTotal()) return 2;
    if (Device.size() >= MaxAllocations())
    {
        static bool told = false;
        if (!told) Diagnose(std::to_string(Device.size()) + " allocations live, each two memory mappings (vm.max_map_count): out of memory");
        told = true;
        return 2;
    }
    size_t rounded = (bytes + 255) & ~(size_t)255;   // 256-byte aligned starts, as cuMemAlloc's
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t mapBytes = (rounded + page - 1) / page * page + page;
    void* m = mmap(nullptr, mapBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return 2;
    unsigned char* guard = (unsigned char*)m + mapBytes - page;
    mprotect(guard, page, PROT_NONE);
    uintptr_t start = (uintptr_t)(guard - rounded);
    memset((void*)start, 0xFF, rounded);   // NaN in every float: a read of what nothing wrote shows
    Device[start] = Allocation{start, bytes, m, mapBytes, dev};
    DeviceUsed[dev] += bytes;
    *address = start;
    return 0;
}

int cuMemFree_v2(uint64_t address)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Flush();   // cuMemFree waits for the work that may still use the memory
    auto it = Device.find((uintptr_t)address);
    if (it == Device.end()) { Diagnose("cuMemFree of an address that is not an allocation's start"); return 1; }
    munmap(it->second.map, it->second.mapBytes);
    DeviceUsed[it->second.device] -= it->second.bytes;
    Device.erase(it);
    return 0;
}

int cuMemAllocHost_v2(void** p, size_t bytes)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    if (CurrentDevice() < 0) return ErrorInvalidContext;
    void* m = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    if (!m) return 2;
    Pinned[(uintptr_t)m] = bytes;
    *p = m;
    return 0;
}

int cuMemGetInfo_v2(size_t* free, size_t* total)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    int dev = CurrentDevice();
    if (dev < 0) return ErrorInvalidContext;
    *total = DeviceTotal();
    *free = DeviceTotal() - DeviceUsed[dev];
    return 0;
}

int cuMemcpyHtoDAsync_v2(uint64_t dst, const void* src, size_t bytes, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.copies++;
    if (int r = CheckRange(dst, bytes, "cuMemcpyHtoDAsync", "destination")) return r;
    if (InPinned(src, bytes))
        Queue.push_back([dst, src, bytes] { memcpy((void*)dst, src, bytes); });   // read when the stream gets there
    else
    {
        // From pageable memory the driver stages the bytes before returning: the caller may reuse its buffer.
        auto copy = std::make_shared<std::vector<unsigned char>>((const unsigned char*)src, (const unsigned char*)src + bytes);
        Queue.push_back([dst, copy] { memcpy((void*)dst, copy->data(), copy->size()); });
    }
    return 0;
}

int cuMemcpyDtoHAsync_v2(void* dst, uint64_t src, size_t bytes, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.copies++;
    if (int r = CheckRange(src, bytes, "cuMemcpyDtoHAsync", "source")) return r;
    if (InPinned(dst, bytes))
    {
        Queue.push_back([dst, src, bytes] { memcpy(dst, (const void*)src, bytes); });
        return 0;
    }
    // To pageable memory the copy completes before the call returns, after the work queued before it.
    Flush();
    if (StickyError) return StickyError;
    memcpy(dst, (const void*)src, bytes);
    return 0;
}

int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.copies++;
    if (int r = CheckRange(dst, bytes, "cuMemcpyDtoDAsync", "destination")) return r;
    if (int r = CheckRange(src, bytes, "cuMemcpyDtoDAsync", "source")) return r;
    Queue.push_back([dst, src, bytes] { memmove((void*)dst, (const void*)src, bytes); });
    return 0;
}

int cuMemsetD32Async(uint64_t dst, unsigned value, size_t count, void*)
{
    std::lock_guard<std::recursive_mutex> lock(Gate);
    ApiTimer timer(__func__);
    Counters.memsets++;
    if (dst % 4) { Diagnose("cuMemsetD32Async: destination not 4-byte aligned"); return 1; }
    if (int r = CheckRange(dst, count * 4, "cuMemsetD32Async", "destination")) return r;
    Queue.push_back([dst, value, count] { unsigned* p = (unsigned*)dst; for (size_t i = 0; i < count; i++) p[i] = value; });
    return 0;
}

} // extern "C"
